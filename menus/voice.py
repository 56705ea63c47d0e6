"""The voice channel's rendering: a Layout becomes a prompt, the clips to play one after the other,
and the keys the caller may press. The menus are the same as USSD's; only the wording differs.

Conventions, said in the help prompt: options are read "for tomatoes, press 1", at most five a
prompt, then "for more, press 9"; `*` repeats the prompt, `0` goes back, `#` to the main menu.

A clip is an id and the words it says. Ids name meanings, so a recording follows a text through
rewordings of other texts: a catalog text's literal pieces ("fr.text.prices.detail.0"; a voice
wording `voice.<key>` is preferred when the written one abbreviates), names from the data
("fr.crop.3", "bm.market.12", "fr.unit.kg", "fr.buyer.lawal-int"), numbers, prices and dates by
the language's rules (messages.voice.numbers), and other staff-written words ("fr.say.<hash>":
tips, places), made by the speech engine until someone records them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from string import Formatter
from typing import Callable, Mapping, Sequence

from menus.screen import (
    Choice,
    CropRef,
    Day,
    KindRef,
    LanguageRef,
    MarketRef,
    Money,
    Number,
    Page,
    Pair,
    Part,
    Percent,
    Phone,
    Phrase,
    Quantity,
    RegionRef,
    Text,
    UnitRef,
    phrase,
)
from menus import languages
from menus.types import Crop, DataView, Language, Market, Term
from menus.wording import Names
from messages import Catalog, to_ussd
from messages.voice import numbers

PER_PROMPT = 5
MORE_KEY, REPEAT_KEY, BACK_KEY, HOME_KEY = "9", "*", "0", "#"

# A literal piece of a template with nothing to say ("\n", " (", ") ", ": ") is not a clip.
_SAYABLE = re.compile(r"\w", re.UNICODE)
_SPOKEN_NEWLINES = re.compile(r"\s*\n\s*")


@dataclass(frozen=True, slots=True)
class Clip:
    id: str
    text: str  # the words: read aloud by whoever records it, or by the speech engine


@dataclass(frozen=True, slots=True)
class Prompt:
    """What one answer plays, and what each key then does."""

    clips: tuple[Clip, ...]
    choices: tuple[tuple[str, int], ...] = ()  # key pressed -> the menus' option number
    more: bool = False  # MORE_KEY lists the next options
    entry: str = ""  # menus.screen.QUANTITY: digits ended by #, given to the menus as typed
    end: bool = False  # the call ends after it

    def choice(self, key: str) -> int | None:
        return next((number for k, number in self.choices if k == key), None)


class DataNames:
    """Names for the renderer from a data view, each list read once (a view lives for one hop).
    Buyers are those of the demands open on `today` (without a day: every open demand's)."""

    def __init__(self, data: DataView, today: dt.date | None = None) -> None:
        self._data = data
        self._today = today or dt.date.min
        self._crops: dict[int, Crop] | None = None
        self._markets: dict[int, Market] | None = None
        self._terms: dict[str, dict[str, Term]] = {}
        self._buyers: dict[str, None] | None = None
        self._languages: tuple[Language, ...] | None = None

    def crop(self, crop_id: int) -> Crop | None:
        if self._crops is None:
            self._crops = {c.id: c for c in self._data.crops()}
        return self._crops.get(crop_id)

    def languages(self) -> tuple[Language, ...]:
        if self._languages is None:
            self._languages = languages.configured(self._data)
        return self._languages

    def market(self, market_id: int) -> Market | None:
        if self._markets is None:
            self._markets = {x.id: x for x in self._data.markets()}
        return self._markets.get(market_id)

    def terms(self, what: str) -> Mapping[str, Term]:
        if what not in self._terms:
            read = getattr(self._data, what, None)
            self._terms[what] = {t.code: t for t in read()} if read else {}
        return self._terms[what]

    def buyers(self) -> Mapping[str, None]:
        """Buyers' names (the demands menus say them), each once, in the demands' order (a
        mapping: the renderer asks about each Text it says)."""
        if self._buyers is None:
            names = (_one_line(d.buyer_name) for d in self._data.open_demands(self._today))
            self._buyers = dict.fromkeys(n for n in names if n)
        return self._buyers


class VoiceRenderer:
    def __init__(self, catalog: Catalog, names: Names) -> None:
        self.catalog = catalog
        self.names = names
        self._number_languages: dict[str, str] = {}

    def numbers_in(self, lang: str) -> str:
        """Whose rules say `lang`'s numbers: its own, else its fallback's (menus.languages)."""
        found = self._number_languages.get(lang)
        if found is None:
            read = getattr(self.names, "languages", None)
            configured = read() if read is not None else languages.DEFAULT_LANGUAGES
            found = self._number_languages[lang] = languages.number_language(lang, configured)
        return found

    # -- parts to clips ---------------------------------------------------------------------

    def speak(self, part: Part | None, lang: str) -> list[Clip]:
        if part is None:
            return []
        return _SPEAK[type(part)](self, part, lang)

    def _phrase(self, p: Phrase, lang: str) -> list[Clip]:
        key = f"voice.{p.key}" if self.catalog.has(f"voice.{p.key}") else p.key
        values = dict(p.values)
        clips: list[Clip] = []
        for index, (literal, field, _, _) in enumerate(Formatter().parse(self.catalog.template(lang, key))):
            if literal and _SAYABLE.search(literal):
                clips.append(Clip(f"{lang}.text.{key}.{index}", _words(literal)))
            if field is not None and field in values:
                clips += self.speak(values[field], lang)
        return clips

    def _pair(self, p: Pair, lang: str) -> list[Clip]:
        return self.speak(p.first, lang) + self.speak(p.second, lang)

    def _money(self, p: Money, lang: str) -> list[Clip]:
        clips = _numbers(numbers.say_money(round(p.amount), self.numbers_in(lang)))
        if p.unit:
            clips += self.speak(phrase("voice.per_unit", unit=UnitRef(p.unit)), lang)
        return clips

    def _percent(self, p: Percent, lang: str) -> list[Clip]:
        direction = "voice.percent_up" if p.value > 0 else "voice.percent_down" if p.value < 0 else "voice.percent_none"
        if p.value == 0:
            return self.speak(phrase(direction), lang)
        return self.speak(phrase(direction), lang) + _numbers(numbers.say_percent(abs(p.value), self.numbers_in(lang)))

    def _quantity(self, p: Quantity, lang: str) -> list[Clip]:
        # The number alone: the texts say the unit where their language puts it ("500 kilos",
        # Bambara "kilo 500"); `voice.<key>` wordings replace the written "kg".
        return _numbers(numbers.say_number(p.kg, self.numbers_in(lang)))

    def _phone(self, p: Phone, lang: str) -> list[Clip]:
        # Digit by digit, as numbers are read out to be written down.
        rules = self.numbers_in(lang)
        return [clip for digit in p.e164.lstrip("+") for clip in _numbers(numbers.say_number(int(digit), rules))]

    def _crop(self, p: CropRef, lang: str) -> list[Clip]:
        crop = self.names.crop(p.id)
        return [Clip(f"{lang}.crop.{p.id}", crop.name(lang) if crop else "?")]

    def _market(self, p: MarketRef, lang: str) -> list[Clip]:
        market = self.names.market(p.id)
        if market is None:
            return _said(p.name, lang)
        return [Clip(f"{lang}.market.{p.id}", market.label(lang))]

    def _text(self, p: Text, lang: str) -> list[Clip]:
        # The menus give a buyer's name as plain words (Text): said as the buyer's own clip, a
        # name recorded like crop and market names, when the words are a buyer's name.
        buyers = getattr(self.names, "buyers", None)
        words = _one_line(p.text)
        if buyers is not None and words and words in buyers():
            return [_buyer(words, lang)]
        return _said(words, lang)

    def _term(self, what: str, prefix: str, code: str, lang: str) -> list[Clip]:
        spoken = f"voice.{prefix}.{code}"  # "kilo", not "kg": said, not written
        term = self.names.terms(what).get(code)
        if self.catalog.has(spoken):
            words = self.catalog.text(lang, spoken)
        elif term is not None:
            words = term.name(lang)
        else:
            key = f"{prefix}.{code}"
            words = self.catalog.text(lang, key) if self.catalog.has(key) else code
        return [Clip(f"{lang}.{prefix}.{code}", words)]

    # -- a page to a prompt -------------------------------------------------------------------

    def prompt(self, page: Page, lang: str, offset: int = 0, *, greeting: bool = False) -> Prompt:
        """The prompt for `page`, its options from `offset` (a multiple of PER_PROMPT)."""
        layout = page.layout
        clips: list[Clip] = []
        if greeting:
            clips += self.speak(phrase("voice.help"), lang)
        clips += self.speak(page.notice, lang)
        if page.end:
            for part in layout.body:
                clips += self.speak(part, lang)
            return Prompt(tuple(clips), end=True)
        clips += self.speak(layout.title, lang)
        for part in (*layout.body, *layout.lines):
            clips += self.speak(part, lang)
        shown: tuple[Choice, ...] = layout.choices(range(offset, min(offset + PER_PROMPT, len(layout.options))))
        choices = []
        for key, choice in enumerate(shown, start=1):
            clips += self.speak(phrase("voice.option", label=choice.label, digit=Number(key)), lang)
            choices.append((str(key), choice.number))
        more = offset + PER_PROMPT < len(layout.options)
        if more:
            clips += self.speak(phrase("voice.more"), lang)
        if layout.entry:
            clips += self.speak(phrase("voice.entry"), lang)
        return Prompt(tuple(clips), tuple(choices), more, layout.entry)


def _words(literal: str) -> str:
    """A template's literal piece as words to say: one line, without the punctuation that only
    joined it to a value (": quel marché?" is read "quel marché?")."""
    return _SPOKEN_NEWLINES.sub(" ", literal).strip().lstrip(":;,-–)").strip()


def _numbers(ids: tuple[str, ...]) -> list[Clip]:
    return [Clip(clip, numbers.clip_text(clip)) for clip in ids]


def _slug(name: str) -> str:
    """A region is named by its French name ("Ségou"): its clip by that name folded ("segou")."""
    return re.sub(r"[^a-z0-9]+", "-", to_ussd(name).lower()).strip("-")


def _one_line(words: str) -> str:
    return _SPOKEN_NEWLINES.sub(" ", words).strip()


def _digest(words: str) -> str:
    return hashlib.sha256(words.encode("utf-8")).hexdigest()[:20]


def _said(words: str, lang: str) -> list[Clip]:
    """Words staff or callers wrote: one clip named by its words, made by the speech engine."""
    words = _one_line(words)
    return [Clip(f"{lang}.say.{_digest(words)}", words)] if words else []


def _buyer(name: str, lang: str) -> Clip:
    """A buyer's name: named by its folded words, as a region is ("Lawal Int." -> "lawal-int"),
    or by their hash when nothing of it folds to letters or digits."""
    return Clip(f"{lang}.buyer.{_slug(name) or _digest(name)}", name)


_SPEAK: dict[type, Callable[[VoiceRenderer, object, str], list[Clip]]] = {
    Phrase: VoiceRenderer._phrase,
    Pair: VoiceRenderer._pair,
    Text: VoiceRenderer._text,
    Money: VoiceRenderer._money,
    Quantity: VoiceRenderer._quantity,
    Day: lambda r, p, lang: _numbers(numbers.say_date(p.day, r.numbers_in(lang))),
    Percent: VoiceRenderer._percent,
    Number: lambda r, p, lang: _numbers(numbers.say_number(p.value, r.numbers_in(lang))),
    Phone: VoiceRenderer._phone,
    CropRef: VoiceRenderer._crop,
    MarketRef: VoiceRenderer._market,
    RegionRef: lambda r, p, lang: [Clip(f"{lang}.region.{_slug(p.name)}", p.name)] if p.name else [],
    UnitRef: lambda r, p, lang: r._term("units", "unit", p.code, lang),
    KindRef: lambda r, p, lang: r._term("kinds", "kind", p.code, lang),
    # A language's name in its own voice, whichever language the prompt is in ("ff.language").
    LanguageRef: lambda r, p, lang: [Clip(f"{p.code}.language", p.name)],
}


# -- what there is to record -----------------------------------------------------------------------

# Catalog sections never said as texts: SMS texts (their own channel), the USSD navigation line
# (voice has its keys, said by voice.help); units and kinds are names (their own clips).
_UNSPOKEN_SECTIONS = ("sms.", "alert.", "correction.", "linkage.", "nav.", "unit.", "kind.", "voice.unit.", "voice.kind.")


def _text_clips(catalog: Catalog, lang: str, key: str) -> list[Clip]:
    return [
        Clip(f"{lang}.text.{key}.{index}", _words(literal))
        for index, (literal, _, _, _) in enumerate(Formatter().parse(catalog.template(lang, key)))
        if literal and _SAYABLE.search(literal)
    ]


def inventory(catalog: Catalog, lang: str, data: DataView, regions: Sequence[str] = (), *,
              today: dt.date | None = None) -> list[Clip]:
    """Every clip the voice menus can play in `lang`, in the order a studio offers them: the
    menus' texts (their voice wording where there is one), names from the data (buyers': those
    of the demands open on `today`, or of every open demand), then numbers, dates and percents.
    Other staff-written texts (tips, places) are not listed: the speech engine says them until
    someone records them."""
    clips: list[Clip] = []
    for key in sorted(catalog.keys(lang)):
        if key.startswith(_UNSPOKEN_SECTIONS) or (not key.startswith("voice.") and catalog.has(f"voice.{key}")):
            continue
        clips += _text_clips(catalog, lang, key)
    names = DataNames(data, today)
    renderer = VoiceRenderer(catalog, names)
    own = next((known for known in names.languages() if known.code == lang), None)
    if own is not None:
        clips += renderer.speak(LanguageRef(own.code, own.name), lang)
    for crop in data.crops():
        if crop.active:
            clips += renderer.speak(CropRef(crop.id), lang)
    for market in data.markets():
        if market.active:
            clips += renderer.speak(MarketRef(market.id, market.name), lang)
    for region in regions:
        clips += renderer.speak(RegionRef(region), lang)
    clips += [_buyer(name, lang) for name in sorted(names.buyers(), key=str.casefold)]
    for what, prefix in (("units", "unit"), ("kinds", "kind")):
        for code, term in sorted(names.terms(what).items()):
            if term.active:
                clips += renderer._term(what, prefix, code, lang)
    if renderer.numbers_in(lang) == lang:  # else its numbers are its fallback's clips, recorded there
        clips += _numbers(numbers.all_clips(lang))
    seen: set[str] = set()
    return [c for c in clips if not (c.id in seen or seen.add(c.id))]
