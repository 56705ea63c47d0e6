"""The staff console's language: its own catalog (French first, English as a choice), and
numbers, dates and plurals through Babel (CLDR data).

Console texts are written in English in code and templates (`_("Buyer demand")`); the English
text is the key. `catalog/staff/fr/*.toml` (one file per page family, merged) gives the French;
an English entry (catalog/staff/en/) is only needed for a text that flash() shows with a
count {n}: its plural forms. A text written with `_()` but missing from a
catalog is a defect caught by tests/test_console_language.py, and shows in English meanwhile.

    "Buyer demand" = "Demande des acheteurs"
    "{n} offer" = { one = "{n} offre", other = "{n} offres" }      # plural: `_n(n, "{n} offer", "{n} offers")`

Codes shown to staff (units, price kinds, tip categories, statuses, roles) are words, from
`catalog/staff/words.toml`: `[unit] basket = { fr = "panier", en = "basket" }`.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

CONSOLE_LANGUAGES = ("fr", "en")
DEFAULT_CONSOLE_LANGUAGE = "fr"
# Mali's conventions for French (thin space between thousands, dd/mm/yyyy); British English
# keeps day-first dates, so a date reads the same in both languages.
LOCALES = {"fr": "fr_ML", "en": "en_GB"}


class StaffCatalogError(ValueError):
    """Two catalog files disagree about one text, or an entry is malformed."""


def _files(language: str):
    folder = resources.files("messages").joinpath("catalog", "staff", language)
    if not folder.is_dir():
        return []
    return sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)


@lru_cache(maxsize=None)
def texts(language: str) -> dict[str, Any]:
    """Every console text of one language: English text -> translation (a str, or a dict of
    CLDR plural categories for plurals)."""
    merged: dict[str, Any] = {}
    for file in _files(language):
        for key, value in tomllib.loads(file.read_text(encoding="utf-8")).items():
            if not isinstance(value, (str, dict)):
                raise StaffCatalogError(f"{file.name}: {key!r} is neither a text nor a plural table")
            if key in merged and merged[key] != value:
                raise StaffCatalogError(f"{file.name}: {key!r} is translated differently in another file")
            merged[key] = value
    return merged


@lru_cache(maxsize=None)
def words() -> dict[str, dict[str, dict[str, str]]]:
    path = resources.files("messages").joinpath("catalog", "staff", "words.toml")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def language_or_default(language: str | None) -> str:
    return language if language in CONSOLE_LANGUAGES else DEFAULT_CONSOLE_LANGUAGE


def _format(template: str, params: dict[str, Any], language: str) -> str:
    if not params:
        return template
    shown = {k: number(v, language) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in params.items()}
    try:
        return template.format(**shown)
    except (KeyError, IndexError, ValueError):
        return template  # a translation naming an unknown placeholder: the text rather than a crash


def gettext(language: str, text: str, /, **params: Any) -> str:
    """`text` (English) in `language`, with its {placeholders} filled; integers are written as
    numbers are in that language (14 000)."""
    found = texts(language).get(text)
    if isinstance(found, dict):  # a plural entry: the form for the count {n}, else "other"
        count = params.get("n")
        category = plural_category(language, count) if isinstance(count, (int, float)) else "other"
        found = found.get(category) or found.get("other")
    return _format(found if isinstance(found, str) else text, params, language)


def plural_category(language: str, n: int | float) -> str:
    return Locale.parse(LOCALES[language]).plural_form(abs(n))


def ngettext(language: str, n: int | float, one: str, other: str, /, **params: Any) -> str:
    """The form for `n` (CLDR rules: French says "0 offre", "1 offre", "2 offres"); `{n}` is
    available to the text, written as a number of that language."""
    category = plural_category(language, n)
    forms = texts(language).get(one)
    if isinstance(forms, dict):
        template = forms.get(category) or forms.get("other") or other
    elif isinstance(forms, str):
        template = forms
    else:
        template = one if category == "one" else other
    return _format(template, {"n": n, **params}, language)


def word(language: str, kind: str, code: Any) -> str:
    """A code (unit, price kind, category, status, role) as a word; the code itself when the
    catalog has no word for it (a unit added by staff, say)."""
    entry = words().get(kind, {}).get(str(code))
    if not entry:
        return "" if code is None else str(code)
    return entry.get(language) or entry.get("en") or str(code)


def number(value: int | float | None, language: str) -> str:
    if value is None:
        return ""
    return format_decimal(value, locale=LOCALES[language])


def date(value: dt.date | dt.datetime | None, language: str, *, short: bool = False) -> str:
    """28/11/2026, or "28 nov." where space is short."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.date()
    return format_date(value, "d MMM" if short else "dd/MM/yyyy", locale=LOCALES[language])


def date_time(value: dt.datetime | None, language: str, *, tz: dt.tzinfo | None = None) -> str:
    """28/11/2026 10:05 (in the service's timezone when one is given)."""
    if value is None:
        return ""
    if tz is not None and value.tzinfo is not None:
        value = value.astimezone(tz)
    return format_datetime(value, "dd/MM/yyyy HH:mm", locale=LOCALES[language])
