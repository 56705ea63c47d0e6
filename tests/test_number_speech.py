"""Numbers, prices, dates and percents spoken as clips (issue 16 item 5).

The tables are written as the words a caller hears (the texts of the clips, joined by spaces), so
that a reviewer reads them as text; a rules change that is meant must be mirrored here.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.voice import numbers
from messages.voice.numbers import all_clips, clip_text, say_date, say_money, say_number, say_percent

LANGS = ("fr", "bm")
BIG = st.integers(min_value=0, max_value=10**9 - 1)


def spoken(clips: tuple[str, ...]) -> str:
    return " ".join(clip_text(clip) for clip in clips)


# --- French ------------------------------------------------------------------------------------

FR_COUNTING = [
    (0, "zéro"),
    (1, "un"),
    (5, "cinq"),
    (10, "dix"),
    (15, "quinze"),
    (16, "seize"),
    (17, "dix-sept"),
    (20, "vingt"),
    (21, "vingt et un"),
    (22, "vingt-deux"),
    (31, "trente et un"),
    (61, "soixante et un"),
    (70, "soixante-dix"),
    (71, "soixante et onze"),
    (72, "soixante-douze"),
    (79, "soixante-dix-neuf"),
    (80, "quatre-vingts"),
    (81, "quatre-vingt-un"),
    (90, "quatre-vingt-dix"),
    (91, "quatre-vingt-onze"),
    (99, "quatre-vingt-dix-neuf"),
    (100, "cent"),
    (101, "cent un"),
    (180, "cent quatre-vingts"),
    (200, "deux cents"),
    (201, "deux cent un"),
    (250, "deux cent cinquante"),
    (280, "deux cent quatre-vingts"),
    (350, "trois cent cinquante"),
    (999, "neuf cent quatre-vingt-dix-neuf"),
    (1000, "mille"),
    (1001, "mille un"),
    (1250, "mille deux cent cinquante"),
    (2000, "deux mille"),
    (14000, "quatorze mille"),
    (21000, "vingt et un mille"),
    (71000, "soixante et onze mille"),
    (80000, "quatre-vingt mille"),
    (81000, "quatre-vingt-un mille"),
    (100000, "cent mille"),
    (180000, "cent quatre-vingt mille"),
    (200000, "deux cent mille"),
    (200080, "deux cent mille quatre-vingts"),
    (1000000, "un million"),
    (1000200, "un million deux cents"),
    (2000000, "deux millions"),
    (2500000, "deux millions cinq cent mille"),
    (21000000, "vingt et un millions"),
    (80000000, "quatre-vingts millions"),
    (200000000, "deux cents millions"),
    (999999999, "neuf cent quatre-vingt-dix-neuf millions neuf cent quatre-vingt-dix-neuf mille "
                "neuf cent quatre-vingt-dix-neuf"),
]

FR_MONEY = [
    (0, "zéro franc"),
    (1, "un franc"),
    (5, "cinq francs"),
    (80, "quatre-vingts francs"),
    (100, "cent francs"),
    (200, "deux cents francs"),
    (250, "deux cent cinquante francs"),
    (350, "trois cent cinquante francs"),
    (1000, "mille francs"),
    (1250, "mille deux cent cinquante francs"),
    (14000, "quatorze mille francs"),
    (80000, "quatre-vingt mille francs"),
    (100000, "cent mille francs"),
    (1000000, "un million de francs"),
    (2500000, "deux millions cinq cent mille francs"),
    (200000000, "deux cents millions de francs"),
]

FR_DATES = [
    (dt.date(2024, 11, 28), "le vingt-huit novembre"),
    (dt.date(2025, 5, 1), "le premier mai"),
    (dt.date(2025, 1, 21), "le vingt et un janvier"),
    (dt.date(2025, 8, 11), "le onze août"),
    (dt.date(2024, 12, 31), "le trente et un décembre"),
    (dt.date(2025, 2, 2), "le deux février"),
]

FR_PERCENT = [
    (0, "zéro pour cent"),
    (1, "un pour cent"),
    (12, "douze pour cent"),
    (80, "quatre-vingts pour cent"),
    (100, "cent pour cent"),
    (250, "deux cent cinquante pour cent"),
]

# --- Bambara: counting plainly (kilograms, quantities, days) -----------------------------------

BM_COUNTING = [
    (0, "fu"),
    (1, "kelen"),
    (2, "fila"),
    (5, "duuru"),
    (7, "wolonwula"),
    (10, "tan"),
    (11, "tan ni kelen"),
    (15, "tan ni duuru"),
    (19, "tan ni kɔnɔntɔn"),
    (20, "mugan"),
    (21, "mugan ni kelen"),
    (30, "bi saba"),
    (34, "bi saba ni naani"),
    (50, "bi duuru"),
    (70, "bi wolonwula"),
    (71, "bi wolonwula ni kelen"),
    (80, "bi seegin"),
    (81, "bi seegin ni kelen"),
    (99, "bi kɔnɔntɔn ni kɔnɔntɔn"),
    (100, "kɛmɛ"),
    (101, "kɛmɛ ni kelen"),
    (123, "kɛmɛ ni mugan ni saba"),
    (200, "kɛmɛ fila"),
    (250, "kɛmɛ fila ni bi duuru"),
    (350, "kɛmɛ saba ni bi duuru"),
    (999, "kɛmɛ kɔnɔntɔn ni bi kɔnɔntɔn ni kɔnɔntɔn"),
    (1000, "waa kelen"),
    (1001, "waa kelen ni kelen"),
    (1250, "waa kelen ni kɛmɛ fila ni bi duuru"),
    (2800, "waa fila ni kɛmɛ seegin"),
    (14000, "waa tan ni naani"),
    (25000, "waa mugan ni duuru"),
    (100000, "waa kɛmɛ"),
    (250000, "waa kɛmɛ fila ni bi duuru"),
    (1000000, "miliyɔn kelen"),
    (2500000, "miliyɔn fila ni waa kɛmɛ duuru"),
    (999999999, "miliyɔn kɛmɛ kɔnɔntɔn ni bi kɔnɔntɔn ni kɔnɔntɔn ni waa kɛmɛ kɔnɔntɔn ni "
                "bi kɔnɔntɔn ni kɔnɔntɔn ni kɛmɛ kɔnɔntɔn ni bi kɔnɔntɔn ni kɔnɔntɔn"),
]

# --- Bambara: prices, counted in 5-franc units (spoken number = price ÷ 5) ---------------------

BM_MONEY = [
    (0, "fu"),
    (5, "kelen"),
    (15, "saba"),
    (25, "duuru"),
    (50, "tan"),
    (100, "mugan"),
    (200, "bi naani"),
    (250, "bi duuru"),
    (350, "bi wolonwula"),
    (500, "kɛmɛ"),
    (1000, "kɛmɛ fila"),
    (1250, "kɛmɛ fila ni bi duuru"),
    (1500, "kɛmɛ saba"),
    (5000, "waa kelen"),
    (14000, "waa fila ni kɛmɛ seegin"),
    (25000, "waa duuru"),
    (100000, "waa mugan"),
    (1000000, "waa kɛmɛ fila"),
    (2500000, "waa kɛmɛ duuru"),
    # Not divisible by 5: counted plainly in francs, never rounded.
    (1, "sefa kelen"),
    (12, "sefa tan ni fila"),
    (1253, "sefa waa kelen ni kɛmɛ fila ni bi duuru ni saba"),
]

BM_DATES = [
    (dt.date(2024, 11, 28), "mugan ni seegin nowanburu"),
    (dt.date(2025, 1, 1), "kelen zanwuye"),
    (dt.date(2025, 3, 15), "tan ni duuru marisi"),
    (dt.date(2025, 5, 31), "bi saba ni kelen mɛ"),
    (dt.date(2024, 10, 5), "duuru ɔkutɔburu"),
    (dt.date(2025, 8, 20), "mugan uti"),
]

BM_PERCENT = [
    (0, "pursan fu"),
    (5, "pursan duuru"),
    (12, "pursan tan ni fila"),
    (100, "pursan kɛmɛ"),
]


TABLES = [
    (say_number, "fr", FR_COUNTING),
    (say_money, "fr", FR_MONEY),
    (say_date, "fr", FR_DATES),
    (say_percent, "fr", FR_PERCENT),
    (say_number, "bm", BM_COUNTING),
    (say_money, "bm", BM_MONEY),
    (say_date, "bm", BM_DATES),
    (say_percent, "bm", BM_PERCENT),
]


@pytest.mark.parametrize(
    "say, lang, value, words",
    [
        pytest.param(say, lang, value, words, id=f"{lang}-{say.__name__.removeprefix('say_')}-{value}")
        for say, lang, table in TABLES
        for value, words in table
    ],
)
def test_spoken_words(say, lang: str, value: object, words: str) -> None:
    assert spoken(say(value, lang)) == words


def test_the_tables_meet_the_bar() -> None:
    """Issue 16's bar: at least 60 cases a language, with the named numbers in them."""
    french = FR_COUNTING + FR_MONEY + FR_DATES + FR_PERCENT
    bambara = BM_COUNTING + BM_MONEY + BM_DATES + BM_PERCENT
    assert len(french) >= 60 and len(bambara) >= 60
    named = {0, 5, 15, 21, 71, 80, 81, 99, 100, 200, 250, 350, 1000, 1250, 14000, 100000, 1000000, 2500000}
    for table in (FR_COUNTING + FR_MONEY, BM_COUNTING + BM_MONEY):
        assert named <= {value for value, _ in table}


# --- the clips themselves ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "say, value, lang, clips",
    [
        pytest.param(say_money, 14000, "fr", ("fr.num.14", "fr.scale.1000", "fr.word.francs"), id="fr-14000"),
        pytest.param(say_number, 71, "fr", ("fr.num.71",), id="fr-71-one-clip"),
        pytest.param(say_number, 80000, "fr", ("fr.num.80.bare", "fr.scale.1000"), id="fr-80000-bare"),
        pytest.param(say_number, 200, "fr", ("fr.num.2", "fr.scale.100.plural"), id="fr-200-cents"),
        pytest.param(say_money, 350, "bm", ("bm.num.70",), id="bm-350F-is-70"),
        pytest.param(say_money, 1250, "bm", ("bm.scale.100", "bm.num.2", "bm.word.and", "bm.num.50"),
                     id="bm-1250F"),
        pytest.param(say_number, 14000, "bm", ("bm.scale.1000", "bm.num.14"), id="bm-14000"),
        pytest.param(say_date, dt.date(2024, 11, 28), "fr", ("fr.word.the", "fr.num.28", "fr.month.11"),
                     id="fr-date"),
    ],
)
def test_clip_ids(say, value: object, lang: str, clips: tuple[str, ...]) -> None:
    assert say(value, lang) == clips


@pytest.mark.parametrize("lang", LANGS)
def test_all_clips_are_texts_staff_can_read(lang: str) -> None:
    clips = all_clips(lang)
    assert len(clips) == len(set(clips))
    assert all(clip.startswith(f"{lang}.") for clip in clips)
    assert all(clip_text(clip).strip() for clip in clips)
    # One clip per number 0–99, plus the bases, the words and the months: a list to record, not a dictionary.
    assert {f"{lang}.num.{n}" for n in range(100)} <= set(clips)
    assert {f"{lang}.month.{m}" for m in range(1, 13)} <= set(clips)
    assert len(clips) < 130


def test_the_only_french_bare_form_is_quatre_vingt() -> None:
    assert [c for c in all_clips("fr") if c.endswith(".bare")] == ["fr.num.80.bare"]
    assert clip_text("fr.num.80.bare") == "quatre-vingt"
    assert clip_text("fr.num.80") == "quatre-vingts"


@pytest.mark.parametrize(
    "clip",
    ["fr.num.100", "fr.num.05", "fr.num.5.bare", "fr.scale.1000.plural", "fr.scale.10", "fr.word.nope",
     "fr.month.13", "fr.month.0", "xx.num.1", "fr.num", "FR.num.1", "bm.word.and.plural", ""],
)
def test_clip_text_refuses_what_no_rule_makes(clip: str) -> None:
    with pytest.raises((KeyError, ValueError)):
        clip_text(clip)


@pytest.mark.parametrize("say", [say_number, say_money, say_percent])
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    "bad, error",
    [(-1, ValueError), (-350, ValueError), (10**9, ValueError), (True, TypeError), (2.5, TypeError)],
)
def test_out_of_range_is_refused(say, lang: str, bad: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        say(bad, lang)


@pytest.mark.parametrize("lang", ["en", "../bm", "", "BM"])
def test_unknown_language_is_refused(lang: str) -> None:
    with pytest.raises(ValueError):
        say_number(1, lang)


# --- properties ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(n=BIG, lang=st.sampled_from(LANGS))
def test_every_number_and_price_uses_only_listed_clips(n: int, lang: str) -> None:
    listed = set(all_clips(lang))
    for clips in (say_number(n, lang), say_money(n, lang), say_percent(n, lang)):
        assert clips and set(clips) <= listed
        assert all(clip_text(clip) for clip in clips)


@settings(deadline=None)
@given(day=st.dates(), lang=st.sampled_from(LANGS))
def test_every_date_uses_only_listed_clips(day: dt.date, lang: str) -> None:
    assert set(say_date(day, lang)) <= set(all_clips(lang))


@settings(max_examples=300, deadline=None)
@given(amount=BIG)
def test_bambara_price_is_the_count_of_five_franc_units(amount: int) -> None:
    if amount % 5 == 0:
        assert say_money(amount, "bm") == say_number(amount // 5, "bm")
    else:
        assert say_money(amount, "bm") == ("bm.word.franc", *say_number(amount, "bm"))


_FR_UNITS = ("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
             "dix-sept dix-huit dix-neuf").split()
_FR_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante", 8: "quatre-vingt"}


def _fr_reference(n: int) -> str:
    """French written the textbook way, independently of the rules file: build every "cents" and
    "quatre-vingts" with its s, then drop the s where another number word follows it."""

    def below_100(n: int) -> str:
        if n < 20:
            return _FR_UNITS[n]
        tens, unit = divmod(n, 10)
        if tens in (7, 9):  # soixante-dix, quatre-vingt-dix: the ten below, then ten to nineteen
            tens, unit = tens - 1, unit + 10
        if unit == 0:
            return _FR_TENS[tens] + ("s" if tens == 8 else "")
        link = " et " if unit in (1, 11) and tens != 8 else "-"
        return _FR_TENS[tens] + link + _FR_UNITS[unit]

    def below_1000(n: int) -> str:
        hundreds, rest = divmod(n, 100)
        words = []
        if hundreds:
            words.append("cent" if hundreds == 1 else _FR_UNITS[hundreds] + " cents")
        if rest:
            words.append(below_100(rest))
        return " ".join(words)

    if n == 0:
        return "zéro"
    millions, rest = divmod(n, 10**6)
    thousands, units = divmod(rest, 1000)
    words = []
    if millions:
        words.append(below_1000(millions) + (" million" if millions == 1 else " millions"))
    if thousands:
        words.append("mille" if thousands == 1 else below_1000(thousands) + " mille")
    if units:
        words.append(below_1000(units))
    text = " ".join(words)
    text = re.sub(r"\bcents (?=[^m]|mille)", "cent ", text)  # "deux cent mille", "deux cent un"
    text = re.sub(r"\bvingts (?=mille)", "vingt ", text)  # "quatre-vingt mille"
    return text


@settings(max_examples=500, deadline=None)
@given(n=BIG)
def test_french_agrees_with_an_independent_reference(n: int) -> None:
    assert spoken(say_number(n, "fr")) == _fr_reference(n)


def test_french_reference_knows_the_hard_cases() -> None:
    """The reference itself, on the cases it exists for (a reference that is wrong proves nothing)."""
    assert _fr_reference(80_000) == "quatre-vingt mille"
    assert _fr_reference(200_001) == "deux cent mille un"
    assert _fr_reference(280_000_000) == "deux cent quatre-vingts millions"
    assert _fr_reference(71) == "soixante et onze"
    assert _fr_reference(91) == "quatre-vingt-onze"


def test_french_agrees_with_the_reference_on_every_group() -> None:
    """Every number below 2,000, and every multiplier of mille and million, alone and followed."""
    groups = {k * scale + rest for k in range(1, 1000) for scale in (1000, 10**6) for rest in (0, 1, 80, 200)}
    cases = sorted(set(range(2000)) | groups)
    assert [n for n in cases if spoken(say_number(n, "fr")) != _fr_reference(n)] == []


# --- rules are data ----------------------------------------------------------------------------------


def _rules_from(lang: str, edit) -> numbers._Rules:
    text = resources.files("messages.voice").joinpath("rules", f"{lang}.toml").read_text(encoding="utf-8")
    return numbers._parse(edit(tomllib.loads(text)), lang)


def test_a_reviewers_word_changes_the_text_not_the_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    def seven_as_wolonfila(data: dict) -> dict:
        data["numbers"]["units"][7] = "wolonfila"
        data["numbers"]["tens"]["70"] = "bi wolonfila"
        return data

    edited = _rules_from("bm", seven_as_wolonfila)
    monkeypatch.setattr(numbers, "_rules", lambda lang: edited)
    assert say_money(350, "bm") == ("bm.num.70",)
    assert clip_text("bm.num.70") == "bi wolonfila"


def test_the_money_frame_is_a_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    def plain_francs(data: dict) -> dict:
        data["money"]["divisor"] = 1
        return data

    monkeypatch.setattr(numbers, "_rules", lambda lang: _rules_from("bm", plain_francs))
    assert spoken(say_money(350, "bm")) == "kɛmɛ saba ni bi duuru"


@pytest.mark.parametrize(
    "lang, edit, problem",
    [
        pytest.param("fr", lambda d: d["numbers"]["tens"].pop("60") and d, "cannot say 70", id="missing-ten"),
        pytest.param("bm", lambda d: d["words"].pop("and") and d, "'and' is used", id="missing-word"),
        pytest.param("fr", lambda d: d["date"]["months"].pop() and d, "12 months", id="eleven-months"),
        pytest.param("bm", lambda d: d["numbers"]["parts"].update(order="after") or d, "order",
                     id="bad-order"),
        pytest.param("fr", lambda d: d["words"].update(the="  ") or d, "non-empty", id="empty-word"),
    ],
)
def test_broken_rules_are_refused_when_read(lang: str, edit, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _rules_from(lang, edit)


@pytest.mark.parametrize("lang", LANGS)
def test_each_rules_file_says_who_reviews_it_and_how_to_test(lang: str) -> None:
    text = resources.files("messages.voice").joinpath("rules", f"{lang}.toml").read_text(encoding="utf-8")
    head = text.split("\n\n")[0]
    assert head.startswith("#") and "review" in head.lower() and "tests/test_number_speech.py" in text


def test_the_bambara_rules_mark_what_is_attested() -> None:
    text = resources.files("messages.voice").joinpath("rules", "bm.toml").read_text(encoding="utf-8")
    for mark in ("[attested]", "[derived]", "[?]"):
        assert mark in text


def test_no_words_in_python() -> None:
    """The module interprets the rules; the words are in the TOML files only."""
    source = resources.files("messages.voice").joinpath("numbers.py").read_text(encoding="utf-8")
    code = re.sub(r'""".*?"""', "", source, flags=re.S)  # docstrings may quote examples
    code = "\n".join(line.split("#")[0] for line in code.splitlines())
    for word in ("vingt", "mille", "francs", "kɛmɛ", "waa", "mugan", "novembre", "nowanburu", "sefa"):
        assert word not in code
