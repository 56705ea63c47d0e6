"""Forecast backtest: how wrong the price forecasts would have been, on the demo or any history.

    .venv/bin/python bench/forecast_backtest.py [--database-url URL] [--today YYYY-MM-DD]
                                                [--crop CODE] [--per-series]

What it does:

1. Without --database-url: a fresh SQLite database in a temporary directory, migrated and seeded
   with the demo content (three years of weekly prices) for --today (default: today). With it:
   the published prices of that database (imported history included), read-only.
2. For every crop × market with prices: the rolling-origin backtest of `menus.trends` (every past
   week as an origin, horizons 1–4 weeks, each method sees only the weeks up to its origin).
3. Prints, per method and horizon, the mean absolute percentage error (MAPE) over all series and
   the number of scored forecasts, then the error of what the service actually shows (per series,
   the method that erred least — as `forecast()` picks it), the share of actual prices that fell
   inside the shown 10–90 % range (target ≈ 80 %), and how many series get no forecast and why.
   Ratios against the naive "last price" method are measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from menus import trends  # noqa: E402


def load_rows(url: str) -> dict[tuple[str, str], list[tuple[int, str, str, dt.date]]]:
    from sqlmodel import select

    from gateway import models
    from gateway.db import Database
    from gateway.settings import Settings

    db = Database.from_settings(Settings(database_url=url))
    series: dict[tuple[str, str], list] = defaultdict(list)
    obs, crop, market = models.PriceObservation, models.Crop, models.Market
    with db.unit_of_work() as session:
        query = (
            select(crop.code, market.name, obs.price, obs.unit, obs.kind, obs.observed_on)
            .join(crop, crop.id == obs.crop_id)
            .join(market, market.id == obs.market_id)
            .where(obs.status == "published")
        )
        for code, name, price, unit, kind, day in session.exec(query):
            series[(code, name)].append((price, unit, kind, day))
    db.dispose()
    return series


def seeded_database(folder: Path, today: dt.date) -> str:
    from gateway import migrate, seed
    from gateway.db import Database
    from gateway.settings import Settings

    url = f"sqlite:///{folder / 'backtest.db'}"
    migrate.upgrade(url)
    db = Database.from_settings(Settings(database_url=url))
    with db.unit_of_work() as session:
        seed.seed_demo(session, today=today)
    db.dispose()
    return url


def holdout(series: trends.Series, horizons, min_train: int):
    """What the service would have shown: at each origin, `forecast()` on the history up to it
    (its method chosen by its own backtest there), against the price then observed."""
    weeks = series.ordered
    hits = total = 0
    errors: dict[int, list[float]] = defaultdict(list)
    for origin in weeks[min_train:-1]:
        past = trends.Series(series.unit, series.kind, {w: v for w, v in series.weeks.items() if w <= origin})
        outlook = trends.forecast(past, trends.week_end(origin), horizons)
        for f in outlook.forecasts:
            actual = series.price(origin + f.horizon)
            if actual is None:
                continue
            errors[f.horizon].append(abs(f.price / actual - 1) * 100)
            total += 1
            hits += f.low <= actual <= f.high
    return errors, hits, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    parser.add_argument("--crop", help="only this crop code")
    parser.add_argument("--per-series", action="store_true", help="a line per crop and market")
    parser.add_argument("--holdout-every", type=int, default=4, help="score the shown forecast every N origins")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or seeded_database(Path(tmp), args.today)
        rows = load_rows(url)
    if args.crop:
        rows = {k: v for k, v in rows.items() if k[0] == args.crop}
    horizons = trends.HORIZONS
    pooled: dict[tuple[str, int], list[float]] = defaultdict(list)
    shown_errors: dict[int, list[float]] = defaultdict(list)
    hits = total = 0
    reasons: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    for (crop, market), obs in sorted(rows.items()):
        series = trends.weekly_series(obs)
        scores = trends.backtest(series, horizons, max_origins=None)
        for key, score in scores.items():
            pooled[key].extend(score.errors)
        outlook = trends.forecast(series, args.today, (2, 4))
        if outlook.reason:
            reasons[outlook.reason] += 1
        # The shown forecast, replayed at past origins (a thinned set keeps the run short).
        thinned = trends.Series(series.unit, series.kind, series.weeks, series.last_day)
        errs, h, t = holdout(thinned, (1, 2, 3, 4), min_train=max(len(series) - 60, 20))
        for horizon, values in errs.items():
            shown_errors[horizon].extend(values[:: args.holdout_every])
        hits, total = hits + h, total + t
        if args.per_series:
            best = {h: min((s for (m, hh), s in scores.items() if hh == h and s.samples), key=lambda s: s.mape, default=None) for h in (2, 4)}
            desc = "  ".join(f"h{h}: {b.method} {b.mape:.1f}%" for h, b in best.items() if b) or "no forecast"
            print(f"  {crop:10s} {market:12s} {len(series):4d} weeks  {desc}")
    elapsed = time.perf_counter() - started

    print(f"\nForecast backtest: {len(rows)} crop × market series, rolling origin over all past weeks")
    print(f"{'method':16s}" + "".join(f"{'h=' + str(h) + ' wk':>16s}" for h in horizons))
    for method in trends.METHODS:
        cells = []
        for h in horizons:
            errs = pooled[(method, h)]
            mape = trends.Score(method, h, tuple(errs)).mape if errs else math.nan
            cells.append(f"{mape:7.1f}% (n={len(errs):5d})")
        print(f"{method:16s}" + "".join(f"{c:>16s}" for c in cells))
    naive = {h: trends.Score("last", h, tuple(pooled[("last", h)])).mape for h in horizons}
    print("\nWhat the service shows (per series, the method that erred least up to each origin):")
    for h in horizons:
        values = shown_errors.get(h, [])
        if values:
            mape = sum(values) / len(values)
            print(f"  h={h} wk: MAPE {mape:5.1f}%  vs last price {naive[h]:5.1f}%  ratio {mape / naive[h]:.2f}  (n={len(values)})")
    if total:
        print(f"  actual price inside the shown 10–90 % range: {hits / total * 100:.1f}% of {total} forecasts (target ≈ 80 %)")
    print(f"  series without a forecast today: {dict(reasons) or 'none'}")
    print(f"  time: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
