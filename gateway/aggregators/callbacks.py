"""What every aggregator callback shares: a bounded form parse, the answers for a malformed
request and for a database that is away, and a per-phone rate limit."""

from __future__ import annotations

import time
from collections import deque
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import PlainTextResponse

from gateway.aggregators import africastalking as at

MAX_FORM_FIELDS = 100


async def read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        # What aggregators send. Parsed with the standard library, as Starlette does (latin-1
        # bytes, then %-escapes as UTF-8): its streaming parser costs a tenth of a hop here.
        body = await request.body()
        try:
            pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError as exc:
            raise at.BadRequest(f"unreadable form: {exc}") from None
        # NUL dropped: PostgreSQL refuses it in text, and no field means anything by one; a
        # caller's hop is answered rather than refused (the farmer would see a network error).
        return {k.replace("\x00", ""): v.replace("\x00", "") for k, v in pairs}
    try:
        form = await request.form(max_fields=MAX_FORM_FIELDS)
    except Exception as exc:  # malformed body: the sender's fault, never ours
        raise at.BadRequest(f"unreadable form: {exc.__class__.__name__}") from None
    return {k.replace("\x00", ""): v.replace("\x00", "") for k, v in form.items() if isinstance(v, str)}


def bad_request(exc: at.BadRequest) -> PlainTextResponse:
    return PlainTextResponse(str(exc), status_code=400)


class PhoneRateLimit:
    """At most `per_minute` requests per phone in this process (a runaway handset or a replay
    loop cannot monopolise it); a sliding one-minute window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._sweep_at = 0.0

    def allow(self, phone: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now >= self._sweep_at:
            # Once a minute, forget the phones idle for a minute: memory follows the callers of
            # the last minute or two, not every number ever seen.
            self._seen = {p: ts for p, ts in self._seen.items() if ts and now - ts[-1] < 60}
            self._sweep_at = now + 60
        recent = self._seen.get(phone)
        if recent is None:
            recent = self._seen[phone] = deque()
        while recent and now - recent[0] >= 60:  # oldest first: each hop drops what expired
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        return True

    def __len__(self) -> int:
        return len(self._seen)


def unavailable(request: Request) -> PlainTextResponse:
    request.app.state.metrics.webhook_errors.labels("unavailable").inc()
    # The aggregator retries until it gets a 200: nothing is lost while the database is away.
    return PlainTextResponse("temporarily unavailable", status_code=503, headers={"Retry-After": "60"})
