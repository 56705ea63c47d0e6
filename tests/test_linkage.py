"""Market linkages: offers totalled and decided (with the farmer's SMS, once), demands expiring
with the farmers' calendar, the buyers' daily summary, and the services directory (data view,
console with roles, the SMS a caller asks for)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlmodel import func, select

from gateway.actions import linkage
from gateway.data import models
from gateway.data.dataview import CachedDataView, ContentCache, SqlDataView
from gateway.actions.effects import MAX_SERVICE_SMS_PER_DAY, apply_effects
from gateway.core.phones import parse_phone
from gateway.data.seed import load_json
from menus import types as m
from messages import default_catalog, to_ussd
from messages.catalog import LANGUAGES, load_file_catalog
from messages.sms import measure, render_sms
from tests.conftest import NOW, TODAY
from tests.test_admin import app, browser, clock, staff  # noqa: F401 (fixtures)

UTC = dt.timezone.utc
CATALOG = default_catalog()


def add_offer(session, demand_id: int, kg: int, *, status: str = "pending", cluster: str = "", language: str = "fr",
              phone: str | None = None, opted_out: bool = False) -> models.Offer:
    producer = session.exec(select(models.Producer).where(models.Producer.phone == phone)).first() if phone else None
    if producer is None:
        n = session.exec(select(func.count()).select_from(models.Producer)).one()
        producer = models.Producer(phone=phone or f"+2237600{n:04d}", cluster=cluster, language=language,
                                   opted_out=opted_out)
        session.add(producer)
        session.flush()
    offer = models.Offer(demand_id=demand_id, producer_id=producer.id, quantity_kg=kg, status=status,
                         session_ref=f"s{producer.id}-{kg}-{status}")
    session.add(offer)
    session.flush()
    return offer


def sms_rows(session) -> list[models.SmsMessage]:
    return list(session.exec(select(models.SmsMessage).order_by(models.SmsMessage.id)).all())


# -- totals ----------------------------------------------------------------------------------------

# (offers as (cluster, kg, status), wanted) → covered, covered with pending, live kg per cluster
TOTALS = [
    pytest.param([], 1000, False, False, {}, id="no-offers"),
    pytest.param([("Kignan", 600, "accepted"), ("Kignan", 400, "accepted")], 1000, True, True, {"Kignan": 1000}, id="accepted-covers"),
    pytest.param([("Kignan", 600, "accepted"), ("Zangaradougou", 500, "pending")], 1000, False, True,
                 {"Kignan": 600, "Zangaradougou": 500}, id="covered-only-with-pending"),
    pytest.param([("Kignan", 900, "accepted"), ("Kignan", 5000, "declined")], 1000, False, False, {"Kignan": 900},
                 id="declined-never-count"),
    pytest.param([("", 300, "pending")], 200, False, True, {"": 300}, id="no-group"),
]


@pytest.mark.parametrize("offers, wanted, covered, with_pending, live", TOTALS)
def test_offers_totalled_per_demand_and_group(db, offers, wanted, covered, with_pending, live):
    with db.unit_of_work() as session:
        demand = session.get(models.Demand, 1)
        demand.quantity_kg = wanted
        for cluster, kg, status in offers:
            add_offer(session, 1, kg, status=status, cluster=cluster)
        totals = linkage.offer_totals(session, [demand, session.get(models.Demand, 2)])
    t = totals[1]
    assert (t.covered, t.covered_with_pending) == (covered, with_pending)
    assert {c: x.live.kg for c, x in t.clusters.items() if x.live.count} == live
    assert t.overall.kg("accepted", "pending", "declined") == sum(kg for _, kg, _ in offers)
    assert t.overall.count("declined") == sum(s == "declined" for *_, s in offers)
    assert totals[2].overall.live.count == 0


def test_demand_pages_show_totals_covered_badge_and_close(browser, db):
    with db.unit_of_work() as session:
        add_offer(session, 6, 3000, status="accepted", cluster="Sévaré Nord")
        add_offer(session, 6, 2500, cluster="Sévaré Nord")
    b = browser("editor")
    page = b.get("/admin/demands").text
    assert "Sévaré Nord: 2 offers, 5,500 kg" in page and "covered if pending accepted" in page
    demand_page = b.get("/admin/demands/6").text
    assert "accepted 3,000 kg (1), pending 2,500 kg (1)" in demand_page and demand_page.count(">Accept</button>") == 1
    assert b.post("/admin/demands/6/close", {"confirmed": "1"}).status_code == 303
    with db.unit_of_work() as session:
        assert session.get(models.Demand, 6).status == "closed"
        assert 6 not in {d.id for d in SqlDataView(session).open_demands(TODAY)}
        log = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "demand")).one()
    assert (log.action, log.staff_email) == ("close", "editor@sugu.test")


# -- decisions on offers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "decision, language, expected",
    [
        pytest.param("accept", "fr", "Sugu: Lawal Int. accepte votre offre de 1 500 kg de Oignon", id="accept-fr"),
        pytest.param("accept", "bm", "Sugu: Lawal Int. sònna i ka Jababa kilo 1 500 dili ma", id="accept-bm"),
        pytest.param("decline", "fr", "Sugu: Lawal Int. ne retient pas votre offre de 1 500 kg de Oignon", id="decline-fr"),
        pytest.param("decline", "bm", "Sugu: Lawal Int. ma sòn i ka Jababa kilo 1 500 dili ma", id="decline-bm"),
    ],
)
def test_decision_sends_the_farmer_one_sms_in_their_language(browser, db, decision, language, expected):
    with db.unit_of_work() as session:
        offer_id = add_offer(session, 1, 1500, language=language, phone="+22376001122").id
    b = browser("editor")
    assert b.post(f"/admin/offers/{offer_id}/{decision}").status_code == 303
    # A second click, the other button, or another staff member: nothing changes, and it says so.
    again = b.post(f"/admin/offers/{offer_id}/{'decline' if decision == 'accept' else 'accept'}")
    assert again.status_code == 303
    assert "already" in b.get("/admin/demands/1").text
    with db.unit_of_work() as session:
        (sms,) = sms_rows(session)
        offer = session.get(models.Offer, offer_id)
        audits = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "offer")).all()
    assert offer.status == {"accept": "accepted", "decline": "declined"}[decision]
    assert offer.decided_by == "editor@sugu.test"
    assert offer.notified_sms_id == sms.id and offer.decided_at is not None
    assert sms.phone == "+22376001122" and sms.language == language and sms.text.startswith(expected), sms.text
    assert (sms.encoding, sms.segments) == ("GSM-7", 1) and sms.next_attempt_at is None  # 10:00: not quiet
    assert [a.action for a in audits] == [decision]


def test_decision_at_night_is_held_until_quiet_hours_end(browser, db, clock):
    with db.unit_of_work() as session:
        offer_id = add_offer(session, 1, 800).id
    clock.now = NOW.replace(hour=22)
    b = browser("editor")
    b.post(f"/admin/offers/{offer_id}/accept")
    with db.unit_of_work() as session:
        (sms,) = sms_rows(session)
    held = sms.next_attempt_at.replace(tzinfo=sms.next_attempt_at.tzinfo or UTC)
    assert held == dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(7, 0), UTC)  # Bamako is UTC+0


def test_decision_for_an_opted_out_farmer_sends_nothing(browser, db):
    with db.unit_of_work() as session:
        offer_id = add_offer(session, 1, 800, opted_out=True).id
    b = browser("editor")
    b.post(f"/admin/offers/{offer_id}/decline")
    assert "opted out" in b.get("/admin/demands/1").text
    with db.unit_of_work() as session:
        assert session.get(models.Offer, offer_id).status == "declined"
        assert sms_rows(session) == []


def test_reporters_cannot_decide_or_see_buyers(browser, db):
    with db.unit_of_work() as session:
        offer_id = add_offer(session, 1, 800).id
    b = browser("reporter")
    assert b.post(f"/admin/offers/{offer_id}/accept").status_code == 403
    assert b.get("/admin/buyers").status_code == 403
    assert browser("editor").post(f"/admin/offers/{offer_id}/accept", csrf=False).status_code == 403
    with db.unit_of_work() as session:
        assert session.get(models.Offer, offer_id).status == "pending"


# -- expiry ----------------------------------------------------------------------------------------


def test_demand_disappears_the_day_after_its_date(db):
    with db.unit_of_work() as session:
        demand = session.get(models.Demand, 1)
        demand.valid_until = TODAY
        session.add(demand)
    cache = ContentCache(ttl_s=60)
    with db.unit_of_work() as session:
        for view in (SqlDataView(session), CachedDataView(session, cache)):
            assert 1 in {d.id for d in view.open_demands(TODAY)}
            assert 1 not in {d.id for d in view.open_demands(TODAY + dt.timedelta(days=1))}
        # The seeded okra demand ended three days ago; the carrot one is closed.
        assert {7, 8}.isdisjoint(d.id for d in SqlDataView(session).open_demands(TODAY))
        assert linkage.is_expired(session.get(models.Demand, 7), TODAY)


def test_expired_demand_shows_as_expired_in_the_console(browser):
    page = browser("editor").get("/admin/demands").text
    row = page[page.index("/admin/demands/7\">7</a>"):]
    assert "expired" in row[: row.index("</tr>")]


@pytest.mark.parametrize(
    "demand_id, change, stored",
    [
        pytest.param(1, {}, True, id="open"),
        pytest.param(1, {"valid_until": TODAY - dt.timedelta(days=1)}, False, id="expired-between-screens"),
        pytest.param(1, {"status": "closed"}, False, id="closed-between-screens"),
        pytest.param(1, {"valid_until": TODAY}, True, id="last-day"),
        pytest.param(999, {}, False, id="no-such-demand"),
    ],
)
def test_offer_on_an_expired_or_closed_demand_is_not_stored(db, demand_id, change, stored):
    with db.unit_of_work() as session:
        demand = session.get(models.Demand, 1)
        for name, value in change.items():
            setattr(demand, name, value)
        session.add(demand)
    with db.unit_of_work() as session:
        apply_effects(session, phone="+22370009999", effects=(m.RecordOffer(demand_id, 700),), now=NOW.astimezone(UTC),
                      today=TODAY, session_ref="ATUid_expiry")
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.Offer)).one() == int(stored)


# -- the buyers' daily summary ---------------------------------------------------------------------


def summaries(db, settings, at: dt.datetime, **kw):
    return linkage.send_buyer_summaries(db, lambda: at, CATALOG, settings, **kw)


def test_buyer_summary_once_a_day_with_only_new_offers(db, settings):
    with db.unit_of_work() as session:
        add_offer(session, 1, 1500)  # Lawal, onion
        add_offer(session, 1, 500)
        add_offer(session, 3, 800)  # Lawal, tomato
        add_offer(session, 3, 900, status="declined")
        add_offer(session, 7, 300)  # Lawal, okra: expired, left out
        add_offer(session, 4, 2000)  # Madougou, shallot
        madougou = session.get(models.Buyer, 2)
        madougou.daily_summary = False  # opted out: nothing for them
    evening = NOW.replace(hour=18)
    assert [r.buyer for r in summaries(db, settings, evening, dry_run=True)] == ["Lawal Int."]
    with db.unit_of_work() as session:
        assert sms_rows(session) == []  # a dry run queues nothing
    (first,) = summaries(db, settings, evening)
    assert first.queued and first.offers == 3
    assert to_ussd(first.text) == "Sugu, nouvelles offres: 3. Oignon Sikasso: +2 000 kg (2 000/20 000); Tomate Koutiala: +800 kg (800/8 000)"
    assert summaries(db, settings, evening + dt.timedelta(hours=1)) == []  # nothing new since
    with db.unit_of_work() as session:
        add_offer(session, 2, 1000)
    (again,) = summaries(db, settings, evening + dt.timedelta(hours=2))
    assert again.already_sent and not again.queued  # today's is sent: this one waits for tomorrow
    (next_day,) = summaries(db, settings, evening + dt.timedelta(days=1))
    assert next_day.offers == 1 and "Pomme de terre Sikasso: +1 000 kg (1 000/15 000)" in to_ussd(next_day.text)
    with db.unit_of_work() as session:
        rows = sms_rows(session)
        days = session.exec(select(models.BuyerSummary.day).order_by(models.BuyerSummary.id)).all()
    assert [r.phone for r in rows] == ["+22376123456"] * 2 and all(r.segments == 1 for r in rows)
    assert days == [TODAY, TODAY + dt.timedelta(days=1)]


def test_buyer_summary_holds_as_many_demands_as_one_sms(db, settings):
    with db.unit_of_work() as session:
        crops = session.exec(select(models.Crop)).all()
        for n, crop in enumerate(crops):
            demand = models.Demand(buyer_id=1, crop_id=crop.id, quantity_kg=50_000, price=300, place="Bougouni",
                                   valid_until=TODAY + dt.timedelta(days=9))
            session.add(demand)
            session.flush()
            add_offer(session, demand.id, 1000 + n)
    (result,) = summaries(db, settings, NOW.replace(hour=19))
    sent = render_sms(result.text, "fr", fold=True)
    assert measure(sent).segments == 1 and result.offers == len(crops)
    shown = result.text.count("Bougouni")
    assert 1 <= shown < len(crops) and result.text.endswith(f"autres demandes: {len(crops) - shown}")


def test_summary_runs_from_its_hour_once_a_day(db, settings):
    with db.unit_of_work() as session:
        add_offer(session, 1, 1500)
    daily = linkage.DailySummaries()
    at = {"now": NOW.replace(hour=17, minute=59)}
    tick = lambda: daily.tick(db, lambda: at["now"], CATALOG, settings)  # noqa: E731
    assert not tick()
    at["now"] = NOW.replace(hour=18)
    assert tick() and not tick()
    at["now"] += dt.timedelta(days=1)
    assert tick()
    with db.unit_of_work() as session:
        assert len(sms_rows(session)) == 1  # the second day had nothing new


def test_buyer_phone_and_summary_opt_in(browser, db):
    b = browser("editor")
    assert b.post("/admin/buyers/2", {"phone": "76 00 09 09", "daily_summary": "on"}).status_code == 303
    for bad in ({"phone": "12345", "daily_summary": "on"}, {"phone": "", "daily_summary": "on"}):
        b.post("/admin/buyers/2", bad)
        assert "Nothing saved" in b.get("/admin/buyers").text
    with db.unit_of_work() as session:
        buyer = session.get(models.Buyer, 2)
        log = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "buyer")).one()
    assert (buyer.phone, buyer.daily_summary) == ("+22376000909", True)
    assert log.before["phone"] == "+22366123456" and log.after["phone"] == "+22376000909"


# -- the services directory: data ------------------------------------------------------------------


def test_data_view_lists_active_entries_by_name_and_their_regions(db):
    with db.unit_of_work() as session:
        hidden = session.exec(select(models.Service).where(models.Service.name == "Chambre froide de Sévaré")).one()
        hidden.active = False
        session.add(models.Service(category="storage", region="Mopti", name="Abattoir et séchoir de Mopti",
                                   phone="+22376000999", summary_fr="Séchage", summary_bm=""))
    cache = ContentCache(ttl_s=60)
    with db.unit_of_work() as session:
        for view in (SqlDataView(session), CachedDataView(session, cache)):
            mopti = view.services("storage", "Mopti")
            assert [s.name for s in mopti] == ["Abattoir et séchoir de Mopti", "Unité de séchage de Mopti"]
            assert [s.name for s in view.services("storage", None)][:2] == ["Abattoir et séchoir de Mopti", "Chambre froide de Sikasso"]
            assert list(view.service_regions("storage")) == ["Mopti", "Sikasso", "Tombouctou"]
            assert mopti[0].summary("bm") == "Séchage"  # no Bambara yet: the French line
            assert list(view.services("inputs", "Bamako")) == []


def test_demo_directory_is_complete():
    entries = load_json("reference.json")["services"]
    for category in m.SERVICE_CATEGORIES:
        mine = [e for e in entries if e["category"] == category]
        assert len(mine) >= 3 and {"Sikasso", "Mopti", "Tombouctou"} <= {e["region"] for e in mine}, category
    for e in entries:
        assert parse_phone(e["phone"]) == e["phone"]
        assert len(to_ussd(e["name"])) <= m.SERVICE_NAME_MAX
        for lang in LANGUAGES:
            assert 0 < len(to_ussd(e[f"summary_{lang}"])) <= m.SERVICE_SUMMARY_MAX, e
    assert {"ɛ", "ɔ"} <= set(json.dumps([e["summary_bm"] for e in entries], ensure_ascii=False))


LONGEST = {"name": "x" * m.SERVICE_NAME_MAX, "summary": "y" * m.SERVICE_SUMMARY_MAX, "region": "Tombouctou",
           "phone": "+22376000000", "buyer": "Madougou Agro-Business", "quantity": "20 000", "crop": "Pomme de terre",
           "place": "Bandiagara", "ussd": "*123#"}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("key", ["services.sms", "linkage.offer_accepted", "linkage.offer_declined"])
def test_sms_texts_fit_one_segment(lang, key):
    text = render_sms(load_file_catalog(lang)[key].format(**LONGEST), lang, fold=True)
    assert measure(text).segments == 1 and measure(text).encoding == "GSM-7", text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_category_labels_are_short(lang):
    for category in m.SERVICE_CATEGORIES:
        assert len(to_ussd(load_file_catalog(lang)[f"services.category.{category}"])) <= 28


# -- the services directory: the SMS a caller asks for ---------------------------------------------


def send(db, service_id: int, *, session_ref: str, phone: str = "+22370004444"):
    with db.unit_of_work() as session:
        apply_effects(session, phone=phone, effects=(m.SendService(service_id),), now=NOW.astimezone(UTC),
                      today=TODAY, session_ref=session_ref)


@pytest.mark.parametrize("language, expected", [
    pytest.param("fr", "Sugu: Kafo Jiginew Sikasso (Sikasso), tél. +22376000101. Crédit de campagne", id="fr"),
    pytest.param("bm", "Sugu: Kafo Jiginew Sikasso (Sikasso), tel. +22376000101. Sènè waati juru", id="bm"),
])
def test_send_service_queues_one_sms_in_the_callers_language(db, language, expected):
    with db.unit_of_work() as session:
        session.add(models.Producer(phone="+22370004444", language=language))
        kafo = session.exec(select(models.Service.id).where(models.Service.name == "Kafo Jiginew Sikasso")).one()
    send(db, kafo, session_ref="ATUid_1")
    send(db, kafo, session_ref="ATUid_1")  # the aggregator retried the hop
    with db.unit_of_work() as session:
        (sms,) = sms_rows(session)
        request = session.exec(select(models.ServiceRequest)).one()
    assert sms.text.startswith(expected) and sms.language == language and sms.kind == "reply", sms.text
    assert (sms.segments, request.sms_id) == (1, sms.id)


def test_send_service_skips_hidden_entries_and_stops_at_the_daily_cap(db):
    with db.unit_of_work() as session:
        ids = session.exec(select(models.Service.id).order_by(models.Service.id)).all()
        session.get(models.Service, ids[0]).active = False
    send(db, ids[0], session_ref="s0")
    for n in range(MAX_SERVICE_SMS_PER_DAY + 2):
        send(db, ids[1 + n], session_ref=f"s{n}")
    with db.unit_of_work() as session:
        assert len(sms_rows(session)) == MAX_SERVICE_SMS_PER_DAY


# -- the services directory: console ---------------------------------------------------------------

GOOD = {"category": "inputs", "region": "Mopti", "name": "Semences du Delta", "phone": "66 00 07 07",
        "summary_fr": "Semences d'oignon certifiées", "summary_bm": "Jaba kisɛ ɲumanw", "active": "on"}


def count_services(db) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(models.Service)).one()


@pytest.mark.parametrize("role, allowed", [("reporter", False), ("editor", True), ("admin", True)])
def test_directory_by_role(browser, db, role, allowed):
    b = browser(role)
    before = count_services(db)
    assert b.get("/admin/services").status_code == (200 if allowed else 403)
    assert b.post("/admin/services/0", GOOD).status_code == (303 if allowed else 403)
    assert b.post("/admin/services/1/deactivate").status_code == (303 if allowed else 403)
    assert count_services(db) == before + allowed
    assert browser("editor").post("/admin/services/0", GOOD, csrf=False).status_code == 403


def test_directory_create_edit_deactivate_audited(browser, db):
    b = browser("editor")
    created = b.post("/admin/services/0", GOOD)
    service_id = int(created.headers["location"].rstrip("/").split("/")[-1])
    assert "Semences du Delta" in b.get("/admin/services?category=inputs&region=Mopti").text
    assert "Semences du Delta" not in b.get("/admin/services?category=storage").text
    b.post(f"/admin/services/{service_id}", {**GOOD, "name": "Semences du Delta (Sévaré)"})
    b.post(f"/admin/services/{service_id}/deactivate")
    with db.unit_of_work() as session:
        service = session.get(models.Service, service_id)
        actions = session.exec(select(models.AuditLog.action).where(models.AuditLog.entity == "service")
                               .order_by(models.AuditLog.id)).all()
        listed = SqlDataView(session).services("inputs", "Mopti")
    assert (service.phone, service.name, service.active) == ("+22366000707", "Semences du Delta (Sévaré)", False)
    assert actions == ["create", "edit", "deactivate"] and service_id not in {s.id for s in listed}


@pytest.mark.parametrize(
    "change, problem",
    [
        pytest.param({"phone": "12 34"}, "Not a valid phone number", id="bad-phone"),
        pytest.param({"phone": ""}, "Give a phone number", id="no-phone"),
        pytest.param({"summary_fr": "x" * 61}, "French summary is too long", id="long-summary"),
        pytest.param({"summary_bm": "ɲ" * 31}, "Bambara summary is too long", id="long-once-folded"),
        pytest.param({"name": ""}, "Name is required", id="no-name"),
        pytest.param({"category": "banks"}, "Choose a category from the list", id="unknown-category"),
        pytest.param({"region": "Atlantis"}, "Choose a region", id="unknown-region"),
    ],
)
def test_bad_entry_is_refused_and_nothing_stored(browser, db, change, problem):
    before = count_services(db)
    response = browser("editor").post("/admin/services/0", {**GOOD, **change})
    assert response.status_code == 400 and problem in response.text
    assert 'value="Semences du Delta"' in response.text or change.get("name") == ""  # typed values kept
    assert count_services(db) == before
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.AuditLog)).one() == 0


def test_staff_typed_names_are_escaped(browser):
    b = browser("editor")
    b.post("/admin/services/0", {**GOOD, "name": "<script>alert(1)</script>", "summary_fr": '"><b>x</b>'})
    page = b.get("/admin/services").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page


def test_buyer_summary_command(db, db_url, monkeypatch):
    from typer.testing import CliRunner

    from gateway.cli import app as cli

    with db.unit_of_work() as session:
        session.get(models.Demand, 1).valid_until = dt.date(2099, 1, 1)  # the command reads the real clock
        add_offer(session, 1, 1500)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    run = lambda *args: CliRunner().invoke(cli, ["buyer-summary", *args]).output  # noqa: E731
    assert "Lawal Int. (+22376123456): 1 new offers, would be queued" in run("--dry-run")
    assert "Lawal Int. (+22376123456): 1 new offers, queued" in run()
    assert "no buyer to tell" in run()
    with db.unit_of_work() as session:
        assert len(sms_rows(session)) == 1
