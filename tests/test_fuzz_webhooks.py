"""Hypothesis over raw webhook forms: whatever arrives, no 5xx, no traceback to the caller, and a
refused request stores nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from sqlmodel import func, select

from gateway.data import models

pytestmark = pytest.mark.db

FIELDS = {
    "/webhooks/at/ussd": ["sessionId", "serviceCode", "phoneNumber", "networkCode", "text"],
    "/webhooks/at/ussd/events": ["sessionId", "phoneNumber", "status", "date", "cost", "durationInMillis", "hopsCount", "errorMessage"],
    "/webhooks/at/sms": ["from", "to", "text", "date", "id", "linkId", "networkCode", "cost"],
    "/webhooks/at/sms/delivery": ["id", "status", "phoneNumber", "networkCode", "failureReason", "retryCount"],
    "/webhooks/at/sms/optout": ["senderId", "phoneNumber"],
}
VALUES = st.one_of(
    st.sampled_from(["", "+22370000001", "70000001", "Success", "Failed", "Incomplete", "1*2*3", "2017-05-03 06:04:45",
                     "ATXid_1", "prix tomate", "-1", "1e9", "None", "\x00", "😀" * 5, "a" * 300]),
    st.text(max_size=60),
)
FORMS = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda path: st.tuples(
        st.just(path),
        st.dictionaries(st.sampled_from(FIELDS[path] + ["junk", "id"]), VALUES, max_size=len(FIELDS[path]) + 1),
    )
)
TABLES = (models.UssdSession, models.SmsInbound, models.SmsMessage, models.Producer)


def counts(db):
    with db.unit_of_work() as session:
        return tuple(session.exec(select(func.count()).select_from(t)).one() for t in TABLES)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(form=FORMS)
def test_any_form_is_answered_without_5xx(client, db, form):
    path, data = form
    before = counts(db)
    response = client.post(path, data=data)
    assert response.status_code in (200, 400), (path, data, response.status_code, response.text)
    assert "Traceback" not in response.text
    if path == "/webhooks/at/ussd" and response.status_code == 200:
        assert response.text[:4] in ("CON ", "END ")
    if response.status_code == 400:
        assert counts(db) == before, "a refused request stored something"


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.binary(max_size=400), content_type=st.sampled_from(
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json", "text/plain", ""]))
def test_any_body_is_answered_without_5xx(client, db, body, content_type):
    before = counts(db)
    response = client.post("/webhooks/at/sms", content=body, headers={"content-type": content_type} if content_type else {})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert counts(db) == before
