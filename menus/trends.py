"""Price trends and short forecasts from one market's price history. Pure: rows in, numbers out.

How it works, in words staff (and the README) can repeat to farmers:

- Each series' cadence is read from the gaps between its recent observation days: weekly (the
  service's own reports), monthly (WFP-style history) or irregular. Prices go on a grid of that
  cadence (the mean of each week's or month's observations, one unit and kind only), in
  logarithms, so that every change is a percentage whatever the price level.
- The direction is the slope of a straight line through the last 4 weeks (at least three
  observations over two weeks) or the last 3 months (at least two monthly prices), so one odd
  market day does not flip it. The year change compares the same weeks or months a year earlier.
- A forecast tries four simple methods at every past point where they could have been used
  (a rolling-origin backtest on this very market's history) and keeps the one that erred least:
  * `last`: the last price carried forward (the yardstick every other method must beat);
  * `trend`: the recent slope (8 weeks, 6 months), damped so that it flattens out;
  * `seasonal`: how prices moved over the same weeks or months in past years, applied to today;
  * `seasonal_trend`: the seasonal movement plus half of how far this year's slope differs from
    the past years' slope at the same time ("the season, adjusted for this year's course").
- A forecast is shown only where the chosen method was scored over at least a year of past
  origins and erred clearly less than `last` on the same origins (a paired one-sided test at
  95 %, overlapping multi-period errors counted once). Elsewhere farmers get the last price and
  its usual range of change, and are told that no reliable forecast exists. Every range is an
  80 % prediction interval drawn from the method's own past errors at that horizon (mean ± t·rms,
  t on the errors' effective number), so at each origin it only uses errors known before it.
- No forecast, with the reason named: too short (fewer than `min_samples` scored past
  forecasts), too old (the last price is more than `max_age` periods back), irregular (prices
  rarer than every other month), or no skill (nothing beat the last price).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist, fmean, median, stdev
from typing import Iterable, Sequence

from menus.screen import Day, Number, Phrase, phrase

WEEK_DAYS = 7
WEEKLY, MONTHLY, IRREGULAR = "weekly", "monthly", "irregular"
METHODS = ("last", "trend", "seasonal", "seasonal_trend")
DAMPING = 0.8
STABLE_PERCENT = 5  # a change within ±5 % is "stable"
COVERAGE = 0.8  # ranges claim to hold 80 % of actual prices
SKILL_T = 1.645  # a method must beat the last price at one-sided 95 % confidence (see _beats)
CADENCE_GAPS = 12  # the cadence is read from this many most recent gaps between observation days
HISTORY_START = dt.date(1900, 1, 1)  # callers load a series whole: a 5-year-old price is "too old"

# Reasons there is no forecast.
TOO_SHORT = "too_short"
TOO_OLD = "too_old"
IRREGULAR_REASON = "irregular"
NO_SKILL = "no_skill"
NO_HISTORY = TOO_SHORT  # the old name


@dataclass(frozen=True)
class Cadence:
    name: str
    year: int  # periods in a year
    trend_window: int  # the direction covers this many periods
    trend_points: int  # observations needed for a direction
    trend_max_age: int  # older last price: no direction, only the dated price
    slope_window: int  # periods the forecasting slope looks back
    level_periods: int  # today's level for the trend and seasonal methods: mean of this many
    horizons: tuple[int, ...]  # backtest (and console) horizons
    shown: tuple[int, ...]  # horizons a farmer's screen shows (the first two not already past)
    max_age: int  # periods between the last price and today beyond which there is no forecast
    min_samples: int  # scored past forecasts needed for a forecast or a usual range
    year_pairs: int  # same periods a year apart needed for a year change
    max_years: int = 3  # past years the model reads

    @property
    def max_origins(self) -> int:
        return 2 * self.year  # backtest origins kept: bounded work per screen


CADENCES = {
    WEEKLY: Cadence(WEEKLY, 52, 4, 3, 13, 8, 2, (1, 2, 3, 4), (2, 4), 3, 8, 2),
    MONTHLY: Cadence(MONTHLY, 12, 3, 2, 6, 6, 1, (1, 2, 3), (1, 2, 3), 2, 6, 1),
    # Irregular reports go on a monthly grid for the direction; they get no forecast.
    IRREGULAR: Cadence(IRREGULAR, 12, 3, 2, 6, 6, 1, (1, 2, 3), (1, 2, 3), 2, 6, 1),
}


def week_of(day: dt.date) -> int:
    """A week number shared by every date from Sunday to Saturday (Saturday is Sikasso's market)."""
    return day.toordinal() // WEEK_DAYS


def week_end(week: int) -> dt.date:
    """The Saturday that closes `week`."""
    return dt.date.fromordinal(week * WEEK_DAYS + WEEK_DAYS - 1)


def period_of(day: dt.date, cadence: str) -> int:
    return week_of(day) if cadence == WEEKLY else day.year * 12 + day.month - 1


def period_date(period: int, cadence: str) -> dt.date:
    """The day a period stands for: a week's Saturday, a month's 15th (WFP's monthly date)."""
    return week_end(period) if cadence == WEEKLY else dt.date(period // 12, period % 12 + 1, 15)


def detect_cadence(days: Iterable[dt.date]) -> str:
    """Weekly, monthly or irregular, from the median of the most recent gaps between distinct
    observation days. A series that changed cadence (monthly history, then weekly reports) is
    read as it is now."""
    ordered = sorted(set(days))[-(CADENCE_GAPS + 1) :]
    gaps = [(b - a).days for a, b in zip(ordered, ordered[1:])]
    if not gaps:
        return IRREGULAR  # one day: no cadence to read
    typical = median(gaps)
    if typical <= 17:  # every week, or every other week: the weekly grid holds the gaps
        return WEEKLY
    # Monthly, missed months included, up to every other month: WFP series often miss half their
    # months, and a 1-month and a 2-month gap have a median of ~46 days. The monthly grid and its
    # backtest cope with the gaps; only rarer reports are irregular.
    if typical <= 75:
        return MONTHLY
    return IRREGULAR


@dataclass(frozen=True)
class Series:
    """Log prices of one crop at one market, one unit and kind, on the grid of its cadence."""

    unit: str
    kind: str
    points: dict[int, float]  # period → mean log price
    last_day: dt.date | None = None
    cadence: str = WEEKLY

    @property
    def spec(self) -> Cadence:
        return CADENCES[self.cadence]

    @property
    def ordered(self) -> list[int]:
        return sorted(self.points)

    @property
    def last(self) -> int | None:
        return max(self.points) if self.points else None

    def __len__(self) -> int:
        return len(self.points)

    def price(self, period: int) -> float | None:
        value = self.points.get(period)
        # Rounded past the float noise of exp(log(p)): 38,000 F comes back as 38,000, not
        # 37,999.99999999998, which a range of 38,000–38,000 would wrongly leave out.
        return None if value is None else round(math.exp(value), 6)

    def date(self, period: int) -> dt.date:
        return period_date(period, self.cadence)

    def upto(self, period: int) -> Series:
        """The series as it was known at `period` (for backtests)."""
        return Series(self.unit, self.kind, {p: v for p, v in self.points.items() if p <= period}, None, self.cadence)

    def age(self, today: dt.date) -> int:
        """Periods from the last price to today."""
        return period_of(today, self.cadence) - self.last if self.points else 0


def build_series(
    rows: Iterable[tuple[int, str, str, dt.date]], unit: str | None = None, kind: str | None = None
) -> Series:
    """From (price, unit, kind, day) rows. Without `unit`/`kind`, the most frequent pair wins:
    a basket price and a kilo price can't share a line. The cadence is detected on that pair."""
    rows = [r for r in rows if r[0] and r[0] > 0]
    if unit is None or kind is None:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for _, u, k, _ in rows:
            if (unit is None or u == unit) and (kind is None or k == kind):
                counts[(u, k)] += 1
        if not counts:
            return Series(unit or "", kind or "", {})
        unit, kind = max(counts, key=lambda pair: (counts[pair], pair[1] == "wholesale"))
    mine = [(price, day) for price, u, k, day in rows if u == unit and k == kind]
    if not mine:
        return Series(unit, kind, {})
    cadence = detect_cadence(day for _, day in mine)
    spec = CADENCES[cadence]
    buckets: dict[int, list[float]] = defaultdict(list)
    for price, day in mine:
        buckets[period_of(day, cadence)].append(math.log(price))
    last = max(buckets)
    # The model reads a few years before the last price; older rows only tell how old it is.
    keep = last - spec.year * spec.max_years - spec.slope_window - max(spec.horizons)
    points = {p: fmean(v) for p, v in buckets.items() if p >= keep}
    return Series(unit, kind, points, max(day for _, day in mine), cadence)


weekly_series = build_series  # the old name: the grid now follows the series' cadence


def _slope(points: Sequence[tuple[int, float]], need: int) -> float | None:
    """Least-squares slope (log price per period), or None without `need` points over 2 periods
    (a pair of monthly prices one month apart is enough for a monthly direction)."""
    if len(points) < need or len(points) < 2 or points[-1][0] - points[0][0] < (2 if need >= 3 else 1):
        return None
    mx = fmean(x for x, _ in points)
    my = fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def _window(series: Series, end: int, periods: int) -> list[tuple[int, float]]:
    return [(p, series.points[p]) for p in range(end - periods, end + 1) if p in series.points]


def _percent(log_change: float) -> int:
    return round((math.exp(log_change) - 1) * 100)


@dataclass(frozen=True)
class Trend:
    direction: str  # "up" | "down" | "stable"
    change_percent: int  # over `span` periods, from the fitted line
    span: int  # periods the change covers (4 weeks; 1 to 3 months)
    latest: int  # the last period's price
    latest_on: dt.date
    year_percent: int | None  # the last periods against the same periods a year earlier
    cadence: str = WEEKLY


def trend(series: Series) -> Trend | None:
    """The direction over the periods up to the last observation; None with too few points."""
    if not series.points:
        return None
    spec = series.spec
    last = series.last
    points = _window(series, last, spec.trend_window)
    slope = _slope(points, spec.trend_points)
    if slope is None:
        return None
    # Weekly: over the whole 4-week window. Monthly: over the months actually observed, so one
    # month's change is never stretched into three.
    span = spec.trend_window if series.cadence == WEEKLY else points[-1][0] - points[0][0]
    change = _percent(slope * span)
    direction = "stable" if abs(change) < STABLE_PERCENT else ("up" if change > 0 else "down")
    year = None
    pairs = [y - series.points[p - spec.year] for p, y in points if p - spec.year in series.points]
    if len(pairs) >= min(spec.year_pairs, len(points)):
        year = _percent(fmean(pairs)) if pairs else None
    latest_on = series.last_day or series.date(last)
    return Trend(direction, change, span, round(math.exp(series.points[last])), latest_on, year, series.cadence)


# -- forecasting ----------------------------------------------------------------------------------


class _Model:
    """The four methods at one origin, seeing only the periods up to it."""

    def __init__(self, series: Series, origin: int) -> None:
        self.spec = spec = series.spec
        self.s = series.points
        self.origin = origin
        self.last = self.s.get(origin)
        self.level_periods = [p for p in range(origin - spec.level_periods + 1, origin + 1) if p in self.s]
        self.level = fmean(self.s[p] for p in self.level_periods) if self.level_periods else None
        self.slope = _slope(self._recent(origin), 3)
        self._past_years = [k for k in range(1, spec.max_years + 1) if self._near(origin - k * spec.year) is not None]

    def _recent(self, end: int) -> list[tuple[int, float]]:
        return [(p, self.s[p]) for p in range(end - self.spec.slope_window, end + 1) if p in self.s]

    def _near(self, period: int) -> float | None:
        """A past year's level at `period`; missing, the mean of its neighbours (±1 period), which
        also evens out one odd weekly market day."""
        if self.spec.name == WEEKLY or period not in self.s:
            values = [self.s[p] for p in (period - 1, period, period + 1) if p in self.s and p <= self.origin]
            return fmean(values) if values else None
        return self.s[period]

    def _damped(self, h: int) -> float:
        return sum(DAMPING**i for i in range(1, h + 1))

    def _season(self, h: int) -> float | None:
        moves = []
        for k in self._past_years:
            back = k * self.spec.year
            # The year-ago start is taken over the same periods as today's level, so both ends of
            # the move line up with what it is added to.
            then = [self.s[p - back] for p in self.level_periods if p - back in self.s]
            end = self._near(self.origin - back + h)
            if then and end is not None:
                moves.append(end - fmean(then))
        return fmean(moves) if moves else None

    def _past_slope(self) -> float | None:
        slopes = [s for k in self._past_years if (s := _slope(self._recent(self.origin - k * self.spec.year), 3)) is not None]
        return fmean(slopes) if slopes else None

    def predict(self, method: str, h: int) -> float | None:
        if self.level is None or self.last is None:
            return None
        if method == "last":
            return self.last
        if method == "trend":
            return None if self.slope is None else self.level + self.slope * self._damped(h)
        season = self._season(h)
        if season is None:
            return None
        if method == "seasonal":
            return self.level + season
        past = self._past_slope()
        if self.slope is None or past is None:
            return None
        return self.level + season + 0.5 * (self.slope - past) * self._damped(h)


def _t_quantile(p: float, df: int) -> float:
    """Student's t quantile (Cornish-Fisher expansion; close enough from 3 degrees of freedom)."""
    z = NormalDist().inv_cdf(p)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Score:
    """How one method did at one horizon on this history."""

    method: str
    horizon: int
    errors: tuple[float, ...]  # actual − forecast, in logs
    origins: tuple[int, ...] = ()  # the origin of each error

    @property
    def samples(self) -> int:
        return len(self.errors)

    @property
    def mape(self) -> float:
        """Mean absolute percentage error, the figure staff read."""
        return _mape(self.errors)

    def interval(self, coverage: float = COVERAGE) -> tuple[float, float]:
        """The `coverage` prediction interval of the next error, in logs: mean ± t·rms·√(1+h/n),
        Student's t on the errors' effective number, so few errors give a wider range."""
        n = len(self.errors)
        if n < 2:
            return (0.0, 0.0)
        # Centred on the mean error (a method that always erred one way has its range beside the
        # forecast), as wide as the root mean square error: a drift seen in the past widens it too.
        centre, spread = fmean(self.errors), math.sqrt(fmean(e * e for e in self.errors))
        h = self.horizon
        df = max(n / _overlap(h) - 1, 1.0)
        half = _t_quantile(0.5 + coverage / 2, df) * spread * math.sqrt(1 + h / n)
        return (centre - half, centre + half)

    def on(self, origins: set[int]) -> Score:
        kept = [(o, e) for o, e in zip(self.origins, self.errors) if o in origins]
        return Score(self.method, self.horizon, tuple(e for _, e in kept), tuple(o for o, _ in kept))


def _overlap(h: int) -> float:
    """Errors h periods ahead from consecutive origins share h − 1 periods of movement: n of them
    are worth n / _overlap(h) independent ones (Bartlett's formula for an MA(h − 1) series)."""
    return 1 + 2 * sum((1 - k / h) ** 2 for k in range(1, h))


def _beats(method: Score, last: Score) -> bool:
    """Whether `method` erred clearly less than the last price on the same past origins: the mean
    gain in absolute error must stand SKILL_T standard errors above zero (a paired test, so that
    a lucky run on a few origins, or the pick of the best of three methods, is not enough). Gains
    h periods ahead overlap, so they count as their effective number: else a 3-month forecast
    passed on a random walk nine times as often as a 1-month one, and lost to the last price."""
    mine = dict(zip(method.origins, method.errors))
    gains = [abs(math.exp(-e) - 1) - abs(math.exp(-mine[o]) - 1) for o, e in zip(last.origins, last.errors) if o in mine]
    if len(gains) < 3:
        return False
    mean, spread = fmean(gains), stdev(gains)
    effective = len(gains) / _overlap(method.horizon)
    return mean > 0 and (spread == 0 or mean / (spread / math.sqrt(effective)) >= SKILL_T)


def _mape(errors: Sequence[float]) -> float:
    return fmean(abs(math.exp(-e) - 1) for e in errors) * 100 if errors else math.inf


def backtest(series: Series, horizons: Sequence[int] | None = None, max_origins: int | None = -1) -> dict[tuple[str, int], Score]:
    """Every method forecast from every past observed period it could have been used at, scored
    against the price then observed. Only the most recent `max_origins` periods are origins
    (default: two years of the series' cadence; None: all)."""
    horizons = horizons or series.spec.horizons
    if max_origins == -1:
        max_origins = series.spec.max_origins
    periods = series.ordered
    origins = periods[:-1] if max_origins is None else periods[:-1][-max_origins:]
    errors: dict[tuple[str, int], list[tuple[int, float]]] = {(m, h): [] for m in METHODS for h in horizons}
    for origin in origins:
        model = _Model(series, origin)
        for h in horizons:
            actual = series.points.get(origin + h)
            if actual is None:
                continue
            for method in METHODS:
                guess = model.predict(method, h)
                if guess is not None:
                    errors[(method, h)].append((origin, actual - guess))
    return {
        key: Score(key[0], key[1], tuple(e for _, e in v), tuple(o for o, _ in v)) for key, v in errors.items()
    }


@dataclass(frozen=True)
class Forecast:
    horizon: int  # periods after the last observation
    on: dt.date  # the week's Saturday, or the month's 15th
    price: int
    low: int
    high: int
    method: str
    error_percent: int  # the method's mean error at this horizon, in the backtest
    last_error_percent: int  # the last price's error on the same past origins
    samples: int

    @property
    def week_ending(self) -> dt.date:
        return self.on

    @property
    def confidence(self) -> str:
        """From the range's width against the price: what a farmer can lean on."""
        spread = (self.high - self.low) / self.price if self.price else math.inf
        return "high" if spread <= 0.2 else ("medium" if spread <= 0.45 else "low")


@dataclass(frozen=True)
class Usual:
    """Where there is no reliable forecast: how far the last price usually moved over `horizon`
    periods here (the 80 % range of the last price's own past errors)."""

    horizon: int
    on: dt.date
    low: int  # prices: the last price moved by the range's ends
    high: int
    low_percent: int
    high_percent: int
    samples: int


@dataclass(frozen=True)
class Outlook:
    forecasts: tuple[Forecast, ...] = ()
    reason: str = ""  # TOO_SHORT | TOO_OLD | IRREGULAR_REASON | NO_SKILL when there is no forecast
    years: int = 0  # past years the seasonal methods could draw on
    usual: tuple[Usual, ...] = ()  # where no forecast: the last price's usual range of change
    cadence: str = WEEKLY
    age: int = 0  # periods from the last price to today
    samples: int = 0  # scored past forecasts of the last price (what "too short" counted)


def _round_price(value: float) -> int:
    """Prices are quoted in round figures: 5 F under 1,000, 50 F under 10,000, else 500 F."""
    step = 5 if value < 1_000 else (50 if value < 10_000 else 500)
    return max(step, int(round(value / step) * step))


def farmer_horizons(series: Series, today: dt.date) -> list[int]:
    """The two horizons a farmer is given: 2 and 4 weeks, or the first two months not yet past."""
    return [h for h in series.spec.shown if h >= series.age(today)][:2]


def forecast(
    series: Series,
    today: dt.date,
    horizons: Sequence[int] | None = None,
    scores: dict[tuple[str, int], Score] | None = None,
) -> Outlook:
    """Forecasts for `horizons` periods after the last observation (default: the farmer's, the
    first ones not already past), each by the method that erred least at that horizon here and
    only where it clearly beat the last price; or the reason there are none."""
    spec = series.spec
    if not series.points:
        return Outlook(reason=TOO_SHORT, cadence=series.cadence)
    last = series.last
    age = series.age(today)
    base = dict(cadence=series.cadence, age=age)
    if age > spec.max_age:
        return Outlook(reason=TOO_OLD, **base)
    if len(series) < 3:
        return Outlook(reason=TOO_SHORT, **base)
    if series.cadence == IRREGULAR:
        return Outlook(reason=IRREGULAR_REASON, **base)
    if horizons is None:
        horizons = farmer_horizons(series, today)
    scores = scores if scores is not None else backtest(series, horizons)
    model = _Model(series, last)
    years = len(model._past_years)
    out, usual, samples, tested = [], [], 0, False
    for h in horizons:
        baseline = scores.get(("last", h))
        if baseline is None or baseline.samples < spec.min_samples:
            samples = max(samples, baseline.samples if baseline else 0)
            continue
        samples = max(samples, baseline.samples)
        usable = [
            s for m in METHODS[1:]
            if (s := scores.get((m, h))) and s.samples >= spec.year and model.predict(m, h) is not None
        ]  # fmt: skip
        tested = tested or bool(usable)
        best = min(usable, key=lambda s: (round(s.mape, 6), METHODS.index(s.method)), default=None)
        # The same past origins for both, so that the comparison is fair.
        if best is not None and _beats(best, baseline):
            mid = model.predict(best.method, h)
            low, high = best.interval()
            price = _round_price(math.exp(mid))
            out.append(
                Forecast(
                    horizon=h, on=series.date(last + h), price=price,
                    low=min(price, _round_price(math.exp(mid + low))), high=max(price, _round_price(math.exp(mid + high))),
                    method=best.method, error_percent=round(best.mape), last_error_percent=round(baseline.on(set(best.origins)).mape),
                    samples=best.samples,
                )
            )  # fmt: skip
        else:
            low, high = baseline.interval()
            usual.append(
                Usual(
                    horizon=h, on=series.date(last + h),
                    low=_round_price(math.exp(model.last + low)), high=_round_price(math.exp(model.last + high)),
                    low_percent=_percent(low), high_percent=_percent(high), samples=baseline.samples,
                )
            )  # fmt: skip
    if out:
        return Outlook(tuple(out), years=years, usual=tuple(usual), samples=samples, **base)
    if usual:
        # Methods tried for a year that all failed to beat the last price: no skill. Not tried
        # that long yet: too short a history. Either way the last price's usual range is given.
        reason = NO_SKILL if tested else TOO_SHORT
        return Outlook(reason=reason, years=years, usual=tuple(usual), samples=samples, **base)
    return Outlook(reason=TOO_SHORT, years=years, samples=samples, **base)


# -- one answer for every channel -----------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """What USSD, SMS and the console all say about one crop at one market."""

    series: Series
    trend: Trend | None
    outlook: Outlook
    stale: bool  # the last price is too old for a direction: only its date is said
    scores: dict | None = None


def report(
    rows: Iterable[tuple[int, str, str, dt.date]],
    today: dt.date,
    *,
    unit: str | None = None,
    kind: str | None = None,
    horizons: Sequence[int] | None = None,
    all_horizons: bool = False,
    outlook: bool = True,
) -> Report:
    """The series, its direction and its outlook, from the whole history of one crop at one
    market (callers load it from `HISTORY_START`). `all_horizons`: every backtest horizon (the
    console) rather than the farmer's. `outlook=False`: the direction only (lists of markets)."""
    # Memoised on the history itself: the backtest is ~90 ms, and a USSD or voice session replays
    # the trend screen on every later hop while the history has not changed (a new price is a new
    # key). A Report is read-only for its callers.
    return _report(tuple(rows), today, unit, kind, None if horizons is None else tuple(horizons),
                   all_horizons, outlook)


@lru_cache(maxsize=256)
def _report(
    rows: tuple[tuple[int, str, str, dt.date], ...],
    today: dt.date,
    unit: str | None,
    kind: str | None,
    horizons: tuple[int, ...] | None,
    all_horizons: bool,
    outlook: bool,
) -> Report:
    series = build_series(rows, unit, kind)
    spec = series.spec
    stale = bool(series.points) and series.age(today) > spec.trend_max_age
    found = None if stale else trend(series)
    if not outlook:
        return Report(series, found, Outlook(cadence=series.cadence), stale)
    if all_horizons:
        horizons = spec.horizons
    elif horizons is None:
        horizons = farmer_horizons(series, today)
    scores = backtest(series, horizons) if series.points and horizons else {}
    return Report(series, found, forecast(series, today, horizons, scores), stale, scores)


# -- wording shared by USSD and SMS (catalog keys under [trend]) ----------------------------------


def span_text(t, found: Trend) -> str:
    """"4 sem." or "3 mois": what the direction covers, in the series' own periods."""
    return t("trend.span_weeks" if found.cadence == WEEKLY else "trend.span_months", n=found.span)


def when_text(t, cadence: str, day: dt.date, short_date) -> str:
    """A forecast's target: "le 12/12" for a week, the month's name for a month."""
    if cadence == WEEKLY:
        return t("trend.when_week", date=short_date(day))
    return t("trend.when_month", month=t(f"trend.month.m{day.month}"), year=day.year)


def span_phrase(found: Trend) -> Phrase:
    """span_text() as a phrase, for the menus (menus.screen)."""
    return phrase("trend.span_weeks" if found.cadence == WEEKLY else "trend.span_months", n=Number(found.span))


def when_phrase(cadence: str, day: dt.date) -> Phrase:
    """when_text() as a phrase, for the menus (menus.screen)."""
    if cadence == WEEKLY:
        return phrase("trend.when_week", date=Day(day))
    return phrase("trend.when_month", month=phrase(f"trend.month.m{day.month}"), year=Number(day.year))
