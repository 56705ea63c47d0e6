"""The shared budget ledger: reservations, refunds and periods as a table, and one ceiling for
many workers at once on each backend."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from gateway.outbound import budgets
from gateway.core.db import Database
from tests.conftest import NOW

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


def test_five_workers_reserving_at_once_share_one_ceiling(settings):
    """With 50 left, five workers reserving 30 each at the same moment get 50 between them."""
    databases = [Database.from_settings(settings) for _ in range(5)]
    start, grants, errors = threading.Barrier(5), [], []

    def worker(database):
        try:
            start.wait()
            with database.unit_of_work() as session:
                grants.append(budgets.reserve(session, "bulk_sms", "2026-11-28", 30, 50, now=NOW))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(d,)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for d in databases:
        d.dispose()
    assert not errors, errors
    assert sum(grants) == 50 and len(grants) == 5, grants
