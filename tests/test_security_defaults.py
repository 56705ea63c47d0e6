"""Issue 14, findings 1, 3, 4 and parts of 12: secure by default (no start without a webhook
secret outside development mode, every callback guarded alike, the fakes only in development
mode and on loopback), no SMS pumping (allowed countries, a daily reply budget of its own, an
hourly ceiling on new numbers, a per-number cap that holds under concurrency), USSD sessions bound
to the caller, deeply nested JSON refused with 400."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import phonenumbers
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from gateway.aggregators import africastalking as at
from gateway.app import FAKE_AT_PREFIX, app_factory, create_app
from gateway.core.configs import sms_config
from gateway.core.startup import StartupError, check_production
from gateway.data import models
from gateway.outbound.replies import ReplyRules
from gateway.sms import service as sms
from messages import default_catalog
from tests.conftest import NOW
from tests.test_startup import gateway

pytestmark = pytest.mark.db

SECRET = "s3cret-token"
ENUMERATOR = "+22376000042"
FARMER = "+22370000077"
LOOPBACK = ("127.0.0.1", 50000)
_ids = itertools.count(1)


def variant(settings, changes: dict):
    """The test settings with some changed, validated (model_copy would not)."""
    return type(settings)(**{**settings.model_dump(), **changes})


def sms_form(text: str, phone: str = FARMER) -> dict:
    return {"from": phone, "to": "36123", "text": text, "date": "2026-11-28 09:30:00",
            "id": f"sec-{next(_ids)}", "networkCode": "61002"}


def ussd_form(session_id: str, phone: str, text: str = "") -> dict:
    return {"sessionId": session_id, "phoneNumber": phone, "serviceCode": "*123#", "networkCode": "61002", "text": text}


def count(db, model, *where) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def state_of(db) -> dict:
    """Everything a forged callback could change."""
    p = models.Producer
    with db.unit_of_work() as session:
        tally = {
            model.__name__: session.exec(select(func.count()).select_from(model)).one()
            for model in (p, models.SmsInbound, models.SmsMessage, models.PriceObservation, models.Broadcast,
                          models.Subscription, models.Offer, models.UssdSession, models.ServiceRequest)
        }
        tally["opted_out"] = session.exec(select(func.count()).select_from(p).where(p.opted_out)).one()
        tally["statuses"] = sorted(session.exec(select(models.SmsMessage.status)).all())
        tally["profiles"] = sorted(map(tuple, session.exec(select(p.phone, p.language, p.name, p.role)).all()))
    return tally


def make_enumerator(db, phone=ENUMERATOR) -> None:
    with db.unit_of_work() as session:
        session.add(models.Producer(phone=phone, role="enumerator", language="fr", name="Enquêteur"))


# -- 1. secure by default -------------------------------------------------------------------------


def test_production_start_without_secret_is_one_line(tmp_path):
    result = gateway(tmp_path, "serve", "--port", "1")  # no GATEWAY_* at all: production
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("gateway: GATEWAY_WEBHOOK_SECRET is not set") and "GATEWAY_DEV_MODE" in lines[0]


@pytest.mark.parametrize(
    "env, allowed",
    [
        pytest.param({}, False, id="default-production"),
        pytest.param({"dev_mode": True}, True, id="dev-mode"),
        pytest.param({"webhook_secret": SECRET}, True, id="secret"),
        pytest.param({"webhook_allow_networks": "196.201.214.0/24"}, True, id="networks"),
        pytest.param({"webhook_secret": ""}, False, id="empty-secret"),
    ],
)
def test_production_needs_a_secret_or_networks(env, allowed):
    from gateway.core.settings import Settings

    settings = Settings(**env)
    if allowed:
        check_production(settings)
    else:
        with pytest.raises(StartupError, match="GATEWAY_WEBHOOK_SECRET is not set"):
            check_production(settings)


def test_forged_enumerator_report_without_secret_is_refused_in_production(settings, db, monkeypatch):
    # The default install no longer starts without a secret...
    for name in ("GATEWAY_DEV_MODE", "GATEWAY_WEBHOOK_SECRET", "GATEWAY_WEBHOOK_ALLOW_NETWORKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    with pytest.raises(StartupError):
        app_factory()
    # ...and with one, a forged report from an enumerator's number publishes nothing.
    make_enumerator(db)
    before = state_of(db)
    production = variant(settings, {"dev_mode": False, "webhook_secret": SECRET})
    with TestClient(create_app(production, clock=lambda: NOW)) as client:
        for query in ("", "?token=wrong"):
            response = client.post("/webhooks/at/sms" + query, data=sms_form("P TOMATE SIKASSO 29000", ENUMERATOR))
            assert response.status_code == 403
    assert state_of(db) == before


def _routes_under_webhooks(app) -> set[str]:
    return {path for path in app.openapi()["paths"] if path.startswith("/webhooks/")}


ORANGE_SMS = {"inboundSMSMessageNotification": {"inboundSMSMessage": {
    "senderAddress": f"tel:{FARMER}", "message": "ALERTE TOMATE SIKASSO", "dateTime": "2026-11-28T09:30:00Z"}}}
ORANGE_RECEIPT = {"deliveryInfoNotification": {"callbackData": "", "deliveryInfo": {
    "address": f"tel:{FARMER}", "deliveryStatus": "DeliveryImpossible"}}}
# Every callback kind, with a body that would change something if it were let in.
FORGERIES = {
    "/webhooks/at/ussd": ("form", ussd_form("forged-1", FARMER, "4*1")),
    "/webhooks/at/ussd/events": ("form", {"sessionId": "forged-1", "phoneNumber": FARMER, "serviceCode": "*123#",
                                          "networkCode": "61002", "status": "Success", "date": "2026-11-28 09:30:00"}),
    "/webhooks/at/sms": ("form", sms_form("ALERTE TOMATE SIKASSO")),
    "/webhooks/at/sms/delivery": ("form", {"id": "ATXid_forged", "status": "Failed", "phoneNumber": FARMER,
                                           "failureReason": "UserInBlacklist"}),
    "/webhooks/at/sms/optout": ("form", {"phoneNumber": FARMER, "senderId": "SUGU"}),
    "/webhooks/at/voice": ("form", {"isActive": "1", "sessionId": "forged-v", "direction": "Inbound",
                                    "callerNumber": FARMER, "destinationNumber": "+22320221234"}),
    "/webhooks/orange/sms": ("json", ORANGE_SMS),
    "/webhooks/orange/sms/delivery": ("json", ORANGE_RECEIPT),
}


def test_the_forgery_table_covers_every_callback_route(settings):
    assert _routes_under_webhooks(create_app(settings)) == set(FORGERIES)


@pytest.mark.parametrize("path", sorted(FORGERIES))
@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong", "?token=S3CRET-TOKEN", "?tok=s3cret-token"],
                         ids=["none", "empty", "wrong", "case", "other-name"])
def test_every_callback_kind_refuses_a_forged_request(settings, db, path, query):
    with db.unit_of_work() as session:  # something to opt out, requeue or subscribe
        session.add(models.Producer(phone=FARMER, language="fr"))
    before = state_of(db)
    production = variant(settings, {"dev_mode": False, "webhook_secret": SECRET})
    kind, body = FORGERIES[path]
    with TestClient(create_app(production, clock=lambda: NOW)) as client:
        post = (lambda url: client.post(url, data=body)) if kind == "form" else (lambda url: client.post(url, json=body))
        response = post(path + query)
        assert response.status_code == 403, response.text
        assert state_of(db) == before
        assert post(f"{path}?token={SECRET}").status_code == 200  # the guard, not the route, refused


def test_fake_aggregator_not_mounted_outside_dev_mode(settings):
    production = variant(settings, {"dev_mode": False, "webhook_secret": SECRET})
    assert production.sms_uses_fake  # no key: the case where it used to be mounted
    with TestClient(create_app(production), client=LOOPBACK) as client:
        for path in ("/fake-at/_fake/", "/fake-at/_fake/messages", "/fake-at/_fake/config"):
            assert client.get(path).status_code == 404
        assert client.delete("/fake-at/_fake/requests").status_code == 404
    development = variant(settings, {"dev_mode": True})
    with TestClient(create_app(development), client=LOOPBACK) as client:
        assert client.get("/fake-at/_fake/messages").status_code == 200
    with TestClient(create_app(development), client=("203.0.113.9", 40000)) as client:
        for path in ("/fake-at/_fake/", "/fake-at/_fake/messages", "/fake-at/_fake/config"):
            assert client.get(path).status_code == 404  # only from this machine
        assert client.delete("/fake-at/_fake/requests").status_code == 404


def test_fake_aggregator_accepts_a_1000_recipient_bulk_request(settings):
    from gateway.aggregators.fake_at import serve_in_thread

    app = create_app(variant(settings, {"dev_mode": True}))
    numbers = [f"+2237{n:07d}" for n in range(at.MAX_RECIPIENTS)]
    text = "Prix Tomate Sikasso 28/11: 350F/kg (+12%). " * 3  # 3 segments
    with TestClient(app):  # runs the lifespan (database) while uvicorn serves the same app
        with serve_in_thread(app) as url:
            sender = at.AfricasTalkingSender(username="sandbox", api_key="fake", base_url=url + FAKE_AT_PREFIX)
            try:
                results = sender.send(text, numbers)
            finally:
                sender.close()
    assert len(results) == at.MAX_RECIPIENTS and {r.outcome for r in results} == {"accepted"}


# -- 3. no pumping ---------------------------------------------------------------------------------


def _example(region: str) -> str:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


SATELLITE = phonenumbers.format_number(phonenumbers.example_number_for_non_geo_entity(881), phonenumbers.PhoneNumberFormat.E164)


def replies_to(db, phone) -> int:
    return count(db, models.SmsMessage, models.SmsMessage.phone == phone)


@pytest.mark.parametrize(
    "phone",
    [pytest.param(_example(r), id=r) for r in ("FR", "US", "GB", "CN", "CI")] + [pytest.param(SATELLITE, id="satellite")],
)
def test_sms_pumping_foreign_numbers_get_no_reply(client, db, phone):
    assert client.post("/webhooks/at/sms", data=sms_form("aide", phone)).status_code == 200
    assert count(db, models.SmsInbound, models.SmsInbound.phone == phone) == 1  # stored, not answered
    assert replies_to(db, phone) == 0
    with db.unit_of_work() as session:
        note = session.exec(select(models.SmsInbound.note).where(models.SmsInbound.phone == phone)).one()
    assert note == "refused:country"
    client.post("/webhooks/at/sms", data=sms_form("aide", FARMER))
    assert replies_to(db, FARMER) == 1  # Malian numbers are answered
    assert 'sugu_replies_refused_today{ceiling="country"} 1.0' in client.get("/metrics").text


def test_allowed_countries_are_configurable(settings, db):
    senegal = _example("SN")
    chosen = variant(settings, {"allowed_countries": "ML,SN"})
    with TestClient(create_app(chosen, clock=lambda: NOW)) as client:
        client.post("/webhooks/at/sms", data=sms_form("aide", senegal))
    assert replies_to(db, senegal) == 1


def test_allowed_countries_must_be_regions():
    from pydantic import ValidationError

    from gateway.core.settings import Settings

    with pytest.raises(ValidationError, match="unknown region 'XX'"):
        Settings(allowed_countries="ML,XX")
    assert Settings(allowed_countries=" ml , sn").allowed_regions == {"ML", "SN"}


def test_replies_have_their_own_daily_budget(settings, db, caplog):
    chosen = variant(settings, {"daily_reply_budget": 3, "daily_sms_budget": 1000})
    phones = [f"+2237100{n:04d}" for n in range(5)]
    with TestClient(create_app(chosen, clock=lambda: NOW)) as client:
        for phone in phones:
            client.post("/webhooks/at/sms", data=sms_form("aide", phone))
        answered = [p for p in phones if replies_to(db, p)]
        assert len(answered) == 3
        with db.unit_of_work() as session:
            notes = session.exec(select(models.SmsInbound.note).order_by(models.SmsInbound.id)).all()
        assert notes[-2:] == ["refused:daily_budget"] * 2
        assert "daily_budget ceiling" in caplog.text and phones[-1] not in caplog.text  # masked
        assert 'sugu_replies_refused_today{ceiling="daily_budget"} 2.0' in client.get("/metrics").text


def test_new_number_replies_per_hour_ceiling(settings, db):
    known = "+22372000001"
    with db.unit_of_work() as session:  # heard from last week
        session.add(models.Producer(phone=known, language="fr", created_at=NOW - dt.timedelta(days=7)))
    clock = {"now": NOW}
    chosen = variant(settings, {"new_number_replies_per_hour": 2})
    with TestClient(create_app(chosen, clock=lambda: clock["now"])) as client:
        new = [f"+2237300{n:04d}" for n in range(4)]
        for phone in new:
            client.post("/webhooks/at/sms", data=sms_form("aide", phone))
        assert [replies_to(db, p) for p in new] == [1, 1, 0, 0]
        client.post("/webhooks/at/sms", data=sms_form("aide", known))
        assert replies_to(db, known) == 1  # numbers the service knows are not held back
        clock["now"] = NOW + dt.timedelta(hours=1)  # the next hour has room again
        client.post("/webhooks/at/sms", data=sms_form("aide", new[2]))
        assert replies_to(db, new[2]) == 1


def test_directory_sms_from_ussd_follow_the_reply_rules(settings, db):
    """SMS sent as a side effect of USSD are replies too: a foreign caller gets none."""
    from gateway.actions import effects
    from menus import types as m

    with db.unit_of_work() as session:
        service = session.exec(select(models.Service).where(models.Service.active)).first()
    assert service is not None
    for phone, expected in ((_example("FR"), 0), (FARMER, 1)):
        with db.unit_of_work() as session:
            effects.apply_effects(session, phone=phone, effects=(m.SendService(service.id),), now=NOW,
                                  today=NOW.date(), session_ref=f"s-{phone}", rules=ReplyRules())
        assert replies_to(db, phone) == expected


def test_reply_cap_holds_under_concurrency(db, settings):
    """Many messages from one number at once: the per-number cap (10) still holds."""
    cap, attempts = 10, 40
    rules = ReplyRules(per_number_per_day=cap, daily_budget=1000, new_numbers_per_hour=1000)
    with db.unit_of_work() as session:
        session.add(models.Producer(phone=FARMER, language="fr"))
    catalog, config = default_catalog(), sms_config(settings)
    barrier = threading.Barrier(attempts)

    def one(n: int) -> None:
        message = at.InboundSms(phone=FARMER, text="aide", to="36123", provider_id=f"race-{n}", link_id=None,
                                network_code="61002", cost=None, received_at=None)
        barrier.wait()
        # SQLite's one writer may make a message wait past the busy timeout on a loaded machine:
        # the webhook then answers 503 and the aggregator retries, as done here.
        for attempt in range(5):
            try:
                with db.unit_of_work() as session:
                    sms.receive(session, message=message, provider="africastalking", now=NOW, catalog=catalog,
                                config=config, replies_per_day=cap, tz=settings.tz, rules=rules)
                return
            except OperationalError:
                if attempt == 4:
                    raise

    with ThreadPoolExecutor(attempts) as pool:
        list(pool.map(one, range(attempts)))
    assert count(db, models.SmsInbound) == attempts
    assert replies_to(db, FARMER) == cap


# -- 12. USSD sessions, nested JSON ----------------------------------------------------------------


def test_ussd_session_bound_to_caller(client, db):
    with db.unit_of_work() as session:
        session.add(models.Producer(phone=FARMER, language="fr", name="Awa Secret", village="Kafana"))
    other = "+22370000088"
    first = client.post("/webhooks/at/ussd", data=ussd_form("shared-1", FARMER)).text
    assert first.startswith("CON")
    seen = client.post("/webhooks/at/ussd", data=ussd_form("shared-1", other, "5")).text  # 5: profile
    assert seen.startswith("END") and "Awa" not in seen and "Kafana" not in seen
    # Nothing was done in the caller's name, and the caller's own session goes on.
    stop = client.post("/webhooks/at/ussd", data=ussd_form("shared-1", other, "4*2")).text
    assert stop.startswith("END")
    with db.unit_of_work() as session:
        row = session.exec(select(models.UssdSession).where(models.UssdSession.session_id == "shared-1")).one()
        assert row.phone == FARMER
        assert session.exec(select(models.Producer).where(models.Producer.phone == other)).first() is None
    assert "Awa" in client.post("/webhooks/at/ussd", data=ussd_form("shared-1", FARMER, "5")).text
    # Nor can another number close it.
    end = {"sessionId": "shared-1", "phoneNumber": other, "serviceCode": "*123#", "networkCode": "61002",
           "status": "Failed", "date": "2026-11-28 09:30:00"}
    assert client.post("/webhooks/at/ussd/events", data=end).status_code == 200
    with db.unit_of_work() as session:
        row = session.exec(select(models.UssdSession).where(models.UssdSession.session_id == "shared-1")).one()
        assert row.end_status is None or row.end_status == ""


@pytest.mark.parametrize("path", ["/webhooks/orange/sms", "/webhooks/orange/sms/delivery"])
@pytest.mark.parametrize("body", [b"[" * 15_000, b'{"a":' * 2_500 + b"1" + b"}" * 2_500], ids=["lists", "objects"])
def test_orange_nested_json_is_400(settings, db, path, body):
    before = state_of(db)
    with TestClient(create_app(settings, clock=lambda: NOW), raise_server_exceptions=False) as client:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert state_of(db) == before


@pytest.mark.parametrize(
    "path, body, content_type",
    [
        pytest.param("/webhooks/at/sms", "from=%2B22370000001&to=36123&text=aide&id=nul%00id&date=2026-11-28", "application/x-www-form-urlencoded", id="at-sms-id"),
        pytest.param("/webhooks/at/sms", "from=%2B22370000001&to=36123&text=ai%00de&id=nul-2&date=2026-11-28", "application/x-www-form-urlencoded", id="at-sms-text"),
        pytest.param("/webhooks/at/ussd", "sessionId=s%00&phoneNumber=%2B22370000001&serviceCode=*123%23&text=", "application/x-www-form-urlencoded", id="at-ussd"),
        pytest.param("/webhooks/orange/sms", '{"inboundSMSMessageNotification": {"inboundSMSMessage": {"senderAddress": "tel:+22370000001", "message": "ai\\u0000de", "messageId": "o-nul"}}}', "application/json", id="orange-json"),
    ],
)
def test_nul_byte_in_a_callback_is_answered_not_500(settings, db, path, body, content_type):
    """Found by the fuzz test on PostgreSQL, which refuses NUL in text: a NUL in an inbound SMS id
    or text was a 500. The callbacks drop NUL characters: answered, and no NUL stored."""
    with TestClient(create_app(settings, clock=lambda: NOW), raise_server_exceptions=False) as client:
        response = client.post(path, content=body.encode(), headers={"content-type": content_type})
    assert response.status_code < 500, response.text
    with db.unit_of_work() as session:
        stored = [*session.exec(select(models.SmsInbound.text, models.SmsInbound.provider_id)).all(),
                  *session.exec(select(models.UssdSession.session_id, models.UssdSession.phone)).all()]
    assert all("\x00" not in (value or "") for row in stored for value in row), stored


# -- the dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_the_security_posture(settings, db):
    from gateway.data import auth

    login = {"email": "admin@sugu.test", "password": "correct horse battery"}
    with db.unit_of_work() as session:
        auth.create_staff(session, role="admin", **login)
    for chosen, expected in (
        ({"dev_mode": True}, ["Development mode", "development</span>", "/fake-at, /fake-at-voice (loopback only)", ">none</span>"]),
        ({"dev_mode": False, "webhook_secret": SECRET, "webhook_allow_networks": "196.201.214.0/24"},
         ["production", "secret token and networks 196.201.214.0/24", "not mounted"]),
    ):
        with TestClient(create_app(variant(settings, chosen), clock=lambda: NOW)) as client:
            query = f"?token={SECRET}" if chosen.get("webhook_secret") else ""
            client.post("/webhooks/at/sms" + query, data=sms_form("aide", _example("FR")))  # 403 from "testclient"
            page = client.get("/admin/login").text
            csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
            client.post("/admin/login", data={**login, "csrf_token": csrf})
            page = client.get("/admin/").text
        for fragment in expected:
            assert fragment in page, fragment
        assert "numbers of ML" in page
        assert ("Development mode</b>" in page) == chosen["dev_mode"]
    assert "A reply ceiling was hit today" in page


def test_staff_passwords_are_hashed_with_argon2id_at_the_recommended_cost():
    # In a process of its own: tests/conftest.py lowers the cost for the suite's speed.
    import subprocess
    import sys

    code = "from gateway.data import auth; print(auth.hash_password('a long enough password'))"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    from argon2 import PasswordHasher  # pwdlib's recommended hasher is argon2-cffi's defaults

    wanted = PasswordHasher()
    assert out.stdout.startswith(
        f"$argon2id$v=19$m={wanted.memory_cost},t={wanted.time_cost},p={wanted.parallelism}$"
    ), out.stdout
