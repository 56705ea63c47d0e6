"""Numbers, prices, quantities, dates and percents spoken as a sequence of recorded clips.

The words and rules of each language live in `rules/<lang>.toml`, for a native speaker to correct;
this module only interprets them. It does no I/O beyond reading those files, and plays nothing:
it returns clip ids, which the voice channel turns into audio.

Clip ids name meanings, never words, so that correcting a word keeps its recordings' ids:

    <lang>.num.<n>             a whole number 0..99, one clip ("fr.num.71" "soixante et onze")
    <lang>.num.<n>.bare        its form without plural ending, before "mille" ("fr.num.80.bare")
    <lang>.scale.<v>           a base word: 100, 1000, 1000000 ("fr.scale.1000" "mille",
                               "bm.scale.100" "kɛmɛ")
    <lang>.scale.<v>.plural    its plural ("fr.scale.100.plural" "cents")
    <lang>.word.<key>          another word, by its key in [words] ("fr.word.francs", "bm.word.and")
    <lang>.month.<1..12>       a month's name ("fr.month.11" "novembre")
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Mapping

Clip = str

MAX_NUMBER = 999_999_999
_ORDERS = ("multiplier base", "base multiplier")
_POSITIONS = ("before", "after")
_DATE_FIELDS = ("day", "month")
_KEY = re.compile(r"[a-z][a-z0-9_]*")  # word keys end up inside dotted clip ids
_CLIP = re.compile(
    r"(?P<lang>[a-z]{2,3})\.(?P<kind>num|scale|word|month)\.(?P<key>[a-z0-9_]+)(?:\.(?P<form>bare|plural))?"
)


class RulesError(ValueError):
    """A rules file that cannot say every number: raised when it is read, naming file and problem."""


@dataclass(frozen=True)
class _Scale:
    value: int
    word: str
    plural: str
    plural_only_final: bool
    say_one: bool
    noun: bool  # a number before a noun keeps its plural s ("quatre-vingts millions")


@dataclass(frozen=True)
class _Frame:
    """How a counted thing is said with its word: a price's francs, a percent's "pour cent"."""

    word: str  # a key of [words], or "" for none
    position: str
    singular: str = ""
    singular_up_to: int = -1
    after_noun: str = ""  # "de" in "un million de francs"


@dataclass(frozen=True)
class _Rules:
    lang: str
    units: tuple[str, ...]
    tens: tuple[tuple[int, str], ...]  # largest first
    joiner: str
    et_joiner: str
    et_units: frozenset[int]
    et_tens: frozenset[int]
    plural_suffix: str
    plural_tens: frozenset[int]
    order: str
    part_joiner: str
    scales: tuple[_Scale, ...]  # largest first
    words: Mapping[str, str]
    divisor: int
    counted: _Frame
    plain: _Frame | None
    percent: _Frame
    date_say: tuple[str, ...]
    first_day: str
    months: tuple[str, ...]


# --- the public functions ---------------------------------------------------------------------


def say_number(n: int, lang: str) -> tuple[Clip, ...]:
    """A count (kilograms, quantities, days), said plainly."""
    rules = _rules(lang)
    return tuple(_number(_checked(n), True, rules))


def say_money(amount_f: int, lang: str) -> tuple[Clip, ...]:
    """A price in CFA francs, in the language's money frame (Bambara: 5-franc units)."""
    rules = _rules(lang)
    amount = _checked(amount_f)
    if amount % rules.divisor == 0:
        return _framed(amount // rules.divisor, rules.counted, rules)
    assert rules.plain is not None  # the loader requires it whenever divisor > 1
    return _framed(amount, rules.plain, rules)


def say_date(day: dt.date, lang: str) -> tuple[Clip, ...]:
    """A day of the year ("le 28 novembre"); the year is left out, prices are recent."""
    rules = _rules(lang)
    clips: list[Clip] = []
    for item in rules.date_say:
        if item == "day":
            if day.day == 1 and rules.first_day:
                clips.append(_word(rules.first_day, rules))
            else:
                clips.extend(_number(day.day, True, rules))
        elif item == "month":
            clips.append(f"{rules.lang}.month.{day.month}")
        else:
            clips.append(_word(item, rules))
    return tuple(clips)


def say_percent(p: int, lang: str) -> tuple[Clip, ...]:
    """A magnitude in percent: the caller says up or down with a prompt of its own."""
    rules = _rules(lang)
    return _framed(_checked(p), rules.percent, rules)


def clip_text(clip: Clip) -> str:
    """The words of a clip: what staff read aloud, and what a terminal simulator prints."""
    match = _CLIP.fullmatch(clip)
    if not match:
        raise KeyError(clip)
    rules = _rules(match["lang"])
    kind, key, form = match["kind"], match["key"], match["form"]
    value = int(key) if key.isdigit() and key == str(int(key)) else None  # never "fr.num.05"
    if kind == "num" and value is not None and value < 100:
        text = _small_text(value, True, rules)
        if form is None:
            return text
        if form == "bare" and _small_text(value, False, rules) != text:
            return _small_text(value, False, rules)
    elif kind == "scale":
        scale = next((s for s in rules.scales if s.value == value), None)
        if scale and form is None:
            return scale.word
        if scale and form == "plural" and scale.plural:
            return scale.plural
    elif kind == "word" and form is None and key in rules.words:
        return rules.words[key]
    elif kind == "month" and form is None and value is not None and 1 <= value <= 12:
        return rules.months[value - 1]
    raise KeyError(clip)


@lru_cache(maxsize=None)  # thousands of numbers walked once; the rules do not change at run time
def all_clips(lang: str) -> tuple[Clip, ...]:
    """Every clip the rules can produce for numbers 0..MAX_NUMBER, prices, dates and percents:
    the list of number clips staff must record, in a stable order."""
    rules = _rules(lang)
    found: set[Clip] = set()
    for n in _covering_numbers(rules):
        found.update(_number(n, True, rules))
    for amount in _covering_amounts(rules):
        found.update(say_money(amount, lang))
    for p in (0, 1, 2):
        found.update(say_percent(p, lang))
    for offset in range(366):  # a leap year holds every day of every month
        found.update(say_date(dt.date(2024, 1, 1) + dt.timedelta(days=offset), lang))
    return tuple(sorted(found, key=_clip_order))


# --- saying numbers ---------------------------------------------------------------------------


def _checked(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a whole number is needed, not {n!r}")
    if not 0 <= n <= MAX_NUMBER:
        # Prices and counts are never negative; a change is said as a magnitude plus a direction.
        raise ValueError(f"{n} is outside 0..{MAX_NUMBER}")
    return n


def _number(n: int, final: bool, rules: _Rules) -> list[Clip]:
    """`final`: no other number word follows, which decides the French plural s."""
    if n < 100:
        return [_small_clip(n, final, rules)]
    parts: list[list[Clip]] = []
    rest = n
    for scale in rules.scales:
        count, rest = divmod(rest, scale.value)
        if not count:
            continue
        base = f"{rules.lang}.scale.{scale.value}"
        # "deux cents" but "deux cent cinquante": some plurals hold only where no number word follows.
        if count > 1 and scale.plural and ((final and rest == 0) or not scale.plural_only_final):
            base += ".plural"
        # A noun base lets its multiplier keep a plural ("quatre-vingts millions"), a number word
        # does not ("quatre-vingt mille").
        multiplier = _number(count, scale.noun, rules) if count > 1 or scale.say_one else []
        parts.append(multiplier + [base] if rules.order == "multiplier base" else [base] + multiplier)
    if rest:
        parts.append([_small_clip(rest, final, rules)])
    clips = parts[0]
    for part in parts[1:]:
        clips = clips + ([_word(rules.part_joiner, rules)] if rules.part_joiner else []) + part
    return clips


def _small_clip(n: int, final: bool, rules: _Rules) -> Clip:
    # A separate clip only where the words differ: "quatre-vingt" (mille) against "quatre-vingts".
    if not final and _small_text(n, False, rules) != _small_text(n, True, rules):
        return f"{rules.lang}.num.{n}.bare"
    return f"{rules.lang}.num.{n}"


def _small_text(n: int, final: bool, rules: _Rules) -> str:
    if n < len(rules.units):
        return rules.units[n]
    ten, word = next((t, w) for t, w in rules.tens if t <= n)
    rest = n - ten
    if rest == 0:
        return word + (rules.plural_suffix if final and ten in rules.plural_tens else "")
    joiner = rules.et_joiner if rest in rules.et_units and ten in rules.et_tens else rules.joiner
    return word + joiner + rules.units[rest]


def _framed(count: int, frame: _Frame, rules: _Rules) -> tuple[Clip, ...]:
    number = _number(count, True, rules)
    if not frame.word:
        return tuple(number)
    word = frame.singular if frame.singular and count <= frame.singular_up_to else frame.word
    words = [_word(word, rules)]
    if frame.after_noun and _ends_on_noun(count, rules):
        words.insert(0, _word(frame.after_noun, rules))
    return tuple(words + number if frame.position == "before" else number + words)


def _ends_on_noun(n: int, rules: _Rules) -> bool:
    """Whether the last word of n is a noun base ("deux millions"), which wants "de" before francs:
    the last word is the largest base that divides n."""
    said = [scale for scale in rules.scales if n >= scale.value and n % scale.value == 0]
    return bool(said) and said[0].noun


def _word(key: str, rules: _Rules) -> Clip:
    return f"{rules.lang}.word.{key}"


# --- what all_clips walks ---------------------------------------------------------------------


def _covering_numbers(rules: _Rules) -> Iterable[int]:
    """Numbers that meet every clip: a number's clips depend only on the value of each group (the
    part below 100, each base's multiplier) and on whether a number word follows it, so every
    group value at every base, alone and followed by 1, meets them all."""
    yield from range(1000)
    for scale in rules.scales:
        for count in range(1, 1000):
            for n in (count * scale.value, count * scale.value + 1):
                if n <= MAX_NUMBER:
                    yield n


def _covering_amounts(rules: _Rules) -> Iterable[int]:
    """Prices that meet every word of the money frames: 0, one, several, counts ending on each
    noun base, each counted in units and plainly (+1 leaves the divisor's frame)."""
    counts = {1, 2} | {k * s.value for s in rules.scales for k in (1, 2)}
    yield 0
    for count in counts:
        for amount in (count, count * rules.divisor, count + 1, count * rules.divisor + 1):
            if amount <= MAX_NUMBER:
                yield amount


def _clip_order(clip: Clip) -> tuple[int, int, str, str]:
    match = _CLIP.fullmatch(clip)
    assert match is not None
    key = match["key"]
    kind = ("num", "scale", "word", "month").index(match["kind"])
    return (kind, int(key) if key.isdigit() else -1, key, match["form"] or "")


# --- reading the rules ------------------------------------------------------------------------


@lru_cache(maxsize=None)
def has_rules(lang: str) -> bool:
    """Whether a native speaker has written `rules/<lang>.toml`. A language without (one staff
    added in the console) has its numbers said by its fallback's rules: menus.languages."""
    return isinstance(lang, str) and bool(re.fullmatch(r"[a-z]{2,3}", lang)) and (
        resources.files(__package__).joinpath("rules", f"{lang}.toml").is_file()
    )


@lru_cache(maxsize=None)  # read once per process: a reviewer's change needs a restart
def _rules(lang: str) -> _Rules:
    if not isinstance(lang, str) or not re.fullmatch(r"[a-z]{2,3}", lang):
        raise ValueError(f"not a language code: {lang!r}")
    source = resources.files(__package__).joinpath("rules", f"{lang}.toml")
    if not source.is_file():
        raise ValueError(f"no number rules for language {lang!r}")
    try:
        return _parse(tomllib.loads(source.read_text(encoding="utf-8")), lang)
    except KeyError as error:
        raise RulesError(f"rules/{lang}.toml: missing {error}") from error
    except (tomllib.TOMLDecodeError, TypeError, ValueError) as error:
        raise RulesError(f"rules/{lang}.toml: {error}") from error


def _parse(data: Mapping[str, Any], lang: str) -> _Rules:
    numbers = data["numbers"]
    compound = numbers["compound"]
    words = {str(k): _text(v, f"words.{k}") for k, v in data.get("words", {}).items()}
    for key in words:
        if not _KEY.fullmatch(key):
            raise ValueError(f"word key {key!r}: use lower-case letters, digits and _ only")
    money = data["money"]
    divisor = int(money["divisor"])
    if divisor < 1:
        raise ValueError("money.divisor must be 1 or more")
    rules = _Rules(
        lang=lang,
        units=tuple(_text(u, "numbers.units") for u in numbers["units"]),
        tens=tuple(sorted(((int(k), _text(v, f"numbers.tens.{k}")) for k, v in numbers["tens"].items()),
                          reverse=True)),
        joiner=str(compound["joiner"]),
        et_joiner=str(compound.get("et_joiner", "")),
        et_units=frozenset(int(u) for u in compound.get("et_units", ())),
        et_tens=frozenset(int(t) for t in compound.get("et_tens", ())),
        plural_suffix=str(compound.get("plural_suffix", "")),
        plural_tens=frozenset(int(t) for t in compound.get("plural_tens", ())),
        order=_one_of(numbers["parts"]["order"], _ORDERS, "numbers.parts.order"),
        part_joiner=str(numbers["parts"].get("joiner", "")),
        scales=tuple(sorted((_scale(s) for s in numbers["scales"]), key=lambda s: -s.value)),
        words=words,
        divisor=divisor,
        counted=_frame(money["counted"], "money.counted"),
        plain=_frame(money["plain"], "money.plain") if divisor > 1 else None,
        percent=_frame(data["percent"], "percent"),
        date_say=tuple(str(item) for item in data["date"]["say"]),
        first_day=str(data["date"].get("first_day", "")),
        months=tuple(_text(m, "date.months") for m in data["date"]["months"]),
    )
    _check(rules)
    return rules


def _scale(table: Mapping[str, Any]) -> _Scale:
    value = int(table["value"])
    return _Scale(
        value=value,
        word=_text(table["word"], f"scale {value}"),
        plural=str(table.get("plural", "")),
        plural_only_final=bool(table.get("plural_only_final", False)),
        say_one=bool(table["say_one"]),
        noun=bool(table.get("noun", False)),
    )


def _frame(table: Mapping[str, Any], where: str) -> _Frame:
    return _Frame(
        word=str(table.get("word", "")),
        position=_one_of(table.get("position", "after"), _POSITIONS, f"{where}.position"),
        singular=str(table.get("singular", "")),
        singular_up_to=int(table.get("singular_up_to", -1)),
        after_noun=str(table.get("after_noun", "")),
    )


def _check(rules: _Rules) -> None:
    """Refuse, at load, rules that would fail on some number or name a missing word."""
    if not rules.units:
        raise ValueError("numbers.units is empty")
    if len(rules.months) != 12:
        raise ValueError("date.months must name 12 months")
    if not rules.scales or rules.scales[-1].value != 100:
        raise ValueError("numbers.scales must start at 100: below it every number is one clip")
    for n in range(100):
        tens = [t for t, _ in rules.tens if t <= n]
        if n >= len(rules.units) and (not tens or n - tens[0] >= len(rules.units)):
            raise ValueError(f"cannot say {n}: no ten in numbers.tens leaves a unit")
    used = [rules.part_joiner, rules.first_day, *(i for i in rules.date_say if i not in _DATE_FIELDS)]
    frames = [rules.counted, rules.percent] + ([rules.plain] if rules.plain else [])
    for frame in frames:
        used += [frame.word, frame.singular, frame.after_noun]
    for key in used:
        if key and key not in rules.words:
            raise ValueError(f"{key!r} is used but not defined in [words]")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: every word must be a non-empty text")
    return value


def _one_of(value: object, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return str(value)
