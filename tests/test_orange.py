"""Orange's SMS API: the adapter against the fake Orange (request shape, token cache and refresh,
failures sorted into our kinds, a batch stopped part-way), the outbox recording each outcome, the
callbacks (inbound SMS answered through Orange, delivery receipts), provider selection and what
the console shows; nothing secret in the logs. Database tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import copy
import logging
import threading
import unittest.mock

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from sqlmodel import func, select

from gateway.data import auth
from gateway.data import models
from gateway.outbound import outbox
from gateway.aggregators.africastalking import AfricasTalkingSender
from gateway.aggregators.fake_orange import delivery_notification, inbound_notification
from gateway.aggregators.orange import OrangeSender, message_id, normalize_sender, outbound_body, outbound_path
from gateway.app import create_app
from gateway.outbound.senders import build_sender
from gateway.aggregators.sending import ACCEPTED, ACCOUNT, FAILED, REJECTED
from gateway.aggregators.sending import AccountProblem, SendError, Throttled, TransportError
from gateway.core.settings import Settings
from tests.conftest import NOW

A, B, C = "+22370000001", "+22366000002", "+22370000003"
FARMER = "+22370111222"
SECRET = "orange-secret"


def make_sender(fake, **overrides) -> OrangeSender:
    options = {
        "client_id": "orange-id",
        "client_secret": SECRET,
        "sender_address": "tel:+2230000",
        "sender_name": "SUGU",
        "base_url": fake.url,
        "timeout_s": 2.0,  # a normal request under a loaded CI machine stays well within it
        **overrides,
    }
    return OrangeSender(**options)


@pytest.fixture
def sender(fake_orange):
    s = make_sender(fake_orange)
    yield s
    s.close()


# -- the request -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [("tel:+2230000", "tel:+2230000"), ("+2230000", "tel:+2230000"), ("2230000", "tel:+2230000")],
)
def test_sender_address_is_written_as_orange_does(raw, expected):
    assert normalize_sender(raw) == expected
    assert outbound_path(expected) == "/smsmessaging/v1/outbound/tel%3A%2B2230000/requests"


def test_sender_address_must_be_a_number():
    with pytest.raises(ValueError):
        normalize_sender("SUGU")


@pytest.mark.parametrize("name", ["SUGU", None])
def test_outbound_body(name):
    body = outbound_body("Bonjour", A, "tel:+2230000", name)["outboundSMSMessageRequest"]
    assert body["address"] == f"tel:{A}" and body["senderAddress"] == "tel:+2230000"
    assert body["outboundSMSTextMessage"] == {"message": "Bonjour"}
    assert body.get("senderName") == name


def test_one_request_per_recipient_with_our_fields(sender, fake_orange):
    results = sender.send("Prix: Tomate 350F", [A, B])
    assert [(r.phone, r.outcome) for r in results] == [(A, ACCEPTED), (B, ACCEPTED)]
    requests = fake_orange.requests()
    assert [(r["sender"], r["senderName"], r["number"], r["message"]) for r in requests] == [
        ("tel:+2230000", "SUGU", A, "Prix: Tomate 350F"),
        ("tel:+2230000", "SUGU", B, "Prix: Tomate 350F"),
    ]
    # The message id is the last segment of the resourceURL Orange answers with.
    assert [r.message_id for r in results] == [r["messageId"] for r in requests]
    assert fake_orange.tokens_issued() == 1


@pytest.mark.parametrize(
    "body, headers, expected",
    [
        pytest.param({"outboundSMSMessageRequest": {"resourceURL": "https://o/requests/abc"}}, {}, "abc", id="resourceURL"),
        pytest.param(
            {"outboundSMSMessageRequest": {"resourceReference": {"resourceURL": "https://o/requests/def/"}}},
            {},
            "def",
            id="nested-resourceReference",
        ),
        pytest.param({"resourceReference": {"resourceURL": "https://o/requests/ghi"}}, {}, "ghi", id="resourceReference"),
        pytest.param({"resourceReference": "junk"}, {"Location": "https://o/requests/jkl"}, "jkl", id="location-header"),
        pytest.param([], {}, None, id="nothing-our-own-id"),
    ],
)
def test_message_id_from_the_201_answer(body, headers, expected):
    identifier = message_id(httpx.Response(201, json=body, headers=headers))
    assert identifier == expected if expected else identifier.startswith("orange-")


def test_malformed_number_is_rejected_without_a_request(sender, fake_orange):
    (result,) = sender.send("x", ["0700"])
    assert (result.outcome, result.provider_status) == (REJECTED, "InvalidNumber")
    assert fake_orange.requests() == []


# -- the fake itself -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, status, detail",
    [
        pytest.param({"fail_next": [429], "errors": {A: "SVC0004"}}, 200, None, id="valid"),
        pytest.param({"nope": 1}, 400, "unknown configuration keys", id="unknown-key"),
        pytest.param({"errors": {A: "SVC9999"}}, 400, "unknown code", id="unknown-error-code"),
        pytest.param({"fail_next": [200]}, 400, "not an HTTP error status", id="not-an-error"),
        pytest.param({"token_ttl_s": 0}, 400, "outside", id="token-life-too-short"),
        pytest.param([1], 400, "JSON object", id="not-an-object"),
    ],
)
def test_fake_is_configured_over_http(fake_orange, body, status, detail):
    before = fake_orange.config()
    response = httpx.post(f"{fake_orange.url}/_fake/config", json=body)
    assert response.status_code == status
    if detail:
        assert detail in response.json()["detail"] and fake_orange.config() == before  # nothing half-applied
    assert "orange-secret" not in httpx.get(f"{fake_orange.url}/_fake/config").text


def test_fake_shows_what_was_sent_and_expires_tokens_on_request(sender, fake_orange):
    sender.send("Prix: Tomate 350F", [A])
    assert "Prix: Tomate 350F" in httpx.get(f"{fake_orange.url}/_fake/").text
    assert [m["number"] for m in httpx.get(f"{fake_orange.url}/_fake/messages").json()] == [A]
    assert httpx.post(f"{fake_orange.url}/_fake/expire-tokens").status_code == 200
    assert sender.send("again", [A])[0].outcome == ACCEPTED and fake_orange.tokens_issued() == 2
    assert httpx.delete(f"{fake_orange.url}/_fake/requests").status_code == 200
    assert fake_orange.requests() == [] and fake_orange.sent_messages() == []


# -- the token ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "ttl, later, tokens",
    [
        pytest.param(3600, 3539, 1, id="3600s-still-valid-a-minute-before"),
        pytest.param(3600, 3541, 2, id="3600s-renewed-in-the-last-minute"),
        pytest.param(300, 269, 1, id="300s-still-valid"),
        pytest.param(300, 271, 2, id="300s-renewed-in-the-last-tenth"),
    ],
)
def test_token_is_cached_and_renewed_before_it_expires(fake_orange, ttl, later, tokens):
    fake_orange.configure(token_ttl_s=ttl)
    clock = Clock()
    sender = make_sender(fake_orange, clock=clock)
    sender.send("a", [A])
    sender.send("b", [A])
    assert fake_orange.tokens_issued() == 1
    clock.now += later
    assert sender.send("c", [A])[0].outcome == ACCEPTED
    assert fake_orange.tokens_issued() == tokens
    sender.close()


def send_together(sender, threads: int = 8) -> list:
    barrier, results = threading.Barrier(threads), []

    def run(i: int) -> None:
        barrier.wait()
        results.extend(sender.send(f"m{i}", [A]))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(20)
    return results


def test_threads_share_one_token_refresh(sender, fake_orange):
    fake_orange.configure(token_latency_s=0.3)  # a slow token endpoint: every thread waits for it
    results = send_together(sender)
    assert [r.outcome for r in results] == [ACCEPTED] * 8
    assert fake_orange.tokens_issued() == 1


def test_threads_refused_at_once_renew_the_token_once(sender, fake_orange):
    sender.send("first", [A])
    fake_orange.expire_tokens()  # Orange's clock disagrees with ours, or the token was revoked
    fake_orange.configure(token_latency_s=0.3)
    results = send_together(sender)
    assert [r.outcome for r in results] == [ACCEPTED] * 8
    assert fake_orange.tokens_issued() == 2


def test_refused_token_is_renewed_and_the_request_retried_once(sender, fake_orange):
    sender.send("first", [A])
    fake_orange.expire_tokens()
    (result,) = sender.send("second", [A])
    assert result.outcome == ACCEPTED
    assert [r["http_status"] for r in fake_orange.requests()] == [201, 401, 201]
    assert fake_orange.tokens_issued() == 2


def test_refused_twice_is_an_account_problem(sender, fake_orange):
    fake_orange.configure(fail_next=[401, 401, 401])
    with pytest.raises(AccountProblem):
        sender.send("x", [A])
    assert len(fake_orange.requests()) == 2  # one retry, no more
    assert fake_orange.tokens_issued() == 2


@pytest.mark.parametrize(
    "status, error, kind",
    [
        pytest.param(401, AccountProblem, "account", id="401-invalid-credentials"),
        pytest.param(400, AccountProblem, "account", id="400"),
        pytest.param(403, AccountProblem, "account", id="403"),
        pytest.param(429, Throttled, "throttled", id="429-throttled"),
        pytest.param(500, TransportError, "transport", id="500"),
        pytest.param(503, TransportError, "transport", id="503"),
    ],
)
def test_token_endpoint_failures_sorted_into_kinds(sender, fake_orange, status, error, kind):
    fake_orange.configure(token_fail_next=[status])
    with pytest.raises(error) as caught:
        sender.send("x", [A, B])
    assert caught.value.kind == kind
    if error is TransportError:
        assert caught.value.reached is False  # no SMS left: safe to retry
    assert fake_orange.requests() == []
    assert sender.send("x", [A])[0].outcome == ACCEPTED


# -- failures while sending ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "setup, error, kind",
    [
        pytest.param({"fail_next": [403]}, AccountProblem, "account", id="403-policy"),
        pytest.param({"errors": {A: "POL0001"}}, AccountProblem, "account", id="policy-for-this-number"),
        pytest.param({"fail_next": [400]}, None, "rejected", id="400-service-error-this-number"),
        pytest.param({"errors": {A: "SVC0004"}}, None, "rejected", id="no-valid-address"),
        pytest.param({"fail_next": [404]}, SendError, "rejected", id="404-our-bug"),
    ],
)
def test_orange_error_codes(sender, fake_orange, setup, error, kind):
    fake_orange.configure(**setup)
    if error is None:
        (result,) = sender.send("x", [A])
        assert result.outcome == REJECTED and result.provider_status.startswith("SVC")
    else:
        with pytest.raises(error) as caught:
            sender.send("x", [A])
        assert caught.value.kind == kind
        assert A not in str(caught.value)  # Orange's bodies quote the number: never kept


@pytest.mark.parametrize(
    "setup, outcomes",
    [
        pytest.param(
            {"skip_next": 1, "fail_next": [429]},
            [(A, ACCEPTED), (B, FAILED, "NotSent:throttled"), (C, FAILED, "NotSent:throttled")],
            id="throttled-mid-batch",
        ),
        pytest.param(
            {"skip_next": 1, "fail_next": [502]},
            [(A, ACCEPTED), (B, FAILED, "NotSent:transport"), (C, FAILED, "NotSent:transport")],
            id="server-error-mid-batch",
        ),
        pytest.param(
            {"errors": {B: "POL0001"}},
            [(A, ACCEPTED), (B, ACCOUNT, "NotSent:account"), (C, ACCOUNT, "NotSent:account")],
            id="account-problem-mid-batch",
        ),
        # B may have arrived: left out, so the outbox records it unconfirmed and never resends it.
        pytest.param(
            {"skip_next": 1, "hang_next": 1, "hang_s": 5},
            [(A, ACCEPTED), (C, FAILED, "NotSent:ambiguous")],
            id="timeout-mid-batch",
        ),
        pytest.param(
            {"hang_next": 1, "hang_s": 5},
            [(B, FAILED, "NotSent:ambiguous"), (C, FAILED, "NotSent:ambiguous")],
            id="timeout-on-the-first-of-several",
        ),
    ],
)
def test_a_batch_stopped_part_way_keeps_every_answer(sender, fake_orange, setup, outcomes):
    fake_orange.configure(**setup)
    results = sender.send("x", [A, B, C])
    assert [(r.phone, r.outcome) for r in results] == [o[:2] for o in outcomes]
    assert [r.provider_status for r in results if r.outcome != ACCEPTED] == [o[2] for o in outcomes if len(o) > 2]
    taken = {number for number, _, _ in fake_orange.sent_messages()}
    assert {r.phone for r in results if r.outcome == ACCEPTED} <= taken


# -- the outbox records outcomes -------------------------------------------------------------------------


def queue(db, phone=A, text="Bonjour"):
    with db.unit_of_work() as session:
        return outbox.queue_sms(session, phone=phone, text=text, language="fr", kind="reply", now=NOW).id


def rows(db, ids) -> list[models.SmsMessage]:
    with db.unit_of_work() as session:
        return [session.get(models.SmsMessage, i) for i in ids]


@pytest.mark.db
@pytest.mark.parametrize(
    "setup, expected",
    [
        pytest.param({}, [("sent", ""), ("sent", ""), ("sent", "")], id="accepted"),
        pytest.param({"fail_next": [429]}, [("queued", "throttled")] * 3, id="throttled-requeued"),
        pytest.param({"client_secret": "other"}, [("failed", "account")] * 3, id="bad-credentials-failed"),
        pytest.param(
            {"errors": {B: "SVC0004"}}, [("sent", ""), ("failed", "rejected"), ("sent", "")], id="invalid-number"
        ),
        pytest.param(
            {"skip_next": 1, "fail_next": [429]},
            [("sent", ""), ("queued", "failed"), ("queued", "failed")],
            id="throttled-mid-batch",
        ),
        pytest.param(
            {"skip_next": 1, "hang_next": 1, "hang_s": 5},
            [("sent", ""), ("unconfirmed", "ambiguous"), ("queued", "failed")],
            id="timeout-mid-batch",
        ),
    ],
)
def test_outbox_records_each_outcome(db, sender, fake_orange, setup, expected):
    fake_orange.configure(**setup)
    ids = [queue(db, phone) for phone in (A, B, C)]
    outbox.send_messages(db, sender, ids, lambda: NOW)
    sent = rows(db, ids)
    assert [(r.status, r.error_kind) for r in sent] == expected
    assert {r.provider for r in sent} == {"orange"}
    by_number = {number: mid for number, _, mid in fake_orange.sent_messages()}
    assert all(r.provider_message_id == by_number[r.phone] for r in sent if r.status == "sent")


# -- callbacks -------------------------------------------------------------------------------------------


ORANGE = {
    "sms_provider": "orange",
    "orange_client_id": "orange-id",
    "orange_client_secret": SecretStr(SECRET),
    "orange_sender_address": "tel:+2230000",
    "orange_sender_name": "SUGU",
    "orange_timeout_s": 2.0,
}


@pytest.fixture
def orange_settings(settings, fake_orange) -> Settings:
    return settings.model_copy(update={**ORANGE, "orange_base_url": fake_orange.url})


@pytest.fixture
def orange_client(orange_settings):
    with TestClient(create_app(orange_settings, clock=lambda: NOW)) as client:
        yield client


def sms(client, text, *, phone=FARMER, message_id=None, **kw):
    return client.post("/webhooks/orange/sms", json=inbound_notification(phone, text, message_id=message_id, **kw))


def count(db, model, *where) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def messages(db) -> list[models.SmsMessage]:
    with db.unit_of_work() as session:
        return session.exec(select(models.SmsMessage).order_by(models.SmsMessage.id)).all()


@pytest.mark.db
@pytest.mark.parametrize(
    "text, fragment",
    [
        pytest.param("PRIX TOMATE SIKASSO", "Tomate Sikasso 28/11:", id="price"),
        pytest.param("songo tamati sikaso", "Tamati Sikasso 28/11:", id="bm-price"),
        pytest.param("bonjour", "Sugu: PRIX TOMATE SIKASSO", id="help"),
    ],
)
def test_inbound_sms_is_answered_through_orange(orange_client, db, fake_orange, text, fragment):
    response = sms(orange_client, text, message_id="orange-in-1", when="2026-11-28T09:30:00Z")
    assert response.status_code == 200
    ((number, body, message_id),) = fake_orange.sent_messages()
    assert number == FARMER and fragment in body
    (row,) = messages(db)
    assert (row.status, row.kind, row.provider, row.provider_message_id) == ("sent", "reply", "orange", message_id)
    with db.unit_of_work() as session:
        inbound = session.exec(select(models.SmsInbound)).one()
    assert (inbound.provider, inbound.provider_id, inbound.text) == ("orange", "orange-in-1", text)
    assert row.inbound_id == inbound.id and inbound.received_at.hour == 9


@pytest.mark.db
@pytest.mark.parametrize("message_id", ["orange-retry", None], ids=["with-id", "without-id"])
def test_the_same_notification_is_handled_once(orange_client, db, fake_orange, message_id):
    for _ in range(3):  # Orange delivers it again when it got no answer
        response = sms(orange_client, "ALERTE TOMATE SIKASSO", message_id=message_id, when="2026-11-28T09:30:00Z")
        assert response.status_code == 200
    assert len(fake_orange.sent_messages()) == 1
    assert count(db, models.SmsInbound) == 1 and count(db, models.Subscription) == 1


def inbound(**changes):
    sms = {"senderAddress": f"tel:{FARMER}", "message": "aide", "dateTime": "2026-11-28T09:30:00Z", **changes}
    return {"inboundSMSMessageNotification": {"inboundSMSMessage": sms}}


def sent_reply(client, fake_orange) -> str:
    sms(client, "aide")
    return fake_orange.sent_messages()[-1][2]


def receipt(client, status, callback_data="", phone=FARMER):
    return client.post("/webhooks/orange/sms/delivery", json=delivery_notification(phone, status, callback_data))


@pytest.mark.db
@pytest.mark.parametrize(
    "status, expected",
    [
        pytest.param("DeliveredToTerminal", "delivered", id="delivered"),
        pytest.param("DeliveryImpossible", "undeliverable", id="impossible"),
        pytest.param("DeliveredToNetwork", "sent", id="to-network"),
        pytest.param("MessageWaiting", "sent", id="waiting"),
        pytest.param("DeliveryUncertain", "sent", id="uncertain"),
    ],
)
@pytest.mark.parametrize("by", ["callback-data", "number"])
def test_delivery_receipt_updates_the_message(orange_client, db, fake_orange, status, expected, by):
    message_id = sent_reply(orange_client, fake_orange)
    callback_data = message_id if by == "callback-data" else ""
    for _ in range(2):  # repeated: changes nothing more
        assert receipt(orange_client, status, callback_data).status_code == 200
    (row,) = messages(db)
    assert (row.status, row.provider_status, row.provider_message_id) == (expected, status, message_id)
    assert (row.delivered_at is not None) == (expected == "delivered")


@pytest.mark.db
def test_receipts_without_our_id_settle_the_oldest_message_first(orange_client, db, fake_orange):
    first, second = sent_reply(orange_client, fake_orange), sent_reply(orange_client, fake_orange)
    assert receipt(orange_client, "DeliveredToTerminal", "a-constant-of-the-subscription").status_code == 200
    assert [(r.provider_message_id, r.status) for r in messages(db)] == [(first, "delivered"), (second, "sent")]
    assert receipt(orange_client, "DeliveryImpossible", "a-constant-of-the-subscription").status_code == 200
    assert [r.status for r in messages(db)] == ["delivered", "undeliverable"]
    # Nothing left to settle for this number: acknowledged, nothing changed.
    assert receipt(orange_client, "DeliveredToTerminal").status_code == 200
    assert receipt(orange_client, "DeliveredToTerminal", phone="+22370999888").status_code == 200
    assert [r.status for r in messages(db)] == ["delivered", "undeliverable"]


@pytest.mark.db
def test_final_state_is_not_overwritten_by_a_late_receipt(orange_client, db, fake_orange):
    message_id = sent_reply(orange_client, fake_orange)
    for status in ("DeliveredToTerminal", "DeliveredToNetwork"):
        receipt(orange_client, status, message_id)
    assert messages(db)[0].status == "delivered"


@pytest.mark.db
def test_receipt_reconciles_an_unconfirmed_message(orange_client, db, fake_orange):
    fake_orange.configure(hang_next=1, hang_s=5)  # the reply's request times out after arriving
    sms(orange_client, "aide")
    (row,) = messages(db)
    assert row.status == "unconfirmed" and row.provider_message_id is None
    assert receipt(orange_client, "DeliveredToTerminal").status_code == 200
    (row,) = messages(db)
    assert (row.status, row.error_kind) == ("delivered", "") and row.provider_message_id


def receipt_body(**changes):
    info = {"address": f"tel:{FARMER}", "deliveryStatus": "DeliveredToTerminal", **changes}
    return {"deliveryInfoNotification": {"callbackData": "", "deliveryInfo": info}}


SMS, RECEIPT = "/webhooks/orange/sms", "/webhooks/orange/sms/delivery"


def snapshot(db) -> tuple:
    return (
        count(db, models.SmsInbound),
        count(db, models.Producer),
        [(m.status, m.provider_status) for m in messages(db)],
    )


@pytest.mark.db
@pytest.mark.parametrize(
    "path, body, reason",
    [
        pytest.param(SMS, b"not json", "unreadable JSON", id="sms-not-json"),
        pytest.param(SMS, b"[1, 2]", "missing object: inboundSMSMessageNotification", id="sms-a-list"),
        pytest.param(SMS, {"inboundSMSMessageNotification": {}}, "inboundSMSMessage", id="sms-no-message-object"),
        pytest.param(SMS, inbound(senderAddress=None), "missing field: senderAddress", id="sms-no-sender"),
        pytest.param(SMS, inbound(senderAddress="tel:bonjour"), "senderAddress: not a phone number", id="sms-sender-junk"),
        pytest.param(SMS, inbound(senderAddress=["x"]), "field not text: senderAddress", id="sms-sender-not-text"),
        pytest.param(SMS, inbound(message=None), "missing field: message", id="sms-no-text"),
        pytest.param(SMS, inbound(message=12), "missing field: message", id="sms-text-not-text"),
        pytest.param(SMS, inbound(message="x" * 1601), "field too long: message", id="sms-text-too-long"),
        pytest.param(SMS, inbound(dateTime="hier"), "date: unreadable", id="sms-bad-date"),
        pytest.param(RECEIPT, b"{", "unreadable JSON", id="receipt-not-json"),
        pytest.param(RECEIPT, {"deliveryInfoNotification": {}}, "deliveryInfo", id="receipt-no-info"),
        pytest.param(RECEIPT, receipt_body(deliveryStatus="Delivered!"), "deliveryStatus: unknown", id="receipt-unknown-status"),
        pytest.param(RECEIPT, receipt_body(deliveryStatus=None), "missing field: deliveryStatus", id="receipt-no-status"),
        pytest.param(RECEIPT, receipt_body(address=None), "missing field: address", id="receipt-no-address"),
        pytest.param(RECEIPT, receipt_body(address="tel:abc"), "address: not a phone number", id="receipt-bad-address"),
    ],
)
def test_bad_callback_is_400_and_changes_nothing(orange_client, db, fake_orange, path, body, reason):
    sent_reply(orange_client, fake_orange)
    before, sent = snapshot(db), len(fake_orange.requests())
    if isinstance(body, bytes):  # as it came, however broken
        response = orange_client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = orange_client.post(path, json=body)
    assert response.status_code == 400 and reason in response.text
    assert snapshot(db) == before and len(fake_orange.requests()) == sent


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([f"tel:{FARMER}", FARMER, "DeliveredToTerminal", "2026-11-28T09:30:00Z", "", "😀" * 3]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
FIELDS = {
    SMS: ("inboundSMSMessageNotification", "inboundSMSMessage", inbound()),
    RECEIPT: ("deliveryInfoNotification", "deliveryInfo", receipt_body()),
}


@st.composite
def callbacks(draw):
    """A body Orange might post, broken anywhere: any JSON, or a good one with a field changed."""
    path = draw(st.sampled_from(sorted(FIELDS)))
    outer, inner, good = FIELDS[path]
    if draw(st.booleans()):
        return path, draw(JSON)
    body = copy.deepcopy(good)
    fields = body[outer][inner]
    name = draw(st.sampled_from(sorted(fields)))
    if draw(st.booleans()):
        del fields[name]
    else:
        fields[name] = draw(JSON)
    return path, body


@pytest.mark.db
@hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(callback=callbacks())
def test_any_callback_is_answered_without_5xx(orange_client, db, callback):
    path, body = callback
    before = snapshot(db)
    response = orange_client.post(path, json=body)
    assert response.status_code in (200, 400), (path, body, response.status_code, response.text)
    if response.status_code == 400:
        assert snapshot(db) == before, "a refused callback changed something"


def test_database_down_answers_503_so_orange_retries(backend, fake_orange):
    url = (
        "sqlite:////nonexistent-dir/sugu.db"
        if backend.name == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1"
    )
    orange = {"sms_provider": "orange", "orange_base_url": fake_orange.url}
    settings = Settings(database_url=url, worker_in_process=False, secret_key="x", **orange)
    with unittest.mock.patch("gateway.core.startup.Path.mkdir"), TestClient(create_app(settings)) as client:
        assert sms(client, "aide").status_code == 503
        assert receipt(client, "DeliveredToTerminal", "x").status_code == 503
    assert fake_orange.requests() == []


@pytest.mark.db
@pytest.mark.parametrize(
    "query, status",
    [
        pytest.param("", 403, id="no-token"),
        pytest.param("?token=wrong", 403, id="wrong-token"),
        pytest.param("?token=s3cret-s3cret", 200, id="right-token"),
    ],
)
def test_orange_callbacks_are_guarded_like_every_callback(orange_settings, db, fake_orange, query, status):
    settings = orange_settings.model_copy(update={"webhook_secret": SecretStr("s3cret-s3cret")})
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        assert client.post(SMS + query, json=inbound_notification(FARMER, "aide")).status_code == status
        assert client.post(RECEIPT + query, json=delivery_notification(FARMER)).status_code == status
    assert count(db, models.SmsInbound) == (1 if status == 200 else 0)


# -- choosing the aggregator ---------------------------------------------------------------------------

LIVE_ORANGE = {
    "sms_provider": "orange",
    "orange_client_id": "i",
    "orange_client_secret": "s",
    "orange_sender_address": "+2230000",
}
LOCAL = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "env, name, base",
    [
        pytest.param({}, "africastalking", f"{LOCAL}/fake-at", id="default-without-key-is-the-at-fake"),
        pytest.param({"at_api_key": "k"}, "africastalking", "https://api.africastalking.com", id="africastalking"),
        pytest.param({"sms_provider": "fake", "at_api_key": "k"}, "africastalking", f"{LOCAL}/fake-at", id="fake"),
        pytest.param({"sms_provider": "orange"}, "orange", f"{LOCAL}/fake-orange", id="orange-without-credentials"),
        pytest.param(LIVE_ORANGE, "orange", "https://api.orange.com", id="orange"),
    ],
)
def test_provider_is_chosen_by_setting(env, name, base):
    settings = Settings(database_url="sqlite://", at_username="sugu", **env)
    sender = build_sender(settings)
    try:
        assert sender.name == name
        if isinstance(sender, OrangeSender):
            assert str(sender._http.base_url).rstrip("/") == base
        else:
            assert isinstance(sender, AfricasTalkingSender) and sender._client()._baseUrl.startswith(base)
    finally:
        sender.close()


def test_orange_credentials_need_a_sender_address():
    with pytest.raises(ValidationError, match="GATEWAY_ORANGE_SENDER_ADDRESS"):
        Settings(sms_provider="orange", orange_client_id="i", orange_client_secret="s")


@pytest.mark.db
@pytest.mark.parametrize(
    "env, shown, mounted",
    [
        pytest.param({}, "africastalking</b> (the built-in fake", "/fake-at/_fake/", id="africastalking-fake"),
        pytest.param({"sms_provider": "orange"}, "orange</b> (the built-in fake", "/fake-orange/_fake/", id="orange-fake"),
        pytest.param(LIVE_ORANGE, "orange</b>.", None, id="orange"),
    ],
)
def test_console_shows_the_provider_and_the_fake_is_mounted(settings, db, env, shown, mounted):
    login = {"email": "admin@sugu.test", "password": "correct horse battery"}
    with db.unit_of_work() as session:
        auth.create_staff(session, role="admin", **login)
    chosen = Settings(**env).model_dump(include=set(env))
    app = create_app(settings.model_copy(update=chosen), clock=lambda: NOW)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:  # the fakes answer loopback only
        page = client.get("/admin/login").text
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/admin/login", data={**login, "csrf_token": csrf})
        assert f"Sent through <b>{shown}" in client.get("/admin/").text
        for path in ("/fake-at/_fake/", "/fake-orange/_fake/"):
            assert client.get(path).status_code == (200 if path == mounted else 404)


# -- nothing secret in the logs ----------------------------------------------------------------------------


def test_no_secret_token_or_phone_in_logs(fake_orange, caplog):
    caplog.set_level(logging.DEBUG)
    sender = make_sender(fake_orange)
    sender.send("a", [A])
    fake_orange.expire_tokens()
    sender.send("b", [A])  # refused, renewed, retried
    fake_orange.configure(skip_next=1, fail_next=[429], errors={B: "SVC0004"})
    sender.send("c", [B, A, C])
    with pytest.raises(AccountProblem):
        make_sender(fake_orange, client_secret="wrong-secret-xyz").send("d", [A])
    sender.close()
    # Everything logged, the HTTP client's own lines included.
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "orange batch stopped" in text
    basic = base64.b64encode(f"orange-id:{SECRET}".encode()).decode()
    for secret in (SECRET, "wrong-secret-xyz", basic, *fake_orange.tokens()):
        assert secret not in text
    assert repr(sender).count(SECRET) == 0
    for phone in (A, B, C):
        assert phone not in text


def test_log_filter_redacts_credentials_quoted_by_a_library():
    from gateway.core.logs import RedactSecrets

    for line, secret in [
        ("Authorization: Bearer abc.DEF-123", "abc.DEF-123"),
        ("Authorization: Basic b3JhbmdlLWlkOnNlY3JldA==", "b3JhbmdlLWlkOnNlY3JldA=="),
        ('{"token_type": "Bearer", "access_token": "tok-456", "expires_in": "3600"}', "tok-456"),
        ("client_secret=s3cr3t&grant_type=client_credentials", "s3cr3t"),
    ]:
        record = logging.LogRecord("httpx", logging.DEBUG, "", 0, line, None, None)
        RedactSecrets().filter(record)
        assert secret not in record.getMessage() and "***" in record.getMessage()
