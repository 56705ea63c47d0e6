"""Outbound SMS: queue a row in the caller's transaction, send it after commit, record the outcome.

A row is claimed (queued → sending) by a conditional UPDATE before it is sent, so two processes
never send the same row. What happens next depends on the kind of failure:

- accepted: `sent`, with the aggregator's message id (delivery reports complete it);
- throttled, or a transport error before the request reached the aggregator: back to `queued`,
  retried later with backoff;
- an ambiguous outcome (timeout after sending): `unconfirmed`, never resent blindly; delivery
  reports or staff settle it;
- rejected for this number, or an account problem: `failed`, with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Callable, Protocol, Sequence

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from gateway import models
from gateway.aggregators.africastalking import MAX_RECIPIENTS
from gateway.db import Database
from gateway.phones import mask
from gateway.sending import (
    ACCEPTED,
    ACCOUNT,
    FAILED,
    REJECTED,
    SendError,
    SmsSender,
    Throttled,
    TransportError,
)
from messages.sms import measure, render_sms

log = logging.getLogger("gateway.outbox")

MAX_ATTEMPTS = 5
STALE_SENDING = dt.timedelta(minutes=5)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def queue_sms(
    session: Session,
    *,
    phone: str,
    text: str,
    language: str | None,
    kind: str,
    now: dt.datetime,
    fold: bool = True,
    producer_id: int | None = None,
    inbound_id: int | None = None,
) -> models.SmsMessage:
    rendered = render_sms(text, language or "fr", fold=fold)
    encoding = measure(rendered)
    row = models.SmsMessage(
        phone=phone,
        producer_id=producer_id,
        kind=kind,
        language=language,
        text=rendered,
        encoding=encoding.encoding,
        segments=encoding.segments,
        inbound_id=inbound_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


class Claimed(Protocol):
    """What sending needs of a claimed outbox row (a row of `claimed_rows`)."""

    id: int
    phone: str
    text: str
    kind: str
    attempts: int
    segments: int
    producer_id: int | None


def claimed_rows(session: Session, ids: Sequence[int]) -> list[Claimed]:
    """The claimed rows, as light rows of the columns sending needs: a worker claims up to
    thousands at a time, and whole ORM objects cost several times more (the soak test saw the
    resident size step up at each price batch)."""
    if not ids:
        return []
    msg = models.SmsMessage
    columns = (msg.id, msg.phone, msg.text, msg.kind, msg.attempts, msg.segments, msg.producer_id)
    return list(session.exec(select(*columns).where(col(msg.id).in_(list(ids))).order_by(msg.id)).all())


def _claim(session: Session, ids: Sequence[int], now: dt.datetime) -> list[Claimed]:
    msg = models.SmsMessage
    claimed = session.exec(
        update(msg)
        .where(col(msg.id).in_(list(ids)), msg.status == "queued")
        .values(status="sending", attempts=msg.attempts + 1, updated_at=now)
        .returning(msg.id)
    ).all()
    return claimed_rows(session, [row[0] for row in claimed])


def send_messages(db: Database, sender: SmsSender, ids: Sequence[int], clock: Callable[[], dt.datetime]) -> None:
    """Claim, send and record the given queued messages (a reply, right after its webhook).
    Call it off the event loop."""
    if not ids:
        return
    now = clock().astimezone(dt.timezone.utc)
    with db.unit_of_work() as session:
        rows = _claim(session, ids, now)
    by_text: dict[str, list[Claimed]] = defaultdict(list)
    for row in rows:
        by_text[row.text].append(row)
    for text, group in by_text.items():
        for batch in request_batches(group):
            send_group(db, sender, text, batch, clock)


def request_batches(group: list[Claimed]) -> list[list[Claimed]]:
    """Requests of at most MAX_RECIPIENTS numbers, each number once: the aggregator answers per
    number, so two rows for one phone in one request could not be told apart (found by the
    soak: two broadcasts with the same text for the same phone shared one message id)."""
    batches: list[list[Claimed]] = []
    phones: list[set[str]] = []
    for row in group:
        for batch, seen in zip(batches, phones):
            if row.phone not in seen and len(batch) < MAX_RECIPIENTS:
                batch.append(row)
                seen.add(row.phone)
                break
        else:
            batches.append([row])
            phones.append({row.phone})
    return batches


def send_group(
    db: Database, sender: SmsSender, text: str, group: list[Claimed], clock
) -> SendError | None:
    """Send one text to the claimed rows in one request and record every row's outcome (one
    executemany UPDATE: a broadcast records thousands of rows per request). Returns the request's
    error, if any, so that the caller can slow down when throttled."""
    phones = [row.phone for row in group]
    try:
        results = sender.send(text, phones)
        error: SendError | None = None
    except SendError as exc:
        results, error = [], exc
    now = clock().astimezone(dt.timezone.utc)
    by_phone = {r.phone: r for r in results}
    updates, blacklisted = [], []
    for row in group:
        values = {"_id": row.id, "provider": sender.name, "updated_at": now}
        values.update(_FRESH)
        if error is not None:
            values.update(_after_error(row.attempts, error, now))
        elif (result := by_phone.get(row.phone)) is None:
            # The request succeeded but said nothing of this number.
            values.update(status="unconfirmed", error_kind="ambiguous")
        else:
            values.update(_after_result(row.attempts, result, now))
            if result.blacklisted:
                blacklisted.append(row.phone)
        updates.append(values)
    table = models.SmsMessage.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({name: bindparam(name) for name in updates[0] if name != "_id"})
    )
    with db.unit_of_work() as session:
        session.connection().execute(statement, updates)
        for phone in blacklisted:
            opt_out(session, phone, now)
    if error is not None:
        log.warning(
            "sms request failed", extra={"kind": error.kind, "recipients": len(group), "error": str(error)[:200]}
        )
    else:
        accepted = sum(r.outcome == ACCEPTED for r in results)
        log.info("sms request sent", extra={"recipients": len(group), "accepted": accepted})
    return error


# Every outcome sets all of these, so that one UPDATE statement serves every row.
_FRESH = {
    "status": "failed",
    "provider_message_id": None,
    "provider_status": "",
    "failure_reason": "",
    "error_kind": "",
    "cost": "",
    "cost_amount": 0.0,
    "sent_at": None,
    "next_attempt_at": None,
}


def _after_error(attempts: int, error: SendError, now: dt.datetime) -> dict:
    values = {"error_kind": error.kind, "failure_reason": str(error)[:64]}
    if isinstance(error, TransportError) and error.reached:
        values["status"] = "unconfirmed"
    elif error.retryable and attempts < MAX_ATTEMPTS:
        wait = backoff(attempts)
        if isinstance(error, Throttled) and error.retry_after:
            wait = max(wait, dt.timedelta(seconds=error.retry_after))
        values.update(status="queued", next_attempt_at=now + wait)
    else:
        values["status"] = "failed"
    return values


def retry_later(row: models.SmsMessage, when: dt.datetime) -> None:
    row.status = "queued"
    row.next_attempt_at = when


def _after_result(attempts: int, result, now: dt.datetime) -> dict:
    values = {"provider_status": result.provider_status[:32]}
    if result.outcome == ACCEPTED:
        values.update(
            status="sent",
            provider_message_id=result.message_id,
            cost=result.cost[:32],
            cost_amount=result.cost_amount,
            sent_at=now,
        )
    elif result.outcome == FAILED and attempts < MAX_ATTEMPTS:
        values.update(
            status="queued",
            error_kind="failed",
            failure_reason=result.provider_status[:64],
            next_attempt_at=now + backoff(attempts),
        )
    else:
        values.update(
            status="failed",
            error_kind={REJECTED: "rejected", ACCOUNT: "account"}.get(result.outcome, "failed"),
            failure_reason=result.provider_status[:64],
        )
    return values


def opt_out(session: Session, phone: str, now: dt.datetime) -> None:
    from gateway.effects import ensure_producer

    producer = ensure_producer(session, phone)
    producer.opted_out = True
    producer.updated_at = now
    session.add(producer)


def mark_stale_unconfirmed(session: Session, now: dt.datetime) -> int:
    """Rows stuck in `sending` (a process died mid-send) may or may not have reached the
    aggregator: never resend them blindly; delivery reports or staff settle them."""
    stamp = now.astimezone(dt.timezone.utc)
    msg = models.SmsMessage
    return session.exec(
        update(msg)
        .where(msg.status == "sending", msg.updated_at < stamp - STALE_SENDING)
        .values(status="unconfirmed", error_kind="ambiguous", updated_at=stamp)
    ).rowcount
