"""Screens as structure: what the menus say, before any channel words it.

The menus build every screen from phrases — a catalog key and typed values (an amount, a day, a
crop) — never from finished text, so that each channel renders the same screen its own way: USSD
as folded text pages (menus.ussd), a voice channel as a playlist of recorded clips (a crop's name
as its recording, an amount said by the rules of the language). Everything here is immutable,
hashable and free of I/O, like menus.types.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Union

# -- values: what fills a phrase's placeholders -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in CFA francs. `unit` (a unit code) only when the amount carries its own unit
    ("650F/kg") because its phrase has no unit placeholder of its own."""

    amount: int | float
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Quantity:
    kg: int


@dataclass(frozen=True, slots=True)
class Day:
    day: dt.date
    year: bool = False  # said with its year ("28/12/2026"), else day and month only


@dataclass(frozen=True, slots=True)
class Percent:
    """A signed change: "+8%", "-11%", "0%"."""

    value: int


@dataclass(frozen=True, slots=True)
class Number:
    """A plain count: days, weeks, a year, a past error in percent."""

    value: int


@dataclass(frozen=True, slots=True)
class Phone:
    e164: str


@dataclass(frozen=True, slots=True)
class CropRef:
    id: int


@dataclass(frozen=True, slots=True)
class MarketRef:
    id: int
    name: str = "?"  # said when the market is not (or no longer) known: the quote's own name


@dataclass(frozen=True, slots=True)
class RegionRef:
    name: str


@dataclass(frozen=True, slots=True)
class LanguageRef:
    """A language by its own name: written as its speakers write it, said in its own recording."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class UnitRef:
    code: str


@dataclass(frozen=True, slots=True)
class KindRef:
    code: str  # a price kind: "wholesale" | "retail"


@dataclass(frozen=True, slots=True)
class Text:
    """Words written by staff or callers, already in the caller's language where they have one:
    tips, buyer and service names, places, profile fields. Text("") is nothing at all: an
    optional part left out (no change to show, a price that is not old)."""

    text: str


NOTHING = Text("")


# -- phrases ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phrase:
    """A catalog text (`key`) with its placeholders' values, themselves values or phrases."""

    key: str
    values: tuple[tuple[str, "Part"], ...] = ()

    def value(self, name: str) -> "Part | None":
        return next((v for n, v in self.values if n == name), None)


def phrase(key: str, **values: "Part") -> Phrase:
    if values:
        return Phrase(key, tuple(values.items()))
    # Most phrases have no values (titles, labels) and every hop builds them again: share one.
    bare = _BARE.get(key)
    if bare is None:
        bare = _BARE[key] = Phrase(key)
    return bare


_BARE: dict[str, Phrase] = {}


@dataclass(frozen=True, slots=True)
class Pair:
    """Two parts said one after the other, which a text channel punctuates by `style`:
    "dash" ("Microfinance - Sikasso"), "colon" ("Nom: Awa") or "paren" ("Kafo (Sikasso)")."""

    first: "Part"
    second: "Part"
    style: str


Value = Union[Money, Quantity, Day, Percent, Number, Phone, CropRef, MarketRef, RegionRef, UnitRef, KindRef, LanguageRef, Text]
Part = Union[Phrase, Pair, Value]


# -- screens ------------------------------------------------------------------------------------

# What a free-entry screen expects instead of a numbered choice.
QUANTITY = "quantity"  # a number of kilograms (digits: a keypad can give it)
FREE_TEXT = "text"  # words (a name, a village): a text channel only


@dataclass(frozen=True, slots=True)
class Choice:
    number: int  # what the caller sends (keys in) to choose it
    label: Part


@dataclass(frozen=True, slots=True)
class Layout:
    """A whole screen as the menus build it, before any channel pages it."""

    title: Part | None  # None: an end screen, which is its body alone
    body: tuple[Part, ...] = ()  # prose; a text channel may continue it on the next page
    lines: tuple[Part, ...] = ()  # one fact each
    options: tuple[Part, ...] = ()  # their labels: option n is options[n - 1] (see choices())
    nav: bool = True  # "back" and "main menu" are offered
    entry: str = ""  # QUANTITY or FREE_TEXT: free input instead of options

    def choices(self, shown: range | None = None) -> tuple[Choice, ...]:
        """The options (those at `shown` indexes only) with the number that chooses each."""
        shown = range(len(self.options)) if shown is None else shown
        return tuple(Choice(i + 1, self.options[i]) for i in shown)


@dataclass(frozen=True, slots=True)
class Page:
    """One hop's answer as structure: the page of `layout` shown, with the hop's notice.

    The ranges say which of the layout's body parts, lines and options are on this page (a
    prose part that runs over two pages is on both). A channel that pages differently (voice:
    at most five options a prompt) reads `layout`; `number` and `more` say where this page sits
    in the text channel's paging.
    """

    layout: Layout
    body_shown: range = range(0)
    lines_shown: range = range(0)
    options_shown: range = range(0)
    number: int = 0  # 0 for the first page
    count: int = 1
    notice: Part | None = None  # an error or confirmation shown this hop only, in place of the title
    end: bool = False  # the session ends with this screen

    @property
    def body(self) -> tuple[Part, ...]:
        return self.layout.body[self.body_shown.start : self.body_shown.stop]

    @property
    def lines(self) -> tuple[Part, ...]:
        return self.layout.lines[self.lines_shown.start : self.lines_shown.stop]

    @property
    def options(self) -> tuple[Choice, ...]:
        return self.layout.choices(self.options_shown)

    @property
    def more(self) -> bool:
        """Another page follows (the caller may ask for it)."""
        return self.number + 1 < self.count
