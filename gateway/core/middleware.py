"""Cross-cutting HTTP concerns, as plain ASGI middleware: request ids for the logs, body size
limits, security headers for the console, and the webhook guard (shared secret, networks)."""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import ipaddress
import logging
import secrets
from typing import Iterable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        # Accept a proxy's id only if it looks like one (no log injection).
        rid = incoming if incoming and len(incoming) <= 64 and incoming.replace("-", "").isalnum() else secrets.token_hex(8)
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body larger than the limit of its path, declared (Content-Length) or streamed;
    408 for a body that does not arrive within `timeout_s` (a slow-loris client holding a
    request open byte by byte: uvicorn has no body read timeout of its own, only keep-alive)."""

    def __init__(self, app: ASGIApp, *, default: int, by_prefix: dict[str, int], timeout_s: float = 30.0) -> None:
        self.app = app
        self.default = default
        self.by_prefix = sorted(by_prefix.items(), key=lambda kv: -len(kv[0]))
        self.timeout_s = timeout_s

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.by_prefix if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope["path"])
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _plain(send, 413, f"request body larger than {limit} bytes")
        if (declared is None or declared == b"0") and b"transfer-encoding" not in headers:
            return await self.app(scope, receive, send)  # no body to wait for
        # Read it all first, within the limit and the time allowed, then replay it: no
        # application code waits on a slow client or can swallow the refusal.
        # One deadline for the whole body (asyncio.timeout: wait_for made a task per message,
        # a measurable share of a USSD hop).
        messages, seen, too_large = [], 0, False
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    messages.append(message)
                    if message["type"] != "http.request":
                        break
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        too_large = True
                        break
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return await _plain(send, 408, f"request body not received within {self.timeout_s:g} s")
        if too_large:
            return await _plain(send, 413, f"request body larger than {limit} bytes")

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class RejectNul:
    """400 for a NUL character in the console's path, query or body: PostgreSQL refuses NUL in
    text, which would surface as a 500 (and SQLite would store it). The API's models refuse
    control characters themselves, field by field (422); the aggregators' callbacks drop them
    (gateway/webhooks*.py), so that a caller is answered.

    `binary_uploads`: paths whose multipart bodies carry a binary file (an audio recording is
    full of NUL bytes); their body is not scanned, the route checks its text fields itself."""

    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], binary_uploads: tuple[str, ...] = ()) -> None:
        self.app = app
        self.prefixes = prefixes
        self.binary_uploads = binary_uploads

    @staticmethod
    def _has_nul(data: bytes) -> bool:
        return b"\x00" in data or b"%00" in data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)
        if "\x00" in scope["path"] or self._has_nul(scope.get("raw_path") or b"") or self._has_nul(scope.get("query_string", b"")):
            return await _plain(send, 400, "the request contains a NUL character")
        content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in (b"application/x-www-form-urlencoded", b"multipart/form-data", b"application/json"):
            return await self.app(scope, receive, send)
        if content_type == b"multipart/form-data" and self.binary_uploads and scope["path"].startswith(self.binary_uploads):
            return await self.app(scope, receive, send)
        messages = []
        while True:  # BodyLimit, outside this, bounded its size and time
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if content_type == b"application/x-www-form-urlencoded":
            nul = self._has_nul(body)
        elif content_type == b"application/json":  # JSON writes NUL as \u0000 (callbacks: Orange)
            nul = b"\x00" in body or b"\\u0000" in body
        else:
            nul = b"\x00" in body
        if nul:
            return await _plain(send, 400, "the request contains a NUL character (a file: save it as CSV UTF-8)")

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Strict headers on console pages; a per-request nonce lets the few inline scripts run."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/admin", hsts: bool = False) -> None:
        self.app = app
        self.prefix = prefix
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = (
                    f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
                    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                    "base-uri 'none'; object-src 'none'"
                )
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
                headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WebhookGuard:
    """Aggregator callbacks must carry `?token=<secret>` (compared in constant time) and, when
    networks are listed, come from one of them; otherwise 403 and nothing is read or stored."""

    def __init__(self, app: ASGIApp, *, prefix: str, secret: str | None, networks: Iterable[str]) -> None:
        self.app = app
        self.prefix = prefix
        self.secret = secret.encode() if secret else None
        self.networks = [ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip()]

    def allowed(self, scope: Scope) -> bool:
        if self.networks:
            client = scope.get("client")
            try:
                address = ipaddress.ip_address(client[0]) if client else None
            except ValueError:
                address = None
            if address is None or not any(address in net for net in self.networks):
                return False
        if self.secret is not None:
            from urllib.parse import parse_qs

            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0].encode()
            if not hmac.compare_digest(given, self.secret):
                return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix) and not self.allowed(scope):
            logging.getLogger("gateway.security").warning(
                "webhook refused", extra={"path": scope["path"], "client": (scope.get("client") or ("?",))[0]}
            )
            return await _plain(send, 403, "forbidden")
        await self.app(scope, receive, send)


class FastLane:
    """POST to `path` goes straight to `endpoint` (an `async def (Request) -> Response` that is
    also registered as an ordinary route, for the API's description and for other methods):
    the busiest callback skips the layers inside this one (the console's session cookie, the
    exception middleware, FastAPI's routing across every console page, its dependency solving):
    5-15 % of a USSD hop's CPU, measured in-process (bench/ussd_profile.py). Placed inside the
    request id, body limit, webhook guard and NUL guard, so the hop is checked exactly as
    before; an error that escapes the endpoint still meets the server-error middleware outside
    them all."""

    def __init__(self, app: ASGIApp, *, path: str, endpoint) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


class LoopbackOnly:
    """Only this machine may reach the wrapped app (the development fakes); others get 404, as if
    it were not there. The address is the connection's (or a trusted proxy's X-Forwarded-For)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_loopback(scope.get("client")):
            return await _plain(send, 404, "not found")
        await self.app(scope, receive, send)


def is_loopback(client) -> bool:
    try:
        return bool(client) and ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False
