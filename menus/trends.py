"""Price trends and short forecasts from one market's price history. Pure: rows in, numbers out.

How it works, in words staff (and the README) can repeat to farmers:

- Prices go on a weekly grid (the mean of each week's observations, one unit and kind only), in
  logarithms, so that every change is a percentage whatever the price level.
- The 4-week direction is the slope of a straight line through the last 4 weeks (at least three
  observations over two weeks), so one odd market day does not flip it.
- A forecast tries four simple methods at every past week where they could have been used
  (a rolling-origin backtest on this very market's history) and keeps the one that erred least:
  * `last`: no change from today's level (the average of the last two weeks);
  * `trend`: the slope of the last 8 weeks, damped so that it flattens out;
  * `seasonal`: how prices moved over the same weeks in past years, applied to today's level;
  * `seasonal_trend`: the seasonal movement plus half of how far this year's 8-week slope differs
    from the past years' slope at the same time ("the season, adjusted for this year's course").
- The range is the spread of that method's own backtest errors at that horizon (10th to 90th
  percentile), so it is as wide as the method has actually been wrong here. Too little history
  (fewer than `MIN_SAMPLES` scored forecasts), or a last price older than `MAX_AGE_WEEKS`, and
  there is no forecast: the caller is told why instead.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import fmean
from typing import Iterable, Sequence

WEEK_DAYS = 7
YEAR_WEEKS = 52
HORIZONS = (1, 2, 3, 4)
TREND_WINDOW = 4  # weeks: "the direction over the last 4 weeks"
SLOPE_WINDOW = 8  # weeks the forecasting slope looks back
DAMPING = 0.8
STABLE_PERCENT = 5  # a 4-week change within ±5 % is "stable"
MIN_SAMPLES = 8  # scored backtest forecasts needed before a forecast is shown
MAX_AGE_WEEKS = 3  # a forecast from an older last price would be a guess about the past too
MAX_ORIGINS = 104  # backtest origins kept for live use (two years): bounded work per screen
METHODS = ("last", "trend", "seasonal", "seasonal_trend")

# Reasons there is no forecast.
NO_HISTORY = "no_history"
TOO_OLD = "too_old"


def week_of(day: dt.date) -> int:
    """A week number shared by every date from Sunday to Saturday (Saturday is Sikasso's market)."""
    return day.toordinal() // WEEK_DAYS


def week_end(week: int) -> dt.date:
    """The Saturday that closes `week`."""
    return dt.date.fromordinal(week * WEEK_DAYS + WEEK_DAYS - 1)


@dataclass(frozen=True)
class Series:
    """Weekly log prices of one crop at one market (or a pool of markets), one unit and kind."""

    unit: str
    kind: str
    weeks: dict[int, float]  # week → mean log price
    last_day: dt.date | None = None

    @property
    def ordered(self) -> list[int]:
        return sorted(self.weeks)

    def __len__(self) -> int:
        return len(self.weeks)

    def price(self, week: int) -> float | None:
        value = self.weeks.get(week)
        return None if value is None else math.exp(value)


def weekly_series(
    rows: Iterable[tuple[int, str, str, dt.date]], unit: str | None = None, kind: str | None = None
) -> Series:
    """From (price, unit, kind, day) rows. Without `unit`/`kind`, the most frequent pair wins:
    a basket price and a kilo price can't share a line."""
    rows = [r for r in rows if r[0] and r[0] > 0]
    if unit is None or kind is None:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for _, u, k, _ in rows:
            if (unit is None or u == unit) and (kind is None or k == kind):
                counts[(u, k)] += 1
        if not counts:
            return Series(unit or "", kind or "", {})
        unit, kind = max(counts, key=lambda pair: (counts[pair], pair == (unit, "wholesale")))
    buckets: dict[int, list[float]] = defaultdict(list)
    last_day = None
    for price, u, k, day in rows:
        if u == unit and k == kind:
            buckets[week_of(day)].append(math.log(price))
            last_day = day if last_day is None or day > last_day else last_day
    return Series(unit, kind, {w: fmean(v) for w, v in buckets.items()}, last_day)


def _slope(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope (log price per week), or None without 3 points over 2 weeks."""
    if len(points) < 3 or points[-1][0] - points[0][0] < 2:
        return None
    mx = fmean(x for x, _ in points)
    my = fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def _window(series: Series, end: int, weeks: int) -> list[tuple[int, float]]:
    return [(w, series.weeks[w]) for w in range(end - weeks, end + 1) if w in series.weeks]


def _percent(log_change: float) -> int:
    return round((math.exp(log_change) - 1) * 100)


@dataclass(frozen=True)
class Trend:
    direction: str  # "up" | "down" | "stable"
    change_percent: int  # over the last 4 weeks, from the fitted line
    latest: int  # the last week's price
    latest_on: dt.date
    year_percent: int | None  # the last 4 weeks against the same weeks a year earlier


def trend(series: Series) -> Trend | None:
    """The direction over the 4 weeks up to the last observation; None with too few points."""
    if not series.weeks:
        return None
    last = max(series.weeks)
    points = _window(series, last, TREND_WINDOW)
    slope = _slope(points)
    if slope is None:
        return None
    change = _percent(slope * TREND_WINDOW)
    direction = "stable" if abs(change) < STABLE_PERCENT else ("up" if change > 0 else "down")
    year = None
    past = _window(series, last - YEAR_WEEKS, TREND_WINDOW - 1)
    if len(past) >= 2 and len(points) >= 2:
        year = _percent(fmean(y for _, y in points) - fmean(y for _, y in past))
    return Trend(direction, change, round(math.exp(series.weeks[last])), series.last_day or week_end(last), year)


# -- forecasting ----------------------------------------------------------------------------------


class _Model:
    """The four methods at one origin week, seeing only the weeks up to it."""

    def __init__(self, series: Series, origin: int) -> None:
        self.s = series.weeks
        self.origin = origin
        self.level_weeks = [w for w in (origin - 1, origin) if w in self.s]
        self.level = fmean(self.s[w] for w in self.level_weeks) if self.level_weeks else None
        pts = [(w, self.s[w]) for w in range(origin - SLOPE_WINDOW, origin + 1) if w in self.s]
        self.slope = _slope(pts)
        self._past_years = [k for k in (1, 2, 3) if self._smooth(origin - k * YEAR_WEEKS) is not None]

    def _smooth(self, week: int) -> float | None:
        """A past year's level around `week` (±1 week), which evens out one odd market day."""
        values = [self.s[w] for w in (week - 1, week, week + 1) if w in self.s and w <= self.origin]
        return fmean(values) if values else None

    def _damped(self, h: int) -> float:
        return sum(DAMPING**i for i in range(1, h + 1))

    def _season(self, h: int) -> float | None:
        moves = []
        for k in self._past_years:
            # The year-ago start is taken over the same weeks as today's level, so both ends of
            # the move line up with what it is added to.
            then = [self.s[w - k * YEAR_WEEKS] for w in self.level_weeks if w - k * YEAR_WEEKS in self.s]
            end = self._smooth(self.origin - k * YEAR_WEEKS + h)
            if then and end is not None:
                moves.append(end - fmean(then))
        return fmean(moves) if moves else None

    def _past_slope(self) -> float | None:
        slopes = []
        for k in self._past_years:
            end = self.origin - k * YEAR_WEEKS
            pts = [(w, self.s[w]) for w in range(end - SLOPE_WINDOW, end + 1) if w in self.s]
            slope = _slope(pts)
            if slope is not None:
                slopes.append(slope)
        return fmean(slopes) if slopes else None

    def predict(self, method: str, h: int) -> float | None:
        if self.level is None:
            return None
        if method == "last":
            return self.level
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


@dataclass(frozen=True)
class Score:
    """How one method did at one horizon on this history."""

    method: str
    horizon: int
    errors: tuple[float, ...]  # actual − forecast, in logs

    @property
    def samples(self) -> int:
        return len(self.errors)

    @property
    def mape(self) -> float:
        """Mean absolute percentage error, the figure staff read."""
        return fmean(abs(math.exp(-e) - 1) for e in self.errors) * 100 if self.errors else math.inf

    def quantile(self, q: float) -> float:
        ordered = sorted(self.errors)
        pos = q * (len(ordered) - 1)
        low, high = math.floor(pos), math.ceil(pos)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def backtest(series: Series, horizons: Sequence[int] = HORIZONS, max_origins: int | None = MAX_ORIGINS) -> dict[tuple[str, int], Score]:
    """Every method forecast from every past week it could have been used at, scored against
    the price that was then observed. Only the most recent `max_origins` weeks are origins."""
    weeks = series.ordered
    origins = weeks[:-1] if max_origins is None else weeks[:-1][-max_origins:]
    errors: dict[tuple[str, int], list[float]] = {(m, h): [] for m in METHODS for h in horizons}
    for origin in origins:
        model = _Model(series, origin)
        for h in horizons:
            actual = series.weeks.get(origin + h)
            if actual is None:
                continue
            for method in METHODS:
                guess = model.predict(method, h)
                if guess is not None:
                    errors[(method, h)].append(actual - guess)
    return {key: Score(key[0], key[1], tuple(v)) for key, v in errors.items()}


@dataclass(frozen=True)
class Forecast:
    horizon: int  # weeks after the last observation
    week_ending: dt.date
    price: int
    low: int
    high: int
    method: str
    error_percent: int  # the method's mean error at this horizon, in the backtest
    samples: int

    @property
    def confidence(self) -> str:
        """From the range's width against the price: what a farmer can lean on."""
        spread = (self.high - self.low) / self.price if self.price else math.inf
        return "high" if spread <= 0.2 else ("medium" if spread <= 0.45 else "low")


@dataclass(frozen=True)
class Outlook:
    forecasts: tuple[Forecast, ...] = ()
    reason: str = ""  # NO_HISTORY | TOO_OLD when there is no forecast
    years: int = 0  # past years the seasonal methods could draw on


def _round_price(value: float) -> int:
    """Prices are quoted in round figures: 5 F under 1,000, 50 F under 10,000, else 500 F."""
    step = 5 if value < 1_000 else (50 if value < 10_000 else 500)
    return max(step, int(round(value / step) * step))


def forecast(
    series: Series,
    today: dt.date,
    horizons: Sequence[int] = (2, 4),
    scores: dict[tuple[str, int], Score] | None = None,
) -> Outlook:
    """Forecasts for `horizons` weeks after the last observation, each by the method that erred
    least at that horizon here, or the reason there are none."""
    if not series.weeks:
        return Outlook(reason=NO_HISTORY)
    last = max(series.weeks)
    if week_of(today) - last > MAX_AGE_WEEKS:
        return Outlook(reason=TOO_OLD)
    scores = scores if scores is not None else backtest(series, horizons)
    model = _Model(series, last)
    out = []
    for h in horizons:
        usable = [
            s for m in METHODS
            if (s := scores.get((m, h))) and s.samples >= MIN_SAMPLES and model.predict(m, h) is not None
        ]  # fmt: skip
        if not usable:
            continue
        best = min(usable, key=lambda s: (round(s.mape, 6), METHODS.index(s.method)))
        mid = model.predict(best.method, h)
        price = _round_price(math.exp(mid))
        # A method that always erred one way has a range beside its forecast: stretch it to it.
        out.append(
            Forecast(
                horizon=h,
                week_ending=week_end(last + h),
                price=price,
                low=min(price, _round_price(math.exp(mid + best.quantile(0.1)))),
                high=max(price, _round_price(math.exp(mid + best.quantile(0.9)))),
                method=best.method,
                error_percent=round(best.mape),
                samples=best.samples,
            )
        )
    if not out:
        return Outlook(reason=NO_HISTORY, years=len(model._past_years))
    return Outlook(tuple(out), years=len(model._past_years))
