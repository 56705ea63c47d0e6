"""Calls Sugu places: calling back a farmer whose call it rejected (the farmer pays nothing), and
later voice alerts. The ceilings hold whoever asks, on every process, from the shared ledger:

- calls back per phone and farmers' day (a missed call beyond it is only rejected);
- one call waiting per phone, however many missed calls come in (a unique pending phone);
- minutes per day: an estimate is reserved when a call is placed and settled from the final
  callback's duration;
- calls being placed or in progress at once, and no call in quiet hours (it waits for morning);
- an unanswered call is tried again after a pause, up to the attempts allowed.

A worker claims due calls under a lease (a killed worker's claims go back to the queue), places
them after its unit of work commits, and the platform's final callback settles them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import uuid
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from gateway.aggregators.calling import AccountProblem, Rejected, SendError, VoiceCallback, VoiceCaller
from gateway.core.db import Database
from gateway.core.phones import mask
from gateway.core.settings import Settings
from gateway.data import models
from gateway.data.producers import insert_ignore
from gateway.outbound import budgets
from gateway.outbound.budgets import in_quiet_hours

_LANGUAGE = re.compile(r"[a-z]{2,3}")  # a language code (models.Language)

log = logging.getLogger("gateway.calls")

CALLBACK, ALERT = "callback", "alert"
QUEUED, CLAIMED, CALLING = "queued", "claimed", "calling"
ANSWERED, NOT_ANSWERED, FAILED = "answered", "not_answered", "failed"
LIVE = (CLAIMED, CALLING)  # count against the concurrent calls
BUDGET_MINUTES = "voice_minutes"
LEASE = dt.timedelta(seconds=60)
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


def queue_alert(session: Session, *, broadcast_id: int, phone: str, language: str, pairs: list, now: dt.datetime,
                settings: Settings) -> bool:
    """A voice alert for `phone` (said when the call is answered); False when this broadcast
    already calls them (never twice for one alert) or their voice alerts of the day are spent."""
    day = budgets.day_period(now, settings.tz)
    if not budgets.reserve(session, _per_phone_alerts(phone), day, 1, settings.voice_alerts_per_phone_per_day, now=now):
        return False
    created = insert_ignore(session, V, {
        "phone": phone, "purpose": ALERT, "status": QUEUED, "due_at": _utc(next_allowed(now, settings)),
        "client_request_id": uuid.uuid4().hex, "broadcast_id": broadcast_id, "pairs": [list(p) for p in pairs],
        # Any configured language: when the call is answered, one no longer offered by voice is
        # said in French (gateway.voice.service.answer_alert).
        "language": language if _LANGUAGE.fullmatch(language or "") else "fr", "created_at": _utc(now),
        "updated_at": _utc(now),
    }, ["broadcast_id", "phone"])
    if created is None:
        budgets.refund(session, _per_phone_alerts(phone), day, 1, now=now)
        return False
    return True


def by_request(session: Session, client_request_id: str | None) -> models.VoiceCall | None:
    if not client_request_id:
        return None
    return session.exec(select(V).where(V.client_request_id == client_request_id)).first()


@dataclass
class StepResult:
    placed: int = 0
    failed: int = 0
    retried: int = 0
    paused: str = ""  # why nothing more was placed: quiet hours, minutes budget, account


def _claim(session: Session, *, now: dt.datetime, settings: Settings) -> tuple[list[models.VoiceCall], str]:
    stamp = _utc(now)
    # Claims of a worker that died go back to the queue; placed calls never heard of again end.
    session.exec(update(V).where(V.status == CLAIMED, col(V.lease_until) < stamp)
                 .values(status=QUEUED, lease_until=None, updated_at=stamp))
    for row in session.exec(select(V).where(V.status == CALLING, V.updated_at < stamp - CALL_GIVE_UP)).all():
        _finish(session, row, answered=False, duration_s=None, now=now, settings=settings, reason="no final callback")
    if in_quiet_hours(now, settings):
        return [], "quiet hours"
    live = session.exec(select(func.count()).select_from(V).where(col(V.status).in_(LIVE))).one()
    room = settings.voice_concurrent_calls - live
    if room <= 0:
        return [], "concurrent calls"
    due = session.exec(
        select(V).where(V.status == QUEUED, V.due_at <= stamp).order_by(V.due_at, V.id).limit(room)
    ).all()
    claimed: list[models.VoiceCall] = []
    day = budgets.day_period(now, settings.tz)
    estimate = settings.voice_call_minutes_estimate
    for row in due:
        granted = budgets.reserve(session, BUDGET_MINUTES, day, estimate, settings.voice_minutes_per_day, now=now)
        if granted < estimate:  # a call needs its whole estimate: what is left waits for tomorrow
            budgets.refund(session, BUDGET_MINUTES, day, granted, now=now)
            return claimed, "minutes budget"
        # Another worker may have claimed it since the read: only a row still queued is ours.
        taken = session.exec(
            update(V).where(V.id == row.id, V.status == QUEUED)
            .values(status=CLAIMED, lease_until=stamp + LEASE, minutes_reserved=estimate, updated_at=stamp)
            .returning(V.id)
        ).first()
        if taken is None:
            budgets.refund(session, BUDGET_MINUTES, day, estimate, now=now)
            continue
        session.refresh(row)
        claimed.append(row)
    return claimed, ""


def step(db: Database, get_caller: Callable[[], VoiceCaller | None], *, clock: Callable[[], dt.datetime],
         settings: Settings) -> StepResult:
    """Place the calls that are due, within the ceilings. Any number of workers may run it.
    `get_caller` is asked for the caller only when a call is due (None: calls cannot be placed)."""
    result = StepResult()
    now = clock()
    with db.unit_of_work() as session:
        if session.exec(select(V.id).where(col(V.status).in_((QUEUED, CLAIMED, CALLING))).limit(1)).first() is None:
            return result  # the usual case: one indexed look, nothing else loaded
        caller = get_caller()
        if caller is None:
            result.paused = "no voice number"
            return result
        claimed, result.paused = _claim(session, now=now, settings=settings)
        calls = [(row.id, row.phone, row.client_request_id) for row in claimed]
    for call_id, phone, request_id in calls:
        try:
            placed = caller.call(phone, client_request_id=request_id)
        except SendError as exc:
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
        with db.unit_of_work() as session:
            session.exec(update(V).where(V.id == call_id, V.status == CLAIMED).values(
                status=CALLING, attempts=V.attempts + 1, session_id=placed.session_id, lease_until=None,
                updated_at=_utc(clock())))
        result.placed += 1
        log.info("call placed", extra={"phone": mask(phone)})
    return result


def _requeue(session: Session, row: models.VoiceCall, *, now: dt.datetime, settings: Settings, reason: str) -> None:
    """Not placed (the platform busy or away): back to the queue, the minutes given back."""
    budgets.refund(session, BUDGET_MINUTES, budgets.day_period(now, settings.tz), row.minutes_reserved, now=now)
    row.status, row.lease_until, row.minutes_reserved = QUEUED, None, 0
    row.due_at = _utc(next_allowed(now + dt.timedelta(seconds=settings.voice_retry_after_s), settings))
    row.reason, row.updated_at = reason[:64], _utc(now)
    session.add(row)


def _finish(session: Session, row: models.VoiceCall, *, answered: bool, duration_s: int | None, now: dt.datetime,
            settings: Settings, reason: str = "", final: bool = False) -> None:
    """Settle the minutes of a call that ended, then close it or try it again later."""
    day = budgets.day_period(now, settings.tz)
    used = math.ceil((duration_s or 0) / 60)
    if used < row.minutes_reserved:
        budgets.refund(session, BUDGET_MINUTES, day, row.minutes_reserved - used, now=now)
    elif used > row.minutes_reserved:
        # Spent is spent: the ledger records it even past the ceiling (later calls wait).
        budgets.reserve(session, BUDGET_MINUTES, day, used - row.minutes_reserved, 2**31 - 1, now=now)
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


def settle(session: Session, *, call: VoiceCallback, now: dt.datetime, settings: Settings) -> models.VoiceCall | None:
    """The final callback of a call we placed: answered or not, how long, what it cost."""
    row = None
    if call.client_request_id:
        row = session.exec(select(V).where(V.client_request_id == call.client_request_id)).first()
    if row is None:
        row = session.exec(select(V).where(V.session_id == call.session_id)).first()
    if row is None or row.status != CALLING:
        return row  # not ours, or settled already (the platform repeats a callback it timed out on)
    row.amount = None if call.amount is None else str(call.amount)[:32]
    _finish(session, row, answered=bool(call.answered), duration_s=call.duration_s, now=now, settings=settings,
            reason="" if call.answered else (call.hangup_cause or call.call_state or "not answered"))
    return row


def minutes_left(session: Session, now: dt.datetime, settings: Settings) -> int:
    day = budgets.day_period(now, settings.tz)
    return max(settings.voice_minutes_per_day - budgets.spent(session, BUDGET_MINUTES, day), 0)
