"""Africa's Talking Voice: its callback form, its XML and its call API, turned into calling.py's types.

Callback (POST, form, to the URL set for our number, and to a GetDigits callbackUrl or a Redirect
URL): isActive (1, then 0 on the final notification, which carries durationInSeconds,
currencyCode and amount and expects no answer), sessionId (the same for the whole call),
direction, callerNumber (the phone user, in international format), destinationNumber (our
number), dtmfDigits (after a GetDigits), recordingUrl; on outbound calls also clientRequestId,
callSessionState, status and hangupCause (why a call was not answered); "None" stands for absent.

Answer: XML `<Response>` holding Say, Play url=..., GetDigits (numDigits, timeout, finishOnKey,
callbackUrl; one Say or Play inside), Redirect (the URL as text), Reject (alone). There is no
hang-up action: the call ends when the actions run out.

Outbound: POST {voice base}/call, form username, from (our number), to, clientRequestId; header
apiKey. Answer JSON {"entries": [{"phoneNumber", "status": "Queued" | ..., "sessionId"}],
"errorMessage"}.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Mapping

from gateway.aggregators.africastalking import BadRequest, raise_for_status
from gateway.aggregators.calling import (
    INBOUND,
    MAX_URL,
    OUTBOUND,
    AccountProblem,
    CallResult,
    GetDigits,
    Hangup,
    Play,
    Redirect,
    Reject,
    Rejected,
    Say,
    TransportError,
    VoiceCallback,
    VoiceResponse,
)
from gateway.core.phones import InvalidPhone, mask, parse_phone

if TYPE_CHECKING:
    # Imported at the first call placed (AfricasTalkingCaller._client): with its command line
    # (click, rich, pygments) httpx added ~6 MB to the started server, which a server that places no call
    # should not carry.
    import httpx

PROVIDER = "africastalking"
VOICE_URL = "https://voice.africastalking.com"
SANDBOX_VOICE_URL = "https://voice.sandbox.africastalking.com"  # the official SDK's, for username "sandbox"
CALL_PATH = "/call"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
RESPONSE_MEDIA_TYPE = "text/plain"  # what Africa's Talking's own samples answer with

MAX_SESSION_ID = 100
MAX_CLIENT_REQUEST_ID = 100
MAX_DIGITS = 64
MAX_WORD = 64

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: ids
_DIGITS = re.compile(r"[0-9*#]+")
_WORD = re.compile(r"[A-Za-z0-9_]+")  # call states, hangup causes
_CURRENCY = re.compile(r"[A-Z]{3}")
_DURATION = re.compile(r"\d{1,9}(?:\.0+)?")
_AMOUNT = re.compile(r"\d{1,12}(?:\.\d{1,10})?")

_DIRECTIONS = {"inbound": INBOUND, "outbound": OUTBOUND}
_ACTIVE = {"1": True, "0": False}

# How an outbound call that never connected is reported (callSessionState/status, hangupCause).
NOT_ANSWERED_STATES = frozenset({"NotAnswered", "Failed", "Rejected"})
NOT_ANSWERED_CAUSES = frozenset(
    {
        "CALL_REJECTED",
        "USER_BUSY",
        "NO_ANSWER",
        "NO_USER_RESPONSE",
        "ORIGINATOR_CANCEL",
        "LOSE_RACE",
        "RECOVERY_ON_TIMER_EXPIRE",
        "NORMAL_TEMPORARY_FAILURE",
        "UNALLOCATED_NUMBER",
        "SUBSCRIBER_ABSENT",
        "INVALID_NUMBER_FORMAT",
    }
)


# -- callbacks ------------------------------------------------------------------------------------


def _text(form: Mapping[str, str], name: str, *, limit: int, required: bool = False) -> str:
    value = form.get(name)
    if value is None:
        if required:
            raise BadRequest(f"missing field: {name}")
        return ""
    value = str(value)
    if len(value) > limit:
        raise BadRequest(f"field too long: {name}")
    if _CONTROL.search(value):
        raise BadRequest(f"control character in field: {name}")
    value = value.strip()
    if value == "None":  # how Africa's Talking writes an absent value
        value = ""
    if required and not value:
        raise BadRequest(f"missing field: {name}")
    return value


def _matching(form: Mapping[str, str], name: str, pattern: re.Pattern[str], limit: int, **kw: bool) -> str:
    value = _text(form, name, limit=limit, **kw)
    if value and not pattern.fullmatch(value):
        raise BadRequest(f"{name}: unexpected characters")
    return value


def _phone_field(form: Mapping[str, str], name: str, *, required: bool) -> str | None:
    raw = _text(form, name, limit=32, required=required)
    if not raw:
        return None
    try:
        return parse_phone(raw)
    except InvalidPhone as exc:
        raise BadRequest(f"{name}: {exc}") from None


def _answered(is_active: bool, state: str, cause: str, duration_s: int | None) -> bool | None:
    if is_active:
        return None
    if state in NOT_ANSWERED_STATES or cause in NOT_ANSWERED_CAUSES:
        return False
    if duration_s is not None:
        return duration_s > 0
    return True if state == "Completed" else None


def parse_voice_callback(form: Mapping[str, str]) -> VoiceCallback:
    """Our `VoiceCallback` from Africa's Talking's form, or BadRequest with the reason."""
    session_id = _matching(form, "sessionId", _TOKEN, MAX_SESSION_ID, required=True)
    raw_active = _text(form, "isActive", limit=8, required=True)
    if raw_active not in _ACTIVE:
        raise BadRequest(f"isActive: expected 1 or 0, got {raw_active!r}")
    raw_direction = _text(form, "direction", limit=16, required=True)
    direction = _DIRECTIONS.get(raw_direction.lower())
    if direction is None:
        raise BadRequest(f"direction: unknown {raw_direction!r}")
    phone = _phone_field(form, "callerNumber", required=True)
    assert phone is not None  # required=True
    recording_url = _text(form, "recordingUrl", limit=MAX_URL)
    if recording_url and not recording_url.startswith(("https://", "http://")):
        raise BadRequest("recordingUrl: not an http(s) URL")
    raw_duration = _matching(form, "durationInSeconds", _DURATION, 20)
    raw_amount = _matching(form, "amount", _AMOUNT, 32)
    try:
        amount = Decimal(raw_amount) if raw_amount else None
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise BadRequest("amount: not a number") from None
    duration_s = int(Decimal(raw_duration)) if raw_duration else None
    state = _matching(form, "callSessionState", _WORD, MAX_WORD) or _matching(form, "status", _WORD, MAX_WORD)
    cause = _matching(form, "hangupCause", _WORD, MAX_WORD)
    is_active = _ACTIVE[raw_active]
    return VoiceCallback(
        session_id=session_id,
        direction=direction,
        phone=phone,
        service_number=_phone_field(form, "destinationNumber", required=False),
        is_active=is_active,
        digits=_matching(form, "dtmfDigits", _DIGITS, MAX_DIGITS) or None,
        recording_url=recording_url or None,
        duration_s=duration_s,
        currency=_matching(form, "currencyCode", _CURRENCY, 8) or None,
        amount=amount,
        call_state=state,
        hangup_cause=cause,
        client_request_id=_matching(form, "clientRequestId", _TOKEN, MAX_CLIENT_REQUEST_ID) or None,
        answered=_answered(is_active, state, cause, duration_s),
    )


# -- responses ------------------------------------------------------------------------------------


def _prompt(parent: ET.Element, action: Play | Say, voices: Mapping[str, str]) -> None:
    if isinstance(action, Play):
        ET.SubElement(parent, "Play", url=action.url)
        return
    say = ET.SubElement(parent, "Say")
    # Africa's Talking chooses a voice, not a language: a language without a configured voice
    # is spoken with its default one.
    voice = voices.get(action.language) if action.language else None
    if voice:
        say.set("voice", voice)
    say.text = action.text


def render(response: VoiceResponse, *, voices: Mapping[str, str] | None = None) -> str:
    """Africa's Talking XML for `response`; `voices` maps a Say language to an AT voice name.

    Built with ElementTree, which escapes text and attribute values."""
    voices = voices or {}
    root = ET.Element("Response")
    for action in response.actions:
        if isinstance(action, (Play, Say)):
            _prompt(root, action, voices)
        elif isinstance(action, GetDigits):
            element = ET.SubElement(root, "GetDigits")
            for name, value in (
                ("numDigits", action.num_digits),
                ("timeout", action.timeout_s),
                ("finishOnKey", action.finish_on_key),
                ("callbackUrl", action.callback_url),
            ):
                if value is not None:
                    element.set(name, str(value))
            _prompt(element, action.prompt, voices)
        elif isinstance(action, Redirect):
            ET.SubElement(root, "Redirect").text = action.url
        elif isinstance(action, Reject):
            ET.SubElement(root, "Reject")
        elif isinstance(action, Hangup):
            pass  # no such action: the call ends when the actions run out, and Hangup is last
        else:  # pragma: no cover - VoiceResponse admits only the actions above
            raise TypeError(f"not a voice action: {action!r}")
    return XML_DECLARATION + ET.tostring(root, encoding="unicode")


# -- outbound calls ---------------------------------------------------------------------------------
#
# With httpx rather than the official SDK: its VoiceService.call (2.0.3) sends no clientRequestId.

QUEUED = "Queued"
REJECTED_STATUSES = frozenset({"InvalidPhoneNumber", "DestinationNotSupported"})
ACCOUNT_STATUSES = frozenset({"InsufficientCredit"})


class AfricasTalkingCaller:
    name = PROVIDER

    def __init__(
        self,
        *,
        username: str,
        api_key: str,
        caller_id: str,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        trust_env: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`caller_id`: our Africa's Talking number, calls come from it. `base_url` points the
        caller elsewhere (the fake, a proxy); `transport` replaces the network in tests."""
        if base_url is None:
            base_url = SANDBOX_VOICE_URL if username == "sandbox" else VOICE_URL
        self._username = username
        self._from = parse_phone(caller_id)  # InvalidPhone (a ValueError): bad configuration
        self._base_url, self._api_key, self._timeout_s = base_url.rstrip("/"), api_key, timeout_s
        self._trust_env, self._transport = trust_env, transport
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        with self._lock:  # the worker's threads may place calls at once: one client for all
            if self._http is None:
                import httpx

                self._http = httpx.Client(
                    base_url=self._base_url,
                    headers={"apiKey": self._api_key, "Accept": "application/json"},
                    timeout=httpx.Timeout(self._timeout_s, connect=3.05),
                    trust_env=self._trust_env,  # off by default: httpx would read proxy variables
                    transport=self._transport,
                )
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def call(self, to: str, *, client_request_id: str) -> CallResult:
        try:
            phone = parse_phone(to)
        except InvalidPhone as exc:
            raise Rejected(f"to: {exc}") from None
        if len(client_request_id) > MAX_CLIENT_REQUEST_ID or not _TOKEN.fullmatch(client_request_id):
            raise ValueError("client_request_id: 1 to 100 printable ASCII characters, no spaces")
        form = {
            "username": self._username,
            "from": self._from,
            "to": phone,
            "clientRequestId": client_request_id,
        }
        client = self._client()
        import httpx  # loaded by _client(): a dictionary lookup

        try:
            response = client.post(CALL_PATH, data=form)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:
            # Nothing left this machine: safe to try again.
            raise TransportError(f"could not connect: {exc.__class__.__name__}", reached=False) from None
        except httpx.TimeoutException as exc:
            raise TransportError(f"no answer in time: {exc.__class__.__name__}", reached=True) from None
        except httpx.TransportError as exc:
            # The request may have arrived: calling again could ring the farmer twice.
            raise TransportError(f"connection error: {exc.__class__.__name__}", reached=True) from None
        return _call_result(response, phone, client_request_id)


def _call_result(response: httpx.Response, phone: str, client_request_id: str) -> CallResult:
    raise_for_status(response)
    try:
        body = response.json()
        entries = body["entries"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise TypeError("entries")
    except (ValueError, KeyError, TypeError):
        # Accepted, but we cannot tell whether a call was placed: do not call again blindly.
        raise TransportError("unreadable success response", reached=True) from None
    entry = next((e for e in entries if e.get("phoneNumber") == phone), entries[0] if entries else None)
    if entry is None:
        raise Rejected(f"no call placed: {str(body.get('errorMessage'))[:200]}")
    word = str(entry.get("status", ""))
    if word == QUEUED:
        session_id = entry.get("sessionId")
        return CallResult(
            phone=phone,
            session_id=str(session_id) if session_id and session_id != "None" else None,
            provider_status=word,
            client_request_id=client_request_id,
        )
    if word in REJECTED_STATUSES:
        raise Rejected(f"{word}: {mask(phone)}")
    if word in ACCOUNT_STATUSES:
        raise AccountProblem(word)
    raise TransportError(f"unknown call status {word[:40]!r}", reached=True)
