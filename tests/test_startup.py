"""Start-up problems are one clear line, never a traceback; `/` leads somewhere useful."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def gateway(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    # A clean environment as an operator's shell would have it: no GATEWAY_* from the test run.
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=tmp_path,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, env, expected",
    [
        pytest.param(
            ("migrate",), {"GATEWAY_DATABASE_URL": "sqlite:////proc/no/such/place/sugu.db"},
            "cannot create the folder /proc/no/such/place", id="sqlite-folder-not-writable",
        ),
        pytest.param(
            ("migrate",), {"GATEWAY_DATABASE_URL": "sqlite:///{tmp}/a-folder.db/"},
            "cannot open the database", id="sqlite-path-is-not-a-file",
        ),
        pytest.param(
            ("migrate",), {"GATEWAY_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none"},
            "cannot open the database postgresql+psycopg://nobody@127.0.0.1:9/none", id="postgres-unreachable",
        ),
        pytest.param(
            ("migrate",), {"GATEWAY_DATABASE_URL": "not a url"},
            "GATEWAY_DATABASE_URL is not a database URL", id="url-not-a-url",
        ),
        pytest.param(
            ("serve", "--port", "1"),
            {"GATEWAY_SMS_PROVIDER": "orange", "GATEWAY_ORANGE_CLIENT_ID": "id", "GATEWAY_ORANGE_CLIENT_SECRET": "s"},
            "configuration error: GATEWAY_ORANGE_SENDER_ADDRESS is required", id="orange-sender-missing",
        ),
        pytest.param(
            ("migrate",), {"GATEWAY_QUIET_HOURS": "late"},
            "configuration error: GATEWAY_QUIET_HOURS", id="bad-quiet-hours",
        ),
        pytest.param(
            ("serve", "--port", "1"), {"GATEWAY_DATABASE_URL": "sqlite:///{tmp}/never-migrated.db", "GATEWAY_DEV_MODE": "true"},
            "schema is not current: run `gateway migrate`", id="serve-before-migrate",
        ),
    ],
)
def test_configuration_errors_are_one_line(tmp_path, args, env, expected):
    if "a-folder.db" in str(env):
        (tmp_path / "a-folder.db").mkdir()
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    result = gateway(tmp_path, *args, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("gateway: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_migrate_on_a_fresh_clone_creates_the_database_folder(tmp_path):
    """A fresh clone has no var/: `gateway migrate` used to stop with "unable to open database
    file" and 450 lines of traceback."""
    assert not (tmp_path / "var").exists()
    result = gateway(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "sugu.db").is_file()


def test_a_password_in_the_database_url_is_not_printed(tmp_path):
    result = gateway(tmp_path, "migrate", GATEWAY_DATABASE_URL="postgresql+psycopg://u:hunter2@127.0.0.1:9/x")
    assert result.returncode == 2
    assert "hunter2" not in result.stderr and "***" in result.stderr


@pytest.mark.db
def test_the_bare_address_leads_to_the_console(client):
    reply = client.get("/", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/admin"
    page = client.get("/")
    assert page.status_code == 200 and "password" in page.text.lower()
