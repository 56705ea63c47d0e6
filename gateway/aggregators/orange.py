"""Orange's SMS API ("SMS Africa and Middle East"): its contract, turned into our own types at the edge.

From Orange's documentation (developer.orange.com, SMS Africa and Middle East 2.0, and its guide to
error handling):
- a token from `POST {base}/oauth/v3/token`, the application's Basic header (client id and secret),
  form `grant_type=client_credentials`, `Accept: application/json`; the answer is
  `{"token_type": "Bearer", "access_token": ..., "expires_in": "3600"}` (a string), valid one hour;
  an expired one is refused, and the application must renew it;
- 401 with code 40 (missing), 41 (invalid: client id or secret wrong, pending or revoked) or 42
  (expired) credentials; rate limiting is enforced per API;
- the sender is the application's number, with its country code, in the path and in the body;
  callback URLs for inbound SMS and delivery receipts are given to Orange's local team.

Not in the documentation we had (the stored copy stops before the examples; see the README's
"Orange SMS API"), taken from the GSMA OneAPI shape that published Orange clients use, and kept
lenient here: the outbound body (`outboundSMSMessageRequest` with `address`, `senderAddress`,
`senderName`, `outboundSMSTextMessage.message`), one address per request, the 201 answer carrying
`resourceURL` (whose last segment is our message id), the error bodies (`requestError` with a
`serviceException` SVC... or `policyException` POL...), the callback bodies
(`inboundSMSMessageNotification`, `deliveryInfoNotification`) and the delivery status words.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence
from urllib.parse import quote

from gateway.aggregators.africastalking import BadRequest, DeliveryReport, InboundSms, parse_date
from gateway.aggregators.sending import (
    ACCEPTED,
    ACCOUNT,
    FAILED,
    REJECTED,
    AccountProblem,
    RecipientResult,
    Rejected,
    SendError,
    Throttled,
    TransportError,
)
from gateway.core.phones import InvalidPhone, parse_phone

if TYPE_CHECKING:
    # httpx is imported where a request is made: with its command line (click, rich, pygments)
    # it added ~6 MB to the started server, which a server that never talks to Orange should not carry.
    import httpx

log = logging.getLogger("gateway.orange")

PROVIDER = "orange"
ORANGE_API = "https://api.orange.com"
TOKEN_PATH = "/oauth/v3/token"
OUTBOUND_PATH = "/smsmessaging/v1/outbound/{sender}/requests"
ACCEPTED_STATUS = "Accepted"  # our word: Orange's 201 carries no status of its own
# Refresh this long before the token expires (a tenth of its life when that is shorter), so that
# a request never leaves with a token that dies on the way.
REFRESH_MARGIN_S = 60.0

_NUMBER_RE = re.compile(r"^\+\d{6,15}$")


def normalize_sender(raw: str) -> str:
    """`tel:+2230000` from `tel:+2230000`, `+2230000` or `2230000` (Orange writes it with `tel:+`)."""
    digits = raw.strip().removeprefix("tel:").lstrip("+")
    if not digits.isdigit():
        raise ValueError(f"not a sender number: {raw!r}")
    return f"tel:+{digits}"


def outbound_path(sender: str) -> str:
    # The sender goes into the path URL-encoded: tel%3A%2B2230000.
    return OUTBOUND_PATH.format(sender=quote(sender, safe=""))


def outbound_body(text: str, phone: str, sender: str, sender_name: str | None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "address": f"tel:{phone}",
        "senderAddress": sender,
        "outboundSMSTextMessage": {"message": text},
    }
    if sender_name:
        request["senderName"] = sender_name
    return {"outboundSMSMessageRequest": request}


# -- errors ---------------------------------------------------------------------------------------


def error_code(response: httpx.Response) -> str:
    """Orange's own code for a failed request: `SVC0004`, `POL0001`, `42`..., or `HTTP 400`.
    The body's text is never kept: it may quote the phone number."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        failure = body.get("requestError")
        if isinstance(failure, dict):
            for exception in failure.values():
                if isinstance(exception, dict) and exception.get("messageId"):
                    return str(exception["messageId"])[:16]
        if body.get("code") is not None:
            return str(body["code"])[:16]
        if isinstance(body.get("error"), str):  # OAuth's own form: {"error": "invalid_client"}
            return body["error"][:16]
    return f"HTTP {response.status_code}"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait, when Orange says so in seconds (an HTTP date or nonsense is ignored)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 86_400 else None


def _throttled(response: httpx.Response, step: str) -> Throttled:
    return Throttled(f"{step}: HTTP 429 {error_code(response)}", retry_after=retry_after(response))


def transport_error(exc: httpx.HTTPError, step: str) -> TransportError:
    """Whether the request may have reached Orange: a refused connection, a pool or write failure
    never delivered a whole request; a read that failed or timed out came after it left."""
    import httpx

    reached = isinstance(exc, (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError))
    return TransportError(f"{step}: {exc.__class__.__name__}", reached=reached)


# -- the token ------------------------------------------------------------------------------------


class TokenCache:
    """One access token shared by every thread, refreshed before it expires. The lock is held
    while fetching, so threads that need a token at the same time wait for one refresh."""

    def __init__(
        self, fetch: Callable[[], tuple[str, float]], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                token, lifetime = self._fetch()
                margin = min(REFRESH_MARGIN_S, lifetime / 10)
                self._token, self._refresh_at = token, self._clock() + lifetime - margin
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` (refused by Orange); a token already replaced by another thread stays."""
        with self._lock:
            if self._token == token:
                self._token = None


def parse_token(response: httpx.Response) -> tuple[str, float]:
    try:
        body = response.json()
        token, lifetime = str(body["access_token"]), float(body["expires_in"])  # "3600": a string
    except (ValueError, KeyError, TypeError):
        raise AccountProblem("token: unreadable answer") from None
    if not token or lifetime <= 0:
        raise AccountProblem("token: empty or expired on arrival")
    return token, lifetime


# -- the sender -----------------------------------------------------------------------------------


def _outcome_of(error: SendError) -> str:
    """What the recipients not tried get when a batch stops on `error`."""
    if isinstance(error, AccountProblem):
        return ACCOUNT
    return REJECTED if isinstance(error, Rejected) else FAILED


class OrangeSender:
    """Sends through Orange's SMS API, one request per recipient (one address per request).

    A failure that concerns Orange or our account (throttled, refused credentials, server error,
    no answer) stops the batch: the recipients already answered keep their results, one whose
    request may have arrived is left out (the outbox then records it unconfirmed, never resent
    blindly), and the ones not tried are FAILED (retried later) or ACCOUNT. When no recipient
    was answered and they all share one fate, the error is raised for the whole request, as the
    Africa's Talking adapter does.
    """

    name = PROVIDER
    # One request per recipient, one after another (~0.3 s each): a worker step claims at most
    # this many rows, so that none waits in `sending` near the outbox's 5-minute stale window.
    max_claim = 200

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        sender_address: str,
        sender_name: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        trust_env: bool = False,
    ) -> None:
        self._sender = normalize_sender(sender_address)
        self._sender_name = sender_name or None
        self._path = outbound_path(self._sender)
        import httpx

        # Keep-alive shorter than servers' usual 5 s: a connection closed by the server while we
        # reuse it would look like an ambiguous failure.
        self._http = httpx.Client(
            base_url=(base_url or ORANGE_API).rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=3.05),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=2.0),
            headers={"Accept": "application/json"},
            trust_env=trust_env,
        )
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._tokens = TokenCache(self._fetch_token, clock=clock)

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never the credentials
        return f"OrangeSender(sender={self._sender!r}, base_url={str(self._http.base_url)!r})"

    # -- token --

    def _fetch_token(self) -> tuple[str, float]:
        import httpx

        try:
            response = self._http.post(TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=self._auth)
        except httpx.HTTPError as exc:
            # Whatever happened to the token request, no SMS left: safe to retry.
            raise TransportError(f"token: {exc.__class__.__name__}", reached=False) from None
        status = response.status_code
        if status == 429:
            raise _throttled(response, "token")
        if status >= 500:
            raise TransportError(f"token: HTTP {status}", reached=False)
        if status != 200:
            raise AccountProblem(f"token refused: HTTP {status} {error_code(response)}")
        log.info("orange token obtained")
        return parse_token(response)

    # -- one recipient --

    def _post(self, token: str, body: dict[str, Any]) -> httpx.Response:
        import httpx

        try:
            return self._http.post(self._path, json=body, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise transport_error(exc, "send") from None

    def _send_one(self, text: str, phone: str) -> RecipientResult:
        if not _NUMBER_RE.match(phone):
            return RecipientResult(phone=phone, outcome=REJECTED, provider_status="InvalidNumber")
        body = outbound_body(text, phone, self._sender, self._sender_name)
        token = self._tokens.get()
        response = self._post(token, body)
        if response.status_code == 401:
            # Expired or revoked before our margin (Orange's clock, a revocation): renew once.
            self._tokens.invalidate(token)
            response = self._post(self._tokens.get(), body)
            if response.status_code == 401:
                raise AccountProblem(f"send: HTTP 401 {error_code(response)} with a fresh token")
        return self._result(phone, response)

    def _result(self, phone: str, response: httpx.Response) -> RecipientResult:
        status = response.status_code
        if status in (200, 201):
            accepted = {"outcome": ACCEPTED, "provider_status": ACCEPTED_STATUS}
            return RecipientResult(phone=phone, message_id=message_id(response), **accepted)
        code = error_code(response)
        if status == 429:
            raise _throttled(response, "send")
        if status >= 500:
            raise TransportError(f"send: HTTP {status} {code}", reached=False)
        if status == 403 or code.startswith("POL"):
            # Policy: balance, sender name or number not allowed, contract: staff must act.
            raise AccountProblem(f"send: HTTP {status} {code}")
        if status == 400:
            return RecipientResult(phone=phone, outcome=REJECTED, provider_status=code)
        raise Rejected(f"send: HTTP {status} {code}")

    # -- the batch --

    def send(self, text: str, recipients: Sequence[str]) -> list[RecipientResult]:
        results: list[RecipientResult] = []
        for index, phone in enumerate(recipients):
            try:
                results.append(self._send_one(text, phone))
            except SendError as error:
                # An ambiguous recipient is left out of the results: the outbox records it unconfirmed.
                ambiguous = isinstance(error, TransportError) and error.reached
                rest = list(recipients[index + 1 :] if ambiguous else recipients[index:])
                if not results and (not ambiguous or not rest):
                    raise  # every recipient shares one fate: the request's error
                counts = {"answered": len(results), "left": len(rest)}
                log.warning("orange batch stopped", extra={"kind": error.kind, "error": str(error), **counts})
                unsent = {"outcome": _outcome_of(error), "provider_status": f"NotSent:{error.kind}"}
                return results + [RecipientResult(phone=p, **unsent) for p in rest]
        return results


# Where published clients find the resourceURL in Orange's 201 answer.
_RESOURCE_URL_PATHS = (
    ("outboundSMSMessageRequest", "resourceURL"),
    ("outboundSMSMessageRequest", "resourceReference", "resourceURL"),
    ("resourceReference", "resourceURL"),
)


def _dig(node: Any, path: Sequence[str]) -> Any:
    for name in path:
        node = node.get(name) if isinstance(node, Mapping) else None
    return node


def message_id(response: httpx.Response) -> str:
    """The last segment of the `resourceURL` Orange answers with (or of `Location`); our own id
    when it gives neither, so that delivery receipts can still be matched by number."""
    try:
        body = response.json()
    except ValueError:
        body = None
    urls = [_dig(body, path) for path in _RESOURCE_URL_PATHS] + [response.headers.get("Location")]
    url = next((u for u in urls if isinstance(u, str) and u.strip("/")), "")
    segment = url.rstrip("/").rsplit("/", 1)[-1]
    return segment[:100] if segment else f"orange-{uuid.uuid4().hex}"


# -- callbacks ------------------------------------------------------------------------------------
#
# Inbound (JSON): {"inboundSMSMessageNotification": {"inboundSMSMessage": {"senderAddress":
# "tel:+223...", "destinationAddress": ..., "message": ..., "dateTime": ..., "messageId": ...}}}
# (messageId is not always there). Delivery receipt (JSON): {"deliveryInfoNotification":
# {"callbackData": ..., "deliveryInfo": {"address": "tel:+223...", "deliveryStatus": ...}}}:
# no message id of its own; callbackData carries one when Orange puts it there.

# Orange delivery status → (our status, final), in the words the outbox already understands.
DELIVERY_STATUS = {
    "DeliveredToTerminal": ("delivered", True),
    "DeliveryImpossible": ("undeliverable", True),
    "DeliveredToNetwork": ("sent", False),
    "MessageWaiting": ("sent", False),
    "DeliveryUncertain": ("sent", False),
    "DeliveryNotificationNotSupported": ("sent", False),
}


def _object(body: Any, *path: str) -> Mapping[str, Any]:
    node = body
    for name in path:
        if not isinstance(node, Mapping) or not isinstance(node.get(name), Mapping):
            raise BadRequest(f"missing object: {'.'.join(path[: path.index(name) + 1])}")
        node = node[name]
    return node


def _text(obj: Mapping[str, Any], name: str, *, required: bool = False, limit: int = 200) -> str:
    value = obj.get(name)
    if value is None or (required and not str(value).strip()):
        if required:
            raise BadRequest(f"missing field: {name}")
        return ""
    if not isinstance(value, (str, int)):
        raise BadRequest(f"field not text: {name}")
    value = str(value)
    if len(value) > limit:
        raise BadRequest(f"field too long: {name}")
    return value.strip()


def _address(obj: Mapping[str, Any], name: str) -> str:
    raw = _text(obj, name, required=True, limit=40).removeprefix("tel:")
    try:
        return parse_phone(raw)
    except InvalidPhone as exc:
        raise BadRequest(f"{name}: {exc}") from None


def parse_inbound(body: Any) -> InboundSms:
    sms = _object(body, "inboundSMSMessageNotification", "inboundSMSMessage")
    phone = _address(sms, "senderAddress")
    text = sms.get("message")
    if not isinstance(text, str):
        raise BadRequest("missing field: message")
    if len(text) > 1600:
        raise BadRequest("field too long: message")
    to = _text(sms, "destinationAddress", limit=40).removeprefix("tel:")
    stamp = _text(sms, "dateTime", limit=40)
    received_at = parse_date(stamp)
    provider_id = _text(sms, "messageId", limit=100)
    if not provider_id:
        # Without Orange's id, the same notification delivered twice must still be handled once.
        digest = hashlib.sha256("\x1f".join((phone, to, stamp, text)).encode()).hexdigest()
        provider_id = f"h:{digest[:40]}"
    return InboundSms(
        provider_id=provider_id,
        phone=phone,
        to=to[:32],
        text=text,
        received_at=received_at,
        link_id=None,
        network_code="",
        cost=None,
    )


def parse_delivery(body: Any) -> DeliveryReport:
    """The report, its message id being Orange's callbackData (possibly empty: the webhook then
    finds the message by number)."""
    notification = _object(body, "deliveryInfoNotification")
    info = _object(body, "deliveryInfoNotification", "deliveryInfo")
    raw_status = _text(info, "deliveryStatus", required=True, limit=40)
    if raw_status not in DELIVERY_STATUS:
        raise BadRequest(f"deliveryStatus: unknown {raw_status!r}")
    status, final = DELIVERY_STATUS[raw_status]
    return DeliveryReport(
        message_id=_text(notification, "callbackData", limit=100),
        status=status,
        final=final,
        provider_status=raw_status,
        phone=_address(info, "address"),
        failure_reason="",
        retry_count=None,
        blacklisted=False,
    )
