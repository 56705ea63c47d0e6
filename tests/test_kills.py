"""A worker killed at every point of a step, then a fresh one run with the clock past the lease:
what each phone received from the fake aggregator. Duplicates 0, never sent 0, and only the
request in flight at the kill ambiguous (issue 14, "a killed broadcaster writes alerts off"),
for every outbound kind: alerts, staff broadcasts, notices (summaries, staff decisions) and
replies (sent by the web process right after the webhook, finished by a worker)."""

from __future__ import annotations

import collections
import datetime as dt

import pytest
from sqlalchemy import func
from sqlmodel import select

from gateway.outbound import broadcast
from gateway.data import models
from gateway.outbound import outbox
from gateway.aggregators.africastalking import AfricasTalkingSender
from messages import default_catalog
from tests.conftest import NOW

pytestmark = pytest.mark.db

CATALOG = default_catalog()
MORNING = NOW.replace(hour=9)
PHONES = [f"+2237020{i:04d}" for i in range(12)]


class Killed(BaseException):
    """A simulated SIGKILL: nothing catches it, no cleanup of ours runs (no `except Exception`)."""


@pytest.fixture
def sender(fake_at):
    s = AfricasTalkingSender(username="sugu", api_key="test-key", base_url=fake_at.url, timeout_s=1.0)
    yield s
    s.close()


class KilledInFlight:
    """Dies while its request is out: before it reached the aggregator, or after (no answer)."""

    name = "africastalking"

    def __init__(self, real, *, arrived: bool):
        self.real, self.arrived = real, arrived

    def send(self, text, recipients):
        if self.arrived:
            self.real.send(text, recipients)
        raise Killed("mid-request")


def kill_at(monkeypatch, point: str, nth: int = 1):
    """Kill the worker the nth time it passes `point` (outbox.checkpoint)."""
    seen = collections.Counter()

    def checkpoint(name):
        seen[name] += 1
        if name == point and seen[name] == nth:
            raise Killed(point)

    monkeypatch.setattr(outbox, "checkpoint", checkpoint)


# Where the kill lands: (outbox.checkpoint point and its occurrence) or a sender killed in flight.
POINTS = [
    pytest.param(("before_claim", 1), None, id="before-claim"),
    pytest.param(("claimed", 1), None, id="after-claim"),
    pytest.param(("before_request", 2), None, id="between-requests"),
    pytest.param(None, False, id="mid-request-before-it-left"),
    pytest.param(None, True, id="mid-request-after-it-arrived"),
    pytest.param(("answered", 1), None, id="after-the-answer-before-recording"),
]


def queue_outbound(db, kind: str) -> None:
    """Twelve phones, two texts (two requests in a step): fr and bm."""
    crops = {c.code: c.id for c in _all(db, models.Crop)}
    markets = {m.code: m.id for m in _all(db, models.Market)}
    with db.unit_of_work() as session:
        producers = [models.Producer(phone=p, language="bm" if i % 2 else "fr") for i, p in enumerate(PHONES)]
        session.add_all(producers)
        session.flush()
        if kind == "alert":
            session.add_all(models.Subscription(producer_id=p.id, crop_id=crops["tomato"], market_id=markets["sikasso"]) for p in producers)
            session.flush()
            broadcast.publish_alerts(session, pairs=[(crops["tomato"], markets["sikasso"])], now=MORNING)
        elif kind == "broadcast":
            broadcast.create_broadcast(session, text_fr="Réunion jeudi", text_bm="Ɲɔgɔnye jumadon",
                                       audience=broadcast.Audience(), now=MORNING, created_by="cli")
        else:  # notice, reply
            for i, phone in enumerate(PHONES):
                outbox.queue_sms(session, phone=phone, text="Offre acceptée" if i % 2 else "Offre refusée",
                                 language="fr", kind=kind, now=MORNING)


def _all(db, model):
    with db.unit_of_work() as session:
        return session.exec(select(model)).all()


def outbound(db):
    with db.unit_of_work() as session:
        return session.exec(select(models.SmsMessage).where(models.SmsMessage.phone.in_(PHONES))).all()


def statuses(db):
    return collections.Counter(r.status for r in outbound(db))


def run_until_idle(db, sender, settings, now, owner="fresh"):
    for step in range(20):
        result = broadcast.worker_step(db, sender, clock=lambda: now, catalog=CATALOG, settings=settings,
                                       owner=f"{owner}-{step}")
        if not result.claimed and not result.expanded:
            return result


@pytest.mark.parametrize("kind", ["alert", "broadcast", "notice", "reply"])
@pytest.mark.parametrize("point, arrived", POINTS)
def test_killed_worker_sends_everything_once(db, settings, sender, fake_at, monkeypatch, kind, point, arrived):
    queue_outbound(db, kind)
    dying = sender if arrived is None else KilledInFlight(sender, arrived=arrived)
    if point is not None:
        kill_at(monkeypatch, *point)
    with pytest.raises(Killed):
        if kind == "reply":
            # The web process sends a reply right after its webhook.
            ids = [r.id for r in outbound(db)]
            for message_id in ids:
                outbox.send_messages(db, dying, [message_id], lambda: MORNING)
        else:
            for _ in range(5):
                broadcast.worker_step(db, dying, clock=lambda: MORNING, catalog=CATALOG, settings=settings, owner="dead")
    monkeypatch.setattr(outbox, "checkpoint", lambda name: None)
    in_flight = statuses(db)["sending"]
    # Within the lease, the dead worker's claims are left alone.
    run_until_idle(db, sender, settings, MORNING + dt.timedelta(seconds=30), owner="early")
    assert statuses(db)["sending"] == in_flight
    # Past it: everything not in flight is sent, once.
    run_until_idle(db, sender, settings, MORNING + dt.timedelta(seconds=settings.worker_lease_s + 1))

    received = collections.Counter(number for number, _, _ in fake_at.sent_messages())
    rows = outbound(db)
    assert len(rows) == len(PHONES)
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    ambiguous = [r for r in rows if r.status == "unconfirmed"]
    never_sent = [r.phone for r in rows if r.status != "unconfirmed" and received[r.phone] == 0]
    assert (duplicates, never_sent) == (0, [])
    assert len(ambiguous) == in_flight
    assert {r.status for r in rows} <= {"sent", "unconfirmed"}
    assert all(r.failure_reason == "lease_expired" for r in ambiguous)
    # In flight: one request's recipients (a text's six phones; a reply's one), or none.
    request = 1 if kind == "reply" else len(PHONES) // 2
    assert in_flight == (0 if point in (("before_claim", 1), ("claimed", 1), ("before_request", 2)) else request)
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.WorkerLease)).one() == 0  # nothing left leased


def test_a_slow_claimer_that_lost_its_lease_sends_nothing(db, settings, sender, fake_at):
    """Its rows were put back and taken by another worker: the first one must not send them too."""
    queue_outbound(db, "notice")
    with db.unit_of_work() as session:
        rows = broadcast.claim(session, now=MORNING, limit=100, kinds=["notice"], owner="slow")
    late = MORNING + dt.timedelta(seconds=settings.worker_lease_s + 1)
    run_until_idle(db, sender, settings, late)
    assert len(fake_at.sent_messages()) == len(PHONES)
    outbox.send_claimed(db, sender, rows, lambda: late)  # the slow one wakes up
    assert len(fake_at.sent_messages()) == len(PHONES)
