"""Trend and forecast functions on known series, as tables."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from menus import trends

TODAY = dt.date(2026, 11, 28)  # a Saturday


def rows(prices, *, end=TODAY, unit="kg", kind="wholesale", skip=()):
    """Weekly Saturday rows, the last one on `end`; `None` or an index in `skip` leaves a gap."""
    out = []
    for back, price in enumerate(reversed(prices)):
        index = len(prices) - 1 - back
        if price is None or index in skip:
            continue
        out.append((price, unit, kind, end - dt.timedelta(weeks=back)))
    return out


def seasonal(weeks, base=400.0, amplitude=0.4, growth=0.0):
    """A yearly cycle (52 weeks), optionally growing a little each week."""
    return [round(base * (1 + amplitude * math.sin(2 * math.pi * w / 52)) * (1 + growth) ** w) for w in range(weeks)]


TREND_CASES = [
    # (name, prices, direction, change range, year_percent is None)
    ("flat", [300] * 10, "stable", (0, 0), True),
    ("rising 5%/week", [round(200 * 1.05**w) for w in range(10)], "up", (20, 24), True),
    ("falling 5%/week", [round(400 * 0.95**w) for w in range(10)], "down", (-20, -17), True),
    ("small wobble is stable", [300, 310, 295, 305, 300, 308], "stable", (-5, 5), True),
    ("gaps still give a direction", [200, None, 220, None, 240], "up", (15, 25), True),
    ("a year back gives the year change", [100] * 52 + [120] * 5, "stable", (0, 0), False),
]


@pytest.mark.parametrize("name,prices,direction,change,no_year", TREND_CASES, ids=[c[0] for c in TREND_CASES])
def test_trend(name, prices, direction, change, no_year):
    result = trends.trend(trends.build_series(rows(prices)))
    assert result is not None
    assert result.direction == direction
    assert change[0] <= result.change_percent <= change[1]
    assert (result.year_percent is None) == no_year
    assert result.latest == [p for p in prices if p is not None][-1]
    assert result.latest_on == TODAY


NO_TREND_CASES = [
    ("empty", []),
    ("a single point", [250]),
    ("two points", [250, 260]),
    ("three points within one week", None),
]


@pytest.mark.parametrize("name,prices", NO_TREND_CASES, ids=[c[0] for c in NO_TREND_CASES])
def test_no_trend_without_enough_points(name, prices):
    data = (
        [(250, "kg", "wholesale", TODAY - dt.timedelta(days=d)) for d in (0, 2, 4)] if prices is None else rows(prices)
    )
    assert trends.trend(trends.build_series(data)) is None


def test_year_change_compares_the_same_weeks():
    prices = [100] * 52 + [150] * 5
    result = trends.trend(trends.build_series(rows(prices)))
    assert result.year_percent == 50


def test_series_keeps_one_unit_and_kind():
    mixed = rows([300] * 6) + rows([9000] * 3, unit="basket") + rows([350] * 2, kind="retail")
    series = trends.build_series(mixed)
    assert (series.unit, series.kind) == ("kg", "wholesale")
    assert len(series) == 6
    assert trends.build_series(mixed, unit="basket", kind="wholesale").unit == "basket"
    assert trends.build_series([]).points == {}


def test_two_observations_in_a_week_are_averaged():
    data = [(200, "kg", "wholesale", TODAY), (300, "kg", "wholesale", TODAY - dt.timedelta(days=3))]
    series = trends.build_series(data)
    assert len(series) == 1
    assert round(series.price(trends.week_of(TODAY))) == round(math.sqrt(200 * 300))


WEEKLY = trends.CADENCES[trends.WEEKLY]


def random_walk(n, step, seed, start=300.0):
    """A price that moves by a random percentage each period: nothing forecasts it better than
    its last value."""
    rng = random.Random(seed)
    out, level = [], math.log(start)
    for _ in range(n):
        out.append(round(math.exp(level)))
        level += rng.gauss(0, step)
    return out

FORECAST_CASES = [
    # (name, prices, end, expected reason, check)
    ("a single point", [300], TODAY, trends.TOO_SHORT, None),
    ("five weeks", [300, 310, 320, 330, 340], TODAY, trends.TOO_SHORT, None),
    ("no prices", [], TODAY, trends.TOO_SHORT, None),
    ("last price too old", [300] * 30, TODAY - dt.timedelta(weeks=6), trends.TOO_OLD, None),
    ("flat: nothing beats the last price", [300] * 60, TODAY, trends.NO_SKILL, None),
    ("steady rise continues, damped", [round(200 * 1.02**w) for w in range(80)], TODAY, "",
     lambda f: f.price > round(200 * 1.02**79) and f.method == "trend"),
    ("three seasonal years follow the season", seasonal(160), TODAY, "",
     lambda f: f.method in ("seasonal", "seasonal_trend") and f.error_percent <= 2),
    ("gaps: every other week missing, seasonal", [p if w % 2 else None for w, p in enumerate(seasonal(160))], TODAY, "",
     lambda f: f.method in ("seasonal", "seasonal_trend") and f.error_percent <= 5),
]  # fmt: skip


@pytest.mark.parametrize("name,prices,end,reason,check", FORECAST_CASES, ids=[c[0] for c in FORECAST_CASES])
def test_forecast(name, prices, end, reason, check):
    outlook = trends.forecast(trends.build_series(rows(prices, end=end)), TODAY)
    assert outlook.reason == reason
    if reason:
        assert outlook.forecasts == ()
        return
    assert [f.horizon for f in outlook.forecasts] == [2, 4]
    for f in outlook.forecasts:
        assert f.low <= f.price <= f.high
        assert f.samples >= WEEKLY.min_samples
        assert f.error_percent <= f.last_error_percent
        assert f.week_ending == end + dt.timedelta(weeks=f.horizon)
        assert check(f), f


def test_seasonal_forecast_beats_last_price_on_seasonal_history():
    series = trends.build_series(rows(seasonal(160)))
    scores = trends.backtest(series, max_origins=None)
    for h in WEEKLY.horizons:
        assert scores[("seasonal", h)].mape < scores[("last", h)].mape / 3
    # Seasonal methods need a past year: they start scoring a year after the history does.
    assert scores[("seasonal", 1)].samples < scores[("last", 1)].samples


def test_backtest_uses_only_the_past():
    """A future spike must not change forecasts made before it."""
    base = seasonal(120)
    spiked = base[:-1] + [base[-1] * 5]
    a = trends.backtest(trends.build_series(rows(base)), max_origins=None)
    b = trends.backtest(trends.build_series(rows(spiked)), max_origins=None)
    for key in a:
        # Only forecasts aimed at the spiked week differ: one error per method and horizon at most.
        diffs = [x for x, y in zip(a[key].errors, b[key].errors) if abs(x - y) > 1e-9]
        assert len(diffs) <= 1


def test_usual_range_is_the_last_prices_own_error_spread():
    noisy = random_walk(60, step=0.08, seed=3)
    flat = trends.forecast(trends.build_series(rows([300] * 60)), TODAY)
    wide = trends.forecast(trends.build_series(rows(noisy)), TODAY)
    assert flat.reason == wide.reason == trends.NO_SKILL
    assert (flat.usual[0].low, flat.usual[0].high) == (300, 300)
    assert wide.usual[0].high_percent - wide.usual[0].low_percent > 15  # steps of 8 %, two weeks
    assert wide.usual[0].low < wide.usual[0].high
    assert [u.horizon for u in wide.usual] == [2, 4]


@pytest.mark.parametrize(
    "value,rounded", [(123.4, 125), (2.0, 5), (1234, 1250), (9_976, 10_000), (12_345, 12_500), (41_200, 41_000)]
)
def test_prices_round_like_quotes(value, rounded):
    assert trends._round_price(value) == rounded


@pytest.mark.parametrize(
    "quoted",
    [
        pytest.param(38_000, id="38000-F"),
        pytest.param(45_000, id="45000-F"),
        pytest.param(116.6667, id="wfp-decimals"),
    ],
)
def test_a_price_comes_back_as_quoted(quoted):
    """Finding (real Burkina Faso WFP history): a price read back from its logarithm came back as
    37,999.99999999998 for 38,000 F, so an actual of 38,000 F fell outside a 38,000–38,000 range."""
    series = trends.build_series([(quoted, "kg", "wholesale", TODAY)])
    assert series.price(series.last) == quoted
