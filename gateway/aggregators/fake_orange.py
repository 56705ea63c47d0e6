"""A fake of Orange's SMS API, for tests and for local development.

It answers `POST /oauth/v3/token` (Basic credentials, tokens that expire) and
`POST /smsmessaging/v1/outbound/{sender}/requests` (a Bearer token, one address per request, 201
with a `resourceURL`) the way our adapter expects Orange to, so `OrangeSender` can be pointed at it by
changing only the base URL. The SMS that would have been sent are at `GET /_fake/`. Failures can be
injected at runtime, from Python (`FakeOrange.configure`, `expire_tokens`) or over HTTP (`POST
/_fake/config`, `POST /_fake/expire-tokens`): HTTP errors on either endpoint, per-number error
codes, throttling, latency, hung requests, short-lived tokens; `skip_next` lets requests through
first, so that a failure can strike in the middle of a batch.

Run it alone: `python -m gateway.aggregators.fake_orange --port 8702`, then use the base URL
`http://127.0.0.1:8702`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import copy
import itertools
import json
import random
import re
import secrets
import threading
import time
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import quote, unquote

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gateway.aggregators.fake_at import (
    FakeConfigError,
    _fail_next,
    _integer,
    _messages_page,
    _now_iso,
    _number,
    add_log_routes,
)
from gateway.aggregators.orange import DELIVERY_STATUS, OUTBOUND_PATH, TOKEN_PATH

# Orange's codes: 401 credentials (40 missing, 41 invalid, 42 expired), then OneAPI-style
# service (SVC, the request or a number) and policy (POL, the account or contract) exceptions.
CREDENTIALS = {40: "Missing credentials", 41: "Invalid credentials", 42: "Expired credentials"}
RECIPIENT_ERRORS: dict[str, tuple[int, str]] = {
    "SVC0002": (400, "Invalid input value for message part %1"),
    "SVC0004": (400, "No valid addresses provided in message part %1"),
    "POL0001": (403, "A policy error occurred. Error code is %1"),
    "POL0003": (403, "Too many addresses specified in message part %1"),
}
DEFAULT_TOKEN_TTL_S = 3600.0
_ADDRESS_RE = re.compile(r"^tel:\+\d{6,15}$")

_message_counter = itertools.count(1)
_counter_lock = threading.Lock()


def new_message_id() -> str:
    with _counter_lock:
        n = next(_message_counter)
    return f"{secrets.token_hex(8)}{n:010d}"


def _errors(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise FakeConfigError("errors: expected an object {number: code}")
    for number, code in value.items():
        if not isinstance(number, str) or code not in RECIPIENT_ERRORS:
            known = sorted(RECIPIENT_ERRORS)
            raise FakeConfigError(f"errors: {number!r}: unknown code {code!r} (known: {known})")
    return dict(value)


def _optional_text(key: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in (None, ""):
            return None  # not configured: any non-empty value is accepted
        if not isinstance(value, str):
            raise FakeConfigError(f"{key}: expected a string or null")
        return value

    return check


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "client_id": _optional_text("client_id"),
    "client_secret": _optional_text("client_secret"),
    "token_ttl_s": lambda v: _number("token_ttl_s", v, low=1.0),
    "token_latency_s": lambda v: _number("token_latency_s", v),
    "token_fail_next": _fail_next,
    "fail_next": _fail_next,
    "errors": _errors,
    "latency_s": lambda v: _number("latency_s", v),
    "skip_next": lambda v: _integer("skip_next", v),
    "hang_next": lambda v: _integer("hang_next", v),
    "hang_s": lambda v: _number("hang_s", v),
    "fail_rate": lambda v: _number("fail_rate", v, high=1.0),
    "seed": lambda v: _integer("seed", v, low=-(2**63)),
}
CONFIG_KEYS = frozenset(_VALIDATORS)
_DEFAULTS: dict[str, Any] = {
    "client_id": None,
    "client_secret": None,
    "token_ttl_s": DEFAULT_TOKEN_TTL_S,
    "token_latency_s": 0.0,
    "token_fail_next": [],
    "fail_next": [],
    "errors": {},
    "latency_s": 0.0,
    "skip_next": 0,
    "hang_next": 0,
    "hang_s": 30.0,
    "fail_rate": 0.0,
    "seed": 0,
}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def credentials_error(code: int) -> Response:
    return _json(401, {"code": code, "message": CREDENTIALS[code], "description": "See Orange's error guide"})


def request_error(code: str, *variables: str) -> Response:
    status, text = RECIPIENT_ERRORS[code]
    kind = "policyException" if code.startswith("POL") else "serviceException"
    exception = {"messageId": code, "text": text, "variables": list(variables)}
    return _json(status, {"requestError": {kind: exception}})


def http_error(status: int) -> Response:
    """An injected failure, shaped as Orange's gateway answers it."""
    if status == 401:
        return credentials_error(41)
    if status == 400:
        return request_error("SVC0002", "outboundSMSMessageRequest")
    if status == 403:
        return request_error("POL0001", "insufficient balance")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    headers = {"Retry-After": "1"} if status == 429 else None
    return _json(status, {"code": 53 if status == 429 else 1, "message": phrase}, headers)


class FakeOrange:
    """The fake's state: configuration, issued tokens and the log of every request, shared by the
    server's event loop and the test thread behind one lock; readers get copies."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, **config: Any) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._log: list[dict[str, Any]] = []
        self._tokens: dict[str, float] = {}  # token → expiry on the fake's clock
        self._tokens_issued = 0
        self._request_ids = itertools.count(1)
        self._settings: dict[str, Any] = copy.deepcopy(_DEFAULTS)
        self._rng = random.Random(0)
        self.configure(**config)

    # --- configuration -------------------------------------------------------------------------

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change any of CONFIG_KEYS; lists and maps replace the current ones. Raises
        FakeConfigError (a ValueError) and changes nothing on bad input."""
        unknown = set(changes) - CONFIG_KEYS
        if unknown:
            raise FakeConfigError(f"unknown configuration keys: {sorted(unknown)}")
        validated = {key: _VALIDATORS[key](value) for key, value in changes.items()}
        with self._lock:
            self._settings.update(validated)
            if "seed" in validated:
                self._rng = random.Random(validated["seed"])
            return self._config_locked()

    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._config_locked()

    def _config_locked(self) -> dict[str, Any]:
        hidden = ("client_id", "client_secret")
        shown = {k: copy.deepcopy(v) for k, v in self._settings.items() if k not in hidden}
        # Credentials are not echoed: a developer may have set real-looking ones.
        shown["credentials_set"] = self._settings["client_secret"] is not None
        shown["tokens_issued"] = self._tokens_issued
        return shown

    def reset(self, *, config: bool = False) -> None:
        """Forget requests and tokens; with `config=True`, also restore the default configuration."""
        with self._lock:
            self._log.clear()
            self._tokens.clear()
            self._tokens_issued = 0
            if config:
                self._settings = copy.deepcopy(_DEFAULTS)
                self._rng = random.Random(0)

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (Orange answers 401, code 42)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, float("-inf"))

    # --- reading -------------------------------------------------------------------------------

    def tokens_issued(self) -> int:
        with self._lock:
            return self._tokens_issued

    def tokens(self) -> list[str]:
        """The tokens issued since the last reset (to check that none reaches a log)."""
        with self._lock:
            return list(self._tokens)

    def requests(self) -> list[dict[str, Any]]:
        """Every request to the SMS endpoint, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._log)

    def sent_message_details(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "number": entry["number"],
                    "message": entry["message"],
                    "messageId": entry["messageId"],
                    "from": entry["senderName"] or entry["sender"],
                    "status": "Accepted",
                    "cost": "",
                    "request_id": entry["id"],
                    "received_at": entry["received_at"],
                }
                for entry in self._log
                if entry["messageId"]
            ]

    def sent_messages(self) -> list[tuple[str, str, str]]:
        """(number, message, messageId) of every SMS accepted, oldest first."""
        return [(m["number"], m["message"], m["messageId"]) for m in self.sent_message_details()]

    # --- the token endpoint ----------------------------------------------------------------------

    def handle_token(self, authorization: str | None, form: dict[str, str]) -> tuple[Response, float]:
        client = _basic(authorization)
        with self._lock:
            cfg = self._settings
            delay = cfg["token_latency_s"]
            if cfg["token_fail_next"]:
                return http_error(cfg["token_fail_next"].pop(0)), delay
            if client is None:
                return credentials_error(40), delay
            wanted = (cfg["client_id"], cfg["client_secret"])
            if not all(client) or any(w is not None and w != given for w, given in zip(wanted, client)):
                return credentials_error(41), delay
            if form.get("grant_type") != "client_credentials":
                return _json(400, {"error": "unsupported_grant_type"}), delay
            token = secrets.token_urlsafe(24)
            self._tokens[token] = self._clock() + cfg["token_ttl_s"]
            self._tokens_issued += 1
            # expires_in is a string in Orange's documented answer.
            body = {"token_type": "Bearer", "access_token": token, "expires_in": str(int(cfg["token_ttl_s"]))}
        return _json(200, body), delay

    # --- the SMS endpoint ------------------------------------------------------------------------

    def _token_problem(self, authorization: str | None) -> int | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not token:
            return 40
        expiry = self._tokens.get(token)
        if expiry is None:
            return 41
        return 42 if self._clock() >= expiry else None

    def _check_request(self, sender: str, body: Any) -> tuple[Response | None, str, str, str | None]:
        """(an error answer or None, address, message, sender name) of one outbound request."""
        request = body.get("outboundSMSMessageRequest") if isinstance(body, dict) else None
        if not isinstance(request, dict):
            return request_error("SVC0002", "outboundSMSMessageRequest"), "", "", None
        address = request.get("address")
        if isinstance(address, list):  # a list of exactly one is accepted too
            if len(address) != 1:
                return request_error("POL0003", "address"), "", "", None
            address = address[0]
        content = request.get("outboundSMSTextMessage")
        text = content.get("message") if isinstance(content, dict) else None
        name = request.get("senderName")
        if request.get("senderAddress") != sender:
            return request_error("SVC0002", "senderAddress"), "", "", None
        if not isinstance(text, str) or not text:
            return request_error("SVC0002", "message"), "", "", None
        if not isinstance(address, str) or not _ADDRESS_RE.match(address):
            return request_error("SVC0004", str(address)), "", text, name
        return None, address, text, name

    def handle_send(
        self, sender: str, authorization: str | None, raw: bytes, base_url: str
    ) -> tuple[Response, float]:
        """Decide the answer to one send, record it, and return it with the delay to apply first.
        Recorded before any delay: a real platform has it even when the client stops waiting."""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        with self._lock:
            cfg = self._settings
            # skip_next lets requests through before the injected failures apply (mid-batch failures).
            passing = cfg["skip_next"] > 0
            cfg["skip_next"] -= passing
            hung = not passing and cfg["hang_next"] > 0
            cfg["hang_next"] -= hung
            injected = cfg["fail_next"].pop(0) if cfg["fail_next"] and not passing else None
            if injected is None and not passing and cfg["fail_rate"] > 0:
                injected = 500 if self._rng.random() < cfg["fail_rate"] else None
            error, address, text, name = self._check_request(sender, body)
            number = address.removeprefix("tel:")
            token_problem = self._token_problem(authorization)
            message_id = None
            if injected is not None:
                response = http_error(injected)
            elif token_problem is not None:
                response = credentials_error(token_problem)
            elif error is not None:
                response = error
            elif number in cfg["errors"]:
                response = request_error(cfg["errors"][number], address)
            else:
                message_id = new_message_id()
                path = OUTBOUND_PATH.format(sender=quote(sender, safe=""))
                url = f"{base_url.rstrip('/')}{path}/{message_id}"
                request = {"address": [address], "senderAddress": sender}
                request["outboundSMSTextMessage"] = {"message": text}
                if name:
                    request["senderName"] = name
                request["resourceURL"] = url
                response = _json(201, {"outboundSMSMessageRequest": request}, {"Location": url})
            self._log.append(
                {
                    "id": next(self._request_ids),
                    "sender": sender,
                    "senderName": name,
                    "number": number,
                    "message": text,
                    "token_ok": token_problem is None,
                    "http_status": response.status_code,
                    "messageId": message_id,
                    "received_at": _now_iso(),
                    "hung": hung,
                }
            )
            delay = cfg["latency_s"] + (cfg["hang_s"] if hung else 0.0)
        return response, delay


def _basic(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme != "Basic" or not encoded:
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


# --- what Orange posts to the application's callbacks ----------------------------------------------


def delivery_notification(
    address: str, status: str = "DeliveredToTerminal", callback_data: str = ""
) -> dict[str, Any]:
    if status not in DELIVERY_STATUS:
        raise ValueError(f"unknown delivery status {status!r}")
    return {
        "deliveryInfoNotification": {
            "callbackData": callback_data,
            "deliveryInfo": {"address": f"tel:{address}", "deliveryStatus": status},
        }
    }


def inbound_notification(
    sender: str, message: str, *, destination: str = "+2230000", message_id: str | None = None, when: str = ""
) -> dict[str, Any]:
    sms: dict[str, Any] = {
        "senderAddress": f"tel:{sender}",
        "destinationAddress": destination,
        "message": message,
        "dateTime": when or _now_iso(),
    }
    if message_id is not None:
        sms["messageId"] = message_id
    return {"inboundSMSMessageNotification": {"inboundSMSMessage": sms}}


# --- the HTTP application ------------------------------------------------------------------------


def create_fake_orange_app(fake: FakeOrange | None = None) -> FastAPI:
    """The fake's ASGI app; its state is `app.state.fake`."""
    fake = fake if fake is not None else FakeOrange()
    app = FastAPI(title="Fake Orange SMS API", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fake = fake

    async def answer(response: Response, delay: float) -> Response:
        if delay > 0:
            await asyncio.sleep(delay)  # not time.sleep: other requests keep being served
        return response

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        raw = await request.form()
        form = {k: v for k, v in raw.items() if isinstance(v, str)}
        return await answer(*fake.handle_token(request.headers.get("Authorization"), form))

    @app.post(OUTBOUND_PATH.format(sender="{sender}"))
    async def send_sms(sender: str, request: Request) -> Response:
        # base_url holds the mount prefix (/fake-orange under `make run`), as resourceURL must.
        raw = await request.body()
        authorization = request.headers.get("Authorization")
        return await answer(*fake.handle_send(unquote(sender), authorization, raw, str(request.base_url)))

    add_log_routes(app, fake)

    @app.post("/_fake/expire-tokens")
    async def expire_tokens() -> JSONResponse:
        fake.expire_tokens()
        return JSONResponse({"expired": True})

    @app.api_route("/_fake/config", methods=["GET", "POST"])
    async def config(request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse(fake.config())
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise FakeConfigError("body must be a JSON object")
            return JSONResponse(fake.configure(**changes))
        except ValueError as exc:  # bad JSON or a refused change (FakeConfigError is a ValueError)
            return JSONResponse({"detail": str(exc), "known": sorted(CONFIG_KEYS)}, status_code=400)

    @app.get("/_fake/", response_class=HTMLResponse)
    async def messages_page() -> HTMLResponse:
        page = _messages_page(fake.sent_message_details())
        return HTMLResponse(page.replace("Fake Africa's Talking", "Fake Orange"))

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Orange SMS API for local development")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--token-ttl", type=float, default=DEFAULT_TOKEN_TTL_S, help="token life, seconds")
    args = parser.parse_args(argv)
    app = create_fake_orange_app(FakeOrange(token_ttl_s=args.token_ttl))
    base = f"http://{args.host}:{args.port}"
    print(f"Fake Orange: token at {base}{TOKEN_PATH}, SMS at {base}/smsmessaging/v1/..., read {base}/_fake/")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
