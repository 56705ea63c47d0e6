"""SMS service: inbound keywords, delivery reports, opt-outs. Runs inside the caller's unit of
work; replies are queued rows, sent after the transaction commits."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.actions.effects import apply_effects
from gateway.aggregators.africastalking import DeliveryReport, InboundSms
from gateway.core.phones import mask
from gateway.data import models
from gateway.data.dataview import SqlDataView
from gateway.data.producers import ensure_producer, insert_ignore, profile_of
from gateway.outbound import replies
from gateway.outbound.outbox import MAX_ATTEMPTS, opt_out, queue_sms, retry_later
from gateway.outbound.replies import ReplyRules
from menus.sms import SmsConfig, respond
from messages import Catalog

log = logging.getLogger("gateway.sms")

FINAL = {"delivered", "undeliverable"}
ABSENT_RETRY = dt.timedelta(hours=1)
RECONCILE_WINDOW = dt.timedelta(hours=24)


# Intents whose effects change what the farmer receives: their confirmation is never withheld.
CONFIRMED_INTENTS = frozenset({"stop", "start", "language", "subscribe", "channel"})
CONFIRMATION_ALLOWANCE = 5


def replies_today(session: Session, phone: str, now: dt.datetime, tz: ZoneInfo) -> int:
    local = now.astimezone(tz)
    midnight = dt.datetime.combine(local.date(), dt.time(), tz).astimezone(dt.timezone.utc)
    return session.exec(
        select(func.count())
        .select_from(models.SmsMessage)
        .where(
            models.SmsMessage.phone == phone,
            models.SmsMessage.kind == "reply",
            models.SmsMessage.created_at >= midnight,
        )
    ).one()


def receive(
    session: Session,
    *,
    message: InboundSms,
    provider: str,
    now: dt.datetime,
    catalog: Catalog,
    config: SmsConfig,
    replies_per_day: int,
    tz: ZoneInfo,
    rules: ReplyRules | None = None,
) -> int | None:
    """Handle one inbound SMS once. Returns the id of the queued reply, if any: none when a
    ceiling of `rules` (gateway.outbound.replies; default: replies_per_day, Mali only) refuses it."""
    rules = rules or ReplyRules(per_number_per_day=replies_per_day, tz=tz)
    stamp = now.astimezone(dt.timezone.utc)
    inbound_id = insert_ignore(
        session,
        models.SmsInbound,
        {
            "provider": provider,
            "provider_id": message.provider_id,
            "phone": message.phone,
            "to": message.to,
            "text": message.text,
            "link_id": message.link_id,
            "network_code": message.network_code,
            "cost": message.cost,
            "received_at": message.received_at or stamp,
            "created_at": stamp,
        },
        ["provider", "provider_id"],
    )
    if inbound_id is None:
        log.info("sms already handled", extra={"provider_id": message.provider_id, "phone": mask(message.phone)})
        return None
    inbound = session.get(models.SmsInbound, inbound_id)
    producer = ensure_producer(session, message.phone)
    if producer.role == "enumerator":
        # One report per number at a time, so that the daily report limit counts every report
        # before this one (PostgreSQL; SQLite's write lock, taken above, already does).
        session.exec(select(models.Producer.id).where(models.Producer.id == producer.id).with_for_update())
    reply = respond(
        message.text,
        profile=profile_of(session, producer),
        data=SqlDataView(session),
        catalog=catalog,
        now=now,
        config=config,
    )
    apply_effects(
        session,
        phone=message.phone,
        effects=reply.effects,
        now=stamp,
        today=now.astimezone(tz).date(),
        session_ref=f"sms:{message.provider_id}",
        channel="sms",
        rules=rules,
    )
    inbound.intent = reply.intent
    session.add(inbound)
    # Counted before queueing: the per-number cap stops loops with other automatic responders,
    # the country and the global ceilings stop SMS pumping (see gateway.outbound.replies).
    # A change of state (STOP, START, language) is always confirmed, within a small allowance
    # beyond the daily cap that an automatic responder's loop still cannot run away with.
    confirms = reply.intent in CONFIRMED_INTENTS and bool(reply.effects)
    cap = rules.per_number_per_day + (CONFIRMATION_ALLOWANCE if confirms else 0)
    sent: list[int] = []  # counted by the check, under the number's lock

    def count_sent() -> int:
        sent.append(replies_today(session, message.phone, stamp, rules.tz))
        return sent[-1]

    refused = replies.check(session, producer=producer, now=stamp, rules=rules, per_number=cap, sent_today=count_sent)
    if refused is not None:
        inbound.note = "rate_limited" if refused == replies.PER_NUMBER else f"refused:{refused}"
        return None
    text = reply.text
    if sent and sent[0] + 1 == rules.per_number_per_day:
        # The day's last answer says so, rather than leaving the next questions unanswered; once
        # a day per number, so a second segment (when the answer filled the first) is worth it.
        text = f"{text} {catalog.text(reply.language, 'sms.reply_limit_last')}"
    row = queue_sms(
        session,
        phone=message.phone,
        text=text,
        language=reply.language,
        kind="reply",
        now=stamp,
        fold=config.fold,
        producer_id=producer.id,
        inbound_id=inbound.id,
    )
    return row.id


def record_delivery(session: Session, *, report: DeliveryReport, now: dt.datetime) -> bool:
    """Update the message a delivery report speaks of; False when no message has that id."""
    stamp = now.astimezone(dt.timezone.utc)
    row = session.exec(
        select(models.SmsMessage).where(models.SmsMessage.provider_message_id == report.message_id)
    ).first()
    if row is None:
        row = _reconcile(session, report, stamp)
    if row is None:
        return False
    if report.blacklisted:
        opt_out(session, row.phone, stamp)
    # Reports can arrive late or out of order: a final state is never overwritten.
    if row.status in FINAL:
        return True
    if report.status == "failed" and row.status == "queued":
        return True  # the same report again: the retry is already scheduled
    if report.status == "failed" and row.attempts < MAX_ATTEMPTS:
        # The phone was off or out of reach: worth another try, later.
        row.provider_status = report.provider_status
        row.failure_reason = report.failure_reason
        row.error_kind = "absent"
        retry_later(row, stamp + ABSENT_RETRY)
        session.add(row)
        return True
    row.status = report.status
    row.provider_status = report.provider_status
    row.failure_reason = report.failure_reason
    if report.status == "delivered":
        row.delivered_at = stamp
    row.updated_at = stamp
    session.add(row)
    return True


def _reconcile(session: Session, report: DeliveryReport, stamp: dt.datetime) -> models.SmsMessage | None:
    """A report for an id we never learnt: the answer to a request that timed out. Adopt it for
    that phone's oldest unconfirmed message of the last day, which settles that message."""
    if report.phone is None:
        return None
    m = models.SmsMessage
    row = session.exec(
        select(m)
        .where(
            m.phone == report.phone,
            m.status == "unconfirmed",
            col(m.provider_message_id).is_(None),
            m.updated_at >= stamp - RECONCILE_WINDOW,
        )
        .order_by(m.id)
    ).first()
    if row is not None:
        row.provider_message_id = report.message_id
        row.error_kind = ""
        log.info("unconfirmed message reconciled", extra={"sms_id": row.id, "phone": mask(row.phone)})
    return row


def record_optout(session: Session, *, phone: str, now: dt.datetime) -> None:
    opt_out(session, phone, now.astimezone(dt.timezone.utc))
