"""SMS encoding, segment arithmetic and the GSM-7 folding policy, against known values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messages.catalog import load_file_catalog
from messages.sms import (
    GSM7_BASIC,
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION,
    SmsEncoding,
    fold_for_sms,
    measure,
    render_sms,
    septets,
)

EMOJI = "\N{GRINNING FACE}"  # outside the BMP: a surrogate pair in UCS-2


def test_basic_table_is_the_standard_one():
    assert len(GSM7_BASIC_TABLE) == 128
    assert GSM7_BASIC_TABLE[0x09] == "Ç"
    assert GSM7_BASIC_TABLE[0x1B] == "\x1b"  # the escape, not a character
    assert len(GSM7_BASIC) == 127
    assert {GSM7_BASIC_TABLE[i] for i in (0x00, 0x0A, 0x0D, 0x20, 0x40, 0x5B, 0x60, 0x7F)} == {
        "@", "\n", "\r", " ", "¡", "Ä", "¿", "à",
    }
    assert GSM7_EXTENSION == set("\f^{}\\[~]|€")
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("char", list("éèàùìòÉÇäöñü@£$¥ΔΩß¤§¡¿\n\r"))
def test_gsm7_basic_characters_cost_one_septet(char):
    assert septets(char) == 1


@pytest.mark.parametrize("char", list("^{}\\[~]|€\f"))
def test_extension_characters_cost_two_septets(char):
    assert septets(char) == 2


@pytest.mark.parametrize(
    "char", list("çâêîôûëïœÈÒ’‘“”«»…–—\u00a0\u202f\u2009\tɛɔɲŋƐƆƝŊ`") + [EMOJI, "中"]
)
def test_characters_outside_gsm7(char):
    assert septets(char) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("", SmsEncoding("GSM-7", 0, 1, 0), id="empty-is-still-one-sms"),
        pytest.param("a" * 160, SmsEncoding("GSM-7", 160, 1, 160), id="gsm-160"),
        pytest.param("a" * 161, SmsEncoding("GSM-7", 161, 2, 161), id="gsm-161"),
        pytest.param("a" * 306, SmsEncoding("GSM-7", 306, 2, 306), id="gsm-306"),
        pytest.param("a" * 307, SmsEncoding("GSM-7", 307, 3, 307), id="gsm-307"),
        pytest.param("a" * 459, SmsEncoding("GSM-7", 459, 3, 459), id="gsm-459"),
        pytest.param("é" * 160, SmsEncoding("GSM-7", 160, 1, 160), id="gsm-accents"),
        pytest.param("€" * 80, SmsEncoding("GSM-7", 160, 1, 80), id="euro-80-is-160-septets"),
        pytest.param("€" * 81, SmsEncoding("GSM-7", 162, 2, 81), id="euro-81"),
        pytest.param("a" * 159 + "€", SmsEncoding("GSM-7", 161, 2, 160), id="euro-last-overflows"),
        # 152 + € would be 154 > 153: the € opens part 2 (2 + 151 = 153), the last "a" part 3,
        # where ceil(306 / 153) would say 2.
        pytest.param(
            "a" * 152 + "€" + "a" * 152, SmsEncoding("GSM-7", 306, 3, 305), id="euro-straddles-153"
        ),
        pytest.param(
            "a" * 151 + "€" + "a" * 153, SmsEncoding("GSM-7", 306, 2, 305), id="euro-fits-153"
        ),
        pytest.param("ç" * 70, SmsEncoding("UCS-2", 70, 1, 70), id="ucs2-70"),
        pytest.param("ç" * 71, SmsEncoding("UCS-2", 71, 2, 71), id="ucs2-71"),
        pytest.param("ç" * 134, SmsEncoding("UCS-2", 134, 2, 134), id="ucs2-134"),
        pytest.param("ç" * 135, SmsEncoding("UCS-2", 135, 3, 135), id="ucs2-135"),
        pytest.param("a" * 99 + "ç", SmsEncoding("UCS-2", 100, 2, 100), id="one-c-cedilla"),
        pytest.param("a" * 99 + "ɛ", SmsEncoding("UCS-2", 100, 2, 100), id="one-open-e"),
        pytest.param("a" * 99 + "€" + "ɛ", SmsEncoding("UCS-2", 101, 2, 101), id="euro-in-ucs2"),
        pytest.param(EMOJI, SmsEncoding("UCS-2", 2, 1, 1), id="emoji-two-units"),
        pytest.param(EMOJI * 35, SmsEncoding("UCS-2", 70, 1, 35), id="emoji-35"),
        pytest.param(EMOJI * 36, SmsEncoding("UCS-2", 72, 2, 36), id="emoji-36"),
        # 66 + 2 would be 68 > 67: the emoji opens part 2 (2 + 65 = 67), the last "ç" part 3.
        pytest.param(
            "ç" * 66 + EMOJI + "ç" * 66, SmsEncoding("UCS-2", 134, 3, 133), id="emoji-straddles-67"
        ),
        pytest.param(
            "ç" * 65 + EMOJI + "ç" * 67, SmsEncoding("UCS-2", 134, 2, 133), id="emoji-fits-67"
        ),
    ],
)
def test_measure(text, expected):
    assert measure(text) == expected


@pytest.mark.parametrize(
    "text, language, expected",
    [
        pytest.param("sɔngɔ", "bm", "sòngò", id="open-o"),
        pytest.param("ɲɛ", "bm", "nyè", id="palatal-n-open-e"),
        pytest.param("ŋ", "bm", "ng", id="eng"),
        pytest.param("Ɛ", "bm", "E", id="capital-open-e-not-E-grave"),
        pytest.param("Ɔ Ɲɛ Ŋ", "bm", "O Nyè Ng", id="capitals"),
        pytest.param("Sugu sɔngɔw", "bm", "Sugu sòngòw", id="catalog-line"),
        pytest.param("sɔ̀ngɔ́", "bm", "sòngò", id="tone-marks-dropped"),
        pytest.param("á ó í ú", "bm", "a o i u", id="acute-tones-dropped"),
        pytest.param("à è ù ì ò é É Ç", "fr", "à è ù ì ò é É Ç", id="gsm7-accents-kept"),
        pytest.param("e\u0301te\u0300", "fr", "étè", id="decomposed-accents-composed"),
        pytest.param("ça", "fr", "ca", id="c-cedilla"),
        pytest.param("Français", "bm", "Francais", id="french-word-in-bambara"),
        pytest.param("fenêtre août maïs Noël", "fr", "fenetre aout mais Noel", id="circumflex"),
        pytest.param("œuf Œuvre", "fr", "oeuf OEuvre", id="oe-ligature"),
        pytest.param("À Â È Ê Ë Î Ï Ô Ù Û", "fr", "A A E E E I I O U U", id="capitals-fr"),
        pytest.param(
            "Prix: tomate 350F — hausse «forte» …",
            "fr",
            'Prix: tomate 350F - hausse "forte" ...',
            id="typography",
        ),
        pytest.param(
            "l’offre « 1\u202f000\u00a0F » – “ok”",
            "fr",
            "l'offre \" 1 000 F \" - \"ok\"",
            id="quotes-and-no-break-spaces",
        ),
        pytest.param("prix {price} € [x]", "fr", "prix {price} € [x]", id="extension-kept"),
        pytest.param("sɔngɔ " + EMOJI, "bm", "sɔngɔ " + EMOJI, id="emoji-keeps-proper-letters"),
        pytest.param("ça 中文", "fr", "ça 中文", id="chinese-keeps-text"),
        pytest.param("Kɔmitɛrɛ", "fr", "Kòmitèrè", id="bambara-name-in-french-text"),
        pytest.param("", "bm", "", id="empty"),
    ],
)
def test_fold_for_sms(text, language, expected):
    folded = fold_for_sms(text, language)
    assert folded == expected
    if folded != text:
        assert measure(folded).encoding == "GSM-7"


def test_folding_saves_segments():
    alert = "Sɔngɔ kunnafoni: " + "tamati sɔngɔ ka bon sisan, " * 5
    assert measure(alert).segments == 3
    assert measure(fold_for_sms(alert, "bm")).segments == 1


@pytest.mark.parametrize(
    "text, fold, expected",
    [
        pytest.param("  sɔngɔ\n", True, "sòngò", id="strip-and-fold"),
        pytest.param("  sɔngɔ\n", False, "sɔngɔ", id="no-fold-keeps-letters"),
        pytest.param("\u00a0«ça»\u202f", False, "«ça»", id="no-fold-keeps-typography"),
        pytest.param("\u00a0«ça»\u202f", True, '"ca"', id="fold-typography"),
        pytest.param("a\n\nb", True, "a\n\nb", id="inner-newlines-kept"),
    ],
)
def test_render_sms(text, fold, expected):
    assert render_sms(text, "bm", fold=fold) == expected


BM_CATALOG = load_file_catalog("bm")


@pytest.mark.parametrize("key", sorted(BM_CATALOG))
def test_bambara_catalog_folds_to_gsm7(key):
    assert measure(fold_for_sms(BM_CATALOG[key], "bm")).encoding == "GSM-7"


@given(st.text(), st.sampled_from(["fr", "bm"]))
def test_measure_and_fold_properties(text, language):
    result = measure(text)
    assert result.segments >= 1
    assert result.characters == len(text)
    assert (result.encoding == "GSM-7") == (septets(text) is not None)
    folded = fold_for_sms(text, language)
    assert fold_for_sms(folded, language) == folded
    assert folded == text or measure(folded).encoding == "GSM-7"


@given(st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION)))
def test_gsm7_segments_bounds(text):
    result = measure(text)
    assert result.encoding == "GSM-7"
    assert result.units == septets(text)
    if result.units <= 160:
        assert result.segments == 1
    else:
        # Packing wastes at most one septet per part boundary.
        assert -(-result.units // 153) <= result.segments <= -(-result.units // 152)
