"""Hardening: webhook secret and networks, body limits, console headers, readiness, metrics,
request ids, per-phone rate limit, and no secret or full phone number in the logs."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from gateway.data import models
from gateway.app import create_app
from tests.conftest import NOW

pytestmark = pytest.mark.db

PHONE = "+22370555666"
HOP = {"sessionId": "h1", "phoneNumber": PHONE, "serviceCode": "*123#", "text": ""}


def app_with(settings, **changes):
    # Validated like the environment would be (SecretStr for secrets).
    return create_app(type(settings)(**{**settings.model_dump(), **changes}), clock=lambda: NOW)


def sessions(db) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(models.UssdSession)).one()


@pytest.mark.parametrize(
    "query, status",
    [
        pytest.param("", 403, id="no-token"),
        pytest.param("?token=wrong", 403, id="wrong-token"),
        pytest.param("?token=s3cret-s3cret", 200, id="right-token"),
    ],
)
def test_webhook_secret(settings, db, query, status):
    with TestClient(app_with(settings, webhook_secret="s3cret-s3cret")) as client:
        response = client.post("/webhooks/at/ussd" + query, data=HOP)
        assert response.status_code == status
        assert client.post("/webhooks/at/sms" + query, data={"id": "1", "from": PHONE, "text": "aide"}).status_code == status
    assert sessions(db) == (1 if status == 200 else 0)


@pytest.mark.parametrize(
    "client_ip, status",
    [pytest.param("196.201.214.7", 200, id="listed"), pytest.param("203.0.113.9", 403, id="elsewhere")],
)
def test_webhook_networks(settings, db, client_ip, status):
    app = app_with(settings, webhook_allow_networks="196.201.214.0/24, 127.0.0.1/32")
    with TestClient(app, client=(client_ip, 40000)) as client:
        assert client.post("/webhooks/at/ussd", data=HOP).status_code == status


def test_oversized_bodies_are_413(client, db):
    big = {**HOP, "text": "1*" * 9000}
    assert client.post("/webhooks/at/ussd", data=big).status_code == 413

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(20):
            yield b"x" * 1024

    streamed = client.post("/webhooks/at/ussd", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    assert sessions(db) == 0
    assert client.post("/webhooks/at/ussd", data=HOP).status_code == 200


def test_console_security_headers_and_script_nonce(client):
    page = client.get("/admin/login")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "same-origin"
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert nonce != re.search(r"'nonce-([^']+)'", client.get("/admin/login").headers["content-security-policy"]).group(1)
    assert "content-security-policy" not in client.post("/webhooks/at/ussd", data=HOP).headers


def test_readiness(client, settings, db):
    assert client.get("/healthz").text == "ok"
    assert client.get("/readyz").status_code == 200
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503 and "gateway migrate" in not_ready.text


def test_readiness_without_database(backend):
    from gateway.core.settings import Settings

    url = "sqlite:////nonexistent-dir/x.db" if backend.name == "sqlite" else "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=1"
    import unittest.mock

    with unittest.mock.patch("gateway.core.startup.Path.mkdir"), TestClient(create_app(Settings(database_url=url, secret_key="x", worker_in_process=False))) as c:
        response = c.get("/readyz")
        assert response.status_code == 503 and "database unreachable" in response.text
        assert c.get("/healthz").status_code == 200


def test_metrics(client):
    client.post("/webhooks/at/ussd", data=HOP)
    client.post("/webhooks/at/ussd", data={"sessionId": "x"})
    text = client.get("/metrics").text
    assert 'sugu_ussd_hops_total{outcome="con"} 1.0' in text
    assert 'sugu_webhook_errors_total{kind="bad_request"} 1.0' in text
    assert "sugu_ussd_hop_seconds_bucket" in text and "sugu_outbox_depth 0.0" in text and "sugu_worker_lag_seconds" in text


def test_request_ids(client):
    assert re.fullmatch(r"[0-9a-f]{16}", client.get("/healthz").headers["x-request-id"])
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-ID": "bad\nid"}).headers["x-request-id"] != "bad\nid"


def test_ussd_rate_limit_per_phone(settings):
    with TestClient(app_with(settings, ussd_hops_per_minute=3)) as client:
        replies = [client.post("/webhooks/at/ussd", data={**HOP, "sessionId": f"r{i}"}).text for i in range(4)]
        other = client.post("/webhooks/at/ussd", data={**HOP, "phoneNumber": "+22370555667"}).text
    assert all(r.startswith("CON ") for r in replies[:3])
    assert replies[3].startswith("END Trop de requetes")
    assert other.startswith("CON ")


# (seconds since start, phone, allowed?) in order, with at most 2 per phone per minute.
RATE_STEPS = [
    (0, "a", True), (1, "a", True), (2, "a", False),  # the third within a minute
    (2, "b", True),  # phones are counted apart
    (59, "a", False),  # still within a minute of the first
    (60.5, "a", True),  # the first has left the window
    (61.5, "a", True),  # ...and the second (the refused ones do not count)
    (62, "a", False),
]


def test_phone_rate_limit_is_a_sliding_window_per_phone():
    from gateway.aggregators.callbacks import PhoneRateLimit

    limit = PhoneRateLimit(2)
    assert [limit.allow(phone, now=1000 + t) for t, phone, _ in RATE_STEPS] == [ok for *_, ok in RATE_STEPS]


def test_phone_rate_limit_forgets_idle_phones():
    from gateway.aggregators.callbacks import PhoneRateLimit

    limit = PhoneRateLimit(5)
    for i in range(1000):
        limit.allow(f"+2237{i:07d}", now=1000 + i * 0.01)
    assert len(limit) == 1000
    limit.allow("+22370999999", now=1000 + 10 + 61)  # a minute later, one more caller
    assert len(limit) == 1  # memory follows the recent callers, not every number ever seen


def test_no_secret_or_full_phone_number_in_logs(sms_settings, fake_at, caplog):
    secret, key = "webhook-secret-xyz", "at-api-key-abc"
    settings = type(sms_settings)(**{**sms_settings.model_dump(), "webhook_secret": secret, "at_api_key": key})
    fake_at.configure(api_key=key)
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        q = f"?token={secret}"
        client.post("/webhooks/at/ussd" + q, data=HOP)
        client.post("/webhooks/at/ussd" + q, data={**HOP, "text": "1"})
        client.post("/webhooks/at/sms" + q, data={"id": "s1", "from": PHONE, "text": "prix tomate sikasso"})
        client.post("/webhooks/at/sms" + q, data={"id": "s2", "from": PHONE, "text": "STOP"})
        client.post("/webhooks/at/sms/delivery" + q, data={"id": "ATXid_nope", "status": "Success"})
        client.post("/webhooks/at/ussd", data=HOP)  # refused: no token
    # The test's own HTTP client (standing in for the aggregator) logs its URLs: not ours.
    records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert caplog.records, "nothing was logged"
    assert secret not in text and key not in text
    assert PHONE not in text and "+22370****66" in text


def test_access_log_lines_are_redacted():
    from gateway.core.logs import RedactSecrets

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4:5", "POST", "/webhooks/at/sms?token=abc123&x=1", "1.1", 200), None)
    RedactSecrets().filter(record)
    assert "abc123" not in record.getMessage() and "token=***&x=1" in record.getMessage()


def test_a_phone_at_its_limit_costs_no_more_per_request_than_one_below_it():
    """The window is a queue: each request drops what expired instead of re-reading the minute."""
    import time as clock

    from gateway.aggregators.callbacks import PhoneRateLimit

    def per_request(per_minute: int) -> float:
        limit = PhoneRateLimit(per_minute)
        for i in range(per_minute):
            limit.allow("+22370000001", now=1000 + i * 0.001)
        best = float("inf")
        for round_ in range(3):  # the quickest of three: a loaded machine only slows a round
            started = clock.perf_counter()
            for i in range(300):
                limit.allow("+22370000001", now=1060 + round_ * 10 + i * 0.03)  # one expires, one in
            best = min(best, clock.perf_counter() - started)
        return best

    assert per_request(20_000) < 20 * per_request(10)


def test_a_limit_of_zero_refuses_and_forgets_without_failing():
    from gateway.aggregators.callbacks import PhoneRateLimit

    limit = PhoneRateLimit(0)
    assert limit.allow("+22370000001", now=1000) is False
    assert limit.allow("+22370000002", now=1000 + 61) is False  # the sweep meets an empty window
