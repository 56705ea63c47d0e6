"""Calls Sugu places (missed-call callbacks): the ceilings no caller can get round, retries of an
unanswered call, leases of a killed worker, and nobody called twice by racing workers."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlmodel import select

from gateway.aggregators.calling import OUTBOUND, CallResult, Rejected, TransportError, VoiceCallback
from gateway.data import models
from gateway.outbound import calls
from tests.conftest import NOW

pytestmark = pytest.mark.db

PHONE = "+22370123456"


class Caller:
    """A voice caller that records who it called (thread-safe), or fails as told."""

    name = "test"

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.called: list[str] = []
        self._lock = threading.Lock()

    def call(self, to: str, *, client_request_id: str) -> CallResult:
        if self.fail is not None:
            raise self.fail
        with self._lock:
            self.called.append(to)
        return CallResult(to, f"ATVId_{client_request_id}", "Queued", client_request_id)

    def close(self) -> None:
        pass


def queue(db, settings, phone=PHONE, now=NOW):
    with db.unit_of_work() as session:
        return calls.queue_callback(session, phone=phone, now=now, settings=settings)


def rows(db):
    with db.unit_of_work() as session:
        return session.exec(select(models.VoiceCall).order_by(models.VoiceCall.id)).all()


def step(db, settings, caller, now):
    return calls.step(db, lambda: caller, clock=lambda: now, settings=settings)


def final(db, settings, row, *, answered: bool, duration: int, now):
    call = VoiceCallback(
        session_id=row.session_id, direction=OUTBOUND, phone=row.phone, service_number="+22320221234",
        is_active=False, digits=None, recording_url=None, duration_s=duration, currency="XOF",
        amount=Decimal(duration), call_state="Completed" if answered else "NotAnswered",
        hangup_cause="NORMAL_CLEARING" if answered else "NO_ANSWER", client_request_id=row.client_request_id,
        answered=answered,
    )
    with db.unit_of_work() as session:
        calls.settle(session, call=call, now=now, settings=settings)


LATER = NOW + dt.timedelta(minutes=1)


def test_a_missed_call_is_called_back_after_the_delay(db, settings):
    assert queue(db, settings).outcome == "queued"
    caller = Caller()
    assert step(db, settings, caller, NOW).placed == 0  # not yet due
    assert step(db, settings, caller, LATER).placed == 1
    assert caller.called == [PHONE] and rows(db)[0].status == "calling"


def test_one_call_waits_per_phone_however_many_missed_calls(db, settings):
    outcomes = [queue(db, settings).outcome for _ in range(3)]
    assert outcomes == ["queued", "already", "already"]
    assert len(rows(db)) == 1


@pytest.mark.parametrize("limit, expected", [(0, ["limit"]), (1, ["queued", "limit"]), (2, ["queued", "queued"])])
def test_calls_back_per_phone_and_day_have_a_ceiling(db, settings, limit, expected):
    settings = settings.model_copy(update={"voice_callbacks_per_phone_per_day": limit})
    caller = Caller()
    outcomes = []
    for _ in expected:
        outcomes.append(queue(db, settings).outcome)
        step(db, settings, caller, LATER)
        for row in rows(db):
            if row.status == "calling":
                final(db, settings, row, answered=True, duration=30, now=LATER)
    assert outcomes == expected


def test_no_call_in_quiet_hours_it_waits_for_morning(db, settings):
    night = NOW.replace(hour=22)
    queued = queue(db, settings, now=night)
    morning = queued.due_at.astimezone(settings.tz)
    assert (morning.hour, morning.minute) == (7, 0) and morning.date() == night.date() + dt.timedelta(days=1)
    assert step(db, settings, Caller(), night + dt.timedelta(hours=1)).placed == 0


def test_concurrent_calls_are_capped(db, settings):
    settings = settings.model_copy(update={"voice_concurrent_calls": 2})
    for n in range(5):
        queue(db, settings, phone=f"+2237010000{n}")
    caller = Caller()
    assert step(db, settings, caller, LATER).placed == 2
    assert step(db, settings, caller, LATER).placed == 0  # two still in progress
    first = rows(db)[0]
    final(db, settings, first, answered=True, duration=40, now=LATER)
    assert step(db, settings, caller, LATER).placed == 1


def test_the_daily_minutes_budget_stops_calls_and_is_settled_by_real_durations(db, settings):
    settings = settings.model_copy(update={"voice_minutes_per_day": 6, "voice_call_minutes_estimate": 3})
    for n in range(4):
        queue(db, settings, phone=f"+2237010000{n}")
    caller = Caller()
    result = step(db, settings, caller, LATER)
    assert result.placed == 2 and result.paused == "minutes budget"
    for row in rows(db)[:2]:
        final(db, settings, row, answered=True, duration=50, now=LATER)  # 1 minute each, 3 reserved
    with db.unit_of_work() as session:
        assert calls.minutes_left(session, LATER, settings) == 4
    assert step(db, settings, caller, LATER).placed == 1  # 4 left: room for one estimate of 3


def test_an_unanswered_call_is_tried_once_more_then_left(db, settings):
    queue(db, settings)
    caller = Caller()
    step(db, settings, caller, LATER)
    final(db, settings, rows(db)[0], answered=False, duration=0, now=LATER)
    row = rows(db)[0]
    assert row.status == "queued" and row.pending_phone == PHONE
    assert step(db, settings, caller, LATER).placed == 0  # waits voice_retry_after_s
    retry_at = LATER + dt.timedelta(seconds=settings.voice_retry_after_s + 1)
    assert step(db, settings, caller, retry_at).placed == 1
    final(db, settings, rows(db)[0], answered=False, duration=0, now=retry_at)
    row = rows(db)[0]
    assert row.status == "not_answered" and row.pending_phone is None and row.attempts == 2
    assert caller.called == [PHONE, PHONE]


def test_a_repeated_final_callback_settles_once(db, settings):
    settings = settings.model_copy(update={"voice_minutes_per_day": 10})
    queue(db, settings)
    step(db, settings, Caller(), LATER)
    row = rows(db)[0]
    final(db, settings, row, answered=True, duration=125, now=LATER)
    final(db, settings, row, answered=True, duration=125, now=LATER)
    with db.unit_of_work() as session:
        assert calls.minutes_left(session, LATER, settings) == 7  # 3 minutes, counted once


def test_a_number_the_platform_refuses_is_not_tried_again(db, settings):
    queue(db, settings)
    result = step(db, settings, Caller(fail=Rejected("InvalidPhoneNumber")), LATER)
    assert result.failed == 1
    row = rows(db)[0]
    assert row.status == "failed" and row.pending_phone is None


def test_a_platform_away_puts_the_call_back_in_the_queue_and_the_minutes_back(db, settings):
    queue(db, settings)
    result = step(db, settings, Caller(fail=TransportError("refused", reached=False)), LATER)
    assert result.retried == 1
    row = rows(db)[0]
    assert row.status == "queued" and row.minutes_reserved == 0
    with db.unit_of_work() as session:
        assert calls.minutes_left(session, LATER, settings) == settings.voice_minutes_per_day


def test_a_killed_workers_claims_go_back_to_the_queue(db, settings):
    queue(db, settings)
    with db.unit_of_work() as session:
        claimed, _ = calls._claim(session, now=LATER, settings=settings)  # then the worker dies
    assert [r.status for r in claimed] == ["claimed"]
    assert step(db, settings, Caller(), LATER).placed == 0  # leased
    after = LATER + calls.LEASE + dt.timedelta(seconds=1)
    caller = Caller()
    assert step(db, settings, caller, after).placed == 1 and caller.called == [PHONE]


def test_racing_workers_never_call_anyone_twice(db, settings, backend):
    settings = settings.model_copy(update={"voice_concurrent_calls": 1000, "voice_minutes_per_day": 10_000})
    phones = [f"+223701{n:05d}" for n in range(40)]
    for phone in phones:
        queue(db, settings, phone=phone)
    caller = Caller()

    def worker(_):
        for _ in range(5):
            try:
                step(db, settings, caller, LATER)
            except Exception as exc:  # SQLite's one writer: a busy worker tries again next turn
                if "locked" not in str(exc):
                    raise

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))
    step(db, settings, caller, LATER)
    assert sorted(caller.called) == phones
