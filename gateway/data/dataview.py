"""The menus' read-only DataView over SQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Callable, Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.data import models
from menus import types as m
from menus.pricecheck import PricePoint
from messages import to_ussd


class SqlDataView:
    def __init__(self, session: Session) -> None:
        self.session = session

    def crops(self) -> Sequence[m.Crop]:
        rows = self.session.exec(
            select(models.Crop).order_by(models.Crop.sort_order, models.Crop.id)
        )
        return [
            m.Crop(r.id, r.name_fr, r.name_bm, r.default_unit, aliases=split_aliases(r.aliases), active=r.active)
            for r in rows
        ]

    def markets(self) -> Sequence[m.Market]:
        rows = self.session.exec(select(models.Market))
        return [
            m.Market(r.id, r.name, r.region, name_bm=r.name_bm, aliases=split_aliases(r.aliases), active=r.active)
            for r in rows
        ]

    def units(self) -> Sequence[m.Term]:
        return self._terms(models.Unit)

    def languages(self) -> Sequence[m.Language]:
        """Every configured language, disabled ones too (their farmers are told), in menu order."""
        rows = self.session.exec(select(models.Language).order_by(models.Language.sort_order, models.Language.code))
        return [m.Language(r.code, r.name, r.name_fr, r.written, r.voice, r.enabled, r.fallback) for r in rows]

    def kinds(self) -> Sequence[m.Term]:
        return self._terms(models.PriceKind)

    def _terms(self, model) -> list[m.Term]:
        rows = self.session.exec(select(model).order_by(model.sort_order, model.id))
        return [m.Term(r.code, r.name_fr, r.name_bm, split_aliases(r.aliases), r.active) for r in rows]

    def latest_prices(self, crop_id: int) -> Sequence[m.PriceQuote]:
        obs = models.PriceObservation
        # The two latest published observations per market, unit and kind: a change is only
        # meaningful between like and like.
        rank = (
            func.row_number()
            .over(
                partition_by=(obs.market_id, obs.unit, obs.kind),
                order_by=(col(obs.observed_on).desc(), col(obs.id).desc()),
            )
            .label("rank")
        )
        ranked = (
            select(obs.market_id, obs.unit, obs.kind, obs.observed_on, obs.price, rank)
            .where(obs.crop_id == crop_id, obs.status == "published")
            .subquery()
        )
        rows = self.session.exec(
            select(
                ranked.c.market_id,
                ranked.c.unit,
                ranked.c.kind,
                ranked.c.observed_on,
                ranked.c.price,
                ranked.c.rank,
                models.Market.name,
            )
            .join(models.Market, models.Market.id == ranked.c.market_id)
            .where(ranked.c.rank <= 2)
        ).all()
        series: dict[tuple, list] = {}
        for row in rows:
            series.setdefault((row.market_id, row.unit, row.kind), []).append(row)
        best: dict[int, m.PriceQuote] = {}
        for (market_id, unit, kind), points in series.items():
            points.sort(key=lambda r: r.rank)
            latest, previous = points[0], (points[1] if len(points) > 1 else None)
            quote = m.PriceQuote(
                crop_id=crop_id,
                market_id=market_id,
                market_name=latest.name,
                price=latest.price,
                unit=unit,
                kind=kind,
                observed_on=latest.observed_on,
                previous_price=previous.price if previous else None,
                previous_on=previous.observed_on if previous else None,
            )
            # One quote per market: the freshest; wholesale first on the same day.
            current = best.get(market_id)
            if current is None or (quote.observed_on, quote.kind == "wholesale") > (
                current.observed_on,
                current.kind == "wholesale",
            ):
                best[market_id] = quote
        return list(best.values())

    def open_demands(self, today: dt.date) -> Sequence[m.Demand]:
        rows = self.session.exec(
            select(models.Demand, models.Buyer.name)
            .join(models.Buyer, models.Buyer.id == models.Demand.buyer_id)
            .where(models.Demand.status == "open", models.Demand.valid_until >= today)
        ).all()
        return [
            m.Demand(
                id=d.id,
                buyer_name=buyer,
                crop_id=d.crop_id,
                quantity_kg=d.quantity_kg,
                price=d.price,
                unit=d.unit,
                place=d.place,
                valid_until=d.valid_until,
            )
            for d, buyer in rows
        ]

    def tips(self, category: str) -> Sequence[m.Tip]:
        rows = self.session.exec(
            select(models.Tip)
            .where(models.Tip.category == category, models.Tip.active == True)  # noqa: E712
            .order_by(models.Tip.sort_order, models.Tip.id)
        )
        return [
            m.Tip(r.id, r.category, r.crop_id, r.title_fr, r.title_bm, r.text_fr, r.text_bm)
            for r in rows
        ]

    def price_history(
        self, crop_id: int, market_id: int | None, since: dt.date
    ) -> Sequence[tuple[int, str, str, dt.date]]:
        obs = models.PriceObservation
        query = select(obs.price, obs.unit, obs.kind, obs.observed_on).where(
            obs.crop_id == crop_id, obs.status == "published", obs.observed_on >= since
        )
        if market_id is not None:
            query = query.where(obs.market_id == market_id)
        return [tuple(row) for row in self.session.exec(query).all()]

    def price_points(self, crop_id: int, unit: str, since: dt.date) -> Sequence[PricePoint]:
        obs = models.PriceObservation
        rows = self.session.exec(
            select(obs.price, obs.market_id, obs.observed_on, obs.reported_by_id).where(
                obs.crop_id == crop_id, obs.unit == unit, obs.status == "published", obs.observed_on >= since
            )
        ).all()
        return [PricePoint(*row) for row in rows]

    def reports_by(self, producer_id: int, day: dt.date) -> int:
        obs = models.PriceObservation
        return self.session.exec(
            select(func.count()).select_from(obs).where(obs.reported_by_id == producer_id, obs.observed_on == day)
        ).one()

    def services(self, category: str, region: str | None) -> Sequence[m.ServiceEntry]:
        s = models.Service
        query = select(s).where(s.category == category, s.active == True)  # noqa: E712
        if region is not None:
            query = query.where(s.region == region)
        rows = sorted(self.session.exec(query), key=lambda r: (_collate(r.name), r.id))
        return [
            m.ServiceEntry(r.id, r.category, r.region, r.name, r.phone, r.summary_fr, r.summary_bm)
            for r in rows
        ]

    def service_regions(self, category: str) -> Sequence[str]:
        s = models.Service
        regions = self.session.exec(
            select(s.region).where(s.category == category, s.active == True).distinct()  # noqa: E712
        ).all()
        return sorted(regions, key=_collate)


def split_aliases(raw: str) -> tuple[str, ...]:
    """"Tumbutu, Timbuktu" → ("Tumbutu", "Timbuktu"): aliases are stored comma-separated."""
    return tuple(a.strip() for a in (raw or "").split(",") if a.strip())


def _collate(name: str) -> str:
    # In Python, not SQL: the backends' collations disagree on accents and case.
    return to_ussd(name).lower()


class ContentCache:
    """Reference content (crops, markets, languages, latest prices, demands, tips, services) kept
    in memory for a few seconds. Every USSD hop replays the session and reads this content again; a short time to
    live keeps that off the database while staff changes still show within seconds, in every
    process (no invalidation messages to lose).

    A reload that finds the content unchanged keeps the objects it already had: what was built
    from them (the catalog with its overrides, screens laid out into pages: gateway.ussd.service
    .LaidOut, compared by identity) stays valid, instead of being rebuilt by every process every
    few seconds (the saving did not show beyond noise in bench/ussd_profile.py's CPU per hop)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple, tuple[float, object]] = {}
        self._derived: dict[tuple, tuple[tuple, object]] = {}
        self._sweep_at = 0.0

    def get(self, key: tuple, load: Callable[[], object]):
        if self.ttl_s <= 0:
            return load()
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            old = self._entries.get(key)
            if old is not None and _same_content(old[1], value):
                value = old[1]
            self._entries[key] = (now + self.ttl_s, value)
            if now >= self._sweep_at:
                # Some keys are never asked again (today's demands, once the day is over): drop
                # what expired a while ago, so that a server running for months keeps only what
                # is live (a key asked again soon after it expired keeps its objects, above).
                grace = max(self.ttl_s, 60.0)
                self._entries = {k: e for k, e in self._entries.items() if e[0] + grace > now}
                self._sweep_at = now + grace
        return value

    def derived(self, key: tuple, sources: tuple, build: Callable[[], object]):
        """What `build` makes from `sources` (values of this cache), made again only when one
        of them is another object: content unchanged, the same result."""
        with self._lock:
            found = self._derived.get(key)
        if found is not None and len(found[0]) == len(sources) and all(a is b for a, b in zip(found[0], sources)):
            return found[1]
        value = build()
        with self._lock:
            self._derived[key] = (sources, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._derived.clear()


def _same_content(old: object, new: object) -> bool:
    try:
        return bool(old == new)
    except Exception:  # a value that cannot be compared is taken as new
        return False


class CachedDataView:
    """SqlDataView through a ContentCache; the enumerators' checks (price points, reports) are always fresh."""

    def __init__(self, session: Session, cache: ContentCache) -> None:
        self._sql = SqlDataView(session)
        self._cache = cache

    def crops(self) -> Sequence[m.Crop]:
        return self._cache.get(("crops",), lambda: tuple(self._sql.crops()))

    def markets(self) -> Sequence[m.Market]:
        return self._cache.get(("markets",), lambda: tuple(self._sql.markets()))

    def units(self) -> Sequence[m.Term]:
        return self._cache.get(("units",), lambda: tuple(self._sql.units()))

    def languages(self) -> Sequence[m.Language]:
        return self._cache.get(("languages",), lambda: tuple(self._sql.languages()))

    def kinds(self) -> Sequence[m.Term]:
        return self._cache.get(("kinds",), lambda: tuple(self._sql.kinds()))

    def latest_prices(self, crop_id: int) -> Sequence[m.PriceQuote]:
        return self._cache.get(("prices", crop_id), lambda: tuple(self._sql.latest_prices(crop_id)))

    def open_demands(self, today: dt.date) -> Sequence[m.Demand]:
        return self._cache.get(("demands", today), lambda: tuple(self._sql.open_demands(today)))

    def tips(self, category: str) -> Sequence[m.Tip]:
        return self._cache.get(("tips", category), lambda: tuple(self._sql.tips(category)))

    def price_history(self, crop_id: int, market_id: int | None, since: dt.date):
        # Cached like the latest prices (a trend never shows a newer price than the price
        # screen before it); the trend screen read it on every hop that replayed through it.
        return self._cache.get(
            ("history", crop_id, market_id, since), lambda: tuple(self._sql.price_history(crop_id, market_id, since))
        )

    def price_points(self, crop_id: int, unit: str, since: dt.date) -> Sequence[PricePoint]:
        return self._sql.price_points(crop_id, unit, since)

    def reports_by(self, producer_id: int, day: dt.date) -> int:
        return self._sql.reports_by(producer_id, day)

    def services(self, category: str, region: str | None) -> Sequence[m.ServiceEntry]:
        return self._cache.get(
            ("services", category, region), lambda: tuple(self._sql.services(category, region))
        )

    def service_regions(self, category: str) -> Sequence[str]:
        return self._cache.get(
            ("service_regions", category), lambda: tuple(self._sql.service_regions(category))
        )
