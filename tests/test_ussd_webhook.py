"""The USSD callback end to end: HTTP form in, CON/END out, effects in the database."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func
from sqlmodel import select

from gateway.data import models
from tests.conftest import NOW

pytestmark = pytest.mark.db

PHONE = "+22370123456"
_ids = itertools.count(1)


class Caller:
    """A handset: each `press` sends the whole path so far, as Africa's Talking does."""

    def __init__(self, client, phone: str = PHONE, session: str | None = None) -> None:
        self.client = client
        self.phone = phone
        self.session = session or f"ATUid_test_{next(_ids)}"
        self.inputs: list[str] = []

    def post(self, text: str):
        return self.client.post(
            "/webhooks/at/ussd",
            data={
                "sessionId": self.session,
                "serviceCode": "*123#",
                "phoneNumber": self.phone,
                "networkCode": "61002",
                "text": text,
            },
        )

    def hop(self) -> str:
        response = self.post("*".join(self.inputs))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        reply = response.text
        assert reply[:4] in ("CON ", "END "), reply
        body = reply[4:]
        assert len(body) <= 160 and body.isascii(), reply
        return reply

    def dial(self, *inputs: str) -> str:
        reply = self.hop()
        for value in inputs:
            self.inputs.append(value)
            reply = self.hop()
        return reply


def count(db, model) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def producer(db, phone=PHONE) -> models.Producer | None:
    with db.unit_of_work() as session:
        return session.exec(select(models.Producer).where(models.Producer.phone == phone)).first()


def known_caller(db, language="fr", phone=PHONE) -> None:
    with db.unit_of_work() as session:
        session.add(models.Producer(phone=phone, language=language))


JOURNEYS = [
    pytest.param(None, [], ["CON ", "Choisir la langue / Kan sugandi"], id="first-dial"),
    pytest.param(None, ["2"], ["CON ", "I bisimila Sugu la!", "1. Sugu songow"], id="first-dial-bambara"),
    pytest.param(None, ["1", "1"], ["CON ", "Prix: choisir un produit", "1. Tomate", "98.Suite"], id="first-dial-prices"),
    pytest.param("fr", ["1", "1"], ["Tomate: choisir un marche", "1. Tous les marches", "2. Ou vendre: meilleurs prix", "3. Bamako"], id="markets"),
    pytest.param("fr", ["1", "1", "12"], ["Tomate - Sikasso", "F/panier (gros)", "Le 28/11", "depuis le 21/11"], id="price"),
    pytest.param("fr", ["1", "1", "6"], ["Tomate - Dire", "Le 31/10 (il y a 4 sem.)"], id="stale-market"),
    pytest.param("fr", ["1", "2", "1"], ["Oignon, F/kg:", "Bamako", "98.Suite"], id="all-markets"),
    pytest.param("bm", ["1", "2", "12"], ["Jababa - Sikasso", "F/kg (gros)"], id="bm-price"),
    pytest.param("fr", ["1", "2", "12", "2"], ["Oignon - Sikasso", "en 4 sem.", "Dernier prix: ", "sur un an", "98.Suite"], id="trend"),
    pytest.param("fr", ["1", "2", "12", "2", "98"], ["Vers le 12/12: ", "Vers le 26/12: "], id="trend-forecast"),
    pytest.param("bm", ["1", "2", "12", "2"], ["Jababa - Sikasso", "dogokun 4 kono", "ni salo ye"], id="bm-trend"),
    pytest.param("fr", ["1", "2", "2"], ["Oignon, meilleurs prix d'abord (F/kg):", "F (28/11)"], id="best-markets"),
    pytest.param("fr", ["7"], ["Services", "1. Microfinance"], id="services"),
    pytest.param("fr", ["7", "1", "1", "1"], ["+223 ", "1. Recevoir par SMS"], id="service-entry"),
    pytest.param("fr", ["2"], ["Demandes des acheteurs", "Madougou Agro-Business: Chou 5 000kg"], id="demands"),
    pytest.param("fr", ["3", "1"], ["Bonnes pratiques", "1. Tomate"], id="tips"),
    pytest.param("bm", ["3", "1"], ["Sene kecogo nyuman", "1. Tamati"], id="bm-tips"),
    pytest.param("fr", ["4", "1"], ["Aucun abonnement."], id="no-alerts"),
    pytest.param("fr", ["8"], ["CON Choix invalide."], id="invalid"),
    pytest.param("fr", ["2", "1", "1", "500", "1"], ["END Merci! Offre de 500 kg"], id="offer-ends-session"),
]


@pytest.mark.parametrize("language, inputs, fragments", JOURNEYS)
def test_journeys_on_demo_content(client, db, language, inputs, fragments):
    if language:
        known_caller(db, language)
    reply = Caller(client).dial(*inputs)
    for fragment in fragments:
        assert fragment in reply, f"{fragment!r} not in:\n{reply}"


def test_new_caller_choice_is_remembered(client, db):
    Caller(client).dial("2")
    assert producer(db).language == "bm"
    assert "Sugu - songo ni laadilikan" in Caller(client).dial()


def test_language_change_persists(client, db):
    known_caller(db, "bm")
    Caller(client).dial("6", "1")
    assert producer(db).language == "fr"


def test_subscription_saved_once_even_when_a_hop_is_retried(client, db):
    known_caller(db)
    caller = Caller(client)
    caller.dial("4", "2", "1", "1")
    caller.hop()  # the aggregator re-sends the same hop after a timeout
    with db.unit_of_work() as session:
        subs = session.exec(select(models.Subscription)).all()
        bamako = session.exec(select(models.Market).where(models.Market.code == "bamako")).one()
        tomato = session.exec(select(models.Crop).where(models.Crop.code == "tomato")).one()
    assert [(s.crop_id, s.market_id) for s in subs] == [(tomato.id, bamako.id)]
    # The next hop still replays from the session's start and shows the new subscription.
    assert "Tomate - Bamako" in caller.dial("1")


def test_offer_recorded_once_with_quantity(client, db):
    known_caller(db)
    caller = Caller(client)
    assert caller.dial("2", "1", "1", "1200", "1").startswith("END ")
    caller.hop()  # retried
    with db.unit_of_work() as session:
        offers = session.exec(select(models.Offer)).all()
        demand = session.get(models.Demand, offers[0].demand_id)
    assert [(o.quantity_kg, o.status, o.channel) for o in offers] == [(1200, "pending", "ussd")]
    assert demand.status == "open"
    assert offers[0].producer_id == producer(db).id


def test_stop_all_opts_out_and_subscribe_restarts(client, db):
    known_caller(db)
    Caller(client).dial("4", "2", "1", "1")
    Caller(client).dial("4", "2", "2", "1")
    assert count(db, models.Subscription) == 2
    assert "Alertes arretees." in Caller(client).dial("4", "4", "1")
    assert producer(db).opted_out is True
    assert count(db, models.Subscription) == 2  # kept, so that restarting restores them
    assert "Alertes SMS (arretees)" in Caller(client).dial("4")
    assert "Alertes reprises." in Caller(client).dial("4", "4")
    assert producer(db).opted_out is False
    Caller(client).dial("4", "4", "1")
    Caller(client).dial("4", "2", "1", "1")  # subscribing again also restarts
    assert producer(db).opted_out is False


def test_profile_fields_saved(client, db):
    known_caller(db)
    Caller(client).dial("5", "1", "Awa Traoré")
    Caller(client).dial("5", "2", "Kignan")
    Caller(client).dial("5", "3", "3")
    p = producer(db)
    assert (p.name, p.village, p.region) == ("Awa Traoré", "Kignan", "Sikasso")
    assert "Nom: Awa Traore" in Caller(client).dial("5")


def test_session_log_keeps_start_and_hops(client, db):
    caller = Caller(client)
    caller.dial("1", "1", "1")
    with db.unit_of_work() as session:
        row = session.exec(select(models.UssdSession)).one()
    assert row.session_id == caller.session and row.phone == PHONE
    # Written on the hops that changed something: the first, the language choice, the menu branch.
    assert row.hops == 3 and row.language == "fr" and row.last_screen == "price_crops"
    assert row.section == "price_crops"
    assert row.start_profile == {}  # an unknown caller: the replay always starts at the language choice


def test_hops_alternating_between_two_servers_behave_as_one(settings, db):
    """Replay makes the servers stateless: any process may answer any hop."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    path = ["2", "4", "2", "1", "1", "1", "0", "3", "1"]
    with TestClient(create_app(settings, clock=lambda: NOW)) as one:
        single = [Caller(one, phone="+22370999001", session="single").dial(*path[:n]) for n in range(len(path) + 1)]
    with TestClient(create_app(settings, clock=lambda: NOW)) as a, TestClient(create_app(settings, clock=lambda: NOW)) as b:
        replies = []
        for n in range(len(path) + 1):
            caller = Caller(a if n % 2 else b, phone="+22370999002", session="alternating")
            caller.inputs = path[:n]
            replies.append(caller.hop())
    assert replies == single


BAD_FORMS = [
    pytest.param({"phoneNumber": PHONE, "text": ""}, "missing field: sessionId", id="no-session"),
    pytest.param({"sessionId": "s", "text": ""}, "missing field: phoneNumber", id="no-phone"),
    pytest.param({"sessionId": " ", "phoneNumber": PHONE}, "missing field: sessionId", id="blank-session"),
    pytest.param({"sessionId": "s", "phoneNumber": "hello"}, "phoneNumber: not a phone number", id="phone-junk"),
    pytest.param({"sessionId": "s", "phoneNumber": "+2231"}, "phoneNumber:", id="phone-too-short"),
    pytest.param({"sessionId": "s", "phoneNumber": "+223 7" + "0" * 40}, "field too long: phoneNumber", id="phone-too-long"),
    pytest.param({"sessionId": "x" * 101, "phoneNumber": PHONE}, "field too long: sessionId", id="session-too-long"),
    pytest.param({"sessionId": "s", "phoneNumber": PHONE, "text": "1*" * 1001}, "field too long: text", id="text-too-long"),
]


@pytest.mark.parametrize("form, reason", BAD_FORMS)
def test_malformed_request_is_400_and_stores_nothing(client, db, form, reason):
    response = client.post("/webhooks/at/ussd", data=form)
    assert response.status_code == 400
    assert reason in response.text
    assert count(db, models.UssdSession) == 0
    assert count(db, models.Producer) == 0


def test_not_a_form_is_400(client, db):
    response = client.post("/webhooks/at/ussd", json={"sessionId": "s", "phoneNumber": PHONE})
    assert response.status_code == 400
    assert count(db, models.UssdSession) == 0


def test_internal_error_ends_politely_in_the_callers_language(client, db, monkeypatch):
    known_caller(db, "bm")

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("gateway.ussd.service.menus.run", broken)
    reply = Caller(client).dial()
    assert reply.startswith("END Haketo, baara in ma se ka ke sisan.")
    assert count(db, models.Producer) == 1  # nothing half-applied


def test_database_down_still_answers_end(backend, monkeypatch):
    """Unreachable database: the caller hears an apology in both languages, never an HTTP error."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.core.settings import Settings

    url = (
        "sqlite:////nonexistent-dir/sub/sugu.db"
        if backend.name == "sqlite"
        else "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1"
    )
    monkeypatch.setattr("gateway.core.startup.Path.mkdir", lambda *a, **k: None)
    with TestClient(create_app(Settings(database_url=url, secret_key="test-secret"))) as client:
        reply = Caller(client).hop()
    assert reply.startswith("END Desole, le service a un probleme.")
    assert "\nHaketo, baara in ma se ka ke sisan." in reply


def test_end_of_session_notification_is_stored(client, db):
    caller = Caller(client)
    caller.dial("1")
    response = client.post(
        "/webhooks/at/ussd/events",
        data={
            "date": "2026-11-28 10:01:02",
            "sessionId": caller.session,
            "serviceCode": "*123#",
            "networkCode": "61002",
            "phoneNumber": PHONE,
            "status": "Success",
            "cost": "XOF 5.0000",
            "durationInMillis": "20345",
            "hopsCount": "2",
            "input": "1",
            "lastAppResponse": "CON Prix",
            "errorMessage": "",
        },
    )
    assert response.status_code == 200
    with db.unit_of_work() as session:
        row = session.exec(select(models.UssdSession)).one()
    assert (row.end_status, row.end_cost, row.end_duration_ms, row.end_hops, row.end_error) == (
        "success", "XOF 5.0000", 20345, 2, None
    )
    assert row.ended_at is not None and row.hops >= 1


@pytest.mark.parametrize(
    "form, reason",
    [
        pytest.param({"sessionId": "s", "phoneNumber": PHONE}, "missing field: status", id="no-status"),
        pytest.param({"sessionId": "s", "phoneNumber": PHONE, "status": "Weird"}, "status: unknown", id="bad-status"),
        pytest.param({"sessionId": "s", "phoneNumber": PHONE, "status": "Failed", "date": "yesterday"}, "date: unreadable", id="bad-date"),
        pytest.param({"sessionId": "s", "phoneNumber": PHONE, "status": "Failed", "durationInMillis": "ten"}, "durationInMillis", id="bad-duration"),
        pytest.param({"phoneNumber": PHONE, "status": "Failed"}, "missing field: sessionId", id="no-session"),
    ],
)
def test_bad_end_notification_is_400(client, db, form, reason):
    response = client.post("/webhooks/at/ussd/events", data=form)
    assert response.status_code == 400 and reason in response.text
    assert count(db, models.UssdSession) == 0


@pytest.mark.parametrize("date", ["2017-05-03T06:04:45Z", "2017-05-03 06:04:45", "2017-05-03 06:04:45.123"])
def test_end_notification_date_forms(client, db, date):
    form = {"sessionId": "s1", "phoneNumber": PHONE, "status": "Incomplete", "date": date, "errorMessage": "timeout"}
    assert client.post("/webhooks/at/ussd/events", data=form).status_code == 200
    with db.unit_of_work() as session:
        row = session.exec(select(models.UssdSession)).one()
    assert row.end_status == "incomplete" and row.end_error == "timeout"
    assert row.ended_at.replace(tzinfo=None).isoformat().startswith("2017-05-03T06:04:45")


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    inputs=st.lists(
        st.one_of(st.sampled_from(["1", "2", "3", "4", "5", "6", "0", "00", "98", "500", "Awa"]), st.text(max_size=30)),
        max_size=12,
    )
)
def test_random_paths_over_http_never_fail(client, inputs):
    caller = Caller(client, phone="+22365000001")
    caller.inputs = ["1"] + inputs
    caller.hop()


def test_sqlite_writer_busy_makes_a_hop_wait_in_the_pool_not_on_the_event_loop(backend, settings, db):
    """While another writer (a broadcast) holds SQLite's lock, a hop that must write waits for it
    off the event loop, and hops that only read are answered meanwhile."""
    if backend.name != "sqlite":
        pytest.skip("SQLite's single writer")
    import asyncio
    import sqlite3
    import threading
    import time as clock

    import httpx
    from sqlalchemy.engine import make_url

    from gateway.app import create_app

    known_caller(db, phone="+22370000777")
    app = create_app(settings)

    def form(session, text, phone="+22370000777"):
        return {"sessionId": session, "serviceCode": "*123#", "phoneNumber": phone, "networkCode": "61002", "text": text}

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                for text in ("", "1"):  # the session exists and is in the prices branch
                    assert (await client.post("/webhooks/at/ussd", data=form("busy-1", text))).status_code == 200
                lock = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None, check_same_thread=False)
                lock.execute("BEGIN IMMEDIATE")  # another process writing
                threading.Timer(0.6, lambda: lock.execute("COMMIT")).start()
                started = clock.perf_counter()

                async def timed(coro):
                    response = await coro
                    return response, clock.perf_counter() - started

                writer = asyncio.create_task(timed(client.post("/webhooks/at/ussd", data=form("busy-2", "", "+22370000778"))))
                await asyncio.sleep(0.05)
                reader, read_s = await timed(client.post("/webhooks/at/ussd", data=form("busy-1", "1*1")))
                written, write_s = await writer
                lock.close()
                return reader, read_s, written, write_s

    # In a thread of its own: an earlier test (Playwright's sync API) may leave a loop running here.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        reader, read_s, written, write_s = pool.submit(asyncio.run, scenario()).result()
    assert reader.text.startswith("CON ") and "Tomate" in reader.text
    assert written.text.startswith("CON ") and "Choisir la langue" in written.text
    assert read_s < 0.5 <= write_s  # the read did not queue behind the waiting write
    with db.unit_of_work() as session:
        assert session.exec(select(models.UssdSession).where(models.UssdSession.session_id == "busy-2")).one()


def test_a_unit_of_work_that_does_not_wait_fails_at_once_and_leaves_the_pool_waiting(backend, db, settings):
    if backend.name != "sqlite":
        pytest.skip("SQLite's single writer")
    import sqlite3
    import time as clock

    from sqlalchemy.engine import make_url

    lock = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    started = clock.perf_counter()
    with pytest.raises(Exception) as failed:
        with db.unit_of_work(wait=False) as session:
            session.add(models.Producer(phone="+22370000779"))
    assert db.is_busy(failed.value) and clock.perf_counter() - started < 1
    lock.execute("COMMIT")
    lock.close()
    with db.unit_of_work() as session:  # the same pooled connection waits again for its next user
        assert session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


# -- what a hop reads and writes (issue 17: a hop should not redo what did not change) -------------


def statements(database):
    """The SQL statements run on `database` (every engine of it) while the block runs."""
    from contextlib import contextmanager

    from sqlalchemy import event

    @contextmanager
    def counting():
        seen: list[str] = []

        def note(conn, cursor, statement, *args):
            seen.append(statement)

        for engine in database.engines:
            event.listen(engine, "before_cursor_execute", note)
        try:
            yield seen
        finally:
            for engine in database.engines:
                event.remove(engine, "before_cursor_execute", note)

    return counting()


def test_a_hop_of_a_session_this_process_remembers_reads_no_table(settings, db):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    known_caller(db)
    cached = settings.model_copy(update={"content_cache_s": 60})
    with TestClient(create_app(cached, clock=lambda: NOW)) as client:
        caller = Caller(client)
        caller.dial("1")  # the crop list: the session row is written with its branch, the content cached
        database = client.app.state.db
        with statements(database) as seen:
            caller.inputs.append("1")
            markets = caller.hop()  # a crop's markets: still the prices branch, nothing to write
        assert "Tomate: choisir un marche" in markets
        assert not [s for s in seen if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "PRAGMA"))]
        with statements(database) as seen:
            again = caller.hop()  # the same screen again (a retried hop): nothing to read or write
        assert again == markets
        assert seen == []


# What a hop writes, as statements: (the inputs before it, its input, the statements' first words)
HOP_WRITES = [
    pytest.param(None, "", ["INSERT"], id="a new session's first hop: its row, with the hop, in one statement"),
    pytest.param("", "1", ["UPDATE"], id="a branch entered: one statement"),
    pytest.param("1", "1", [], id="a hop that changes nothing worth recording: none"),
    pytest.param("1*1*1", "0", [], id="back to a screen of the same branch: none"),
]


@pytest.mark.parametrize("before, last, written", HOP_WRITES)
def test_a_hops_bookkeeping_is_one_statement_without_pragmas(client, db, before, last, written):
    known_caller(db)
    caller = Caller(client)
    if before is not None:
        caller.inputs = before.split("*") if before else []
        caller.hop()
    with statements(client.app.state.db) as seen:
        caller.inputs = [*caller.inputs, last] if before is not None else []
        caller.hop()
    writes = [s.split()[0].upper() for s in seen if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "PRAGMA"))]
    assert writes == written


@pytest.mark.parametrize("language, inputs, fragments", JOURNEYS)
def test_a_process_that_answered_the_previous_hop_answers_as_one_that_did_not(client, db, language, inputs, fragments):
    """Each hop steps only its last input from where this process left the session (menus.Resume);
    another process, which did not answer the previous hop, replays the path: same screens."""
    from gateway.ussd.service import SessionStarts

    hops = client.app.state.ussd
    here, elsewhere = Caller(client, phone="+22370000011"), Caller(client, phone="+22370000012")
    if language:
        known_caller(db, language, here.phone)
        known_caller(db, language, elsewhere.phone)
    remembered = hops.starts
    for n in range(len(inputs) + 1):
        here.inputs = elsewhere.inputs = inputs[:n]
        hops.starts = remembered
        if n:
            assert remembered.resume(here.session, here.phone).inputs == tuple(inputs[: n - 1])
        resumed = here.hop()
        hops.starts = SessionStarts()  # a process that never saw the session
        assert elsewhere.hop() == resumed


def test_the_branch_is_recorded_each_time_the_path_goes_into_another(client, db):
    known_caller(db)
    caller = Caller(client)

    def section() -> str:
        with db.unit_of_work() as session:
            return session.exec(select(models.UssdSession.section)).one()

    caller.dial("1")
    assert section() == "price_crops"
    caller.dial("0")  # back to the main menu: the branch stays the last one gone into
    assert section() == "price_crops"
    caller.dial("2")
    assert section() != "price_crops"
    caller.dial("0", "1")
    assert section() == "price_crops"


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "read-from-the-database"])
def test_a_hop_on_another_callers_session_sees_nothing_and_writes_nothing(settings, db, remembered):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    known_caller(db, "bm")
    with TestClient(create_app(settings, clock=lambda: NOW)) as owner_server:
        owner = Caller(owner_server)
        owner.dial("1")
        with TestClient(create_app(settings, clock=lambda: NOW)) as other_server:
            intruder = Caller(owner_server if remembered else other_server, phone="+22370999777", session=owner.session)
            intruder.inputs = ["1", "5"]  # the owner's alerts, in the owner's name
            reply = intruder.hop()
    assert reply.startswith("END Haketo")  # ended, in the session's language
    assert producer(db, "+22370999777") is None
    assert count(db, models.Subscription) == 0
    with db.unit_of_work() as session:
        row = session.exec(select(models.UssdSession)).one()
    assert row.phone == PHONE and row.last_screen == "price_crops"


def test_a_renamed_crop_shows_on_the_next_hop_though_its_screen_was_laid_out_before(client, db):
    known_caller(db)
    assert "1. Tomate" in Caller(client).dial("1")
    with db.unit_of_work() as session:
        crop = session.exec(select(models.Crop).where(models.Crop.name_fr == "Tomate")).one()
        crop.name_fr = "Tomate cerise"
        session.add(crop)
    client.app.state.content_cache.clear()  # what the console does when staff save
    assert "1. Tomate cerise" in Caller(client).dial("1")


def test_screens_laid_out_are_forgotten_when_the_content_they_were_worded_from_changes():
    from gateway.ussd.service import LaidOut

    laid = LaidOut(size=2)
    catalog, crops = object(), ()
    laid.for_content(catalog, crops)["a"] = 1
    assert laid.for_content(catalog, crops).get("a") == 1  # the same objects: kept
    assert laid.for_content(catalog, tuple(crops)).get("a") == 1  # tuple(()) is () itself
    assert laid.for_content(catalog, ("x",)).get("a") is None  # new names: emptied
    laid.for_content(object(), ("x",))["b"] = 2
    assert laid.for_content(object(), ("x",)).get("b") is None  # a new catalog: emptied
    for key in "cde":
        laid[key] = key
    assert list(laid) == ["d", "e"]  # bounded, the oldest out


def test_a_remembered_hop_that_only_reads_never_waits_for_the_thread_pool(settings, db, monkeypatch):
    """Handing a hop that touches no table to the thread pool cost more than the hop: on
    PostgreSQL too, only its writes go there (Database.read_then_write, reads_nothing)."""
    from fastapi.testclient import TestClient
    from starlette import concurrency

    from gateway.app import create_app

    known_caller(db)
    pooled = []
    original = concurrency.run_in_threadpool

    async def counting(func, *args, **kwargs):
        pooled.append(getattr(func, "__name__", "?"))
        return await original(func, *args, **kwargs)

    cached = settings.model_copy(update={"content_cache_s": 60})
    with TestClient(create_app(cached, clock=lambda: NOW)) as client:
        caller = Caller(client)
        caller.dial("1")  # the session is new here: read from the database
        monkeypatch.setattr(concurrency, "run_in_threadpool", counting)
        caller.inputs.append("1")
        assert "Tomate: choisir un marche" in caller.hop()  # remembered, nothing to write
        assert pooled == []
        caller.inputs += ["0", "0", "3"]
        caller.hop()  # into the tips: the branch is written
    assert pooled == ([] if db.dialect == "sqlite" else ["_write"])


# The hop's fast lane (gateway.core.middleware.FastLane): (method, path, query, body, reaches the
# router, status). Only a POST to the hop's exact path skips the router; everything else, and
# every check outside the lane, is as before.
FORM = "sessionId=ATUid_lane&serviceCode=%2A123%23&phoneNumber=%2B22370123456&networkCode=61002&text="
LANE = [
    pytest.param("POST", "/webhooks/at/ussd", "", FORM, False, 200, id="a hop skips the router"),
    pytest.param("GET", "/webhooks/at/ussd", "", "", True, 405, id="another method meets the router"),
    pytest.param("POST", "/webhooks/at/ussd/", "", FORM, True, None, id="another path meets the router"),
    pytest.param("POST", "/webhooks/at/ussd/events", "", "sessionId=x", True, 400, id="the events callback meets the router"),
    pytest.param("POST", "/webhooks/at/ussd", "", "sessionId=x", False, 400, id="a malformed hop is refused in the lane"),
]


@pytest.mark.parametrize("method, path, query, body, routed, status", LANE)
def test_a_ussd_hop_skips_the_console_layers(client, method, path, query, body, routed, status):
    app = client.app
    router, seen = app.router, []

    async def counting_router(scope, receive, send):
        seen.append(scope["path"])
        await router(scope, receive, send)

    app.middleware_stack = None  # rebuilt with the counting router at the next request
    app.router = counting_router
    try:
        response = client.request(method, path + query, content=body.encode(),
                                   headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    finally:
        app.router = router
        app.middleware_stack = None
    assert bool(seen) is routed
    if status is not None:
        assert response.status_code == status, response.text
    if status == 200:
        assert response.text.startswith("CON ") and response.headers["x-request-id"]


GUARDED = [
    pytest.param("", 403, id="without the webhook secret: 403"),
    pytest.param("?token=wrong", 403, id="with a wrong secret: 403"),
    pytest.param("?token=s3cret-for-the-lane", 200, id="with the secret: answered"),
]


@pytest.mark.parametrize("query, status", GUARDED)
def test_the_fast_lane_keeps_the_webhook_guard(settings, query, status):
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    guarded = settings.model_copy(update={"webhook_secret": SecretStr("s3cret-for-the-lane")})
    with TestClient(create_app(guarded, clock=lambda: NOW)) as client:
        response = client.post("/webhooks/at/ussd" + query, content=FORM.encode(),
                               headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert response.status_code == status


def test_the_fast_lane_keeps_the_body_limit(client):
    big = FORM + "x" * (client.app.state.settings.max_body_bytes + 1)
    response = client.post("/webhooks/at/ussd", content=big.encode(),
                           headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 413


def test_writes_queue_behind_the_one_that_waits_for_the_lock_rather_than_all_going_to_the_pool(backend, db, settings):
    """Another writer (the in-process broadcaster's step) holds SQLite's lock: the first hop's
    write that finds it taken waits in the thread pool; the hops' writes after it wait for that
    one and then write on the event loop, instead of each failing against the lock and following
    it to the pool (under load, a third of all writes did)."""
    if backend.name != "sqlite":
        pytest.skip("SQLite's single writer")
    import asyncio
    import sqlite3
    import threading

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    pooled, rows = [], 12
    original = db._write

    def counted(write, result):
        pooled.append(result)
        return original(write, result)

    db._write = counted
    with db.transaction() as connection:
        connection.execute(text("CREATE TABLE lane_writes (n INTEGER)"))
    lock = sqlite3.connect(make_url(settings.database_url).database, isolation_level=None, check_same_thread=False)
    lock.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: lock.execute("COMMIT")).start()

    def write(connection, n):
        connection.execute(text("INSERT INTO lane_writes VALUES (:n)"), {"n": n})

    async def hops():
        async def one(n):
            await asyncio.sleep(0.01 * n)  # hops keep arriving while the lock is held
            return await db.read_then_write(lambda session: n, write, writes=lambda n: True)

        return await asyncio.gather(*(one(n) for n in range(rows)))

    try:
        assert sorted(asyncio.run(hops())) == list(range(rows))
    finally:
        lock.close()
    with db.transaction() as connection:
        assert connection.execute(text("SELECT count(*) FROM lane_writes")).scalar() == rows
    assert pooled == [0]
