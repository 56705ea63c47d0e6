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
from typing import Callable, Sequence

from sqlalchemy import update
from sqlmodel import Session, col, select

from gateway import models
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


def _claim(session: Session, ids: Sequence[int], now: dt.datetime) -> list[models.SmsMessage]:
    msg = models.SmsMessage
    claimed = session.exec(
        update(msg)
        .where(col(msg.id).in_(list(ids)), msg.status == "queued")
        .values(status="sending", attempts=msg.attempts + 1, updated_at=now)
        .returning(msg.id)
    ).all()
    if not claimed:
        return []
    rows = session.exec(select(msg).where(col(msg.id).in_([row[0] for row in claimed]))).all()
    return list(rows)


def send_messages(db: Database, sender: SmsSender, ids: Sequence[int], clock: Callable[[], dt.datetime]) -> None:
    """Claim, send and record the given queued messages. Call it off the event loop."""
    if not ids:
        return
    now = clock().astimezone(dt.timezone.utc)
    with db.unit_of_work() as session:
        rows = _claim(session, ids, now)
    by_text: dict[str, list[models.SmsMessage]] = defaultdict(list)
    for row in rows:
        by_text[row.text].append(row)
    for text, group in by_text.items():
        _send_group(db, sender, text, group, clock)


def _send_group(db, sender: SmsSender, text: str, group: list[models.SmsMessage], clock) -> None:
    phones = [row.phone for row in group]
    try:
        results = sender.send(text, phones)
        error: SendError | None = None
    except SendError as exc:
        results, error = [], exc
    now = clock().astimezone(dt.timezone.utc)
    with db.unit_of_work() as session:
        by_phone = {r.phone: r for r in results}
        for row in group:
            row = session.get(models.SmsMessage, row.id)
            row.provider = sender.name
            row.updated_at = now
            if error is not None:
                _record_error(row, error, now)
            else:
                result = by_phone.get(row.phone)
                if result is None:
                    # Sent in a request that succeeded but said nothing of this number.
                    row.status, row.error_kind = "unconfirmed", "ambiguous"
                else:
                    _record_result(session, row, result, now)
            session.add(row)
            log.info(
                "sms %s",
                row.status,
                extra={"sms_id": row.id, "phone": mask(row.phone), "kind": row.kind, "error": row.error_kind},
            )


def _record_error(row: models.SmsMessage, error: SendError, now: dt.datetime) -> None:
    row.error_kind = error.kind
    row.failure_reason = str(error)[:64]
    if isinstance(error, TransportError) and error.reached:
        row.status = "unconfirmed"
    elif error.retryable and row.attempts < MAX_ATTEMPTS:
        wait = backoff(row.attempts)
        if isinstance(error, Throttled) and error.retry_after:
            wait = max(wait, dt.timedelta(seconds=error.retry_after))
        retry_later(row, now + wait)
    else:
        row.status = "failed"


def retry_later(row: models.SmsMessage, when: dt.datetime) -> None:
    row.status = "queued"
    row.next_attempt_at = when


def _record_result(session: Session, row: models.SmsMessage, result, now: dt.datetime) -> None:
    row.provider_status = result.provider_status[:32]
    if result.outcome == ACCEPTED:
        row.status = "sent"
        row.provider_message_id = result.message_id
        row.cost = result.cost[:32]
        row.cost_amount = result.cost_amount
        row.sent_at = now
        row.error_kind = ""
        return
    row.failure_reason = result.provider_status[:64]
    if result.outcome == FAILED and row.attempts < MAX_ATTEMPTS:
        row.error_kind = "failed"
        retry_later(row, now + backoff(row.attempts))
    else:
        row.status = "failed"
        row.error_kind = {REJECTED: "rejected", ACCOUNT: "account"}.get(result.outcome, "failed")
    if result.blacklisted:
        opt_out(session, row.phone, now)


def opt_out(session: Session, phone: str, now: dt.datetime) -> None:
    from gateway.effects import ensure_producer

    producer = ensure_producer(session, phone)
    producer.opted_out = True
    producer.updated_at = now
    session.add(producer)


def due_for_retry(db: Database, now: dt.datetime, *, limit: int = 500) -> list[int]:
    """Queued messages whose backoff has passed; marks long-stuck `sending` rows unconfirmed
    (a process died mid-send: it may or may not have reached the aggregator)."""
    now = now.astimezone(dt.timezone.utc)
    msg = models.SmsMessage
    with db.unit_of_work() as session:
        session.exec(
            update(msg)
            .where(msg.status == "sending", msg.updated_at < now - STALE_SENDING)
            .values(status="unconfirmed", error_kind="ambiguous", updated_at=now)
        )
        due = session.exec(
            select(msg.id)
            .where(
                msg.status == "queued",
                (col(msg.next_attempt_at).is_(None)) | (col(msg.next_attempt_at) <= now),
            )
            .order_by(msg.id)
            .limit(limit)
        ).all()
    return list(due)
