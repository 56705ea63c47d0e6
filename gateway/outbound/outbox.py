"""Outbound SMS: queue a row in the caller's transaction, send it after commit, record the outcome.

Exactly once, and nothing written off when a sender dies:

- claimed (queued → claimed) by a conditional UPDATE under a lease: the row names its claimer
  (`lease_owner`), whose lease (a `worker_lease` row) lives while the claimer renews it; two
  claimers never hold the same row;
- `sending` only for the request that carries it, just before it leaves, and only if the row is
  still this claimer's (a claimer that lost its lease sends nothing);
- a claimer that died: once its lease has expired (≤ 60 s), its claimed rows go back to the queue
  and the next worker sends them; only its `sending` rows (the request in flight) become
  `unconfirmed`.

What happens after the request depends on the kind of failure:

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
import os
import socket
import threading
import uuid
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple, Sequence

from sqlalchemy import and_, bindparam, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gateway.aggregators.africastalking import MAX_RECIPIENTS
from gateway.aggregators.sending import (
    ACCEPTED,
    ACCOUNT,
    FAILED,
    REJECTED,
    SendError,
    SmsSender,
    Throttled,
    TransportError,
)
from gateway.core.db import Database
from gateway.data import models
from messages.sms import measure, render_sms

log = logging.getLogger("gateway.outbox")

MAX_ATTEMPTS = 5
# How long a claim outlives its claimer's last sign of life. Renewed every quarter of it.
LEASE = dt.timedelta(seconds=60)
# Rows left `sending` by a version without leases (no owner): the old rule.
STALE_SENDING = dt.timedelta(minutes=5)
ACTIVE = ("queued", "claimed", "sending")

# Called back in the recording unit of work with the rows that went back unsent (queued again,
# or failed): the broadcaster refunds their budget.
Refund = Callable[[Session, list, dt.datetime], None]


def checkpoint(point: str) -> None:
    """A named point of a send (before_claim, claimed, before_request, answered) or of calls
    placed (calls_claimed, before_dial, dialed: gateway.outbound.calls). Nothing happens here:
    tests replace it to kill a worker there (tests/test_kills.py, tests/test_voice_alerts.py)."""


def new_owner() -> str:
    """A claimer's id: host, process and a fresh token, so that a restarted process (or another
    step of the same one) never inherits a dead claimer's lease."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


RETRY_BASE_S = 30.0


def backoff(attempts: int, base_s: float = RETRY_BASE_S) -> dt.timedelta:
    return dt.timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), 3600))


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


class Claimed(NamedTuple):
    """What sending needs of a claimed outbox row: a worker claims up to thousands at a time,
    and whole ORM objects cost several times more (the soak test saw the resident size step up
    at each price batch)."""

    id: int
    phone: str
    text: str
    kind: str
    attempts: int
    segments: int
    producer_id: int | None
    claimed_at: dt.datetime  # when claimed: the budget period it was reserved in
    owner: str | None


def claimed_rows(session: Session, ids: Sequence[int]) -> list[Claimed]:
    if not ids:
        return []
    msg = models.SmsMessage
    columns = (msg.id, msg.phone, msg.text, msg.kind, msg.attempts, msg.segments, msg.producer_id,
               msg.updated_at, msg.lease_owner)
    found = session.exec(select(*columns).where(col(msg.id).in_(list(ids))).order_by(msg.id)).all()
    return [Claimed(*row[:7], _aware(row[7]), row[8]) for row in found]


def _aware(stamp: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back without their zone; they are stored in UTC.
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def _claim(session: Session, ids: Sequence[int], now: dt.datetime, owner: str) -> list[Claimed]:
    msg = models.SmsMessage
    claimed = session.exec(
        update(msg)
        .where(col(msg.id).in_(list(ids)), msg.status == "queued")
        .values(status="claimed", lease_owner=owner, updated_at=now)
        .returning(msg.id)
    ).all()
    return claimed_rows(session, [row[0] for row in claimed])


# -- leases -------------------------------------------------------------------------------------


def take_lease(session: Session, owner: str, now: dt.datetime, lease: dt.timedelta = LEASE) -> None:
    """Start or renew `owner`'s lease, in the caller's unit of work (the claim's: the rows and
    the lease are committed together)."""
    L = models.WorkerLease
    expires = now.astimezone(dt.timezone.utc) + lease
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(L).values(owner=owner, expires_at=expires, created_at=now.astimezone(dt.timezone.utc))
    session.exec(statement.on_conflict_do_update(index_elements=["owner"], set_={"expires_at": expires}))


def drop_lease(db: Database, owner: str) -> None:
    """The claimer is done: every row it claimed has been recorded."""
    with db.unit_of_work() as session:
        session.exec(delete(models.WorkerLease).where(models.WorkerLease.owner == owner))


@contextmanager
def keep_lease(db: Database, owner: str, clock: Callable[[], dt.datetime], lease: dt.timedelta = LEASE) -> Iterator[None]:
    """Renew `owner`'s lease every quarter of it while the block runs (a step's requests may
    take longer than the lease). A killed process stops renewing: its lease then expires."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 4):
            try:
                with db.unit_of_work() as session:
                    take_lease(session, owner, clock(), lease)
            except Exception:  # a busy or lost database: the next turn tries again
                log.warning("lease renewal failed", exc_info=True)

    keeper = threading.Thread(target=renew, name="lease-keeper", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def expire_leases(session: Session, now: dt.datetime, refund: Refund | None = None) -> tuple[int, int]:
    """Put back what dead claimers left: their claimed rows return to the queue (and their budget
    is refunded); their `sending` rows, whose request may have left, become unconfirmed (never
    resent blindly). Returns (requeued, unconfirmed)."""
    stamp = now.astimezone(dt.timezone.utc)
    msg, L = models.SmsMessage, models.WorkerLease
    live = select(L.owner).where(L.expires_at >= stamp)
    dead = and_(col(msg.lease_owner).is_not(None), col(msg.lease_owner).not_in(live))
    # Rows first, the budget ledger last, as every unit of work here does: no lock cycles.
    unconfirmed = session.exec(
        update(msg)
        .where(msg.status == "sending", or_(dead, and_(col(msg.lease_owner).is_(None), msg.updated_at < stamp - STALE_SENDING)))
        .values(status="unconfirmed", error_kind="ambiguous", failure_reason="lease_expired", updated_at=stamp)
    ).rowcount
    # updated_at is left as it was (the claim's time): it names the budget period to refund.
    requeued = session.exec(
        update(msg).where(msg.status == "claimed", dead).values(status="queued", lease_owner=None)
        .returning(msg.id, msg.kind, msg.segments, msg.updated_at)
    ).all()
    if refund is not None and requeued:
        refund(session, [Claimed(i, "", "", kind, 0, segments, None, _aware(at), None) for i, kind, segments, at in requeued], stamp)
    session.exec(delete(L).where(L.expires_at < stamp))
    if requeued or unconfirmed:
        log.warning("dead claimer's rows put back", extra={"requeued": len(requeued), "unconfirmed": unconfirmed})
    return len(requeued), unconfirmed


def send_messages(db: Database, sender: SmsSender, ids: Sequence[int], clock: Callable[[], dt.datetime]) -> None:
    """Claim, send and record the given queued messages (a reply, right after its webhook).
    Call it off the event loop. Should this process die, the worker sends them once the lease
    has expired."""
    if not ids:
        return
    now = clock().astimezone(dt.timezone.utc)
    owner = new_owner()
    checkpoint("before_claim")
    with db.unit_of_work() as session:
        rows = _claim(session, ids, now, owner)
        if not rows:
            return
        take_lease(session, owner, now)
    checkpoint("claimed")
    send_claimed(db, sender, rows, clock)


def send_claimed(db: Database, sender: SmsSender, rows: list[Claimed], clock, *, refund: Refund | None = None,
                 lease: dt.timedelta = LEASE, retry_base_s: float = RETRY_BASE_S) -> list[SendError]:
    """Send claimed rows (one claimer's), one request per text and batch, renewing the lease
    meanwhile; then end the lease. Returns the requests' errors."""
    if not rows:
        return []
    owner = rows[0].owner
    by_text: dict[str, list[Claimed]] = defaultdict(list)
    for row in rows:
        by_text[row.text].append(row)
    errors = []
    try:
        with keep_lease(db, owner, clock, lease):
            for text, group in by_text.items():
                for batch in request_batches(group):
                    error = send_group(db, sender, text, batch, clock, refund=refund, retry_base_s=retry_base_s)
                    if error is not None:
                        errors.append(error)
    except Exception:
        # Whatever is left claimed goes back at the next worker's sweep, without waiting.
        try:
            drop_lease(db, owner)
        except Exception:  # the database is gone: the lease expires by itself
            log.warning("lease not dropped", exc_info=True)
        raise
    drop_lease(db, owner)
    return errors


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
    db: Database, sender: SmsSender, text: str, group: list[Claimed], clock, *, refund: Refund | None = None,
    retry_base_s: float = RETRY_BASE_S,
) -> SendError | None:
    """Send one text to the claimed rows in one request and record every row's outcome (one
    executemany UPDATE: a broadcast records thousands of rows per request). Returns the request's
    error, if any, so that the caller can slow down when throttled. `refund` is called with the
    rows that went back unsent, in the recording's unit of work."""
    checkpoint("before_request")
    group = _mark_sending(db, group, clock().astimezone(dt.timezone.utc))
    if not group:
        return None
    phones = [row.phone for row in group]
    try:
        results = sender.send(text, phones)
        error: SendError | None = None
    except SendError as exc:
        results, error = [], exc
    checkpoint("answered")
    now = clock().astimezone(dt.timezone.utc)
    by_phone = {r.phone: r for r in results}
    updates, blacklisted = [], []
    for row in group:
        values = {"_id": row.id, "provider": sender.name, "updated_at": now}
        values.update(_FRESH)
        if error is not None:
            values.update(_after_error(row.attempts, error, now, retry_base_s))
        elif (result := by_phone.get(row.phone)) is None:
            # The request succeeded but said nothing of this number.
            values.update(status="unconfirmed", error_kind="ambiguous")
        else:
            values.update(_after_result(row.attempts, result, now, retry_base_s))
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
        unsent = [row for row, values in zip(group, updates) if values["status"] in ("queued", "failed")]
        if refund is not None and unsent:
            refund(session, unsent, now)
    if error is not None:
        log.warning(
            "sms request failed", extra={"kind": error.kind, "recipients": len(group), "error": str(error)[:200]}
        )
    else:
        accepted = sum(r.outcome == ACCEPTED for r in results)
        log.info("sms request sent", extra={"recipients": len(group), "accepted": accepted})
    return error


def _mark_sending(db: Database, group: list[Claimed], now: dt.datetime) -> list[Claimed]:
    """The rows of this request become `sending`, just before it leaves, if they are still this
    claimer's (a claimer whose lease expired may have lost them to another worker)."""
    msg = models.SmsMessage
    with db.unit_of_work() as session:
        marked = {
            row[0]
            for row in session.exec(
                update(msg)
                .where(col(msg.id).in_([r.id for r in group]), msg.status == "claimed", msg.lease_owner == group[0].owner)
                .values(status="sending", attempts=msg.attempts + 1, updated_at=now)
                .returning(msg.id)
            ).all()
        }
    if len(marked) < len(group):
        log.warning("claimed rows lost with the lease", extra={"lost": len(group) - len(marked)})
    return [row._replace(attempts=row.attempts + 1) for row in group if row.id in marked]


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


def _after_error(attempts: int, error: SendError, now: dt.datetime, retry_base_s: float = RETRY_BASE_S) -> dict:
    values = {"error_kind": error.kind, "failure_reason": str(error)[:64]}
    if isinstance(error, TransportError) and error.reached:
        values["status"] = "unconfirmed"
    elif isinstance(error, Throttled) or (error.retryable and attempts < MAX_ATTEMPTS):
        # Throttled: nothing was tried, the aggregator asked us to wait; it never uses up the
        # message's attempts (a busy hour must not write a broadcast off).
        wait = backoff(attempts, retry_base_s)
        if isinstance(error, Throttled) and error.retry_after:
            wait = max(wait, dt.timedelta(seconds=error.retry_after))
        values.update(status="queued", next_attempt_at=now + wait)
    else:
        values["status"] = "failed"
    return values


def retry_later(row: models.SmsMessage, when: dt.datetime) -> None:
    row.status = "queued"
    row.next_attempt_at = when


def _after_result(attempts: int, result, now: dt.datetime, retry_base_s: float = RETRY_BASE_S) -> dict:
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
            next_attempt_at=now + backoff(attempts, retry_base_s),
        )
    else:
        values.update(
            status="failed",
            error_kind={REJECTED: "rejected", ACCOUNT: "account"}.get(result.outcome, "failed"),
            failure_reason=result.provider_status[:64],
        )
    return values


def opt_out(session: Session, phone: str, now: dt.datetime) -> None:
    from gateway.data.producers import ensure_producer

    producer = ensure_producer(session, phone)
    producer.opted_out = True
    producer.updated_at = now
    session.add(producer)
