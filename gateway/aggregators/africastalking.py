"""Africa's Talking: the USSD callback contract, turned into our own types at the edge.

Callback (POST, form): sessionId, serviceCode, phoneNumber, networkCode, text ("" on the first
hop, then every input joined by "*"). Reply text/plain starting "CON " or "END ".
End-of-session notification (separate URL): date, sessionId, serviceCode, networkCode,
phoneNumber, status (Incomplete|Success|Failed), cost, durationInMillis, hopsCount, input,
lastAppResponse, errorMessage (maybe empty or absent).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping

from gateway.phones import InvalidPhone, parse_phone

MAX_SESSION_ID = 100
MAX_TEXT = 2000  # inputs joined; the engine caps the steps it replays

_END_STATUS = {"Incomplete": "incomplete", "Success": "success", "Failed": "failed"}


class BadRequest(ValueError):
    """A malformed callback: answered 400 with this reason, nothing stored."""


@dataclass(frozen=True)
class UssdHop:
    session_id: str
    service_code: str
    phone: str  # E.164
    network_code: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class UssdSessionEnd:
    session_id: str
    phone: str
    service_code: str
    network_code: str
    status: str
    cost: str
    duration_ms: int | None
    hops: int | None
    error: str
    ended_at: dt.datetime | None


def _field(form: Mapping[str, str], name: str, *, required: bool = False, limit: int = 200) -> str:
    value = form.get(name)
    if value is None or (required and not str(value).strip()):
        if required:
            raise BadRequest(f"missing field: {name}")
        return ""
    value = str(value)
    if len(value) > limit:
        raise BadRequest(f"field too long: {name}")
    return value.strip()


def _phone(form: Mapping[str, str]) -> str:
    try:
        return parse_phone(_field(form, "phoneNumber", required=True, limit=32))
    except InvalidPhone as exc:
        raise BadRequest(f"phoneNumber: {exc}") from None


def parse_ussd(form: Mapping[str, str]) -> UssdHop:
    session_id = _field(form, "sessionId", required=True, limit=MAX_SESSION_ID)
    phone = _phone(form)
    text = form.get("text") or ""
    if len(text) > MAX_TEXT:
        raise BadRequest("field too long: text")
    return UssdHop(
        session_id=session_id,
        service_code=_field(form, "serviceCode", limit=32),
        phone=phone,
        network_code=_field(form, "networkCode", limit=16),
        inputs=tuple(text.split("*")) if text else (),
    )


def ussd_reply(text: str, *, end: bool) -> str:
    return ("END " if end else "CON ") + text


def _int_or_none(value: str, name: str) -> int | None:
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError:
        raise BadRequest(f"{name}: not a number") from None


def parse_date(value: str) -> dt.datetime | None:
    """AT dates: `2017-05-03T06:04:45Z`, `2017-05-03 06:04:45`, or with milliseconds; UTC."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"date: unreadable {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def parse_ussd_end(form: Mapping[str, str]) -> UssdSessionEnd:
    raw_status = _field(form, "status", required=True, limit=32)
    status = _END_STATUS.get(raw_status)
    if status is None:
        raise BadRequest(f"status: unknown {raw_status!r}")
    return UssdSessionEnd(
        session_id=_field(form, "sessionId", required=True, limit=MAX_SESSION_ID),
        phone=_phone(form),
        service_code=_field(form, "serviceCode", limit=32),
        network_code=_field(form, "networkCode", limit=16),
        status=status,
        cost=_field(form, "cost", limit=32),
        duration_ms=_int_or_none(_field(form, "durationInMillis", limit=20), "durationInMillis"),
        hops=_int_or_none(_field(form, "hopsCount", limit=10), "hopsCount"),
        error=_field(form, "errorMessage", limit=2000)[:255],
        ended_at=parse_date(_field(form, "date", limit=40)),
    )
