"""Forecast backtest: how wrong the price forecasts would have been, on the demo or any history.

    .venv/bin/python bench/forecast_backtest.py [--csv FILE | --database-url URL]
                                                [--today YYYY-MM-DD] [--crop NAME] [--per-series]

Where the prices come from:

- `--csv FILE`: an HDX/WFP price file, read by column names (`date, market, commodity, unit,
  pricetype, price`, any other columns ignored; the HXL hashtag row and zero placeholder prices
  skipped). A series is one market + commodity + unit + price type.
- `--database-url URL`: the published prices of that database (imported history included).
- neither: a fresh SQLite database seeded with the demo (three years of weekly prices).

What it measures, out of sample: for every series and every observed period (the origin), the
service's own `menus.trends.forecast()` is run on the history up to that origin only, so the
chosen method and its range come from errors known before the origin. Its answer is scored
against the price then observed, per cadence and horizon:

- where a forecast is shown: its mean absolute percentage error (MAPE) against carrying the last
  price forward and against seasonal-naive (the same period a year earlier) on the same origins;
- the share of actual prices inside the shown 80 % range, and inside the "usual range" of the
  last price given where no forecast is shown (target 75–85 %);
- how often a direction is given when "today" is shortly (10 days) after a price, and why
  forecasts are missing.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from menus import trends  # noqa: E402

Rows = dict[tuple[str, ...], list[tuple[float, str, str, dt.date]]]


def load_csv(path: str) -> Rows:
    """HDX layout by column names; a series per market + commodity + unit + price type."""
    series: Rows = defaultdict(list)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            if (row.get("date") or "").startswith("#"):
                continue  # HXL hashtags
            try:
                day = dt.date.fromisoformat(row["date"].strip()[:10])
                price = float(row["price"])
            except (KeyError, ValueError):
                continue
            if not price > 0:
                continue  # zero prices are placeholders
            unit, kind = row.get("unit", "").strip(), row.get("pricetype", "").strip()
            series[(row.get("commodity", "").strip(), row.get("market", "").strip(), unit, kind)].append((price, unit, kind, day))
    return series


def load_db(url: str) -> Rows:
    from sqlmodel import select

    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.data import models

    db = Database.from_settings(Settings(database_url=url))
    series: Rows = defaultdict(list)
    obs, crop, market = models.PriceObservation, models.Crop, models.Market
    with db.unit_of_work() as session:
        query = (
            select(crop.code, market.name, obs.price, obs.unit, obs.kind, obs.observed_on)
            .join(crop, crop.id == obs.crop_id)
            .join(market, market.id == obs.market_id)
            .where(obs.status == "published")
        )
        for code, name, price, unit, kind, day in session.exec(query):
            series[(code, name, unit, kind)].append((price, unit, kind, day))
    db.dispose()
    return series


def seeded_database(folder: Path, today: dt.date) -> str:
    from gateway.core import migrate
    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.data import seed

    url = f"sqlite:///{folder / 'backtest.db'}"
    migrate.upgrade(url)
    db = Database.from_settings(Settings(database_url=url))
    with db.unit_of_work() as session:
        seed.seed_demo(session, today=today)
    db.dispose()
    return url


class Tally:
    """Per (cadence, horizon), over every scored origin: what farmers got (the forecast where one
    is shown, else the last price) against the naive yardsticks, and how often ranges held."""

    def __init__(self) -> None:
        self.shown: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)  # (shown, last) abs % errors
        self.served: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)  # (served, last)
        self.seasonal: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)  # (served, seasonal-naive)
        self.methods: dict[tuple[str, int], Counter] = defaultdict(Counter)
        self.hits: dict[tuple[str, str, int], list[bool]] = defaultdict(list)  # (what, cadence, h)
        self.reasons: Counter = Counter()


def _ape(guess: float, actual: float) -> float:
    return abs(guess / actual - 1) * 100


def replay(series: trends.Series, tally: Tally, min_points: int, every: int = 1) -> None:
    """At every observed period (or every `every`-th): the service's answer from the history up to
    it, scored."""
    spec = series.spec
    for origin in series.ordered[min_points - 1 : -1][::every]:
        past = series.upto(origin)
        outlook = trends.forecast(past, series.date(origin), spec.horizons)
        last = series.price(origin)
        shown = {f.horizon: f for f in outlook.forecasts}
        usual = {u.horizon: u for u in outlook.usual}
        if not outlook.forecasts:
            tally.reasons[outlook.reason] += 1
        for h in spec.horizons:
            actual = series.price(origin + h)
            if actual is None:
                continue
            key = (series.cadence, h)
            f = shown.get(h)
            served = f.price if f else last
            tally.served[key].append((_ape(served, actual), _ape(last, actual)))
            then = series.price(origin + h - spec.year)
            if then is not None:
                tally.seasonal[key].append((_ape(served, actual), _ape(then, actual)))
            if f:
                tally.shown[key].append((_ape(f.price, actual), _ape(last, actual)))
                tally.methods[key][f.method] += 1
                tally.hits[("forecast", series.cadence, h)].append(f.low <= actual <= f.high)
            elif h in usual:
                tally.hits[("usual", series.cadence, h)].append(usual[h].low <= actual <= usual[h].high)


def trend_availability(rows: list, every_price: bool) -> tuple[int, int]:
    """(directions given, cases) with "today" 10 days after the last price, or after each price."""
    rows = sorted(rows, key=lambda r: r[3])
    cutoffs = sorted({r[3] for r in rows}) if every_price else [rows[-1][3]]
    given = 0
    for day in cutoffs:
        known = [r for r in rows if r[3] <= day]
        given += trends.report(known, day + dt.timedelta(days=10)).trend is not None
    return given, len(cutoffs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--csv", help="an HDX/WFP price CSV")
    source.add_argument("--database-url")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today(), help="the demo's today")
    parser.add_argument("--crop", help="only this crop (code or commodity name)")
    parser.add_argument("--per-series", action="store_true", help="a line per series")
    parser.add_argument("--min-points", type=int, default=4, help="first origin: after this many prices")
    parser.add_argument("--every", type=int, default=1, help="replay every N-th origin only (long weekly histories)")
    args = parser.parse_args()

    if args.csv:
        rows = load_csv(args.csv)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = load_db(args.database_url or seeded_database(Path(tmp), args.today))
    if args.crop:
        rows = {k: v for k, v in rows.items() if k[0].lower() == args.crop.lower()}
    started = time.perf_counter()
    tally = Tally()
    cadences: Counter = Counter()
    last_given = last_cases = every_given = every_cases = 0
    for key, obs in sorted(rows.items()):
        series = trends.build_series(obs)
        cadences[series.cadence] += 1
        replay(series, tally, args.min_points, args.every)
        g, c = trend_availability(obs, every_price=False)
        last_given, last_cases = last_given + g, last_cases + c
        g, c = trend_availability(obs, every_price=True)
        every_given, every_cases = every_given + g, every_cases + c
        if args.per_series:
            print(f"  {' / '.join(key):50s} {series.cadence:9s} {len(series):4d} points")
    elapsed = time.perf_counter() - started

    print(f"\nForecast backtest: {len(rows)} series ({', '.join(f'{n} {c}' for c, n in cadences.most_common())}),")
    print("each origin forecast from the history up to it only (method and range chosen then).\n")
    print("| cadence | ahead | origins | forecast shown | shown: MAPE vs last value | farmers get: MAPE | last value | seasonal-naive (same origins, n) | 80% range holds: forecast | usual range |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    for cadence, h in sorted(tally.served):
        key = (cadence, h)
        served, shown, seas = tally.served[key], tally.shown.get(key, []), tally.seasonal.get(key, [])
        label = f"{h} {'wk' if cadence == trends.WEEKLY else 'mo'}"
        mix = ", ".join(f"{m} {n}" for m, n in tally.methods[key].most_common())
        shown_text = f"{len(shown)} ({mix})" if shown else "0"
        versus = f"{mean([a for a, _ in shown]):.1f}% vs {mean([b for _, b in shown]):.1f}%" if shown else "–"
        seas_text = f"{mean([b for _, b in seas]):.1f}% vs {mean([a for a, _ in seas]):.1f}% ({len(seas)})" if seas else "–"
        cells = []
        for what in ("forecast", "usual"):
            hits = tally.hits.get((what, cadence, h), [])
            cells.append(f"{mean(hits) * 100:.1f}% of {len(hits)}" if hits else "–")
        print(f"| {cadence} | {label} | {len(served)} | {shown_text} | {versus} | {mean([a for a, _ in served]):.1f}% | "
              f"{mean([b for _, b in served]):.1f}% | {seas_text} | {cells[0]} | {cells[1]} |")  # fmt: skip
    print("\n(seasonal-naive: the same week or month a year earlier, against what farmers get on those origins)")
    all_hits = [x for (what, _, _), v in tally.hits.items() for x in v]
    if all_hits:
        print(f"\nAll ranges (forecast and usual): {sum(all_hits) / len(all_hits) * 100:.1f}% of {len(all_hits)} actual prices inside (target 75–85 %)")
    print(f"Origins without any forecast, by reason: {dict(tally.reasons) or 'none'}")
    print(f"Direction given, today = 10 days after the last price: {last_given}/{last_cases} series ({last_given / max(last_cases, 1) * 100:.1f}%)")
    print(f"Direction given, today = 10 days after each price:     {every_given}/{every_cases} ({every_given / max(every_cases, 1) * 100:.1f}%)")
    print(f"time: {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
