"""Daily pruning of old traffic rows: what goes, what stays, in small transactions, once a day."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from gateway import worker
from gateway.data import models
from gateway.cli import app
from messages import default_catalog
from tests.conftest import NOW

pytestmark = pytest.mark.db

OLD = NOW - dt.timedelta(days=500)
RECENT = NOW - dt.timedelta(days=30)


def sms(session, label, *, at, status="delivered", inbound_id=None):
    row = models.SmsMessage(phone="+22370000001", kind="reply", text=label, encoding="GSM-7", segments=1,
                            status=status, created_at=at, updated_at=at, inbound_id=inbound_id)
    session.add(row)
    session.flush()
    return row


def inbound(session, label, *, at):
    row = models.SmsInbound(provider="at", provider_id=label, phone="+22370000001", text=label, received_at=at, created_at=at)
    session.add(row)
    session.flush()
    return row


@pytest.fixture
def traffic(db):
    """Rows labelled by what must become of them."""
    with db.unit_of_work() as session:
        for n in range(5):
            sms(session, f"old-{n}", at=OLD)
        sms(session, "keep-recent", at=RECENT)
        sms(session, "keep-queued", at=OLD, status="queued")
        sms(session, "keep-sending", at=OLD, status="sending")
        named = sms(session, "keep-named-by-offer", at=OLD)
        offer = session.exec(select(models.Offer)).first()
        if offer is None:
            demand = session.exec(select(models.Demand)).first()
            producer = models.Producer(phone="+22370000099")
            session.add(producer)
            session.flush()
            offer = models.Offer(demand_id=demand.id, producer_id=producer.id, quantity_kg=10)
        offer.notified_sms_id = named.id
        session.add(offer)
        answered = inbound(session, "keep-answered-by-a-kept-reply", at=OLD)
        sms(session, "keep-reply-queued", at=OLD, status="queued", inbound_id=answered.id)
        lone = inbound(session, "old-inbound", at=OLD)
        replied = inbound(session, "old-inbound-replied", at=OLD)
        sms(session, "old-reply", at=OLD, inbound_id=replied.id)
        inbound(session, "keep-inbound-recent", at=RECENT)
        for sid, at in (("old-session", OLD), ("keep-session", RECENT)):
            session.add(models.UssdSession(session_id=sid, phone="+22370000001", started_at=at, updated_at=at))
            session.add(models.VoiceSession(session_id=sid, phone="+22370000001", started_at=at, updated_at=at))
        for rid, at, status in (("old-answered", OLD, "answered"), ("old-queued", OLD, "queued"),
                                ("keep-answered", RECENT, "answered")):
            session.add(models.VoiceCall(phone="+22370000001", client_request_id=rid, status=status, created_at=at))
        # Audio: an old playlist goes; an old recording (a prompt names it) and a recent playlist stay.
        for name, at in (("a" * 64, OLD), ("b" * 64, OLD), ("c" * 64, NOW)):
            session.add(models.AudioBlob(hash=name, data=b"RIFF", created_at=at))
        session.flush()
        session.add(models.AudioPrompt(clip="fr.crop.1", language="fr", audio_hash="b" * 64, source="recorded"))
        assert lone.id
    return db


def labels(db):
    with db.unit_of_work() as session:
        return (
            sorted(session.exec(select(models.SmsMessage.text)).all()),
            sorted(session.exec(select(models.SmsInbound.provider_id)).all()),
            sorted(session.exec(select(models.UssdSession.session_id)).all()),
        )


@pytest.mark.parametrize("batch", [worker.BATCH, 2], ids=["one-transaction", "batches-of-two"])
def test_prune_deletes_old_final_rows_and_keeps_the_rest(traffic, batch):
    report = worker.prune(traffic, now=NOW, days=400, batch=batch)
    assert report.deleted == {"sms_message": 6, "sms_inbound": 2, "ussd_session": 1, "voice_session": 1,
                              "voice_call": 1, "audio_playlist": 1}
    outbound, inbound_ids, sessions = labels(traffic)
    with traffic.unit_of_work() as session:
        assert sorted(session.exec(select(models.VoiceCall.client_request_id)).all()) == ["keep-answered", "old-queued"]
        assert sorted(h[0] for h in session.exec(select(models.AudioBlob.hash)).all()) == ["b", "c"]
    assert all(label.startswith("keep") for label in outbound + inbound_ids + sessions), (outbound, inbound_ids, sessions)
    assert "keep-named-by-offer" in outbound and "keep-answered-by-a-kept-reply" in inbound_ids
    assert sessions == ["keep-session"]


def test_dry_run_counts_and_deletes_nothing(traffic):
    before = labels(traffic)
    report = worker.prune(traffic, now=NOW, days=400, dry_run=True)
    # The inbound replied to by an old reply still has it in a dry run: counted after its reply goes.
    assert report.deleted == {"sms_message": 6, "sms_inbound": 1, "ussd_session": 1, "voice_session": 1,
                              "voice_call": 1, "audio_playlist": 1}
    assert labels(traffic) == before


def test_a_longer_retention_keeps_more(traffic):
    assert worker.prune(traffic, now=NOW, days=600).deleted == {
        "sms_message": 0, "sms_inbound": 0, "ussd_session": 0, "voice_session": 0, "voice_call": 0,
        "audio_playlist": 1,  # joined prompts go after a week, whatever the retention
    }


@pytest.mark.parametrize(
    "hour, retention, prunes",
    [
        pytest.param(2, 400, False, id="before-3am"),
        pytest.param(3, 400, True, id="from-3am"),
        pytest.param(14, 400, True, id="a-worker-started-later"),
        pytest.param(14, 0, False, id="retention-off"),
    ],
)
def test_daily_chores_prune_once_a_day(traffic, settings, hour, retention, prunes):
    chores = worker.DailyChores()
    conf = settings.model_copy(update={"retention_days": retention})
    now = NOW.replace(hour=hour)
    chores.tick(traffic, lambda: now, default_catalog(), conf)
    assert ("old-0" not in labels(traffic)[0]) is prunes
    # Later the same day: nothing more is tried.
    with traffic.unit_of_work() as session:
        sms(session, "old-after-the-first-tick", at=OLD)
    chores.tick(traffic, lambda: now + dt.timedelta(minutes=5), default_catalog(), conf)
    assert "old-after-the-first-tick" in labels(traffic)[0]


def test_cli_prune(traffic, settings, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    out = CliRunner().invoke(app, ["prune", "--dry-run", "--days", "400"])
    assert out.exit_code == 0, out.output
    assert "would delete sms_message 6, sms_inbound 1, ussd_session 1" in out.output
    out = CliRunner().invoke(app, ["prune", "--days", "400"])
    assert "deleted sms_message 6, sms_inbound 2, ussd_session 1" in out.output


# (seconds later, the step did work?, trimmed?) in order, with a 30 s interval.
TRIM_STEPS = [
    (0, True, True),  # work: trim
    (1, True, False),  # more work within the interval: later
    (1, True, False),
    (1, False, True),  # the worker falls idle: what the burst freed goes back at once
    (1, False, False),  # idle again: nothing owed
    (40, False, False),
    (0, True, True),  # work after the interval
    (31, True, True),  # long work: every interval
]


def test_heap_trimmer_trims_during_work_at_most_every_interval_and_once_when_idle():
    now = [100.0]
    trimmer = worker.HeapTrimmer(min_interval_s=30, clock=lambda: now[0])
    calls = []
    trimmer._trim = lambda pad: calls.append(pad) or 1
    trimmed = []
    for later, did_work, _ in TRIM_STEPS:
        now[0] += later
        trimmed.append(trimmer.after_step(did_work))
    assert trimmed == [t for *_, t in TRIM_STEPS]
    assert calls == [0] * sum(trimmed)


def test_heap_trimmer_is_a_no_op_without_glibc():
    trimmer = worker.HeapTrimmer()
    trimmer._trim = None
    assert not trimmer.after_step(True)
    assert worker.HeapTrimmer()._trim is not None  # this machine has glibc: the real call
    assert worker.HeapTrimmer().after_step(True)

