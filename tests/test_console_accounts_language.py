"""Issue 15 on the account, staff, audit and dashboard pages: French by default and English by
choice, sign-in errors in the reader's language, the least role for new accounts, one-time
passwords, the dashboard saying what it leaves out, a chart with a unit and axis labels, empty
states that say what comes next, and tables that become cards on a phone."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlmodel import func, select
from typer.testing import CliRunner

from gateway.data import auth
from gateway.data import models
from gateway.admin import charts, dashboard
from gateway.app import create_app
from gateway.cli import app as cli
from messages import staff as staff_text
from tests.conftest import NOW
from tests.test_admin import PASSWORD, ROLES, Browser, Clock
from tests.test_console_accounts import user

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def staff(db):
    with db.unit_of_work() as session:
        for role in ROLES:
            auth.create_staff(session, email=f"{role}@sugu.test", password=PASSWORD, role=role)


@pytest.fixture
def browsers(settings, staff, clock):
    """browsers(role, language=...) -> a signed-in Browser on a console whose default is `language`."""
    opened = []
    apps = {}

    def make(role: str | None = None, *, language: str = "en") -> Browser:
        if language not in apps:
            apps[language] = create_app(settings.model_copy(update={"console_language": language}), clock=clock)
        b = Browser(apps[language])
        opened.append(b)
        if role:
            assert b.login(f"{role}@sugu.test").status_code == 303
        return b

    yield make
    for b in opened:
        b.close()


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


# -- 1. sign-in errors and password rules in French ------------------------------------------------


@pytest.mark.parametrize(
    "case, status, french",
    [
        pytest.param("wrong", 401, "adresse e-mail ou mot de passe incorrect", id="wrong-password"),
        pytest.param("throttled", 429, "Trop de tentatives de connexion", id="throttled"),
        pytest.param("busy", 503, "Le serveur est occupé", id="busy"),
    ],
)
def test_issue15_sign_in_errors_in_french(browsers, monkeypatch, case, status, french):
    b = browsers(language="fr")
    if case == "throttled":
        for _ in range(auth.MAX_FAILURES_PER_ACCOUNT):
            b.login("editor@sugu.test", "guess")
    if case == "busy":
        monkeypatch.setattr(auth, "MAX_HASH_WAITING", 0)
    answer = b.login("editor@sugu.test", "guess")
    assert answer.status_code == status
    shown = re.search(r'class="flash error"[^>]*>([^<]+)<', answer.text).group(1)
    assert french in shown.replace("&#39;", "'")
    assert html_lang(answer.text) == "fr"


@pytest.mark.parametrize(
    "form, field, french",
    [
        pytest.param({"current": PASSWORD, "new": "court", "repeat": "court"}, "new", "au moins 10 caractères", id="too-short"),
        pytest.param({"current": "pas le bon", "new": "une phrase assez longue", "repeat": "une phrase assez longue"}, "current",
                     "mot de passe actuel est incorrect", id="wrong-current"),
        pytest.param({"current": PASSWORD, "new": "une phrase assez longue", "repeat": "une autre phrase"}, "repeat",
                     "sont différents", id="differ"),
        pytest.param({"current": PASSWORD, "new": PASSWORD, "repeat": PASSWORD}, "new", "différent de l'actuel", id="same"),
    ],
)
def test_issue15_password_rules_in_french_beside_the_field(browsers, db, form, field, french):
    b = browsers("editor", language="fr")
    before = user(db, "editor@sugu.test").password_hash
    answer = b.post("/admin/account/password", form)
    assert answer.status_code == 400
    reason = re.search(rf'id="f-{field}-error">([^<]+)<', answer.text).group(1).replace("&#39;", "'")
    assert french in reason
    assert PASSWORD not in answer.text.replace(f'value="{PASSWORD}"', "")  # no password written back
    assert user(db, "editor@sugu.test").password_hash == before


# -- 2. each staff member chooses the console's language ---------------------------------------------


def test_issue15_staff_chooses_console_language(browsers, db):
    admin = browsers("admin", language="fr")
    created = admin.post("/admin/staff", {"email": "awa@sugu.test", "name": "Awa", "role": "reporter", "password": "une phrase assez longue"})
    assert created.status_code == 303
    b = browsers(language="fr")
    assert b.login("awa@sugu.test", "une phrase assez longue").status_code == 303
    b.post("/admin/account/password", {"current": "une phrase assez longue", "new": "ma propre phrase", "repeat": "ma propre phrase"})
    page = b.get("/admin/account").text
    assert html_lang(page) == "fr" and "Votre compte" in page and "Langue de la console" in page  # French by default

    assert b.post("/admin/account/language", {"language": "en"}).status_code == 303
    assert user(db, "awa@sugu.test").language == "en"
    page = b.get("/admin/account").text
    assert html_lang(page) == "en" and "Your account" in page and "Console language saved." in page
    assert html_lang(b.get("/admin/").text) == "en" and "Price over six months" in b.get("/admin/").text
    assert html_lang(admin.get("/admin/").text) == "fr"  # only for this person

    refused = b.post("/admin/account/language", {"language": "de"})
    assert refused.status_code == 400 and 'id="f-language-error"' in refused.text
    assert user(db, "awa@sugu.test").language == "en"

    assert b.post("/admin/account/language", {"language": ""}).status_code == 303  # back to the service's default
    assert html_lang(b.get("/admin/account").text) == "fr"
    with db.unit_of_work() as session:
        changes = session.exec(select(models.AuditLog).where(models.AuditLog.action == "language")).all()
    assert [(c.staff_email, c.before, c.after) for c in changes] == [
        ("awa@sugu.test", {"language": ""}, {"language": "en"}),
        ("awa@sugu.test", {"language": "en"}, {"language": ""}),
    ]
    assert "langue de la console" in admin.get("/admin/audit").text  # the audit log says it in words


# -- 3. accounts: least role, one-time passwords, reset from the command line -----------------------


@pytest.fixture
def gateway(settings, monkeypatch):
    """Runs the `gateway` command on the test database; returns (exit code, output)."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, list(args))
        return result.exit_code, result.output

    return invoke


@pytest.mark.parametrize("where", ["console form", "command line"])
def test_issue15_new_account_defaults_to_least_role(browsers, db, gateway, where):
    least = "reporter"
    assert auth.ROLES[-1] == least  # ROLES go from the most to the least
    if where == "console form":
        page = browsers("admin").get("/admin/staff").text
        role_select = re.search(r'<select id="f-role" name="role"[^>]*>(.*?)</select>', page, re.S).group(1)
        assert re.findall(r'<option value="(\w+)" selected>', role_select) == [least]
    else:
        code, output = gateway("staff", "add", "new@sugu.test", "--password", "a long enough passphrase")
        assert code == 0, output
        assert user(db, "new@sugu.test").role == least and f"as {least}" in output


def test_issue15_console_created_account_must_set_its_own_password(browsers, db):
    admin = browsers("admin")
    admin.post("/admin/staff", {"email": "moussa@sugu.test", "role": "editor", "password": "typed by the admin"})
    b = browsers()
    signed = b.login("moussa@sugu.test", "typed by the admin")
    assert signed.status_code == 303 and signed.headers["location"] == "/admin/account"
    assert b.get("/admin/prices").headers["location"] == "/admin/account"
    assert 'id="must-change"' in b.get("/admin/account").text
    assert b.post("/admin/account/password", {"current": "typed by the admin", "new": "my own passphrase",
                                              "repeat": "my own passphrase"}).status_code == 303
    assert b.get("/admin/prices").status_code == 200


@pytest.mark.parametrize("command", [("staff", "first-admin", "--email", "boss@sugu.test"),
                                     ("setup", "--first-admin", "boss@sugu.test")], ids=["staff-first-admin", "setup"])
def test_issue15_first_admin_one_time_password_must_be_changed(settings, db, clock, gateway, command):
    """Finding: the one-time administrator password printed at installation was never forced to
    change. The first sign-in with it leads to the account page, and nothing else opens until a
    new password is set."""
    code, output = gateway(*command)
    assert code == 0, output
    one_time = re.search(r"one-time password (\S+)", output).group(1)
    assert user(db, "boss@sugu.test").must_change_password
    b = Browser(create_app(settings, clock=clock))
    try:
        signed = b.login("boss@sugu.test", one_time)
        assert signed.status_code == 303 and signed.headers["location"] == "/admin/account"
        for path in ("/admin/", "/admin/staff", "/admin/prices"):
            assert b.get(path).headers.get("location") == "/admin/account", path
        assert b.post("/admin/account/password", {"current": one_time, "new": "the boss's own passphrase",
                                                  "repeat": "the boss's own passphrase"}).status_code == 303
        assert b.get("/admin/staff").status_code == 200
        assert not user(db, "boss@sugu.test").must_change_password
    finally:
        b.close()


def test_issue15_reset_password_prints_one_time_password(browsers, db, gateway):
    editor = browsers("editor")
    code, output = gateway("staff", "reset-password", "Editor@sugu.test")
    assert code == 0, output
    one_time = re.search(r"one-time password (\S+)", output).group(1)
    assert user(db, "editor@sugu.test").must_change_password
    assert editor.get("/admin/prices").status_code == 303  # the old session ended
    assert browsers().login("editor@sugu.test").status_code == 401  # the old password is gone
    b = browsers()
    signed = b.login("editor@sugu.test", one_time)
    assert signed.status_code == 303 and signed.headers["location"] == "/admin/account"
    with db.unit_of_work() as session:
        assert session.exec(select(models.AuditLog).where(models.AuditLog.action == "reset")).one().after == {"via": "cli"}

    before = user(db, "admin@sugu.test").password_hash
    code, output = gateway("staff", "reset-password", "nobody@sugu.test")
    assert code == 1 and "no account" in output
    assert user(db, "admin@sugu.test").password_hash == before


@pytest.mark.parametrize(
    "form, bad_fields",
    [
        pytest.param({"email": "not an address", "name": "Awa", "role": "editor", "password": "short"}, {"email", "password"}, id="email-and-password"),
        pytest.param({"email": "awa@sugu.test", "name": "Awa", "role": "boss", "password": "long enough here"}, {"role"}, id="role"),
        pytest.param({"email": "editor@sugu.test", "name": "Awa", "role": "editor", "password": "long enough here"}, {"email"}, id="taken"),
    ],
)
def test_issue15_failed_new_account_keeps_what_was_typed(browsers, db, form, bad_fields):
    admin = browsers("admin")
    with db.unit_of_work() as session:
        before = session.exec(select(func.count()).select_from(models.StaffUser)).one()
    answer = admin.post("/admin/staff", form)
    assert answer.status_code == 400
    assert set(re.findall(r'id="f-(\w+)-error"', answer.text)) == bad_fields
    assert f'value="{form["email"]}"' in answer.text and 'value="Awa"' in answer.text
    assert form["password"] not in re.sub(r'value="[^"]*@[^"]*"', "", answer.text)
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.StaffUser)).one() == before


def test_issue15_role_can_be_raised_from_the_staff_page(browsers, db):
    admin = browsers("admin")
    reporter = user(db, "reporter@sugu.test")
    page = admin.get("/admin/staff").text
    assert f'action="/admin/staff/{reporter.id}/role"' in page
    assert admin.post(f"/admin/staff/{reporter.id}/role", {"role": "editor"}).status_code == 303
    assert user(db, "reporter@sugu.test").role == "editor"


# -- 4. dashboard and chart ----------------------------------------------------------------------------


def test_issue15_dashboard_says_simulator_sessions_are_left_out(browsers, db):
    with db.unit_of_work() as session:
        session.exec(delete(models.UssdSession))
        for n in range(5):
            session.add(models.UssdSession(session_id=f"sim-{n}", phone="+22370000001", started_at=NOW))
        session.add(models.UssdSession(session_id="ATUid_farmer", phone="+22370000002", started_at=NOW))
    page = browsers("reporter").get("/admin/").text
    usage = re.search(r'id="usage">(.*?)</div>\s*</div>', page, re.S).group(1)
    assert re.findall(r"<b>(\d+)</b>sessions? in the last 24 hours", usage) == ["1"]
    note = re.search(r'id="simulator-note">([^<]+)<', page).group(1)
    assert "5 simulator sessions" in note and "left out" in note
    french = browsers("reporter", language="fr").get("/admin/").text
    assert "5 sessions du simulateur" in re.search(r'id="simulator-note">([^<]+)<', french).group(1)


def test_issue15_dashboard_without_traffic_says_what_to_do(browsers, db):
    with db.unit_of_work() as session:
        session.exec(delete(models.UssdSession))
    page = browsers("reporter").get("/admin/").text
    assert 'class="empty"' in page and "No calls from farmers" in page and 'href="/admin/simulators"' in page


def _labels(svg: str, kind: str) -> list[str]:
    return re.findall(rf'<text class="{kind}"[^>]*>([^<]+)</text>', svg)


def test_issue15_chart_has_unit_and_axis_labels(browsers):
    days = [dt.date(2026, 6, 1) + dt.timedelta(days=7 * n) for n in range(26)]
    svg = str(charts.line_chart([(d, 12000 + 130 * n) for n, d in enumerate(days)], unit="FCFA par kg", lang="fr",
                                axis_label="FCFA par kg", label="Prix sur six mois"))
    y = _labels(svg, "y-label")
    assert 3 <= len(y) <= 5 and y == sorted(y, key=lambda v: int(v.replace("\u202f", "")))  # round values, bottom to top
    assert y[0] == "12\u202f000"
    x = _labels(svg, "x-label")
    assert 3 <= len(x) <= 5 and x[0] == "1 juin" and x[-1] == staff_text.date(days[-1], "fr", short=True)
    assert _labels(svg, "axis-unit") == ["FCFA par kg"] and 'aria-label="Prix sur six mois"' in svg
    assert svg.count('class="grid"') == len(y)
    # Backward compatible: callers passing only a unit still get a chart, its unit on the axis.
    old = str(charts.line_chart([(days[0], 100), (days[1], 200)], unit="F"))
    assert _labels(old, "axis-unit") == ["F"] and len(_labels(old, "y-label")) >= 3
    assert "Pas assez" in str(charts.line_chart([], empty_text="Pas assez de prix"))
    # The dashboard's chart, in French: the unit in words.
    page = browsers("reporter", language="fr").get("/admin/?crop=1&market=1").text
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    assert re.match(r"FCFA par \w", _labels(svg, "axis-unit")[0]) and len(_labels(svg, "y-label")) >= 3


def test_issue15_forecast_chart_keeps_one_dot_per_forecast():
    history = [(dt.date(2026, 1, 5) + dt.timedelta(days=7 * n), 10000 + 100 * n) for n in range(10)]
    ahead = [(history[-1][0] + dt.timedelta(days=7 * n), 11000, 10000, 12000) for n in range(1, 5)]
    svg = str(charts.forecast_chart(history, ahead, unit="F/kg"))
    assert svg.count("<circle") == 4 and len(_labels(svg, "y-label")) >= 3 and _labels(svg, "axis-unit") == ["F/kg"]


# -- 5. audit log: empty state, cards -------------------------------------------------------------------


def test_issue15_audit_empty_state_says_what_next(browsers, db):
    admin = browsers("admin", language="fr")
    with db.unit_of_work() as session:
        session.exec(delete(models.AuditLog))
    page = admin.get("/admin/audit").text
    assert "<table" not in page
    empty = re.search(r'<p class="empty">(.*?)</p>', page, re.S).group(1)
    assert "Aucune modification enregistrée" in empty and "sera listée ici" in empty and 'href="/admin/prices"' in empty
    admin.post(f"/admin/staff/{user(db, 'editor@sugu.test').id}/deactivate")
    page = admin.get("/admin/audit").text
    assert 'class="cards audit-log"' in page and "désactivation" in page and "compte du personnel" in page
    nothing = admin.get("/admin/audit?q=personne-de-tel").text
    assert "Aucune modification ne correspond" in nothing and "<table" not in nothing
    assert "editor@sugu.test" in admin.get("/admin/audit?entity=staff&q=EDITOR").text


# -- phone first: the lists of these pages are cards ------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/staff", "/admin/audit", "/admin/account", "/admin/"])
def test_issue15_lists_are_cards_with_labels_on_a_phone(browsers, db, path):
    admin = browsers("admin")
    admin.post(f"/admin/staff/{user(db, 'editor@sugu.test').id}/token")  # something in the audit log
    page = admin.get(path).text
    tables = re.findall(r"<table([^>]*)>(.*?)</table>", page, re.S)
    assert tables
    for attributes, body in tables:
        if 'class="posture"' in attributes:  # label: value pairs, stacked by the page's CSS
            continue
        assert "cards" in attributes, attributes
        for cell in re.findall(r"<td([^>]*)>(.*?)</td>", body, re.S):
            assert "data-label=" in cell[0] or "<form" in cell[1] or "<button" in cell[1], cell


# -- the texts these pages show from Python have their French ------------------------------------------


def _auth_texts() -> set[str]:
    tree = ast.parse((ROOT / "gateway" / "data" / "auth.py").read_text(encoding="utf-8"))
    texts = {auth.WRONG, auth.THROTTLED}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("AuthError", "Busy", "Throttled"):
            if node.args and isinstance(node.args[0], ast.Constant):
                texts.add(node.args[0].value)
    return texts


def _http_details(module: str) -> set[str]:
    tree = ast.parse((ROOT / "gateway" / "admin" / module).read_text(encoding="utf-8"))
    return {
        node.args[1].value for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "HTTPException" and len(node.args) > 1
        and isinstance(node.args[1], ast.Constant)
    }


def test_issue15_sign_in_and_dashboard_texts_have_their_french():
    french = staff_text.texts("fr")
    texts = _auth_texts() | _http_details("accounts.py") | set(dashboard.SECTION_LABELS.values()) | set(dashboard.CEILING_LABELS.values())
    assert len(_auth_texts()) >= 10
    assert sorted(t for t in texts if t not in french) == []
    for kind in ("audit_action", "audit_entity"):
        assert staff_text.words()[kind]


def test_issue15_audit_words_cover_every_action_written():
    """Every action and entity the code writes to the audit log has its words (not a raw code)."""
    found = {"audit_action": set(), "audit_entity": set()}
    for path in (ROOT / "gateway").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "audit":
                for keyword in node.keywords:
                    if keyword.arg in ("action", "entity"):
                        values = [n.value for n in ast.walk(keyword.value) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                        found[f"audit_{keyword.arg}"].update(values)
    found["audit_action"] |= {"approve", "reject", "accept", "decline", "cancel", "activate", "deactivate", "token", "role", "reset"}
    found["audit_entity"] |= {"region", "market", "crop", "unit", "price_kind"}
    words = staff_text.words()
    for kind, codes in found.items():
        assert sorted(codes - set(words[kind])) == [], kind
