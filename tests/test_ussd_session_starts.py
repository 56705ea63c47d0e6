"""The per-process memory of USSD sessions' starts (gateway.ussd.service.SessionStarts)."""

from __future__ import annotations

import pytest

from gateway.ussd.service import SessionStarts
from menus.engine import Frame
from menus.types import Profile, Subscription

A, B = "+22370000001", "+22370000002"

# (steps, then the lookups and what each must find)
CASES = [
    pytest.param([("s1", A, {"language": "fr"})], [("s1", A, {"language": "fr"})], id="remembered"),
    pytest.param([("s1", A, {})], [("s1", B, None)], id="another-caller-gets-nothing"),
    pytest.param([], [("s1", A, None)], id="never-seen"),
    pytest.param([("s1", A, {}), ("s2", A, {}), ("s3", A, {})], [("s1", A, None), ("s3", A, {})], id="oldest-out"),
    pytest.param(
        [("s1", A, {"n": 1}), ("s2", A, {}), ("touch", "s1", A), ("s3", A, {})],
        [("s1", A, {"n": 1}), ("s2", A, None)],
        id="a-lookup-keeps-it",
    ),
]


@pytest.mark.parametrize("steps, lookups", CASES)
def test_session_starts(steps, lookups):
    starts = SessionStarts(size=2)
    for step in steps:
        if step[0] == "touch":
            starts.get(step[1], step[2])
        else:
            starts.put(*step)
    assert len(starts) <= 2
    for session_id, phone, expected in lookups:
        assert starts.get(session_id, phone) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# (seconds between the session's last hop and the lookup, found?)
IDLE = [
    pytest.param(0, True, id="at-once"),
    pytest.param(SessionStarts.IDLE_S, True, id="just-within"),
    pytest.param(SessionStarts.IDLE_S + 1, False, id="idle-too-long"),
]


@pytest.mark.parametrize("idle, found", IDLE)
def test_a_session_idle_longer_than_any_telco_keeps_one_is_forgotten(idle, found):
    clock = Clock()
    starts = SessionStarts(clock=clock)
    starts.put("s1", A, {"language": "fr"})
    clock.now += idle
    assert (starts.get("s1", A) is not None) is found


def test_idle_sessions_leave_memory_as_new_ones_arrive():
    clock = Clock()
    starts = SessionStarts(clock=clock)
    for n in range(100):
        starts.put(f"old{n}", A, {})
    clock.now += SessionStarts.IDLE_S / 2
    starts.put("recent", A, {})
    clock.now += SessionStarts.IDLE_S / 2 + 1
    starts.put("new", A, {})
    assert len(starts) == 2  # the 100 idle ones are gone; "recent" is still live
    assert starts.get("recent", A) == {} and starts.get("new", A) == {}


def test_a_hop_keeps_its_session_alive():
    clock = Clock()
    starts = SessionStarts(clock=clock)
    starts.put("s1", A, {})
    for _ in range(3):
        clock.now += SessionStarts.IDLE_S - 1
        starts.keep("s1", A, None)
    assert starts.get("s1", A) == {}


# What every remembered session holds until it has been idle 5 minutes (up to 20,000 of them):
# values without a per-instance dictionary (slots), a quarter smaller (981 -> 733 bytes for a
# resume with three screens and two subscriptions, tracemalloc).
HELD = [
    pytest.param(lambda: Frame("prices", (1,), 0), id="a screen of the stack"),
    pytest.param(lambda: Profile(phone=A), id="the profile"),
    pytest.param(lambda: Subscription(1, 2), id="a subscription"),
]


@pytest.mark.parametrize("make", HELD)
def test_what_a_remembered_session_holds_has_no_instance_dictionary(make):
    assert not hasattr(make(), "__dict__")
