"""The shared budget ledger: reservations, refunds and periods as a table, and one ceiling for
many workers at once on each backend; the calls' minutes and francs, reserved and settled in it."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import OperationalError

from gateway.aggregators.calling import OUTBOUND, VoiceCallback
from gateway.core.db import Database
from gateway.outbound import budgets, calls
from tests.conftest import NOW
from tests.test_voice_calls import LATER, Caller, queue, rows, step

pytestmark = pytest.mark.db

BAMAKO = ZoneInfo("Africa/Bamako")


# (reservations and refunds in order: ("reserve", wanted) or ("refund", amount)), limit, grants, spent at the end
STEPS = [
    pytest.param([("reserve", 30), ("reserve", 30)], 50, [30, 20], 50, id="second-gets-the-rest"),
    pytest.param([("reserve", 50), ("reserve", 1)], 50, [50, 0], 50, id="spent-grants-nothing"),
    pytest.param([("reserve", 40), ("refund", 15), ("reserve", 30)], 50, [40, 25], 50, id="refund-frees-units"),
    pytest.param([("refund", 10), ("reserve", 5)], 50, [5], 5, id="refund-before-reserve-never-negative"),
    pytest.param([("reserve", 0), ("reserve", -3)], 50, [0, 0], 0, id="nothing-wanted"),
    pytest.param([("reserve", 10)], 0, [0], 0, id="zero-budget"),
]


@pytest.mark.parametrize("steps, limit, grants, spent", STEPS)
def test_reserve_and_refund(db, steps, limit, grants, spent):
    got = []
    for action, amount in steps:
        with db.unit_of_work() as session:
            if action == "reserve":
                got.append(budgets.reserve(session, "bulk_sms", "2026-11-28", amount, limit, now=NOW))
            else:
                budgets.refund(session, "bulk_sms", "2026-11-28", amount, now=NOW)
    assert got == grants
    with db.unit_of_work() as session:
        assert budgets.spent(session, "bulk_sms", "2026-11-28") == spent


# names asked for (a repeat counts once), what each had spent before, limit → the names granted a unit
EACH = [
    pytest.param(["a", "b", "c"], {}, 1, {"a", "b", "c"}, id="all-fresh"),
    pytest.param(["a", "b", "a"], {"a": 1}, 1, {"b"}, id="one-spent-and-a-repeat"),
    pytest.param(["a", "b"], {"a": 1, "b": 2}, 3, {"a", "b"}, id="room-under-a-higher-limit"),
    pytest.param(["a"], {}, 0, set(), id="zero-limit"),
    pytest.param([], {}, 1, set(), id="nothing-asked"),
    pytest.param([f"p{n}" for n in range(2000)], {}, 1, {f"p{n}" for n in range(2000)}, id="more-than-a-chunk"),
]


@pytest.mark.parametrize("names, before, limit, granted", EACH)
def test_reserve_each_grants_one_unit_per_name_within_its_limit(db, names, before, limit, granted):
    with db.unit_of_work() as session:
        for name, used in before.items():
            budgets.reserve(session, name, "2026-11-28", used, 10, now=NOW)
    with db.unit_of_work() as session:
        assert budgets.reserve_each(session, names, "2026-11-28", limit, now=NOW) == granted
    with db.unit_of_work() as session:
        for name in set(names):
            assert budgets.spent(session, name, "2026-11-28") == before.get(name, 0) + (name in granted)


def test_a_rolled_back_reservation_is_not_spent(db):
    with pytest.raises(RuntimeError):
        with db.unit_of_work() as session:
            assert budgets.reserve(session, "replies", "2026-11-28", 7, 10, now=NOW) == 7
            raise RuntimeError("the claim failed")
    with db.unit_of_work() as session:
        assert budgets.spent(session, "replies", "2026-11-28") == 0


@pytest.mark.parametrize(
    "now, day, hour",
    [
        pytest.param(dt.datetime(2026, 11, 28, 23, 59, tzinfo=dt.timezone.utc), "2026-11-28", "2026-11-28T23", id="bamako-is-utc"),
        pytest.param(dt.datetime(2026, 11, 29, 0, 0, tzinfo=dt.timezone.utc), "2026-11-29", "2026-11-29T00", id="midnight"),
    ],
)
def test_periods_follow_the_farmers_clock(now, day, hour):
    assert budgets.day_period(now, BAMAKO) == day
    assert budgets.hour_period(now, BAMAKO) == hour


def at_once(settings, workers: int, job) -> list:
    """`job(database)` in `workers` threads started together, each with its own connections:
    what each returned (any error fails the test)."""
    databases = [Database.from_settings(settings) for _ in range(workers)]
    start, results, errors = threading.Barrier(workers), [], []

    def worker(database):
        try:
            start.wait()
            results.append(job(database))
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for d in databases:
        d.dispose()
    assert not errors, errors
    return results


def test_five_workers_reserving_at_once_share_one_ceiling(settings):
    """With 50 left, five workers reserving 30 each at the same moment get 50 between them."""

    def job(database):
        with database.unit_of_work() as session:
            return budgets.reserve(session, "bulk_sms", "2026-11-28", 30, 50, now=NOW)

    grants = at_once(settings, 5, job)
    assert sum(grants) == 50 and len(grants) == 5, grants


# -- calls: minutes and francs (gateway.outbound.calls) ---------------------------------------------

# 3 minutes reserved a call at 60 F a minute: 180 F a call.
PRICED = {"voice_call_minutes_estimate": 3, "voice_price_per_minute": 60.0, "voice_concurrent_calls": 100}


def priced(settings, **update):
    return settings.model_copy(update={**PRICED, **update})


def end(db, settings, row, *, duration, amount, currency, answered=True, now=LATER):
    call = VoiceCallback(
        session_id=row.session_id, direction=OUTBOUND, phone=row.phone, service_number="+22320221234",
        is_active=False, digits=None, recording_url=None, duration_s=duration, currency=currency,
        amount=None if amount is None else Decimal(amount), call_state="Completed", hangup_cause="NORMAL_CLEARING",
        client_request_id=row.client_request_id, answered=answered,
    )
    with db.unit_of_work() as session:
        calls.settle(session, call=call, now=now, settings=settings)


def left(db, settings, now=LATER):
    with db.unit_of_work() as session:
        return calls.minutes_left(session, now, settings), calls.francs_left(session, now, settings)


# amount, currency, duration (s) → francs the call is settled at
COSTS = [
    pytest.param("45.5", "XOF", 50, 46, id="xof-amount-rounded-up"),
    pytest.param("0", "XOF", 0, 0, id="free"),
    pytest.param("250", " xof ", 61, 250, id="xof-any-case"),
    pytest.param(None, None, 61, 120, id="no-amount-2-minutes-at-60"),
    pytest.param("0.35", "USD", 125, 180, id="other-currency-3-minutes-at-60"),
    pytest.param("-5", "XOF", 10, 0, id="negative-amount-is-nothing"),
    pytest.param("1000", "XOF", 3600, 1000, id="past-the-estimate"),
]


@pytest.mark.parametrize("amount, currency, duration, francs", COSTS)
def test_a_call_is_settled_at_its_real_cost(db, settings, amount, currency, duration, francs):
    settings = priced(settings)
    assert calls.cost_francs(None if amount is None else Decimal(amount), currency, duration, settings) == francs
    queue(db, settings)
    step(db, settings, Caller(), LATER)
    assert left(db, settings)[1] == settings.voice_francs_per_day - 180  # the estimate, while it rings
    end(db, settings, rows(db)[0], duration=duration, amount=amount, currency=currency)
    assert left(db, settings) == (settings.voice_minutes_per_day - -(-duration // 60),
                                  settings.voice_francs_per_day - francs)


# calls wanted, minutes and francs per day → (calls paid for, the budget that stopped the rest),
# and (minutes, francs) left after: what is not paid for goes back.
RESERVATIONS = [
    pytest.param(3, 600, 36_000, (3, ""), (591, 35_460), id="all-paid"),
    pytest.param(3, 7, 36_000, (2, "minutes budget"), (1, 35_640), id="minutes-for-two"),
    pytest.param(3, 600, 400, (2, "francs budget"), (594, 40), id="francs-for-two"),
    pytest.param(3, 4, 100, (0, "francs budget"), (4, 100), id="minutes-for-one-francs-for-none"),
    pytest.param(2, 0, 0, (0, "minutes budget"), (0, 0), id="nothing-to-spend"),
    pytest.param(0, 600, 36_000, (0, ""), (600, 36_000), id="nothing-wanted"),
]


@pytest.mark.parametrize("wanted, minutes, francs, outcome, after", RESERVATIONS)
def test_calls_reserve_whole_estimates_of_both_budgets(db, settings, wanted, minutes, francs, outcome, after):
    settings = priced(settings, voice_minutes_per_day=minutes, voice_francs_per_day=francs)
    with db.unit_of_work() as session:
        assert calls.reserve_calls(session, wanted, now=LATER, settings=settings) == outcome
    assert left(db, settings) == after


def test_the_francs_budget_stops_calls_until_settled_costs_free_some(db, settings):
    settings = priced(settings, voice_francs_per_day=400)
    for n in range(4):
        queue(db, settings, phone=f"+2237010000{n}")
    caller = Caller()
    result = step(db, settings, caller, LATER)
    assert (result.placed, result.paused) == (2, "francs budget")
    assert left(db, settings) == (settings.voice_minutes_per_day - 6, 40)  # the refused call's minutes went back
    for row in rows(db)[:2]:
        end(db, settings, row, duration=50, amount="30", currency="XOF")
    assert left(db, settings)[1] == 340
    result = step(db, settings, caller, LATER)
    assert (result.placed, result.paused) == (1, "francs budget")  # 160 left: less than an estimate
    assert len(caller.called) == 3


def test_the_francs_budget_holds_the_next_day_apart(db, settings):
    settings = priced(settings, voice_francs_per_day=180)
    queue(db, settings, phone="+22370100001")
    queue(db, settings, phone="+22370100002")
    assert step(db, settings, Caller(), LATER).placed == 1
    assert step(db, settings, Caller(), LATER + dt.timedelta(days=1)).placed == 1  # tomorrow's budget


def test_a_killed_workers_claim_keeps_its_reservation_once(db, settings):
    settings = priced(settings)
    queue(db, settings)
    with db.unit_of_work() as session:
        calls._claim(session, now=LATER, settings=settings)  # then the worker dies
    after = LATER + calls.LEASE + dt.timedelta(seconds=1)
    assert step(db, settings, Caller(), after).placed == 1
    assert left(db, settings, after) == (settings.voice_minutes_per_day - 3, settings.voice_francs_per_day - 180)


def test_workers_reserving_calls_at_once_share_the_francs(db, settings):
    """Five workers at the same moment, francs for two calls (and minutes for all): two calls
    granted, and the three refused give their minutes back."""
    settings = priced(settings, voice_francs_per_day=400)

    def job(database):
        with database.unit_of_work() as session:
            return calls.reserve_calls(session, 1, now=LATER, settings=settings)

    outcomes = at_once(settings, 5, job)
    assert sorted(outcomes) == [(0, "francs budget")] * 3 + [(1, "")] * 2
    assert left(db, settings) == (settings.voice_minutes_per_day - 6, 40)


def test_two_workers_racing_place_only_what_the_francs_pay_for(db, settings):
    settings = priced(settings, voice_francs_per_day=4 * 180)
    for n in range(12):
        queue(db, settings, phone=f"+223701{n:05d}")
    caller = Caller()

    def job(database):
        for _ in range(6):
            try:
                calls.step(database, lambda: caller, clock=lambda: LATER, settings=settings)
            except OperationalError as exc:  # SQLite's one writer: a busy worker tries again next turn
                if "locked" not in str(exc):
                    raise

    at_once(settings, 2, job)
    assert len(caller.called) == 4 and len(set(caller.called)) == 4
    assert left(db, settings)[1] == 0
