"""Applying what the menus and the SMS responder ask for, inside the caller's transaction.

Every effect is idempotent, so that a request the aggregator sends twice (a retry after a
timeout) leaves the same state as once.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from gateway.core.phones import mask
from gateway.data import models
from gateway.data.content import overrides
from gateway.data.producers import ensure_producer, insert_ignore
from gateway.outbound import replies
from gateway.outbound.broadcast import publish_alerts
from gateway.outbound.outbox import queue_sms
from gateway.outbound.replies import ReplyRules
from menus import types as m
from messages import Catalog, default_catalog

log = logging.getLogger("gateway.effects")

# Directory entries sent by SMS per caller in 24 hours: each costs the project an SMS.
MAX_SERVICE_SMS_PER_DAY = 5


def apply_effects(
    session: Session,
    *,
    phone: str,
    effects: tuple[m.Effect, ...],
    now: dt.datetime,
    today: dt.date,
    session_ref: str = "",
    channel: str = "ussd",
    catalog: Catalog | None = None,
    fold: bool = True,
    rules: ReplyRules | None = None,
) -> None:
    """`catalog` and `fold` are for the SMS some effects send (default: the files with staff
    overrides, folded to GSM-7 when that saves segments); `rules` bound them like any reply
    (gateway.outbound.replies; default: Mali only, the default ceilings)."""
    if not effects:
        return
    producer = ensure_producer(session, phone)
    for effect in effects:
        match effect:
            case m.SetLanguage(language=language):
                producer.language = language
            case m.SetProfileField(field=name, value=value):
                setattr(producer, name, value)
            case m.Subscribe(crop_id=crop_id, market_id=market_id):
                producer.opted_out = False
                insert_ignore(
                    session,
                    models.Subscription,
                    {"producer_id": producer.id, "crop_id": crop_id, "market_id": market_id, "created_at": now},
                    ["producer_id", "crop_id", "market_id"],
                )
            case m.Unsubscribe(crop_id=crop_id, market_id=market_id):
                session.exec(
                    delete(models.Subscription).where(
                        models.Subscription.producer_id == producer.id,
                        models.Subscription.crop_id == crop_id,
                        models.Subscription.market_id == market_id,
                    )
                )
            case m.StopAlerts():
                producer.opted_out = True
            case m.StartAlerts():
                producer.opted_out = False
            case m.SetAlertChannel(channel=channel) if channel in m.ALERT_CHANNELS:
                producer.alert_channel = channel
            case m.RecordOffer(demand_id=demand_id, quantity_kg=quantity):
                _record_offer(session, producer, demand_id, quantity, session_ref, channel, now, today)
            case m.SendService(service_id=service_id):
                catalog = catalog or default_catalog().with_overrides(overrides(session))
                _send_service(session, producer, service_id, session_ref, now, catalog, fold, rules or ReplyRules())
            case m.ReportPrice():
                if not effect.held_reason:
                    publish_alerts(session, pairs=[(effect.crop_id, effect.market_id)], now=now,
                                   title=f"Report by {channel}")
                session.add(
                    models.PriceObservation(
                        crop_id=effect.crop_id,
                        market_id=effect.market_id,
                        observed_on=today,
                        price=effect.price,
                        unit=effect.unit,
                        kind=effect.kind,
                        source=f"{channel}:{phone}"[:64],
                        status="held" if effect.held_reason else "published",
                        review_reason=effect.held_reason[:200],
                        reported_by_id=producer.id,
                        created_at=now,
                    )
                )
            case _:
                raise TypeError(f"unknown effect {effect!r}")
    producer.updated_at = now
    session.add(producer)


def _record_offer(session, producer, demand_id, quantity, session_ref, channel, now, today) -> None:
    demand = session.get(models.Demand, demand_id)
    # The demand may have closed or expired since the screen showed it: no offer on it then.
    if demand is None or demand.status != "open" or demand.valid_until < today:
        log.info("offer on a closed demand ignored", extra={"demand": demand_id, "phone": mask(producer.phone)})
        return
    offer = session.exec(
        select(models.Offer).where(
            models.Offer.demand_id == demand_id,
            models.Offer.producer_id == producer.id,
            models.Offer.session_ref == session_ref,
        )
    ).first()
    if offer is None:
        session.add(
            models.Offer(
                demand_id=demand_id,
                producer_id=producer.id,
                quantity_kg=quantity,
                channel=channel,
                session_ref=session_ref,
                created_at=now,
            )
        )
    else:
        offer.quantity_kg = quantity


def _send_service(
    session, producer, service_id, session_ref, now, catalog: Catalog, fold: bool, rules: ReplyRules
) -> None:
    """One SMS with a directory entry, once per entry and session (a retried hop sends nothing
    more), at most MAX_SERVICE_SMS_PER_DAY a day per caller."""
    service = session.get(models.Service, service_id)
    if service is None or not service.active:
        return  # deactivated since the screen showed it
    request_id = insert_ignore(
        session,
        models.ServiceRequest,
        {"service_id": service_id, "producer_id": producer.id, "session_ref": session_ref, "created_at": now},
        ["service_id", "producer_id", "session_ref"],
    )
    if request_id is None:
        return
    sr = models.ServiceRequest

    def sent() -> int:
        return session.exec(
            select(func.count()).select_from(sr).where(
                sr.producer_id == producer.id, col(sr.sms_id).is_not(None), sr.created_at >= now - dt.timedelta(days=1)
            )
        ).one()

    # Like any reply: allowed countries, the daily reply budget, the new-number ceiling; and
    # its own per-number cap, counted under the number's lock.
    if replies.check(session, producer=producer, now=now, rules=rules, sent_today=sent,
                     per_number=MAX_SERVICE_SMS_PER_DAY, what="directory sms") is not None:
        return
    language = producer.language or "fr"
    entry = m.ServiceEntry(service.id, service.category, service.region, service.name, service.phone,
                           service.summary_fr, service.summary_bm)
    text = catalog.text(language, "services.sms", name=entry.name, region=entry.region, phone=entry.phone,
                        summary=entry.summary(language))
    # A reply: the caller asked for it and waits, so, like SMS replies, it is claimed first by
    # the worker, outside quiet hours and the daily bulk budgets (which bind alerts and
    # broadcasts); its cost is bounded by once per entry and session and the daily cap above.
    row = queue_sms(session, phone=producer.phone, text=text, language=language, kind="reply", now=now,
                    fold=fold, producer_id=producer.id)
    session.get(sr, request_id).sms_id = row.id
