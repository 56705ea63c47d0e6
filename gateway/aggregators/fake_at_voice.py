"""A fake Africa's Talking Voice, for tests and local development: its call API, and the calls.

`create_fake_at_voice_app(FakeATVoice())` answers `POST /call` the way Africa's Talking does (form
fields, `apiKey` header, JSON entries with a session id), records every call it is asked to place,
and fails on demand (HTTP errors, throttling, hung requests, per-number statuses), from Python
(`FakeATVoice.configure`) or over HTTP (`POST /_fake/config`). Run it alone:
`python -m gateway.aggregators.fake_at_voice --port 8702`, base URL `http://127.0.0.1:8702`.

`FakeVoiceCall` (and `AsyncFakeVoiceCall`) plays Africa's Talking's part in one call against the
gateway's voice callback URL: it posts the callback forms, reads the XML answers, plays them as
the platform would (follows Redirect; at a GetDigits waits for `press` or `silence`; hangs up
when the actions run out; sends the final notification), and fetches every Play URL, failing
loudly unless it is real audio (WAV or MP3). Everything it did is in `transcript`.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import itertools
import json
import math
import re
import secrets
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable, Union

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response

# The SMS fake's configuration checks and routes, error answers and server thread serve this one too.
from gateway.aggregators.fake_at import (
    AUTH_FAILED_TEXT,
    FakeConfigError,
    _api_key,
    _error_response,
    _fail_next,
    _integer,
    _number,
    add_config_routes,
    add_form_route,
    add_request_log_routes,
    serve_in_thread,
)
from gateway.aggregators.calling import (
    DTMF_KEYS,
    INBOUND,
    OUTBOUND,
    Action,
    GetDigits,
    InvalidVoiceResponse,
    Play,
    Redirect,
    Reject,
    Say,
)

if TYPE_CHECKING:
    import httpx  # the drivers' clients; imported where a driver is chosen (development only)

__all__ = [
    "AsyncFakeVoiceCall",
    "FakeATVoice",
    "FakeCallError",
    "FakeConfigError",
    "FakeVoiceCall",
    "PlayedAudio",
    "Turn",
    "audio_kind",
    "create_fake_at_voice_app",
    "parse_at_response",
    "serve_in_thread",
]

CALL_PATH = "/call"
QUEUED = "Queued"
CALL_STATUSES = ("Queued", "InvalidPhoneNumber", "DestinationNotSupported", "InsufficientCredit")
CONFIG_KEYS: frozenset[str] = frozenset(
    {"statuses", "fail_next", "latency_s", "hang_next", "hang_s", "api_key"}
)

_NUMBER_RE = re.compile(r"^\+\d{6,15}$")
_session_counter = itertools.count(1)
_session_lock = threading.Lock()


def new_session_id() -> str:
    """`ATVId_` and 32 hex digits, never repeated within the process (callbacks key on it)."""
    with _session_lock:
        n = next(_session_counter)
    return f"ATVId_{secrets.token_hex(10)}{n:012x}"


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


# --- the call API ----------------------------------------------------------------------------------


def _statuses(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise FakeConfigError("statuses: expected an object {number: status}")
    for number, status in value.items():
        if not isinstance(number, str) or status not in CALL_STATUSES:
            raise FakeConfigError(f"statuses: {number!r}: {status!r} is not one of {list(CALL_STATUSES)}")
    return dict(value)


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "statuses": _statuses,
    "fail_next": _fail_next,
    "latency_s": lambda v: _number("latency_s", v),
    "hang_next": lambda v: _integer("hang_next", v),
    "hang_s": lambda v: _number("hang_s", v),
    "api_key": _api_key,
}


class FakeATVoice:
    """The fake call API's state: configuration, the log of requests, the calls placed.

    Shared between the server thread and the test thread: every access holds the lock, and readers
    get copies."""

    def __init__(self, **config: Any) -> None:
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._request_ids = itertools.count(1)
        self._apply_defaults()
        self.configure(**config)

    def _apply_defaults(self) -> None:
        self.api_key: str | None = None
        self.statuses: dict[str, str] = {}
        self.fail_next: list[int] = []
        self.latency_s: float = 0.0
        self.hang_next: int = 0
        self.hang_s: float = 30.0

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change any of CONFIG_KEYS; FakeConfigError (and nothing changed) on bad input."""
        unknown = set(changes) - CONFIG_KEYS
        if unknown:
            raise FakeConfigError(f"unknown configuration keys: {sorted(unknown)}")
        validated = {key: _VALIDATORS[key](value) for key, value in changes.items()}
        with self._lock:
            for key, value in validated.items():
                setattr(self, key, value)
            return self._config_locked()

    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._config_locked()

    def _config_locked(self) -> dict[str, Any]:
        return {
            "statuses": dict(self.statuses),
            "fail_next": list(self.fail_next),
            "latency_s": self.latency_s,
            "hang_next": self.hang_next,
            "hang_s": self.hang_s,
            "api_key_set": self.api_key is not None,
        }

    def reset(self, *, config: bool = False) -> None:
        with self._lock:
            self._log.clear()
            if config:
                self._apply_defaults()

    def requests(self) -> list[dict[str, Any]]:
        """Every request received, oldest first."""
        with self._lock:
            return copy.deepcopy(self._log)

    def placed_calls(self) -> list[dict[str, Any]]:
        """Calls the fake accepted (status Queued), oldest first: sessionId, from, to,
        clientRequestId, received_at."""
        with self._lock:
            return [
                {
                    "sessionId": e["sessionId"],
                    "from": entry["from"],
                    "to": e["phoneNumber"],
                    "clientRequestId": entry["clientRequestId"],
                    "received_at": entry["received_at"],
                }
                for entry in self._log
                for e in entry["entries"]
                if e["status"] == QUEUED
            ]

    def call_driver(
        self,
        client: httpx.Client | httpx.AsyncClient,
        callback_url: str,
        session_id: str | None = None,
        **options: Any,
    ) -> FakeVoiceCall | AsyncFakeVoiceCall:
        """The driver for a placed call (the last one unless `session_id` says which), as Africa's
        Talking would run it once the farmer answers: outbound, with our clientRequestId."""
        calls = self.placed_calls()
        chosen = [c for c in calls if session_id in (None, c["sessionId"])]
        if not chosen:
            raise FakeCallError(f"no placed call {session_id or ''}".strip())
        placed = chosen[-1]
        import httpx

        driver = AsyncFakeVoiceCall if isinstance(client, httpx.AsyncClient) else FakeVoiceCall
        return driver(
            client,  # type: ignore[arg-type]
            callback_url,
            caller=placed["to"],  # callerNumber is the phone user, whatever the direction
            destination=placed["from"],
            direction=OUTBOUND,
            session_id=placed["sessionId"],
            client_request_id=placed["clientRequestId"],
            **options,
        )

    def _entry(self, number: str) -> dict[str, str]:
        status = self.statuses.get(number, QUEUED)
        if not _NUMBER_RE.match(number):
            status = "InvalidPhoneNumber"
        session_id = new_session_id() if status == QUEUED else "None"
        return {"phoneNumber": number, "status": status, "sessionId": session_id}

    def handle_call(self, form: dict[str, str], api_key: str | None) -> tuple[Response, float]:
        """The answer to one `POST /call` and the delay to apply first; recorded before any delay
        (the platform may have placed the call even when the client gives up waiting)."""
        numbers = [n.strip() for n in (form.get("to") or "").split(",") if n.strip()]
        with self._lock:
            injected = self.fail_next.pop(0) if self.fail_next else None
            hung = self.hang_next > 0
            if hung:
                self.hang_next -= 1
            key_ok = bool(api_key) and (self.api_key is None or api_key == self.api_key)
            missing = [name for name in ("username", "from", "to") if not form.get(name)]
            entries: list[dict[str, str]] = []
            if injected is not None:
                response = _error_response(injected)
            elif not key_ok:
                response = PlainTextResponse(AUTH_FAILED_TEXT, status_code=401)
            elif missing or not numbers:
                text = f"Request is missing required form field '{missing[0] if missing else 'to'}'"
                response = PlainTextResponse(text, status_code=400)
            else:
                entries = [self._entry(number) for number in numbers]
                body = {"entries": entries, "errorMessage": "None"}
                # Exactly "application/json", as the SMS fake (the official SDKs compare it literally).
                response = Response(json.dumps(body).encode(), status_code=201, media_type="application/json")
            self._log.append(
                {
                    "id": next(self._request_ids),
                    "username": form.get("username"),
                    "from": form.get("from"),
                    "to": numbers,
                    "clientRequestId": form.get("clientRequestId"),
                    "api_key_ok": key_ok,
                    "http_status": response.status_code,
                    "entries": entries,
                    "received_at": _now_iso(),
                    "hung": hung,
                }
            )
            delay = self.latency_s + (self.hang_s if hung else 0.0)
        return response, delay


def create_fake_at_voice_app(fake: FakeATVoice | None = None) -> FastAPI:
    """The fake call API's ASGI app; its state is `app.state.fake`."""
    fake = fake if fake is not None else FakeATVoice()
    app = FastAPI(title="Fake Africa's Talking Voice API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = fake

    add_form_route(app, CALL_PATH, fake.handle_call)
    add_request_log_routes(app, fake)
    add_config_routes(app, fake, CONFIG_KEYS)

    @app.get("/_fake/calls")
    async def list_calls() -> JSONResponse:
        return JSONResponse(fake.placed_calls())

    return app


# --- reading the gateway's answers -------------------------------------------------------------------


class FakeCallError(AssertionError):
    """The gateway did something Africa's Talking would not accept, or a test drove the call
    wrongly. An AssertionError, so pytest shows it as a failed check."""


_PROMPT_ATTRIBUTES = {"Play": {"url"}, "Say": {"voice", "playBeep"}}
_GET_DIGITS_ATTRIBUTES = {"numDigits", "timeout", "finishOnKey", "callbackUrl"}
_NOT_SIMULATED = {"Dial", "Record", "Enqueue", "Dequeue", "Conference"}


def _only(element: ET.Element, attributes: set[str]) -> None:
    extra = set(element.attrib) - attributes
    if extra:
        raise FakeCallError(f"<{element.tag}> has attributes Africa's Talking does not know: {sorted(extra)}")


def _prompt_of(element: ET.Element) -> Play | Say:
    if element.tag not in _PROMPT_ATTRIBUTES:
        raise FakeCallError(f"<{element.tag}> cannot be a prompt: only Play or Say")
    _only(element, _PROMPT_ATTRIBUTES[element.tag])
    if len(element):
        raise FakeCallError(f"<{element.tag}> cannot hold other elements")
    if element.tag == "Play":
        if "url" not in element.attrib:
            raise FakeCallError("<Play> without a url")
        return Play(element.attrib["url"])
    return Say(element.text or "")


def _int_attribute(element: ET.Element, name: str) -> int | None:
    value = element.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise FakeCallError(f"<{element.tag} {name}={value!r}>: not a whole number")
    return int(value)


def _action_of(element: ET.Element) -> Action:
    tag = element.tag
    if tag in _PROMPT_ATTRIBUTES:
        return _prompt_of(element)
    if tag == "GetDigits":
        _only(element, _GET_DIGITS_ATTRIBUTES)
        if len(element) != 1:
            raise FakeCallError(f"<GetDigits> must hold exactly one Play or Say, not {len(element)}")
        return GetDigits(
            prompt=_prompt_of(element[0]),
            num_digits=_int_attribute(element, "numDigits"),
            timeout_s=_int_attribute(element, "timeout"),
            finish_on_key=element.get("finishOnKey"),
            callback_url=element.get("callbackUrl"),
        )
    if tag == "Redirect":
        _only(element, set())
        return Redirect((element.text or "").strip())
    if tag == "Reject":
        _only(element, set())
        if len(element) or (element.text or "").strip():
            raise FakeCallError("<Reject> takes nothing inside")
        return Reject()
    if tag in _NOT_SIMULATED:
        raise FakeCallError(f"<{tag}> is an Africa's Talking action the fake does not simulate")
    raise FakeCallError(f"Africa's Talking has no action <{tag}>")


def parse_at_response(text: str) -> tuple[Action, ...]:
    """The actions of an Africa's Talking XML answer, checked as strictly as the platform would
    want them; FakeCallError otherwise. An empty `<Response/>` is valid: the call ends."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FakeCallError("the answer declares a DTD or entities")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise FakeCallError(f"the answer is not XML: {exc}; body starts {text[:120]!r}") from None
    if root.tag != "Response":
        raise FakeCallError(f"the answer's root is <{root.tag}>, not <Response>")
    try:
        actions = tuple(_action_of(child) for child in root)
    except InvalidVoiceResponse as exc:
        raise FakeCallError(f"invalid action: {exc}") from None
    if any(isinstance(a, Reject) for a in actions) and len(actions) > 1:
        raise FakeCallError("<Reject> must be the only action of its response")
    return actions


# --- checking audio -----------------------------------------------------------------------------------


def _wav_ok(data: bytes) -> bool:
    """A RIFF/WAVE file with a format chunk and a non-empty data chunk (any codec: telephone audio
    is often mu-law, which the `wave` module cannot read)."""
    offset, has_format = 12, False
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        body = data[offset + 8 : offset + 8 + size]
        if chunk == b"fmt ":
            channels = int.from_bytes(body[2:4], "little") if len(body) >= 16 else 0
            rate = int.from_bytes(body[4:8], "little") if len(body) >= 16 else 0
            has_format = channels > 0 and rate > 0
        elif chunk == b"data":
            return has_format and size > 0 and len(body) > 0
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    return False


def _mp3_frame_at(data: bytes, offset: int) -> bool:
    header = data[offset : offset + 4]
    if len(header) < 4 or len(data) < offset + 32:
        return False
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate, rate = header[2] >> 4, (header[2] >> 2) & 3
    synced = header[0] == 0xFF and header[1] & 0xE0 == 0xE0
    # Reserved values: version 1, layer 0, bitrate 15, sample rate 3.
    return synced and version != 1 and layer != 0 and bitrate != 15 and rate != 3


def audio_kind(data: bytes) -> str:
    """"wav" or "mp3" when `data` is real audio; FakeCallError otherwise."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        if _wav_ok(data):
            return "wav"
        raise FakeCallError("a WAVE file without a format or with no audio data")
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        # ID3v2: 10-byte header, then a size in four 7-bit bytes.
        offset = 10 + sum((byte & 0x7F) << (7 * (3 - i)) for i, byte in enumerate(data[6:10]))
    if _mp3_frame_at(data, offset):
        return "mp3"
    raise FakeCallError(f"not audio (neither WAVE nor MP3): starts {data[:16]!r}")


# --- one call --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One request the fake made to the gateway and what came back. `actions` is empty for the
    final notification, whose answer the platform ignores."""

    url: str
    form: dict[str, str]
    status: int
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class PlayedAudio:
    url: str
    kind: str  # wav | mp3
    size: int


@dataclass(frozen=True)
class _Post:
    url: str
    form: dict[str, str]


@dataclass(frozen=True)
class _Get:
    url: str


# What the steps below yield (a request to make) and are sent back (its status, content type, body).
_Effect = Union[_Post, _Get]
_Reply = tuple[int, str, bytes]
_Steps = Generator[_Effect, _Reply, None]

NEW, WAITING, RUNNING, ENDED = "new", "waiting", "running", "ended"


@dataclass
class _Call:
    """The platform's side of one call, written once as steps that yield the requests to make;
    FakeVoiceCall runs them with a sync client, AsyncFakeVoiceCall with an async one."""

    callback_url: str
    caller: str  # callerNumber: the phone user
    destination: str  # destinationNumber: our number
    direction: str = INBOUND
    session_id: str = field(default_factory=new_session_id)
    client_request_id: str | None = None
    currency: str = "XOF"
    price_per_minute: Decimal = Decimal("50")
    seconds_per_turn: int = 10  # the simulated length of a call that ends by itself
    max_redirects: int = 10
    # What happened, for assertions: every request and answer, every audio played, every text said.
    transcript: list[Turn] = field(init=False, default_factory=list)
    played: list[PlayedAudio] = field(init=False, default_factory=list)
    said: list[str] = field(init=False, default_factory=list)
    state: str = field(init=False, default=NEW)
    answered: bool = field(init=False, default=False)
    current_url: str = field(init=False, default="")  # where digits go when GetDigits names no URL
    _pending: list[Action] = field(init=False, default_factory=list)
    _waiting: GetDigits | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.direction not in (INBOUND, OUTBOUND):
            raise ValueError(f"direction: {INBOUND} or {OUTBOUND}")
        self.current_url = self.callback_url
        # An outbound call's first callback comes once the farmer has picked up.
        self.answered = self.direction == OUTBOUND

    @property
    def waiting_for(self) -> GetDigits | None:
        """The GetDigits the call is waiting at, if any."""
        return self._waiting

    def _require(self, *states: str) -> None:
        if self.state not in states:
            raise FakeCallError(f"the call is {self.state}, not {' or '.join(states)}")

    def _form(self, *, active: bool) -> dict[str, str]:
        form = {
            "isActive": "1" if active else "0",
            "sessionId": self.session_id,
            "direction": self.direction.capitalize(),  # "Inbound" / "Outbound", as in AT's samples
            "callerNumber": self.caller,
            "destinationNumber": self.destination,
        }
        if self.client_request_id:
            form["clientRequestId"] = self.client_request_id
        return form

    # --- steps ---

    def _fetch(self, url: str, form: dict[str, str]) -> _Steps:
        status, _, body = yield _Post(url, form)
        text = body.decode("utf-8", errors="replace")
        if not 200 <= status < 300:
            raise FakeCallError(f"POST {url} answered HTTP {status}: {text[:200]!r}")
        actions = parse_at_response(text)
        self.transcript.append(Turn(url, form, status, actions))
        self._pending = list(actions)

    def _play(self, url: str) -> _Steps:
        status, content_type, body = yield _Get(url)
        if status != 200:
            raise FakeCallError(f"Play {url}: HTTP {status}")
        media = content_type.partition(";")[0].strip().lower()
        if media and not (media.startswith("audio/") or media == "application/octet-stream"):
            raise FakeCallError(f"Play {url}: served as {content_type!r}, not audio")
        try:
            kind = audio_kind(body)
        except FakeCallError as exc:
            raise FakeCallError(f"Play {url}: {exc}") from None
        self.played.append(PlayedAudio(url, kind, len(body)))

    def _prompt(self, prompt: Play | Say) -> _Steps:
        self.answered = True
        if isinstance(prompt, Play):
            yield from self._play(prompt.url)
        else:
            self.said.append(prompt.text)

    def _execute(self) -> _Steps:
        """Run the pending actions as the platform does, until a GetDigits waits or the call ends."""
        self.state = RUNNING
        redirects = 0
        while self._pending:
            action = self._pending.pop(0)
            if isinstance(action, (Play, Say)):
                yield from self._prompt(action)
            elif isinstance(action, GetDigits):
                yield from self._prompt(action.prompt)
                self._waiting, self.state = action, WAITING
                return
            elif isinstance(action, Redirect):
                redirects += 1
                if redirects > self.max_redirects:
                    raise FakeCallError(f"more than {self.max_redirects} redirects in a row: a loop?")
                self.current_url = action.url
                yield from self._fetch(action.url, self._form(active=True))
            elif isinstance(action, Reject):
                if self.answered:
                    raise FakeCallError("Reject on a call already answered: only a ringing call can be")
                yield from self._end(answered=False, cause="CALL_REJECTED")
                return
        yield from self._end(answered=self.answered)  # out of actions: the platform hangs up

    def _end(self, *, answered: bool, cause: str | None = None, duration_s: int | None = None) -> _Steps:
        if duration_s is None:
            duration_s = self.seconds_per_turn * len(self.transcript) if answered else 0
        amount = self.price_per_minute * math.ceil(duration_s / 60)
        state = "Completed" if answered else "NotAnswered"
        form = self._form(active=False) | {
            "durationInSeconds": str(duration_s),
            "currencyCode": self.currency,
            "amount": str(amount),
            "callSessionState": state,
            "status": state,
            "hangupCause": cause or ("NORMAL_CLEARING" if answered else "NO_ANSWER"),
        }
        self.state, self._waiting, self._pending = ENDED, None, []
        status, _, body = yield _Post(self.callback_url, form)
        if not 200 <= status < 300:
            raise FakeCallError(f"final notification answered HTTP {status}: {body[:200]!r}")
        self.transcript.append(Turn(self.callback_url, form, status, ()))

    def _start_steps(self) -> _Steps:
        self._require(NEW)
        self.state = RUNNING
        yield from self._fetch(self.callback_url, self._form(active=True))
        yield from self._execute()

    def _press_steps(self, keys: str) -> _Steps:
        self._require(WAITING)
        if not keys or any(key not in DTMF_KEYS for key in keys):
            raise FakeCallError(f"a phone keypad has only 0-9 * #, not {keys!r}")
        waiting = self._waiting
        assert waiting is not None
        form = self._form(active=True) | {"dtmfDigits": digits_sent(waiting, keys)}
        self._waiting = None
        yield from self._fetch(waiting.callback_url or self.current_url, form)
        yield from self._execute()

    def _silence_steps(self) -> _Steps:
        # No input: the platform moves on to the action after the GetDigits, telling nobody.
        self._require(WAITING)
        self._waiting = None
        yield from self._execute()

    def _hang_up_steps(self, duration_s: int) -> _Steps:
        self._require(WAITING, RUNNING)
        if isinstance(duration_s, bool) or not isinstance(duration_s, int) or duration_s < 0:
            raise ValueError("duration_s: a whole number of seconds")
        yield from self._end(answered=self.answered, duration_s=duration_s)

    def _unanswered_steps(self, cause: str) -> _Steps:
        if self.direction != OUTBOUND:
            raise FakeCallError("only an outbound call can go unanswered here")
        self._require(NEW)
        yield from self._end(answered=False, cause=cause)


def digits_sent(get_digits: GetDigits, keys: str) -> str:
    """What the platform sends as dtmfDigits when the caller presses `keys` at `get_digits`: up to
    the finishOnKey (not included) or numDigits keys; with neither, the first key alone."""
    limit = get_digits.num_digits or (None if get_digits.finish_on_key else 1)
    typed = ""
    for key in keys:
        if key == get_digits.finish_on_key:
            return typed
        typed += key
        if limit is not None and len(typed) == limit:
            return typed
    # Africa's Talking does not say what it does with input cut short by the timeout.
    raise FakeCallError(
        f"{keys!r} neither reaches numDigits={get_digits.num_digits} nor ends with "
        f"finishOnKey={get_digits.finish_on_key!r}"
    )


class FakeVoiceCall(_Call):
    """One call driven with a synchronous httpx client (a real server, or Starlette's TestClient
    around the gateway's ASGI app). Each method returns the last Turn."""

    def __init__(
        self,
        client: httpx.Client,
        callback_url: str,
        caller: str,
        destination: str,
        direction: str = INBOUND,
        **options: Any,
    ) -> None:
        super().__init__(callback_url, caller, destination, direction, **options)
        self.client = client

    def start(self) -> Turn:
        return self._run(self._start_steps())

    def press(self, keys: str) -> Turn:
        return self._run(self._press_steps(keys))

    def silence(self) -> Turn:
        return self._run(self._silence_steps())

    def hang_up(self, duration_s: int) -> Turn:
        return self._run(self._hang_up_steps(duration_s))

    def unanswered(self, cause: str = "NO_ANSWER") -> Turn:
        return self._run(self._unanswered_steps(cause))

    def _run(self, steps: _Steps) -> Turn:
        reply: _Reply | None = None
        while True:
            try:
                effect = steps.send(reply)  # type: ignore[arg-type]
            except StopIteration:
                return self.transcript[-1]
            if isinstance(effect, _Post):
                response = self.client.post(effect.url, data=effect.form)
            else:
                response = self.client.get(effect.url)
            reply = (response.status_code, response.headers.get("content-type", ""), response.content)


class AsyncFakeVoiceCall(_Call):
    """The same call driven with an httpx.AsyncClient (for example over httpx.ASGITransport)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        callback_url: str,
        caller: str,
        destination: str,
        direction: str = INBOUND,
        **options: Any,
    ) -> None:
        super().__init__(callback_url, caller, destination, direction, **options)
        self.client = client

    async def start(self) -> Turn:
        return await self._run(self._start_steps())

    async def press(self, keys: str) -> Turn:
        return await self._run(self._press_steps(keys))

    async def silence(self) -> Turn:
        return await self._run(self._silence_steps())

    async def hang_up(self, duration_s: int) -> Turn:
        return await self._run(self._hang_up_steps(duration_s))

    async def unanswered(self, cause: str = "NO_ANSWER") -> Turn:
        return await self._run(self._unanswered_steps(cause))

    async def _run(self, steps: _Steps) -> Turn:
        reply: _Reply | None = None
        while True:
            try:
                effect = steps.send(reply)  # type: ignore[arg-type]
            except StopIteration:
                return self.transcript[-1]
            if isinstance(effect, _Post):
                response = await self.client.post(effect.url, data=effect.form)
            else:
                response = await self.client.get(effect.url)
            reply = (response.status_code, response.headers.get("content-type", ""), response.content)


# --- running it ------------------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Africa's Talking Voice API for local development")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--api-key", default=None, help="accept only this apiKey (default: any non-empty)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    app = create_fake_at_voice_app(FakeATVoice(api_key=args.api_key))
    base = f"http://{args.host}:{args.port}"
    print(f"Fake AT Voice: place calls with {base}{CALL_PATH}, read {base}/_fake/calls")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
