"""Issue 15 on the demand, buyers, services, reference data and producers pages: French by
default, forms that keep what was typed, confirmations that count, an honest re-import, cards on
a phone."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import func, select

from gateway.data import models
from gateway.data import reference
from gateway.app import create_app
from tests.conftest import TODAY
from tests.test_admin import Browser, app, browser, clock, staff  # noqa: F401 (fixtures)
from tests.test_linkage import add_offer

pytestmark = pytest.mark.db

NNBSP = "\u202f"
GOOD = {"buyer_id": "1", "crop_id": "2", "quantity_kg": "7000", "price": "300", "unit": "kg", "place": "Koutiala",
        "valid_until": (TODAY + dt.timedelta(days=10)).isoformat()}


@pytest.fixture
def french(settings, clock, staff):  # noqa: F811
    """A browser on a console left in its default language, French."""
    opened = []

    def make(role: str = "editor") -> Browser:
        b = Browser(create_app(settings.model_copy(update={"console_language": "fr"}), clock=clock))
        opened.append(b)
        assert b.login(f"{role}@sugu.test").status_code == 303
        return b

    yield make
    for b in opened:
        b.close()


def count(db, model, *where) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="(?:f-)?{name}-error">([^<]*)</p>', html)
    return found.group(1) if found else ""


# -- forgiving forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, bad_fields",
    [
        pytest.param({"quantity_kg": "abc", "place": ""}, {"quantity_kg", "place"}, id="bad-quantity-no-place"),
        pytest.param({"price": "-5"}, {"price"}, id="negative-price"),
        pytest.param({"buyer_id": "", "valid_until": "31/02/2026"}, {"buyer_id", "valid_until"}, id="no-buyer-bad-date"),
        pytest.param({"unit": "calabash"}, {"unit"}, id="unknown-unit"),
        pytest.param({"crop_id": "999"}, {"crop_id"}, id="unknown-crop"),
    ],
)
def test_issue15_new_demand_keeps_typed_values(browser, db, change, bad_fields):  # noqa: F811
    before = count(db, models.Demand)
    typed = {**GOOD, **change}
    response = browser("editor").post("/admin/demands", typed)
    assert response.status_code == 400
    for name in bad_fields:
        assert field_error(response.text, name), name
    for name in set(GOOD) - bad_fields:
        assert not field_error(response.text, name), name
    for name in ("quantity_kg", "price", "place"):
        assert f'name="{name}" value="{typed[name]}"' in response.text, name
    if typed["buyer_id"]:
        assert f'<option value="{typed["buyer_id"]}" selected>' in response.text
    assert count(db, models.Demand) == before


def selected(html: str, name: str) -> str:
    select = re.search(rf'<select id="f-{name}" name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return ",".join(re.findall(r'<option value="([^"]*)" selected>', select))


@pytest.mark.parametrize("missing", [("quantity_kg",), ("place", "price"), ("quantity_kg", "place", "price")],
                         ids=["no-quantity", "no-place-no-price", "three-blank"])
def test_issue15_incomplete_new_demand_keeps_every_field(browser, db, missing):  # noqa: F811
    """Finding: an incomplete new demand blanked every field. Every field that was filled in comes
    back as typed (the choices too), each blank one is marked beside it, and nothing is saved."""
    before = count(db, models.Demand)
    typed = {**GOOD, "unit": "basket", **{name: "" for name in missing}}
    response = browser("editor").post("/admin/demands", typed)
    assert response.status_code == 400
    page = response.text
    for name in ("buyer_id", "crop_id", "unit"):
        assert selected(page, name) == typed[name], name
    for name in ("quantity_kg", "price", "place", "valid_until"):
        assert f'name="{name}" value="{typed[name]}"' in page, name
        assert bool(field_error(page, name)) == (name in missing), name
    assert count(db, models.Demand) == before


def test_issue15_demand_edit_keeps_typed_values(browser, db):  # noqa: F811
    b = browser("editor")
    response = b.post("/admin/demands/1", {**GOOD, "quantity_kg": "lots", "place": "Sikasso gare"})
    assert response.status_code == 400 and field_error(response.text, "quantity_kg")
    assert 'value="lots"' in response.text and 'value="Sikasso gare"' in response.text
    with db.unit_of_work() as session:
        assert session.get(models.Demand, 1).place != "Sikasso gare"


def test_issue15_service_form_marks_the_bad_field_beside_it(browser, db):  # noqa: F811
    form = {"category": "inputs", "region": "Mopti", "name": "Semences du Delta", "phone": "12 34",
            "summary_fr": "Semences", "summary_bm": "", "active": "on"}
    response = browser("editor").post("/admin/services/0", form)
    assert response.status_code == 400
    assert field_error(response.text, "phone") == "Not a valid phone number."
    assert not field_error(response.text, "name") and 'value="Semences du Delta"' in response.text
    assert 'value="12 34"' in response.text


# -- a past deadline -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days, status, saved",
    [
        pytest.param(-1, 400, False, id="yesterday-refused"),
        pytest.param(-30, 400, False, id="last-month-refused"),
        pytest.param(0, 303, True, id="today-accepted"),
    ],
)
def test_issue15_past_deadline_demand_is_refused(browser, db, days, status, saved):  # noqa: F811
    before = count(db, models.Demand)
    b = browser("editor")
    response = b.post("/admin/demands", {**GOOD, "valid_until": (TODAY + dt.timedelta(days=days)).isoformat()})
    assert response.status_code == status
    assert count(db, models.Demand) == before + saved
    if not saved:
        assert "already past" in field_error(response.text, "valid_until")
    page = b.get("/admin/demands").text
    assert ("farmers see it in the USSD menu" in page) == saved


def test_issue15_past_deadline_on_an_edited_demand_says_it_is_expired(browser, db):  # noqa: F811
    b = browser("editor")
    past = (TODAY - dt.timedelta(days=2)).isoformat()
    assert b.post("/admin/demands/1", {**GOOD, "valid_until": past}).status_code == 303
    page = b.get("/admin/demands").text
    assert "is past: it is expired and farmers do not see it" in page and "published" not in page
    assert "Expired on" in b.get("/admin/demands/1").text


# -- confirmations with counts ---------------------------------------------------------------------


def test_issue15_closing_demand_asks_confirmation_with_count(browser, db):  # noqa: F811
    with db.unit_of_work() as session:
        add_offer(session, 6, 3000, status="accepted", cluster="Sévaré Nord")
        add_offer(session, 6, 2500, cluster="Sévaré Nord")
    b = browser("editor")
    page = b.post("/admin/demands/6/close")
    assert page.status_code == 200
    assert "2 offers from 2 producers: 1 accepted, 1 pending, 0 declined." in page.text
    assert "no SMS is sent" in page.text and "Cost: no SMS, 0 FCFA." in page.text
    assert 'name="confirmed" value="1"' in page.text
    with db.unit_of_work() as session:
        assert session.get(models.Demand, 6).status == "open"  # nothing done yet
    assert b.post("/admin/demands/6/close", {"confirmed": "1"}).status_code == 303
    with db.unit_of_work() as session:
        assert session.get(models.Demand, 6).status == "closed"
    assert b.post("/admin/demands/6/close", {"confirmed": "1"}).status_code == 303  # again: says so, no crash
    assert "already closed" in b.get("/admin/demands").text


def test_issue15_buyer_sms_states_its_cost(browser, db, settings):  # noqa: F811
    b = browser("editor")
    page = b.post("/admin/demands/1/notify")
    assert page.status_code == 200
    cost = round(settings.sms_price_per_segment)
    assert f"Cost: 1 SMS segment, about {cost} FCFA." in page.text
    assert count(db, models.SmsMessage) == 0
    assert b.post("/admin/demands/1/notify", {"confirmed": "1"}).status_code == 303
    assert count(db, models.SmsMessage) == 1


@pytest.mark.parametrize(
    "section, entity, code, expected",
    [
        pytest.param("crops", "crop", "tomato", ["subscription", "open demand"], id="crop"),
        pytest.param("markets", "market", "sikasso", ["subscription"], id="market"),
        pytest.param("units", "unit", "basket", ["open demand"], id="unit"),
        pytest.param("kinds", "price_kind", "retail", [], id="price-kind"),
    ],
)
def test_issue15_retiring_reference_data_asks_confirmation_with_count(browser, db, section, entity, code, expected):  # noqa: F811
    po = models.PriceObservation
    with db.unit_of_work() as session:
        row = reference.by_code(session, entity, code)
        column = {"crop": po.crop_id == row.id, "market": po.market_id == row.id, "unit": po.unit == code,
                  "price_kind": po.kind == code}[entity]
        prices = session.exec(select(func.count()).select_from(po).where(column)).one()
        if entity == "unit":  # the usual unit of active crops cannot be retired: give them kg
            for crop in session.exec(select(models.Crop).where(models.Crop.default_unit == code)):
                crop.default_unit = "kg"
                session.add(crop)
        row_id = row.id
    b = browser("editor")
    page = b.post(f"/admin/reference/{section}/{row_id}/retire")
    assert page.status_code == 200, page.text[-500:]
    price_line = ("No price refers to it" if prices == 0 else f"{prices:,} price refers to it" if prices == 1
                  else f"{prices:,} prices refer to it")
    assert price_line in page.text
    for words in expected:
        assert words in page.text, words
    assert "Nothing is deleted: you can reactivate it." in page.text
    with db.unit_of_work() as session:
        assert reference.get(session, entity, row_id).active  # nothing done before the confirmation
    assert b.post(f"/admin/reference/{section}/{row_id}/retire", {"confirmed": "1"}).status_code == 303
    with db.unit_of_work() as session:
        assert not reference.get(session, entity, row_id).active


def test_issue15_retiring_what_cannot_be_retired_says_why_without_asking(browser, db):  # noqa: F811
    with db.unit_of_work() as session:
        crop = session.exec(select(models.Crop).where(models.Crop.active == True)).first()  # noqa: E712
        unit = reference.by_code(session, "unit", crop.default_unit)
    b = browser("editor")
    response = b.post(f"/admin/reference/units/{unit.id}/retire")
    assert response.status_code == 303
    assert "Not retired: it is the usual unit of" in b.get("/admin/reference/units").text
    with db.unit_of_work() as session:
        assert reference.get(session, "unit", unit.id).active


# -- an honest re-import -----------------------------------------------------------------------------

CSV = "phone,name,village\n+22370100001,Awa,Kignan\n+22370100002,Moussa,Kignan\n+22370100003,Fanta,Loulouni\n+22370100004,Issa,Kignan\n"


def _import(b: Browser, text: str):
    return b.post("/admin/producers/import", files={"file": ("team.csv", text.encode(), "text/csv")})


@pytest.mark.parametrize(
    "make, first, again",
    [
        pytest.param("en", "Import done. 4 rows read: 4 new, 0 updated, 0 already up to date.",
                     "Nothing changed. 4 rows read: 0 new, 0 updated, 4 already up to date.", id="en"),
        pytest.param("fr", "Import terminé. 4 lignes lues : 4 nouveaux, 0 mis à jour, 0 déjà à jour.",
                     "Rien n&#39;a changé. 4 lignes lues : 0 nouveau, 0 mis à jour, 4 déjà à jour.", id="fr"),
    ],
)
def test_issue15_reimport_says_nothing_changed(browser, french, make, first, again):  # noqa: F811
    b = browser("editor") if make == "en" else french()
    assert _import(b, CSV).status_code == 303
    assert first in b.get("/admin/producers").text
    assert _import(b, CSV).status_code == 303
    page = b.get("/admin/producers").text
    assert again in page and "imported (0 new" not in page


def test_issue15_import_plurals_for_one_row(browser):  # noqa: F811
    b = browser("editor")
    _import(b, "phone,name\n+22370100009,Awa\n")
    assert "Import done. 1 row read: 1 new, 0 updated, 0 already up to date." in b.get("/admin/producers").text


# -- French by default ------------------------------------------------------------------------------

PAGES = ["/admin/demands", "/admin/demands/1", "/admin/buyers", "/admin/services", "/admin/services/0",
         "/admin/services/1", "/admin/reference/markets", "/admin/reference/crops", "/admin/reference/units",
         "/admin/reference/kinds", "/admin/reference/regions", "/admin/reference/crops/1", "/admin/reference/markets/0",
         "/admin/producers"]


@pytest.mark.parametrize("path", PAGES)
def test_issue15_pages_speak_french_and_are_cards(french, path):
    page = french().get(path)
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    # English words these pages used to show, and raw codes where a word is expected.
    for english in (">Buyer<", ">Crop<", ">Until<", ">Save<", ">edit<", ">retire<", ">Phone<", ">Status<", "New entry",
                    "offers by group", "F/basket", "F/sack50", ">extension<", ">inputs<", "daily SMS summary"):
        assert english not in page.text, english
    for table in re.findall(r"<table[^>]*>", page.text):
        assert 'class="cards' in table, table  # a phone shows each row as a card


def test_issue15_demand_list_in_french_with_words_dates_numbers(french, db):
    with db.unit_of_work() as session:
        add_offer(session, 1, 1500, cluster="Kignan")
        demand = session.get(models.Demand, 1)
        until, wanted, unit = demand.valid_until, demand.quantity_kg, demand.unit
    page = french().get("/admin/demands").text
    assert "Demande des acheteurs" in page and "Nouvelle demande" in page
    assert f'data-label="Jusqu&#39;au">{until.strftime("%d/%m/%Y")}' in page
    assert f"{wanted:,}".replace(",", NNBSP) + " kg" in page
    assert "Kignan: 1 offre, 1" + NNBSP + "500 kg" in page
    assert ">ouverte<" in page and ">expirée<" in page
    from messages import staff as staff_text
    assert "F/" + staff_text.word("fr", "unit", unit) in page


def test_issue15_reference_errors_in_french(french, db):
    response = french().post("/admin/reference/markets/0", {"code": "Niono", "name": "", "region": "sikasso",
                                                             "latitude": "95", "longitude": "1"})
    assert response.status_code == 400
    assert field_error(response.text, "code").startswith("utilisez des lettres minuscules")
    assert field_error(response.text, "name") == "obligatoire"
    assert field_error(response.text, "latitude") == "doit être inférieur ou égal à 90"
    assert 'name="latitude" value="95"' in response.text


def test_issue15_services_and_producers_show_words_not_codes(french, db):
    b = french()
    services = b.get("/admin/services").text
    assert "conseil agricole" in services or "intrants" in services
    with db.unit_of_work() as session:
        session.add(models.Producer(phone="+22370100077", name="Awa", language="bm", role="enumerator"))
    producers = b.get("/admin/producers").text
    assert ">bambara<" in producers and "enquêteur de prix" in producers


def test_issue15_empty_lists_say_what_to_do(french, db):
    b = french()
    page = b.get("/admin/services?category=storage&region=Atlantis").text
    assert 'class="empty"' in page and "Aucune fiche ne correspond" in page
    page = b.get("/admin/producers?q=nobody-at-all").text
    assert 'class="empty"' in page and "Aucun producteur ne correspond" in page
