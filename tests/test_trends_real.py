"""Trends and forecasts held to their claims on real monthly history (WFP Benin, the file in
/work/shared/data) and on synthetic series of known behaviour, the way bench/forecast_backtest.py
measures them: every origin forecast from the history up to it only."""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

import pytest

from bench.forecast_backtest import Tally, load_csv, replay, trend_availability
from menus import trends

REAL = Path("/work/shared/data/wfp-benin-vegetables.csv")
needs_real = pytest.mark.skipif(not REAL.exists(), reason="the real WFP file is not on this machine")


@pytest.fixture(scope="module")
def real_rows():
    return load_csv(str(REAL))


@pytest.fixture(scope="module")
def real_tally(real_rows):
    tally = Tally()
    for obs in real_rows.values():
        replay(trends.build_series(obs), tally, min_points=4)
    return tally


@needs_real
def test_real_file_is_read_by_column_names(real_rows):
    assert len(real_rows) > 250
    cadences = {trends.build_series(obs).cadence for obs in real_rows.values() if len(obs) >= 6}
    assert cadences == {trends.MONTHLY}
    assert all(r[0] > 0 for obs in real_rows.values() for r in obs)  # zero placeholders skipped


@needs_real
def test_real_monthly_series_get_a_trend(real_rows):
    """Finding: farmers never got a trend on real monthly series. Bar: ≥ 90 % of series with a
    price in the last two months, "today" being 10 days after the series' last price."""
    given = cases = 0
    for obs in real_rows.values():
        g, c = trend_availability(obs, every_price=False)
        given, cases = given + g, cases + c
    assert given / cases >= 0.9, (given, cases)


@needs_real
def test_real_shown_forecasts_beat_the_last_price(real_tally):
    for key, pairs in real_tally.shown.items():
        shown, last = sum(a for a, _ in pairs) / len(pairs), sum(b for _, b in pairs) / len(pairs)
        assert shown <= last, (key, shown, last)


@needs_real
def test_real_ranges_hold_80_percent(real_tally):
    """Out of sample: a range given at an origin comes from errors scored before it."""
    for (what, cadence, h), hits in real_tally.hits.items():
        if len(hits) >= 200:
            assert 0.75 <= sum(hits) / len(hits) <= 0.85, (what, cadence, h, sum(hits) / len(hits))
    every = [x for hits in real_tally.hits.values() for x in hits]
    assert 0.75 <= sum(every) / len(every) <= 0.85


def monthly_rows(prices, last=dt.date(2026, 11, 15)):
    out = []
    for back, price in enumerate(reversed(prices)):
        index = last.year * 12 + last.month - 1 - back
        out.append((price, "kg", "retail", dt.date(index // 12, index % 12 + 1, 15)))
    return out


def walk(n, step, seed, season=0.0):
    rng = random.Random(seed)
    level, out = math.log(500), []
    for m in range(n):
        out.append(round(math.exp(level + season * math.sin(2 * math.pi * m / 12))))
        level += rng.gauss(0, step)
    return out


# (name, series maker, forecasts expected to be shown)
SYNTHETIC = [
    pytest.param(lambda seed: walk(36, 0.08, seed), False, id="random-walk-no-forecast"),
    pytest.param(lambda seed: walk(48, 0.03, seed, season=0.35), True, id="strong-season-forecast"),
]


@pytest.mark.parametrize("make, shows", SYNTHETIC)
def test_synthetic_monthly_series(make, shows):
    """Not tuned to one file: on random walks nothing is shown and the usual ranges hold 80 %;
    on a strong season the seasonal forecast is shown, beats the last price and its range holds."""
    tally = Tally()
    for seed in range(40):
        replay(trends.build_series(monthly_rows(make(seed))), tally, min_points=4)
    shown = [p for pairs in tally.shown.values() for p in pairs]
    if not shows:
        assert len(shown) <= 0.02 * sum(len(h) for h in tally.hits.values())
    else:
        assert shown and sum(a for a, _ in shown) < sum(b for _, b in shown)
    every = [x for hits in tally.hits.values() for x in hits]
    assert 0.75 <= sum(every) / len(every) <= 0.88, sum(every) / len(every)


CADENCES = [
    pytest.param([dt.date(2026, 1, 3) + dt.timedelta(weeks=w) for w in range(20)], trends.WEEKLY, id="weekly"),
    pytest.param([dt.date(2026, 1, 3) + dt.timedelta(weeks=2 * w) for w in range(20)], trends.WEEKLY, id="every-other-week"),
    pytest.param([dt.date(2024 + m // 12, m % 12 + 1, 15) for m in range(20)], trends.MONTHLY, id="monthly"),
    pytest.param([dt.date(2024 + m // 12, m % 12 + 1, 15) for m in range(20) if m % 5], trends.MONTHLY, id="monthly-gaps"),
    pytest.param([dt.date(2020 + m // 12, m % 12 + 1, 15) for m in range(0, 60, 4)], trends.IRREGULAR, id="every-four-months"),
    pytest.param([dt.date(2023 + m // 12, m % 12 + 1, 15) for m in range(24)]
                 + [dt.date(2025, 1, 4) + dt.timedelta(weeks=w) for w in range(14)], trends.WEEKLY, id="monthly-then-weekly"),
    pytest.param([dt.date(2026, 1, 3)], trends.IRREGULAR, id="one-day"),
]  # fmt: skip


@pytest.mark.parametrize("days, cadence", CADENCES)
def test_cadence_is_detected(days, cadence):
    assert trends.detect_cadence(days) == cadence


# (name, monthly prices or None, last month shift, today, reason)
REASONS = [
    pytest.param(walk(30, 0.08, 1), dt.date(2026, 11, 15), dt.date(2026, 11, 25), trends.NO_SKILL, id="no-skill"),
    pytest.param(walk(30, 0.08, 1), dt.date(2021, 6, 15), dt.date(2026, 11, 25), trends.TOO_OLD, id="five-years-old"),
    pytest.param(walk(5, 0.08, 1), dt.date(2026, 11, 15), dt.date(2026, 11, 25), trends.TOO_SHORT, id="too-short"),
]  # fmt: skip


@pytest.mark.parametrize("prices, last, today, reason", REASONS)
def test_no_forecast_names_its_true_reason(prices, last, today, reason):
    """Finding: a five-year-old series was said to lack past forecasts."""
    found = trends.report(monthly_rows(prices, last), today)
    assert found.outlook.reason == reason
    assert found.outlook.cadence == trends.MONTHLY
    assert bool(found.outlook.usual) == (reason == trends.NO_SKILL)


def test_irregular_reports_get_no_forecast():
    rows = monthly_rows(walk(40, 0.05, 2))[::4]
    found = trends.report(rows, dt.date(2026, 11, 25))
    assert found.series.cadence == trends.IRREGULAR
    assert found.outlook.reason == trends.IRREGULAR_REASON


def month_days(months, start=2020):
    return [dt.date(start + m // 12, m % 12 + 1, 15) for m in months]


# (monthly reporting with missed months, as WFP series have it)
GAPPY_MONTHS = [
    pytest.param(month_days(m for m in range(36) if m % 3), trends.MONTHLY, id="one-month-in-three-missing"),
    pytest.param(month_days(range(0, 36, 2)), trends.MONTHLY, id="every-other-month"),
    pytest.param(month_days(range(0, 36, 3)), trends.IRREGULAR, id="every-three-months"),
]


@pytest.mark.parametrize("days, cadence", GAPPY_MONTHS)
def test_monthly_series_missing_months_is_monthly(days, cadence):
    """Finding (real Kenyan WFP history): a monthly series missing half its months has gaps of 1
    and 2 months, whose median (~46 days) fell past the monthly cut: 15 of 35 series were
    "irregular" and got neither a forecast nor the last price's usual range."""
    assert trends.detect_cadence(days) == cadence


def test_gappy_monthly_random_walks_get_usual_ranges_that_hold():
    """Half the months dropped at random: still monthly, and the usual ranges still hold."""
    tally, cadences = Tally(), set()
    for seed in range(40):
        rng = random.Random(100 + seed)
        last = dt.date(2026, 11, 15)
        rows = [r for r in monthly_rows(walk(48, 0.06, seed), last) if rng.random() < 0.5 or r[3] == last]
        series = trends.build_series(rows)
        cadences.add(series.cadence)
        replay(series, tally, min_points=4)
    assert cadences == {trends.MONTHLY}
    usual = [x for (what, _, _), hits in tally.hits.items() if what == "usual" for x in hits]
    assert len(usual) > 400
    assert 0.75 <= sum(usual) / len(usual) <= 0.9, sum(usual) / len(usual)


def test_multi_month_forecasts_on_random_walks_are_rare():
    """Finding (real Kenyan WFP history): 2- and 3-month forecasts were shown that erred more than
    the last price. Errors 3 months ahead from consecutive months overlap, and the skill test
    counted each as independent: on random walks, where nothing beats the last price, a 3-month
    forecast passed it nine times as often as a 1-month one (1.8 % of origins)."""
    tally = Tally()
    for seed in range(60):
        replay(trends.build_series(monthly_rows(walk(48, 0.08, seed))), tally, min_points=4)
    for h in (1, 2, 3):
        shown, served = len(tally.shown.get((trends.MONTHLY, h), [])), len(tally.served[(trends.MONTHLY, h)])
        assert shown <= 0.01 * served, (h, shown, served)


def test_sticky_prices_fall_inside_their_usual_range():
    """Finding (real Burkina Faso WFP history: imported rice at 38,000 F a bag for years): the
    range was 38,000–38,000 and every actual 38,000 F was counted outside it (0 of 12)."""
    tally = Tally()
    replay(trends.build_series(monthly_rows([38_000] * 40)), tally, min_points=4)
    hits = [x for hits in tally.hits.values() for x in hits]
    assert len(hits) > 50 and all(hits)
