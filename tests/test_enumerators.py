"""Enumerators' price reports (issue 14, finding 2): reports cannot walk the price they are checked
against, each enumerator has a daily report limit, and staff make and unmake enumerators in the
console, the API and the producers import; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics

import pytest
from sqlmodel import col, select, update

from gateway.data import models
from gateway.app import create_app
from gateway.data.dataview import SqlDataView
from menus import pricecheck
from messages import default_catalog
from tests.conftest import NOW
from tests.test_admin import Browser, browser, clock, staff  # noqa: F401 (fixtures)
from tests.test_corrections import api, tokens  # noqa: F401 (fixtures)
from tests.test_imports import cli_run  # noqa: F401 (fixture)

pytestmark = pytest.mark.db

TODAY = NOW.date()
TOMATO, SIKASSO = 1, 1  # the seed's Sikasso tomato basket: about 13,000 F these weeks
TOLERANCE = 2.0  # GATEWAY_PRICE_REPORT_TOLERANCE's default
OBS = models.PriceObservation
CATALOG = default_catalog()
_ids = itertools.count(1)


@pytest.fixture
def report_limit() -> int:
    return 20  # GATEWAY_MAX_REPORTS_PER_ENUMERATOR_PER_DAY's default


@pytest.fixture
def app(settings, clock, report_limit):  # noqa: F811 (this module's limit)
    return create_app(settings.model_copy(update={"max_reports_per_enumerator_per_day": report_limit}), clock=clock)


@pytest.fixture
def phone_client(app):
    b = Browser(app)
    yield b.client
    b.close()


def make_enumerators(db, count: int, *, language: str = "fr", first: int = 0) -> list[str]:
    phones = [f"+2237655{n:04d}" for n in range(first, first + count)]
    with db.unit_of_work() as session:
        for phone in phones:
            session.add(models.Producer(phone=phone, language=language, role="enumerator"))
    return phones


def send(client, phone: str, text: str) -> str:
    """An inbound SMS through the aggregator's callback (the reply is queued for the phone)."""
    response = client.post("/webhooks/at/sms", data={"from": phone, "to": "36123", "text": text, "id": f"e-{next(_ids)}"})
    assert response.status_code == 200, response.text
    return response


def last_reply(db, phone: str) -> str:
    with db.unit_of_work() as session:
        m = models.SmsMessage
        return session.exec(select(m.text).where(m.phone == phone, m.kind == "reply").order_by(col(m.id).desc())).first()


def replies(db, phone: str) -> int:
    with db.unit_of_work() as session:
        m = models.SmsMessage
        return len(session.exec(select(m.id).where(m.phone == phone, m.kind == "reply")).all())


def reports(db) -> list[models.PriceObservation]:
    with db.unit_of_work() as session:
        return session.exec(select(OBS).where(col(OBS.reported_by_id).is_not(None)).order_by(OBS.id)).all()


def staff_prices(db, since: dt.date, until: dt.date) -> list[int]:
    with db.unit_of_work() as session:
        return list(session.exec(select(OBS.price).where(
            OBS.crop_id == TOMATO, OBS.market_id == SIKASSO, OBS.unit == "basket", OBS.status == "published",
            col(OBS.reported_by_id).is_(None), OBS.observed_on >= since, OBS.observed_on <= until,
        )).all())  # fmt: skip


def withdraw_staff_prices(db, since: dt.date) -> None:
    """No recent staff price: the reference is then the median of earlier days."""
    with db.unit_of_work() as session:
        session.exec(update(OBS).where(OBS.crop_id == TOMATO, OBS.market_id == SIKASSO, OBS.observed_on >= since)
                     .values(status="withdrawn"))


# -- the finding: reports walked the median they were compared with ---------------------------------


@pytest.mark.parametrize(
    "numbers, days, staff_recent, attacker",
    [
        pytest.param(1, 1, True, "walks", id="one-number-in-a-minute"),
        pytest.param(1, 1, True, "climbs", id="one-number-in-a-minute-every-report-higher"),
        pytest.param(6, 1, True, "walks", id="six-numbers-in-a-minute"),
        pytest.param(6, 1, False, "walks", id="six-numbers-no-recent-staff-price"),
        pytest.param(3, 6, False, "walks", id="three-numbers-over-six-days-no-recent-staff-price"),
    ],
)
def test_forged_reports_cannot_walk_the_price(db, phone_client, clock, numbers, days, staff_recent, attacker):
    """60 reports from 13,000 F up, from one or several enumerators' numbers. `climbs`: each 10%
    above the last. `walks` (the finding's 13,000 F → 209,326 F): the attacker reads the replies,
    repeats the last published price to pull the median up, then tries 10% higher. What is
    published never exceeds the rule's bound around the price before the burst, and every report
    beyond it is held with its reason."""
    if staff_recent:
        # Recent staff prices are the reference: ×2 their median is the bound.
        bound = TOLERANCE * statistics.median(staff_prices(db, TODAY - dt.timedelta(days=14), TODAY))
    else:
        withdraw_staff_prices(db, TODAY - dt.timedelta(days=14))
        # The median of earlier days: never above the dearest of them, whatever was reported since.
        bound = TOLERANCE * max(staff_prices(db, TODAY - dt.timedelta(days=56), TODAY))
    phones = make_enumerators(db, numbers)
    level = 13000
    per_day = 60 // days
    for k in range(60):
        clock.now = NOW + dt.timedelta(days=k // per_day, seconds=k)
        phone = phones[k % numbers]
        price = round(13000 * 1.1**k) if attacker == "climbs" else (level if k % 2 == 0 else round(level * 1.1))
        replied = replies(db, phone)
        send(phone_client, phone, f"P TOMATE SIKASSO {price}")
        row = reports(db)[-1]
        if row.status == "published":
            level = max(level, price)
        else:
            assert row.status == "held" and row.review_reason
            # (Past the per-number reply cap, nothing more is sent.)
            assert replies(db, phone) == replied or "à vérifier" in last_reply(db, phone)
    rows = reports(db)
    assert len(rows) == 60
    published = [r.price for r in rows if r.status == "published"]
    held = [r for r in rows if r.status == "held"]
    assert published and max(published) <= bound, (max(published), bound)
    assert held and len(published) + len(held) == 60 and all(r.review_reason for r in held)
    if numbers == 1:
        assert any("limite de 20 prix par jour" in r.review_reason for r in held)
    with db.unit_of_work() as session:
        (quote,) = [q for q in SqlDataView(session).latest_prices(TOMATO) if q.market_id == SIKASSO]
    assert quote.price <= bound  # what every reply, screen and alert shows


# -- the daily report limit --------------------------------------------------------------------------


@pytest.mark.parametrize("report_limit", [3])
def test_enumerator_daily_report_limit(db, phone_client, clock, report_limit):
    (fr,) = make_enumerators(db, 1)
    (bm,) = make_enumerators(db, 1, language="bm", first=1)
    for n in range(5):
        send(phone_client, fr, f"P TOMATE SIKASSO {13000 + 100 * n}")
    assert [r.status for r in reports(db)] == ["published"] * 3 + ["held"] * 2
    assert reports(db)[-1].review_reason == "limite de 3 prix par jour atteinte"
    assert "à vérifier: limite de 3 prix par jour atteinte" in last_reply(db, fr)
    # Held reports count too: a number cannot flood the review queue for free either.
    send(phone_client, fr, "P TOMATE SIKASSO 13000")
    assert reports(db)[-1].status == "held"
    # The limit is each enumerator's own, in their language.
    for n in range(4):
        send(phone_client, bm, f"P TOMATE SIKASSO {13000 + 100 * n}")
    bm_rows = [r for r in reports(db) if r.source.endswith(bm)]
    assert [r.status for r in bm_rows] == ["published"] * 3 + ["held"]
    assert bm_rows[-1].review_reason == CATALOG.text("bm", "sms.reason_daily_limit", limit=3)
    # A new day, a new allowance.
    clock.now = NOW + dt.timedelta(days=1)
    send(phone_client, fr, "P TOMATE SIKASSO 13000")
    assert reports(db)[-1].status == "published"


# -- staff make and unmake enumerators ---------------------------------------------------------------

NEWCOMER = "+22370999001"


def set_role(channel: str, role: str, *, browser, api, cli_run, db, tmp_path, staff_role="editor"):  # noqa: F811
    """Make the newcomer `role` through a channel; the HTTP answer (or CLI output)."""
    if channel == "console":
        b = browser(staff_role)
        with db.unit_of_work() as session:
            producer = session.exec(select(models.Producer).where(models.Producer.phone == NEWCOMER)).one()
        page = b.get(f"/admin/producers/{producer.id}")
        if page.status_code == 200:  # the role control, on the producer's page
            assert f'<option value="{producer.role}" selected>' in page.text and 'name="role"' in page.text
        return b.post(f"/admin/producers/{producer.id}/role", {"role": role})
    if channel == "api":
        return api("POST", "/api/v1/producers", staff_role, json={"phone": NEWCOMER, "role": role})
    csv_text = f"phone,name,role\n{NEWCOMER},Awa Traoré,{role}\n"
    if channel == "import":
        b = browser(staff_role)
        return b.post("/admin/producers/import", files={"file": ("team.csv", csv_text.encode(), "text/csv")})
    path = tmp_path / "team.csv"
    path.write_text(csv_text, encoding="utf-8")
    return cli_run("import-producers", path, code=0 if role in models.PRODUCER_ROLES else 1)


def role_of(db) -> str:
    with db.unit_of_work() as session:
        return session.exec(select(models.Producer.role).where(models.Producer.phone == NEWCOMER)).one()


def role_audits(db) -> list[tuple]:
    with db.unit_of_work() as session:
        a = models.AuditLog
        rows = session.exec(select(a).where(a.action == "role", a.entity_id == NEWCOMER).order_by(a.id)).all()
        return [(r.staff_email, r.before["role"], r.after["role"]) for r in rows]


CHANNELS = ["console", "api", "import", "cli"]
WHO = {"console": "editor@sugu.test", "api": "editor@api.test", "import": "editor@sugu.test", "cli": "system"}


@pytest.mark.parametrize("channel", CHANNELS)
def test_staff_make_and_unmake_enumerators_console_api_import(browser, api, cli_run, db, phone_client, tmp_path,  # noqa: F811
                                                              channel):
    make_args = dict(browser=browser, api=api, cli_run=cli_run, db=db, tmp_path=tmp_path)
    send(phone_client, NEWCOMER, "P TOMATE SIKASSO 13000")
    assert reports(db) == [] and "Seuls les enqueteurs inscrits" in last_reply(db, NEWCOMER)

    answer = set_role(channel, "enumerator", **make_args)
    assert getattr(answer, "status_code", 200) in (200, 303), getattr(answer, "text", answer)
    assert role_of(db) == "enumerator"
    if channel == "console":
        page = browser("editor").get("/admin/producers?role=enumerator").text
        assert NEWCOMER in page and "enumerator</span>" in page
        assert NEWCOMER not in browser("editor").get("/admin/producers?role=producer").text
    if channel == "api":
        listed = api("GET", "/api/v1/producers?role=enumerator").json()
        assert [(p["phone"], p["role"]) for p in listed] == [(NEWCOMER, "enumerator")]
    send(phone_client, NEWCOMER, "P TOMATE SIKASSO 13000")
    assert [r.status for r in reports(db)] == ["published"]

    set_role(channel, "producer", **make_args)
    assert role_of(db) == "producer"
    send(phone_client, NEWCOMER, "P TOMATE SIKASSO 13500")
    assert len(reports(db)) == 1 and "Seuls les enqueteurs inscrits" in last_reply(db, NEWCOMER)
    assert role_audits(db) == [(WHO[channel], "producer", "enumerator"), (WHO[channel], "enumerator", "producer")]
    set_role(channel, "producer", **make_args)  # no change, nothing more in the audit log
    assert len(role_audits(db)) == 2


@pytest.mark.parametrize(
    "channel, staff_role, role, status, message",
    [
        pytest.param("console", "reporter", "enumerator", 403, "", id="console-reporter-may-not"),
        pytest.param("api", "reporter", "enumerator", 403, "", id="api-reporter-may-not"),
        pytest.param("import", "reporter", "enumerator", 403, "", id="import-reporter-may-not"),
        pytest.param("console", "editor", "chef", 400, "producer or enumerator", id="console-unknown-role"),
        pytest.param("api", "editor", "chef", 422, "enumerator", id="api-unknown-role"),
        pytest.param("import", "editor", "chef", 400, '>2</td><td data-label="Problem">role &#34;chef&#34;: use producer or enumerator',
                     id="import-unknown-role"),
        pytest.param("cli", "editor", "chef", 0, 'team.csv: line 2: role "chef": use producer or enumerator',
                     id="cli-unknown-role"),
    ],
)
def test_staff_make_and_unmake_enumerators_refused(browser, api, cli_run, db, tmp_path, phone_client,  # noqa: F811
                                                   channel, staff_role, role, status, message):
    send(phone_client, NEWCOMER, "AIDE")  # the newcomer is known, as a producer
    answer = set_role(channel, role, browser=browser, api=api, cli_run=cli_run, db=db, tmp_path=tmp_path,
                      staff_role=staff_role)
    if channel == "cli":
        assert message in answer
    else:
        assert answer.status_code == status and message in answer.text, answer.text[-2000:]
    assert role_of(db) == "producer" and role_audits(db) == []


# -- the reference rule itself (menus.pricecheck, pure) ----------------------------------------------


def _days(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


ME, OTHER, STAFF = 1, 2, None
P = pricecheck.PricePoint


@pytest.mark.parametrize(
    "points, expected",
    [
        pytest.param([P(13000, 1, _days(7)), P(14000, 1, _days(0)), P(30000, 1, _days(3), OTHER)], (13500, "staff", 1),
                     id="recent-staff-prices-are-the-reference"),
        pytest.param([P(13000, 1, _days(20)), P(13000, 1, _days(27))] + [P(25000, 1, _days(d), ME) for d in range(1, 6)],
                     (13000, "reports", 1), id="the-reporters-own-reports-never-count"),
        pytest.param([P(13000, 1, _days(d), OTHER) for d in (1, 2, 3)] + [P(25000, 1, _days(4), 3)] * 50,
                     (13000, "reports", 1), id="a-day-counts-once-however-many-reports"),
        pytest.param([P(13000, 1, _days(d), OTHER) for d in (8, 9)] + [P(25000, 1, _days(0), d) for d in range(3, 60)],
                     (13000, "reports", 1), id="the-day-reported-does-not-count"),
        pytest.param([P(13000, 1, _days(20)), P(18000, 2, _days(3)), P(20000, 3, _days(4))], (19000, "staff", None),
                     id="too-little-here-the-crop-everywhere"),
        pytest.param([P(13000, 1, _days(20)), P(13000, 1, _days(60), OTHER)], None, id="too-little-anywhere"),
    ],
)
def test_reference_rule(points, expected):
    found = pricecheck.reference(points, market_id=1, today=TODAY, reporter_id=ME)
    assert (found and (found.median, found.basis, found.market_id)) == expected


@pytest.mark.parametrize("report_limit", [3])
def test_enumerator_daily_report_limit_holds_under_concurrent_reports(db, app, report_limit):
    """12 reports from one number at once (the aggregator retries, or a forger): 3 published."""
    from concurrent.futures import ThreadPoolExecutor

    (phone,) = make_enumerators(db, 1)
    clients = [Browser(app) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: send(clients[n % 4].client, phone, f"P TOMATE SIKASSO {13000 + n}"), range(12)))
    finally:
        for c in clients:
            c.close()
    assert sorted(r.status for r in reports(db)) == ["held"] * 9 + ["published"] * 3
