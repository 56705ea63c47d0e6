"""SMS text: GSM-7 or UCS-2, and how many segments (billed parts) a text costs.

SMS is billed per segment. A text written only in the GSM 03.38 default alphabet travels as GSM-7:
160 characters in one SMS, 153 per part once it must be split. One character outside that alphabet
turns the *whole* message into UCS-2: 70 characters in one SMS, 67 per part. French typography
(’ « » … ç ê) and Bambara's proper orthography (ɛ ɔ ɲ ŋ) are all outside it, so a Bambara alert
written `sɔngɔ` costs 2–3× one written `sòngò`. Hence `fold_for_sms`: the older spelling readers
already know (è, ò, ny, ng) and look-alikes for French letters — applied only when it actually makes
the message GSM-7; otherwise the proper letters are kept, since the message is UCS-2 anyway.

Pure functions, no I/O; sending and settings live in `gateway/`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Iterable

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet, by code point 0x00–0x7F. 0x1B is the escape to the extension table,
# not a character of its own; 0x09 is shown as "Ç" (the standard's glyph is ambiguous and handsets
# show a capital; lowercase ç is NOT GSM-7, see DESIGN.md).
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_ESCAPE = "\x1b"
GSM7_BASIC = frozenset(GSM7_BASIC_TABLE) - {_ESCAPE}
# Sent as escape + code: two septets each.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_SINGLE = {GSM7: 160, UCS2: 70}
# Multi-part messages lose room to the concatenation header (UDH).
_PER_PART = {GSM7: 153, UCS2: 67}

# Older Bambara spelling, every target in the GSM-7 basic table (È and Ò are not, hence E and O).
_BAMBARA = {"ɛ": "è", "Ɛ": "E", "ɔ": "ò", "Ɔ": "O", "ɲ": "ny", "Ɲ": "Ny", "ŋ": "ng", "Ŋ": "Ng"}
# French letters and typography outside GSM-7, for every language.
_FRENCH = {
    "ê": "e", "ë": "e", "â": "a", "î": "i", "ï": "i", "ô": "o", "û": "u", "ç": "c",
    "œ": "oe", "Œ": "OE", "À": "A", "Â": "A", "È": "E", "Ê": "E", "Ë": "E",
    "Î": "I", "Ï": "I", "Ô": "O", "Ù": "U", "Û": "U",
    "’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"', "…": "...",
    "–": "-", "—": "-", "\u2010": "-", "\u2011": "-",  # dashes and (non-breaking) hyphens
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ",  # French typography's thin spaces
}
_FOLD_BM = str.maketrans({**_BAMBARA, **_FRENCH})


@dataclass(frozen=True)
class SmsEncoding:
    """How a text travels: `units` are septets (GSM-7) or UTF-16 code units (UCS-2)."""

    encoding: str
    units: int
    segments: int
    characters: int


def _septet_cost(char: str) -> int | None:
    if char in GSM7_BASIC:
        return 1
    if char in GSM7_EXTENSION:
        return 2
    return None


def _utf16_cost(char: str) -> int:
    # Outside the Basic Multilingual Plane (most emoji) a character is a surrogate pair.
    return 2 if ord(char) > 0xFFFF else 1


def septets(text: str) -> int | None:
    """GSM-7 septets `text` needs (extension characters count 2), or None if it isn't GSM-7."""
    total = 0
    for char in text:
        cost = _septet_cost(char)
        if cost is None:
            return None
        total += cost
    return total


def _count_segments(costs: Iterable[int], encoding: str) -> int:
    costs = list(costs)
    if sum(costs) <= _SINGLE[encoding]:
        return 1  # an empty text is still one SMS
    # Parts are packed character by character: an escape pair or a surrogate pair is never split
    # across a boundary, so a part may end a unit short and the plain ceil(units / 153) undercounts.
    per_part = _PER_PART[encoding]
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def measure(text: str) -> SmsEncoding:
    """Encoding, units and segments of `text`, as sent (no folding here)."""
    gsm_costs = [_septet_cost(char) for char in text]
    if all(cost is not None for cost in gsm_costs):
        costs = [cost for cost in gsm_costs if cost is not None]
        encoding = GSM7
    else:
        costs = [_utf16_cost(char) for char in text]
        encoding = UCS2
    return SmsEncoding(
        encoding=encoding,
        units=sum(costs),
        segments=_count_segments(costs, encoding),
        characters=len(text),
    )


def _strip_marks(char: str) -> str:
    """`char` without its combining accents (U+0300–U+036F), unless it is GSM-7 as it stands."""
    if _septet_cost(char) is not None:
        return char  # é è à ù ì ò Ç É Ä … keep their accent
    return "".join(c for c in unicodedata.normalize("NFD", char) if not "\u0300" <= c <= "\u036f")


def fold_for_sms(text: str, language: str) -> str:
    """`text` in GSM-7 look-alikes if that makes all of it GSM-7, else `text` unchanged; idempotent."""
    # Bambara letters fold in every language: a French message may quote a Bambara name.
    table = _FOLD_BM
    folded = unicodedata.normalize("NFC", text).translate(table)
    # Tone marks (sɔ̀ngɔ, á) and other accents: a letter that composes into a GSM-7 character keeps
    # its accent; any other loses it, and stray marks (after ɛ→è, say) vanish.
    folded = unicodedata.normalize("NFC", "".join(_strip_marks(char) for char in folded))
    if septets(folded) is None:
        # Still UCS-2 (Chinese, emoji, …): folding would save nothing, so keep the proper letters.
        return text
    return folded


def render_sms(text: str, language: str, *, fold: bool = True) -> str:
    """The text to send: surrounding white space stripped, folded for GSM-7 unless `fold` is off."""
    text = text.strip()
    return fold_for_sms(text, language) if fold else text
