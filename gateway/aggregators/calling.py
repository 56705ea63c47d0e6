"""The voice contract every voice aggregator adapter speaks, as sending.py is for SMS.

A callback becomes a `VoiceCallback`; what the gateway answers is a `VoiceResponse` (a short
sequence of actions); outbound calls go through a `VoiceCaller`. Nothing here names a provider:
an adapter module (africastalking_voice.py today, a TwiML one later) parses its callback form into
these types, renders a `VoiceResponse` into its own markup, and places calls with its own API,
raising the same kinds of failure as the SMS senders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, Union
from urllib.parse import urlsplit

# A call failing is sorted into the same kinds as an SMS failing, so the retry policy is shared.
# `Rejected` also covers a number the aggregator will not call (invalid, unsupported destination).
from gateway.aggregators.sending import (
    AccountProblem,
    Rejected,
    SendError,
    Throttled,
    TransportError,
)

__all__ = [
    "INBOUND",
    "OUTBOUND",
    "DTMF_KEYS",
    "AccountProblem",
    "CallResult",
    "GetDigits",
    "Hangup",
    "InvalidVoiceResponse",
    "Play",
    "Redirect",
    "Reject",
    "Rejected",
    "Say",
    "SendError",
    "Throttled",
    "TransportError",
    "VoiceCallback",
    "VoiceCaller",
    "VoiceResponse",
]

INBOUND = "inbound"  # the phone user called us
OUTBOUND = "outbound"  # we called the phone user

DTMF_KEYS = frozenset("0123456789*#")

# Bounds: a response is a few prompts, never a document. They keep a bug (a loop appending
# actions, a text pasted whole) from producing something the aggregator refuses mid-call.
MAX_ACTIONS = 20
MAX_URL = 2000
MAX_SAY = 1000
MAX_NUM_DIGITS = 32
MAX_TIMEOUT_S = 300

_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
# Characters XML 1.0 cannot carry at all (escaping does not help), and the line breaks a URL
# must never hold.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NOT_URL = re.compile(r"[\s\x00-\x1f\x7f]")


class InvalidVoiceResponse(ValueError):
    """A response the gateway must not send: a bug in the code that built it."""


@dataclass(frozen=True)
class VoiceCallback:
    """One notification about a call, in our terms.

    `phone` is the person on the line and `service_number` our number, whatever the direction.
    `is_active` is False on the final notification of a call, the one that carries duration
    and cost; `answered` is derived for that one only (None on the others).
    """

    session_id: str
    direction: str  # INBOUND | OUTBOUND
    phone: str  # E.164
    service_number: str | None  # E.164
    is_active: bool
    digits: str | None  # keys pressed in answer to a GetDigits, 0-9 * #
    recording_url: str | None
    duration_s: int | None
    currency: str | None  # ISO 4217
    amount: Decimal | None
    call_state: str  # the provider's word for the call's state, "" when not sent
    hangup_cause: str  # the provider's word, "" when not sent
    client_request_id: str | None  # ours, given when the call was placed (outbound)
    answered: bool | None


def _check_url(url: object, what: str) -> None:
    if not isinstance(url, str) or not url:
        raise InvalidVoiceResponse(f"{what}: a URL is required")
    if len(url) > MAX_URL:
        raise InvalidVoiceResponse(f"{what}: URL longer than {MAX_URL} characters")
    if _NOT_URL.search(url):
        raise InvalidVoiceResponse(f"{what}: URL holds spaces or control characters")
    parts = urlsplit(url)
    # The aggregator fetches it from its own network: only an absolute web address can work.
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidVoiceResponse(f"{what}: not an absolute http(s) URL")


@dataclass(frozen=True)
class Play:
    """Play the audio file at `url` (fetched by the aggregator)."""

    url: str

    def __post_init__(self) -> None:
        _check_url(self.url, "Play")


@dataclass(frozen=True)
class Say:
    """Speak `text` with the aggregator's speech synthesis; `language` is a BCP 47 tag."""

    text: str
    language: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidVoiceResponse("Say: text is empty")
        if len(self.text) > MAX_SAY:
            raise InvalidVoiceResponse(f"Say: text longer than {MAX_SAY} characters")
        if _NOT_XML.search(self.text):
            raise InvalidVoiceResponse("Say: text holds control characters")
        if self.language is not None and not _LANGUAGE.fullmatch(self.language):
            raise InvalidVoiceResponse(f"Say: language {self.language!r} is not a language tag")


Prompt = Union[Play, Say]


@dataclass(frozen=True)
class GetDigits:
    """Play one prompt and collect keys; the keys come back in a callback (to `callback_url`, or
    the call's current URL when None). With no input at all the call moves on to the next action."""

    prompt: Prompt
    num_digits: int | None = None
    timeout_s: int | None = None
    finish_on_key: str | None = None
    callback_url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, (Play, Say)):
            raise InvalidVoiceResponse("GetDigits: the prompt must be exactly one Play or Say")
        if self.num_digits is not None and not _bounded_int(self.num_digits, 1, MAX_NUM_DIGITS):
            raise InvalidVoiceResponse(f"GetDigits: num_digits must be 1 to {MAX_NUM_DIGITS}")
        if self.timeout_s is not None and not _bounded_int(self.timeout_s, 1, MAX_TIMEOUT_S):
            raise InvalidVoiceResponse(f"GetDigits: timeout_s must be 1 to {MAX_TIMEOUT_S}")
        key = self.finish_on_key
        if key is not None and (not isinstance(key, str) or len(key) != 1 or key not in DTMF_KEYS):
            raise InvalidVoiceResponse("GetDigits: finish_on_key must be one key of 0-9 * #")
        if self.callback_url is not None:
            _check_url(self.callback_url, "GetDigits callback")


@dataclass(frozen=True)
class Reject:
    """Refuse an incoming call without answering it (so it costs the caller nothing)."""


@dataclass(frozen=True)
class Redirect:
    """Hand the call to the instructions at `url`; nothing after it runs."""

    url: str

    def __post_init__(self) -> None:
        _check_url(self.url, "Redirect")


@dataclass(frozen=True)
class Hangup:
    """End the call; nothing after it runs."""


Action = Union[Play, Say, GetDigits, Reject, Redirect, Hangup]
_ACTIONS = (Play, Say, GetDigits, Reject, Redirect, Hangup)
_TERMINAL = (Redirect, Hangup)


def _bounded_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


@dataclass(frozen=True)
class VoiceResponse:
    """What to do with the call next, in order.

    Rules every provider shares: at least one action and at most MAX_ACTIONS; Reject only alone
    (a call is refused or answered, not both); Redirect and Hangup only last (nothing after them
    would run, so something there is a bug).
    """

    actions: tuple[Action, ...]

    def __post_init__(self) -> None:
        actions = self.actions
        if not isinstance(actions, tuple):
            raise InvalidVoiceResponse("actions must be a tuple")
        if not actions:
            raise InvalidVoiceResponse("a response needs at least one action (Hangup to end the call)")
        if len(actions) > MAX_ACTIONS:
            raise InvalidVoiceResponse(f"more than {MAX_ACTIONS} actions")
        for position, action in enumerate(actions):
            if not isinstance(action, _ACTIONS):
                raise InvalidVoiceResponse(f"action {position}: {type(action).__name__} is not an action")
            if isinstance(action, Reject) and len(actions) > 1:
                raise InvalidVoiceResponse("Reject must be the only action")
            if isinstance(action, _TERMINAL) and position != len(actions) - 1:
                raise InvalidVoiceResponse(f"{type(action).__name__} must be the last action")

    @classmethod
    def of(cls, *actions: Action) -> VoiceResponse:
        return cls(tuple(actions))


@dataclass(frozen=True)
class CallResult:
    """An outbound call the aggregator accepted; its callbacks will carry `session_id` (when the
    aggregator gave one) and our `client_request_id`."""

    phone: str
    session_id: str | None
    provider_status: str
    client_request_id: str


class VoiceCaller(Protocol):
    name: str

    def call(self, to: str, *, client_request_id: str) -> CallResult:
        """Ask the aggregator to call `to` (E.164); what the call does is decided by our answers
        to its callbacks. Synchronous: call it off the event loop. Raises a SendError kind:
        Throttled, AccountProblem, Rejected (the request or the number), TransportError."""
        ...

    def close(self) -> None:
        ...
