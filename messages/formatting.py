"""Numbers and dates for farmers' screens, through Babel (CLDR data).

Both languages use the French conventions of Mali (`fr_ML`): CLDR's `bm` data groups thousands
with a comma, which a reader schooled in French would take for a decimal point on a price.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from babel.dates import format_date
from babel.numbers import format_decimal

_LOCALE = "fr_ML"


@lru_cache(maxsize=4096)  # menus format the same few values over and over
def money(amount: int | float) -> str:
    return format_decimal(round(amount), locale=_LOCALE)


@lru_cache(maxsize=4096)  # menus format the same few values over and over
def short_date(day: dt.date) -> str:
    return format_date(day, "dd/MM", locale=_LOCALE)


@lru_cache(maxsize=4096)  # menus format the same few values over and over
def long_date(day: dt.date) -> str:
    return format_date(day, "dd/MM/yyyy", locale=_LOCALE)


@lru_cache(maxsize=4096)  # menus format the same few values over and over
def signed_percent(value: int) -> str:
    sign = "+" if value > 0 else ("-" if value < 0 else "")
    return f"{sign}{format_decimal(abs(value), locale=_LOCALE)}%"


def phone_local(e164: str) -> str:
    """A number as people dial it in its own country: "20 62 00 00" (a notice's narrow line)."""
    return _phone(e164, international=False)


def phone_display(e164: str) -> str:
    """A number as people read and dial it from any country: "+223 20 62 00 00"."""
    return _phone(e164, international=True)


@lru_cache(maxsize=1024)
def _phone(e164: str, *, international: bool) -> str:
    import phonenumbers

    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = phonenumbers.PhoneNumberFormat.INTERNATIONAL if international else phonenumbers.PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(number, style)
