"""Staff corrections of published prices: correct or withdraw an observation (audited), the
outlier rule staff prices share with enumerators' reports, and the correction SMS to exactly the
producers whose alert carried the wrong value.

Only `published` rows are read downstream (replies, USSD screens, trends, forecasts, the console,
the API, enumerators' medians), so marking the old row `corrected` or `withdrawn` is all it takes
for everything to follow. Services never commit: the caller's unit of work does.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import and_, or_, update
from sqlmodel import Session, col, select

from gateway.core.settings import Settings
from gateway.data import auth, models
from gateway.data.content import overrides
from gateway.outbound import broadcast
from menus import pricecheck
from menus.sms import MAX_REPORT_PRICE, REPORT_WINDOW_DAYS
from messages import Catalog
from messages.formatting import money, short_date
from messages.sms import measure, render_sms

REASON_MAX = 200
NOT_YET_SENT = ("queued",)  # cancelled: these phones get the corrected value instead, or nothing


class CorrectionError(ValueError):
    """A correction that cannot be made; `status` is the HTTP status it is answered with."""

    status = 422


class NotFound(CorrectionError):
    status = 404


class Conflict(CorrectionError):
    status = 409


# -- the outlier rule (the same as for enumerators' SMS reports, menus/sms.py check_report) --------


@dataclass(frozen=True)
class Outlier:
    crop_id: int
    market_id: int
    price: int
    unit: str
    median: float
    ratio: float  # price / median

    def describe(self, crop: str, market: str) -> str:
        return (f"{crop} at {market}: {self.price} F/{self.unit} is {self.ratio:.2g}x the reference price "
                f"of {round(self.median)} F")


def outlier(session: Session, *, crop_id: int, market_id: int, price: int, unit: str, today: dt.date,
            tolerance: float, ignore: int | None = None) -> Outlier | None:
    """The price is above x or below 1/x of the reference enumerators' reports are checked against
    (menus.pricecheck: recent staff prices, else a median of earlier days that reports alone cannot
    move; this market, else the crop everywhere, same unit). With too little history nothing is
    flagged: staff are the reference then. `ignore`: an observation left out (the one being corrected)."""
    since = today - dt.timedelta(days=REPORT_WINDOW_DAYS)
    obs = models.PriceObservation
    query = select(obs.price, obs.market_id, obs.observed_on, obs.reported_by_id).where(
        obs.crop_id == crop_id, obs.unit == unit, obs.status == "published", obs.observed_on >= since
    )
    if ignore is not None:
        query = query.where(obs.id != ignore)
    points = [pricecheck.PricePoint(*row) for row in session.exec(query).all()]
    found = pricecheck.reference(points, market_id=market_id, today=today)
    if found is None or not pricecheck.out_of_range(price, found.median, tolerance):
        return None
    return Outlier(crop_id, market_id, price, unit, found.median, price / found.median)


# -- correcting and withdrawing -----------------------------------------------------------------


def _reason(reason: str | None) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise CorrectionError("a reason is required")
    if len(reason) > REASON_MAX:
        raise CorrectionError(f"the reason is longer than {REASON_MAX} characters")
    return reason


def _published(session: Session, obs_id: int) -> models.PriceObservation:
    row = session.get(models.PriceObservation, obs_id)
    if row is None:
        raise NotFound(f"no price #{obs_id}")
    if row.status != "published":
        later = session.exec(
            select(models.PriceObservation.id).where(models.PriceObservation.replaces_id == obs_id)
        ).first()
        where = f" (see #{later})" if later else ""
        raise Conflict(f"price #{obs_id} is already {row.status}{where}; only a published price can change")
    # Takes the row's write lock now (both backends), so that two staff members correcting the
    # same price one after the other see each other's change instead of both succeeding.
    obs = models.PriceObservation
    session.exec(update(obs).where(obs.id == obs_id).values(changed_at=obs.changed_at))
    session.refresh(row)
    if row.status != "published":
        raise Conflict(f"price #{obs_id} was just changed by someone else ({row.status})")
    return row


def active_codes(session: Session, model) -> list[str]:
    return list(session.exec(
        select(model.code).where(model.active == True).order_by(model.sort_order, model.id)  # noqa: E712
    ).all())


SNAPSHOT = ("status", "price", "unit", "kind", "observed_on", "crop_id", "market_id")


def correct(session: Session, staff: auth.Staff, *, obs_id: int, price: int, reason: str, now: dt.datetime,
            unit: str | None = None, kind: str | None = None) -> models.PriceObservation:
    """Mark the published row `corrected` and publish the right value in its place."""
    reason = _reason(reason)
    if not 0 < int(price) <= MAX_REPORT_PRICE:
        raise CorrectionError(f"{price!r} is not a price in FCFA")
    old = _published(session, obs_id)
    unit, kind = unit or old.unit, kind or old.kind
    if unit not in active_codes(session, models.Unit):
        raise CorrectionError(f"unknown unit {unit!r}")
    if kind not in active_codes(session, models.PriceKind):
        raise CorrectionError(f"unknown price kind {kind!r}")
    if (int(price), unit, kind) == (old.price, old.unit, old.kind):
        raise CorrectionError("the correction is the same as the published price")
    stamp = now.astimezone(dt.timezone.utc)
    before = auth.snapshot(old, SNAPSHOT)
    old.status, old.changed_by, old.changed_at = "corrected", staff.email, stamp
    session.add(old)
    new = models.PriceObservation(
        crop_id=old.crop_id, market_id=old.market_id, observed_on=old.observed_on, price=int(price), unit=unit,
        kind=kind, source=old.source, created_at=stamp, status="published", reported_by_id=old.reported_by_id,
        replaces_id=old.id, changed_by=staff.email, changed_at=stamp,
    )
    session.add(new)
    session.flush()
    auth.audit(session, staff, action="correct", entity="price", entity_id=old.id, before=before,
               after={**auth.snapshot(new, SNAPSHOT), "id": new.id, "replaces_id": old.id, "reason": reason}, now=now)
    _stop_queued_alerts(session, old, now=now, requeue=True)
    return new


def withdraw(session: Session, staff: auth.Staff, *, obs_id: int, reason: str, now: dt.datetime) -> models.PriceObservation:
    """Mark the published row `withdrawn`: the price before it is the latest again."""
    reason = _reason(reason)
    old = _published(session, obs_id)
    stamp = now.astimezone(dt.timezone.utc)
    before = auth.snapshot(old, SNAPSHOT)
    old.status, old.changed_by, old.changed_at = "withdrawn", staff.email, stamp
    session.add(old)
    auth.audit(session, staff, action="withdraw", entity="price", entity_id=old.id, before=before,
               after={"status": "withdrawn", "reason": reason}, now=now)
    _stop_queued_alerts(session, old, now=now, requeue=False)
    return old


def current(session: Session, obs: models.PriceObservation) -> models.PriceObservation:
    """Where a chain of corrections ends: the published value now, or a withdrawn row."""
    seen = {obs.id}
    while obs.status == "corrected":
        later = session.exec(
            select(models.PriceObservation).where(models.PriceObservation.replaces_id == obs.id)
        ).first()
        if later is None or later.id in seen:
            break
        seen.add(later.id)
        obs = later
    return obs


def _stop_queued_alerts(session: Session, obs: models.PriceObservation, *, now: dt.datetime, requeue: bool) -> None:
    """Alerts still waiting with the wrong value are cancelled; after a correction their
    producers get a fresh alert (expanded later, so with the corrected value); after a
    withdrawal, the other prices of that alert only, or nothing."""
    stamp = now.astimezone(dt.timezone.utc)
    m = models.SmsMessage
    stopped = list(broadcast.carrying_messages(session, obs, NOT_YET_SENT))
    if stopped:
        session.exec(
            update(m).where(col(m.id).in_([r[0] for r in stopped]), m.status == "queued")
            .values(status="skipped", failure_reason="price_corrected" if requeue else "price_withdrawn", updated_at=stamp)
        )
        by_broadcast: dict[int, set[int]] = defaultdict(set)
        for _, _, producer_id, _, broadcast_id in stopped:
            if producer_id is not None:
                by_broadcast[broadcast_id].add(producer_id)
        for broadcast_id, producers in by_broadcast.items():
            original = session.get(models.Broadcast, broadcast_id)
            pairs = [tuple(p) for p in original.audience.get("pairs", [])]
            if not requeue:
                pairs = [p for p in pairs if p != (obs.crop_id, obs.market_id)]
            broadcast.publish_alerts(session, pairs=pairs, now=now, producers=producers,
                                     title=f"Re-sent after a price change (#{broadcast_id})")
    o = models.PriceObservation
    newer = session.exec(
        select(o.id).where(o.crop_id == obs.crop_id, o.market_id == obs.market_id, o.status == "published",
                           or_(o.observed_on > obs.observed_on, and_(o.observed_on == obs.observed_on, o.id > obs.id)))
    ).first()
    if not requeue and newer is None:
        # Alerts not yet expanded would announce the previous price as news: leave this pair out.
        b = models.Broadcast
        for row in session.exec(select(b).where(b.kind == "alert", b.status == "pending")).all():
            pairs = [p for p in row.audience.get("pairs", []) if tuple(p) != (obs.crop_id, obs.market_id)]
            if len(pairs) != len(row.audience.get("pairs", [])):
                row.audience = {**row.audience, "pairs": pairs}
                if not pairs:
                    row.status = "cancelled"
                row.updated_at = stamp
                session.add(row)


# -- the correction SMS --------------------------------------------------------------------------


def correction_texts(session: Session, obs: models.PriceObservation, catalog: Catalog, settings: Settings) -> dict[str, str]:
    """The correction SMS in each language, rendered for sending."""
    catalog = catalog.with_overrides(overrides(session))
    now_row = current(session, obs)
    crop = session.get(models.Crop, obs.crop_id)
    market = session.get(models.Market, obs.market_id)
    out = {}
    for language in ("fr", "bm"):
        def unit(code: str) -> str:
            return catalog.text(language, f"unit.{code}") if catalog.has(f"unit.{code}") else code

        params = dict(crop=crop.name_bm if language == "bm" and crop.name_bm else crop.name_fr,
                      market=market.name, date=short_date(obs.observed_on), old=money(obs.price), old_unit=unit(obs.unit))
        if now_row.status == "published" and now_row.id != obs.id:
            text = catalog.text(language, "correction.corrected", price=money(now_row.price), unit=unit(now_row.unit), **params)
        else:
            text = catalog.text(language, "correction.withdrawn", **params)
        out[language] = render_sms(text, language, fold=settings.sms_fold)
    return out


@dataclass(frozen=True)
class SmsPreview:
    observation_id: int
    texts: dict[str, str]
    languages: list[broadcast.LanguagePreview]
    recipients: int
    estimated_cost: float
    already: models.Broadcast | None  # the correction SMS already created for this price


def existing_correction(session: Session, obs_id: int) -> models.Broadcast | None:
    b = models.Broadcast
    for row in session.exec(select(b).where(b.kind == "correction").order_by(b.id)).all():
        if (row.audience or {}).get("observation") == obs_id:
            return row
    return None


def preview(session: Session, obs_id: int, catalog: Catalog, settings: Settings) -> SmsPreview:
    obs = session.get(models.PriceObservation, obs_id)
    if obs is None:
        raise NotFound(f"no price #{obs_id}")
    if obs.status not in ("corrected", "withdrawn"):
        raise Conflict(f"price #{obs_id} is {obs.status}: correct or withdraw it first")
    texts = correction_texts(session, obs, catalog, settings)
    counts: dict[str, int] = defaultdict(int)
    for _, language in broadcast.alert_receivers(session, obs).values():
        counts[language if language in texts else "fr"] += 1
    languages = []
    for language, text in texts.items():
        e = measure(text)
        n = counts.get(language, 0)
        languages.append(broadcast.LanguagePreview(language, text, e.encoding, e.segments, n,
                                                   n * e.segments * settings.sms_price_per_segment))
    return SmsPreview(obs_id, texts, languages, sum(counts.values()), sum(p.estimated_cost for p in languages),
                      existing_correction(session, obs_id))


def send_correction_sms(session: Session, staff: auth.Staff, *, obs_id: int, catalog: Catalog, settings: Settings,
                        now: dt.datetime) -> tuple[models.Broadcast, bool]:
    """Queue the correction SMS (a broadcast of kind `correction`, sent by the worker under the
    usual budgets, quiet hours and opt-outs). Once per price: (broadcast, created?)."""
    obs = models.PriceObservation
    # The row lock first, then the check: a second press waits for the first and finds it.
    session.exec(update(obs).where(obs.id == obs_id).values(changed_at=obs.changed_at))
    found = preview(session, obs_id, catalog, settings)
    if found.already is not None:
        return found.already, False
    if found.recipients == 0:
        raise CorrectionError("nobody received an alert with this price: there is nothing to correct by SMS")
    stamp = now.astimezone(dt.timezone.utc)
    row = models.Broadcast(
        kind="correction", status="pending", title=f"Correction of price #{obs_id}",
        text_fr=found.texts["fr"], text_bm=found.texts["bm"], audience={"observation": obs_id},
        created_by=staff.email, created_at=stamp, updated_at=stamp,
    )
    session.add(row)
    session.flush()
    auth.audit(session, staff, action="correction_sms", entity="price", entity_id=obs_id,
               after={"broadcast": row.id, "recipients": found.recipients, "estimated_cost": found.estimated_cost}, now=now)
    return row, True
