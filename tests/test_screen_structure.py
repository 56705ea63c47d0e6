"""Structured screens (issue 16 item 1): the menus build phrases, each channel renders them.

The golden table pins USSD text byte for byte: it was recorded from the engine as it stood before
screens were built from phrases, over every main-menu branch in both languages, paging, errors,
end screens, staff overrides, other budgets and seeded random paths. Regenerate it only for an
intended change of wording: SUGU_WRITE_GOLDEN=1 pytest tests/test_screen_structure.py.
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
