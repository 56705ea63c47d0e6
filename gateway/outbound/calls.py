"""Calls Sugu places: calling back a farmer whose call it rejected (the farmer pays nothing), and
later voice alerts. The ceilings hold whoever asks, on every process, from the shared ledger:

- calls back per phone and farmers' day (a missed call beyond it is only rejected);
- one call waiting per phone, however many missed calls come in (a unique pending phone);
- minutes and francs per day: an estimate of both is reserved when a call is claimed, under
  the ledger's lock, and settled from the final callback's duration and amount;
- calls being placed or in progress at once, and no call in quiet hours (it waits for morning);
- an unanswered call is tried again after a pause, up to the attempts allowed.

A worker claims due calls under a lease (a killed worker's claims go back to the queue), marks
each one `dialing` in a unit of work of its own before placing it, and the platform's final
callback settles it. A call marked `dialing` may have rung, so no lease ever puts it back in the
queue: a worker killed while placing it leaves it to its final callback (or to CALL_GIVE_UP), and
nobody is called twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Sequence

from sqlalchemy import bindparam, case, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gateway.aggregators.calling import (
    AccountProblem,
    Rejected,
    SendError,
    TransportError,
    VoiceCallback,
    VoiceCaller,
)
from gateway.core.db import Database
from gateway.core.phones import mask
from gateway.core.settings import Settings
from gateway.data import models
from gateway.data.producers import insert_ignore
from gateway.outbound import budgets, outbox
from gateway.outbound.budgets import in_quiet_hours

_LANGUAGE = re.compile(r"[a-z]{2,3}")  # a language code (models.Language)

log = logging.getLogger("gateway.calls")

CALLBACK, ALERT = "callback", "alert"
QUEUED, CLAIMED, DIALING, CALLING = "queued", "claimed", "dialing", "calling"
ANSWERED, NOT_ANSWERED, FAILED = "answered", "not_answered", "failed"
LIVE = (CLAIMED, DIALING, CALLING)  # count against the concurrent calls
PLACED = (DIALING, CALLING)  # may be ringing: settled by the final callback, never queued again by a lease
BUDGET_MINUTES = "voice_minutes"
BUDGET_FRANCS = "voice_francs"
CURRENCY = "XOF"  # the francs budget's; a cost in another currency is estimated from the minutes
UNLIMITED = 2**31 - 1  # what a call spent past a ceiling is recorded all the same
LEASE = dt.timedelta(seconds=60)  # GATEWAY_WORKER_LEASE_S's default: how long a claim is held
# A call placed whose final callback never came is settled as not answered after this long.
CALL_GIVE_UP = dt.timedelta(minutes=30)

V = models.VoiceCall


def _per_phone(phone: str) -> str:
    return f"vcb:{phone}"  # a ledger name: 4 + 16 characters at most, within its 32


def _utc(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.timezone.utc)


def next_allowed(now: dt.datetime, settings: Settings) -> dt.datetime:
    """`now`, or the end of the quiet hours when `now` is inside them."""
    window = settings.quiet_window
    if window is None or not in_quiet_hours(now, settings):
        return now
    local = now.astimezone(settings.tz)
    end = local.replace(hour=window[1].hour, minute=window[1].minute, second=0, microsecond=0)
    return end if end > local else end + dt.timedelta(days=1)


@dataclass(frozen=True)
class Queued:
    outcome: str  # "queued" | "already" (a call is waiting) | "limit" (per-phone ceiling reached)
    due_at: dt.datetime | None = None


def queue_callback(session: Session, *, phone: str, now: dt.datetime, settings: Settings) -> Queued:
    """After rejecting `phone`'s call: call them back soon, within the ceilings."""
    day = budgets.day_period(now, settings.tz)
    if not budgets.reserve(session, _per_phone(phone), day, 1, settings.voice_callbacks_per_phone_per_day, now=now):
        log.info("call back refused: daily limit for this phone", extra={"phone": mask(phone)})
        return Queued("limit")
    due = next_allowed(now + dt.timedelta(seconds=settings.voice_callback_delay_s), settings)
    created = insert_ignore(session, V, {
        "phone": phone, "pending_phone": phone, "purpose": CALLBACK, "status": QUEUED, "due_at": _utc(due), "pairs": [],
        "client_request_id": uuid.uuid4().hex, "created_at": _utc(now), "updated_at": _utc(now),
    }, ["pending_phone"])
    if created is None:
        budgets.refund(session, _per_phone(phone), day, 1, now=now)  # one call already waits
        return Queued("already")
    return Queued("queued", due)


def _per_phone_alerts(phone: str) -> str:
    return f"val:{phone}"


def _francs(minutes: int, settings: Settings) -> int:
    """The francs reserved with `minutes` of calls: whole francs, at least one a call (a francs
    budget of 0 stops calls whatever the price)."""
    return max(1, math.ceil(minutes * settings.voice_price_per_minute)) if minutes > 0 else 0


@dataclass
class AlertRoom:
    """How many more voice alerts the call budgets (minutes and francs) of the day they will be
    placed can pay for, after the calls already waiting: a broadcast's voice alerts beyond it get
    the SMS instead. A forecast read once per expansion, without a lock: the ceiling itself is
    the reservation each call makes when it is claimed."""

    calls: int


def alert_room(session: Session, *, now: dt.datetime, settings: Settings) -> AlertRoom:
    day = budgets.day_period(next_allowed(now, settings), settings.tz)
    minutes = settings.voice_call_minutes_estimate
    waiting = session.exec(select(func.count()).select_from(V).where(V.status == QUEUED, V.minutes_reserved == 0)).one()
    by_minutes = max(settings.voice_minutes_per_day - budgets.spent(session, BUDGET_MINUTES, day), 0) // minutes
    by_francs = max(settings.voice_francs_per_day - budgets.spent(session, BUDGET_FRANCS, day), 0) // _francs(minutes, settings)
    return AlertRoom(max(min(by_minutes, by_francs) - waiting, 0))


def queue_alerts(session: Session, *, broadcast_id: int, alerts: Sequence[tuple[str, str, list]], now: dt.datetime,
                 settings: Settings, room: AlertRoom | None = None) -> set[str]:
    """Voice alerts of one broadcast, (phone, language, pairs) each, said when the call is
    answered: the phones queued. The others get the SMS: those this broadcast already calls
    (never twice for one alert), those whose voice alerts of the day are spent, and those beyond
    what the day's call budgets can pay for (`room`). A few statements per thousand phones."""
    queued: set[str] = set()
    rest = list(alerts)
    while rest and (room is None or room.calls > 0):
        size = len(rest) if room is None else room.calls
        batch, rest = rest[:size], rest[size:]
        got = _queue_alert_batch(session, broadcast_id, batch, now, settings)
        queued |= got
        if room is not None:
            room.calls -= len(got)
    return queued


def _queue_alert_batch(session: Session, broadcast_id: int, alerts: list[tuple[str, str, list]], now: dt.datetime,
                       settings: Settings) -> set[str]:
    day = budgets.day_period(now, settings.tz)
    allowed = budgets.reserve_each(session, [_per_phone_alerts(phone) for phone, _, _ in alerts], day,
                                   settings.voice_alerts_per_phone_per_day, now=now)
    stamp, due = _utc(now), _utc(next_allowed(now, settings))
    rows = [{
        "phone": phone, "purpose": ALERT, "status": QUEUED, "due_at": due, "client_request_id": uuid.uuid4().hex,
        "broadcast_id": broadcast_id, "pairs": [list(p) for p in pairs], "language": language if _LANGUAGE.fullmatch(language or "") else "fr",
        "attempts": 0, "minutes_reserved": 0, "reason": "", "created_at": stamp, "updated_at": stamp,
    } for phone, language, pairs in alerts if _per_phone_alerts(phone) in allowed]  # fmt: skip
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(V.__table__).on_conflict_do_nothing(index_elements=["broadcast_id", "phone"]).returning(V.phone)
    connection = session.connection()
    queued: set[str] = set()
    for start in range(0, len(rows), budgets.CHUNK):
        queued.update(connection.execute(statement, rows[start : start + budgets.CHUNK]).scalars())
    for row in rows:
        if row["phone"] not in queued:  # this broadcast calls them already: the day's count back
            budgets.refund(session, _per_phone_alerts(row["phone"]), day, 1, now=now)
    return queued


def queue_alert(session: Session, *, broadcast_id: int, phone: str, language: str, pairs: list, now: dt.datetime,
                settings: Settings, room: AlertRoom | None = None) -> bool:
    """One voice alert (see queue_alerts): False when it is not queued."""
    return bool(queue_alerts(session, broadcast_id=broadcast_id, alerts=[(phone, language, pairs)], now=now,
                             settings=settings, room=room))


def by_request(session: Session, client_request_id: str | None) -> models.VoiceCall | None:
    if not client_request_id:
        return None
    return session.exec(select(V).where(V.client_request_id == client_request_id)).first()


@dataclass
class StepResult:
    placed: int = 0
    failed: int = 0
    retried: int = 0
    paused: str = ""  # why nothing more was placed: quiet hours, minutes or francs budget, account


def reserve_calls(session: Session, wanted: int, *, now: dt.datetime, settings: Settings) -> tuple[int, str]:
    """Up to `wanted` calls' estimates from the day's minutes and francs, under the ledger's
    locks (taken in that order by everyone): how many calls are paid for, and the budget that
    stopped the others ("" when none was). A call needs its whole estimate: what is left of a
    budget waits for tomorrow."""
    if wanted <= 0:
        return 0, ""
    day = budgets.day_period(now, settings.tz)
    minutes = settings.voice_call_minutes_estimate
    francs = _francs(minutes, settings)
    granted = budgets.reserve(session, BUDGET_MINUTES, day, wanted * minutes, settings.voice_minutes_per_day, now=now)
    paid, reason = granted // minutes, ("" if granted == wanted * minutes else "minutes budget")
    if paid:
        covered = budgets.reserve(session, BUDGET_FRANCS, day, paid * francs, settings.voice_francs_per_day, now=now)
        if covered < paid * francs:
            paid, reason = covered // francs, "francs budget"
        budgets.refund(session, BUDGET_FRANCS, day, covered - paid * francs, now=now)
    budgets.refund(session, BUDGET_MINUTES, day, granted - paid * minutes, now=now)
    return paid, reason


def _give_back(session: Session, calls: int, minutes: int, *, now: dt.datetime, settings: Settings) -> None:
    """Return the reservations of `calls` calls of `minutes` each (and their francs) unspent."""
    if calls <= 0 or minutes <= 0:
        return
    day = budgets.day_period(now, settings.tz)
    budgets.refund(session, BUDGET_MINUTES, day, calls * minutes, now=now)
    budgets.refund(session, BUDGET_FRANCS, day, calls * _francs(minutes, settings), now=now)


def _claim(session: Session, *, now: dt.datetime, settings: Settings) -> tuple[list[models.VoiceCall], str]:
    stamp = _utc(now)
    # Claims of a worker that died go back to the queue; placed calls never heard of again end.
    # Looked for first: a write takes SQLite's one lock, and most turns have nothing to change.
    expired = V.status == CLAIMED, col(V.lease_until) < stamp
    if session.exec(select(V.id).where(*expired).limit(1)).first() is not None:
        session.exec(update(V).where(*expired).values(status=QUEUED, lease_until=None, updated_at=stamp))
    for row in session.exec(select(V).where(col(V.status).in_(PLACED), V.updated_at < stamp - CALL_GIVE_UP)).all():
        _finish(session, row, answered=False, duration_s=None, now=now, settings=settings, reason="no final callback")
    if in_quiet_hours(now, settings):
        return [], "quiet hours"

    def room() -> int:
        return settings.voice_concurrent_calls - session.exec(
            select(func.count()).select_from(V).where(col(V.status).in_(LIVE))).one()

    if room() <= 0:
        return [], "concurrent calls"  # a glance, without the lock: nothing to claim this turn
    # One claimer at a time, on every process: the day's minutes row of the ledger, held to the
    # end of this unit of work, so that the calls in progress counted under it stay the true count.
    budgets.hold(session, BUDGET_MINUTES, budgets.day_period(now, settings.tz), now=now)
    free = room()
    if free <= 0:
        return [], "concurrent calls"
    due = session.exec(
        select(V.id, V.minutes_reserved).where(V.status == QUEUED, V.due_at <= stamp).order_by(V.due_at, V.id).limit(free)
    ).all()
    # A row still holding its reservation (a killed worker's claim, back from its lease) is paid
    # for already; the others' estimates are reserved together, in order, as far as they go.
    unpaid = [call_id for call_id, held in due if not held]
    paid, spent = reserve_calls(session, len(unpaid), now=now, settings=settings)
    chosen = {call_id for call_id, held in due if held} | set(unpaid[:paid])
    estimate = settings.voice_call_minutes_estimate
    taken = set(session.exec(
        update(V).where(col(V.id).in_(chosen), V.status == QUEUED)
        .values(status=CLAIMED, lease_until=stamp + dt.timedelta(seconds=settings.worker_lease_s), updated_at=stamp,
                minutes_reserved=case((V.minutes_reserved > 0, V.minutes_reserved), else_=estimate))
        .returning(V.id)
    ).scalars()) if chosen else set()
    _give_back(session, paid - len(taken & set(unpaid)), estimate, now=now, settings=settings)
    claimed = session.exec(select(V).where(col(V.id).in_(taken)).order_by(V.due_at, V.id)).all() if taken else []
    return list(claimed), spent


def step(db: Database, get_caller: Callable[[], VoiceCaller | None], *, clock: Callable[[], dt.datetime],
         settings: Settings) -> StepResult:
    """Place the calls that are due, within the ceilings. Any number of workers may run it.
    `get_caller` is asked for the caller only when a call is due (None: calls cannot be placed)."""
    result = StepResult()
    now = clock()
    with db.unit_of_work() as session:
        if session.exec(select(V.id).where(col(V.status).in_((QUEUED, *LIVE))).limit(1)).first() is None:
            return result  # the usual case: one indexed look, nothing else loaded
        caller = get_caller()
        if caller is None:
            result.paused = "no voice number"
            return result
        claimed, result.paused = _claim(session, now=now, settings=settings)
        calls = [(row.id, row.phone, row.client_request_id) for row in claimed]
    outbox.checkpoint("calls_claimed")
    placed_ids: list[dict] = []
    _place(db, caller, calls, placed_ids, result, clock=clock, settings=settings)
    if placed_ids:  # (a worker killed before this leaves them `dialing`: their final callbacks settle them)
        _mark_calling(db, placed_ids, _utc(clock()))
    return result


def _mark_calling(db: Database, placed: list[dict], stamp: dt.datetime) -> None:
    """Calls the platform accepted: `calling`, with its session id, in one statement. A final
    callback that came first (a short call) keeps the status it gave."""
    t = V.__table__
    with db.unit_of_work() as session:
        session.connection().execute(
            update(t).where(t.c.id == bindparam("call_id")).values(
                status=case((t.c.status == DIALING, CALLING), else_=t.c.status),
                session_id=func.coalesce(t.c.session_id, bindparam("sid")), updated_at=stamp),
            placed)


def _place(db: Database, caller: VoiceCaller, calls: list[tuple[int, str, str]], placed_ids: list[dict],
           result: StepResult, *, clock: Callable[[], dt.datetime], settings: Settings) -> None:
    for call_id, phone, request_id in calls:
        with db.unit_of_work() as session:
            # Only a call still claimed under our lease: past it, another worker may have it.
            mine = session.exec(
                update(V).where(V.id == call_id, V.status == CLAIMED, col(V.lease_until) > _utc(clock()))
                .values(status=DIALING, attempts=V.attempts + 1, lease_until=None, updated_at=_utc(clock()))
                .returning(V.id)
            ).first()
        if mine is None:
            continue
        outbox.checkpoint("before_dial")
        try:
            placed = caller.call(phone, client_request_id=request_id)
        except SendError as exc:
            if isinstance(exc, TransportError) and exc.reached:
                # It may have been accepted: the final callback, or CALL_GIVE_UP, settles it.
                log.warning("call placed or not: waits for its final callback", extra={"phone": mask(phone)})
                continue
            with db.unit_of_work() as session:
                row = session.get(V, call_id)
                if isinstance(exc, Rejected):
                    _finish(session, row, answered=False, duration_s=None, now=clock(), settings=settings,
                            reason=f"rejected: {exc}"[:64], final=True)
                    result.failed += 1
                else:
                    _requeue(session, row, now=clock(), settings=settings, reason=exc.__class__.__name__)
                    result.retried += 1
            log.warning("call not placed", extra={"phone": mask(phone), "kind": exc.__class__.__name__})
            if isinstance(exc, AccountProblem):
                result.paused = "account"
                break
            continue
        placed_ids.append({"call_id": call_id, "sid": placed.session_id})
        outbox.checkpoint("dialed")
        result.placed += 1
        log.info("call placed", extra={"phone": mask(phone)})


def _requeue(session: Session, row: models.VoiceCall, *, now: dt.datetime, settings: Settings, reason: str) -> None:
    """Not placed (the platform busy or away): back to the queue, the minutes and francs given
    back, the attempt not counted."""
    _give_back(session, 1, row.minutes_reserved, now=now, settings=settings)
    row.status, row.lease_until, row.minutes_reserved = QUEUED, None, 0
    row.attempts = max(row.attempts - 1, 0)
    row.due_at = _utc(next_allowed(now + dt.timedelta(seconds=settings.voice_retry_after_s), settings))
    row.reason, row.updated_at = reason[:64], _utc(now)
    session.add(row)


def _settle(session: Session, name: str, day: str, reserved: int, used: int, now: dt.datetime) -> None:
    if used < reserved:
        budgets.refund(session, name, day, reserved - used, now=now)
    elif used > reserved:
        # Spent is spent: the ledger records it even past the ceiling (later calls wait).
        budgets.reserve(session, name, day, used - reserved, UNLIMITED, now=now)


def cost_francs(amount: Decimal | None, currency: str | None, duration_s: int | None, settings: Settings) -> int:
    """What a call cost, in whole francs: the platform's amount when it is in XOF, else its
    started minutes at GATEWAY_VOICE_PRICE_PER_MINUTE."""
    if amount is not None and (currency or "").strip().upper() == CURRENCY:
        return max(math.ceil(amount), 0)
    return math.ceil(math.ceil((duration_s or 0) / 60) * settings.voice_price_per_minute)


def _finish(session: Session, row: models.VoiceCall, *, answered: bool, duration_s: int | None, now: dt.datetime,
            settings: Settings, reason: str = "", final: bool = False, amount: Decimal | None = None,
            currency: str | None = None) -> bool:
    """Settle the minutes and francs of a call that ended, then close it or try it again later;
    False when it was settled meanwhile (a final callback and the give-up at the same time)."""
    # Taken first, atomically: whoever loses waits for the winner's commit, then finds nothing.
    if session.exec(update(V).where(V.id == row.id, col(V.status).in_(PLACED)).values(updated_at=_utc(now))
                    .returning(V.id)).first() is None:
        return False
    session.refresh(row)
    day = budgets.day_period(now, settings.tz)
    _settle(session, BUDGET_MINUTES, day, row.minutes_reserved, math.ceil((duration_s or 0) / 60), now)
    _settle(session, BUDGET_FRANCS, day, _francs(row.minutes_reserved, settings),
            cost_francs(amount, currency, duration_s, settings), now)
    row.minutes_reserved, row.duration_s, row.updated_at = 0, duration_s, _utc(now)
    row.reason = reason[:64] or row.reason
    if answered:
        row.status, row.pending_phone = ANSWERED, None
    elif not final and row.attempts < (settings.voice_alert_attempts if row.purpose == ALERT else settings.voice_max_attempts):
        row.status = QUEUED
        row.due_at = _utc(next_allowed(now + dt.timedelta(seconds=settings.voice_retry_after_s), settings))
    else:
        row.status, row.pending_phone = (FAILED if final else NOT_ANSWERED), None
    session.add(row)
    return True


def settle(session: Session, *, call: VoiceCallback, now: dt.datetime, settings: Settings) -> models.VoiceCall | None:
    """The final callback of a call we placed: answered or not, how long, what it cost."""
    row = None
    if call.client_request_id:
        row = session.exec(select(V).where(V.client_request_id == call.client_request_id)).first()
    if row is None:
        row = session.exec(select(V).where(V.session_id == call.session_id)).first()
    if row is None or row.status not in PLACED:
        return row  # not ours, or settled already (the platform repeats a callback it timed out on)
    if _finish(session, row, answered=bool(call.answered), duration_s=call.duration_s, now=now, settings=settings,
               reason="" if call.answered else (call.hangup_cause or call.call_state or "not answered"),
               amount=call.amount, currency=call.currency):
        row.session_id = row.session_id or call.session_id[:100]
        row.amount = None if call.amount is None else str(call.amount)[:32]
        if call.amount is not None and (call.currency or "").strip().upper() != CURRENCY:
            log.warning("call cost not in XOF: estimated from its minutes",
                        extra={"phone": mask(row.phone), "currency": (call.currency or "")[:8]})
    return row


def minutes_left(session: Session, now: dt.datetime, settings: Settings) -> int:
    day = budgets.day_period(now, settings.tz)
    return max(settings.voice_minutes_per_day - budgets.spent(session, BUDGET_MINUTES, day), 0)


def francs_left(session: Session, now: dt.datetime, settings: Settings) -> int:
    day = budgets.day_period(now, settings.tz)
    return max(settings.voice_francs_per_day - budgets.spent(session, BUDGET_FRANCS, day), 0)
