"""The fake Africa's Talking SMS API, driven by the real `africastalking` SDK over real HTTP.

One server runs for the module (starting uvicorn per test would cost more than the tests); each test
gets the fake back in its default configuration with an empty log.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import httpx
import pytest
import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService
from fastapi.testclient import TestClient

from gateway.aggregators.fake_at import (
    FakeAT,
    FakeConfigError,
    create_fake_at_app,
    estimate_segments,
    serve_in_thread,
)

ALICE = "+22370000001"
BOUBA = "+22370000002"
CHEICK = "+22370000003"
API = "/version1/messaging"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeAT, str]]:
    fake = FakeAT()
    with serve_in_thread(create_fake_at_app(fake)) as base_url:
        yield fake, base_url


@pytest.fixture
def fake(server: tuple[FakeAT, str]) -> FakeAT:
    server[0].reset(config=True)
    return server[0]


@pytest.fixture
def base_url(server: tuple[FakeAT, str], fake: FakeAT) -> str:
    return server[1]


@pytest.fixture
def sms(base_url: str) -> SMSService:
    svc = SMSService("sandbox", "key")
    svc._baseUrl = base_url + "/version1"  # the SDK's only way to point elsewhere
    return svc


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5) as client:
        yield client


def form(**overrides: str | None) -> dict[str, str]:
    data = {"username": "sandbox", "to": ALICE, "message": "Bonjour", "bulkSMSMode": "1"}
    data.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in data.items() if v is not None}


# --- the real SDK ---------------------------------------------------------------------------------


def test_sdk_send_gets_parsed_json_and_is_recorded(sms: SMSService, fake: FakeAT) -> None:
    answer = sms.send("Bonjour", [ALICE, BOUBA], sender_id="SUGU")

    assert isinstance(answer, dict), "the SDK returns text unless the content type is exact"
    data = answer["SMSMessageData"]
    assert data["Message"] == "Sent to 2/2 Total Cost: XOF 20.0000"
    assert [r["number"] for r in data["Recipients"]] == [ALICE, BOUBA]
    assert {r["statusCode"] for r in data["Recipients"]} == {101}
    assert {r["status"] for r in data["Recipients"]} == {"Success"}
    assert {r["cost"] for r in data["Recipients"]} == {"XOF 10.0000"}
    ids = [r["messageId"] for r in data["Recipients"]]
    assert len(set(ids)) == 2 and all(i.startswith("ATXid_") and len(i) == 6 + 32 for i in ids)

    [entry] = fake.requests()
    assert entry["username"] == "sandbox"
    assert entry["from"] == "SUGU"
    assert entry["bulkSMSMode"] == "1"
    assert entry["enqueue"] is None
    assert entry["to"] == [ALICE, BOUBA]
    assert entry["api_key_ok"] is True and entry["http_status"] == 201
    assert entry["recipients"] == data["Recipients"]
    assert fake.sent_messages() == [(ALICE, "Bonjour", ids[0]), (BOUBA, "Bonjour", ids[1])]


def test_content_type_is_exactly_application_json(http: httpx.Client) -> None:
    response = http.post(API, data=form(), headers={"apiKey": "k"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"


def test_enqueue_is_recorded(sms: SMSService, fake: FakeAT) -> None:
    sms.send("Bonjour", [ALICE], enqueue=True)
    assert fake.requests()[0]["enqueue"] == "1"
    assert fake.requests()[0]["from"] is None


STATUS_CASES = [
    pytest.param(100, "Processed", True, id="100-processed"),
    pytest.param(101, "Success", True, id="101-success"),
    pytest.param(102, "Queued", True, id="102-queued"),
    pytest.param(401, "RiskHold", False, id="401-risk-hold"),
    pytest.param(402, "InvalidSenderId", False, id="402-invalid-sender"),
    pytest.param(403, "InvalidPhoneNumber", False, id="403-invalid-number"),
    pytest.param(404, "UnsupportedNumberType", False, id="404-unsupported-type"),
    pytest.param(405, "InsufficientBalance", False, id="405-insufficient-balance"),
    pytest.param(406, "UserInBlacklist", False, id="406-blacklisted"),
    pytest.param(407, "CouldNotRoute", False, id="407-could-not-route"),
    pytest.param(409, "DoNotDisturbRejection", False, id="409-do-not-disturb"),
    pytest.param(500, "InternalServerError", False, id="500-internal"),
    pytest.param(501, "GatewayError", False, id="501-gateway"),
    pytest.param(502, "RejectedByGateway", False, id="502-rejected"),
]


@pytest.mark.parametrize(("code", "word", "accepted"), STATUS_CASES)
def test_per_recipient_status_from_the_map(
    sms: SMSService, fake: FakeAT, code: int, word: str, accepted: bool
) -> None:
    fake.configure(statuses={BOUBA: code})

    data = sms.send("Bonjour", [ALICE, BOUBA, CHEICK])["SMSMessageData"]

    first, odd, last = data["Recipients"]
    assert (first["number"], first["statusCode"]) == (ALICE, 101)
    assert (last["number"], last["statusCode"]) == (CHEICK, 101)
    assert (odd["number"], odd["statusCode"], odd["status"]) == (BOUBA, code, word)
    if accepted:
        assert odd["cost"] == "XOF 10.0000" and odd["messageId"].startswith("ATXid_")
        assert data["Message"] == "Sent to 3/3 Total Cost: XOF 30.0000"
        assert BOUBA in [number for number, _, _ in fake.sent_messages()]
    else:
        assert (odd["cost"], odd["messageId"]) == ("0", "None")
        assert data["Message"] == "Sent to 2/3 Total Cost: XOF 20.0000"
        assert [number for number, _, _ in fake.sent_messages()] == [ALICE, CHEICK]


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("+12345", id="too-short"),  # passes the SDK's own check, not AT's
        pytest.param("+1234567890123456", id="too-long"),
        pytest.param("70000001", id="no-plus"),
        pytest.param("+223 70000001", id="space"),
    ],
)
def test_malformed_number_is_403(http: httpx.Client, fake: FakeAT, number: str) -> None:
    response = http.post(API, data=form(to=f"{ALICE},{number}"), headers={"apiKey": "k"})

    ok, bad = response.json()["SMSMessageData"]["Recipients"]
    assert ok["statusCode"] == 101
    assert (bad["number"], bad["statusCode"], bad["status"]) == (number, 403, "InvalidPhoneNumber")
    assert (bad["cost"], bad["messageId"]) == ("0", "None")
    assert response.json()["SMSMessageData"]["Message"] == "Sent to 1/2 Total Cost: XOF 10.0000"


def test_all_recipients_failing_costs_nothing(sms: SMSService, fake: FakeAT) -> None:
    fake.configure(statuses={ALICE: 405})
    data = sms.send("Bonjour", [ALICE])["SMSMessageData"]
    assert data["Message"] == "Sent to 0/1 Total Cost: 0"
    assert fake.sent_messages() == []


@pytest.mark.parametrize(
    ("message", "segments"),
    [
        pytest.param("a" * 160, 1, id="gsm-160"),
        pytest.param("a" * 161, 2, id="gsm-161"),
        pytest.param("a" * 306, 2, id="gsm-306"),
        pytest.param("a" * 307, 3, id="gsm-307"),
        pytest.param("ɛ" * 70, 1, id="ucs2-70"),
        pytest.param("ɛ" * 71, 2, id="ucs2-71"),
        pytest.param("sɔngɔ " * 20, 2, id="bambara-120"),
    ],
)
def test_cost_follows_segments(sms: SMSService, message: str, segments: int) -> None:
    assert estimate_segments(message) == segments
    [recipient] = sms.send(message, [ALICE])["SMSMessageData"]["Recipients"]
    assert recipient["cost"] == f"XOF {10.0 * segments:.4f}"


def test_segments_and_price_are_pluggable(sms: SMSService, fake: FakeAT) -> None:
    fake.configure(segments=lambda text: 4, price_per_segment=2.5, currency="KES")
    data = sms.send("Bonjour", [ALICE, BOUBA])["SMSMessageData"]
    assert [r["cost"] for r in data["Recipients"]] == ["KES 10.0000", "KES 10.0000"]
    assert data["Message"] == "Sent to 2/2 Total Cost: KES 20.0000"


# --- HTTP failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [
        pytest.param(401, None, id="401-auth"),
        pytest.param(429, "1", id="429-throttled"),
        pytest.param(500, None, id="500-internal"),
        pytest.param(502, None, id="502-bad-gateway"),
        pytest.param(503, None, id="503-unavailable"),
    ],
)
def test_fail_next_then_recovers(
    sms: SMSService, http: httpx.Client, fake: FakeAT, status: int, retry_after: str | None
) -> None:
    fake.configure(fail_next=[status, status])

    raw = http.post(API, data=form(), headers={"apiKey": "k"})
    assert raw.status_code == status
    assert raw.headers.get("retry-after") == retry_after
    with pytest.raises(AfricasTalkingException):
        sms.send("Bonjour", [ALICE])
    answer = sms.send("Bonjour", [ALICE])

    assert answer["SMSMessageData"]["Recipients"][0]["statusCode"] == 101
    log = fake.requests()
    assert [e["http_status"] for e in log] == [status, status, 201]
    assert log[0]["recipients"] == [] and log[0]["message"] == "Bonjour"  # failures are recorded too
    assert len(fake.sent_messages()) == 1


def test_fail_next_is_consumed_in_order(http: httpx.Client, fake: FakeAT) -> None:
    fake.configure(fail_next=[500, 429, 503])
    statuses = [http.post(API, data=form(), headers={"apiKey": "k"}).status_code for _ in range(4)]
    assert statuses == [500, 429, 503, 201]
    assert fake.config()["fail_next"] == []


def sent_statuses(fake: FakeAT, count: int) -> list[int]:
    with TestClient(create_fake_at_app(fake)) as client:
        return [client.post(API, data=form(), headers={"apiKey": "k"}).status_code for _ in range(count)]


@pytest.mark.parametrize(
    ("rate", "expect_failures"),
    [
        pytest.param(0.0, "none", id="never"),
        pytest.param(0.5, "some", id="half"),
        pytest.param(1.0, "all", id="always"),
    ],
)
def test_fail_rate_is_seeded(rate: float, expect_failures: str) -> None:
    first = sent_statuses(FakeAT(fail_rate=rate, seed=7), 30)
    again = sent_statuses(FakeAT(fail_rate=rate, seed=7), 30)

    assert first == again, "the same seed gives the same sequence"
    assert set(first) <= {201, 500}
    failures = first.count(500)
    assert {"none": failures == 0, "some": 0 < failures < 30, "all": failures == 30}[expect_failures]


@pytest.mark.parametrize(
    ("configured", "headers", "status"),
    [
        pytest.param(None, {}, 401, id="missing-header"),
        pytest.param(None, {"apiKey": ""}, 401, id="empty-header"),
        pytest.param(None, {"apiKey": "anything"}, 201, id="any-key-when-unset"),
        pytest.param("secret", {"apiKey": "wrong"}, 401, id="wrong-key"),
        pytest.param("secret", {}, 401, id="missing-with-key-set"),
        pytest.param("secret", {"apiKey": "secret"}, 201, id="right-key"),
        pytest.param("secret", {"APIKEY": "secret"}, 201, id="header-name-case-insensitive"),
    ],
)
def test_api_key(
    http: httpx.Client, fake: FakeAT, configured: str | None, headers: dict[str, str], status: int
) -> None:
    fake.configure(api_key=configured)

    response = http.post(API, data=form(), headers=headers)

    assert response.status_code == status
    if status == 401:
        assert response.text == "The supplied authentication is invalid"
    [entry] = fake.requests()
    assert (entry["api_key_ok"], entry["http_status"]) == (status == 201, status)


def test_sdk_with_wrong_key_raises(sms: SMSService, fake: FakeAT) -> None:
    fake.configure(api_key="secret")
    with pytest.raises(AfricasTalkingException, match="authentication is invalid"):
        sms.send("Bonjour", [ALICE])


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        pytest.param(form(username=None), "username", id="no-username"),
        pytest.param(form(to=None), "to", id="no-to"),
        pytest.param(form(message=None), "message", id="no-message"),
        pytest.param(form(message=""), "message", id="empty-message"),
        pytest.param(form(to=" , ,"), "to", id="only-commas"),
    ],
)
def test_missing_fields_are_400(
    http: httpx.Client, fake: FakeAT, fields: dict[str, str], missing: str
) -> None:
    response = http.post(API, data=fields, headers={"apiKey": "k"})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert f"'{missing}'" in response.text
    assert fake.requests()[0]["http_status"] == 400
    assert fake.sent_messages() == []


# --- time --------------------------------------------------------------------------------------------


def test_hung_request_times_out_but_was_received(sms: SMSService, fake: FakeAT) -> None:
    fake.configure(hang_next=1, hang_s=2.0)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        sms.send("Bonjour", [ALICE], timeout=(1, 0.5))
    assert time.monotonic() - started < 1.5

    [entry] = fake.requests()
    assert entry["hung"] is True and entry["http_status"] == 201
    assert [number for number, _, _ in fake.sent_messages()] == [ALICE], "ambiguous: it may have left"
    # Only one request hangs; the server kept serving while the first one sleeps.
    started = time.monotonic()
    answer = sms.send("Encore", [ALICE], timeout=(1, 0.5))
    assert answer["SMSMessageData"]["Recipients"][0]["statusCode"] == 101
    assert time.monotonic() - started < 0.5


def test_latency_is_added(sms: SMSService, fake: FakeAT) -> None:
    fake.configure(latency_s=0.3)
    started = time.monotonic()
    sms.send("Bonjour", [ALICE])
    assert time.monotonic() - started >= 0.3


# --- concurrency and ids -----------------------------------------------------------------------------


def test_concurrent_sends_are_all_recorded_with_unique_ids(sms: SMSService, fake: FakeAT) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: sms.send(f"m{i}", [ALICE, BOUBA]), range(24)))

    log = fake.requests()
    assert len(log) == 24 and len({e["id"] for e in log}) == 24
    ids = [r["messageId"] for a in answers for r in a["SMSMessageData"]["Recipients"]]
    assert len(ids) == 48 and len(set(ids)) == 48
    assert sorted(m[2] for m in fake.sent_messages()) == sorted(ids)


def test_message_ids_unique_across_fakes() -> None:
    ids: list[str] = []
    for _ in range(2):
        with TestClient(create_fake_at_app()) as client:
            for _ in range(5):
                answer = client.post(API, data=form(to=f"{ALICE},{BOUBA}"), headers={"apiKey": "k"}).json()
                ids += [r["messageId"] for r in answer["SMSMessageData"]["Recipients"]]
    assert len(ids) == 20 and len(set(ids)) == 20


# --- /_fake endpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"nope": 1}, id="unknown-key"),
        pytest.param({"latency_s": 0.1, "segments": 3}, id="python-only-key"),
        pytest.param({"fail_rate": 2}, id="rate-above-one"),
        pytest.param({"latency_s": -1}, id="negative-latency"),
        pytest.param({"hang_next": 1.5}, id="fractional-count"),
        pytest.param({"hang_next": True}, id="bool-is-not-a-count"),
        pytest.param({"fail_next": [200]}, id="success-status-injected"),
        pytest.param({"fail_next": 500}, id="fail-next-not-a-list"),
        pytest.param({"statuses": {ALICE: 999}}, id="unknown-status-code"),
        pytest.param({"currency": "francs"}, id="bad-currency"),
        pytest.param(["latency_s"], id="not-an-object"),
    ],
)
def test_config_rejects_bad_input_and_changes_nothing(http: httpx.Client, fake: FakeAT, body: Any) -> None:
    before = fake.config()
    response = http.post("/_fake/config", json=body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert fake.config() == before


def test_config_applies_and_answers_the_new_config(http: httpx.Client, fake: FakeAT) -> None:
    response = http.post(
        "/_fake/config",
        json={"statuses": {BOUBA: 406}, "fail_next": [429], "api_key": "secret", "price_per_segment": 5},
    )

    assert response.status_code == 200
    config = response.json()
    assert config["statuses"] == {BOUBA: 406} and config["fail_next"] == [429]
    assert config["api_key_set"] is True and "secret" not in response.text
    assert config["price_per_segment"] == 5.0
    assert http.get("/_fake/config").json() == config
    assert http.post(API, data=form(), headers={"apiKey": "secret"}).status_code == 429
    answer = http.post(API, data=form(to=f"{ALICE},{BOUBA}"), headers={"apiKey": "secret"}).json()
    assert [r["statusCode"] for r in answer["SMSMessageData"]["Recipients"]] == [101, 406]


def test_python_configure_rejects_unknown_keys(fake: FakeAT) -> None:
    with pytest.raises(FakeConfigError):
        fake.configure(colour="blue")


def test_messages_requests_and_reset(sms: SMSService, http: httpx.Client, fake: FakeAT) -> None:
    fake.configure(statuses={BOUBA: 406})
    sms.send("Premier", [ALICE, BOUBA], sender_id="SUGU")
    sms.send("Second", [CHEICK])

    messages = http.get("/_fake/messages").json()
    assert [(m["number"], m["message"], m["from"]) for m in messages] == [
        (ALICE, "Premier", "SUGU"),
        (CHEICK, "Second", None),
    ]
    assert [m["messageId"] for m in messages] == [m[2] for m in fake.sent_messages()]
    assert http.get("/_fake/messages", params={"offset": 1}).json() == messages[1:]  # what is new
    assert http.get("/_fake/messages", params={"offset": 9}).json() == []
    assert http.get("/_fake/messages", params={"offset": -1}).status_code == 422
    logged = http.get("/_fake/requests").json()
    assert [e["message"] for e in logged] == ["Premier", "Second"]
    assert [e["id"] for e in logged] == sorted(e["id"] for e in logged)

    assert http.delete("/_fake/requests").status_code == 200
    assert http.get("/_fake/requests").json() == []
    assert http.get("/_fake/messages").json() == []
    assert fake.config()["statuses"] == {BOUBA: 406}, "resetting the log keeps the configuration"


def test_log_copies_cannot_change_the_log(sms: SMSService, fake: FakeAT) -> None:
    sms.send("Bonjour", [ALICE])
    fake.requests()[0]["recipients"].clear()
    assert len(fake.requests()[0]["recipients"]) == 1


def test_html_page_lists_messages_escaped(sms: SMSService, http: httpx.Client) -> None:
    assert "No SMS sent yet" in http.get("/_fake/").text
    sms.send("<script>alert('x')</script> & sòngò", [ALICE], sender_id="SUGU")

    page = http.get("/_fake/")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; sòngò" in page.text
    assert ALICE in page.text and "SUGU" in page.text


# --- serve_in_thread ---------------------------------------------------------------------------------


def test_serve_in_thread_picks_free_ports_and_stops() -> None:
    with serve_in_thread(create_fake_at_app()) as first, serve_in_thread(create_fake_at_app()) as second:
        assert first != second and first.startswith("http://127.0.0.1:")
        assert httpx.get(first + "/_fake/requests").json() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(first + "/_fake/requests", timeout=1)


def test_serve_in_thread_does_not_wait_for_a_hung_request() -> None:
    fake = FakeAT(hang_next=1, hang_s=30)
    with serve_in_thread(create_fake_at_app(fake), graceful_s=0.2) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + API, data=form(), headers={"apiKey": "k"}, timeout=httpx.Timeout(1, read=0.2))
        started = time.monotonic()
    assert time.monotonic() - started < 3
    assert len(fake.requests()) == 1
