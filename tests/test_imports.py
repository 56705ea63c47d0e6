"""CSV imports of prices and producers: parsing as tables (every accepted form, every error with
its line and reason), then the two commands end to end on a seeded database."""

from __future__ import annotations

import datetime as dt
import re
import types
from pathlib import Path

import pytest
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from gateway import cli
from gateway.actions import imports
from gateway.data import models
from gateway.data import seed
from gateway.core.db import Database
from gateway.data.producers import ensure_producer
from gateway.actions.imports import (
    FileFormatError,
    PriceRow,
    ProducerRow,
    RowError,
    import_prices,
    parse_prices_csv,
    parse_producers_csv,
)
from gateway.core.settings import Settings
from menus.languages import DEFAULT_LANGUAGES
from menus.types import Language
from tests.conftest import NOW, TODAY
from tests.configured_languages import FULFULDE, SONGHOY, add_languages

REFERENCE = seed.load_json("reference.json")
CROPS = [
    models.Crop(id=n, code=c["code"], name_fr=c["name_fr"], name_bm=c["name_bm"], default_unit=c["unit"])
    for n, c in enumerate(REFERENCE["crops"], start=1)
]
MARKETS = [
    models.Market(id=n, code=m["code"], name=m["name"], region=m["region"])
    for n, m in enumerate(REFERENCE["markets"], start=1)
]
C = {c.code: c.id for c in CROPS}
M = {m.code: m.id for m in MARKETS}
DEMO = Path(__file__).parent.parent / "gateway" / "demo"

PRICE_HEADER = "date,market,crop,price,unit,kind"
PRODUCER_HEADER = "phone,name,language,village,region,cluster,subscriptions"


def prices(*lines: str, header: str = PRICE_HEADER, today: dt.date = TODAY):
    return parse_prices_csv("\n".join((header, *lines)) + "\n", crops=CROPS, markets=MARKETS, today=today)


def producers(*lines: str, header: str = PRODUCER_HEADER):
    return parse_producers_csv("\n".join((header, *lines)) + "\n", crops=CROPS, markets=MARKETS)


def one_price(line: str) -> PriceRow:
    rows, errors = prices(line)
    assert errors == []
    assert len(rows) == 1
    return rows[0]


# -- prices: parsing --------------------------------------------------------------------------------

# one data row → the fields it gives (date, market, crop, price, unit, kind)
PRICE_ACCEPTED = [
    pytest.param("2026-11-28,Sikasso,Tomate,14000,panier,gros", (TODAY, "sikasso", "tomato", 14000, "basket", "wholesale"), id="iso-date"),
    pytest.param("28/11/2026,Sikasso,Tomate,14000,,", (TODAY, "sikasso", "tomato", 14000, "basket", "wholesale"), id="dmy-date-and-defaults"),
    pytest.param("3/1/2026,Sikasso,Oignon,300,,", (dt.date(2026, 1, 3), "sikasso", "onion", 300, "kg", "wholesale"), id="dmy-one-digit"),
    pytest.param("2026-11-28,Sévaré,Oignon,600,,", (TODAY, "sevare", "onion", 600, "kg", "wholesale"), id="market-accents"),
    pytest.param("2026-11-28,sevare,Oignon,600,,", (TODAY, "sevare", "onion", 600, "kg", "wholesale"), id="market-no-accents"),
    pytest.param("2026-11-28,SEVARE,Oignon,600,,", (TODAY, "sevare", "onion", 600, "kg", "wholesale"), id="market-upper"),
    pytest.param("2026-11-28, djenné ,Oignon,600,,", (TODAY, "djenne", "onion", 600, "kg", "wholesale"), id="market-spaces"),
    pytest.param("2026-11-28,Diré,Oignon,600,,", (TODAY, "dire", "onion", 600, "kg", "wholesale"), id="market-dire"),
    pytest.param("2026-11-28,Mopti,Échalote,450,,", (TODAY, "mopti", "shallot", 450, "kg", "wholesale"), id="crop-fr-accents"),
    pytest.param("2026-11-28,Mopti,echalote,450,,", (TODAY, "mopti", "shallot", 450, "kg", "wholesale"), id="crop-fr-folded"),
    pytest.param("2026-11-28,Mopti,jaba,450,,", (TODAY, "mopti", "shallot", 450, "kg", "wholesale"), id="crop-bm"),
    pytest.param("2026-11-28,Mopti,JABABA,450,,", (TODAY, "mopti", "onion", 450, "kg", "wholesale"), id="crop-bm-onion-not-shallot"),
    pytest.param("2026-11-28,Mopti,shallot,450,,", (TODAY, "mopti", "shallot", 450, "kg", "wholesale"), id="crop-code"),
    pytest.param("2026-11-28,Mopti,Komitɛrɛ,450,,", (TODAY, "mopti", "potato", 450, "kg", "wholesale"), id="crop-bm-orthography"),
    pytest.param("2026-11-28,Mopti,pomme-de-terre,450,,", (TODAY, "mopti", "potato", 450, "kg", "wholesale"), id="crop-hyphens"),
    pytest.param("2026-11-28,Mopti,Tomates,14000,,", (TODAY, "mopti", "tomato", 14000, "basket", "wholesale"), id="crop-plural"),
    pytest.param("2026-11-28,Mopti,Oignon,1 250,,", (TODAY, "mopti", "onion", 1250, "kg", "wholesale"), id="price-space"),
    pytest.param("2026-11-28,Mopti,Oignon,1\u202f250,,", (TODAY, "mopti", "onion", 1250, "kg", "wholesale"), id="price-narrow-nbsp"),
    pytest.param("2026-11-28,Mopti,Oignon,1\u00a0250,,", (TODAY, "mopti", "onion", 1250, "kg", "wholesale"), id="price-nbsp"),
    pytest.param("2026-11-28,Mopti,Oignon,10 000 000,,", (TODAY, "mopti", "onion", 10_000_000, "kg", "wholesale"), id="price-at-limit"),
    pytest.param("2026-11-28,Mopti,Oignon,1,,", (TODAY, "mopti", "onion", 1, "kg", "wholesale"), id="price-one"),
    pytest.param("2026-11-28,Mopti,Oignon,600,KG,", (TODAY, "mopti", "onion", 600, "kg", "wholesale"), id="unit-kg"),
    pytest.param("2026-11-28,Mopti,Oignon,600,sac,", (TODAY, "mopti", "onion", 600, "sack50", "wholesale"), id="unit-sac"),
    pytest.param("2026-11-28,Mopti,Oignon,600,Sac 50kg,", (TODAY, "mopti", "onion", 600, "sack50", "wholesale"), id="unit-sac-50kg"),
    pytest.param("2026-11-28,Mopti,Oignon,600,sac 100 kg,", (TODAY, "mopti", "onion", 600, "sack100", "wholesale"), id="unit-sac-100kg"),
    pytest.param("2026-11-28,Mopti,Oignon,600,sack100,", (TODAY, "mopti", "onion", 600, "sack100", "wholesale"), id="unit-sack100"),
    pytest.param("2026-11-28,Mopti,Oignon,600,sack50,", (TODAY, "mopti", "onion", 600, "sack50", "wholesale"), id="unit-sack50"),
    pytest.param("2026-11-28,Mopti,Tomate,600,Panier,", (TODAY, "mopti", "tomato", 600, "basket", "wholesale"), id="unit-panier"),
    pytest.param("2026-11-28,Mopti,Tomate,600,basket,", (TODAY, "mopti", "tomato", 600, "basket", "wholesale"), id="unit-basket"),
    pytest.param("2026-11-28,Mopti,Tomate,600,caisse,", (TODAY, "mopti", "tomato", 600, "crate", "wholesale"), id="unit-caisse"),
    pytest.param("2026-11-28,Mopti,Tomate,600,crate,", (TODAY, "mopti", "tomato", 600, "crate", "wholesale"), id="unit-crate"),
    pytest.param("2026-11-28,Mopti,Gombo,100,tas,", (TODAY, "mopti", "okra", 100, "pile", "wholesale"), id="unit-tas"),
    pytest.param("2026-11-28,Mopti,Gombo,100,pile,", (TODAY, "mopti", "okra", 100, "pile", "wholesale"), id="unit-pile"),
    pytest.param("2026-11-28,Mopti,Oignon,700,,détail", (TODAY, "mopti", "onion", 700, "kg", "retail"), id="kind-detail"),
    pytest.param("2026-11-28,Mopti,Oignon,700,,DETAIL", (TODAY, "mopti", "onion", 700, "kg", "retail"), id="kind-detail-upper"),
    pytest.param("2026-11-28,Mopti,Oignon,700,,retail", (TODAY, "mopti", "onion", 700, "kg", "retail"), id="kind-retail"),
    pytest.param("2026-11-28,Mopti,Oignon,700,,Gros", (TODAY, "mopti", "onion", 700, "kg", "wholesale"), id="kind-gros"),
    pytest.param("2026-11-28,Mopti,Oignon,700,,wholesale", (TODAY, "mopti", "onion", 700, "kg", "wholesale"), id="kind-wholesale"),
    pytest.param("2024-11-28,Mopti,Oignon,700,,", (dt.date(2024, 11, 28), "mopti", "onion", 700, "kg", "wholesale"), id="date-two-years-old"),
]


@pytest.mark.parametrize("line, expected", PRICE_ACCEPTED)
def test_price_row_accepted(line, expected):
    day, market, crop, price, unit, kind = expected
    row = one_price(line)
    assert row == PriceRow(2, day, C[crop], M[market], price, unit, kind)


# one data row (line 2) → reason fragments, in order
PRICE_ERRORS = [
    pytest.param("2026-11-28,Sikaso,Tomate,14000,,", ['market "Sikaso" unknown (did you mean Sikasso?)'], id="market-typo"),
    pytest.param("2026-11-28,Tombuktu,Tomate,14000,,", ['market "Tombuktu" unknown (did you mean Tombouctou?)'], id="market-typo-2"),
    pytest.param("2026-11-28,Paris,Tomate,14000,,", ['market "Paris" unknown'], id="market-unknown"),
    pytest.param("2026-11-28,,Tomate,14000,,", ["market is missing"], id="market-missing"),
    pytest.param("2026-11-28,Sikasso,tomatte,14000,,", ['crop "tomatte" unknown (did you mean Tomate?)'], id="crop-typo"),
    pytest.param("2026-11-28,Sikasso,pomme de tere,400,,", ['crop "pomme de tere" unknown (did you mean Pomme de terre?)'], id="crop-typo-phrase"),
    pytest.param("2026-11-28,Sikasso,jabba,400,,", ['crop "jabba" unknown (did you mean Jababa, Jaba'], id="crop-bm-typo-two-suggestions"),
    pytest.param("2026-11-28,Sikasso,mangue,400,,", ['crop "mangue" unknown'], id="crop-unknown"),
    pytest.param("2026-11-28,Sikasso,,400,,", ["crop is missing"], id="crop-missing"),
    pytest.param("2026-11-29,Sikasso,Tomate,400,,", ['date "2026-11-29" is in the future'], id="date-tomorrow"),
    pytest.param("31/02/2026,Sikasso,Tomate,400,,", ['date "31/02/2026" does not exist'], id="date-not-real"),
    pytest.param("2026-13-01,Sikasso,Tomate,400,,", ['date "2026-13-01" does not exist'], id="date-month-13"),
    pytest.param("11/28/26,Sikasso,Tomate,400,,", ['date "11/28/26" not understood (write 2026-11-28 or 28/11/2026)'], id="date-format"),
    pytest.param("hier,Sikasso,Tomate,400,,", ['date "hier" not understood'], id="date-word"),
    pytest.param(",Sikasso,Tomate,400,,", ["date is missing"], id="date-missing"),
    pytest.param("2026-11-28,Sikasso,Tomate,,,", ["price is missing"], id="price-missing"),
    pytest.param("2026-11-28,Sikasso,Tomate,0.4,,", ['price "0.4" rounds to 0 FCFA'], id="price-rounds-to-zero"),
    pytest.param("2026-11-28,Sikasso,Tomate,-500,,", ['price "-500" must be positive'], id="price-negative"),
    pytest.param('2026-11-28,Sikasso,Tomate,"1,250",,', ['price "1,250" is ambiguous'], id="price-thousands-comma"),
    pytest.param("2026-11-28,Sikasso,Tomate,10 000 001,,", ['price "10 000 001" is over the limit of 10 000 000 FCFA'], id="price-over-limit"),
    pytest.param("2026-11-28,Sikasso,Tomate,cher,,", ['price "cher" is not a number'], id="price-word"),
    pytest.param("2026-11-28,Sikasso,Tomate,400 F,,", ['price "400 F" is not a number'], id="price-with-currency"),
    pytest.param("2026-11-28,Sikasso,Tomate,400,bidon,", ['unit "bidon" unknown (use kg, sack50'], id="unit-unknown"),
    pytest.param("2026-11-28,Sikasso,Tomate,400,,demi-gros", ['kind "demi-gros" unknown (use wholesale or retail, gros or détail)'], id="kind-unknown"),
    pytest.param("2026-11-28,Sikasso,Tomate,400,kg,gros,extra", ["7 values but the header has 6 columns"], id="too-many-values"),
    pytest.param("2026-11-30,Sikaso,tomatte,-1,bidon,x", ['date "2026-11-30" is in the future', 'market "Sikaso"', 'crop "tomatte"', "must be positive", 'unit "bidon"', 'kind "x"'], id="every-problem-of-a-row"),
]


@pytest.mark.parametrize("line, reasons", PRICE_ERRORS)
def test_price_row_rejected(line, reasons):
    rows, errors = prices(line)
    assert rows == []
    assert [e.line for e in errors] == [2] * len(reasons)
    for error, fragment in zip(errors, reasons):
        assert fragment in error.reason
    assert str(errors[0]) == f"line 2: {errors[0].reason}"


def test_price_errors_carry_their_line_numbers():
    rows, errors = prices(
        "2026-11-28,Sikasso,Tomate,14000,,",
        "2026-11-28,Sikaso,Tomate,14000,,",
        "",  # a blank line is skipped but counted, as an editor counts it
        "2026-11-28,Koutiala,Oignon,600,,",
        "2026-11-28,Koutiala,Oignon,-1.5,,",
        "2026-11-28,Koutiala,Chou,200,,",
    )
    assert [r.line for r in rows] == [2, 5, 7]
    assert errors == [
        RowError(3, 'market "Sikaso" unknown (did you mean Sikasso?)'),
        RowError(6, 'price "-1.5" must be positive'),
    ]


def test_another_price_for_the_same_observation_is_an_error_on_the_later_line():
    rows, errors = prices(
        "2026-11-28,Sikasso,Oignon,600,kg,gros",
        "2026-11-28,Sikasso,Oignon,650,kg,detail",  # retail: another observation
        "28/11/2026,sikasso,oignon,650,,",
    )
    assert [r.line for r in rows] == [2, 3]
    assert errors == [
        RowError(4, "line 2 gives another price (600) for the same crop, market, date, unit and kind")
    ]


def test_an_exact_repeat_is_not_an_error():
    rows, errors = prices("2026-11-28,Sikasso,Oignon,600,,", "28/11/2026,SIKASSO,oignon,600,kg,gros")
    assert errors == [] and len(rows) == 2 and rows[0].key == rows[1].key


def test_optional_columns_and_french_headers():
    rows, errors = prices("28/11/2026;Sévaré;Oignon;600", header="Date;Marché;Culture;Prix")
    assert errors == []
    assert rows == [PriceRow(2, TODAY, C["onion"], M["sevare"], 600, "kg", "wholesale")]
    rows, errors = prices("28/11/2026,Mopti,Oignon,600,kg,détail", header="date,marche,produit,prix,unité,type")
    assert errors == [] and (rows[0].unit, rows[0].kind) == ("kg", "retail")


def test_columns_in_any_order_and_unknown_columns_ignored():
    rows, errors = prices("Tomate,note libre,14000,Sikasso,2026-11-28", header="crop,comment,price,market,date")
    assert errors == []
    assert rows == [PriceRow(2, TODAY, C["tomato"], M["sikasso"], 14000, "basket", "wholesale")]


def test_dates_are_checked_against_the_given_day():
    assert one_price("2026-11-28,Sikasso,Tomate,1,,").observed_on == TODAY
    rows, errors = prices("2026-11-28,Sikasso,Tomate,1,,", today=TODAY - dt.timedelta(days=1))
    assert errors == [RowError(2, 'date "2026-11-28" is in the future')]


# -- the file itself --------------------------------------------------------------------------------

SAME_PRICES = [
    pytest.param("date,market,crop,price\n2026-11-28,Sévaré,Oignon,600\n", id="comma"),
    pytest.param("date;market;crop;price\n2026-11-28;Sévaré;Oignon;600\n", id="semicolon"),
    pytest.param("\ufeffdate;market;crop;price\r\n2026-11-28;Sévaré;Oignon;600\r\n", id="bom-crlf-semicolon"),
    pytest.param("\ufeffdate,market,crop,price\n2026-11-28,Sévaré,Oignon,600", id="bom-comma-no-final-newline"),
    pytest.param("\n\ndate ; market ; crop ; price\n2026-11-28 ; Sévaré ; Oignon ; 600\n\n", id="blank-lines-and-spaces"),
    pytest.param('"date","market","crop","price"\n"2026-11-28","Sévaré","Oignon","600"\n', id="quoted"),
    pytest.param("date;market;crop;price\n2026-11-28;Sévaré;Oignon;\"600\"\n", id="quoted-value"),
    pytest.param("DATE,Market,CROP,Price\n2026-11-28,Sévaré,Oignon,600\n", id="header-case"),
]


@pytest.mark.parametrize("text", SAME_PRICES)
def test_delimiter_bom_and_layout(text):
    rows, errors = parse_prices_csv(text, crops=CROPS, markets=MARKETS, today=TODAY)
    assert errors == []
    assert [(r.observed_on, r.market_id, r.crop_id, r.price) for r in rows] == [(TODAY, M["sevare"], C["onion"], 600)]


def test_the_other_delimiter_inside_values():
    # Semicolons: a comma in a value is data ("1,250" is ambiguous, so rejected).
    rows, errors = parse_prices_csv(
        "date;market;crop;price\n2026-11-28;Sikasso;Oignon;1,250\n", crops=CROPS, markets=MARKETS, today=TODAY
    )
    assert errors == [RowError(2, 'price "1,250" is ambiguous (write 1250, or 1.25 for a decimal)')]
    # Commas: an unquoted thousands comma splits the row, and says so.
    rows, errors = parse_prices_csv(
        "date,market,crop,price\n2026-11-28,Sikasso,Oignon,1,250\n", crops=CROPS, markets=MARKETS, today=TODAY
    )
    assert errors == [RowError(2, "5 values but the header has 4 columns (a ',' inside a value must be quoted)")]


FILE_ERRORS = [
    pytest.param("", "the file is empty", id="empty"),
    pytest.param("\ufeff\n  \n", "the file is empty", id="blank"),
    pytest.param("date,market,crop,price\n", "no rows after the header", id="header-only"),
    pytest.param("date,market,crop,price\n,,,\n\n", "no rows after the header", id="empty-rows-only"),
    pytest.param("date,market,price\n2026-11-28,Sikasso,600\n", "line 1: required column crop missing", id="no-crop"),
    pytest.param("date;marche;prix\n", "required column crop missing", id="french-no-crop"),
    pytest.param("day,place,crop,cost\n", "required columns date, market, price missing", id="three-missing"),
    pytest.param("2026-11-28,Sikasso,Tomate,14000\n", "required columns date, market, crop, price missing", id="no-header"),
    pytest.param("date,market,crop,price,prix\n", 'column "price" appears twice', id="duplicate-column"),
]


@pytest.mark.parametrize("text, message", FILE_ERRORS)
def test_unreadable_price_files(text, message):
    with pytest.raises(FileFormatError, match=message.replace("(", r"\(")):
        parse_prices_csv(text, crops=CROPS, markets=MARKETS, today=TODAY)


def test_unreadable_producer_file():
    with pytest.raises(FileFormatError, match="required column phone missing"):
        parse_producers_csv("name,village\nAwa,Kaboila\n", crops=CROPS, markets=MARKETS)


def test_the_example_files_are_valid():
    rows, errors = parse_prices_csv(
        (DEMO / "prices-example.csv").read_text("utf-8"), crops=CROPS, markets=MARKETS, today=TODAY
    )
    assert errors == [] and len(rows) >= 5
    rows, errors = parse_producers_csv(
        (DEMO / "producers-example.csv").read_text("utf-8"), crops=CROPS, markets=MARKETS
    )
    assert errors == [] and len(rows) >= 3 and all(r.subscriptions for r in rows)


# -- producers: parsing -----------------------------------------------------------------------------

PRODUCER_ACCEPTED = [
    pytest.param("+22370000001,,,,,,", ProducerRow(2, "+22370000001"), id="phone-only"),
    pytest.param("70 00 00 01,,,,,,", ProducerRow(2, "+22370000001"), id="phone-national"),
    pytest.param("0022370000001,,,,,,", ProducerRow(2, "+22370000001"), id="phone-00"),
    pytest.param("+223 76 12 34 56,,,,,,", ProducerRow(2, "+22376123456"), id="phone-spaced"),
    pytest.param("70000001,Awa  Traoré ,bm,Kaboïla,Sikasso,Benkadi,", ProducerRow(2, "+22370000001", "Awa Traoré", "bm", "Kaboïla", "Sikasso", "Benkadi"), id="all-fields"),
    pytest.param("70000001,,FR,,,,", ProducerRow(2, "+22370000001", language="fr"), id="language-fr-upper"),
    pytest.param("70000001,,Français,,,,", ProducerRow(2, "+22370000001", language="fr"), id="language-francais"),
    pytest.param("70000001,,bambara,,,,", ProducerRow(2, "+22370000001", language="bm"), id="language-bambara"),
    pytest.param("70000001,,Bamanankan,,,,", ProducerRow(2, "+22370000001", language="bm"), id="language-bamanankan"),
    pytest.param("70000001,,,,tombouctou,,", ProducerRow(2, "+22370000001", region="Tombouctou"), id="region-spelt-as-markets"),
    pytest.param("70000001,,,,,,tomate@sikasso;oignon@mopti", ProducerRow(2, "+22370000001", subscriptions=((C["tomato"], M["sikasso"]), (C["onion"], M["mopti"]))), id="subscriptions-semicolon"),
    pytest.param("70000001,,,,,,jaba@Sévaré | shallot@BANDIAGARA", ProducerRow(2, "+22370000001", subscriptions=((C["shallot"], M["sevare"]), (C["shallot"], M["bandiagara"]))), id="subscriptions-bar-bm-code"),
    pytest.param("70000001,,,,,,Échalote @ sevare;echalote@Sévaré;", ProducerRow(2, "+22370000001", subscriptions=((C["shallot"], M["sevare"]),)), id="subscriptions-deduplicated"),
]


@pytest.mark.parametrize("line, expected", PRODUCER_ACCEPTED)
def test_producer_row_accepted(line, expected):
    rows, errors = producers(line)
    assert errors == []
    assert rows == [expected]


PRODUCER_ERRORS = [
    pytest.param("12,,,,,,", ['phone "12": not a valid phone number'], id="phone-invalid"),
    pytest.param("abc,,,,,,", ['phone "abc": not a phone number'], id="phone-not-a-number"),
    pytest.param(",Awa,,,,,", ["phone is missing"], id="phone-missing"),
    pytest.param("70000001,,wolof,,,,", ['language "wolof" unknown (use one of: fr (français), bm (bambara))'], id="language-unknown"),
    pytest.param("70000001,,,,Sikaso,,", ['region "Sikaso" unknown (did you mean Sikasso?)'], id="region-typo"),
    pytest.param("70000001,,,,Kayes,,", ['region "Kayes" unknown'], id="region-unknown"),
    pytest.param("70000001," + "A" * 81 + ",,,,,", ["name is longer than 80 characters"], id="name-too-long"),
    pytest.param("70000001,,,,,,tomate sikasso", ['subscription "tomate sikasso" is not crop@market'], id="subscription-no-at"),
    pytest.param("70000001,,,,,,tomate@sikasso@mopti", ['subscription "tomate@sikasso@mopti" is not crop@market'], id="subscription-two-at"),
    pytest.param("70000001,,,,,,tomate@Sikaso", ['subscription "tomate@Sikaso": market "Sikaso" unknown (did you mean Sikasso?)'], id="subscription-market-typo"),
    pytest.param("70000001,,,,,,tomatte@sikasso", ['subscription "tomatte@sikasso": crop "tomatte" unknown (did you mean Tomate?)'], id="subscription-crop-typo"),
    pytest.param("70000001,,,,,,@sikasso", ['subscription "@sikasso": crop is missing'], id="subscription-crop-missing"),
    pytest.param("70000001,,,,,,oignon@mopti;mangue@paris", ['crop "mangue" unknown', 'market "paris" unknown'], id="subscription-one-of-two"),
    pytest.param("12,,klingon,,,,x", ["phone", "language", "subscription"], id="every-problem-of-a-row"),
]


@pytest.mark.parametrize("line, reasons", PRODUCER_ERRORS)
def test_producer_row_rejected(line, reasons):
    rows, errors = producers(line)
    assert rows == []
    assert [e.line for e in errors] == [2] * len(reasons)
    for error, fragment in zip(errors, reasons):
        assert fragment in error.reason


# The language column takes any configured language (console → Languages), enabled or not: its
# code, its own name or its French name, whatever the case and accents.
CONFIGURED = (*DEFAULT_LANGUAGES, Language("ff", "Fulfulde", "peul", written=False),
              Language("ses", "Koyraboro senni", "songhaï", written=False, enabled=False))
LANGUAGE_CELLS = [
    pytest.param("ff", CONFIGURED, "ff", id="code"),
    pytest.param("Fulfulde", CONFIGURED, "ff", id="own-name"),
    pytest.param("PEUL", CONFIGURED, "ff", id="french-name-upper"),
    pytest.param("Songhaï", CONFIGURED, "ses", id="french-name-accented-disabled"),
    pytest.param("songhai", CONFIGURED, "ses", id="french-name-without-accent"),
    pytest.param("koyraboro  SENNI", CONFIGURED, "ses", id="own-name-two-words"),
    pytest.param("Bamanankan", CONFIGURED, "bm", id="shipped-own-name"),
    pytest.param("french", CONFIGURED, "fr", id="english-name-of-french"),
    pytest.param("peul", DEFAULT_LANGUAGES, 'language "peul" unknown (use one of: fr (français), bm (bambara))',
                 id="not-configured"),
    pytest.param("wolof", CONFIGURED,
                 'language "wolof" unknown (use one of: fr (français), bm (bambara), ff (peul), ses (songhaï))',
                 id="unknown-names-the-configured"),
]


@pytest.mark.parametrize("cell, configured, expected", LANGUAGE_CELLS)
def test_producer_language_is_any_configured_language(cell, configured, expected):
    text = "\n".join((PRODUCER_HEADER, "70000009,,,,,,", f"70000001,,{cell},,,,")) + "\n"
    rows, errors = parse_producers_csv(text, crops=CROPS, markets=MARKETS, languages=configured)
    if expected in {lang.code for lang in configured}:
        assert errors == [] and rows[-1].language == expected
    else:
        assert [(e.line, e.reason) for e in errors] == [(3, expected)]


# alert_channel (issue 16 item 7), also under a French header; empty: unchanged.
CHANNELS = [
    pytest.param("alert_channel", "sms", "sms", id="sms"),
    pytest.param("alert_channel", "voice", "voice", id="voice"),
    pytest.param("alert_channel", "BOTH", "both", id="both-upper"),
    pytest.param("alert_channel", "Appel", "voice", id="fr-appel"),
    pytest.param("alert_channel", "voix", "voice", id="fr-voix"),
    pytest.param("alert_channel", "les deux", "both", id="fr-les-deux"),
    pytest.param("alert_channel", "SMS et appel", "both", id="fr-sms-et-appel"),
    pytest.param("canal", "appel", "voice", id="header-canal"),
    pytest.param("Alertes par", "SMS", "sms", id="header-alertes-par"),
    pytest.param("alert_channel", "", None, id="empty-unchanged"),
]


@pytest.mark.parametrize("column, value, channel", CHANNELS)
def test_producer_alert_channel_accepted(column, value, channel):
    rows, errors = producers(f"70000001;{value}", header=f"phone;{column}")
    assert errors == [] and rows == [ProducerRow(2, "+22370000001", alert_channel=channel)]


@pytest.mark.parametrize("value", ["fax", "telephone", "sms voix appel", "2"])
def test_producer_alert_channel_refused_with_its_line(value):
    rows, errors = producers("70000001;appel", f"70000002;{value}", header="phone;alert_channel")
    assert [r.phone for r in rows] == ["+22370000001"]
    assert errors == [RowError(3, f'alert_channel "{value}" unknown (use sms, voice or both; appel, voix, les deux)')]


def test_a_phone_twice_is_an_error_on_the_later_line():
    rows, errors = producers(
        "+22370000001,Awa,,,,,",
        "76123456,Moussa,,,,,",
        "70 00 00 01,Awa T.,,,,,",  # the same number, written otherwise
    )
    assert [r.line for r in rows] == [2, 3]
    assert errors == [RowError(4, "phone +22370000001 is already on line 2")]


def test_a_quoted_subscription_list_in_a_semicolon_file():
    rows, errors = parse_producers_csv(
        'phone;subscriptions\n70000001;"tomate@sikasso;oignon@mopti"\n', crops=CROPS, markets=MARKETS
    )
    assert errors == []
    assert rows[0].subscriptions == ((C["tomato"], M["sikasso"]), (C["onion"], M["mopti"]))


# -- the commands, end to end -----------------------------------------------------------------------


class FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW.astimezone(tz) if tz else NOW.replace(tzinfo=None)


@pytest.fixture
def cli_run(db_url, monkeypatch):
    """`gateway ...` on the seeded test database, its clock at the seeded day (2026-11-28)."""
    monkeypatch.setenv("GATEWAY_DATABASE_URL", db_url)
    frozen = types.SimpleNamespace(
        datetime=FrozenDatetime, date=dt.date, time=dt.time, timedelta=dt.timedelta, timezone=dt.timezone
    )
    monkeypatch.setattr(cli, "dt", frozen)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli.app, [str(a) for a in args])
        assert result.exit_code == code, result.output + repr(result.exception)
        return result.output

    return invoke


@pytest.fixture
def database(db_url):
    database = Database.from_settings(Settings(database_url=db_url))
    yield database
    database.dispose()


def count(database: Database, model: type, *where) -> int:
    with database.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def ids(database: Database) -> tuple[dict[str, int], dict[str, int]]:
    with database.unit_of_work() as session:
        crops = {c.code: c.id for c in session.exec(select(models.Crop)).all()}
        markets = {m.code: m.id for m in session.exec(select(models.Market)).all()}
    return crops, markets


def alerts(database: Database) -> list[models.Broadcast]:
    with database.unit_of_work() as session:
        return session.exec(select(models.Broadcast).where(models.Broadcast.kind == "alert")).all()


def write(tmp_path: Path, name: str, *lines: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


GOOD_PRICES = (
    "date;market;crop;price;unit;kind",
    "21/11/2026;Sikasso;Tomate;13 111;panier;gros",
    "28/11/2026;Sikasso;Tomate;14 111;panier;gros",
    "2026-11-28;Sévaré;jaba;477;kg;gros",
    "2026-11-28;SEVARE;Oignon;701;kg;détail",
)


@pytest.mark.db
def test_a_bad_row_imports_nothing(cli_run, database, tmp_path):
    path = write(tmp_path, "prices.csv", *GOOD_PRICES, "28/11/2026;Sikaso;Oignon;600;;", "29/11/2026;Mopti;Oignon;600;;")
    before = count(database, models.PriceObservation)
    out = cli_run("import-prices", path, code=1)
    assert 'prices.csv: line 6: market "Sikaso" unknown (did you mean Sikasso?)' in out
    assert 'prices.csv: line 7: date "29/11/2026" is in the future' in out
    assert "2 of 6 rows have errors: nothing imported" in out
    assert count(database, models.PriceObservation) == before
    assert alerts(database) == []


@pytest.mark.db
def test_skip_errors_imports_the_good_rows(cli_run, database, tmp_path):
    path = write(tmp_path, "prices.csv", *GOOD_PRICES, "28/11/2026;Sikaso;Oignon;600;;")
    before = count(database, models.PriceObservation)
    out = cli_run("import-prices", path, "--skip-errors")
    assert 'line 6: market "Sikaso" unknown' in out
    assert "4 prices imported, 0 already present, 1 rows skipped" in out
    assert "published new prices for 3 (crop, market) pairs" in out
    assert count(database, models.PriceObservation) == before + 4
    crops, markets = ids(database)
    with database.unit_of_work() as session:
        row = session.exec(
            select(models.PriceObservation).where(models.PriceObservation.price == 701)
        ).one()
    assert (row.crop_id, row.market_id, row.observed_on) == (crops["onion"], markets["sevare"], TODAY)
    assert (row.unit, row.kind, row.status, row.source) == ("kg", "retail", "published", "import:prices.csv")


@pytest.mark.db
def test_import_queues_alerts_for_the_newest_prices(cli_run, database, tmp_path):
    path = write(
        tmp_path, "prices.csv", *GOOD_PRICES,
        "2026-11-14;Mopti;Chou;187;;",  # older than Mopti's published cabbage: history, not news
    )
    out = cli_run("import-prices", path)
    [broadcast] = alerts(database)
    assert f"alerts queued for 3 of them (broadcast #{broadcast.id})" in out
    assert "published new prices for 4 (crop, market) pairs" in out
    crops, markets = ids(database)
    expected = sorted([
        [crops["tomato"], markets["sikasso"]],
        [crops["shallot"], markets["sevare"]],
        [crops["onion"], markets["sevare"]],
    ])
    assert (broadcast.kind, broadcast.status) == ("alert", "pending")
    assert broadcast.audience == {"pairs": expected}
    assert "prices.csv" in broadcast.title


@pytest.mark.db
def test_no_alerts(cli_run, database, tmp_path):
    path = write(tmp_path, "prices.csv", *GOOD_PRICES)
    out = cli_run("import-prices", path, "--no-alerts")
    assert "4 prices imported" in out and "no alerts (--no-alerts)" in out
    assert alerts(database) == []


@pytest.mark.db
def test_importing_the_same_file_twice_changes_nothing(cli_run, database, tmp_path):
    path = write(tmp_path, "prices.csv", *GOOD_PRICES, "28/11/2026;Sikasso;Tomate;14111;basket;wholesale")
    before = count(database, models.PriceObservation)
    out = cli_run("import-prices", path)
    assert "4 prices imported, 1 already present" in out
    out = cli_run("import-prices", path)
    assert "0 prices imported, 5 already present, 0 rows skipped" in out
    assert "published new prices for 0 (crop, market) pairs; no alerts" in out
    assert count(database, models.PriceObservation) == before + 4
    assert len(alerts(database)) == 1


@pytest.mark.db
def test_a_seeded_price_is_already_present(cli_run, database, tmp_path):
    crops, markets = ids(database)
    with database.unit_of_work() as session:
        seeded = session.exec(
            select(models.PriceObservation).where(
                models.PriceObservation.crop_id == crops["tomato"],
                models.PriceObservation.market_id == markets["sikasso"],
                models.PriceObservation.observed_on == TODAY,
            )
        ).one()
    path = write(tmp_path, "p.csv", "date,market,crop,price", f"2026-11-28,sikasso,tomato,{seeded.price}")
    out = cli_run("import-prices", path)
    assert "0 prices imported, 1 already present" in out
    assert alerts(database) == []


@pytest.mark.db
def test_import_prices_directly_backfill_is_not_news(database):
    crops, markets = ids(database)
    old = TODAY - dt.timedelta(weeks=3)
    rows = [
        PriceRow(2, old, crops["okra"], markets["djenne"], 333, "kg", "wholesale"),
        PriceRow(3, TODAY, crops["lettuce"], markets["tombouctou"], 444, "kg", "wholesale"),  # never priced
    ]
    with database.unit_of_work() as session:
        report = import_prices(session, rows, now=NOW, source="import:x.csv")
    assert (report.imported, report.pairs, report.alert_pairs) == (2, 2, 1)
    [broadcast] = alerts(database)
    assert broadcast.id == report.broadcast_id
    assert broadcast.audience == {"pairs": [[crops["lettuce"], markets["tombouctou"]]]}


FILE_FAILURES = [
    pytest.param(b"", "prices.csv: the file is empty", id="empty"),
    pytest.param(b"date,market,price\n2026-11-28,Sikasso,600\n", "required column crop missing", id="missing-column"),
    pytest.param("date;market;crop;price\n28/11/2026;Ségou;Oignon;600\n".encode("cp1252"), "not UTF-8", id="not-utf8"),
]


@pytest.mark.db
@pytest.mark.parametrize("content, message", FILE_FAILURES)
def test_unreadable_files_fail_even_with_skip_errors(cli_run, tmp_path, content, message):
    path = tmp_path / "prices.csv"
    path.write_bytes(content)
    assert message in cli_run("import-prices", path, "--skip-errors", code=1)


@pytest.mark.db
def test_import_producers_creates_updates_and_subscribes(cli_run, database, tmp_path):
    first = write(
        tmp_path, "producers.csv", PRODUCER_HEADER,
        "+22370112233,Awa Traoré,bm,Kaboïla,Sikasso,Benkadi,tomate@sikasso;oignon@sikasso",
        "76445566,Moussa Coulibaly,français,,sikasso,,tomate@koutiala",
    )
    out = cli_run("import-producers", first)
    assert "2 rows read (2 new, 0 updated, 0 already up to date), 0 rows skipped" in out
    assert "subscriptions: 3 added, 0 already present" in out

    # Same file again: nothing changes.
    out = cli_run("import-producers", first)
    assert "(0 new, 0 updated, 2 already up to date)" in out and "0 added, 3 already present" in out

    # Empty fields leave what is stored; subscriptions are only ever added.
    second = write(
        tmp_path, "update.csv", "phone;language;cluster;subscriptions",
        "70 11 22 33;fr;;jaba@mopti",
        "+22376445566;;;",
    )
    out = cli_run("import-producers", second)
    assert "(0 new, 1 updated, 1 already up to date)" in out and "1 added, 0 already present" in out
    crops, markets = ids(database)
    with database.unit_of_work() as session:
        awa = session.exec(select(models.Producer).where(models.Producer.phone == "+22370112233")).one()
        pairs = set(
            session.exec(
                select(models.Subscription.crop_id, models.Subscription.market_id).where(
                    models.Subscription.producer_id == awa.id
                )
            ).all()
        )
    assert (awa.name, awa.language, awa.village, awa.region, awa.cluster) == ("Awa Traoré", "fr", "Kaboïla", "Sikasso", "Benkadi")
    assert (awa.role, awa.opted_out) == ("producer", False)
    assert pairs == {
        (crops["tomato"], markets["sikasso"]), (crops["onion"], markets["sikasso"]), (crops["shallot"], markets["mopti"]),
    }
    assert count(database, models.Producer) == 2
    assert count(database, models.Subscription) == 4


@pytest.mark.db
def test_import_reads_the_language_table_once_for_the_whole_file(cli_run, database, tmp_path):
    add_languages(database, FULFULDE, SONGHOY)
    lines = [f"+223700001{n:02d},,{'Peul' if n % 2 else 'songhaï'},,,," for n in range(40)]
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        out = cli_run("import-producers", write(tmp_path, "team.csv", PRODUCER_HEADER, *lines, "+22370000200,,wolof,,,,"),
                      "--skip-errors")
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert 'line 42: language "wolof" unknown (use one of: fr (français), bm (bambara), ff (peul), ses (songhaï))' in out
    assert "40 rows read (40 new" in out
    assert sum(1 for s in statements if re.search(r"\bFROM language\b", s)) == 1
    assert count(database, models.Producer, models.Producer.language == "ff") == 20
    assert count(database, models.Producer, models.Producer.language == "ses") == 20


@pytest.mark.db
def test_an_existing_producer_keeps_its_opt_out(cli_run, database, tmp_path):
    with database.unit_of_work() as session:
        producer = ensure_producer(session, "+22370000009")
        producer.opted_out = True
        producer.language = "bm"
    path = write(tmp_path, "p.csv", "phone,name,subscriptions", "70000009,Sali,tomate@sikasso")
    assert "(0 new, 1 updated, 0 already up to date)" in cli_run("import-producers", path)
    with database.unit_of_work() as session:
        producer = session.exec(select(models.Producer).where(models.Producer.phone == "+22370000009")).one()
    assert (producer.name, producer.language, producer.opted_out) == ("Sali", "bm", True)


@pytest.mark.db
def test_producer_errors_import_nothing_unless_skipped(cli_run, database, tmp_path):
    path = write(
        tmp_path, "producers.csv", PRODUCER_HEADER,
        "+22370000001,Awa,,,,,tomate@sikasso",
        "+22370000002,Moussa,wolof,,,,",
        "70 00 00 01,Awa again,,,,,",
        "+22370000003,Sali,,,,,tomate@Sikaso",
    )
    out = cli_run("import-producers", path, code=1)
    assert 'producers.csv: line 3: language "wolof" unknown (use one of: fr (français), bm (bambara))' in out
    assert "producers.csv: line 4: phone +22370000001 is already on line 2" in out
    assert 'line 5: subscription "tomate@Sikaso": market "Sikaso" unknown (did you mean Sikasso?)' in out
    assert "3 of 4 rows have errors: nothing imported" in out
    assert count(database, models.Producer) == 0 and count(database, models.Subscription) == 0

    out = cli_run("import-producers", path, "--skip-errors")
    assert "1 row read (1 new, 0 updated, 0 already up to date), 3 rows skipped" in out
    assert count(database, models.Producer) == 1 and count(database, models.Subscription) == 1


@pytest.mark.db
def test_import_producers_sets_the_alert_channel_and_a_bad_one_changes_nothing(cli_run, database, tmp_path):
    with database.unit_of_work() as session:
        ensure_producer(session, "+22370000009").alert_channel = "voice"
    first = write(tmp_path, "p.csv", "phone;name;alert_channel", "70000001;Awa;appel", "70000002;Moussa;",
                  "70000009;Sali;")
    assert "(2 new, 1 updated, 0 already up to date)" in cli_run("import-producers", first)
    second = write(tmp_path, "q.csv", "phone;name;alert_channel", "70000001;Awa T.;fax", "70000009;;les deux")
    out = cli_run("import-producers", second, code=1)
    assert 'q.csv: line 2: alert_channel "fax" unknown' in out and "nothing imported" in out
    out = cli_run("import-producers", second, "--skip-errors")
    assert "1 row read (0 new, 1 updated, 0 already up to date)" in out
    with database.unit_of_work() as session:
        stored = {p.phone: (p.name, p.alert_channel) for p in session.exec(select(models.Producer)).all()}
    assert stored == {"+22370000001": ("Awa", "voice"), "+22370000002": ("Moussa", "sms"),
                      "+22370000009": ("Sali", "both")}


@pytest.mark.db
def test_the_example_files_import(cli_run, database, tmp_path):
    out = cli_run("import-producers", DEMO / "producers-example.csv")
    assert "0 rows skipped" in out and "0 already present" in out
    out = cli_run("import-prices", DEMO / "prices-example.csv")
    assert "0 rows skipped" in out and "broadcast #" in out
    assert count(database, models.PriceObservation, models.PriceObservation.source == "import:prices-example.csv") > 0


@pytest.mark.db
def test_issue17_producer_import_is_set_based_and_idempotent_across_chunks(database):
    """More rows than one statement takes (imports.IMPORT_CHUNK): every producer and subscription
    once, a second pass changes nothing, a third with one changed name updates exactly one."""
    from sqlalchemy import event

    crops, markets = ids(database)
    pairs = [(c, m) for c in list(crops.values())[:3] for m in list(markets.values())[:2]]
    rows = [imports.ProducerRow(n, f"+2237{n:07d}", name=f"P{n}", language="bm", subscriptions=(pairs[n % len(pairs)],),
                                role="enumerator" if n == 7 else None)
            for n in range(1, 2 * imports.IMPORT_CHUNK + 501)]
    statements = []
    with database.unit_of_work() as session:
        event.listen(session.connection(), "before_cursor_execute", lambda *a: statements.append(1))
        first = imports.import_producers(session, rows, now=NOW)
    assert (first.created, first.updated, first.unchanged, first.subscriptions_added, first.roles_changed) == (
        len(rows), 0, 0, len(rows), 1)
    assert len(statements) < 60, f"{len(statements)} statements for {len(rows)} rows"
    with database.unit_of_work() as session:
        again = imports.import_producers(session, rows, now=NOW)
    assert (again.created, again.updated, again.unchanged, again.subscriptions_added, again.subscriptions_present) == (
        0, 0, len(rows), 0, len(rows))
    rows[100] = imports.ProducerRow(101, rows[100].phone, name="Renamed")
    rows[200] = imports.ProducerRow(201, rows[200].phone, alert_channel="voice")
    statements.clear()
    with database.unit_of_work() as session:
        event.listen(session.connection(), "before_cursor_execute", lambda *a: statements.append(1))
        third = imports.import_producers(session, rows, now=NOW)
        assert (third.created, third.updated) == (0, 2)
        assert len(statements) < 30, f"{len(statements)} statements for {len(rows)} rows"  # none per row
        stored = session.exec(select(models.Producer).where(models.Producer.phone == rows[100].phone)).one()
        assert (stored.name, stored.language, stored.alert_channel) == ("Renamed", "bm", "sms")
        stored = session.exec(select(models.Producer).where(models.Producer.phone == rows[200].phone)).one()
        assert (stored.name, stored.alert_channel) == ("P201", "voice")
        assert session.exec(select(func.count()).select_from(models.Producer)).one() >= len(rows)
