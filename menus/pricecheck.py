"""The reference a price is checked against (enumerators' SMS reports, and staff prices in the
console, API and imports): pure, no I/O.

Published reports used to feed the very median they were compared with, so a burst of reports each
a little higher walked the price anywhere (issue 14, finding 2). The reference is now built so
that reports alone cannot move it quickly:

1. Recent staff prices (entered in the console, the API or an import; not an SMS report), when
   there are at least MIN_STAFF in the last STAFF_RECENT_DAYS, are the reference: reports never
   change it.
2. Otherwise the median of earlier days, where each (market, day) counts once (the median of its
   reporters, each reporter counting once that day), the reporter's own reports never count, and
   the day being reported does not count at all. However many reports one or a few numbers send
   in a day, they add at most one value per day to the reference, and none to their own.
3. The same crop at every market when this market has too little, as before; else no reference,
   and the report waits for staff.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

WINDOW_DAYS = 56  # the reference looks back this far
STAFF_RECENT_DAYS = 14  # staff prices this recent are the reference on their own
MIN_STAFF = 2  # recent staff prices needed for them to be the reference (one could be a typo)
MIN_DAYS = 2  # days needed for a median of earlier days


@dataclass(frozen=True)
class PricePoint:
    """A published price of one crop in one unit."""

    price: int
    market_id: int
    observed_on: dt.date
    reporter_id: int | None = None  # the enumerator (producer id); None: staff


@dataclass(frozen=True)
class Reference:
    median: float
    basis: str  # "staff" | "reports"
    market_id: int | None  # None: the crop at every market


def reference(
    points: Iterable[PricePoint], *, market_id: int, today: dt.date, reporter_id: int | None = None
) -> Reference | None:
    """What a price for `market_id` on `today` is compared with, or None (too little history).
    `points`: published prices of the crop, in the unit of the price checked, every market."""
    since = today - dt.timedelta(days=WINDOW_DAYS)
    points = [p for p in points if p.observed_on >= since]
    here = [p for p in points if p.market_id == market_id]
    for scope, where in ((here, market_id), (points, None)):
        median = _staff_median(scope, today)
        if median is not None:
            return Reference(median, "staff", where)
        median = _daily_median(scope, today, reporter_id)
        if median is not None:
            return Reference(median, "reports", where)
    return None


def _staff_median(points: list[PricePoint], today: dt.date) -> float | None:
    recent = today - dt.timedelta(days=STAFF_RECENT_DAYS)
    prices = [p.price for p in points if p.reporter_id is None and p.observed_on >= recent]
    return float(statistics.median(prices)) if len(prices) >= MIN_STAFF else None


def _daily_median(points: list[PricePoint], today: dt.date, reporter_id: int | None) -> float | None:
    # (market, day) → reporter → prices; staff rows of a day count as one more reporter.
    days: dict[tuple[int, dt.date], dict[int | None, list[int]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        if p.observed_on >= today:
            continue  # the day being reported cannot vouch for itself
        if reporter_id is not None and p.reporter_id == reporter_id:
            continue  # nor can the reporter
        days[(p.market_id, p.observed_on)][p.reporter_id].append(p.price)
    values = [
        statistics.median(statistics.median(prices) for prices in by_reporter.values())
        for by_reporter in days.values()
    ]
    return float(statistics.median(values)) if len(values) >= MIN_DAYS else None


def out_of_range(price: float, median: float, tolerance: float) -> bool:
    return median > 0 and not (median / tolerance <= price <= median * tolerance)
