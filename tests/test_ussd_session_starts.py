"""The per-process memory of USSD sessions' starts (gateway.ussd.service.SessionStarts)."""

from __future__ import annotations

import pytest

from gateway.ussd.service import SessionStarts

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
