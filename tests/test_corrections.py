"""Price corrections (issue 13, part 4): staff prices pass the enumerators' outlier rule, a
published price can be corrected or withdrawn (console and API, audited), everything downstream
follows, and a correction SMS reaches exactly the producers whose alert carried the wrong value."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import update
from sqlmodel import func, select

from gateway.data import auth
from gateway.outbound import broadcast
from gateway.data import models
from messages import default_catalog
from tests.conftest import NOW
from tests.test_admin import Browser, Clock, app, browser, clock, staff  # noqa: F401 (fixtures)

pytestmark = pytest.mark.db

TODAY = NOW.date()
YESTERDAY = TODAY - dt.timedelta(days=1)  # no seeded price that day: the typo is the only one
TOMATO, SIKASSO = 1, 1  # a basket of tomatoes at Sikasso costs 12,000-22,500 F in the seed
OBS = models.PriceObservation


def digits(text: str) -> str:
    """Prices in text with their group separators (narrow no-break spaces, spaces, commas) removed."""
    return re.sub(r"(?<=\d)[\s\u202f\u00a0,](?=\d)", "", text)


@pytest.fixture
def tokens(db):
    out = {}
    with db.unit_of_work() as session:
        for role in auth.ROLES:
            user = auth.create_staff(session, email=f"{role}@api.test", password="x" * 12, role=role)
            out[role] = auth.issue_api_token(session, user)
    return out


@pytest.fixture
def api(app, tokens):
    client = Browser(app).client

    def call(method: str, path: str, role: str = "editor", **kw):
        return client.request(method, path, headers={"Authorization": f"Bearer {tokens[role]}"}, **kw)

    yield call
    client.__exit__(None, None, None)


def add_price(db, price: int, *, day=YESTERDAY, crop=TOMATO, market=SIKASSO, unit="basket", status="published") -> int:
    with db.unit_of_work() as session:
        row = OBS(crop_id=crop, market_id=market, observed_on=day, price=price, unit=unit, status=status,
                  source="console:typo@sugu.test", created_at=NOW.astimezone(dt.timezone.utc) - dt.timedelta(hours=1))
        session.add(row)
        session.flush()
        return row.id


def published(db, *, day=YESTERDAY, crop=TOMATO, market=SIKASSO) -> list[int]:
    with db.unit_of_work() as session:
        return sorted(session.exec(select(OBS.price).where(
            OBS.crop_id == crop, OBS.market_id == market, OBS.observed_on == day, OBS.status == "published")).all())


def grid_form(b: Browser, *, day=YESTERDAY, **prices) -> dict:
    """The prices grid as a browser would post it: every field the page holds, then the typing."""
    page = b.get(f"/admin/prices?market={SIKASSO}&date={day.isoformat()}").text
    form = {name: value for name, value in re.findall(r'<input type="hidden" name="(obs_\d+)" value="(\d+)"', page)}
    return {"market": str(SIKASSO), "date": day.isoformat(), **form, **prices}


# -- the finding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [pytest.param("console", id="console"), pytest.param("api", id="api")])
def test_typo_published_without_warning_and_second_price_added_instead_of_a_correction(browser, api, db, channel):
    """1,300 typed for a 13,000 F basket: staff are warned (value, median, ratio) and must confirm;
    typing the right value then corrects the published price instead of adding a second one."""
    if channel == "console":
        b = browser("editor")
        form = grid_form(b, price_1="1300")
        confirm = b.post("/admin/prices", form)
        assert confirm.status_code == 200 and 'class="outlier"' in confirm.text, confirm.text[-1500:]
        # The value, the reference (recent staff prices, menus.pricecheck) and the ratio to it.
        assert "1300 F/basket" in digits(confirm.text) and "13000 F" in digits(confirm.text) and "×0.1" in confirm.text
        refused = b.post("/admin/prices", {**form, "confirm": "yes"})  # not acknowledged
        assert refused.status_code == 422 and "Tick each price" in refused.text
        assert published(db) == []
        assert b.post("/admin/prices", {**form, "confirm": "yes", "ack_1": "yes"}).status_code == 303
        assert published(db) == [1300]
        fixed = grid_form(b, price_1="13000")
        assert "Corrections of prices already published" in b.post("/admin/prices", fixed).text
        assert b.post("/admin/prices", {**fixed, "confirm": "yes"}).status_code == 422  # a reason is required
        assert b.post("/admin/prices", {**fixed, "confirm": "yes", "correction_reason": "typo: one zero missing"}).status_code == 303
    else:
        body = {"prices": [{"date": YESTERDAY.isoformat(), "market": "sikasso", "crop": "tomato", "price": 1300}], "alerts": False}
        refused = api("POST", "/api/v1/prices", json=body)
        assert refused.status_code == 422 and "tomato at sikasso" in refused.text and "1300 F/basket" in refused.text
        assert published(db) == []
        created = api("POST", "/api/v1/prices", json={**body, "acknowledge_outliers": True})
        assert created.status_code == 201, created.text
        (typo_id,) = created.json()["created"]
        fixed = api("POST", f"/api/v1/prices/{typo_id}/correct", json={"price": 13000, "reason": "typo: one zero missing"})
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["old"]["status"] == "corrected" and fixed.json()["new"]["replaces_id"] == typo_id
    assert published(db) == [13000]  # one price, the right one
    with db.unit_of_work() as session:
        old, new = session.exec(select(OBS).where(OBS.observed_on == YESTERDAY, OBS.crop_id == TOMATO,
                                                  OBS.market_id == SIKASSO).order_by(OBS.id)).all()
        (log,) = session.exec(select(models.AuditLog).where(models.AuditLog.action == "correct")).all()
    assert (old.status, new.status, new.replaces_id, new.price) == ("corrected", "published", old.id, 13000)
    assert old.changed_by == new.changed_by == f"editor@{'sugu' if channel == 'console' else 'api'}.test"
    assert old.changed_at is not None
    assert log.before["price"] == 1300 and log.after["price"] == 13000 and log.after["reason"] == "typo: one zero missing"


@pytest.mark.parametrize(
    "price, flagged",
    [
        pytest.param("1300", True, id="ten-times-too-low"),
        pytest.param("170000", True, id="ten-times-too-high"),
        pytest.param("15000", False, id="usual"),
    ],
)
def test_staff_outlier_rule_matches_the_enumerators(browser, api, db, price, flagged):
    b = browser("reporter")
    page = b.post("/admin/prices", grid_form(b, price_1=price))
    assert ('class="outlier"' in page.text) == flagged
    body = {"prices": [{"date": YESTERDAY.isoformat(), "market": "sikasso", "crop": "tomato", "price": int(price)}], "alerts": False}
    assert api("POST", "/api/v1/prices", "reporter", json=body).status_code == (422 if flagged else 201)


# -- correct and withdraw: roles, reasons, bad ids, twice ------------------------------------------


def console_fix(browser, role, obs_id, action, data):
    # A withdrawal is confirmed on a page of its own first (issue 15): this posts the confirmation.
    return browser(role).post(f"/admin/prices/{obs_id}/{action}", {**data, "confirmed": "1"})


def api_fix(api, role, obs_id, action, data):
    return api("POST", f"/api/v1/prices/{obs_id}/{action}", role, json=data)


@pytest.mark.parametrize("channel", ["console", "api"])
@pytest.mark.parametrize(
    "role, action, data, target, status, message",
    [
        pytest.param("editor", "correct", {"price": "13000", "reason": "typo"}, "typo", 200, "", id="editor-corrects"),
        pytest.param("reporter", "correct", {"price": "13000", "reason": "typo", "unit": "basket"}, "typo", 200, "", id="reporter-corrects"),
        pytest.param("admin", "withdraw", {"reason": "wrong market"}, "typo", 200, "", id="admin-withdraws"),
        pytest.param("reporter", "withdraw", {"reason": "wrong market"}, "typo", 200, "", id="reporter-withdraws"),
        pytest.param("editor", "correct", {"price": "13000", "reason": "  "}, "typo", 422, "reason is required", id="blank-reason"),
        pytest.param("editor", "withdraw", {}, "typo", 422, "reason", id="missing-reason"),
        pytest.param("editor", "correct", {"price": "1300", "reason": "again"}, "typo", 422, "same as the published", id="same-value"),
        pytest.param("editor", "correct", {"price": "13000", "reason": "x", "unit": "ton"}, "typo", 422, "unit", id="unknown-unit"),
        pytest.param("editor", "withdraw", {"reason": "x"}, "missing", 404, "", id="no-such-price"),
        pytest.param("editor", "withdraw", {"reason": "x"}, "withdrawn", 409, "already withdrawn", id="already-withdrawn"),
        pytest.param("editor", "correct", {"price": "13000", "reason": "x"}, "held", 409, "already held", id="not-published"),
    ],
)
def test_correct_and_withdraw(browser, api, db, channel, role, action, data, target, status, message):
    typo = add_price(db, 1300)
    obs_id = {"typo": typo, "missing": 999_999, "withdrawn": add_price(db, 900, status="withdrawn"),
              "held": add_price(db, 900, status="held")}[target]
    if channel == "api" and "price" in data:
        data = {**data, "price": int(data["price"]), "acknowledge_outliers": True}
    response = (console_fix(browser, role, obs_id, action, data) if channel == "console"
                else api_fix(api, role, obs_id, action, data))
    ok = status == 200
    if channel == "console":
        assert response.status_code == (303 if ok else status), response.text[-800:]
    else:
        assert response.status_code == status, response.text
    assert message in response.text
    with db.unit_of_work() as session:
        row = session.get(OBS, typo)
        audits = session.exec(select(func.count()).select_from(models.AuditLog).where(
            models.AuditLog.entity == "price", models.AuditLog.entity_id == str(typo))).one()
    if ok:
        assert row.status == ("corrected" if action == "correct" else "withdrawn")
        assert row.changed_by == f"{role}@{'sugu' if channel == 'console' else 'api'}.test" and audits == 1
        assert published(db) == ([13000] if action == "correct" else [])
    else:
        assert row.status == "published" and audits == 0 and published(db) == [1300]


def test_a_price_corrected_twice_in_a_row_is_refused_the_second_time(api, db):
    typo = add_price(db, 1300)
    first = api_fix(api, "editor", typo, "correct", {"price": 13000, "reason": "typo", "acknowledge_outliers": True})
    second = api_fix(api, "editor", typo, "correct", {"price": 14000, "reason": "typo", "acknowledge_outliers": True})
    assert first.status_code == 200 and second.status_code == 409
    assert f"already corrected (see #{first.json()['new']['id']})" in second.text
    assert published(db) == [13000]


# -- everything downstream follows ---------------------------------------------------------------


def sms_reply(b: Browser, text: str) -> str:
    page = b.post("/admin/simulators/sms", {"phone": "+22370000999", "text": text}).text
    return digits(page)


@pytest.mark.parametrize("action", ["correct", "withdraw"])
@pytest.mark.parametrize(
    "reader",
    [
        pytest.param("latest", id="latest-price-and-change"),
        pytest.param("sms", id="sms-reply"),
        pytest.param("api", id="api-list"),
        pytest.param("console", id="console-grid-and-history"),
    ],
)
def test_downstream_after_a_correction(browser, api, db, reader, action):
    from gateway.data.dataview import SqlDataView

    with db.unit_of_work() as session:
        before = next(q for q in SqlDataView(session).latest_prices(TOMATO) if q.market_id == SIKASSO)
    typo = add_price(db, 1300, day=TODAY)  # after today's seeded price: the latest

    def read():
        if reader == "latest":
            with db.unit_of_work() as session:
                q = next(q for q in SqlDataView(session).latest_prices(TOMATO) if q.market_id == SIKASSO)
            return f"{q.price} {q.change_percent}"
        if reader == "sms":
            return sms_reply(browser("editor"), "PRIX TOMATE SIKASSO")
        if reader == "api":
            return str([p["price"] for p in api("GET", "/api/v1/prices?crop=tomato&market=sikasso&limit=3").json()])
        b = browser("editor")
        return digits(b.get(f"/admin/prices?market={SIKASSO}").text + b.get(f"/admin/prices/history?crop={TOMATO}&market={SIKASSO}").text)

    wrong = read()
    assert "1300" in wrong
    if action == "correct":
        response = api_fix(api, "editor", typo, "correct", {"price": 13000, "reason": "typo", "acknowledge_outliers": True})
    else:
        response = api_fix(api, "editor", typo, "withdraw", {"reason": "typo"})
    assert response.status_code == 200
    right = read()
    now_price = 13000 if action == "correct" else before.price
    typo_shown = re.compile(r"(?<!\d)1300(?!\d)")
    if reader == "latest":
        # The typo read -9x% against today's seeded price; the correction compares like with like.
        expected = (f"13000 {round((13000 - before.price) * 100 / before.price)}" if action == "correct"
                    else f"{before.price} {before.change_percent}")
        assert right == expected
    elif reader in ("sms", "api"):
        assert not typo_shown.search(right) and re.search(rf"(?<!\d){now_price}(?!\d)", right), right[-600:]
        if reader == "api":
            assert right.startswith(f"[{now_price}")
    else:
        assert f'value="{now_price}"' in right and 'value="1300"' not in right
        assert "<s>1300 F/basket</s>" in right  # the history keeps the struck-out value


# -- alerts in flight and the correction SMS -----------------------------------------------------

PEOPLE = {
    # phone: (language, what became of their alert with the wrong value)
    "+22370000101": ("fr", "sent"),
    "+22370000102": ("bm", "delivered"),
    "+22370000103": ("fr", "failed"),
    "+22370000104": ("bm", "queued"),
    "+22370000105": ("fr", "unconfirmed"),
}


@pytest.fixture
def alerted(db, settings):
    """The typo published with alerts, expanded, and each subscriber's SMS in a given state."""
    with db.unit_of_work() as session:
        for phone, (language, _) in PEOPLE.items():
            p = models.Producer(phone=phone, language=language)
            session.add(p)
            session.flush()
            session.add(models.Subscription(producer_id=p.id, crop_id=TOMATO, market_id=SIKASSO))
        # Someone subscribed to another price only: never concerned.
        other = models.Producer(phone="+22370000106", language="fr")
        session.add(other)
        session.flush()
        session.add(models.Subscription(producer_id=other.id, crop_id=2, market_id=SIKASSO))
    typo = add_price(db, 1300, day=TODAY)
    with db.unit_of_work() as session:
        broadcast.publish_alerts(session, pairs=[(TOMATO, SIKASSO), (2, SIKASSO)], now=NOW)
    assert broadcast.expand_due(db, now=NOW, catalog=default_catalog(), settings=settings) == 1
    m = models.SmsMessage
    with db.unit_of_work() as session:
        for phone, (_, status) in PEOPLE.items():
            session.exec(update(m).where(m.phone == phone).values(status=status))
        (alert,) = session.exec(select(models.Broadcast)).all()
    assert alert.audience["carried"][f"{TOMATO}:{SIKASSO}"]["observation"] == typo
    return typo


def correction_messages(db):
    with db.unit_of_work() as session:
        b = session.exec(select(models.Broadcast).where(models.Broadcast.kind == "correction")).all()
        rows = session.exec(select(models.SmsMessage).where(models.SmsMessage.broadcast_id.in_([x.id for x in b]))).all()
    return b, {r.phone: r for r in rows}


@pytest.mark.parametrize(
    "action, data, fr, bm",
    [
        pytest.param("correct", {"price": "13000", "reason": "typo"}, "13000F/panier, et non 1300F", "13000F/panye, a tè 1300F ye",
                     id="corrected"),
        pytest.param("withdraw", {"reason": "wrong market"}, "(1300F/panier) était faux", "(1300F/panye) tun ye filli ye",
                     id="withdrawn"),
    ],
)
def test_correction_sms_goes_to_exactly_those_who_received_the_wrong_value(browser, db, settings, alerted, action, data, fr, bm):
    typo = alerted
    b = browser("reporter")
    assert b.post(f"/admin/prices/{typo}/{action}", {**data, "confirmed": "1"}).status_code == 303
    # The alert still queued is stopped; after a correction its producer gets a fresh alert
    # (expanded later, with the right value), after a withdrawal only the other price.
    with db.unit_of_work() as session:
        stopped = session.exec(select(models.SmsMessage).where(models.SmsMessage.phone == "+22370000104")).one()
        resent = session.exec(select(models.Broadcast).where(models.Broadcast.kind == "alert").order_by(models.Broadcast.id)).all()[-1]
    assert stopped.status == "skipped" and stopped.failure_reason.startswith("price_")
    assert resent.audience["producers"] == [stopped.producer_id]
    assert resent.audience["pairs"] == ([[TOMATO, SIKASSO], [2, SIKASSO]] if action == "correct" else [[2, SIKASSO]])
    # Count and cost first, nothing queued yet.
    page = b.get(f"/admin/prices/{typo}/correction-sms")
    text = digits(page.text)
    assert "2 producers received this value" in text, text[-2000:]
    assert f"{2 * settings.sms_price_per_segment:,.0f} XOF" in text
    assert correction_messages(db) == ([], {})
    # Pressed twice: queued once.
    assert b.post(f"/admin/prices/{typo}/correction-sms", {"confirm": "yes"}).status_code == 303
    again = b.post(f"/admin/prices/{typo}/correction-sms", {"confirm": "yes"})
    assert again.status_code == 303 and "already queued" in b.get(f"/admin/prices/{typo}/correction-sms").text
    broadcast.expand_due(db, now=NOW, catalog=default_catalog(), settings=settings)
    corrections_sent, messages = correction_messages(db)
    assert len(corrections_sent) == 1 and set(messages) == {"+22370000101", "+22370000102"}
    assert fr in digits(messages["+22370000101"].text) and messages["+22370000101"].language == "fr"
    assert bm in digits(messages["+22370000102"].text) and messages["+22370000102"].language == "bm"
    assert {m.kind for m in messages.values()} == {"broadcast"}  # the staff broadcast budgets and quiet hours
    assert {m.status for m in messages.values()} == {"queued"}


def test_correction_sms_respects_opt_outs_and_goes_through_the_outbox(browser, db, settings, alerted, fake_at):
    from gateway.aggregators.africastalking import AfricasTalkingSender

    typo = alerted
    b = browser("editor")
    assert b.post(f"/admin/prices/{typo}/correct", {"price": "13000", "reason": "typo"}).status_code == 303
    with db.unit_of_work() as session:
        session.exec(update(models.Producer).where(models.Producer.phone == "+22370000102").values(opted_out=True))
    assert b.post(f"/admin/prices/{typo}/correction-sms", {"confirm": "yes"}).status_code == 303
    sender = AfricasTalkingSender(username="sugu", api_key="test-key", base_url=fake_at.url, timeout_s=1.0)
    try:
        for _ in range(5):
            broadcast.worker_step(db, sender, clock=lambda: NOW, catalog=default_catalog(), settings=settings)
    finally:
        sender.close()
    sent = [(number, digits(text)) for number, text, _ in fake_at.sent_messages() if "correction" in text]
    assert [n for n, _ in sent] == ["+22370000101"] and "13000F/panier" in sent[0][1]
    # The producer whose alert was still queued got the right value in a fresh alert.
    fresh = [digits(text) for number, text, _ in fake_at.sent_messages() if number == "+22370000104"]
    assert fresh and "13000F" in fresh[0] and "1300F" not in fresh[0].replace("13000F", "")


@pytest.mark.parametrize(
    "status, expected",
    [
        pytest.param("published", 409, id="still-published"),
        pytest.param("missing", 404, id="no-such-price"),
    ],
)
def test_correction_sms_needs_a_corrected_price(browser, api, db, status, expected):
    obs_id = add_price(db, 1300) if status == "published" else 999_999
    assert browser("editor").get(f"/admin/prices/{obs_id}/correction-sms").status_code == expected
    assert api("GET", f"/api/v1/prices/{obs_id}/correction-sms").status_code == expected


def test_correction_sms_by_api_is_previewed_then_queued_once(api, db, alerted):
    typo = alerted
    assert api_fix(api, "editor", typo, "withdraw", {"reason": "typo"}).status_code == 200
    preview = api("GET", f"/api/v1/prices/{typo}/correction-sms").json()
    assert preview["recipients"] == 2 and preview["broadcast"] is None
    assert {p["language"]: p["recipients"] for p in preview["languages"]} == {"fr": 1, "bm": 1}
    first = api("POST", f"/api/v1/prices/{typo}/correction-sms", json={"confirm": True})
    second = api("POST", f"/api/v1/prices/{typo}/correction-sms", json={"confirm": True})
    assert first.status_code == 201 and second.status_code == 409
    assert "already queued" in second.text


@pytest.mark.parametrize(
    "action, data, expected",
    [
        pytest.param("correct", {"price": 13000, "reason": "typo", "acknowledge_outliers": True}, "13000F", id="carries-the-right-value"),
        pytest.param("withdraw", {"reason": "typo"}, None, id="withdrawn-pair-left-out"),
    ],
)
def test_alert_not_yet_expanded_when_the_price_changes(api, db, settings, action, data, expected):
    with db.unit_of_work() as session:
        p = models.Producer(phone="+22370000301", language="fr")
        session.add(p)
        session.flush()
        session.add(models.Subscription(producer_id=p.id, crop_id=TOMATO, market_id=SIKASSO))
    typo = add_price(db, 1300, day=TODAY)
    with db.unit_of_work() as session:
        pending = broadcast.publish_alerts(session, pairs=[(TOMATO, SIKASSO)], now=NOW).id
    assert api_fix(api, "editor", typo, action, data).status_code == 200
    broadcast.expand_due(db, now=NOW, catalog=default_catalog(), settings=settings)
    with db.unit_of_work() as session:
        alert = session.get(models.Broadcast, pending)
        texts = [digits(m.text) for m in session.exec(select(models.SmsMessage).where(models.SmsMessage.broadcast_id == pending))]
    if expected:
        assert len(texts) == 1 and expected in texts[0] and not re.search(r"(?<!\d)1300F", texts[0])
        assert alert.audience["carried"][f"{TOMATO}:{SIKASSO}"]["observation"] != typo
    else:
        assert texts == [] and alert.status == "cancelled"
