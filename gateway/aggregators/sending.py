"""The one sender interface, and the kinds of failure every aggregator adapter maps into.

Adapters (gateway/aggregators/*) turn their HTTP statuses and per-recipient codes into these, so
the retry policy elsewhere only asks "what kind?" — never "which aggregator said what".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

# Per recipient outcome.
ACCEPTED = "accepted"  # the aggregator took it; a delivery report will follow
REJECTED = "rejected"  # this number cannot receive it (invalid, blacklisted, DND): do not retry
FAILED = "failed"  # the aggregator failed for this number: worth a later retry
ACCOUNT = "account"  # our account cannot send (balance, sender id, risk hold): staff must act


class SendError(Exception):
    """A whole request failed. `kind` drives the retry policy."""

    kind = "transport"
    retryable = True


class Throttled(SendError):
    kind = "throttled"

    def __init__(self, message: str = "throttled", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountProblem(SendError):
    """Credentials, balance or sender id: retrying will not help until someone fixes it."""

    kind = "account"
    retryable = False


class Rejected(SendError):
    """The aggregator refused the request itself (malformed): a bug or bad data, not transient."""

    kind = "rejected"
    retryable = False


class TransportError(SendError):
    """Network or server failure. `reached` False: it never got there, safe to resend.
    True: it may have been accepted (a timeout after sending): resending could duplicate."""

    kind = "transport"

    def __init__(self, message: str, *, reached: bool) -> None:
        super().__init__(message)
        self.reached = reached
        if reached:
            self.kind = "ambiguous"
            self.retryable = False


@dataclass(frozen=True)
class RecipientResult:
    phone: str
    outcome: str  # ACCEPTED | REJECTED | FAILED | ACCOUNT
    message_id: str | None = None
    provider_status: str = ""
    cost: str = ""
    cost_amount: float = 0.0
    blacklisted: bool = False


class SmsSender(Protocol):
    name: str
    # Optional `max_claim: int`: the most rows one worker step should hand it (a sender making one
    # request per number is slow; see OrangeSender).

    def send(self, text: str, recipients: Sequence[str]) -> list[RecipientResult]:
        """Send one text to many numbers (E.164) in as few requests as the aggregator allows.
        Synchronous: call it off the event loop. Raises a SendError for the whole request."""
        ...
