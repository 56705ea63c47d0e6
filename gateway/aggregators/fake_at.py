"""A fake Africa's Talking SMS API, for tests and for local development.

It answers `POST /version1/messaging` the way Africa's Talking does (form fields, `apiKey` header,
HTTP 201 with `SMSMessageData`), so the official SDK, or our own adapter, can be pointed at it by
changing only the base URL. A developer without credentials sees the SMS that would have been sent
at `GET /_fake/`. Failures (HTTP errors, throttling, latency, hung requests, per-recipient status
codes) can be injected at runtime, from Python (`FakeAT.configure`) or over HTTP (`POST
/_fake/config`), so the retry and error-sorting code can be exercised without the real network.

Run it alone: `python -m gateway.aggregators.fake_at --port 8701`, then use the base URL
`http://127.0.0.1:8701/version1`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import html
import itertools
import json
import math
import random
import re
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

# Per-recipient status codes and the words Africa's Talking puts next to them. 101 comes back as
# "Success" in real answers (the docs call it "Sent"); the SDK's users match on either.
STATUS_WORDS: dict[int, str] = {
    100: "Processed",
    101: "Success",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}
# Only these codes mean the message left (or will leave) the platform: they are billed and get an id.
ACCEPTED_CODES: frozenset[int] = frozenset({100, 101, 102})
DEFAULT_STATUS = 101
INVALID_NUMBER_STATUS = 403
AUTH_FAILED_TEXT = "The supplied authentication is invalid"
MESSAGING_PATH = "/version1/messaging"

_NUMBER_RE = re.compile(r"^\+\d{6,15}$")

# Message ids must never repeat within the process, even across FakeAT instances and resets (the
# delivery-report handling keys on them), so a process-wide counter is part of every id; the random
# part only makes ids look like real ones and differ between processes.
_message_counter = itertools.count(1)
_message_counter_lock = threading.Lock()

# Keys accepted by `configure` and `POST /_fake/config`. `segments` is Python-only (a callable cannot
# travel in JSON), so the HTTP endpoint rejects it like any unknown key.
CONFIG_KEYS: frozenset[str] = frozenset(
    {
        "statuses",
        "fail_next",
        "latency_s",
        "hang_next",
        "hang_s",
        "fail_rate",
        "seed",
        "api_key",
        "price_per_segment",
        "currency",
    }
)
_PYTHON_ONLY_KEYS: frozenset[str] = frozenset({"segments"})


class FakeConfigError(ValueError):
    """A configuration change the fake refuses; answered 400 by `POST /_fake/config`."""


def estimate_segments(message: str) -> int:
    """A deliberately simple GSM-7/UCS-2 estimate: ASCII counts as GSM-7, anything else as UCS-2.

    The real arithmetic (GSM-7 table, escape characters) belongs to `messages/`; plug it in through
    `FakeAT(segments=...)` when a test needs exact costs.
    """
    if message.isascii():
        return 1 if len(message) <= 160 else math.ceil(len(message) / 153)
    return 1 if len(message) <= 70 else math.ceil(len(message) / 67)


def new_message_id() -> str:
    with _message_counter_lock:
        n = next(_message_counter)
    return f"ATXid_{secrets.token_hex(10)}{n:012x}"  # 20 + 12 = 32 hex digits


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


# --- configuration validation: every value is checked before any is applied, so a bad request
# --- never leaves the fake half-configured.


def _number(key: str, value: Any, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FakeConfigError(f"{key}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise FakeConfigError(f"{key}: {value!r} is outside [{low}, {high}]")
    return float(value)


def _integer(key: str, value: Any, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FakeConfigError(f"{key}: expected an integer, got {value!r}")
    if value < low:
        raise FakeConfigError(f"{key}: {value!r} is below {low}")
    return value


def _statuses(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise FakeConfigError("statuses: expected an object {number: statusCode}")
    result: dict[str, int] = {}
    for number, code in value.items():
        if not isinstance(number, str):
            raise FakeConfigError(f"statuses: number {number!r} is not a string")
        code = _integer("statuses", code)
        if code not in STATUS_WORDS:
            raise FakeConfigError(f"statuses: unknown statusCode {code} (known: {sorted(STATUS_WORDS)})")
        result[number] = code
    return result


def _fail_next(value: Any) -> list[int]:
    if not isinstance(value, list):
        raise FakeConfigError("fail_next: expected a list of HTTP statuses")
    result = [_integer("fail_next", status) for status in value]
    for status in result:
        if not 400 <= status <= 599:
            raise FakeConfigError(f"fail_next: {status} is not an HTTP error status (400-599)")
    return result


def _api_key(value: Any) -> str | None:
    if value is None or value == "":
        return None  # no key configured: any non-empty key is accepted
    if not isinstance(value, str):
        raise FakeConfigError("api_key: expected a string or null")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise FakeConfigError(f"currency: expected a three-letter code, got {value!r}")
    return value


def _segments(value: Any) -> Callable[[str], int]:
    if not callable(value):
        raise FakeConfigError("segments: expected a callable str -> int")
    return value


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "statuses": _statuses,
    "fail_next": _fail_next,
    "latency_s": lambda v: _number("latency_s", v),
    "hang_next": lambda v: _integer("hang_next", v),
    "hang_s": lambda v: _number("hang_s", v),
    "fail_rate": lambda v: _number("fail_rate", v, high=1.0),
    "seed": lambda v: _integer("seed", v, low=-(2**63)),
    "api_key": _api_key,
    "price_per_segment": lambda v: _number("price_per_segment", v),
    "currency": _currency,
    "segments": _segments,
}


class FakeAT:
    """The fake's state: its configuration and the log of every request received.

    Shared between the server thread (or event loop) and the test thread, so every read and write
    goes through one lock, and readers get copies, never the live lists.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        statuses: dict[str, int] | None = None,
        fail_next: list[int] | None = None,
        latency_s: float = 0.0,
        hang_next: int = 0,
        hang_s: float = 30.0,
        fail_rate: float = 0.0,
        seed: int = 0,
        price_per_segment: float = 10.0,
        currency: str = "XOF",
        segments: Callable[[str], int] = estimate_segments,
    ) -> None:
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        # Request ids keep increasing across resets, so an entry read before a reset can never be
        # mistaken for one received after it.
        self._request_ids = itertools.count(1)
        self._apply_defaults()
        self.configure(
            api_key=api_key,
            statuses=statuses or {},
            fail_next=fail_next or [],
            latency_s=latency_s,
            hang_next=hang_next,
            hang_s=hang_s,
            fail_rate=fail_rate,
            seed=seed,
            price_per_segment=price_per_segment,
            currency=currency,
            segments=segments,
        )

    def _apply_defaults(self) -> None:
        self.api_key: str | None = None
        self.statuses: dict[str, int] = {}
        self.fail_next: list[int] = []
        self.latency_s: float = 0.0
        self.hang_next: int = 0
        self.hang_s: float = 30.0
        self.fail_rate: float = 0.0
        self.seed: int = 0
        self.price_per_segment: float = 10.0
        self.currency: str = "XOF"
        self.segments: Callable[[str], int] = estimate_segments
        self._rng = random.Random(self.seed)

    # --- configuration -------------------------------------------------------------------------

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change any of CONFIG_KEYS (or `segments`); returns the new configuration.

        `fail_next` and `statuses` replace the current values; `seed` restarts the random sequence
        used by `fail_rate`. Raises FakeConfigError (a ValueError) and changes nothing on bad input.
        """
        unknown = set(changes) - CONFIG_KEYS - _PYTHON_ONLY_KEYS
        if unknown:
            raise FakeConfigError(f"unknown configuration keys: {sorted(unknown)}")
        validated = {key: _VALIDATORS[key](value) for key, value in changes.items()}
        with self._lock:
            for key, value in validated.items():
                setattr(self, key, value)
            if "seed" in validated:
                self._rng = random.Random(self.seed)
            return self._config_locked()

    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._config_locked()

    def _config_locked(self) -> dict[str, Any]:
        # The key itself is not echoed: a developer may have set a real-looking one.
        return {
            "statuses": dict(self.statuses),
            "fail_next": list(self.fail_next),
            "latency_s": self.latency_s,
            "hang_next": self.hang_next,
            "hang_s": self.hang_s,
            "fail_rate": self.fail_rate,
            "seed": self.seed,
            "api_key_set": self.api_key is not None,
            "price_per_segment": self.price_per_segment,
            "currency": self.currency,
        }

    def reset(self, *, config: bool = False) -> None:
        """Forget every request received; with `config=True`, also restore the default configuration."""
        with self._lock:
            self._log.clear()
            if config:
                self._apply_defaults()

    # --- reading the log -----------------------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        """Every request received, oldest first (deep copies: callers may not edit the log)."""
        with self._lock:
            return copy.deepcopy(self._log)

    def sent_messages(self) -> list[tuple[str, str, str]]:
        """(number, message, messageId) for every accepted recipient, oldest first."""
        return [(m["number"], m["message"], m["messageId"]) for m in self.sent_message_details()]

    def sent_message_details(self) -> list[dict[str, Any]]:
        """Accepted recipients with their context (sender, request id, time, status), oldest first."""
        with self._lock:
            return [
                {
                    "number": r["number"],
                    "message": entry["message"],
                    "messageId": r["messageId"],
                    "from": entry["from"],
                    "status": r["status"],
                    "cost": r["cost"],
                    "request_id": entry["id"],
                    "received_at": entry["received_at"],
                }
                for entry in self._log
                for r in entry["recipients"]
                if r["statusCode"] in ACCEPTED_CODES
            ]

    # --- handling one send ---------------------------------------------------------------------

    def _cost(self, amount: float) -> str:
        return f"{self.currency} {amount:.4f}"

    def _recipient(self, number: str, segments: int) -> dict[str, Any]:
        code = self.statuses.get(number, DEFAULT_STATUS)
        if not _NUMBER_RE.match(number):
            code = INVALID_NUMBER_STATUS  # AT refuses what is not an international number
        accepted = code in ACCEPTED_CODES
        return {
            "statusCode": code,
            "number": number,
            "status": STATUS_WORDS[code],
            # Failed recipients cost nothing and have no id; AT writes both as these strings.
            "cost": self._cost(self.price_per_segment * segments) if accepted else "0",
            "messageId": new_message_id() if accepted else "None",
        }

    def handle_send(self, form: dict[str, str], api_key: str | None) -> tuple[Response, float]:
        """Decide the answer to one send, record it, and return it with the delay to apply first.

        The request is recorded before any delay, as a real platform would have received (and
        possibly sent) it even when the client gives up waiting.
        """
        message = form.get("message") or ""
        segments = max(1, int(self.segments(message))) if message else 1  # user code: outside the lock
        numbers = [n.strip() for n in (form.get("to") or "").split(",") if n.strip()]
        with self._lock:
            injected: int | None = None
            if self.fail_next:
                injected = self.fail_next.pop(0)
            elif self.fail_rate > 0 and self._rng.random() < self.fail_rate:
                injected = 500
            hung = self.hang_next > 0
            if hung:
                self.hang_next -= 1
            key_ok = bool(api_key) and (self.api_key is None or api_key == self.api_key)
            missing = [name for name in ("username", "to", "message") if not form.get(name)]
            if not missing and not numbers:
                missing = ["to"]
            recipients: list[dict[str, Any]] = []
            if injected is not None:
                response = _error_response(injected)
            elif not key_ok:
                response = PlainTextResponse(AUTH_FAILED_TEXT, status_code=401)
            elif missing:
                response = PlainTextResponse(
                    f"Request is missing required form field '{missing[0]}'", status_code=400
                )
            else:
                recipients = [self._recipient(number, segments) for number in numbers]
                response = self._success_response(recipients, segments)
            self._log.append(
                {
                    "id": next(self._request_ids),
                    "username": form.get("username"),
                    "to": numbers,
                    "message": form.get("message"),
                    "from": form.get("from"),
                    "enqueue": form.get("enqueue"),
                    "bulkSMSMode": form.get("bulkSMSMode"),
                    "api_key_ok": key_ok,
                    "http_status": response.status_code,
                    "recipients": recipients,
                    "received_at": _now_iso(),
                    "hung": hung,
                }
            )
            delay = self.latency_s + (self.hang_s if hung else 0.0)
        return response, delay

    def _success_response(self, recipients: list[dict[str, Any]], segments: int) -> Response:
        accepted = sum(1 for r in recipients if r["statusCode"] in ACCEPTED_CODES)
        total = self.price_per_segment * segments * accepted
        cost = self._cost(total) if accepted else "0"
        summary = f"Sent to {accepted}/{len(recipients)} Total Cost: {cost}"
        body = {"SMSMessageData": {"Message": summary, "Recipients": recipients}}
        # The SDK parses the body only when the content type is exactly "application/json": a
        # "; charset=utf-8" suffix would hand callers a string. Starlette adds no charset to
        # non-text media types, and the tests check the header literally.
        return Response(json.dumps(body).encode(), status_code=201, media_type="application/json")


def _error_response(status: int) -> Response:
    if status == 401:
        return PlainTextResponse(AUTH_FAILED_TEXT, status_code=401)
    try:
        text = HTTPStatus(status).phrase
    except ValueError:
        text = "Error"
    headers = {"Retry-After": "1"} if status == 429 else None
    return PlainTextResponse(text, status_code=status, headers=headers)


# --- the HTTP application ------------------------------------------------------------------------


def _messages_page(messages: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(m[key] if m[key] is not None else ''))}</td>"
            for key in ("received_at", "from", "number", "status", "cost", "messageId")
        )
        + f"<td><pre>{html.escape(m['message'] or '')}</pre></td></tr>"
        for m in reversed(messages)  # newest on top for a human watching the page
    )
    empty = "" if messages else "<p>No SMS sent yet.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>Fake Africa's Talking: SMS sent</title>
<style>body{{font-family:sans-serif}}td,th{{border-bottom:1px solid #ccc;padding:4px;vertical-align:top}}
pre{{margin:0;white-space:pre-wrap}}</style></head>
<body><h1>SMS that would have been sent ({len(messages)})</h1>{empty}
<table><tr><th>Received</th><th>From</th><th>To</th><th>Status</th><th>Cost</th><th>Message id</th>
<th>Text</th></tr>
{rows}
</table></body></html>"""


def add_form_route(app, path: str, handle: Callable[[dict[str, str], str | None], tuple[Response, float]]) -> None:
    """POST `path`: Africa's Talking's form and `apiKey` header given to `handle`, which answers
    with the response and the delay to wait first."""

    # The form is read by hand rather than declared with Form(...): a missing field must be a 400
    # with AT's text, not FastAPI's 422, and the request must be logged whatever it holds.
    @app.post(path)
    async def answer(request: Request) -> Response:
        raw = await request.form()
        form = {key: value for key, value in raw.items() if isinstance(value, str)}
        response, delay = handle(form, request.headers.get("apiKey"))
        if delay > 0:
            # asyncio.sleep, not time.sleep: the other requests (and /_fake) keep being served.
            await asyncio.sleep(delay)
        return response


def add_request_log_routes(app, fake) -> None:
    """The requests a fake got (GET, DELETE to forget them). `fake` has requests() and reset()."""

    @app.get("/_fake/requests")
    async def list_requests() -> JSONResponse:
        return JSONResponse(fake.requests())

    @app.delete("/_fake/requests")
    async def reset_requests() -> JSONResponse:
        fake.reset()
        return JSONResponse({"reset": True})


def add_config_routes(app, fake, known: frozenset[str]) -> None:
    """Read and change a fake's configuration over HTTP: a JSON object of `known` keys (others,
    such as Python-only ones, are refused) given to fake.configure(); a refused change is a 400
    that says why and changes nothing. `fake` has config() and configure(**changes)."""

    @app.get("/_fake/config")
    async def read_config() -> JSONResponse:
        return JSONResponse(fake.config())

    @app.post("/_fake/config")
    async def change_config(request: Request) -> JSONResponse:
        try:
            changes = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body must be JSON"}, status_code=400)
        if not isinstance(changes, dict):
            return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
        unknown = set(changes) - known
        if unknown:
            return JSONResponse(
                {"detail": f"unknown configuration keys: {sorted(unknown)}", "known": sorted(known)},
                status_code=400,
            )
        try:
            return JSONResponse(fake.configure(**changes))
        except FakeConfigError as exc:
            return JSONResponse({"detail": str(exc), "known": sorted(known)}, status_code=400)


def add_log_routes(app, fake) -> None:
    """What every fake SMS aggregator answers about itself: the requests it got and the
    messages it accepted. `fake` has requests(), reset() and sent_message_details()."""
    add_request_log_routes(app, fake)

    @app.get("/_fake/messages")
    async def list_messages(offset: int = Query(0, ge=0, description="skip the first ones (read before)")) -> JSONResponse:
        # Pollers ask for what is new: the whole log grows to tens of thousands in a soak test.
        return JSONResponse(fake.sent_message_details()[offset:])


def create_fake_at_app(fake: FakeAT | None = None) -> FastAPI:
    """The fake's ASGI app; its state is `app.state.fake`."""
    fake = fake if fake is not None else FakeAT()
    app = FastAPI(title="Fake Africa's Talking SMS API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = fake

    add_form_route(app, MESSAGING_PATH, fake.handle_send)
    add_log_routes(app, fake)
    add_config_routes(app, fake, CONFIG_KEYS)

    @app.get("/_fake/", response_class=HTMLResponse)
    async def messages_page() -> HTMLResponse:
        return HTMLResponse(_messages_page(fake.sent_message_details()))

    return app


# --- running it ------------------------------------------------------------------------------------


@contextmanager
def serve_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout_s: float = 10.0,
    graceful_s: float = 1.0,
) -> Iterator[str]:
    """Serve `app` with uvicorn in a daemon thread; yields the base URL, e.g. http://127.0.0.1:54321.

    The socket is bound here, before the server starts, so port 0 yields a free port with no race
    between choosing it and listening on it. On exit, requests still running (a hung send) get
    `graceful_s` seconds before uvicorn cancels them, so leaving the block never waits for `hang_s`.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    base_url = f"http://{url_host}:{bound_port}"

    # log_config=None: leave the host process's logging (pytest's, the gateway's) as it is.
    config = uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=graceful_s,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit on startup failure included: report it, not lose it
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{bound_port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"server on {base_url} stopped during startup: {failure!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on {base_url} did not start within {startup_timeout_s} s")
            time.sleep(0.01)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(graceful_s + 5.0)
        if thread.is_alive():
            server.force_exit = True  # stop waiting for connections; asyncio.run cancels the rest
            thread.join(5.0)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Africa's Talking SMS API for local development")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--api-key", default=None, help="accept only this apiKey (default: any non-empty)")
    args = parser.parse_args(argv)
    app = create_fake_at_app(FakeAT(api_key=args.api_key))
    base = f"http://{args.host}:{args.port}"
    print(f"Fake AT: send to {base}/version1/messaging, read {base}/_fake/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
