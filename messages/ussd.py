"""USSD rendering: whatever staff or catalogs write becomes plain printable ASCII.

Handsets and gateways differ in what they show beyond ASCII (Africa's Talking asks for no special
characters), so every USSD screen is folded: Bambara letters to the spellings readers already know
from older orthography (ɛ→e, ɔ→o, ɲ→ny, ŋ→ng), accents dropped, typographic punctuation replaced.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from unidecode import unidecode

# Unidecode would give ɲ→n; the Bambara convention (and older spelling) is "ny".
_BAMBARA = str.maketrans(
    {"ɛ": "e", "Ɛ": "E", "ɔ": "o", "Ɔ": "O", "ɲ": "ny", "Ɲ": "Ny", "ŋ": "ng", "Ŋ": "Ng"}
)
_SPACES = re.compile(r"[^\S\n]+")  # any white space but a line break
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e\s]")  # white space is collapsed, not dropped


@lru_cache(maxsize=8192)  # every hop re-renders the same labels
def to_ussd(text: str) -> str:
    """Fold `text` to printable ASCII with newlines kept; idempotent."""
    text = unicodedata.normalize("NFC", text).translate(_BAMBARA)
    if not text.isascii():
        text = unidecode(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", _NOT_PRINTABLE.sub("", line)).strip() for line in text.split("\n"))
    return "\n".join(lines)
