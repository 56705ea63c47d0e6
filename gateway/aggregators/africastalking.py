"""Africa's Talking: its USSD and SMS contracts, turned into our own types at the edge.

Callback (POST, form): sessionId, serviceCode, phoneNumber, networkCode, text ("" on the first
hop, then every input joined by "*"). Reply text/plain starting "CON " or "END ".
End-of-session notification (separate URL): date, sessionId, serviceCode, networkCode,
phoneNumber, status (Incomplete|Success|Failed), cost, durationInMillis, hopsCount, input,
lastAppResponse, errorMessage (maybe empty or absent).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

from gateway.aggregators.sending import (
    ACCEPTED,
    ACCOUNT,
    FAILED,
    REJECTED,
    AccountProblem,
    RecipientResult,
    Rejected,
    Throttled,
    TransportError,
)
from gateway.core.phones import InvalidPhone, parse_phone

if TYPE_CHECKING:
    import requests

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


# -- SMS ---------------------------------------------------------------------------------------
#
# Incoming (form): from, to, text, date, id, linkId (optional), networkCode, cost (sometimes).
# AT retries every minute for 12 h until it gets a 200, so handling must be idempotent on `id`.
# Delivery report (form): id, status, phoneNumber, networkCode, failureReason, retryCount.
# Bulk opt-out (form): senderId, phoneNumber.

PROVIDER = "africastalking"


@dataclass(frozen=True)
class InboundSms:
    provider_id: str
    phone: str
    to: str
    text: str
    received_at: dt.datetime | None
    link_id: str | None
    network_code: str
    cost: str | None


@dataclass(frozen=True)
class DeliveryReport:
    message_id: str
    status: str  # our message status: sent | delivered | failed | undeliverable
    final: bool
    provider_status: str
    phone: str | None
    failure_reason: str
    retry_count: int | None
    blacklisted: bool


# AT delivery status → (our status, final). AbsentSubscriber is worth a later retry.
DELIVERY_STATUS = {
    "Sent": ("sent", False),
    "Submitted": ("sent", False),
    "Buffered": ("sent", False),
    "Success": ("delivered", True),
    "Rejected": ("undeliverable", True),
    "Failed": ("undeliverable", True),
    "Expired": ("undeliverable", True),
    "AbsentSubscriber": ("failed", False),
}
BLACKLIST_REASONS = {"UserInBlacklist", "UserInBlackList"}
# AT's own misspelling, seen in the field.
_REASON_ALIASES = {"NotNetworkSubcriber": "NotNetworkSubscriber"}


def parse_inbound_sms(form: Mapping[str, str]) -> InboundSms:
    provider_id = _field(form, "id", required=True, limit=100)
    try:
        phone = parse_phone(_field(form, "from", required=True, limit=32))
    except InvalidPhone as exc:
        raise BadRequest(f"from: {exc}") from None
    text = form.get("text")
    if text is None:
        raise BadRequest("missing field: text")
    if len(text) > 1600:
        raise BadRequest("field too long: text")
    return InboundSms(
        provider_id=provider_id,
        phone=phone,
        to=_field(form, "to", limit=32),
        text=text,
        received_at=parse_date(_field(form, "date", limit=40)),
        link_id=_field(form, "linkId", limit=100) or None,
        network_code=_field(form, "networkCode", limit=16),
        cost=_field(form, "cost", limit=32) or None,
    )


def parse_delivery_report(form: Mapping[str, str]) -> DeliveryReport:
    message_id = _field(form, "id", required=True, limit=100)
    raw_status = _field(form, "status", required=True, limit=32)
    if raw_status not in DELIVERY_STATUS:
        raise BadRequest(f"status: unknown {raw_status!r}")
    status, final = DELIVERY_STATUS[raw_status]
    phone_raw = _field(form, "phoneNumber", limit=32)
    try:
        phone = parse_phone(phone_raw) if phone_raw else None
    except InvalidPhone as exc:
        raise BadRequest(f"phoneNumber: {exc}") from None
    reason = _field(form, "failureReason", limit=64)
    reason = _REASON_ALIASES.get(reason, reason)
    return DeliveryReport(
        message_id=message_id,
        status=status,
        final=final,
        provider_status=raw_status,
        phone=phone,
        failure_reason=reason,
        retry_count=_int_or_none(_field(form, "retryCount", limit=10), "retryCount"),
        blacklisted=reason in BLACKLIST_REASONS,
    )


def parse_optout(form: Mapping[str, str]) -> tuple[str, str]:
    """(phone, sender id) of a bulk SMS opt-out notification."""
    return _phone(form), _field(form, "senderId", limit=32)


# Outbound: the official SDK builds the request (fields, URL, number checks); its transport is
# replaced because it drops the HTTP status (all we would get is an exception with the body) and
# opens a new connection for every request.

RECIPIENT_STATUS = {
    100: ACCEPTED,  # Processed
    101: ACCEPTED,  # Sent
    102: ACCEPTED,  # Queued
    401: ACCOUNT,  # RiskHold
    402: ACCOUNT,  # InvalidSenderId
    403: REJECTED,  # InvalidPhoneNumber
    404: REJECTED,  # UnsupportedNumberType
    405: ACCOUNT,  # InsufficientBalance
    406: REJECTED,  # UserInBlacklist
    407: REJECTED,  # CouldNotRoute
    409: REJECTED,  # DoNotDisturbRejection
    500: FAILED,  # InternalServerError
    501: FAILED,  # GatewayError
    502: FAILED,  # RejectedByGateway
}
BLACKLIST_CODE = 406
MAX_RECIPIENTS = 1000  # no documented cap; about 1,000 is common


def _sdk_sms(username: str, api_key: str, base_url: str | None, http: requests.Session):
    """The official SDK's SMS service, sending through our own requests session. The SDK and
    requests (~6 MB resident) are imported at the first send: an idle worker never needs them."""
    from africastalking.SMS import SMSService

    class _SdkSms(SMSService):
        def __init__(self) -> None:
            super().__init__(username, api_key)
            if base_url:  # the only way to point the SDK elsewhere (a fake, a proxy)
                self._baseUrl = base_url.rstrip("/") + "/version1"
            self._http = http

        def _make_request(self, url, method, headers, data, params, callback=None, timeout=None):
            return self._http.request(method, url, headers=headers, data=data, params=params, timeout=timeout)

    return _SdkSms()


def _cost_amount(cost: str) -> float:
    """'XOF 10.0000' → 10.0; anything unreadable → 0."""
    try:
        return float(cost.split()[-1]) if cost else 0.0
    except (ValueError, IndexError):
        return 0.0


class AfricasTalkingSender:
    name = PROVIDER

    def __init__(
        self,
        *,
        username: str,
        api_key: str,
        sender_id: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        trust_env: bool = False,
    ) -> None:
        self._config = (username, api_key, base_url, trust_env)
        self._http: requests.Session | None = None
        self._sdk = None
        self._lock = threading.Lock()
        self._sender_id = sender_id
        self._timeout = (3.05, timeout_s)

    def _client(self):
        with self._lock:  # the worker's threads may send at once: one session for all
            if self._sdk is None:
                import requests

                username, api_key, base_url, trust_env = self._config
                self._http = requests.Session()
                # requests re-reads proxy variables from the environment on every request
                # (measurable at thousands of requests); only when asked to use them.
                self._http.trust_env = trust_env
                self._sdk = _sdk_sms(username, api_key, base_url, self._http)
            return self._sdk

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def send(self, text: str, recipients: Sequence[str]) -> list[RecipientResult]:
        if not recipients:
            return []
        if len(recipients) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients per request")
        sdk = self._client()
        import requests  # already loaded by _client(): a dictionary lookup

        try:
            response = sdk.send(text, list(recipients), sender_id=self._sender_id, timeout=self._timeout)
        except ValueError as exc:  # the SDK's own number check
            raise Rejected(str(exc)) from None
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            raise TransportError(f"could not connect: {exc.__class__.__name__}", reached=False) from None
        except requests.ConnectionError as exc:
            # Refused before sending is safe to retry; anything after the request left is not.
            reached = not _refused(exc)
            raise TransportError(f"connection error: {exc.__class__.__name__}", reached=reached) from None
        except requests.Timeout as exc:
            raise TransportError(f"no answer in time: {exc.__class__.__name__}", reached=True) from None
        return self._results(response, recipients)

    def _results(self, response: requests.Response, recipients: Sequence[str]) -> list[RecipientResult]:
        raise_for_status(response)
        try:
            entries = response.json()["SMSMessageData"]["Recipients"]
        except (ValueError, KeyError, TypeError):
            # Accepted, but we cannot tell what happened to whom: do not resend blindly.
            raise TransportError("unreadable success response", reached=True) from None
        results = []
        for entry in entries:
            code = int(entry.get("statusCode", 0) or 0)
            outcome = RECIPIENT_STATUS.get(code, FAILED)
            message_id = entry.get("messageId")
            cost = str(entry.get("cost") or "")
            results.append(
                RecipientResult(
                    phone=str(entry.get("number", "")),
                    outcome=outcome,
                    message_id=message_id if message_id and message_id != "None" else None,
                    provider_status=str(entry.get("status", code)),
                    cost=cost,
                    cost_amount=_cost_amount(cost),
                    blacklisted=code == BLACKLIST_CODE,
                )
            )
        return results


def _refused(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "Name or service" in text


class HttpAnswer(Protocol):
    """What raise_for_status reads of an answer: requests' and httpx's responses both have it."""

    status_code: int
    text: str
    headers: Mapping[str, str]


def raise_for_status(response: HttpAnswer) -> None:
    """Africa's Talking's HTTP status sorted into our kinds of failure (SMS and voice APIs alike):
    nothing for a 2xx, else AccountProblem, Throttled, TransportError (a 5xx: not accepted) or
    Rejected."""
    status = response.status_code
    if status in (401, 403):
        raise AccountProblem(f"HTTP {status}: authentication refused")
    if status == 429:
        raise Throttled(f"HTTP {status}", retry_after=_retry_after(response))
    if status >= 500:
        raise TransportError(f"HTTP {status}", reached=False)
    if not 200 <= status < 300:
        raise Rejected(f"HTTP {status}: {response.text[:200]}")


def _retry_after(response: HttpAnswer) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
