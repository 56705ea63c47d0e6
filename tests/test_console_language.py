"""The console speaks French by default: every template text goes through the staff catalog, every
text has its French, numbers, dates and plurals follow the language (issue 15)."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from messages import staff as staff_text

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "gateway" / "admin" / "templates").glob("*.html"))
CONSOLE_CODE = sorted((ROOT / "gateway" / "admin").glob("*.py"))

# Words that are the same in every language (names, units, protocol words).
SAME_IN_EVERY_LANGUAGE = {
    "Sugu", "SMS", "USSD", "CSV", "API", "F", "FCFA", "XOF", "kg", "ID", "OK", "HDX", "JSON", "E.164",
}

_JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
_CODE_BLOCKS = re.compile(r"<(script|style)\b.*?</\1>|<!--.*?-->", re.S | re.I)
_TAG = re.compile(r"<[^>]*>", re.S)
_SHOWN_ATTRIBUTES = re.compile(r"""\b(title|placeholder|aria-label|alt)\s*=\s*("[^"]*"|'[^']*')""", re.I)
_ENTITY = re.compile(r"&#?\w+;")


def untranslated(source: str) -> list[str]:
    """Text a template shows that does not go through _() / _n() / word() / a filter."""
    found = []
    for match in _SHOWN_ATTRIBUTES.finditer(_CODE_BLOCKS.sub(" ", source)):
        value = _JINJA.sub(" ", match.group(2)[1:-1])
        found += [f'{match.group(1)}="{w}"' for w in re.findall(r"[A-Za-zÀ-ÿ]{2,}", value) if w not in SAME_IN_EVERY_LANGUAGE]
    text = _TAG.sub(" ", _JINJA.sub(" ", _CODE_BLOCKS.sub(" ", source)))
    text = _ENTITY.sub(" ", text)
    found += [w for w in re.findall(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’]+", text) if w not in SAME_IN_EVERY_LANGUAGE]
    return found


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.name for t in TEMPLATES])
def test_template_shows_no_untranslated_string(template):
    words = untranslated(template.read_text(encoding="utf-8"))
    assert not words, f"{template.name} shows text outside _(): {sorted(set(words))[:15]}"


def test_the_untranslated_string_check_can_fail():
    assert untranslated('<h1>Buyer demand</h1><p title="Open it">{{ _("x") }}</p>') == ['title="Open"', 'title="it"', "Buyer", "demand"]
    assert untranslated('<h1>{{ _("Buyer demand") }}</h1>{# a note #}<script>let a = "b";</script>') == []


# -- every text has its French ------------------------------------------------------------------------

_CALL = re.compile(r"""\b_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_PLURAL = re.compile(r"""\b_n\(\s*[^,]+,\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
# Python functions whose first text argument is a console text (English, translated when shown).
TEXT_FUNCTIONS = {"flash": 1, "tr": 1, "tn": 2}


def template_texts() -> dict[str, set[str]]:
    texts: dict[str, set[str]] = {}
    for template in TEMPLATES:
        source = template.read_text(encoding="utf-8")
        for literal in _CALL.findall(source):
            texts.setdefault(ast.literal_eval(literal), set()).add(template.name)
        for one, _other in _PLURAL.findall(source):
            texts.setdefault(ast.literal_eval(one), set()).add(template.name)
    return texts


def code_texts() -> tuple[dict[str, set[str]], list[str]]:
    """Texts passed to flash(request, "..."), tr(request, "...") and tn(request, n, "...", "...")
    in the console's code, and the calls that pass something else than a literal (an f-string
    cannot be translated)."""
    texts: dict[str, set[str]] = {}
    problems = []
    for path in CONSOLE_CODE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TEXT_FUNCTIONS):
                continue
            index = TEXT_FUNCTIONS[node.func.id]
            if len(node.args) <= index:
                continue
            arg = node.args[index]
            where = f"{path.name}:{node.lineno}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                texts.setdefault(arg.value, set()).add(where)
            elif isinstance(arg, ast.JoinedStr):
                problems.append(f"{where}: {node.func.id}() with an f-string; pass the values as keywords")
    return texts, problems


def test_console_code_passes_translatable_texts():
    _, problems = code_texts()
    assert not problems, "\n".join(problems)


def test_every_console_text_has_its_french():
    french = staff_text.texts("fr")
    texts = template_texts()
    for text, where in code_texts()[0].items():
        texts.setdefault(text, set()).update(where)
    missing = {text: sorted(where) for text, where in texts.items() if text not in french}
    assert not missing, f"{len(missing)} texts without French, e.g.: " + "; ".join(
        f"{t!r} ({', '.join(w[:2])})" for t, w in list(missing.items())[:12]
    )


def _names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_french_texts_keep_the_placeholders_of_the_english():
    wrong = []
    for english, french in staff_text.texts("fr").items():
        forms = french.values() if isinstance(french, dict) else [french]
        for form in forms:
            # A plural form may leave out {n} ("un seul"), never invent a placeholder.
            if _names(form) - _names(english) - {"n"}:
                wrong.append(f"{english!r} -> {form!r}")
    assert not wrong, "\n".join(wrong[:20])


def test_plural_entries_have_the_forms_french_needs():
    for english, french in staff_text.texts("fr").items():
        if isinstance(french, dict):
            assert {"one", "other"} <= set(french), english


def test_every_word_has_both_languages():
    for kind, codes in staff_text.words().items():
        for code, entry in codes.items():
            assert set(entry) >= set(staff_text.CONSOLE_LANGUAGES), f"{kind}.{code}"


# -- numbers, dates, plurals (Babel) ---------------------------------------------------------------------

NNBSP = "\u202f"


@pytest.mark.parametrize(
    "language,call,expected",
    [
        ("fr", lambda: staff_text.number(14000, "fr"), f"14{NNBSP}000"),
        ("en", lambda: staff_text.number(14000, "en"), "14,000"),
        ("fr", lambda: staff_text.date(__import__("datetime").date(2026, 11, 28), "fr"), "28/11/2026"),
        ("en", lambda: staff_text.date(__import__("datetime").date(2026, 11, 28), "en"), "28/11/2026"),
        ("fr", lambda: staff_text.date(__import__("datetime").date(2026, 11, 28), "fr", short=True), "28 nov."),
        ("fr", lambda: staff_text.ngettext("fr", 0, "{n} offer", "{n} offers"), "0 offre"),
        ("fr", lambda: staff_text.ngettext("fr", 1, "{n} offer", "{n} offers"), "1 offre"),
        ("fr", lambda: staff_text.ngettext("fr", 2, "{n} offer", "{n} offers"), "2 offres"),
        ("fr", lambda: staff_text.ngettext("fr", 1500, "{n} offer", "{n} offers"), f"1{NNBSP}500 offres"),
        ("en", lambda: staff_text.ngettext("en", 1, "{n} offer", "{n} offers"), "1 offer"),
        ("en", lambda: staff_text.ngettext("en", 0, "{n} offer", "{n} offers"), "0 offers"),
        ("fr", lambda: staff_text.word("fr", "unit", "basket"), "panier"),
        ("en", lambda: staff_text.word("en", "unit", "sack50"), "50 kg sack"),
        ("fr", lambda: staff_text.word("fr", "unit", "calabash"), "calabash"),
        ("fr", lambda: staff_text.gettext("fr", "Buyer demand"), "Demande des acheteurs"),
        ("en", lambda: staff_text.gettext("en", "Buyer demand"), "Buyer demand"),
    ],
)
def test_numbers_dates_plurals_and_words(language, call, expected):
    assert call() == expected


# -- the pages, in French -------------------------------------------------------------------------------


@pytest.fixture
def french_client(settings):
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from tests.conftest import NOW

    with TestClient(create_app(settings.model_copy(update={"console_language": "fr"}), clock=lambda: NOW)) as c:
        yield c


def test_console_default_language_is_french(monkeypatch):
    from gateway.core.settings import Settings

    monkeypatch.delenv("GATEWAY_CONSOLE_LANGUAGE", raising=False)
    assert Settings().console_language == "fr"


def test_sign_in_page_speaks_french(french_client):
    page = french_client.get("/admin/login").text
    assert '<html lang="fr">' in page
    assert "Se connecter" in page and "Mot de passe" in page
    assert "Sign in" not in page


@pytest.mark.parametrize("language,n,expected", [
    ("en", 1, "Broadcast #4 to 1 producer is queued."),
    ("en", 3, "Broadcast #4 to 3 producers is queued."),
    ("fr", 1, "La diffusion n° 4 vers 1 producteur est en file d'envoi."),
    ("fr", 1200, "La diffusion n° 4 vers 1\u202f200 producteurs est en file d'envoi."),
])
def test_flashed_counts_take_their_plural(language, n, expected):
    assert staff_text.gettext(language, "Broadcast #{id} to {n} producers is queued.", id="4", n=n) == expected
