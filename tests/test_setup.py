"""`gateway setup` starts a production database: migrations, the shipped reference file, no demo
content; idempotent. Then every USSD and SMS journey works on the reference data alone."""

from __future__ import annotations

import itertools
import json
from importlib import resources

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from gateway.data import models
from gateway.data import reference
from gateway.app import create_app
from gateway.cli import app as cli
from gateway.data.dataview import SqlDataView
from gateway.core.db import Database
from gateway.core.settings import Settings
from menus.sms import respond
from menus.types import Profile
from messages import default_catalog
from tests.conftest import NOW
from tests.test_ussd_webhook import Caller

pytestmark = pytest.mark.db

_phones = itertools.count(1)
REFERENCE = (models.Region, models.Market, models.Crop, models.Unit, models.PriceKind)
DEMO_ONLY = (models.PriceObservation, models.Producer, models.Demand, models.Buyer, models.Tip, models.Service)


def counts(url: str, tables) -> dict[str, int]:
    db = Database.from_settings(Settings(database_url=url))
    try:
        with db.unit_of_work() as session:
            return {t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in tables}
    finally:
        db.dispose()


@pytest.fixture
def gateway(empty_db_url, monkeypatch):
    """Runs the `gateway` command on an empty database; returns (exit code, output)."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_db_url)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, list(args))
        return result.exit_code, result.output

    invoke.url = empty_db_url
    return invoke


@pytest.fixture
def set_up(gateway):
    code, output = gateway("setup")
    assert code == 0, output
    return gateway.url


def test_production_start_has_crops_markets_and_regions(gateway):
    """The finding: migrate-then-serve left no crops, markets or regions, and only seed-demo
    (with 17,000 synthetic prices) could create them."""
    code, output = gateway("setup", "--first-admin", "boss@sugu.test")
    assert code == 0, output
    assert "regions +3" in output and "crops +10" in output and "markets +10" in output
    assert "sign in as boss@sugu.test" in output
    assert counts(gateway.url, REFERENCE) == {"Region": 3, "Market": 10, "Crop": 10, "Unit": 6, "PriceKind": 2}
    assert counts(gateway.url, DEMO_ONLY) == {name.__name__: 0 for name in DEMO_ONLY}
    db = Database.from_settings(Settings(database_url=gateway.url))
    with db.unit_of_work() as session:
        regions = {r.name_fr for r in session.exec(select(models.Region))}
        by_region = {m.region for m in session.exec(select(models.Market))}
        staff = session.exec(select(models.StaffUser)).all()
    db.dispose()
    assert regions == by_region == {"Sikasso", "Mopti", "Tombouctou"}
    assert [s.role for s in staff] == ["admin"]


def test_setup_twice_adds_nothing_and_keeps_staff_edits(set_up, gateway):
    db = Database.from_settings(Settings(database_url=set_up))
    with db.unit_of_work() as session:
        market = reference.by_code(session, "market", "dire")
        reference.update_row(session, "market", market.id, {"name": "Diré (port)", "region": "tombouctou"}, staff=None, now=NOW)
        reference.set_active(session, "crop", reference.by_code(session, "crop", "lettuce").id, False, staff=None, now=NOW)
    before = counts(set_up, REFERENCE)
    code, output = gateway("setup")
    assert code == 0 and "nothing new" in output and "markets +0 (10 kept)" in output
    code, output = gateway("reference", "import", str(resources.files("gateway") / "reference_data" / "mali.json"))
    assert code == 0 and "nothing new" in output
    assert counts(set_up, REFERENCE) == before
    with db.unit_of_work() as session:
        assert reference.by_code(session, "market", "dire").name == "Diré (port)"
        assert reference.by_code(session, "crop", "lettuce").active is False
    db.dispose()


@pytest.fixture
def setup_client(set_up):
    settings = Settings(database_url=set_up, worker_in_process=False, content_cache_s=0, secret_key="test-secret")
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield client


@pytest.mark.parametrize(
    "language, path, expected",
    [
        pytest.param("1", ("1", "1"), "Pas encore de prix pour Tomate.", id="fr-prices"),
        pytest.param("2", ("1", "1"), "Tamati songo te yen folo.", id="bm-prices"),
        pytest.param("1", ("2",), "Aucune demande ouverte", id="fr-demands"),
        pytest.param("2", ("2",), "Sanbaa si ka mako te yen sisan.", id="bm-demands"),
        pytest.param("1", ("3", "1"), "Pas encore de conseil", id="fr-tips"),
        pytest.param("1", ("4", "2", "1"), "9. Sikasso", id="fr-alert-markets"),
        pytest.param("1", ("4", "2", "1", "9"), "Abonnement enregistre.", id="fr-subscribe"),
        pytest.param("1", ("5", "3"), "3. Tombouctou", id="fr-profile-regions"),
        pytest.param("1", ("7", "1"), "Aucun service ici", id="fr-services"),
        pytest.param("2", ("7", "1"), "Deme yoro si te yan sisan.", id="bm-services"),
    ],
)
def test_every_ussd_journey_works_on_reference_alone(setup_client, language, path, expected):
    caller = Caller(setup_client, phone=f"+2237050{next(_phones):04d}")
    caller.dial(language)
    reply = caller.dial(*path)
    assert reply.startswith("CON ") and expected in reply, reply


@pytest.mark.parametrize(
    "language, text, intent, expected",
    [
        pytest.param("fr", "PRIX TOMATE SIKASSO", "price", "Pas de prix pour Tomate à Sikasso.", id="fr-price-market"),
        pytest.param("bm", "songo tamati sikaso", "price", "Tamati sɔngɔ tɛ Sikasso.", id="bm-price-market"),
        pytest.param("fr", "oignon", "price", "Pas encore de prix pour Oignon.", id="fr-price-crop"),
        pytest.param("fr", "prix patate dire", "price", "Pomme de terre à Diré", id="fr-crop-alias"),
        pytest.param("fr", "prix tomate timbuktu", "price", "Tomate à Tombouctou", id="fr-market-alias"),
        pytest.param("fr", "ALERTE TOMATE SIKASSO", "subscribe", "Alertes Tomate à Sikasso activées.", id="fr-subscribe"),
        pytest.param("fr", "TENDANCE TOMATE SIKASSO", "trend", "Tomate", id="fr-trend"),
        pytest.param("fr", "aide", "help", "PRIX TOMATE SIKASSO", id="fr-help"),
        pytest.param("fr", "STOP", "stop", "START", id="fr-stop"),
        pytest.param("fr", "P TOMATE SIKASSO 15000", "report", "enquêteurs", id="fr-report-refused"),
    ],
)
def test_every_sms_journey_works_on_reference_alone(set_up, language, text, intent, expected):
    db = Database.from_settings(Settings(database_url=set_up))
    with db.unit_of_work() as session:
        reply = respond(text, profile=Profile("+22370999000", language=language), data=SqlDataView(session),
                        catalog=default_catalog(), now=NOW)
    db.dispose()
    assert reply.intent == intent and expected in reply.text, reply


@pytest.mark.parametrize(
    "document, problem",
    [
        pytest.param("{not json", "not a readable JSON file", id="not-json"),
        pytest.param({"markets": [{"code": "niono", "name": "Niono", "region": "segou"}]},
                     "markets[0].region: no region with code 'segou'", id="unknown-region"),
        pytest.param({"regions": [{"code": "Segou", "name_fr": "Ségou"}]}, "regions[0].code: use lowercase", id="bad-code"),
        pytest.param({"crops": [{"code": "mango", "name_fr": "Mangue", "name_bm": ""}]}, "crops[0].name_bm: required", id="no-bm-name"),
        pytest.param({"farms": []}, "unknown sections: farms", id="unknown-section"),
    ],
)
def test_bad_reference_file_is_refused_and_nothing_changes(set_up, gateway, tmp_path, document, problem):
    path = tmp_path / "ref.json"
    path.write_text(document if isinstance(document, str) else json.dumps(
        {"regions": [{"code": "segou-new", "name_fr": "Ségou", "name_bm": "Segu"}], **document}), "utf-8")
    before = counts(set_up, REFERENCE)
    code, output = gateway("reference", "import", str(path))
    assert code == 1 and problem in output, output
    assert counts(set_up, REFERENCE) == before  # the good region before the bad entry is not kept either


def test_export_then_import_rebuilds_the_same_reference(set_up, gateway, tmp_path, backend):
    db = Database.from_settings(Settings(database_url=set_up))
    with db.unit_of_work() as session:
        reference.set_active(session, "market", reference.by_code(session, "market", "kadiolo").id, False, staff=None, now=NOW)
    db.dispose()
    path = tmp_path / "export.json"
    assert gateway("reference", "export", str(path))[0] == 0
    exported = json.loads(path.read_text("utf-8"))
    fresh = backend.fresh(empty=True)
    try:
        result = CliRunner().invoke(cli, ["setup", "--reference-file", str(path)], env={"GATEWAY_DATABASE_URL": fresh})
        assert result.exit_code == 0, result.output
        other = Database.from_settings(Settings(database_url=fresh))
        with other.unit_of_work() as session:
            again = reference.export(session)
        other.dispose()
    finally:
        backend.drop(fresh)
    assert again == exported
    assert next(m for m in again["markets"] if m["code"] == "kadiolo")["active"] is False
