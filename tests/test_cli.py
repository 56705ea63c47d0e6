"""The `gateway` command: migrate, seed-demo, simulate."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.data import models

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
    out = run("simulate", "--phone", "+22370000009", input="1\n1\n1\n12\n")
    assert "| Choisir la langue / Kan sugandi" in out
    assert "| 1. Prix du marche" in out
    assert "| Tomate - Sikasso" in out
    assert "answer expected" in out and "chars" in out
    assert "CON" not in out  # issue 15: the protocol word is not on a handset's screen


def test_simulate_runs_to_end(run):
    run("migrate")
    run("seed-demo")
    out = run("simulate", input="2\n2\n1\n1\n300\n1\n")
    assert "session ended" in out and "I ni ce!" in out


def test_simulate_rejects_a_bad_phone(empty_db_url, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_db_url)
    result = CliRunner().invoke(app, ["simulate", "--phone", "12"])
    assert result.exit_code != 0
    assert "phone" in result.output.lower()


@pytest.fixture
def sms_env(db_url, fake_at, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    monkeypatch.setenv("GATEWAY_AT_API_KEY", "test-key")
    monkeypatch.setenv("GATEWAY_AT_BASE_URL", fake_at.url)
    monkeypatch.setenv("GATEWAY_QUIET_HOURS", "")
    return fake_at


def _add_producers(db_url):
    from gateway.data import models
    from gateway.core.db import Database
    from gateway.core.settings import Settings

    db = Database.from_settings(Settings(database_url=db_url))
    with db.unit_of_work() as session:
        session.add(models.Producer(phone="+22370000001", language="fr", region="Sikasso"))
        session.add(models.Producer(phone="+22370000002", language="bm", region="Sikasso"))
        session.add(models.Producer(phone="+22370000003", language="fr", region="Mopti"))
    db.dispose()


def test_broadcast_previews_sends_and_reports(db_url, sms_env):
    _add_producers(db_url)
    result = CliRunner().invoke(
        app,
        ["broadcast", "--text-fr", "Réunion jeudi à Sikasso", "--text-bm", "Jɛkulu ka ɲɔgɔn sɔrɔ alamisa",
         "--region", "Sikasso", "--yes"],
    )
    assert result.exit_code == 0, result.output
    assert "[fr] 1 recipients, GSM-7, 1 segment(s) each, about 10 XOF" in result.output
    assert "[bm] 1 recipients, GSM-7, 1 segment(s) each" in result.output
    assert "Jèkulu ka nyògòn sòrò alamisa" in result.output  # the preview shows what is sent
    assert "sent 2" in result.output
    assert sorted(n for n, _, _ in sms_env.sent_messages()) == ["+22370000001", "+22370000002"]
    status = CliRunner().invoke(app, ["broadcast-status"])
    assert "#1 custom done" in status.output and "sent 2" in status.output


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(["--market", "Sikaso"], "did you mean Sikasso?", id="unknown-market"),
        pytest.param(["--crop", "tomatoe"], "did you mean", id="unknown-crop"),
        pytest.param(["--language", "en"], "unknown language", id="bad-language"),
        pytest.param(["--at", "tomorrow"], "YYYY-MM-DD HH:MM", id="bad-date"),
        pytest.param(["--region", "Kayes", "--yes"], "nobody to send to", id="nobody"),
    ],
)
def test_broadcast_refuses_bad_input(db_url, sms_env, args, message):
    _add_producers(db_url)
    result = CliRunner().invoke(app, ["broadcast", "--text-fr", "Bonjour", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert sms_env.sent_messages() == []


def test_scheduled_broadcast_is_left_to_the_worker(db_url, sms_env):
    _add_producers(db_url)
    result = CliRunner().invoke(app, ["broadcast", "--text-fr", "Bonjour", "--at", "2099-01-01 08:00", "--yes"])
    assert result.exit_code == 0 and "broadcast #1 created" in result.output
    assert sms_env.sent_messages() == []
    assert "claimed 0" in CliRunner().invoke(app, ["worker", "--once"]).output


def test_issue15_simulate_says_goodbye_at_end(run):
    run("migrate")
    run("seed-demo")
    out = run("simulate", input="2\n2\n1\n1\n300\n1\n")
    assert out.index("The network closed the session. Goodbye.") > out.rindex("session ended")


def test_issue15_simulate_prints_no_deprecation_warning(empty_db_url, monkeypatch):
    """`gateway simulate` printed Starlette's test-client deprecation warning at start."""
    import subprocess
    import sys

    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_db_url)
    subprocess.run([sys.executable, "-m", "gateway.cli", "migrate"], check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-W", "default", "-m", "gateway.cli", "simulate"], input="0\n",
                          capture_output=True, text=True, timeout=120)
    assert "DeprecationWarning" not in done.stderr, done.stderr
    assert "ussd hop" not in done.stderr + done.stdout  # the screens, not a log line per hop
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("columns", [40, 80, 132])
def test_issue15_simulate_wraps_to_the_terminal_width(columns, capsys):
    from gateway.cli import _show

    text = "Sugu - prix et conseils\n" + "Le prix de la tomate a Sikasso est de 14 000 F le panier cette semaine, en hausse. " * 2
    _show(text, ended=False, columns=columns)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= max(columns, 28)
    assert " ".join(line.strip("| ").strip() for line in lines[1:-1]).split() == text.split()


def test_simulate_runs_inside_a_running_event_loop(run):
    """The full suite once left an event loop running in the test thread: asyncio.run() refused
    ("cannot be called from a running event loop"); the simulator then uses a thread of its own."""
    import asyncio

    run("migrate")
    run("seed-demo")

    from concurrent.futures import ThreadPoolExecutor

    async def inside_a_loop() -> str:
        return run("simulate", input="2\n2\n1\n1\n300\n1\n")

    # In a thread of its own: this test's thread may itself have a loop left running (that is
    # how the case was found), and asyncio.run() refuses to start a second one there.
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(asyncio.run, inside_a_loop()).result()
    assert "The network closed the session. Goodbye." in out


# -- languages staff added (console → Languages) ----------------------------------------------------


@pytest.fixture
def with_languages(db_url, monkeypatch):
    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from tests.configured_languages import FULFULDE, SONGHOY, add_languages

    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    monkeypatch.delenv("GATEWAY_VOICE_NUMBER", raising=False)
    db = Database.from_settings(Settings(database_url=db_url))
    add_languages(db, FULFULDE, SONGHOY)
    db.dispose()
    return db_url


# (--language, what the terminal shows: the key answered, the notice, the next screen)
SIMULATED_LANGUAGES = [
    pytest.param("bm", ["> 2  (--language bm)", "I bisimila Sugu la!"], id="written"),
    pytest.param("ff", ["> 1  (--language ff)", 'told "Fulfulde: par appel vocal"', "| 1. Prix du marche"],
                 id="voice-only-served-in-french"),
    pytest.param("ses", ["> 1  (--language ses)", 'told "Koyraboro senni: non disponible"'], id="disabled"),
]


@pytest.mark.parametrize("language, shown", SIMULATED_LANGUAGES)
def test_simulate_a_new_caller_of_any_configured_language(with_languages, language, shown):
    result = CliRunner().invoke(app, ["simulate", "--phone", "+22370000077", "--language", language], input="")
    assert result.exit_code == 0, result.output
    for fragment in shown:
        assert fragment in result.output, result.output
    assert result.output.index("Choisir la langue") < result.output.index(f"(--language {language})")


def test_simulate_refuses_a_language_nobody_configured(with_languages):
    result = CliRunner().invoke(app, ["simulate", "--language", "wo"], input="", env={"COLUMNS": "300"})
    assert result.exit_code != 0
    assert "unknown language 'wo': configured are fr (français), bm (bambara), ff (peul), ses (songhaï)" in result.output


def test_broadcast_to_a_voice_only_language_reads_french(with_languages, sms_env):
    from gateway.core.db import Database
    from gateway.core.settings import Settings

    _add_producers(with_languages)
    db = Database.from_settings(Settings(database_url=with_languages))
    with db.unit_of_work() as session:
        session.add(models.Producer(phone="+22370000004", language="ff", region="Mopti"))
    db.dispose()
    result = CliRunner().invoke(app, ["broadcast", "--text-fr", "Bonjour", "--text-bm", "I ni ce", "--language", "ff",
                                      "--yes"])
    assert result.exit_code == 0, result.output
    assert "[fr] 1 recipients" in result.output and "of whom 1 speak ff, who read this text" in result.output
    assert "[bm]" not in result.output  # no line for a text nobody reads
    assert [(n, text) for n, text, _ in sms_env.sent_messages()] == [("+22370000004", "Bonjour")]
