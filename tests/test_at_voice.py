"""Africa's Talking Voice: the callback parse, the XML, and what the outbound caller makes of the
platform's answers."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Callable

import httpx
import pytest

from gateway.aggregators.africastalking import BadRequest
from gateway.aggregators.africastalking_voice import (
    AfricasTalkingCaller,
    parse_voice_callback,
    render,
)
from gateway.aggregators.calling import (
    INBOUND,
    OUTBOUND,
    GetDigits,
    Hangup,
    InvalidVoiceResponse,
    Play,
    Redirect,
    Reject,
    Say,
    SendError,
    TransportError,
    VoiceCallback,
    VoiceResponse,
)

FARMER = "+22376123456"
SUGU = "+22320220000"


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
