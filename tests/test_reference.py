"""Reference data managed by staff (gateway.reference, the console's Reference data pages, the
API under /api/v1/reference): validation, audit, retirement, a region rename that follows
through, and changes reaching USSD and SMS on the next hop."""

from __future__ import annotations

import itertools
import re

import pytest
from sqlalchemy import func
from sqlmodel import select

from gateway.data import auth
from gateway.data import models
from gateway.data import reference
from gateway.app import create_app
from gateway.core.settings import Settings
from menus.keywords import parse
from menus.types import Crop, Market, Term
from tests.conftest import NOW
from tests.test_admin import PASSWORD, Browser
from tests.test_ussd_webhook import Caller

_phones = itertools.count(1)


# -- validation (no database) ------------------------------------------------------------------------

GOOD_MARKET = {"code": "niono", "name": "Niono", "name_bm": "", "region": "sikasso", "aliases": "", "latitude": "", "longitude": ""}


@pytest.mark.parametrize(
    "entity, change, field, message",
    [
        pytest.param("market", {"code": "Niono"}, "code", "use lowercase", id="uppercase-code"),
        pytest.param("market", {"code": "ségou"}, "code", "use lowercase", id="non-ascii-code"),
        pytest.param("market", {"code": ""}, "code", "required", id="no-code"),
        pytest.param("market", {"code": "x" * 33}, "code", "at most 32", id="long-code"),
        pytest.param("market", {"name": "  "}, "name", "required", id="blank-name"),
        pytest.param("market", {"name": "N" * 65}, "name", "at most 64", id="long-name"),
        pytest.param("market", {"latitude": "95", "longitude": "-5"}, "latitude", "less than or equal to 90", id="latitude-range"),
        pytest.param("market", {"latitude": "14", "longitude": "-190"}, "longitude", "greater than or equal to -180", id="longitude-range"),
        pytest.param("market", {"latitude": "abc", "longitude": "-5"}, "latitude", "valid number", id="latitude-not-a-number"),
        pytest.param("market", {"latitude": "14.2"}, "", "both latitude and longitude", id="half-coordinates"),
        pytest.param("market", {"name": "Nio\x00no"}, "name", "control characters", id="nul-byte"),
        pytest.param("market", {"aliases": "a," * 200}, "aliases", None, id="aliases-deduplicated-fit"),
        pytest.param("unit", {"code": "bag25", "name_fr": "sac 25kg", "name_bm": "", "kg": "25"}, "name_bm", "required", id="unit-no-bm"),
        pytest.param("unit", {"code": "bag25", "name_fr": "sac 25kg", "name_bm": "bɔrɔ", "kg": "-1"}, "kg", "greater than 0", id="unit-negative-kg"),
        pytest.param("crop", {"code": "mango", "name_fr": "Mangue", "name_bm": "Mangoro", "category": "Fruit"}, "category", "lowercase", id="crop-category-code"),
    ],
)
def test_bad_values_are_named_by_field(entity, change, field, message):
    raw = {**GOOD_MARKET, **change} if entity == "market" else change
    if message is None:
        assert reference.check(entity, raw).aliases == "a"  # 200 repeats folded to one spelling
        return
    with pytest.raises(reference.Invalid) as caught:
        reference.check(entity, raw)
    assert field in caught.value.errors and message in caught.value.errors[field], caught.value.errors


UNITS = [Term("kg", "kg", "kg", ("kilo",)), Term("sack50", "sac 50kg", "bɔrɔ 50kg", ("sac", "sac 50 kg", "50 kg")),
         Term("bag25", "sac 25kg", "bɔrɔ 25kg", ("sac25", "petit sac"))]
KINDS = [Term("wholesale", "gros", "gros", ("gros",)), Term("farmgate", "bord champ", "foro da", ("bordchamp",))]
CROPS = [Crop(1, "Tomate", "Tamati", "basket", aliases=("tomato",)), Crop(2, "Mangue", "Mangoro", "kg", active=True)]
MARKETS = [Market(1, "Sikasso", "Sikasso"), Market(2, "Tombouctou", "Tombouctou", "Tumbutu", ("Timbuktu",))]


@pytest.mark.parametrize(
    "text, unit, kind, number, market",
    [
        pytest.param("P tomate sikasso 9000 petit sac", "bag25", None, 9000, 1, id="unit-alias-two-words"),
        pytest.param("P tomate sikasso 9000 sac25", "bag25", None, 9000, 1, id="unit-alias"),
        pytest.param("P tomate sikasso sac 50 kg 12000", "sack50", None, 12000, 1, id="unit-phrase-number-not-price"),
        pytest.param("P tomate sikasso 50 kg", "kg", None, 50, 1, id="number-then-unit-is-the-price"),
        pytest.param("P tomate tumbutu 800 bordchamp", None, "farmgate", 800, 2, id="kind-alias-and-bm-market"),
        pytest.param("P tomato timbuktu 800 bord champ", None, "farmgate", 800, 2, id="kind-name-and-aliases"),
        pytest.param("P tomate sikasso 800 tas", None, None, 800, 1, id="unit-not-in-table-not-understood"),
    ],
)
def test_unit_and_kind_words_come_from_the_tables(text, unit, kind, number, market):
    parsed = parse(text, CROPS, MARKETS, units=UNITS, kinds=KINDS)
    assert (parsed.intent, parsed.crop_id, parsed.market_id) == ("report", 1, market)
    assert (parsed.unit, parsed.kind, parsed.number) == (unit, kind, number)


# -- the service, on both backends -------------------------------------------------------------------


@pytest.mark.db
def test_changes_are_audited_with_before_and_after(db):
    with db.unit_of_work() as session:
        row = reference.create(session, "market", dict(GOOD_MARKET, latitude="14.1", longitude="-5.9"), staff=None, now=NOW)
        reference.update_row(session, "market", row.id, {"name": "Niono", "name_bm": "Nionon", "region": "sikasso",
                                                         "latitude": "14.25", "longitude": "-5.99"}, staff=None, now=NOW)
        reference.set_active(session, "market", row.id, False, staff=None, now=NOW)
        reference.set_active(session, "market", row.id, True, staff=None, now=NOW)
    with db.unit_of_work() as session:
        log = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "market").order_by(models.AuditLog.id)).all()
    assert [a.action for a in log] == ["create", "edit", "retire", "reactivate"]
    assert log[1].before["name_bm"] == "" and log[1].after["name_bm"] == "Nionon" and log[1].after["latitude"] == 14.25
    assert log[2].after["active"] is False and all(a.entity_id == "niono" for a in log)


@pytest.mark.db
def test_region_rename_follows_through_to_markets_producers_and_services(db):
    with db.unit_of_work() as session:
        session.add(models.Producer(phone="+22370444555", region="Mopti"))
        region = reference.by_code(session, "region", "mopti")
        reference.update_row(session, "region", region.id, {"name_fr": "Mopti (région)", "name_bm": "Mopti"}, staff=None, now=NOW)
    with db.unit_of_work() as session:
        markets = {m.region for m in session.exec(select(models.Market).where(models.Market.code.in_(("mopti", "sevare"))))}
        producer = session.exec(select(models.Producer).where(models.Producer.phone == "+22370444555")).one()
        services = {s.region for s in session.exec(select(models.Service).where(models.Service.name.like("%Sévaré%")))}
        left = session.exec(select(func.count()).select_from(models.Market).where(models.Market.region == "Mopti")).one()
    assert markets == {"Mopti (région)"} and producer.region == "Mopti (région)" and services == {"Mopti (région)"}
    assert left == 0


@pytest.mark.db
@pytest.mark.parametrize(
    "entity, code, problem",
    [
        pytest.param("region", "sikasso", "markets still active in Sikasso", id="region-with-markets"),
        pytest.param("unit", "basket", "the usual unit of Tomate", id="unit-in-use"),
    ],
)
def test_retiring_what_active_rows_need_is_refused(db, entity, code, problem):
    with db.unit_of_work() as session:
        row = reference.by_code(session, entity, code)
        with pytest.raises(reference.Invalid, match=problem):
            reference.set_active(session, entity, row.id, False, staff=None, now=NOW)


# -- the console, and what farmers see ----------------------------------------------------------------


@pytest.fixture
def cached_app(db_url, db):
    """A content cache that outlives the test: only the console's clearing shows a change."""
    with db.unit_of_work() as session:
        auth.create_staff(session, email="editor@sugu.test", password=PASSWORD, role="editor")
        auth.create_staff(session, email="reporter@sugu.test", password=PASSWORD, role="reporter")
    settings = Settings(database_url=db_url, worker_in_process=False, content_cache_s=600, secret_key="test-secret")
    return create_app(settings, clock=lambda: NOW)


@pytest.fixture
def editor(cached_app):
    browser = Browser(cached_app)
    assert browser.login("editor@sugu.test").status_code == 303
    yield browser
    browser.close()


def alert_markets(client, language: str) -> str:
    """The USSD screen listing markets for a tomato alert (Alerts → Subscribe → Tomato)."""
    caller = Caller(client, phone=f"+2237060{next(_phones):04d}")
    caller.dial(language)
    return caller.dial("4", "2", "1")


def sms_reply(client, db, text: str, phone: str = "+22370777000") -> str:
    response = client.post("/webhooks/at/sms", data={"from": phone, "to": "36123", "text": text, "date": "2026-11-28 09:30:00",
                                                     "id": f"ref-{next(_phones)}", "networkCode": "61002"})
    assert response.status_code == 200, response.text
    with db.unit_of_work() as session:
        return session.exec(select(models.SmsMessage.text).order_by(models.SmsMessage.id.desc())).first()


@pytest.mark.db
@pytest.mark.parametrize(
    "language, shown, keyword",
    [
        pytest.param("1", "Loulouni", "ALERTE TOMATE LOULOUNI", id="fr-name"),
        pytest.param("2", "Luluni", "ALERTE TOMATE LULUNI", id="bm-name"),
        pytest.param("1", "Loulouni", "alerte tomate lulu", id="alias"),
    ],
)
def test_market_added_in_console_reaches_ussd_and_sms_at_once(editor, db, language, shown, keyword):
    client = editor.client
    assert shown not in alert_markets(client, language)  # read once: now in the content cache
    response = editor.post("/admin/reference/markets/0", {"code": "loulouni", "name": "Loulouni", "name_bm": "Luluni",
                                                          "region": "sikasso", "aliases": "Lulu, Loulouny"})
    assert response.status_code == 303, response.text
    assert f". {shown}\n" in alert_markets(client, language)
    assert "Loulouni" in sms_reply(client, db, keyword)

    with db.unit_of_work() as session:
        market_id = reference.by_code(session, "market", "loulouni").id
    assert editor.post(f"/admin/reference/markets/{market_id}/retire", {"confirmed": "1"}).status_code == 303
    assert shown not in alert_markets(client, language)
    assert "Loulouni" not in sms_reply(client, db, keyword)  # not understood: which market?
    assert editor.post(f"/admin/reference/markets/{market_id}/reactivate").status_code == 303
    assert f". {shown}\n" in alert_markets(client, language)


@pytest.mark.db
def test_unit_and_kind_names_on_screens_come_from_the_tables(editor, db):
    caller = Caller(editor.client, phone="+22370600999")
    caller.dial("1")
    before = caller.dial("1", "1", "3")  # Prices → Tomato → Sikasso
    assert "F/panier (gros)" in before, before
    with db.unit_of_work() as session:
        basket = reference.by_code(session, "unit", "basket")
        wholesale = reference.by_code(session, "price_kind", "wholesale")
    assert editor.post(f"/admin/reference/units/{basket.id}", {"name_fr": "corbeille", "name_bm": "panye", "kg": "", "aliases": "",
                                                             "sort_order": "3"}).status_code == 303
    assert editor.post(f"/admin/reference/kinds/{wholesale.id}", {"name_fr": "en gros", "name_bm": "gros", "aliases": "gros",
                                                                 "sort_order": "0"}).status_code == 303
    caller = Caller(editor.client, phone="+22370600999")
    assert "F/corbeille (en gros)" in caller.dial("1", "1", "3")


@pytest.mark.db
def test_retired_crop_leaves_menus_but_subscriptions_keep_its_name(editor, db):
    caller = Caller(editor.client, phone="+22370600888")
    caller.dial("1")
    caller.dial("4", "2", "1", "9")  # subscribe: Tomato at Sévaré
    with db.unit_of_work() as session:
        tomato = reference.by_code(session, "crop", "tomato")
    assert editor.post(f"/admin/reference/crops/{tomato.id}/retire", {"confirmed": "1"}).status_code == 303
    caller = Caller(editor.client, phone="+22370600888")
    assert "Tomate" not in caller.dial("1")  # the price menu's crop list
    caller = Caller(editor.client, phone="+22370600888")
    assert "Tomate - Sevare" in caller.dial("4", "1")  # my subscriptions
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.PriceObservation)
                            .where(models.PriceObservation.crop_id == tomato.id)).one() > 0


GOOD_FORM = {"code": "niono", "name": "Niono", "name_bm": "Nionon", "region": "sikasso", "aliases": "Nionon, Niyono",
             "latitude": "14.25", "longitude": "-5.99"}


@pytest.mark.db
@pytest.mark.parametrize(
    "change, field, message",
    [
        pytest.param({"code": "Niono"}, "code", "use lowercase", id="uppercase-code"),
        pytest.param({"code": "sikasso"}, "code", "exists already", id="duplicate-code"),
        pytest.param({"name": ""}, "name", "required", id="no-name"),
        pytest.param({"latitude": "95"}, "latitude", "less than or equal to 90", id="latitude-out-of-range"),
        pytest.param({"region": "segou"}, "region", "no region with code", id="unknown-region"),
    ],
)
def test_bad_console_form_keeps_what_was_typed_and_changes_nothing(editor, db, change, field, message):
    with db.unit_of_work() as session:
        before = session.exec(select(func.count()).select_from(models.Market)).one()
    response = editor.post("/admin/reference/markets/0", {**GOOD_FORM, **change})
    assert response.status_code == 400
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', response.text)
    assert error and message in error.group(1), response.text
    for name, value in {**GOOD_FORM, **change}.items():
        if name != "region":
            assert f'name="{name}" value="{value}"' in response.text, name
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.Market)).one() == before
        assert session.exec(select(func.count()).select_from(models.AuditLog)).one() == 0


@pytest.mark.db
def test_reporters_cannot_change_reference_data(cached_app):
    browser = Browser(cached_app)
    try:
        assert browser.login("reporter@sugu.test").status_code == 303
        assert browser.get("/admin/reference/markets").status_code == 403
        assert browser.post("/admin/reference/markets/0", GOOD_FORM).status_code == 403
    finally:
        browser.close()


# -- the API -------------------------------------------------------------------------------------------


@pytest.fixture
def api(client, db):
    with db.unit_of_work() as session:
        editor = auth.create_staff(session, email="api-editor@sugu.test", password=PASSWORD, role="editor")
        token = auth.issue_api_token(session, editor)

    def call(method: str, path: str, **kw):
        return client.request(method, f"/api/v1/reference{path}", headers={"Authorization": f"Bearer {token}"}, **kw)

    return call


@pytest.mark.db
def test_api_creates_changes_and_retires_reference_rows(api, db):
    created = api("POST", "/regions", json={"code": "segou", "name_fr": "Ségou", "name_bm": "Segu"})
    assert created.status_code == 201, created.text
    market = api("POST", "/markets", json={"code": "niono", "name": "Niono", "region": "segou", "aliases": ["Nionon", "nionon"]})
    assert market.status_code == 201 and market.json()["aliases"] == "Nionon" and market.json()["region"] == "segou"
    changed = api("PATCH", "/markets/niono", json={"latitude": 14.25, "longitude": -5.99})
    assert changed.status_code == 200 and changed.json()["name"] == "Niono" and changed.json()["latitude"] == 14.25
    assert api("POST", "/regions/segou/retire").status_code == 409  # Niono is still active there
    assert api("POST", "/markets/niono/retire").json()["active"] is False
    assert api("POST", "/regions/segou/retire").json()["active"] is False
    listed = {m["code"]: m for m in api("GET", "/markets").json()}
    assert listed["niono"]["active"] is False and listed["sikasso"]["active"] is True


@pytest.mark.db
def test_api_refuses_new_prices_for_retired_rows_and_lists_them_as_retired(api, client, db):
    """Finding: a retired market or crop still took new prices through /api/v1/prices, and the
    /crops and /markets lists gave no way to tell retired rows."""
    assert api("POST", "/markets/koutiala/retire").json()["active"] is False
    with db.unit_of_work() as session:
        staff = auth.create_staff(session, email="api-prices@sugu.test", password=PASSWORD, role="editor")
        token = auth.issue_api_token(session, staff)
    headers = {"Authorization": f"Bearer {token}"}
    price = {"date": "2026-11-27", "market": "koutiala", "crop": "tomato", "price": 14000}
    refused = client.post("/api/v1/prices", json={"prices": [price]}, headers=headers)
    assert refused.status_code == 422 and "retired" in refused.text, refused.text
    assert client.post("/api/v1/prices", json={"prices": [{**price, "market": "sikasso"}]}, headers=headers).status_code == 201
    markets = {m["code"]: m["active"] for m in client.get("/api/v1/markets", headers=headers).json()}
    assert markets["koutiala"] is False and markets["sikasso"] is True
    assert all(c["active"] for c in client.get("/api/v1/crops", headers=headers).json())


@pytest.mark.db
@pytest.mark.parametrize(
    "method, path, body, status, field",
    [
        pytest.param("POST", "/markets", {"code": "Niono", "name": "Niono", "region": "sikasso"}, 422, "code", id="bad-code"),
        pytest.param("POST", "/markets", {"code": "sikasso", "name": "Sikasso", "region": "sikasso"}, 422, "code", id="duplicate"),
        pytest.param("POST", "/crops", {"code": "mango", "name_fr": "Mangue", "name_bm": "Mangoro", "unit": "bucket"}, 422, "unit", id="unknown-unit"),
        pytest.param("PATCH", "/markets/sikasso", {"longitude": 200, "latitude": 11}, 422, "longitude", id="range"),
        pytest.param("PATCH", "/markets/atlantis", {"name": "X"}, 404, None, id="unknown-code"),
    ],
)
def test_api_refuses_bad_reference_input(api, method, path, body, status, field):
    response = api(method, path, json=body)
    assert response.status_code == status, response.text
    if field:
        assert field in response.json()["detail"]["errors"]


@pytest.mark.db
def test_api_export_and_import(api):
    exported = api("GET", "").json()
    assert {m["code"] for m in exported["markets"]} >= {"sikasso", "tombouctou", "bamako"}
    again = api("POST", "", json=exported)
    assert again.status_code == 200 and sum(again.json()["added"].values()) == 0
    added = api("POST", "", json={"regions": [{"code": "segou", "name_fr": "Ségou", "name_bm": "Segu"}],
                                  "markets": [{"code": "niono", "name": "Niono", "region": "segou"}]})
    assert added.json()["added"]["markets"] == 1


@pytest.mark.db
@pytest.mark.parametrize(
    "entity, code, page, select_id, label",
    [
        pytest.param("crop", "lettuce", "/admin/demands", "crop_id", "Laitue", id="demand-crop-picker"),
        pytest.param("region", "segou", "/admin/reference/markets/0", "region", "Ségou", id="market-region-picker"),
        pytest.param("unit", "pile", "/admin/reference/crops/0", "unit", "tas (pile)", id="crop-unit-picker"),
    ],
)
def test_retired_rows_leave_the_console_pickers(editor, db, entity, code, page, select_id, label):
    with db.unit_of_work() as session:
        if entity == "region":
            reference.create(session, "region", {"code": "segou", "name_fr": "Ségou", "name_bm": "Segu"}, staff=None, now=NOW)

    def options() -> str:
        html = editor.get(page).text
        return re.search(rf'<select id="(?:f-)?{select_id}" name="{select_id}"[^>]*>(.*?)</select>', html, re.S).group(1)

    assert f">{label}</option>" in options()
    with db.unit_of_work() as session:
        reference.set_active(session, entity, reference.by_code(session, entity, code).id, False, staff=None, now=NOW)
    assert f">{label}</option>" not in options()
