"""Real price history in (issue 13): WFP/HDX files as published and today's simple layout, with
every refused row's reason and line, names matching nothing listed once, --create-missing,
--mapping, currencies, units by weight, zero placeholders, dry runs; on the command line, the
staff API's date rule, and the console's import page."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from gateway.data import auth
from gateway.actions import imports
from gateway.core import migrate
from gateway.data import models
from gateway.data import seed
from gateway.core.db import Database
from gateway.actions.imports import FileFormatError, PriceOptions, PriceRow, RowError, read_price_file
from gateway.core.settings import Settings
from tests.conftest import NOW, TODAY
from tests.test_admin import app, browser, clock, staff  # noqa: F401  (fixtures)
from tests.test_imports import CROPS, MARKETS, cli_run, database  # noqa: F401  (fixtures)

C = {c.code: c.id for c in CROPS}
M = {m.code: m.id for m in MARKETS}
BENIN = Path("/work/shared/data/wfp-benin-vegetables.csv")
HDX_HEADER = ("date,admin1,admin2,market,market_id,latitude,longitude,category,commodity,commodity_id,unit,"
              "priceflag,pricetype,currency,price,usdprice")
HXL = ("#date,#adm1+name,#adm2+name,#loc+market+name,#loc+market+code,#geo+lat,#geo+lon,#item+type,#item+name,"
       "#item+code,#item+unit,#item+prices+flag,#item+price+type,#currency+code,#value,#value+usd")


def hdx(*rows: str, hxl: bool = True) -> str:
    return "\n".join((HDX_HEADER, *((HXL,) if hxl else ()), *rows)) + "\n"


def hdx_row(date="2020-04-15", admin1="Sikasso", market="Sikasso", commodity="Onions", unit="KG",
            pricetype="Retail", currency="XOF", price="853.75") -> str:
    return (f"{date},{admin1},Sikasso,{market},123,11.31,-5.67,vegetables and fruits,{commodity},99,{unit},"
            f"actual,{pricetype},{currency},{price},1.45")


def read(text: str, **options) -> imports.PriceFile:
    return read_price_file(text, crops=CROPS, markets=MARKETS, today=TODAY, options=PriceOptions(**options))


def retire(rows, code):
    return [r.model_copy(update={"active": False}) if r.code == code else r for r in rows]


# -- the findings -----------------------------------------------------------------------------------

# Each layout gives the same observation: onions at Sikasso, 15 April 2020, retail, 854 F/kg.
ONE_OBSERVATION = PriceRow(3, dt.date(2020, 4, 15), C["onion"], M["sikasso"], 854, "kg", "retail")
LAYOUTS = [
    pytest.param(hdx(hdx_row()), 3, id="hdx-with-hxl-row"),
    pytest.param(hdx(hdx_row(), hxl=False), 2, id="hdx-without-hxl-row"),
    pytest.param(hdx(hdx_row()).replace(",", ";"), 3, id="hdx-semicolons"),
    pytest.param("date,market,commodity,unit,pricetype,currency,price\n"
                 "#date,#name+market,#item+name,#item+unit,#item+type,#currency,#value\n"
                 "2020-04-15,Sikasso,Onions,KG,Retail,XOF,853.75\n", 3, id="benin-extract-layout"),
    pytest.param("date,market,crop,price,unit,kind\n15/04/2020,Sikasso,Oignon,854,kg,détail\n", 2, id="simple-commas"),
    pytest.param("date;marché;culture;prix;unité;type\n2020-04-15;sikasso;jababa;853,75;kg;retail\n", 2, id="simple-semicolons-decimal-comma"),
]


@pytest.mark.parametrize("text, line", LAYOUTS)
def test_finding_hdx_files_were_refused_for_every_row(text, line):
    found = read(text)
    assert found.errors == []
    assert found.rows == [PriceRow(line, *[getattr(ONE_OBSERVATION, f) for f in
                                           ("observed_on", "crop_id", "market_id", "price", "unit", "kind")])]


# one HDX row's changed cells → (price, unit, kind) stored, or the reason it is refused
HDX_ROWS = [
    pytest.param({"date": "2019-01-15"}, (854, "kg", "retail"), id="history-older-than-two-years"),
    pytest.param({"date": "2003-06-15"}, (854, "kg", "retail"), id="history-from-2003"),
    pytest.param({"date": "2026-11-29"}, 'date "2026-11-29" is in the future', id="future-refused"),
    pytest.param({"price": "862.5"}, (863, "kg", "retail"), id="decimal-half-rounds-up"),
    pytest.param({"price": "533.3333"}, (533, "kg", "retail"), id="decimal-rounds-down"),
    pytest.param({"price": '"1,250"'}, 'price "1,250" is ambiguous', id="thousands-comma-ambiguous"),
    pytest.param({"price": "0.4"}, 'price "0.4" rounds to 0 FCFA', id="rounds-to-zero"),
    pytest.param({"unit": "100 KG", "price": "30000"}, (30000, "sack100", "retail"), id="unit-100-kg-is-sack100"),
    pytest.param({"unit": "50 KG", "price": "15000"}, (15000, "sack50", "retail"), id="unit-50-kg-is-sack50"),
    pytest.param({"unit": "50KG", "price": "15000"}, (15000, "sack50", "retail"), id="unit-50kg-by-weight"),
    pytest.param({"unit": "Kg"}, (854, "kg", "retail"), id="unit-kg"),
    pytest.param({"unit": "Unit"}, 'unit "Unit" unknown (use kg, sack50, sack100, basket, crate, pile)', id="unit-unit-unknown"),
    pytest.param({"unit": "25 KG"}, 'unit "25 KG" unknown', id="unit-weight-without-a-unit"),
    pytest.param({"pricetype": "Wholesale"}, (854, "kg", "wholesale"), id="pricetype-wholesale"),
    pytest.param({"pricetype": "Farm Gate"}, 'kind "Farm Gate" unknown (use wholesale or retail, gros or détail)', id="pricetype-unknown"),
    pytest.param({"currency": "xof"}, (854, "kg", "retail"), id="currency-xof-lower"),
    pytest.param({"currency": "FCFA"}, (854, "kg", "retail"), id="currency-fcfa"),
    pytest.param({"currency": ""}, (854, "kg", "retail"), id="currency-empty-is-xof"),
    pytest.param({"currency": "GHS"}, 'currency "GHS" refused: prices are stored in XOF (give a rate to convert, e.g. --rate GHS=98.5)', id="currency-ghs-refused"),
    pytest.param({"market": "Sikaso"}, 'market "Sikaso" unknown (did you mean Sikasso?)', id="market-typo"),
    pytest.param({"commodity": "Mangoes"}, 'crop "Mangoes" unknown', id="crop-unknown"),
    pytest.param({"commodity": "Tomatoes", "price": "14000"}, (14000, "kg", "retail"), id="crop-english-plural-of-its-code"),
]


@pytest.mark.parametrize("cells, expected", HDX_ROWS)
def test_finding_hdx_rows_dates_decimals_units_currency(cells, expected):
    found = read(hdx(hdx_row(**cells)))
    if isinstance(expected, str):
        assert found.rows == []
        assert [e.line for e in found.errors] == [3]
        assert found.errors[0].reason.startswith(expected)
    else:
        assert found.errors == []
        assert [(r.price, r.unit, r.kind) for r in found.rows] == [expected]


RATES = [
    pytest.param("GHS", {"GHS": Decimal("98.5")}, "8.67", 854, id="ghs-at-98.5"),  # 853.995 → 854
    pytest.param("ghs", {"GHS": Decimal("98.5")}, "10", 985, id="code-any-case"),
    pytest.param("NGN", {"GHS": Decimal("98.5")}, "10", None, id="rate-for-another-currency"),
]


@pytest.mark.parametrize("currency, rates, price, expected", RATES)
def test_finding_currency_was_ignored(currency, rates, price, expected):
    found = read(hdx(hdx_row(currency=currency, price=price)), rates=rates)
    if expected is None:
        assert found.rows == [] and f'currency "{currency}" refused' in found.errors[0].reason
    else:
        assert [r.price for r in found.rows] == [expected]
        assert found.converted == {currency.upper(): 1}


RATE_OPTIONS = [
    pytest.param(["GHS=98.5"], {"GHS": Decimal("98.5")}, id="one"),
    pytest.param(["ghs=98,5", "NGN=0.4"], {"GHS": Decimal("98.5"), "NGN": Decimal("0.4")}, id="two-comma-decimal"),
    pytest.param(["GHS"], "is not CUR=XOF", id="no-rate"),
    pytest.param(["GHS=0"], "is not CUR=XOF", id="zero-rate"),
    pytest.param(["GHS=abc"], "is not CUR=XOF", id="word-rate"),
    pytest.param(["CEDI=9"], "is not CUR=XOF", id="not-a-currency-code"),
]


@pytest.mark.parametrize("given, expected", RATE_OPTIONS)
def test_rate_option(given, expected):
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            imports.parse_rates(given)
    else:
        assert imports.parse_rates(given) == expected


def test_zero_prices_are_placeholders_skipped_and_counted():
    found = read(hdx(hdx_row(price="0"), hdx_row(price="0.0", date="2020-05-15"), hdx_row(date="2020-06-15")))
    assert (found.read, found.zero, len(found.rows), found.errors) == (3, 2, 1, [])
    assert found.rows[0].line == 5


def test_finding_unknown_markets_and_crops_are_listed_once_with_their_rows():
    found = read(hdx(
        hdx_row(market="Parakou"),
        hdx_row(market="Parakou", date="2020-05-15"),
        hdx_row(market="Parakou", commodity="Okra (fresh)", date="2020-06-15"),
        hdx_row(commodity="Okra (fresh)", date="2020-07-15"),
        hdx_row(market="PARAKOU", price="0", date="2020-08-15"),  # a placeholder holds nothing back
    ))
    listed = [(u.what, u.name, u.status, u.rows, u.lines) for u in found.unmatched]
    assert listed == [
        ("market", "Parakou", "unknown", 3, [3, 4, 5]),
        ("crop", "Okra (fresh)", "unknown", 2, [5, 6]),
    ]
    assert found.line_errors == []  # no reason told twice
    assert {e.line for e in found.errors} == {3, 4, 5, 6} and found.bad_lines == 4
    assert str(found.unmatched[0]) == 'market "Parakou" unknown (did you mean Bamako?): 3 rows held back (line 3, 4, 5)'


RETIRED = [
    pytest.param("market", "sikasso", {}, 'market "Sikasso" is retired', id="retired-market"),
    pytest.param("crop", "onion", {"commodity": "Oignon"}, 'crop "Oignon" is retired', id="retired-crop"),
]


@pytest.mark.parametrize("what, code, cells, reason", RETIRED)
def test_retired_market_or_crop_is_refused_not_created(what, code, cells, reason):
    crops = retire(CROPS, code) if what == "crop" else CROPS
    markets = retire(MARKETS, code) if what == "market" else MARKETS
    found = read_price_file(hdx(hdx_row(**cells)), crops=crops, markets=markets, today=TODAY,
                            options=PriceOptions(create_missing=True))
    assert found.rows == [] and found.new_markets == [] and found.new_crops == []
    assert [(u.what, u.status, u.reason) for u in found.unmatched] == [(what, "retired", reason)]


def test_create_missing_plans_regions_markets_crops_and_units():
    found = read(hdx(
        hdx_row(admin1="Borgou", market="Parakou", commodity="Okra (fresh)", unit="Unit"),
        hdx_row(admin1="Borgou", market="Parakou", commodity="Okra (fresh)", unit="Unit", date="2020-05-15"),
        hdx_row(admin1="Sikasso", market="Kignan", unit="25 KG", price="9000"),
        hdx_row(admin1="", market="Nowhere"),
    ), create_missing=True)
    assert [(r.name, r.code) for r in found.new_regions] == [("Borgou", "borgou")]  # Sikasso exists
    assert [(m.name, m.code, m.region, m.latitude) for m in found.new_markets] == [
        ("Parakou", "parakou", "Borgou", 11.31), ("Kignan", "kignan", "Sikasso", 11.31)]
    assert [(c.name, c.code, c.default_unit) for c in found.new_crops] == [("Okra (fresh)", "okra-fresh", "unit")]
    assert [(u.name, u.code, u.kg) for u in found.new_units] == [("Unit", "unit", None), ("25 KG", "25-kg", 25.0)]
    assert [(r.line, r.market_id, r.crop_id, r.unit) for r in found.rows] == [
        (3, -1, -1, "unit"), (4, -1, -1, "unit"), (5, -2, C["onion"], "25-kg")]
    assert found.errors == [RowError(6, 'market "Nowhere" unknown: no region to create it in (an admin1 column, or --region)')]
    assert read(hdx(hdx_row(admin1="", market="Nowhere")), create_missing=True, region="Bénin").new_regions[0].name == "Bénin"


MAPPINGS = [
    pytest.param("kind,name,code\ncrop,Okra (fresh),okra\nmarket,Parakou,mopti\n", None, id="with-header"),
    pytest.param("crop;okra (FRESH);okra\nmarket;parakou;mopti\n", None, id="semicolons-no-header"),
    pytest.param("kind,name,code\nvegetable,Okra,okra\n", "mapping line 2: expected kind,name,code", id="bad-kind"),
    pytest.param("crop,Okra (fresh)\n", "mapping line 1: expected kind,name,code", id="two-columns"),
    pytest.param("crop,Okra (fresh),mango\n", 'mapping: crop "okra fresh" → "mango": no crop has that code', id="unknown-code"),
    pytest.param("market,Parakou,sikasso\n", 'mapping: market "parakou" → "sikasso": retired market has that code', id="retired-code"),
]


@pytest.mark.parametrize("mapping, problem", MAPPINGS)
def test_mapping_file(mapping, problem):
    text = hdx(hdx_row(market="Parakou", commodity="Okra (fresh)"))
    markets = retire(MARKETS, "sikasso")
    if problem:
        with pytest.raises(FileFormatError, match=re.escape(problem)):
            read_price_file(text, crops=CROPS, markets=markets, today=TODAY,
                            options=PriceOptions(mapping=imports.parse_mapping(mapping)))
        return
    found = read_price_file(text, crops=CROPS, markets=markets, today=TODAY,
                            options=PriceOptions(mapping=imports.parse_mapping(mapping)))
    assert found.errors == []
    assert [(r.crop_id, r.market_id) for r in found.rows] == [(C["okra"], M["mopti"])]


# -- with a database ---------------------------------------------------------------------------------


def count(database: Database, model: type, *where) -> int:
    with database.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def reference_only(url: str) -> None:
    """A new install: migrated (units, price kinds) with the crops and markets, and no prices."""
    migrate.upgrade(url)
    data = seed.load_json("reference.json")
    db = Database.from_settings(Settings(database_url=url))
    with db.unit_of_work() as session:
        for order, c in enumerate(data["crops"]):
            session.add(models.Crop(code=c["code"], name_fr=c["name_fr"], name_bm=c["name_bm"],
                                    default_unit=c["unit"], sort_order=order))
        for m in data["markets"]:
            session.add(models.Market(code=m["code"], name=m["name"], region=m["region"]))
    db.dispose()


@pytest.fixture
def fresh_install(cli_run, empty_db_url, monkeypatch):  # noqa: F811
    """After cli_run, whose database this replaces."""
    reference_only(empty_db_url)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", empty_db_url)
    db = Database.from_settings(Settings(database_url=empty_db_url))
    yield db
    db.dispose()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


@pytest.mark.db
def test_the_benin_file_imports_in_one_command_and_once(fresh_install, cli_run):
    db = fresh_install
    out = cli_run("import-prices", BENIN, "--create-missing", "--region", "Bénin")
    assert "wfp-benin-vegetables.csv: 5622 prices imported, 70 already present, 0 rows skipped, " \
           "227 zero prices skipped (placeholders)" in out
    assert "created: 1 region, 50 markets, 2 crops" in out
    assert "no alerts (none is both newer" in out  # 2019-2021 is history: nobody is alerted
    assert count(db, models.PriceObservation) == 5622
    assert count(db, models.Broadcast) == 0
    with db.unit_of_work() as session:
        abomey = session.exec(select(models.Market).where(models.Market.name == "Abomey")).one()
        region = session.exec(select(models.Region).where(models.Region.name_fr == "Bénin")).one()
        first = session.exec(select(models.PriceObservation).where(
            models.PriceObservation.market_id == abomey.id,
            models.PriceObservation.observed_on == dt.date(2020, 4, 15))).first()
    assert (abomey.region, region.code) == ("Bénin", "benin")
    assert (first.price, first.unit, first.kind) == (854, "kg", "retail")  # 853.75 as published

    again = cli_run("import-prices", BENIN, "--create-missing", "--region", "Bénin")
    assert "0 prices imported, 5692 already present" in again and "created" not in again
    assert count(db, models.PriceObservation) == 5622 and count(db, models.Market) == 61


@pytest.mark.db
def test_dry_run_writes_nothing(fresh_install, cli_run):
    db = fresh_install
    tables = (models.PriceObservation, models.Market, models.Crop, models.Region, models.Unit, models.AuditLog)
    before = [count(db, t) for t in tables]
    out = cli_run("import-prices", BENIN, "--create-missing", "--region", "Bénin", "--dry-run")
    assert "5622 prices would be imported" in out and "would create: 1 region, 50 markets, 2 crops" in out
    assert 'would create crop "Okra (fresh)" (1060 rows)' in out and "dry run: nothing was written" in out
    assert [count(db, t) for t in tables] == before


@pytest.mark.db
def test_unknown_names_are_listed_once_and_hold_the_file_back(fresh_install, cli_run, tmp_path):
    path = write(tmp_path, "hdx.csv", hdx(hdx_row(market="Parakou"), hdx_row(market="Parakou", date="2020-05-15"),
                                            hdx_row(currency="GHS")))
    out = cli_run("import-prices", path, code=1)
    assert out.count("Parakou") == 1
    assert 'hdx.csv: market "Parakou" unknown (did you mean Bamako?): 2 rows held back (line 3, 4)' in out
    assert 'hdx.csv: line 5: currency "GHS" refused' in out
    assert "3 of 3 rows have errors: nothing imported" in out
    assert count(fresh_install, models.PriceObservation) == 0


@pytest.mark.db
def test_create_missing_mapping_and_rate_on_the_command_line(fresh_install, cli_run, tmp_path):
    db = fresh_install
    path = write(tmp_path, "hdx.csv", hdx(
        hdx_row(admin1="Borgou", market="Parakou", commodity="Okra (fresh)", unit="Unit", price="150"),
        hdx_row(market="Bamako Centre", currency="GHS", price="10"),
    ))
    mapping = write(tmp_path, "map.csv", "kind,name,code\nmarket,Bamako Centre,bamako\n")
    out = cli_run("import-prices", path, "--create-missing", "--mapping", mapping, "--rate", "GHS=98.5")
    assert "2 prices imported" in out and "created: 1 region, 1 market, 1 crop, 1 unit" in out
    assert "converted to XOF: 1 rows from GHS" in out
    with db.unit_of_work() as session:
        parakou = session.exec(select(models.Market).where(models.Market.code == "parakou")).one()
        okra = session.exec(select(models.Crop).where(models.Crop.code == "okra-fresh")).one()
        unit = session.exec(select(models.Unit).where(models.Unit.code == "unit")).one()
        bamako = session.exec(select(models.Market).where(models.Market.code == "bamako")).one()
        prices = session.exec(select(models.PriceObservation.market_id, models.PriceObservation.price)).all()
    assert (parakou.region, parakou.latitude, okra.name_fr, okra.default_unit, unit.kg) == ("Borgou", 11.31, "Okra (fresh)", "unit", None)
    assert sorted(prices) == sorted([(parakou.id, 150), (bamako.id, 985)])
    assert count(db, models.Region, models.Region.name_fr == "Borgou") == 1


@pytest.mark.db
def test_retired_market_is_refused(fresh_install, cli_run, tmp_path):
    with fresh_install.unit_of_work() as session:
        sikasso = session.exec(select(models.Market).where(models.Market.code == "sikasso")).one()
        sikasso.active = False
        session.add(sikasso)
    path = write(tmp_path, "hdx.csv", hdx(hdx_row()))
    out = cli_run("import-prices", path, "--create-missing", code=1)
    assert 'hdx.csv: line 3: market "Sikasso" is retired' in out
    assert count(fresh_install, models.Market) == 11


@pytest.mark.db
def test_history_is_stored_without_alerts_recent_prices_alert(database):
    with database.unit_of_work() as session:
        crops = {c.code: c.id for c in session.exec(select(models.Crop))}
        markets = {m.code: m.id for m in session.exec(select(models.Market))}
    rows = [
        PriceRow(2, TODAY - dt.timedelta(days=11), crops["lettuce"], markets["tombouctou"], 444, "kg", "wholesale"),
        PriceRow(3, TODAY - dt.timedelta(days=10), crops["lettuce"], markets["dire"], 555, "kg", "wholesale"),
    ]
    with database.unit_of_work() as session:
        report = imports.import_prices(session, rows, now=NOW, source="import:x.csv", stale_days=10)
    assert (report.imported, report.pairs, report.alert_pairs) == (2, 2, 1)
    with database.unit_of_work() as session:
        [alert] = session.exec(select(models.Broadcast).where(models.Broadcast.kind == "alert")).all()
    assert alert.audience == {"pairs": [[crops["lettuce"], markets["dire"]]]}


@pytest.fixture
def api_token(db):
    with db.unit_of_work() as session:
        user = auth.create_staff(session, email="editor@api.test", password="x" * 12, role="editor")
        return auth.issue_api_token(session, user)


API_DATES = [
    pytest.param("2019-01-15", 201, None, id="history-accepted"),
    pytest.param("2026-11-28", 201, None, id="today-accepted"),
    pytest.param("2026-11-29", 422, "date 2026-11-29 is in the future", id="tomorrow-refused"),
]


@pytest.mark.db
@pytest.mark.parametrize("day, status, detail", API_DATES)
def test_finding_api_and_import_apply_the_same_date_rule(client, api_token, day, status, detail):
    body = {"prices": [{"date": day, "market": "mopti", "crop": "onion", "price": 940}], "alerts": False,
            "acknowledge_outliers": True}  # the date rule is under test, not the outlier check
    response = client.post("/api/v1/prices", json=body, headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == status, response.text
    found = read(f"date,market,crop,price\n{day},Mopti,Oignon,940\n")
    assert (found.errors == []) == (status == 201)
    if detail:
        assert response.json()["detail"] == detail == imports.date_problem(dt.date.fromisoformat(day), TODAY)


# -- the console -------------------------------------------------------------------------------------

CONSOLE_FILE = hdx(
    hdx_row(admin1="Borgou", market="Parakou", date="2020-04-15"),
    hdx_row(admin1="Borgou", market="Parakou", date="2020-05-15"),
    hdx_row(date="2020-06-15", price="0"),
)


def upload(b, text: str, **fields):
    return b.client.post("/admin/prices/import", data={"csrf_token": b.csrf, **fields},
                         files={"file": ("hdx.csv", text.encode(), "text/csv")}, follow_redirects=False)


ROLE_ACCESS = [
    pytest.param("admin", 200, id="admin"),
    pytest.param("editor", 200, id="editor"),
    pytest.param("reporter", 403, id="reporter"),
]


@pytest.mark.db
@pytest.mark.parametrize("role, status", ROLE_ACCESS)
def test_console_import_roles(browser, role, status):  # noqa: F811
    b = browser(role)
    assert b.get("/admin/prices/import").status_code == status
    assert upload(b, CONSOLE_FILE).status_code == (200 if status == 200 else 403)


@pytest.mark.db
def test_console_import_checks_then_imports_and_audits(browser, db):  # noqa: F811
    b = browser("editor")
    forged = b.client.post("/admin/prices/import", data={"csrf_token": "forged"},
                           files={"file": ("hdx.csv", CONSOLE_FILE.encode(), "text/csv")})
    assert forged.status_code == 403
    held = upload(b, CONSOLE_FILE)
    assert held.status_code == 200
    assert "Parakou" in held.text and "Nothing can be imported while rows are refused" in held.text
    before = count(db, models.PriceObservation)
    checked = upload(b, CONSOLE_FILE, create_missing="on")
    assert "2 prices would be imported" in checked.text and "Would create: 1 region, 1 market" in checked.text
    assert "1 with a price of 0 skipped" in checked.text
    assert count(db, models.Market, models.Market.code == "parakou") == 0  # the check wrote nothing
    token = re.search(r'name="token" value="([0-9a-f]{32})"', checked.text).group(1)
    done = b.post("/admin/prices/import/confirm", {"token": token, "name": "hdx.csv", "create_missing": "on"})
    assert done.status_code == 200 and "2 prices imported" in done.text
    assert count(db, models.PriceObservation) == before + 2
    with db.unit_of_work() as session:
        entry = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "prices")).one()
    assert (entry.action, entry.entity_id, entry.staff_email) == ("import", "hdx.csv", "editor@sugu.test")
    assert entry.after["imported"] == 2 and entry.after["created"]["markets"] == 1
    replay = b.post("/admin/prices/import/confirm", {"token": token, "name": "hdx.csv", "create_missing": "on"})
    assert replay.status_code == 400 and count(db, models.PriceObservation) == before + 2
