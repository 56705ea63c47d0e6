"""The sender contract, one table for every aggregator adapter: each case is injected into the
adapter's own fake (in that aggregator's words) and must give the same outcome, so the outbox and
the broadcaster never need to know which aggregator sends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from gateway.aggregators.africastalking import AfricasTalkingSender
from gateway.aggregators.orange import OrangeSender
from gateway.aggregators.sending import ACCEPTED, REJECTED, SendError

A, B, C = "+22370000001", "+22366000002", "+22370000003"
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: refused before anything is sent


@dataclass
class Channel:
    """One adapter and its fake, with the contract's failures said in the fake's words."""

    name: str
    fake: Any
    make: Callable[..., Any]  # base_url= → a sender
    invalid: Callable[[str], None]  # this number is refused by the aggregator
    bad_credentials: Callable[[], None]

    def inject(self, failure: tuple) -> None:
        kind, *args = failure
        if kind == "invalid":
            self.invalid(*args)
        elif kind == "http":
            self.fake.configure(fail_next=list(args))
        elif kind == "bad_credentials":
            self.bad_credentials()
        elif kind == "hang":
            self.fake.configure(hang_next=1, hang_s=3)
        # "unreachable" is no fake's doing: the sender is pointed where nothing listens.


def at_channel(fake_at) -> Channel:
    def make(base_url=None):
        options = {"username": "sugu", "api_key": "test-key", "sender_id": "SUGU", "timeout_s": 1.0}
        return AfricasTalkingSender(base_url=base_url or fake_at.url, **options)

    return Channel(
        "africastalking",
        fake_at,
        make,
        invalid=lambda phone: fake_at.configure(statuses={phone: 403}),  # InvalidPhoneNumber
        bad_credentials=lambda: fake_at.configure(api_key="another-key"),
    )


def orange_channel(fake_orange) -> Channel:
    def make(base_url=None):
        return OrangeSender(
            client_id="orange-id",
            client_secret="orange-secret",
            sender_address="tel:+2230000",
            sender_name="SUGU",
            base_url=base_url or fake_orange.url,
            timeout_s=1.0,
        )

    return Channel(
        "orange",
        fake_orange,
        make,
        invalid=lambda phone: fake_orange.configure(errors={phone: "SVC0004"}),  # no valid address
        bad_credentials=lambda: fake_orange.configure(client_secret="another-secret"),
    )


@pytest.fixture(params=["africastalking", "orange"])
def channel(request):
    if request.param == "africastalking":
        return at_channel(request.getfixturevalue("fake_at"))
    return orange_channel(request.getfixturevalue("fake_orange"))


# (recipients, failure injected, expected): per-number outcomes, or the kind of error raised for the
# whole request with (retryable, retry_after).
CASES = [
    pytest.param([A, B], None, {A: ACCEPTED, B: ACCEPTED}, id="accepted"),
    pytest.param([A, B], ("invalid", B), {A: ACCEPTED, B: REJECTED}, id="invalid-number"),
    pytest.param([A, B, C], ("invalid", B), {A: ACCEPTED, B: REJECTED, C: ACCEPTED}, id="mixed-recipients"),
    pytest.param([A, B], ("http", 429), ("throttled", True, 1.0), id="throttled"),
    pytest.param([A, B], ("bad_credentials",), ("account", False, None), id="auth-failure"),
    pytest.param([A, B], ("http", 500), ("transport", True, None), id="server-error-500"),
    pytest.param([A, B], ("http", 503), ("transport", True, None), id="server-error-503"),
    pytest.param([A], ("unreachable",), ("transport", True, None), id="unreachable-before-send"),
    pytest.param([A], ("hang",), ("ambiguous", False, None), id="timeout-after-send"),
]


@pytest.mark.parametrize("recipients, failure, expected", CASES)
def test_sender_contract(channel, recipients, failure, expected):
    if failure:
        channel.inject(failure)
    sender = channel.make(base_url=UNREACHABLE if failure == ("unreachable",) else None)
    try:
        if isinstance(expected, dict):
            results = sender.send("Prix: Tomate 350F", recipients)
            assert {r.phone: r.outcome for r in results} == expected
            accepted = {r.phone: r.message_id for r in results if r.outcome == ACCEPTED}
            # What the aggregator took is exactly what the adapter says it took, with its ids.
            assert {number: mid for number, _, mid in channel.fake.sent_messages()} == accepted
            assert all(r.message_id is None for r in results if r.outcome != ACCEPTED)
        else:
            kind, retryable, retry_after = expected
            with pytest.raises(SendError) as caught:
                sender.send("Prix: Tomate 350F", recipients)
            assert (caught.value.kind, caught.value.retryable) == (kind, retryable)
            assert getattr(caught.value, "retry_after", None) == retry_after
            # Only the hung request arrived (and was taken): resending it would duplicate.
            taken = [number for number, _, _ in channel.fake.sent_messages()]
            assert taken == (recipients if kind == "ambiguous" else [])
    finally:
        sender.close()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_after_a_transient_failure_the_next_request_goes_through(channel, status):
    channel.inject(("http", status))
    sender = channel.make()
    with pytest.raises(SendError):
        sender.send("x", [A])
    assert [r.outcome for r in sender.send("x", [A])] == [ACCEPTED]
    sender.close()


def test_names_are_what_the_outbox_records(channel):
    sender = channel.make()
    assert sender.name == channel.name
    sender.close()
