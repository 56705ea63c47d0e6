"""Schemathesis against the OpenAPI schema: every documented operation with generated inputs,
authenticated as an administrator: never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings as hsettings

from gateway.data import auth
from gateway.app import create_app
from gateway.core.settings import Settings
from tests.conftest import NOW

pytestmark = pytest.mark.db


class _Delegate:
    """The schema is read once from an app that needs no database; each test then points the
    calls at an app running on that test's database."""

    def __init__(self, app) -> None:
        self.target = app

    async def __call__(self, scope, receive, send) -> None:
        await self.target(scope, receive, send)


_SCHEMA_APP = create_app(Settings(database_url="sqlite:///:memory:", secret_key="x", worker_in_process=False))
_DELEGATE = _Delegate(_SCHEMA_APP)
schema = schemathesis.openapi.from_asgi("/openapi.json", _DELEGATE)


@pytest.fixture
def live_app(settings, db):
    app = create_app(settings, clock=lambda: NOW)
    with db.unit_of_work() as session:
        user = auth.create_staff(session, email="fuzz@sugu.test", password="x" * 12, role="admin")
        app.state.fuzz_token = auth.issue_api_token(session, user)
    with TestClient(app):
        _DELEGATE.target = app
        yield app
    _DELEGATE.target = _SCHEMA_APP


@schema.include(path_regex="^/api/").parametrize()
@hsettings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails(case, live_app):
    response = case.call(headers={"Authorization": f"Bearer {live_app.state.fuzz_token}"})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
