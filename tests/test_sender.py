"""The Africa's Talking adapter against the fake server: every status code and failure sorted into
our kinds; then the outbox recording each outcome on the message row."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from gateway.outbound import broadcast
from gateway.data import models
from gateway.outbound import outbox
from gateway.aggregators.africastalking import AfricasTalkingSender
from gateway.aggregators.sending import (
    ACCEPTED,
    ACCOUNT,
    FAILED,
    REJECTED,
    AccountProblem,
    Rejected,
    Throttled,
    TransportError,
)
from tests.conftest import NOW

A, B = "+22370000001", "+22366000002"


@pytest.fixture
def sender(fake_at):
    s = AfricasTalkingSender(username="sugu", api_key="test-key", sender_id="SUGU", base_url=fake_at.url, timeout_s=1.0)
    yield s
    s.close()


def test_send_reaches_the_fake_with_our_fields(sender, fake_at):
    results = sender.send("Prix: Tomate 350F", [A, B])
    assert [(r.phone, r.outcome) for r in results] == [(A, ACCEPTED), (B, ACCEPTED)]
    assert all(r.message_id.startswith("ATXid_") for r in results)
    assert results[0].cost == "XOF 10.0000" and results[0].cost_amount == 10.0
    (request,) = fake_at.requests()
    assert (request["username"], request["from"], request["to"], request["message"]) == ("sugu", "SUGU", [A, B], "Prix: Tomate 350F")


@pytest.mark.parametrize(
    "code, outcome, blacklisted",
    [
        pytest.param(100, ACCEPTED, False, id="100-processed"),
        pytest.param(101, ACCEPTED, False, id="101-sent"),
        pytest.param(102, ACCEPTED, False, id="102-queued"),
        pytest.param(401, ACCOUNT, False, id="401-risk-hold"),
        pytest.param(402, ACCOUNT, False, id="402-invalid-sender-id"),
        pytest.param(403, REJECTED, False, id="403-invalid-phone"),
        pytest.param(404, REJECTED, False, id="404-unsupported-number"),
        pytest.param(405, ACCOUNT, False, id="405-insufficient-balance"),
        pytest.param(406, REJECTED, True, id="406-blacklisted"),
        pytest.param(407, REJECTED, False, id="407-could-not-route"),
        pytest.param(409, REJECTED, False, id="409-do-not-disturb"),
        pytest.param(500, FAILED, False, id="500-internal"),
        pytest.param(501, FAILED, False, id="501-gateway"),
        pytest.param(502, FAILED, False, id="502-rejected-by-gateway"),
    ],
)
def test_recipient_status_codes(sender, fake_at, code, outcome, blacklisted):
    fake_at.configure(statuses={B: code})
    first, second = sender.send("x", [A, B])
    assert first.outcome == ACCEPTED
    assert (second.outcome, second.blacklisted) == (outcome, blacklisted)
    if outcome != ACCEPTED:
        assert second.message_id is None and second.cost_amount == 0


@pytest.mark.parametrize(
    "http, kind, error",
    [
        pytest.param(401, "account", AccountProblem, id="401-bad-key"),
        pytest.param(429, "throttled", Throttled, id="429-throttled"),
        pytest.param(500, "transport", TransportError, id="500"),
        pytest.param(502, "transport", TransportError, id="502"),
        pytest.param(503, "transport", TransportError, id="503"),
    ],
)
def test_http_failures_sorted_into_kinds(sender, fake_at, http, kind, error):
    fake_at.configure(fail_next=[http])
    with pytest.raises(error) as caught:
        sender.send("x", [A])
    assert caught.value.kind == kind
    if http == 429:
        assert caught.value.retry_after == 1.0
    if error is TransportError:
        assert caught.value.reached is False and caught.value.retryable
    assert sender.send("x", [A])[0].outcome == ACCEPTED  # and the next request goes through


def test_timeout_after_sending_is_ambiguous(sender, fake_at):
    fake_at.configure(hang_next=1, hang_s=3)
    with pytest.raises(TransportError) as caught:
        sender.send("x", [A])
    assert caught.value.reached is True and caught.value.kind == "ambiguous" and not caught.value.retryable
    assert len(fake_at.requests()) == 1  # it did arrive: resending would duplicate


def test_connection_refused_is_safe_to_retry():
    sender = AfricasTalkingSender(username="sugu", api_key="k", base_url="http://127.0.0.1:9", timeout_s=1.0)
    with pytest.raises(TransportError) as caught:
        sender.send("x", [A])
    assert caught.value.reached is False and caught.value.retryable


def test_wrong_key_is_an_account_problem(fake_at):
    sender = AfricasTalkingSender(username="sugu", api_key="wrong", base_url=fake_at.url)
    with pytest.raises(AccountProblem):
        sender.send("x", [A])


def test_malformed_number_is_rejected_before_sending(sender, fake_at):
    with pytest.raises(Rejected):
        sender.send("x", ["0700"])
    assert fake_at.requests() == []


# -- the outbox records outcomes ------------------------------------------------------------------


def queue(db, phone=A, text="Bonjour"):
    with db.unit_of_work() as session:
        return outbox.queue_sms(session, phone=phone, text=text, language="fr", kind="reply", now=NOW).id


def row(db, message_id) -> models.SmsMessage:
    with db.unit_of_work() as session:
        return session.get(models.SmsMessage, message_id)




@pytest.mark.db
@pytest.mark.parametrize(
    "setup, status, error_kind",
    [
        pytest.param({}, "sent", "", id="accepted"),
        pytest.param({"fail_next": [429]}, "queued", "throttled", id="throttled-requeued"),
        pytest.param({"fail_next": [500]}, "queued", "transport", id="server-error-requeued"),
        pytest.param({"fail_next": [401]}, "failed", "account", id="bad-key-failed"),
        pytest.param({"statuses": {A: 403}}, "failed", "rejected", id="invalid-number-failed"),
        pytest.param({"statuses": {A: 405}}, "failed", "account", id="no-balance-failed"),
        pytest.param({"statuses": {A: 500}}, "queued", "failed", id="recipient-failure-requeued"),
        pytest.param({"hang_next": 1, "hang_s": 3}, "unconfirmed", "ambiguous", id="timeout-unconfirmed"),
    ],
)
def test_outbox_records_each_outcome(db, sender, fake_at, setup, status, error_kind):
    fake_at.configure(**setup)
    message_id = queue(db)
    outbox.send_messages(db, sender, [message_id], lambda: NOW)
    sent = row(db, message_id)
    assert (sent.status, sent.error_kind, sent.attempts) == (status, error_kind, 1)
    if status == "sent":
        assert sent.provider_message_id.startswith("ATXid_") and sent.cost == "XOF 10.0000" and sent.sent_at
        assert (sent.encoding, sent.segments, sent.provider) == ("GSM-7", 1, "africastalking")


@pytest.mark.db
def test_a_claimed_message_is_never_sent_twice(db, sender, fake_at):
    message_id = queue(db)
    outbox.send_messages(db, sender, [message_id], lambda: NOW)
    outbox.send_messages(db, sender, [message_id], lambda: NOW)
    assert len(fake_at.sent_messages()) == 1


@pytest.mark.db
def test_blacklisted_recipient_opts_the_producer_out(db, sender, fake_at):
    fake_at.configure(statuses={A: 406})
    outbox.send_messages(db, sender, [queue(db)], lambda: NOW)
    with db.unit_of_work() as session:
        producer = session.exec(select(models.Producer).where(models.Producer.phone == A)).one()
    assert producer.opted_out


def due(db, clock) -> list[int]:
    """Which queued messages a worker would take now (and takes them)."""
    with db.unit_of_work() as session:
        return [r.id for r in broadcast.claim(session, now=clock, limit=10, kinds=["reply"])]


@pytest.mark.db
def test_retry_waits_for_backoff_and_gives_up_after_max_attempts(db, sender, fake_at):
    fake_at.configure(fail_next=[500] * 10)
    message_id = queue(db)
    clock = NOW
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        with db.unit_of_work() as session:
            rows = broadcast.claim(session, now=clock, limit=10, kinds=["reply"])
        assert [r.id for r in rows] == [message_id]
        outbox.send_claimed(db, sender, rows, lambda: clock)
        assert due(db, clock) == []  # not before its backoff
        clock += outbox.backoff(attempt) + dt.timedelta(seconds=1)
    assert row(db, message_id).status == "failed"
    assert due(db, clock) == []


@pytest.mark.db
def test_stuck_sending_without_a_lease_becomes_unconfirmed(db):
    """A row left `sending` by a version without leases (no owner): the old five minutes."""
    message_id = queue(db)
    with db.unit_of_work() as session:
        msg = session.get(models.SmsMessage, message_id)
        msg.status = "sending"
        session.add(msg)
    with db.unit_of_work() as session:
        assert outbox.expire_leases(session, NOW + dt.timedelta(minutes=1)) == (0, 0)
        assert outbox.expire_leases(session, NOW + dt.timedelta(minutes=10)) == (0, 1)
    assert row(db, message_id).status == "unconfirmed"


@pytest.mark.db
@pytest.mark.parametrize(
    "text, language, encoding, segments",
    [
        pytest.param("Sɔngɔ kunnafoni: Tamati Sikasso 14 000F", "bm", "GSM-7", 1, id="bambara-folded"),
        pytest.param("Prix « forte hausse » à Sévaré…", "fr", "GSM-7", 1, id="french-typography-folded"),
        pytest.param("x" * 161, "fr", "GSM-7", 2, id="two-segments"),
        pytest.param("Prix 😀", "fr", "UCS-2", 1, id="emoji-ucs2"),
    ],
)
def test_queued_rows_record_encoding(db, text, language, encoding, segments):
    with db.unit_of_work() as session:
        msg = outbox.queue_sms(session, phone=A, text=text, language=language, kind="reply", now=NOW)
    assert (msg.encoding, msg.segments) == (encoding, segments)


@pytest.mark.db
def test_throttling_never_uses_up_the_attempts(db, sender, fake_at):
    """A busy aggregator (429) asks us to wait: the message is not written off, however long."""
    fake_at.configure(fail_next=[429] * (outbox.MAX_ATTEMPTS + 2))
    message_id = queue(db)
    clock = NOW
    for _ in range(outbox.MAX_ATTEMPTS + 3):
        with db.unit_of_work() as session:
            rows = broadcast.claim(session, now=clock, limit=10, kinds=["reply"])
        outbox.send_claimed(db, sender, rows, lambda: clock)
        clock += dt.timedelta(hours=2)
    assert row(db, message_id).status == "sent"
