"""Fixtures. Database tests run once per backend (SQLite and PostgreSQL); every test gets a fresh
database copied from a template that was migrated and seeded once per run."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# The console speaks French by default (GATEWAY_CONSOLE_LANGUAGE); the behaviour tests read its
# pages in English, a language staff may choose. tests/test_console_language.py and the
# browser walk-through check the French console.
os.environ.setdefault("GATEWAY_CONSOLE_LANGUAGE", "en")

from gateway.data import seed  # noqa: E402
from gateway.core import migrate
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.data import auth  # noqa: E402

# Passwords are hashed at argon2's lowest cost in this process: at the recommended cost (~0.16 s
# a hash or a check) the staff accounts and sign-ins of the console tests were most of the
# suite's time. Hashes carry their parameters, so checking works alike; servers and commands the
# tests start as subprocesses keep the real cost, and tests/test_security_defaults.py checks it.
from pwdlib import PasswordHash  # noqa: E402
from pwdlib.hashers.argon2 import Argon2Hasher  # noqa: E402

auth._hasher = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))



def _share_route_dependency_graphs() -> None:
    """FastAPI (0.165) builds each route's dependency graph (signatures, pydantic fields) on an
    app's first request: ~0.1-0.2 s for this app's ~110 routes, paid again by every test that
    builds an app. The routers are module-level, so their endpoints are the same functions in
    every app: in this process each graph is built once and shared (read-only: dependency
    overrides are looked up per request, on the app). Endpoints made inside a function (a
    closure per app) are built per app as before and never kept."""
    import fastapi.routing as routing

    build = getattr(routing, "_build_dependant_with_parameterless_dependencies", None)
    if build is None:  # another FastAPI: tests are slower, not wrong
        return
    built: dict[tuple, tuple] = {}

    def shared(*, path, call, dependencies):
        if "<locals>" in getattr(call, "__qualname__", "<locals>"):
            return build(path=path, call=call, dependencies=dependencies)
        key = (path, call, tuple(map(id, dependencies)))
        found = built.get(key)
        if found is None:  # the dependencies are kept with it: their ids stay theirs
            graph = build(path=path, call=call, dependencies=dependencies)
            found = built[key] = (graph, tuple(dependencies))
        return found[0]

    routing._build_dependant_with_parameterless_dependencies = shared


_share_route_dependency_graphs()

TODAY = dt.date(2026, 11, 28)  # a Saturday, market day in Sikasso
NOW = dt.datetime.combine(TODAY, dt.time(10, 0), ZoneInfo("Africa/Bamako"))
BACKENDS = [b.strip() for b in os.environ.get("SUGU_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()]
POSTGRES_ADMIN_URL = os.environ.get(
    "SUGU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def build_content(url: str) -> None:
    migrate.upgrade(url)
    db = Database.from_settings(Settings(database_url=url))
    with db.unit_of_work() as session:
        seed.seed_demo(session, today=TODAY)
    if db.dialect == "sqlite":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()


@dataclass
class SqliteBackend:
    folder: Path
    name: str = "sqlite"
    template: Path = field(init=False)

    def __post_init__(self) -> None:
        self.template = self.folder / "template.db"
        build_content(f"sqlite:///{self.template}")

    def fresh(self, *, empty: bool = False) -> str:
        path = self.folder / f"{uuid.uuid4().hex}.db"
        if not empty:
            shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        pass


class PostgresBackend:
    name = "postgresql"

    def __init__(self) -> None:
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with self.admin.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:  # pragma: no cover - environment problem, said plainly
            pytest.exit(
                f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc.__class__.__name__}). "
                "Start it, set SUGU_TEST_POSTGRES_URL, or run with SUGU_TEST_BACKENDS=sqlite.",
                returncode=3,
            )
        self.prefix = f"sugu_test_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_tpl"
        self.created: set[str] = set()
        self._create(self.template)
        build_content(self.url(self.template))

    def url(self, name: str) -> str:
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def _create(self, name: str, template: str | None = None) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.add(name)

    def fresh(self, *, empty: bool = False) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        self._create(name, None if empty else self.template)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.discard(name)

    def close(self) -> None:
        for name in list(self.created):
            self.drop(self.url(name))
        self.admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, tmp_path_factory):
    if request.param == "sqlite":
        backend = SqliteBackend(tmp_path_factory.mktemp("sqlite"))
    elif request.param == "postgresql":
        backend = PostgresBackend()
    else:
        raise pytest.UsageError(f"unknown backend {request.param!r}")
    yield backend
    backend.close()


@pytest.fixture
def db_url(backend):
    url = backend.fresh()
    yield url
    backend.drop(url)


@pytest.fixture
def empty_db_url(backend):
    url = backend.fresh(empty=True)
    yield url
    backend.drop(url)


@pytest.fixture
def settings(db_url) -> Settings:
    # Explicitly development mode (callbacks without a secret, the fakes mounted): the default is
    # production, which `gateway serve` refuses to start without a webhook secret.
    return Settings(
        database_url=db_url, worker_in_process=False, content_cache_s=0, secret_key="test-secret", dev_mode=True
    )


@pytest.fixture
def db(settings):
    database = Database.from_settings(settings)
    yield database
    database.dispose()


@pytest.fixture
def client(settings):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    with TestClient(create_app(settings, clock=lambda: NOW)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def fake_at_server():
    """One fake Africa's Talking server for the run; each test gets it reset."""
    from gateway.aggregators.fake_at import FakeAT, create_fake_at_app, serve_in_thread
    from messages.sms import measure

    fake = FakeAT(api_key="test-key", segments=lambda text: measure(text).segments)
    with serve_in_thread(create_fake_at_app(fake)) as url:
        yield fake, url


@pytest.fixture
def fake_at(fake_at_server):
    fake, url = fake_at_server
    from messages.sms import measure

    fake.reset(config=True)
    fake.configure(api_key="test-key", segments=lambda text: measure(text).segments)
    fake.url = url
    return fake


@pytest.fixture
def sms_settings(db_url, fake_at) -> Settings:
    return Settings(
        database_url=db_url,
        at_username="sugu",
        at_api_key="test-key",
        at_sender_id="SUGU",
        at_base_url=fake_at.url,
        # Long enough for the fake to answer on a machine busy with two test processes (at 1 s a
        # reply timed out there); tests of a hanging aggregator make it hang longer (3 s).
        at_timeout_s=2.0,
        worker_in_process=False,
        content_cache_s=0,
        secret_key="test-secret",
        dev_mode=True,  # callbacks without a secret (see `settings`)
    )


@pytest.fixture
def sms_client(sms_settings):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    with TestClient(create_app(sms_settings, clock=lambda: NOW)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def fake_orange_server():
    """One fake Orange SMS API for the run (shared by the Orange and the sender-contract tests)."""
    from gateway.aggregators.fake_at import serve_in_thread
    from gateway.aggregators.fake_orange import FakeOrange, create_fake_orange_app

    fake = FakeOrange()
    with serve_in_thread(create_fake_orange_app(fake)) as url:
        yield fake, url


@pytest.fixture
def fake_orange(fake_orange_server):
    fake, url = fake_orange_server
    fake.reset(config=True)
    fake.configure(client_id="orange-id", client_secret="orange-secret")
    fake.url = url
    return fake
