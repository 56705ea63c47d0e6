"""Catalogs and USSD rendering."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menus.engine import FLASH_WIDTH
from messages import Catalog, default_catalog, placeholders, to_ussd
from messages.catalog import LANGUAGES, load_file_catalog
from messages.formatting import long_date, money, short_date, signed_percent

CATALOGS = {lang: load_file_catalog(lang) for lang in LANGUAGES}

# Lines shown in place of a screen's title for one hop (errors and confirmations).
FLASH_KEYS = [
    "error.invalid_choice", "error.too_long", "error.no_more", "error.quantity", "error.text",
    "lang.welcome", "lang.changed", "alerts.subscribed", "alerts.unsubscribed", "alerts.stopped",
    "profile.saved", "offer.cancelled",
]


def test_languages_have_the_same_keys():
    assert set(CATALOGS["fr"]) == set(CATALOGS["bm"])


@pytest.mark.parametrize("key", sorted(CATALOGS["fr"]))
def test_same_placeholders_in_both_languages(key):
    assert placeholders(CATALOGS["fr"][key]) == placeholders(CATALOGS["bm"][key])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_empty_text(lang):
    assert [k for k, v in CATALOGS[lang].items() if not v.strip()] == []


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("key", FLASH_KEYS)
def test_flash_lines_fit_their_slot(lang, key):
    assert len(to_ussd(CATALOGS[lang][key])) <= FLASH_WIDTH


def test_bambara_is_written_in_proper_orthography():
    """Staff and catalogs write ɛ ɔ ɲ ŋ; the renderers fold them per channel."""
    text = " ".join(CATALOGS["bm"].values())
    assert {"ɛ", "ɔ", "ɲ"} <= set(text)


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("sɔngɔ", "songo", id="open-o"),
        pytest.param("Ɛ ɛ Ɔ ɔ", "E e O o", id="capitals"),
        pytest.param("ɲɛ Ɲɛ", "nye Nye", id="enye-is-ny"),
        pytest.param("ŋaniya Ŋ", "nganiya Ng", id="eng-is-ng"),
        pytest.param("é è ê ë à â ç ù û î ô", "e e e e a a c u u i o", id="french-accents"),
        pytest.param("œuf Œ", "oeuf OE", id="ligature"),
        pytest.param("« Bonjour »", "<< Bonjour >>", id="guillemets"),
        pytest.param("l’eau “ok” …", "l'eau \"ok\" ...", id="typographic"),
        pytest.param("12\u202f500\u00a0F", "12 500 F", id="no-break-spaces"),
        pytest.param("a\tb  c", "a b c", id="spaces-collapse"),
        pytest.param("a\r\nb\rc", "a\nb\nc", id="line-ends"),
        pytest.param("x\x00\x07y", "xy", id="control-characters"),
        pytest.param("mɔ̀gɔ́", "mogo", id="tone-marks"),
        pytest.param("plain ASCII 123", "plain ASCII 123", id="ascii-unchanged"),
    ],
)
def test_to_ussd(raw, expected):
    assert to_ussd(raw) == expected


@given(st.text())
def test_to_ussd_is_printable_ascii_and_idempotent(text):
    folded = to_ussd(text)
    assert all(c == "\n" or 32 <= ord(c) < 127 for c in folded)
    assert to_ussd(folded) == folded


@pytest.mark.parametrize(
    "value, expected",
    [(350, "350"), (12500, "12 500"), (1234567, "1 234 567"), (99.6, "100")],
)
def test_money_groups_thousands_with_spaces(value, expected):
    assert to_ussd(money(value)) == expected


@pytest.mark.parametrize("value, expected", [(8, "+8%"), (-12, "-12%"), (0, "0%"), (1500, "+1 500%")])
def test_signed_percent(value, expected):
    assert to_ussd(signed_percent(value)) == expected


def test_dates():
    assert short_date(dt.date(2026, 3, 7)) == "07/03"
    assert long_date(dt.date(2026, 3, 7)) == "07/03/2026"


def test_overrides_layer_on_top_and_fall_back_when_broken():
    base = default_catalog()
    catalog = base.with_overrides({("bm", "main.title"): "Sugu kura", ("fr", "prices.none"): "Rien pour {plante}"})
    assert catalog.text("bm", "main.title") == "Sugu kura"
    assert catalog.text("fr", "main.title") == base.text("fr", "main.title")
    # An override naming a placeholder the code does not give: the file's text is used.
    assert catalog.text("fr", "prices.none", crop="Tomate") == "Pas encore de prix pour Tomate."


def test_missing_bambara_falls_back_to_french():
    catalog = Catalog({"fr": {"k": "bonjour {x}"}, "bm": {}})
    assert catalog.text("bm", "k", x="Awa") == "bonjour Awa"
