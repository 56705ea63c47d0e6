"""Structured screens (issue 16 item 1): the menus build phrases, each channel renders them.

The golden table pins USSD text byte for byte: it was recorded from the engine as it stood before
screens were built from phrases, over every main-menu branch in both languages, paging, errors,
end screens, staff overrides, other budgets and seeded random paths. Each record keeps its inputs;
they replay over the data the menu tests use (tests.fakes, the trend screens' histories). Regenerate
it only for an intended change of wording or of that data, and read the diff (one screen a line):
SUGU_WRITE_GOLDEN=1 pytest tests/test_screen_structure.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path

import pytest

from menus import EngineConfig, Profile, run
from menus.types import Crop, Market, Subscription, Term
from messages import default_catalog
from tests.fakes import demo_view
from tests.test_menus import JOURNEYS, NOW, PHONE, SUBS, stress_view
from tests.test_services_menu import SCREENS as SERVICE_SCREENS
from tests.test_trend_screens import SCREENS as TREND_SCREENS
from tests.test_trend_screens import history_view, monthly_view

GOLDEN = Path(__file__).parent / "data" / "ussd_golden.json"


@dataclasses.dataclass
class TermsView(type(demo_view())):
    """The demo data with unit and kind names of its own, a retired crop and market, and
    Bambara market names: the paths where names come from the data rather than the catalog."""

    unit_list: list = dataclasses.field(default_factory=list)
    kind_list: list = dataclasses.field(default_factory=list)

    def units(self):
        return list(self.unit_list)

    def kinds(self):
        return list(self.kind_list)


def terms_view():
    base = demo_view()
    view = TermsView(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    view.unit_list = [Term("basket", "panier tressé", "sɛgi"), Term("kg", "kilo", "kilo")]
    view.kind_list = [Term("wholesale", "en gros", "caaman"), Term("retail", "au détail", "kelen kelen")]
    view.crop_list = base.crop_list + [Crop(9, "Gombo", "Gan", "kg", active=False)]
    view.market_list = [dataclasses.replace(m, name_bm=f"{m.name}-dugu") if m.id in (1, 6) else m for m in base.market_list]
    view.market_list.append(Market(8, "Kita", "Kayes", active=False))
    return view


VIEWS = {
    "demo": demo_view,
    "history": history_view,
    "monthly": lambda: monthly_view(65),
    "monthly-old": lambda: monthly_view(0),
    "stress": stress_view,
    "terms": terms_view,
}
CATALOGS = {
    "files": default_catalog,
    # A staff override that works, one whose placeholder is unknown (falls back to the file),
    # one that drops a value: the catalog's own fallbacks must survive the refactor too.
    "overrides": lambda: default_catalog().with_overrides({
        ("fr", "main.title"): "Sugu {inconnu}", ("bm", "main.title"): "Sugu kura",
        ("fr", "prices.detail"): "{price} F ({kind}), {date}", ("fr", "demands.option"): "{buyer} veut {crop}",
        ("bm", "prices.line"): "{market}: {price}", ("fr", "trend.latest"): "Prix {price} F",
    }),
}
SUB_SETS = {"none": (), "two": SUBS, "unknown": (Subscription(1, 99), Subscription(77, 1))}


def hop(case: dict):
    inputs = case["path"].split("*") if case["path"] else []
    profile = Profile(
        phone=PHONE, language=case["lang"], subscriptions=SUB_SETS[case["subs"]],
        region=case.get("region", ""), opted_out=case.get("opted_out", False),
    )  # fmt: skip
    return run(
        inputs, profile=profile, data=_view(case["view"]), catalog=_catalog(case.get("catalog", "files")), now=NOW,
        config=EngineConfig(max_chars=case.get("budget", 160)),
    )  # fmt: skip


_views: dict = {}
_catalogs: dict = {}


def _view(name):
    if name not in _views:
        _views[name] = VIEWS[name]()
    return _views[name]


def _catalog(name):
    if name not in _catalogs:
        _catalogs[name] = CATALOGS[name]()
    return _catalogs[name]


def recorded(screen) -> dict:
    return {
        "text": screen.text, "end": screen.end, "screen_id": screen.screen_id, "language": screen.language,
        "section": screen.section, "effects": [repr(e) for e in screen.effects],
    }  # fmt: skip


# -- the journeys ------------------------------------------------------------------------------------

def _sub_name(subs) -> str:
    return next(name for name, value in SUB_SETS.items() if value == tuple(subs))


def _with_pages(case: dict, pages: int = 4) -> list[dict]:
    """The case, then each further page while the screen offers one ("98")."""
    out = [case]
    for _ in range(pages):
        if "98." not in hop(out[-1]).text:
            break
        out.append({**out[-1], "path": out[-1]["path"] + "*98"})
    return out


def _random_paths(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    tokens = ["1"] * 6 + ["2"] * 5 + ["3"] * 4 + ["4", "5", "6", "7", "8", "9", "0", "0", "00", "98", "98", "500", "Awa Traore", "x", ""]
    return ["*".join(rng.choice(tokens) for _ in range(rng.randint(1, 9))) for _ in range(count)]


def build_cases() -> list[dict]:
    cases: list[dict] = []

    def add(group, **case):
        cases.append({"group": group, "view": "demo", "lang": "fr", "subs": "none", **case})

    for p in JOURNEYS:
        path, lang, subs = p.values[:3]
        for case in _with_pages({"group": "journeys", "view": "demo", "path": path, "lang": lang, "subs": _sub_name(subs)}):
            cases.append(case)
    for path in ("4", "4*4", "4*2*1*6", "4*1", "1*1*6"):
        add("opted-out", path=path, subs="two", opted_out=True)
    for p in TREND_SCREENS:
        path, lang, region = p.values[:3]
        cases += _with_pages({"group": "trends", "view": "history", "path": path, "lang": lang, "subs": "none", "region": region})
    for view in ("monthly", "monthly-old"):
        for lang in ("fr", "bm"):
            cases += _with_pages({"group": "trends", "view": view, "path": "1*1*3*2", "lang": lang, "subs": "none"})
    for p in SERVICE_SCREENS:
        path, lang, region = p.values[:3]
        cases += _with_pages({"group": "services", "view": "demo", "path": path, "lang": lang, "subs": "none", "region": region})
    # Every screen of every branch, in both languages, with each page.
    branches = [
        "", "1", "1*1", "1*1*1", "1*1*2", "1*1*3", "1*1*4", "1*1*5", "1*1*6", "1*1*6*1", "1*1*6*2", "1*2", "1*2*1", "1*2*2",
        "1*2*3", "1*3", "1*4", "2", "2*1", "2*1*1", "2*1*1*500", "2*1*1*500*1", "2*1*1*500*2", "2*2*1*12", "2*3", "3", "3*1",
        "3*1*1", "3*2", "3*2*1", "3*2*1*1", "3*2*1*2", "3*3", "3*3*1", "4", "4*1", "4*2", "4*2*2", "4*2*2*3", "4*3", "4*3*1",
        "4*4", "4*4*1", "4*4*2", "5", "5*1", "5*1*Awa", "5*2", "5*2*Koutiala", "5*3", "5*3*1", "5*4", "5*4*Benkadi", "5*2*a",
        "6", "6*1", "6*2", "7", "7*1", "7*1*1", "7*1*1*1", "7*1*1*1*1", "7*1*2", "7*2", "7*3", "7*4", "7*4*1", "7*4*1*1", "7*4*2",
        "1*1*6*0", "1*1*00", "98", "0", "9", "1*0*0", "2*1*1*" + "9" * 41, "1*" + "*".join(["98"] * 3),
    ]  # fmt: skip
    for lang in ("fr", "bm"):
        for subs in ("none", "two"):
            for path in branches:
                cases += _with_pages({"group": "branches", "view": "demo", "path": path, "lang": lang, "subs": subs, "region": "Sikasso"})
    for path in ("", "1", "2", "3"):
        add("first-call", path=path, lang=None)
    for path in ("*".join(["1", "0"] * 21), "*".join(["1"] * 41)):
        for lang in ("fr", "bm"):
            add("too-long", path=path, lang=lang)
    for view in ("stress", "terms"):
        for lang in ("fr", "bm"):
            for path in branches[:40]:
                cases += _with_pages({"group": view, "view": view, "path": path, "lang": lang, "subs": "unknown" if view == "terms" else "two"}, pages=2)
    for budget in (80, 120, 182):
        for path in branches[:30] + ["1*1*6*2", "1*1*6*2*98"]:
            add("budgets", view="history", path=path, lang="bm" if budget == 120 else "fr", budget=budget)
    for lang in ("fr", "bm"):
        for path in ("", "1*1*6", "1*1*1", "1*1*6*2", "2", "9"):
            add("overrides", path=path, lang=lang, catalog="overrides", view="history")
    for seed, view in enumerate(("demo", "demo", "history", "stress", "terms")):
        for i, path in enumerate(_random_paths(seed, 120)):
            add("random", view=view, path=path, lang=(None, "fr", "bm")[i % 3], subs=("none", "two", "unknown")[i % 3 if view == "terms" else i % 2])
    return cases


def _golden() -> list[dict]:
    if os.environ.get("SUGU_WRITE_GOLDEN") == "1":
        records = [{"case": case, "screen": recorded(hop(case))} for case in build_cases()]
        GOLDEN.parent.mkdir(exist_ok=True)
        # One screen a line: a change of wording shows as a readable diff.
        GOLDEN.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return [json.loads(line) for line in GOLDEN.read_text("utf-8").splitlines()]


GOLDEN_RECORDS = _golden()
GROUPS = sorted({r["case"]["group"] for r in GOLDEN_RECORDS})


@pytest.mark.parametrize("group", GROUPS)
def test_ussd_screens_are_byte_for_byte_the_recorded_ones(group):
    differ = []
    for record in (r for r in GOLDEN_RECORDS if r["case"]["group"] == group):
        got = recorded(hop(record["case"]))
        if got != record["screen"]:
            differ.append(f"{record['case']}\nwas: {record['screen']}\nnow: {got}")
    assert not differ, f"{len(differ)} screens differ; first:\n" + "\n\n".join(differ[:3])


def test_golden_table_is_broad():
    """Every main-menu branch and both languages; paging, errors and end screens included."""
    screens = [r["screen"] for r in GOLDEN_RECORDS]
    ids = {s["screen_id"] for s in screens}
    assert {"main", "price_one", "price_all", "best_markets", "price_trend", "demand", "offer_confirm", "tip", "alerts",
            "profile", "profile_edit", "language", "service", "lang_first"} <= ids  # fmt: skip
    assert {s["language"] for s in screens} == {"fr", "bm"}
    assert any(s["end"] for s in screens) and any("98." in s["text"] for s in screens)
    assert any(s["text"].startswith(("Choix invalide.", "Sugandili ma nye.")) for s in screens)
    assert len(screens) >= 1000


# -- the structure each hop carries (Screen.structure) -----------------------------------------------

import datetime as dt  # noqa: E402
import re  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from menus.paging import Item, paginate_shown  # noqa: E402
from menus.screen import (  # noqa: E402
    FREE_TEXT, NOTHING, QUANTITY, Choice, CropRef, Day, KindRef, LanguageRef, MarketRef, Money, Number, Pair, Percent,
    Phone, Phrase, Quantity, RegionRef, Text, UnitRef, phrase,
)  # fmt: skip
from menus.wording import Wording  # noqa: E402
from messages import to_ussd  # noqa: E402
from tests.fakes import TODAY  # noqa: E402

VOCABULARY = (Phrase, Pair, Money, Quantity, Day, Percent, Number, Phone, CropRef, MarketRef, RegionRef, UnitRef, KindRef,
              LanguageRef, Text)
_OPTION = re.compile(r"^(\d+)\. ")


class Names:
    """Names straight from a data view, for wording a structure independently of the engine."""

    def __init__(self, view):
        self.view = view

    def crop(self, crop_id):
        return next((c for c in self.view.crops() if c.id == crop_id), None)

    def market(self, market_id):
        return next((m for m in self.view.markets() if m.id == market_id), None)

    def terms(self, what):
        source = getattr(self.view, what, None)
        return {t.code: t for t in source()} if source else {}


def parts_of(part):
    """A part and every part inside it."""
    yield part
    if isinstance(part, Phrase):
        for _, value in part.values:
            yield from parts_of(value)
    elif isinstance(part, Pair):
        yield from parts_of(part.first)
        yield from parts_of(part.second)


def layout_parts(layout):
    return [p for top in (layout.title, *layout.body, *layout.lines, *layout.options) if top is not None for p in parts_of(top)]


@pytest.mark.parametrize("group", GROUPS)
def test_structure_agrees_with_the_text(group):
    """On every golden screen: the option numbers in the text are the page's options, no more;
    "98" shows exactly when the structure says more follows; each fact line of the page is a
    line of the text; prose on the page has words on it; values are of the vocabulary, never
    a bare string or number; the notice is the line shown in place of the title."""
    for record in (r for r in GOLDEN_RECORDS if r["case"]["group"] == group):
        case = record["case"]
        screen = hop(case)
        page, text = screen.structure, screen.text
        where = f"{case}:\n{text}"
        lines = text.split("\n")
        wording = Wording(_catalog(case.get("catalog", "files")), Names(_view(case["view"])))
        word = lambda part: to_ussd(wording.text(part, screen.language))  # noqa: E731
        assert page.end is screen.end, where
        assert all(isinstance(p, VOCABULARY) for p in layout_parts(page.layout)), where
        if screen.end:
            assert page.layout.title is None and word(page.body[0]).startswith(text.removesuffix("...")), where
            continue
        numbers = [int(m.group(1)) for line in lines[1:] if (m := _OPTION.match(line))]
        assert numbers == [c.number for c in page.options], where
        assert all(f"{c.number}. {word(c.label)}".startswith(line.removesuffix("...")) for c, line in
                   zip(page.options, [line for line in lines[1:] if _OPTION.match(line)])), where  # fmt: skip
        assert page.more is lines[-1].startswith("98."), where
        assert page.layout.nav is (" 00." in lines[-1] or lines[-1].startswith("0.")) or not page.layout.nav and "00." not in lines[-1], where
        for part in page.lines:
            assert word(part).strip() in lines or any(line.endswith("...") and word(part).startswith(line[:-3]) for line in lines), where
        for part in page.body:
            prose = word(part).replace("\n", " ")
            assert any(line and line in prose for line in lines[1:]), where
        if page.notice is not None:
            assert lines[0].removesuffix("...") in word(page.notice).replace("\n", " "), where
        else:
            assert lines[0] == word(page.layout.title).split("\n")[0][: len(lines[0])].rstrip() or lines[0].endswith("..."), where


def value(page, where, key, name):
    """The value of placeholder `name` in the first phrase `key` of the page (title, body, lines)."""
    for top in (page.layout.title, *page.body, *page.lines, page.notice):
        for part in parts_of(top):
            if isinstance(part, Phrase) and part.key == key:
                return part.value(name)
    raise AssertionError(f"no {key} in {where}")


WEEK = dt.timedelta(days=7)

# (path, where on the page, catalog key, placeholder, the typed value it carries)
VALUES = [
    pytest.param("1*1*6", "body", "prices.detail", "price", Money(14000), id="price"),
    pytest.param("1*1*6", "body", "prices.detail", "unit", UnitRef("basket"), id="price-unit"),
    pytest.param("1*1*6", "body", "prices.detail", "kind", KindRef("wholesale"), id="price-kind"),
    pytest.param("1*1*6", "body", "prices.detail", "date", Day(TODAY), id="price-day"),
    pytest.param("1*1*6", "body", "prices.detail", "age", NOTHING, id="fresh-price-says-no-age"),
    pytest.param("1*1*4", "body", "prices.detail", "age", phrase("prices.age_weeks", weeks=Number(4)), id="old-price-age"),
    pytest.param("1*1*6", "body", "prices.change", "change", Percent(8), id="change"),
    pytest.param("1*1*6", "body", "prices.change", "previous", Money(13000), id="previous-price"),
    pytest.param("1*1*6", "body", "prices.change", "previous_date", Day(TODAY - WEEK), id="previous-day"),
    pytest.param("1*1*6", "title", "prices.detail_title", "market", MarketRef(1), id="market-title"),
    pytest.param("1*1*1", "lines", "prices.line", "price", Money(650, "kg"), id="other-unit-said-with-amount"),
    pytest.param("1*1*1", "lines", "prices.line", "market", MarketRef(7, "Bamako"), id="market-line"),
    pytest.param("1*2*2", "lines", "prices.best_line", "price", Money(1075), id="best-price"),
    pytest.param("2*1", "body", "demands.detail", "quantity", Quantity(20000), id="demand-quantity"),
    pytest.param("2*1", "body", "demands.detail", "until", Day(TODAY + 30 * dt.timedelta(days=1), year=True), id="demand-until"),
    pytest.param("2*1", "body", "demands.detail", "buyer", Text("Lawal Int."), id="buyer-is-staff-text"),
    pytest.param("2*1*1*500", "body", "offer.confirm", "quantity", Quantity(500), id="offer-quantity"),
    pytest.param("2*1*1*500*1", "body", "offer.thanks", "crop", CropRef(2), id="end-screen-phrase"),
    pytest.param("7*1*3*1", "body", "services.entry", "phone", Phone("+22320620000"), id="phone"),
    pytest.param("7*1", "title", "services.choose_region", "category", phrase("services.category.microfinance"), id="nested-phrase"),
    pytest.param("4*1", "lines", "alerts.item", "crop", CropRef(1), id="subscription-crop"),
]  # fmt: skip


@pytest.mark.parametrize("path, where, key, name, expected", VALUES)
def test_phrases_carry_typed_values(path, where, key, name, expected):
    screen = hop({"view": "demo", "path": path, "lang": "bm", "subs": "two"})
    page = screen.structure
    assert value(page, f"{path}:\n{screen.text}", key, name) == expected
    assert any(part is not None and any(isinstance(p, Phrase) and p.key == key for p in parts_of(part))
               for part in {"title": (page.layout.title,), "body": page.body, "lines": page.lines}[where])  # fmt: skip


def test_trend_lines_are_values_too():
    case = {"view": "history", "path": "1*1*6*2", "lang": "fr", "subs": "none"}
    page = hop(case).structure
    kinds = {type(p) for line in page.layout.lines for p in parts_of(line)} - {Phrase}
    assert {Percent, Money, UnitRef, Day, Number} <= kinds
    assert not any(isinstance(p, Text) for line in page.layout.lines for p in parts_of(line))
    forecast = next(p for line in page.layout.lines for p in parts_of(line) if isinstance(p, Phrase) and p.key.startswith("trend.forecast"))
    when = forecast.value("when")
    assert when.key == "trend.when_week" and isinstance(when.value("date"), Day)


# (path, language, options as the whole layout has them, options on the page shown, fact lines on
# the page shown, more?, nav?, entry)
SHAPES = [
    pytest.param("", "fr", [phrase(f"main.{k}") for k in ("prices", "demands", "tips", "alerts", "profile", "language", "services")],
                 range(1, 8), 0, False, False, "", id="main-menu-without-nav"),
    pytest.param("1", "fr", [CropRef(i) for i in (1, 2, 3, 4)], range(1, 5), 0, False, True, "", id="crops"),
    pytest.param("5", "fr", [phrase(f"profile.edit.{k}") for k in ("name", "village", "region", "cluster")], range(1, 3), 4, True, True, "", id="profile-page-one"),
    pytest.param("5*98", "fr", [phrase(f"profile.edit.{k}") for k in ("name", "village", "region", "cluster")], range(3, 5), 0, False, True, "", id="profile-page-two"),
    pytest.param("2*1*1", "fr", [], range(0), 0, False, True, QUANTITY, id="quantity-entry"),
    pytest.param("5*1", "bm", [], range(0), 0, False, True, FREE_TEXT, id="text-entry"),
    pytest.param("1*2*1", "fr", [], range(0), 4, True, True, "", id="facts-paged"),
    pytest.param("1*2*1*98", "fr", [], range(0), 3, False, True, "", id="facts-page-two"),
]  # fmt: skip


@pytest.mark.parametrize("path, lang, options, shown, lines, more, nav, entry", SHAPES)
def test_page_shape(path, lang, options, shown, lines, more, nav, entry):
    page = hop({"view": "demo", "path": path, "lang": lang, "subs": "none"}).structure
    assert list(page.layout.options) == options
    assert page.layout.choices() == tuple(Choice(n, label) for n, label in enumerate(options, start=1))
    assert [c.number for c in page.options] == list(shown)
    assert len(page.lines) == lines
    assert (page.more, page.layout.nav, page.layout.entry) == (more, nav, entry)


# (path, language at start, the notice, the language the hop answers in)
NOTICES = [
    pytest.param("9", "fr", phrase("error.invalid_choice"), "fr", id="error"),
    pytest.param("98", "bm", phrase("error.no_more"), "bm", id="no-more"),
    pytest.param("2*1*1*abc", "fr", phrase("error.quantity"), "fr", id="bad-quantity"),
    pytest.param("1*1*6*1", "fr", phrase("alerts.subscribed"), "fr", id="confirmation"),
    pytest.param("6*2", "fr", phrase("lang.changed"), "bm", id="said-in-the-new-language"),
    pytest.param("1*1", "fr", None, "fr", id="none"),
]  # fmt: skip


@pytest.mark.parametrize("path, lang, notice, answered_in", NOTICES)
def test_notice_is_structure(path, lang, notice, answered_in):
    screen = hop({"view": "demo", "path": path, "lang": lang, "subs": "none"})
    assert screen.structure.notice == notice
    assert screen.language == answered_in


def test_long_prose_is_on_every_page_it_runs_over():
    paths = ("3*2*1*1", "3*2*1*1*98", "3*2*1*1*98*98")
    pages = [hop({"view": "demo", "path": path, "lang": "fr", "subs": "none"}).structure for path in paths]
    assert pages[0].body == pages[1].body == pages[2].body == pages[0].layout.body  # one tip, three pages
    assert [(p.number, p.count, p.more) for p in pages] == [(0, 3, True), (1, 3, True), (2, 3, False)]


def test_end_screens_are_structure():
    page = hop({"view": "demo", "path": "*".join(["1", "0"] * 21), "lang": "fr", "subs": "none"}).structure
    assert page.end and page.body == (phrase("session.too_long"),) and page.options == ()


@given(
    items=st.lists(st.tuples(st.text(alphabet="abcdef ", min_size=1, max_size=300), st.booleans()), max_size=30),
    budget=st.integers(min_value=80, max_value=182),
)
def test_pages_say_which_items_they_show(items, budget):
    """Every item is on some page, in order; pages share an item only when prose runs over."""
    items = [Item(text.strip() or "x", splittable) for text, splittable in items]
    pages, shown = paginate_shown(["Titre"], items, "0.Retour", "98.Suite 0.Retour", budget)
    assert len(shown) == len(pages)
    assert shown[0].start == 0 and shown[-1].stop == len(items)
    for before, after in zip(shown, shown[1:]):
        assert after.start in (before.stop, before.stop - 1)
        if after.start == before.stop - 1:  # the item split between them is prose
            assert items[after.start].splittable
