"""Market linkages: offers totalled per demand and producer group, staff decisions on offers with
the farmer's SMS, the buyers' daily summary of new offers, and the services directory's checks.

Functions run inside the caller's unit of work and never commit, except `send_buyer_summaries`,
which is a job (it opens its own).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from gateway.core.db import Database
from gateway.core.phones import InvalidPhone, mask, parse_phone
from gateway.core.settings import Settings
from gateway.data import models
from gateway.data.content import overrides
from gateway.data.producers import insert_ignore
from gateway.outbound.budgets import in_quiet_hours
from gateway.outbound.outbox import queue_sms
from menus.types import SERVICE_CATEGORIES, SERVICE_NAME_MAX, SERVICE_SUMMARY_MAX
from messages import Catalog, to_ussd
from messages.formatting import money
from messages.sms import measure, render_sms

log = logging.getLogger("gateway.linkage")

OFFER_STATUSES = ("pending", "accepted", "declined")
# One-to-one SMS nobody asked for just now (staff decisions, buyers' summaries): outside the bulk
# budgets (a handful a day), never in quiet hours (broadcast.worker_step holds them; `queue_notice`
# also dates them past the quiet window, so the row says when it will go).
NOTICE_KIND = "notice"
# Buyers are companies that work in French; the Bambara texts keep the catalogs symmetrical.
BUYER_LANGUAGE = "fr"


# -- totals ------------------------------------------------------------------------------------------


@dataclass
class Tally:
    count: int = 0
    kg: int = 0


@dataclass
class Totals:
    """Offers counted and summed by status."""

    by_status: dict[str, Tally] = field(default_factory=lambda: {s: Tally() for s in OFFER_STATUSES})

    def add(self, status: str, count: int, kg: int) -> None:
        tally = self.by_status.setdefault(status, Tally())
        tally.count += count
        tally.kg += kg

    def kg(self, *statuses: str) -> int:
        return sum(self.by_status[s].kg for s in statuses if s in self.by_status)

    def count(self, *statuses: str) -> int:
        return sum(self.by_status[s].count for s in statuses if s in self.by_status)

    @property
    def live(self) -> Tally:
        """Offers still standing: pending and accepted."""
        return Tally(self.count("pending", "accepted"), self.kg("pending", "accepted"))


@dataclass
class DemandTotals:
    wanted: int
    overall: Totals = field(default_factory=Totals)
    clusters: dict[str, Totals] = field(default_factory=dict)

    @property
    def covered(self) -> bool:
        """Accepted offers reach the quantity wanted."""
        return self.overall.kg("accepted") >= self.wanted

    @property
    def covered_with_pending(self) -> bool:
        """Accepted and pending offers together reach it (if staff accept the pending ones)."""
        return self.overall.kg("accepted", "pending") >= self.wanted


def offer_totals(session: Session, demands: Iterable[models.Demand]) -> dict[int, DemandTotals]:
    """Per demand: offers by status, overall and per producer group ("" for none)."""
    result = {d.id: DemandTotals(wanted=d.quantity_kg) for d in demands}
    if not result:
        return result
    o, p = models.Offer, models.Producer
    rows = session.exec(
        select(o.demand_id, p.cluster, o.status, func.count(), func.coalesce(func.sum(o.quantity_kg), 0))
        .join(p, p.id == o.producer_id)
        .where(col(o.demand_id).in_(list(result)))
        .group_by(o.demand_id, p.cluster, o.status)
    ).all()
    for demand_id, cluster, status, count, kg in rows:
        totals = result[demand_id]
        totals.overall.add(status, count, int(kg))
        totals.clusters.setdefault(cluster or "", Totals()).add(status, count, int(kg))
    return result


def is_expired(demand: models.Demand, today: dt.date) -> bool:
    """Past its date (farmers' calendar): shown as expired, gone from USSD, no offers taken. It is
    computed, not a status a job sets, so that extending the date reopens it at once."""
    return demand.valid_until < today


# -- notices -----------------------------------------------------------------------------------------


def quiet_until(now: dt.datetime, settings: Settings) -> dt.datetime | None:
    """The end of the quiet window `now` is in (UTC), or None outside it."""
    if not in_quiet_hours(now, settings):
        return None
    local = now.astimezone(settings.tz)
    end = dt.datetime.combine(local.date(), settings.quiet_window[1], settings.tz)
    if end <= local:
        end += dt.timedelta(days=1)
    return end.astimezone(dt.timezone.utc)


def queue_notice(
    session: Session, *, phone: str, text: str, language: str, now: dt.datetime, settings: Settings,
    producer_id: int | None = None,
) -> models.SmsMessage:
    """One SMS from staff or a daily job to one phone (see NOTICE_KIND)."""
    row = queue_sms(session, phone=phone, text=text, language=language, kind=NOTICE_KIND,
                    now=now.astimezone(dt.timezone.utc), fold=settings.sms_fold, producer_id=producer_id)
    row.next_attempt_at = quiet_until(now, settings)
    session.add(row)
    return row


# -- decisions on offers -----------------------------------------------------------------------------


@dataclass
class Decision:
    changed: bool
    offer: models.Offer | None
    sms_id: int | None = None
    note: str = ""  # why no SMS went, when none did


def decide_offer(
    session: Session, *, offer_id: int, accept: bool, staff_email: str, now: dt.datetime,
    catalog: Catalog, settings: Settings,
) -> Decision:
    """Accept or decline a pending offer and queue the farmer's SMS in their language. Once: the
    conditional UPDATE lets one click (of any number, in any process) through."""
    o = models.Offer
    status = "accepted" if accept else "declined"
    stamp = now.astimezone(dt.timezone.utc)
    won = session.exec(
        update(o).where(o.id == offer_id, o.status == "pending")
        .values(status=status, decided_by=staff_email[:120], decided_at=stamp).returning(o.id)
    ).first()
    offer = session.get(o, offer_id, populate_existing=True)
    if won is None or offer is None:
        return Decision(False, offer)
    producer = session.get(models.Producer, offer.producer_id)
    if producer.opted_out:
        return Decision(True, offer, note="the producer opted out of SMS")
    demand = session.get(models.Demand, offer.demand_id)
    crop = session.get(models.Crop, demand.crop_id)
    buyer = session.get(models.Buyer, demand.buyer_id)
    language = producer.language or "fr"
    text = catalog.text(
        language, f"linkage.offer_{status}", buyer=buyer.name, quantity=money(offer.quantity_kg),
        crop=crop.name_bm if language == "bm" and crop.name_bm else crop.name_fr, place=demand.place,
        ussd=settings.ussd_code,
    )
    row = queue_notice(session, phone=producer.phone, text=text, language=language, now=now, settings=settings,
                       producer_id=producer.id)
    offer.notified_sms_id = row.id
    session.add(offer)
    return Decision(True, offer, sms_id=row.id)


# -- the buyers' daily summary -----------------------------------------------------------------------


@dataclass
class BuyerSummaryResult:
    buyer: str
    phone: str
    offers: int
    text: str
    queued: bool = False
    already_sent: bool = False


def _summary_text(catalog: Catalog, items: list[str], count: int, fold: bool) -> str:
    """As many demands as one SMS holds (they come largest first), then how many are left out."""
    for shown in range(len(items), 0, -1):
        parts = items[:shown]
        if shown < len(items):
            parts.append(catalog.text(BUYER_LANGUAGE, "linkage.buyer_summary_more", count=len(items) - shown))
        text = catalog.text(BUYER_LANGUAGE, "linkage.buyer_summary", count=count, items="; ".join(parts))
        if measure(render_sms(text, BUYER_LANGUAGE, fold=fold)).segments == 1 or shown == 1:
            return text
    return catalog.text(BUYER_LANGUAGE, "linkage.buyer_summary", count=count, items="")


def _buyer_summary(session: Session, buyer: models.Buyer, today: dt.date, catalog: Catalog, fold: bool):
    """(new offers, last offer id, text) since the buyer's last summary, or None when nothing is new."""
    bs, o, d = models.BuyerSummary, models.Offer, models.Demand
    last = session.exec(select(func.coalesce(func.max(bs.last_offer_id), 0)).where(bs.buyer_id == buyer.id)).one()
    new = session.exec(
        select(o.id, o.demand_id, o.quantity_kg)
        .join(d, d.id == o.demand_id)
        .where(d.buyer_id == buyer.id, o.id > last, o.status != "declined")
    ).all()
    if not new:
        return None
    demands = {
        row.id: row
        for row in session.exec(select(d).where(col(d.id).in_({n.demand_id for n in new})))
        if row.status == "open" and not is_expired(row, today)
    }
    live = [n for n in new if n.demand_id in demands]
    if not live:
        return None
    new_kg: dict[int, int] = defaultdict(int)
    for n in live:
        new_kg[n.demand_id] += n.quantity_kg
    totals = offer_totals(session, demands.values())
    crops = {c.id: c for c in session.exec(select(models.Crop))}
    items = [
        catalog.text(
            BUYER_LANGUAGE, "linkage.buyer_summary_item", crop=crops[demands[i].crop_id].name_fr,
            place=demands[i].place, new=money(kg), offered=money(totals[i].overall.live.kg),
            wanted=money(demands[i].quantity_kg),
        )
        for i, kg in sorted(new_kg.items(), key=lambda item: (-item[1], item[0]))
    ]
    return len(live), max(n.id for n in new), _summary_text(catalog, items, len(live), fold)


def send_buyer_summaries(
    db: Database, clock: Callable[[], dt.datetime], catalog: Catalog, settings: Settings, *, dry_run: bool = False,
) -> list[BuyerSummaryResult]:
    """One SMS per opted-in buyer with a phone and new offers on their open demands, once a day
    (a row per buyer and day: any number of workers, or the command twice, send it once)."""
    now = clock()
    today = now.astimezone(settings.tz).date()
    results = []
    with db.unit_of_work() as session:
        catalog = catalog.with_overrides(overrides(session))  # staff's current wording
        b = models.Buyer
        buyers = session.exec(
            select(b).where(b.daily_summary == True, col(b.phone).is_not(None), b.phone != "").order_by(b.id)  # noqa: E712
        ).all()
        for buyer in buyers:
            summary = _buyer_summary(session, buyer, today, catalog, settings.sms_fold)
            if summary is None:
                continue
            count, last_offer_id, text = summary
            result = BuyerSummaryResult(buyer.name, buyer.phone, count, text)
            results.append(result)
            if dry_run:
                bs = models.BuyerSummary
                result.already_sent = session.exec(
                    select(bs.id).where(bs.buyer_id == buyer.id, bs.day == today)
                ).first() is not None
                continue
            summary_id = insert_ignore(
                session, models.BuyerSummary,
                {"buyer_id": buyer.id, "day": today, "offers": count, "last_offer_id": last_offer_id,
                 "created_at": now.astimezone(dt.timezone.utc)},
                ["buyer_id", "day"],
            )
            if summary_id is None:
                result.already_sent = True
                continue
            row = queue_notice(session, phone=buyer.phone, text=text, language=BUYER_LANGUAGE, now=now, settings=settings)
            session.get(models.BuyerSummary, summary_id).sms_id = row.id
            result.queued = True
            log.info("buyer summary queued", extra={"buyer": buyer.code, "phone": mask(buyer.phone), "offers": count})
    return results


class DailySummaries:
    """The worker loop's guard: at most one look a day, from GATEWAY_BUYER_SUMMARY_HOUR (farmers'
    time) on; a worker started later that day still sends, and the rows keep it to once."""

    def __init__(self) -> None:
        self.done_on: dt.date | None = None

    def tick(self, db: Database, clock: Callable[[], dt.datetime], catalog: Catalog, settings: Settings) -> bool:
        local = clock().astimezone(settings.tz)
        if local.hour < settings.buyer_summary_hour or self.done_on == local.date():
            return False
        send_buyer_summaries(db, clock, catalog, settings)
        self.done_on = local.date()
        return True


# -- the services directory --------------------------------------------------------------------------

SERVICE_FIELDS = ("category", "region", "name", "phone", "summary_fr", "summary_bm", "active")


def check_service(form: dict, regions: Iterable[str]) -> tuple[dict, list[str]]:
    """The entry's values from a console form, and every problem with them (in English, for staff)."""
    values = {name: " ".join(form.get(name, "").split()) for name in ("category", "region", "name", "summary_fr", "summary_bm")}
    values["active"] = form.get("active") == "on"
    problems = []
    if values["category"] not in SERVICE_CATEGORIES:
        problems.append(f"Category must be one of: {', '.join(SERVICE_CATEGORIES)}.")
    if values["region"] not in set(regions):
        problems.append("Choose a region from the list.")
    for name, label, limit, required in (
        ("name", "Name", SERVICE_NAME_MAX, True),
        ("summary_fr", "French summary", SERVICE_SUMMARY_MAX, True),
        ("summary_bm", "Bambara summary", SERVICE_SUMMARY_MAX, False),
    ):
        if required and not values[name]:
            problems.append(f"{label} is required.")
        # Counted as a phone shows it: ɲ becomes "ny", œ "oe".
        elif max(len(values[name]), len(to_ussd(values[name]))) > limit:
            problems.append(f"{label} is too long for a USSD screen: at most {limit} characters.")
    try:
        values["phone"] = parse_phone(form.get("phone", ""))
    except InvalidPhone as exc:
        values["phone"] = form.get("phone", "").strip()[:20]
        problems.append(f"Phone: {exc}.")
    return values, problems
