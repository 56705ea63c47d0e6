"""The SMS channel's rendering: a reply's parts become the text of one SMS.

The SMS responder (menus.sms) builds each reply as parts — phrases with typed values
(menus.screen), the same catalog keys and values USSD screens use — and this is the one place
their text is made: each part worded by the same Wording as USSD (so an amount, a date or a
crop reads alike on every channel), the parts joined by a space. Whether a text fits is measured
on it as sent: folded for GSM-7 when configured (messages.sms), one segment at most. Since the
reply stays structure until here, a voice channel can say it too (menus.voice.VoiceRenderer).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from menus.screen import Pair, Part
from menus.types import Crop, Market, Term
from menus.wording import Wording
from messages.sms import measure, render_sms


class TableNames:
    """Names for the wording from lists a caller already read (menus.wording.Names); retired
    crops and markets included, since a subscription still names them."""

    def __init__(self, crops: Mapping[int, Crop], markets: Mapping[int, Market],
                 terms: Mapping[str, Mapping[str, Term]]) -> None:
        self._crops = crops
        self._markets = markets
        self._terms = terms

    def crop(self, crop_id: int) -> Crop | None:
        return self._crops.get(crop_id)

    def market(self, market_id: int) -> Market | None:
        return self._markets.get(market_id)

    def terms(self, what: str) -> Mapping[str, Term]:
        return self._terms.get(what, {})


def joined(items: Sequence[Part], style: str) -> Part:
    """A list in one line ("a; b; c" for "semicolon"), as pairs: a voice channel says each item
    in turn. `items` must not be empty."""
    result = items[0]
    for item in items[1:]:
        result = Pair(result, item, style)
    return result


class SmsRenderer:
    def __init__(self, wording: Wording, *, fold: bool = True) -> None:
        self.wording = wording
        self.fold = fold

    def text(self, parts: Iterable[Part], lang: str) -> str:
        """The reply's text, not yet folded (the outbox folds it when it is queued)."""
        return " ".join(self.wording.text(part, lang) for part in parts)

    def sent(self, parts: Iterable[Part], lang: str) -> str:
        """The text as it will be sent."""
        return render_sms(self.text(parts, lang), lang, fold=self.fold)

    def fits(self, parts: Iterable[Part], lang: str) -> bool:
        """Whether the parts make one SMS segment once sent."""
        return measure(self.sent(parts, lang)).segments == 1
