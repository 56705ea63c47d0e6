"""SMS callbacks end to end: inbound keywords answered through the fake aggregator, delivery
reports, opt-outs, enumerators' price reports, limits and bad input; on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func
from sqlmodel import select

from gateway.data import models
from tests.conftest import NOW, TODAY

pytestmark = pytest.mark.db

FARMER = "+22370111222"
_ids = itertools.count(1)


def sms(client, text, *, phone=FARMER, message_id=None, **extra):
    form = {
        "from": phone,
        "to": "36123",
        "text": text,
        "date": "2026-11-28 09:30:00",
        "id": message_id or f"in-{next(_ids)}",
        "networkCode": "61002",
        **extra,
    }
    return client.post("/webhooks/at/sms", data=form)


def count(db, model, *where) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def producer(db, phone=FARMER):
    with db.unit_of_work() as session:
        return session.exec(select(models.Producer).where(models.Producer.phone == phone)).first()


def messages(db):
    with db.unit_of_work() as session:
        return session.exec(select(models.SmsMessage).order_by(models.SmsMessage.id)).all()


@pytest.mark.parametrize(
    "text, fragment",
    [
        pytest.param("PRIX TOMATE SIKASSO", "Tomate Sikasso 28/11:", id="price"),
        pytest.param("songo tamati sikaso", "Tamati Sikasso 28/11:", id="bm-price-with-typo"),
        pytest.param("oignon", "Oignon F/kg:", id="crop-only"),
        pytest.param("bonjour", "Sugu: PRIX TOMATE SIKASSO", id="help"),
    ],
)
def test_keyword_is_answered_through_the_aggregator(sms_client, db, fake_at, text, fragment):
    response = sms(sms_client, text)
    assert response.status_code == 200
    (sent,) = fake_at.sent_messages()
    number, body, message_id = sent
    assert number == FARMER and fragment in body
    (row,) = messages(db)
    assert (row.status, row.kind, row.provider_message_id, row.text) == ("sent", "reply", message_id, body)
    assert row.segments == 1 and row.encoding == "GSM-7" and row.cost_amount == 10.0
    with db.unit_of_work() as session:
        inbound = session.exec(select(models.SmsInbound)).one()
    assert inbound.text == text and row.inbound_id == inbound.id


def test_same_message_id_is_handled_once(sms_client, db, fake_at):
    for _ in range(3):  # the aggregator retries until it gets a 200
        assert sms(sms_client, "ALERTE TOMATE SIKASSO", message_id="ATXid_retry").status_code == 200
    assert len(fake_at.sent_messages()) == 1
    assert count(db, models.SmsInbound) == 1
    assert count(db, models.Subscription) == 1


def test_subscribe_stop_and_restart_by_sms(sms_client, db, fake_at):
    sms(sms_client, "ALERTE TOMATE SIKASSO")
    sms(sms_client, "alerte oignon mopti")
    assert count(db, models.Subscription) == 2
    sms(sms_client, "STOP")
    assert producer(db).opted_out is True
    sms(sms_client, "START")
    assert producer(db).opted_out is False
    assert "reprises (2 abonnement(s))" in fake_at.sent_messages()[-1][1]
    sms(sms_client, "stop oignon")
    assert count(db, models.Subscription) == 1


def test_language_change_by_sms(sms_client, db, fake_at):
    sms(sms_client, "LANGUE BM")
    assert producer(db).language == "bm"
    sms(sms_client, "prix tomate sikasso")
    assert "Tamati Sikasso" in fake_at.sent_messages()[-1][1]


@pytest.mark.parametrize(
    "date",
    ["2017-05-03T06:04:45Z", "2017-05-03 06:04:45", "2017-05-03 06:04:45.123", "2017-05-03T06:04:45.123Z"],
)
def test_every_date_form_is_accepted(sms_client, db, date):
    assert sms(sms_client, "aide", date=date).status_code == 200
    with db.unit_of_work() as session:
        inbound = session.exec(select(models.SmsInbound)).one()
    assert inbound.received_at.replace(tzinfo=None).isoformat().startswith("2017-05-03T06:04:45")


@pytest.mark.parametrize(
    "form, reason",
    [
        pytest.param({"from": FARMER, "text": "x"}, "missing field: id", id="no-id"),
        pytest.param({"id": "1", "text": "x"}, "missing field: from", id="no-from"),
        pytest.param({"id": "1", "from": FARMER}, "missing field: text", id="no-text"),
        pytest.param({"id": "1", "from": "bonjour", "text": "x"}, "from: not a phone number", id="from-junk"),
        pytest.param({"id": "1", "from": "+2231", "text": "x"}, "from:", id="from-too-short"),
        pytest.param({"id": "1", "from": FARMER, "text": "x", "date": "hier"}, "date: unreadable", id="bad-date"),
        pytest.param({"id": "1", "from": FARMER, "text": "x" * 1601}, "field too long: text", id="text-too-long"),
    ],
)
def test_bad_inbound_is_400_and_stores_nothing(sms_client, db, fake_at, form, reason):
    response = sms_client.post("/webhooks/at/sms", data=form)
    assert response.status_code == 400 and reason in response.text
    assert count(db, models.SmsInbound) == 0 and count(db, models.Producer) == 0
    assert fake_at.requests() == []


def test_replies_are_limited_per_phone_and_day(sms_settings, db, fake_at):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    settings = sms_settings.model_copy(update={"sms_replies_per_day": 3})
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        for _ in range(5):
            assert sms(client, "aide").status_code == 200
        assert sms(client, "aide", phone="+22370999888").status_code == 200
    assert len(fake_at.sent_messages()) == 4  # 3 for the looping number, 1 for the other
    assert count(db, models.SmsInbound) == 6
    assert count(db, models.SmsInbound, models.SmsInbound.note == "rate_limited") == 2


def test_reply_limit_announces_itself_and_never_hides_a_stop(sms_settings, db, fake_at):
    """Finding (issue 15): the 10 replies a day ran out in an ordinary first try; later questions
    got no answer and a STOP among them was applied silently. The day's last answer says it is the
    last, and a STOP, START or language change is still confirmed."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    settings = sms_settings.model_copy(update={"sms_replies_per_day": 3})
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        for text in ("aide", "aide", "aide", "aide", "STOP", "LANGUE BM"):
            assert sms(client, text).status_code == 200
    texts = [text for _, text, _ in fake_at.sent_messages()]
    assert len(texts) == 5, texts  # the fourth "aide" is over the cap
    assert "Dernière réponse du jour" in texts[2] and all("Dernière" not in t for t in texts[:2])
    assert texts[3].startswith("Vous ne recevrez plus d'alertes Sugu")
    assert texts[4].startswith("Kan: bamanankan")
    with db.unit_of_work() as session:
        producer = session.exec(select(models.Producer).where(models.Producer.phone == FARMER)).one()
        assert producer.opted_out and producer.language == "bm"


@pytest.mark.parametrize(
    "text, confirmation",
    [
        pytest.param("STOP", "Vous ne recevrez plus d'alertes Sugu", id="stop"),
        pytest.param("START", "Alertes Sugu reprises", id="start"),
        pytest.param("LANGUE BM", "Kan: bamanankan", id="language"),
        pytest.param("ALERTE TOMATE SIKASSO", "Alertes Tomate à Sikasso activées", id="subscribe"),
    ],
)
def test_reply_limit_never_hides_a_change_of_state(sms_settings, db, fake_at, text, confirmation):
    """Finding (issue 15): a STOP sent after the day's replies ran out was applied silently. Each
    change of state (STOP, START, language, a new alert) is confirmed past the cap; a question is not."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    settings = sms_settings.model_copy(update={"sms_replies_per_day": 2})
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        for sent in ("aide", "aide", "aide", text, "aide"):
            assert sms(client, sent).status_code == 200
    texts = [body for _, body, _ in fake_at.sent_messages()]
    assert len(texts) == 3, texts  # two questions answered, the third and the last not; the change confirmed
    assert texts[2].startswith(confirmation), texts[2]


def test_reply_waits_in_the_outbox_when_the_aggregator_is_down(sms_client, db, fake_at):
    fake_at.configure(fail_next=[503])
    assert sms(sms_client, "aide").status_code == 200  # the farmer's message is safe
    (row,) = messages(db)
    assert (row.status, row.error_kind) == ("queued", "transport")
    assert fake_at.sent_messages() == []


# -- enumerators' price reports --------------------------------------------------------------------


def make_enumerator(db, phone="+22376555444"):
    with db.unit_of_work() as session:
        session.add(models.Producer(phone=phone, language="fr", role="enumerator"))
    return phone


def latest_report(db):
    with db.unit_of_work() as session:
        return session.exec(
            select(models.PriceObservation).where(models.PriceObservation.source.startswith("sms:"))
        ).first()


def test_enumerator_report_is_published_and_shown_in_ussd(sms_client, db, fake_at):
    phone = make_enumerator(db)
    sms(sms_client, "P TOMATE SIKASSO 15000", phone=phone)
    report = latest_report(db)
    assert (report.status, report.price, report.unit, report.kind, report.observed_on) == (
        "published", 15000, "basket", "wholesale", TODAY
    )
    assert "Prix publié" in fake_at.sent_messages()[-1][1]
    from tests.test_ussd_webhook import Caller, known_caller

    known_caller(db)
    assert "15 000 F/panier" in Caller(sms_client).dial("1", "1", "12")


def test_outlier_report_is_held_and_not_shown(sms_client, db, fake_at):
    phone = make_enumerator(db)
    sms(sms_client, "P TOMATE SIKASSO 150000", phone=phone)
    report = latest_report(db)
    assert report.status == "held" and "plus haut" in report.review_reason
    assert "à vérifier" in fake_at.sent_messages()[-1][1]
    from tests.test_ussd_webhook import Caller, known_caller

    known_caller(db)
    assert "150 000" not in Caller(sms_client).dial("1", "1", "12")


def test_unknown_sender_cannot_report(sms_client, db, fake_at):
    sms(sms_client, "P TOMATE SIKASSO 15000")
    assert latest_report(db) is None
    assert "enqueteurs inscrits" in fake_at.sent_messages()[-1][1]


# -- delivery reports and opt-out -----------------------------------------------------------------


def sent_reply(client, fake_at):
    sms(client, "aide")
    return fake_at.sent_messages()[-1][2]


@pytest.mark.parametrize(
    "status, reason, expected",
    [
        pytest.param("Sent", "", "sent", id="sent"),
        pytest.param("Submitted", "", "sent", id="submitted"),
        pytest.param("Buffered", "", "sent", id="buffered"),
        pytest.param("Success", "", "delivered", id="success"),
        pytest.param("Rejected", "InvalidLinkId", "undeliverable", id="rejected"),
        pytest.param("Failed", "InsufficientCredit", "undeliverable", id="failed"),
        pytest.param("Expired", "", "undeliverable", id="expired"),
        pytest.param("AbsentSubscriber", "", "queued", id="absent-retry-later"),
    ],
)
def test_delivery_report_updates_the_message(sms_client, db, fake_at, status, reason, expected):
    message_id = sent_reply(sms_client, fake_at)
    form = {"id": message_id, "status": status, "phoneNumber": FARMER, "networkCode": "61002", "failureReason": reason, "retryCount": "0"}
    for _ in range(2):  # repeated: changes nothing more
        assert sms_client.post("/webhooks/at/sms/delivery", data=form).status_code == 200
    (row,) = messages(db)
    assert (row.status, row.provider_status, row.failure_reason) == (expected, status, reason)
    assert (row.delivered_at is not None) == (expected == "delivered")


def test_final_state_is_not_overwritten_by_a_late_report(sms_client, db, fake_at):
    message_id = sent_reply(sms_client, fake_at)
    for status in ("Success", "Buffered"):
        sms_client.post("/webhooks/at/sms/delivery", data={"id": message_id, "status": status})
    assert messages(db)[0].status == "delivered"


@pytest.mark.parametrize("reason", ["UserInBlacklist", "UserInBlackList"])
def test_blacklist_failure_opts_out(sms_client, db, fake_at, reason):
    message_id = sent_reply(sms_client, fake_at)
    form = {"id": message_id, "status": "Rejected", "phoneNumber": FARMER, "failureReason": reason}
    assert sms_client.post("/webhooks/at/sms/delivery", data=form).status_code == 200
    assert producer(db).opted_out is True


def test_misspelt_failure_reason_is_normalised(sms_client, db, fake_at):
    message_id = sent_reply(sms_client, fake_at)
    form = {"id": message_id, "status": "Failed", "failureReason": "NotNetworkSubcriber"}
    sms_client.post("/webhooks/at/sms/delivery", data=form)
    assert messages(db)[0].failure_reason == "NotNetworkSubscriber"


@pytest.mark.parametrize(
    "form, code",
    [
        pytest.param({"id": "ATXid_unknown", "status": "Success"}, 200, id="unknown-message-ok"),
        pytest.param({"id": "ATXid_x", "status": "Delivered!"}, 400, id="unknown-status"),
        pytest.param({"status": "Success"}, 400, id="no-id"),
        pytest.param({"id": "ATXid_x"}, 400, id="no-status"),
        pytest.param({"id": "ATXid_x", "status": "Success", "retryCount": "two"}, 400, id="bad-retry-count"),
        pytest.param({"id": "ATXid_x", "status": "Success", "phoneNumber": "abc"}, 400, id="bad-phone"),
    ],
)
def test_delivery_report_validation(sms_client, db, form, code):
    assert sms_client.post("/webhooks/at/sms/delivery", data=form).status_code == code
    assert count(db, models.SmsMessage) == 0


def test_bulk_optout_notification(sms_client, db):
    response = sms_client.post("/webhooks/at/sms/optout", data={"senderId": "SUGU", "phoneNumber": FARMER})
    assert response.status_code == 200
    assert producer(db).opted_out is True
    assert sms_client.post("/webhooks/at/sms/optout", data={"senderId": "SUGU"}).status_code == 400


def test_ussd_stop_all_and_sms_start_agree(sms_client, db, fake_at):
    from tests.test_ussd_webhook import Caller, known_caller

    known_caller(db, phone=FARMER)
    Caller(sms_client, phone=FARMER).dial("4", "2", "1", "1")
    Caller(sms_client, phone=FARMER).dial("4", "4", "1")
    assert producer(db).opted_out is True
    sms(sms_client, "START")
    assert producer(db).opted_out is False
    assert "(1 abonnement(s))" in fake_at.sent_messages()[-1][1]


def test_database_down_answers_503_so_the_aggregator_retries(backend, fake_at):
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.core.settings import Settings

    url = (
        "sqlite:////nonexistent-dir/sugu.db"
        if backend.name == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1"
    )
    settings = Settings(database_url=url, at_api_key="test-key", at_base_url=fake_at.url, worker_in_process=False,
                        secret_key="test-secret")
    import unittest.mock

    with unittest.mock.patch("gateway.core.startup.Path.mkdir"), TestClient(create_app(settings)) as client:
        assert sms(client, "aide").status_code == 503
        assert client.post("/webhooks/at/sms/delivery", data={"id": "x", "status": "Success"}).status_code == 503
    assert fake_at.requests() == []


def test_delivery_report_reconciles_an_unconfirmed_message(sms_client, db, fake_at):
    fake_at.configure(hang_next=1, hang_s=3)  # the reply's request times out after arriving
    sms(sms_client, "aide")
    (row,) = messages(db)
    assert row.status == "unconfirmed" and row.provider_message_id is None
    (request,) = fake_at.requests()
    message_id = request["recipients"][0]["messageId"]
    form = {"id": message_id, "status": "Success", "phoneNumber": FARMER}
    assert sms_client.post("/webhooks/at/sms/delivery", data=form).status_code == 200
    (row,) = messages(db)
    assert (row.status, row.provider_message_id, row.error_kind) == ("delivered", message_id, "")
    # Another phone's report never adopts it.
    form = {"id": "ATXid_other", "status": "Success", "phoneNumber": "+22370999999"}
    assert sms_client.post("/webhooks/at/sms/delivery", data=form).status_code == 200
    assert messages(db)[0].provider_message_id == message_id
