"""Phrases to words, for the text channels: catalog texts filled with values formatted as Malian
readers write them (messages.formatting) and names from the data in the caller's language.

Channel-neutral: the text is not yet folded or paged (menus.ussd does that for USSD).
"""

from __future__ import annotations

from typing import Callable, Mapping, Protocol

from menus.screen import (
    CropRef,
    Day,
    KindRef,
    LanguageRef,
    MarketRef,
    Money,
    Number,
    Pair,
    Part,
    Percent,
    Phone,
    Phrase,
    Quantity,
    RegionRef,
    Text,
    UnitRef,
)
from menus.types import Crop, Market, Term
from messages import Catalog
from messages.formatting import long_date, money, phone_display, short_date, signed_percent

_NO_VALUES: Mapping[str, str] = {}
# How a text channel punctuates a Pair. The last three join a name to a name ("Tomate Sikasso")
# and the items of a list (menus.sms_render.joined): SMS replies list prices and alerts in a line.
PAIR_FORMATS = {"dash": "{} - {}", "colon": "{}: {}", "paren": "{} ({})",
                "space": "{} {}", "comma": "{}, {}", "semicolon": "{}; {}"}


class Names(Protocol):
    """Where references find their names: the engine's per-hop view of the data."""

    def crop(self, crop_id: int) -> Crop | None: ...

    def market(self, market_id: int) -> Market | None: ...

    def terms(self, what: str) -> Mapping[str, Term]: ...


class Wording:
    def __init__(self, catalog: Catalog, names: Names) -> None:
        self.catalog = catalog
        self.names = names

    def text(self, part: Part, lang: str) -> str:
        # By type rather than a chain of isinstance checks: a hop words a few hundred parts.
        return _WORD[type(part)](self, part, lang)

    def _phrase(self, p: Phrase, lang: str) -> str:
        if not p.values:
            return self.catalog.fill(lang, p.key, _NO_VALUES)
        # The dispatch of text() inlined: a price line has four values, a screen several lines.
        return self.catalog.fill(lang, p.key, {name: _WORD[type(value)](self, value, lang) for name, value in p.values})

    def _money(self, p: Money, lang: str) -> str:
        # An amount with its own unit reads as the catalogs write prices: "650F/kg".
        return money(p.amount) + (f"F/{self.term('units', 'unit', p.unit, lang)}" if p.unit else "")

    def _crop(self, p: CropRef, lang: str) -> str:
        crop = self.names.crop(p.id)
        return crop.name(lang) if crop else "?"

    def _market(self, p: MarketRef, lang: str) -> str:
        market = self.names.market(p.id)
        return market.label(lang) if market else p.name

    def _pair(self, p: Pair, lang: str) -> str:
        return PAIR_FORMATS[p.style].format(self.text(p.first, lang), self.text(p.second, lang))

    def term(self, what: str, prefix: str, code: str, lang: str) -> str:
        """A unit's or kind's name: the data's when it has them, else the catalog's, else the code."""
        term = self.names.terms(what).get(code)
        if term is not None:
            return term.name(lang)
        key = f"{prefix}.{code}"
        return self.catalog.text(lang, key) if self.catalog.has(key) else code


_WORD: dict[type, Callable[[Wording, object, str], str]] = {
    Phrase: Wording._phrase,
    Pair: Wording._pair,
    Text: lambda w, p, lang: p.text,
    Money: Wording._money,
    Quantity: lambda w, p, lang: money(p.kg),
    Day: lambda w, p, lang: long_date(p.day) if p.year else short_date(p.day),
    Percent: lambda w, p, lang: signed_percent(p.value),
    Number: lambda w, p, lang: str(p.value),
    Phone: lambda w, p, lang: phone_display(p.e164),
    CropRef: Wording._crop,
    MarketRef: Wording._market,
    RegionRef: lambda w, p, lang: p.name,
    LanguageRef: lambda w, p, lang: p.name,
    UnitRef: lambda w, p, lang: w.term("units", "unit", p.code, lang),
    KindRef: lambda w, p, lang: w.term("kinds", "kind", p.code, lang),
}
