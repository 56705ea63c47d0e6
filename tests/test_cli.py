"""The `gateway` command: migrate, seed-demo, simulate."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gateway.cli import app

pytestmark = pytest.mark.db


@pytest.fixture
def run(empty_db_url, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_db_url)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        result = runner.invoke(app, list(args), input=input)
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.output

    return invoke


def test_migrate_seed_and_simulate(run):
    assert "up to date" in run("migrate")
    assert "crops +10" in run("seed-demo", "--if-empty")
    assert "demo not loaded" in run("seed-demo", "--if-empty")
    assert "crops +0" in run("seed-demo")
    out = run("simulate", "--phone", "+22370000009", input="1\n1\n1\n11\n")
    assert "| Choisir la langue / Kan sugandi" in out
    assert "| 1. Prix du marche" in out
    assert "| Tomate - Sikasso" in out
    assert "CON" in out and "chars" in out


def test_simulate_runs_to_end(run):
    run("migrate")
    run("seed-demo")
    out = run("simulate", input="2\n2\n1\n1\n300\n1\n")
    assert "END" in out and "I ni ce!" in out


def test_simulate_rejects_a_bad_phone(empty_db_url, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_db_url)
    result = CliRunner().invoke(app, ["simulate", "--phone", "12"])
    assert result.exit_code != 0
    assert "phone" in result.output.lower()
