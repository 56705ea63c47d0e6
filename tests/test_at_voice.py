"""Africa's Talking Voice: the callback parse, the XML, the outbound caller against the fake call
API, and the fake call driver against a small voice app that serves real (and fake) audio."""

from __future__ import annotations

import asyncio
import io
import math
import socket
import struct
import wave
from concurrent.futures import ThreadPoolExecutor
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.testclient import TestClient

from gateway.aggregators.africastalking import BadRequest
from gateway.aggregators.africastalking_voice import (
    RESPONSE_MEDIA_TYPE,
    AfricasTalkingCaller,
    parse_voice_callback,
    render,
)
from gateway.aggregators.calling import (
    INBOUND,
    OUTBOUND,
    AccountProblem,
    GetDigits,
    Hangup,
    InvalidVoiceResponse,
    Play,
    Redirect,
    Reject,
    Rejected,
    Say,
    SendError,
    Throttled,
    TransportError,
    VoiceCallback,
    VoiceResponse,
)
from gateway.aggregators.fake_at_voice import (
    AsyncFakeVoiceCall,
    FakeATVoice,
    FakeCallError,
    FakeConfigError,
    FakeVoiceCall,
    audio_kind,
    create_fake_at_voice_app,
    digits_sent,
    parse_at_response,
    serve_in_thread,
)

FARMER = "+22376123456"
SUGU = "+22320220000"
BASE = "http://testserver"


def callback_form(**overrides: str | None) -> dict[str, str]:
    data = {
        "isActive": "1",
        "sessionId": "ATVId_5e7c1b2a9f",
        "direction": "Inbound",
        "callerNumber": FARMER,
        "destinationNumber": SUGU,
    }
    data.update(overrides)  # type: ignore[arg-type]
    return {k: v for k, v in data.items() if v is not None}


# --- parsing callbacks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {}, {"is_active": True, "direction": INBOUND, "digits": None, "answered": None}, id="first-hop"
        ),
        pytest.param({"dtmfDigits": "1"}, {"digits": "1"}, id="one-key"),
        pytest.param({"dtmfDigits": "12*#"}, {"digits": "12*#"}, id="keys-star-hash"),
        pytest.param({"dtmfDigits": ""}, {"digits": None}, id="empty-digits"),
        pytest.param(
            {"direction": "Outbound", "clientRequestId": "alert-42.1"},
            {"direction": OUTBOUND, "client_request_id": "alert-42.1"},
            id="outbound",
        ),
        pytest.param({"direction": "outbound"}, {"direction": OUTBOUND}, id="lowercase-direction"),
        pytest.param({"callerNumber": "76 12 34 56"}, {"phone": FARMER}, id="national-number"),
        pytest.param({"callerNumber": " +22376123456 "}, {"phone": FARMER}, id="spaces-around"),
        pytest.param({"destinationNumber": None}, {"service_number": None}, id="no-destination"),
        pytest.param(
            {"isActive": "0", "durationInSeconds": "47", "currencyCode": "XOF", "amount": "50.0000",
             "callSessionState": "Completed", "hangupCause": "NORMAL_CLEARING",
             "recordingUrl": "https://rec.example/a.mp3"},
            {"is_active": False, "duration_s": 47, "currency": "XOF", "amount": Decimal("50.0000"),
             "call_state": "Completed", "hangup_cause": "NORMAL_CLEARING", "answered": True,
             "recording_url": "https://rec.example/a.mp3"},
            id="final-answered",
        ),
        pytest.param(
            # The shape of Africa's Talking's own sample of an unanswered outbound call.
            {"isActive": "0", "direction": "Outbound", "durationInSeconds": "0", "amount": "0",
             "currencyCode": "KES", "callSessionState": "NotAnswered", "status": "NotAnswered",
             "hangupCause": "USER_BUSY", "callStartTime": "None", "callerCountryCode": "254"},
            {"answered": False, "hangup_cause": "USER_BUSY", "call_state": "NotAnswered", "duration_s": 0,
             "amount": Decimal("0")},
            id="final-not-answered",
        ),
        pytest.param(
            {"isActive": "0", "status": "NotAnswered"},
            {"call_state": "NotAnswered", "answered": False},
            id="status-only",
        ),
        pytest.param(
            {"isActive": "0", "durationInSeconds": "12.0"},
            {"duration_s": 12, "answered": True},
            id="duration-decimal",
        ),
        pytest.param(
            {"isActive": "0"}, {"answered": None, "duration_s": None, "amount": None}, id="final-bare"
        ),
        pytest.param(
            {"recordingUrl": "None", "currencyCode": "None"},
            {"recording_url": None, "currency": None},
            id="none-words",
        ),
        pytest.param({"unknownField": "x" * 5000}, {"is_active": True}, id="unknown-fields-ignored"),
    ],
)
def test_parse_good_callbacks(overrides: dict[str, str | None], expected: dict[str, object]) -> None:
    callback = parse_voice_callback(callback_form(**overrides))
    assert isinstance(callback, VoiceCallback)
    assert callback.session_id == "ATVId_5e7c1b2a9f"
    for name, value in expected.items():
        assert getattr(callback, name) == value, name
    if "phone" not in expected:
        assert callback.phone == FARMER
    if "service_number" not in expected:
        assert callback.service_number == SUGU


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"sessionId": None}, "missing field: sessionId", id="missing-session"),
        pytest.param({"sessionId": "  "}, "missing field: sessionId", id="blank-session"),
        pytest.param({"sessionId": "None"}, "missing field: sessionId", id="session-none-word"),
        pytest.param({"sessionId": "AT VId"}, "sessionId", id="session-space"),
        pytest.param({"sessionId": "A" * 101}, "field too long: sessionId", id="session-huge"),
        pytest.param({"sessionId": "ATVId\x00x"}, "control character in field: sessionId", id="session-nul"),
        pytest.param({"isActive": None}, "missing field: isActive", id="missing-active"),
        pytest.param({"isActive": "yes"}, "isActive", id="active-word"),
        pytest.param({"direction": None}, "missing field: direction", id="missing-direction"),
        pytest.param({"direction": "sideways"}, "direction", id="bad-direction"),
        pytest.param({"callerNumber": None}, "missing field: callerNumber", id="missing-caller"),
        pytest.param({"callerNumber": "12"}, "callerNumber", id="caller-short"),
        pytest.param({"callerNumber": "+223abc"}, "callerNumber", id="caller-letters"),
        pytest.param({"callerNumber": "+2237612\x003456"}, "control character in field", id="caller-nul"),
        pytest.param({"callerNumber": "+" + "7" * 40}, "field too long: callerNumber", id="caller-huge"),
        pytest.param({"destinationNumber": "sip:x@y"}, "destinationNumber", id="destination-not-phone"),
        pytest.param({"dtmfDigits": "1a"}, "dtmfDigits", id="digits-letters"),
        pytest.param({"dtmfDigits": "1 2"}, "dtmfDigits", id="digits-space"),
        pytest.param({"dtmfDigits": "1" * 65}, "field too long: dtmfDigits", id="digits-huge"),
        pytest.param({"dtmfDigits": "1\x00"}, "control character", id="digits-nul"),
        pytest.param({"durationInSeconds": "-3"}, "durationInSeconds", id="duration-negative"),
        pytest.param({"durationInSeconds": "ten"}, "durationInSeconds", id="duration-word"),
        pytest.param({"amount": "1e9"}, "amount", id="amount-exponent"),
        pytest.param({"amount": "NaN"}, "amount", id="amount-nan"),
        pytest.param({"currencyCode": "xof"}, "currencyCode", id="currency-lowercase"),
        pytest.param({"recordingUrl": "ftp://x/y.mp3"}, "recordingUrl", id="recording-not-http"),
        pytest.param({"recordingUrl": "https://x/" + "a" * 2000}, "field too long", id="recording-huge"),
        pytest.param({"hangupCause": "<script>"}, "hangupCause", id="cause-markup"),
        pytest.param({"callSessionState": "A" * 65}, "field too long: callSessionState", id="state-huge"),
        pytest.param({"clientRequestId": "a b"}, "clientRequestId", id="request-id-space"),
    ],
)
def test_parse_malformed_callbacks(overrides: dict[str, str | None], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason.replace("*", r"\*")):
        parse_voice_callback(callback_form(**overrides))


# --- responses: the contract's rules and the XML -------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: VoiceResponse(()), id="empty"),
        pytest.param(lambda: VoiceResponse([Hangup()]), id="list-not-tuple"),  # type: ignore[arg-type]
        pytest.param(lambda: VoiceResponse.of(Reject(), Hangup()), id="reject-not-alone"),
        pytest.param(lambda: VoiceResponse.of(Say("a"), Reject()), id="reject-after-say"),
        pytest.param(lambda: VoiceResponse.of(Redirect("https://x/y"), Say("a")), id="after-redirect"),
        pytest.param(lambda: VoiceResponse.of(Hangup(), Say("a")), id="after-hangup"),
        pytest.param(lambda: VoiceResponse.of(*[Say("a")] * 21), id="too-many"),
        pytest.param(lambda: VoiceResponse.of("Hello"), id="not-an-action"),  # type: ignore[arg-type]
        pytest.param(lambda: GetDigits((Say("a"), Say("b"))), id="two-prompts"),  # type: ignore[arg-type]
        pytest.param(lambda: GetDigits(GetDigits(Say("a"))), id="nested"),  # type: ignore[arg-type]
        pytest.param(lambda: GetDigits(Say("a"), num_digits=0), id="zero-digits"),
        pytest.param(lambda: GetDigits(Say("a"), num_digits=True), id="bool-digits"),
        pytest.param(lambda: GetDigits(Say("a"), timeout_s=0), id="zero-timeout"),
        pytest.param(lambda: GetDigits(Say("a"), finish_on_key="a"), id="finish-letter"),
        pytest.param(lambda: GetDigits(Say("a"), finish_on_key="##"), id="finish-two-keys"),
        pytest.param(lambda: GetDigits(Say("a"), callback_url="/voice"), id="relative-callback"),
        pytest.param(lambda: Play("/audio/a.wav"), id="play-relative"),
        pytest.param(lambda: Play("javascript:alert(1)"), id="play-script"),
        pytest.param(lambda: Play("https://x/a b.wav"), id="play-space"),
        pytest.param(lambda: Play("https://x/" + "a" * 2000), id="play-huge"),
        pytest.param(lambda: Redirect("https://x/\nHost: y"), id="redirect-newline"),
        pytest.param(lambda: Say(" "), id="say-blank"),
        pytest.param(lambda: Say("a" * 1001), id="say-huge"),
        pytest.param(lambda: Say("a\x00b"), id="say-nul"),
        pytest.param(lambda: Say("a", language="French"), id="say-language-name"),
    ],
)
def test_invalid_responses_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidVoiceResponse):
        build()


def _xml(*actions: object, **kw: object) -> str:
    return render(VoiceResponse(tuple(actions)), **kw)  # type: ignore[arg-type]


PROLOG = '<?xml version="1.0" encoding="UTF-8"?>'


@pytest.mark.parametrize(
    ("actions", "body"),
    [
        pytest.param((Play("https://s.example/a.wav"),), '<Play url="https://s.example/a.wav" />', id="play"),
        pytest.param((Say("Bonjour"),), "<Say>Bonjour</Say>", id="say"),
        pytest.param((Say("""a<b & "c" 'd'"""),), """<Say>a&lt;b &amp; "c" 'd'</Say>""", id="say-escaped"),
        pytest.param(
            (Play('https://s.example/a.wav?x=1&y="2"<'),),
            '<Play url="https://s.example/a.wav?x=1&amp;y=&quot;2&quot;&lt;" />',
            id="url-escaped",
        ),
        pytest.param(
            (
                GetDigits(
                    Play("https://s.example/m.wav"),
                    num_digits=1,
                    timeout_s=8,
                    finish_on_key="#",
                    callback_url="https://g.example/v?s=1&t=2",
                ),
            ),
            '<GetDigits numDigits="1" timeout="8" finishOnKey="#" '
            'callbackUrl="https://g.example/v?s=1&amp;t=2">'
            '<Play url="https://s.example/m.wav" /></GetDigits>',
            id="get-digits-all",
        ),
        pytest.param((GetDigits(Say("Ok")),), "<GetDigits><Say>Ok</Say></GetDigits>", id="get-digits-bare"),
        pytest.param((Reject(),), "<Reject />", id="reject"),
        pytest.param(
            (Say("a"), Redirect("https://g.example/v?a=1&b=2")),
            "<Say>a</Say><Redirect>https://g.example/v?a=1&amp;b=2</Redirect>",
            id="redirect",
        ),
        pytest.param((Say("a"), Hangup()), "<Say>a</Say>", id="hangup-ends-the-list"),
        pytest.param((Hangup(),), "", id="hangup-alone"),
    ],
)
def test_render(actions: tuple[object, ...], body: str) -> None:
    xml = _xml(*actions)
    expected = PROLOG + (f"<Response>{body}</Response>" if body else "<Response />")
    assert xml == expected
    ET.fromstring(xml)  # well-formed


def test_render_maps_a_say_language_to_a_configured_voice() -> None:
    xml = _xml(Say("Bonjour", language="fr"), Say("I ni ce", language="bm"), voices={"fr": "woman"})
    assert xml == PROLOG + '<Response><Say voice="woman">Bonjour</Say><Say>I ni ce</Say></Response>'


def test_escaped_text_and_urls_come_back_unchanged() -> None:
    nasty = """<Say>&amp; "quoted" 'single' ]]> ɛɔ"""
    url = "https://s.example/p?a=1&b=<2>&c='3'"
    root = ET.fromstring(_xml(Say(nasty), GetDigits(Play(url), callback_url=url)))
    say, get_digits = list(root)
    assert say.text == nasty
    assert [child.tag for child in get_digits] == ["Play"]  # one prompt
    assert get_digits[0].get("url") == url and get_digits.get("callbackUrl") == url


# --- what the outbound caller makes of answers ---------------------------------------------------------


def test_refused_connection_is_safe_to_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    base_url = f"http://127.0.0.1:{port}"
    at = AfricasTalkingCaller(username="sugu", api_key="key", caller_id=SUGU, base_url=base_url)
    try:
        with pytest.raises(TransportError) as raised:
            at.call(FARMER, client_request_id="alert-7")
    finally:
        at.close()
    assert (raised.value.kind, raised.value.reached, raised.value.retryable) == ("transport", False, True)


def _mock_caller(handler: Callable[[httpx.Request], httpx.Response]) -> AfricasTalkingCaller:
    transport = httpx.MockTransport(handler)
    return AfricasTalkingCaller(username="sugu", api_key="k", caller_id=SUGU, transport=transport)


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        pytest.param(httpx.Response(201, text="<html>"), "ambiguous", id="not-json"),
        pytest.param(httpx.Response(201, json={"errorMessage": "None"}), "ambiguous", id="no-entries"),
        pytest.param(httpx.Response(201, json={"entries": ["x"]}), "ambiguous", id="entry-not-object"),
        pytest.param(
            httpx.Response(201, json={"entries": [{"phoneNumber": FARMER, "status": "Ringing?"}]}),
            "ambiguous",
            id="unknown-status",
        ),
        pytest.param(
            httpx.Response(200, json={"entries": [], "errorMessage": "Invalid callerId"}),
            "rejected",
            id="refused",
        ),
    ],
)
def test_unexpected_answers(answer: httpx.Response, kind: str) -> None:
    at = _mock_caller(lambda request: answer)
    with pytest.raises(SendError) as raised:
        at.call(FARMER, client_request_id="a")
    assert raised.value.kind == kind


def test_request_shape_and_default_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        entry = {"phoneNumber": FARMER, "status": "Queued", "sessionId": "None"}
        return httpx.Response(201, json={"entries": [entry], "errorMessage": "None"})

    result = _mock_caller(handler).call(FARMER, client_request_id="alert-9")
    assert result.session_id is None  # queued, but the platform gave no id
    [request] = seen
    assert str(request.url) == "https://voice.africastalking.com/call"
    assert request.headers["apiKey"] == "k" and request.headers["accept"] == "application/json"
    assert httpx.QueryParams(request.content.decode()) == httpx.QueryParams(
        {"username": "sugu", "from": SUGU, "to": FARMER, "clientRequestId": "alert-9"}
    )


# --- the outbound caller against the fake call API -------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeATVoice, str]]:
    fake = FakeATVoice()
    with serve_in_thread(create_fake_at_voice_app(fake)) as base_url:
        yield fake, base_url


@pytest.fixture
def fake(server: tuple[FakeATVoice, str]) -> FakeATVoice:
    server[0].reset(config=True)
    return server[0]


@pytest.fixture
def caller(server: tuple[FakeATVoice, str], fake: FakeATVoice) -> Iterator[AfricasTalkingCaller]:
    at = AfricasTalkingCaller(username="sugu", api_key="key", caller_id=SUGU, base_url=server[1], timeout_s=5)
    yield at
    at.close()


def test_call_is_placed_and_recorded(caller: AfricasTalkingCaller, fake: FakeATVoice) -> None:
    result = caller.call(FARMER, client_request_id="alert-7")

    assert result.phone == FARMER and result.client_request_id == "alert-7"
    assert result.provider_status == "Queued"
    assert result.session_id and result.session_id.startswith("ATVId_")
    [request] = fake.requests()
    sent = (request["username"], request["from"], request["to"], request["clientRequestId"])
    assert sent == ("sugu", SUGU, [FARMER], "alert-7")
    assert request["api_key_ok"] and request["http_status"] == 201
    [placed] = fake.placed_calls()
    assert (placed["sessionId"], placed["to"]) == (result.session_id, FARMER)
    assert placed["clientRequestId"] == "alert-7"


def test_national_number_is_called_in_e164(caller: AfricasTalkingCaller, fake: FakeATVoice) -> None:
    assert caller.call("76 12 34 56", client_request_id="a").phone == FARMER
    assert fake.requests()[0]["to"] == [FARMER]


@pytest.mark.parametrize(
    ("config", "kind", "error"),
    [
        pytest.param({"fail_next": [401]}, "account", AccountProblem, id="http-401"),
        pytest.param({"fail_next": [403]}, "account", AccountProblem, id="http-403"),
        pytest.param({"api_key": "another"}, "account", AccountProblem, id="wrong-key"),
        pytest.param({"fail_next": [429]}, "throttled", Throttled, id="http-429"),
        pytest.param({"fail_next": [400]}, "rejected", Rejected, id="http-400"),
        pytest.param({"fail_next": [500]}, "transport", TransportError, id="http-500"),
        pytest.param({"fail_next": [503]}, "transport", TransportError, id="http-503"),
        pytest.param({"statuses": {FARMER: "InvalidPhoneNumber"}}, "rejected", Rejected, id="invalid-number"),
        pytest.param({"statuses": {FARMER: "DestinationNotSupported"}}, "rejected", Rejected, id="no-route"),
        pytest.param({"statuses": {FARMER: "InsufficientCredit"}}, "account", AccountProblem, id="no-credit"),
    ],
)
def test_call_errors_are_sorted_into_kinds(
    caller: AfricasTalkingCaller,
    fake: FakeATVoice,
    config: dict[str, object],
    kind: str,
    error: type[SendError],
) -> None:
    fake.configure(**config)
    with pytest.raises(error) as raised:
        caller.call(FARMER, client_request_id="alert-7")
    assert raised.value.kind == kind
    assert fake.placed_calls() == []
    if error is Throttled:
        assert raised.value.retry_after == 1.0  # type: ignore[attr-defined]


def test_hung_request_is_ambiguous(server: tuple[FakeATVoice, str], fake: FakeATVoice) -> None:
    fake.configure(hang_next=1, hang_s=3)
    at = AfricasTalkingCaller(
        username="sugu", api_key="key", caller_id=SUGU, base_url=server[1], timeout_s=0.3
    )
    try:
        with pytest.raises(TransportError) as raised:
            at.call(FARMER, client_request_id="alert-7")
    finally:
        at.close()
    # The platform got the request and may be ringing the farmer: not to be sent again blindly.
    assert (raised.value.kind, raised.value.reached, raised.value.retryable) == ("ambiguous", True, False)
    assert len(fake.placed_calls()) == 1


def test_not_a_number_is_rejected_before_any_request(caller: AfricasTalkingCaller, fake: FakeATVoice) -> None:
    with pytest.raises(Rejected):
        caller.call("12", client_request_id="alert-7")
    with pytest.raises(ValueError):
        caller.call(FARMER, client_request_id="has space")
    assert fake.requests() == []


def test_fake_configuration_is_checked(server: tuple[FakeATVoice, str], fake: FakeATVoice) -> None:
    with pytest.raises(FakeConfigError):
        fake.configure(statuses={FARMER: "Maybe"})
    with pytest.raises(FakeConfigError):
        fake.configure(colour="blue")
    with httpx.Client(base_url=server[1]) as http:
        assert http.post("/_fake/config", json={"fail_next": [200]}).status_code == 400
        assert http.post("/_fake/config", json={"fail_next": [502]}).json()["fail_next"] == [502]
        form, key = {"username": "u", "from": SUGU, "to": FARMER}, {"apiKey": "k"}
        assert http.post("/call", data=form, headers=key).status_code == 502
        ok = http.post("/call", data=form | {"to": f"{FARMER},12"}, headers=key)
        assert ok.status_code == 201 and ok.headers["content-type"] == "application/json"
        assert [e["status"] for e in ok.json()["entries"]] == ["Queued", "InvalidPhoneNumber"]
        assert ok.json()["entries"][1]["sessionId"] == "None"
        assert http.post("/call", data=form | {"from": ""}, headers=key).status_code == 400
        assert http.post("/call", data=form).status_code == 401
        assert len(http.get("/_fake/calls").json()) == 1
        assert http.delete("/_fake/requests").json() == {"reset": True}
        assert http.get("/_fake/requests").json() == []


# --- the fake call driver ----------------------------------------------------------------------------------


def test_rendered_xml_reads_back_through_the_fake() -> None:
    response = VoiceResponse.of(
        Say("x & y"),
        GetDigits(Say("press"), num_digits=2, timeout_s=5, finish_on_key="*", callback_url="https://g.ex"),
        Play("https://s.example/a.mp3"),
        Redirect("https://g.example/r"),
    )
    assert parse_at_response(render(response)) == response.actions


def make_wav(seconds: float = 0.2, *, rate: int = 8000) -> bytes:
    frames = int(seconds * rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        tone = (int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(frames))
        out.writeframes(b"".join(struct.pack("<h", sample) for sample in tone))
    return buffer.getvalue()


MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes([0xFF, 0xFB, 0x90, 0x64]) + b"\x00" * 400
WAV = make_wav()

AUDIO: dict[str, tuple[int, bytes, str]] = {
    "menu.wav": (200, WAV, "audio/wav"),
    "price.wav": (200, make_wav(0.5), "audio/x-wav"),
    "bye.mp3": (200, MP3, "audio/mpeg"),
    "page.html": (200, b"<html><body>Not found</body></html>", "text/html; charset=utf-8"),
    "text-as-wav": (200, b"this is not audio at all, only text", "audio/wav"),
    "empty.wav": (200, make_wav(0), "audio/wav"),
    "truncated.wav": (200, WAV[:30], "audio/wav"),
    "garbage.mp3": (200, b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 100, "audio/mpeg"),
    "missing.wav": (404, b"Not Found", "text/plain"),
}

Script = Callable[[VoiceCallback, str], VoiceResponse]
MENU = GetDigits(
    Play(f"{BASE}/audio/menu.wav"), num_digits=1, timeout_s=10, callback_url=f"{BASE}/voice/menu"
)


def voice_app(script: Script) -> tuple[FastAPI, list[VoiceCallback]]:
    """A voice endpoint as the gateway will have one: every form parsed with the adapter, every
    answer rendered by it; `script` decides the answer from the callback and the path."""
    app = FastAPI()
    seen: list[VoiceCallback] = []

    @app.post("/voice/{step:path}")
    @app.post("/voice")
    async def voice(request: Request, step: str = "") -> Response:
        form = await request.form()
        callback = parse_voice_callback({k: v for k, v in form.items() if isinstance(v, str)})
        seen.append(callback)
        if not callback.is_active:
            return PlainTextResponse("")
        return PlainTextResponse(render(script(callback, step)), media_type=RESPONSE_MEDIA_TYPE)

    @app.get("/audio/{name}")
    async def audio(name: str) -> Response:
        status, body, media = AUDIO[name]
        return Response(body, status_code=status, media_type=media)

    return app, seen


def menu(callback: VoiceCallback, step: str) -> VoiceResponse:
    """Main menu: 1 hears a price and comes back; silence hears goodbye; any other key hangs up."""
    if step == "":
        return VoiceResponse.of(
            MENU,
            Play(f"{BASE}/audio/bye.mp3"),
            Say("Au revoir"),
        )
    if callback.digits == "1":
        return VoiceResponse.of(Play(f"{BASE}/audio/price.wav"), Redirect(f"{BASE}/voice"))
    return VoiceResponse.of(Hangup())


@pytest.fixture
def menu_app() -> Iterator[tuple[TestClient, list[VoiceCallback]]]:
    app, seen = voice_app(menu)
    with TestClient(app, base_url=BASE) as client:
        yield client, seen


def test_a_call_through_the_menu(menu_app: tuple[TestClient, list[VoiceCallback]]) -> None:
    client, seen = menu_app
    call = FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU)

    first = call.start()
    assert first.actions[0] == MENU
    assert call.state == "waiting" and call.waiting_for == first.actions[0]
    assert (first.form["isActive"], first.form["direction"]) == ("1", "Inbound")
    assert "dtmfDigits" not in first.form

    call.press("1")  # price, then the redirect back to the menu
    assert [turn.url for turn in call.transcript] == ["/voice", f"{BASE}/voice/menu", f"{BASE}/voice"]
    assert call.transcript[1].form["dtmfDigits"] == "1"
    assert call.transcript[1].actions == (Play(f"{BASE}/audio/price.wav"), Redirect(f"{BASE}/voice"))
    assert call.state == "waiting"

    final = call.silence()  # the rest of the menu response: goodbye, then the platform hangs up
    assert call.state == "ended" and call.said == ["Au revoir"]
    assert [(p.url.rsplit("/", 1)[1], p.kind) for p in call.played] == [
        ("menu.wav", "wav"), ("price.wav", "wav"), ("menu.wav", "wav"), ("bye.mp3", "mp3")
    ]
    assert final.actions == () and final.form["isActive"] == "0"
    ending = (final.form["callSessionState"], final.form["hangupCause"], final.form["currencyCode"])
    assert ending == ("Completed", "NORMAL_CLEARING", "XOF")

    # Every form the fake sent is one the adapter reads, with one session id throughout.
    assert len(seen) == 4 and {c.session_id for c in seen} == {call.session_id}
    assert [c.digits for c in seen] == [None, "1", None, None]
    assert seen[-1].answered is True and seen[-1].duration_s == 30 and seen[-1].amount == Decimal("50")
    with pytest.raises(FakeCallError, match="ended"):
        call.press("1")


def test_caller_hangs_up(menu_app: tuple[TestClient, list[VoiceCallback]]) -> None:
    client, seen = menu_app
    call = FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU, price_per_minute=Decimal("35"))
    call.start()
    final = call.hang_up(95)
    assert final.form["durationInSeconds"] == "95" and final.form["amount"] == "70"
    assert seen[-1].is_active is False and seen[-1].duration_s == 95 and seen[-1].answered is True


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("page.html", "not audio", id="html-page"),
        pytest.param("text-as-wav", "neither WAVE nor MP3", id="text-served-as-audio"),
        pytest.param("empty.wav", "no audio data", id="wav-without-frames"),
        pytest.param("truncated.wav", "no audio data", id="wav-truncated"),
        pytest.param("garbage.mp3", "neither WAVE nor MP3", id="id3-then-garbage"),
        pytest.param("missing.wav", "HTTP 404", id="not-found"),
    ],
)
def test_a_play_url_that_is_not_audio_fails_the_call(name: str, reason: str) -> None:
    app, _ = voice_app(lambda callback, step: VoiceResponse.of(Say("Prix"), Play(f"{BASE}/audio/{name}")))
    with TestClient(app, base_url=BASE) as client:
        with pytest.raises(FakeCallError, match=reason):
            FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU).start()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(WAV, "wav", id="wav"),
        pytest.param(MP3, "mp3", id="mp3-id3"),
        pytest.param(MP3[10:], "mp3", id="mp3-bare"),
    ],
)
def test_audio_kinds(data: bytes, kind: str) -> None:
    assert audio_kind(data) == kind


@pytest.mark.parametrize(
    ("get_digits", "keys", "sent"),
    [
        pytest.param(GetDigits(Say("a")), "123", "1", id="no-limits-first-key"),
        pytest.param(GetDigits(Say("a"), num_digits=2), "123", "12", id="num-digits"),
        pytest.param(GetDigits(Say("a"), finish_on_key="#"), "125#", "125", id="finish-key"),
        pytest.param(GetDigits(Say("a"), finish_on_key="#"), "#", "", id="finish-key-alone"),
        pytest.param(GetDigits(Say("a"), num_digits=4, finish_on_key="#"), "12#", "12", id="finish-first"),
        pytest.param(GetDigits(Say("a"), num_digits=2, finish_on_key="#"), "123#", "12", id="count-first"),
        pytest.param(GetDigits(Say("a"), finish_on_key="*"), "0#*", "0#", id="hash-is-a-key-when-star-ends"),
    ],
)
def test_digits_sent(get_digits: GetDigits, keys: str, sent: str) -> None:
    assert digits_sent(get_digits, keys) == sent


@pytest.mark.parametrize(
    "get_digits",
    [
        pytest.param(GetDigits(Say("a"), num_digits=3), id="too-few"),
        pytest.param(GetDigits(Say("a"), finish_on_key="#"), id="no-finish-key"),
    ],
)
def test_input_cut_short_is_not_guessed(get_digits: GetDigits) -> None:
    with pytest.raises(FakeCallError):
        digits_sent(get_digits, "12")


def _script_app(answer: str) -> TestClient:
    app = FastAPI()

    @app.post("/voice")
    async def voice() -> Response:
        return PlainTextResponse(answer)

    return TestClient(app, base_url=BASE)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param("Welcome", "not XML", id="not-xml"),
        pytest.param("<Answer/>", "not <Response>", id="wrong-root"),
        pytest.param("<Response><Hangup/></Response>", "no action <Hangup>", id="no-hangup-action"),
        pytest.param("<Response><Dial phoneNumbers='+22370000000'/></Response>", "not simulate", id="dial"),
        pytest.param("<Response><Play src='https://s/a.wav'/></Response>", "does not know", id="attribute"),
        pytest.param(
            "<Response><GetDigits><Say>a</Say><Say>b</Say></GetDigits></Response>",
            "exactly one",
            id="two-prompts",
        ),
        pytest.param("<Response><GetDigits/></Response>", "exactly one", id="no-prompt"),
        pytest.param(
            "<Response><GetDigits numDigits='x'><Say>a</Say></GetDigits></Response>",
            "whole number",
            id="num-digits-x",
        ),
        pytest.param("<Response><Reject/><Say>a</Say></Response>", "only action", id="reject-not-alone"),
        pytest.param("<Response><Play url='/audio/a.wav'/></Response>", "absolute", id="relative-play"),
        pytest.param("<!DOCTYPE r [<!ENTITY e 'x'>]><Response/>", "DTD", id="doctype"),
    ],
)
def test_answers_africas_talking_would_not_take_fail_loudly(answer: str, reason: str) -> None:
    with _script_app(answer) as client:
        call = FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU)
        with pytest.raises(FakeCallError, match=reason):
            call.start()


def test_rejected_call_is_never_answered() -> None:
    app, seen = voice_app(lambda callback, step: VoiceResponse.of(Reject()))
    with TestClient(app, base_url=BASE) as client:
        call = FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU)
        final = call.start()
    assert call.state == "ended" and call.played == [] and call.answered is False
    ending = (final.form["durationInSeconds"], final.form["amount"], final.form["hangupCause"])
    assert ending == ("0", "0", "CALL_REJECTED")
    assert seen[-1].answered is False


def test_reject_after_answering_fails() -> None:
    def script(callback: VoiceCallback, step: str) -> VoiceResponse:
        if step == "":
            return VoiceResponse.of(Say("Bonjour"), Redirect(f"{BASE}/voice/next"))
        return VoiceResponse.of(Reject())

    app, _ = voice_app(script)
    with TestClient(app, base_url=BASE) as client:
        with pytest.raises(FakeCallError, match="already answered"):
            FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU).start()


def test_redirect_loop_fails() -> None:
    app, _ = voice_app(lambda callback, step: VoiceResponse.of(Redirect(f"{BASE}/voice")))
    with TestClient(app, base_url=BASE) as client:
        with pytest.raises(FakeCallError, match="redirects"):
            FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU, max_redirects=3).start()


def test_driver_misuse_is_refused(menu_app: tuple[TestClient, list[VoiceCallback]]) -> None:
    client, _ = menu_app
    call = FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU)
    with pytest.raises(FakeCallError, match="new, not waiting"):
        call.press("1")
    with pytest.raises(FakeCallError, match="only an outbound call"):
        call.unanswered()
    call.start()
    with pytest.raises(FakeCallError, match="keypad"):
        call.press("1a")
    with pytest.raises(FakeCallError, match="not new"):
        call.start()
    with pytest.raises(ValueError):
        FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU, direction="sideways")


def test_gateway_error_fails_the_call() -> None:
    app = FastAPI()

    @app.post("/voice")
    async def voice() -> Response:
        return PlainTextResponse("secret missing", status_code=403)

    with TestClient(app, base_url=BASE) as client:
        with pytest.raises(FakeCallError, match="HTTP 403"):
            FakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU).start()


def test_async_driver_over_the_asgi_transport() -> None:
    app, seen = voice_app(menu)

    async def run() -> AsyncFakeVoiceCall:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            call = AsyncFakeVoiceCall(client, "/voice", caller=FARMER, destination=SUGU)
            await call.start()
            await call.press("1")
            await call.hang_up(20)
            return call

    # A thread of its own: the browser tests' Playwright (sync API) keeps an event loop running in
    # the test thread for the whole session, and asyncio.run() refuses to start a second one there.
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(asyncio.run, run()).result()
    assert call.state == "ended"
    assert [p.url.rsplit("/", 1)[1] for p in call.played] == ["menu.wav", "price.wav", "menu.wav"]
    assert [c.digits for c in seen] == [None, "1", None, None] and seen[-1].duration_s == 20


def test_outbound_call_from_placing_to_answer(caller: AfricasTalkingCaller, fake: FakeATVoice) -> None:
    placed = caller.call(FARMER, client_request_id="alert-31")
    app, seen = voice_app(menu)
    with TestClient(app, base_url=BASE) as client:
        call = fake.call_driver(client, "/voice")
        assert isinstance(call, FakeVoiceCall)
        first = call.start()
        call.press("0")  # the menu's other branch: Hangup, so the platform ends the call
    assert first.form["direction"] == "Outbound" and first.form["clientRequestId"] == "alert-31"
    assert call.session_id == placed.session_id and call.state == "ended"
    first_seen = seen[0]
    assert (first_seen.direction, first_seen.phone, first_seen.service_number) == (OUTBOUND, FARMER, SUGU)
    assert first_seen.client_request_id == "alert-31"
    assert seen[-1].is_active is False and seen[-1].answered is True


def test_outbound_call_not_answered(caller: AfricasTalkingCaller, fake: FakeATVoice) -> None:
    caller.call(FARMER, client_request_id="alert-32")
    app, seen = voice_app(menu)
    with TestClient(app, base_url=BASE) as client:
        final = fake.call_driver(client, "/voice").unanswered("USER_BUSY")  # type: ignore[union-attr]
    assert final.form["hangupCause"] == "USER_BUSY"
    [only] = seen
    assert (only.is_active, only.answered, only.duration_s) == (False, False, 0)
    assert only.client_request_id == "alert-32"


def test_call_driver_needs_a_placed_call(fake: FakeATVoice) -> None:
    with pytest.raises(FakeCallError, match="no placed call"):
        fake.call_driver(httpx.Client(), "/voice")
