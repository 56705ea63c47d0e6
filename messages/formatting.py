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


@lru_cache(maxsize=1024)
def phone_display(e164: str) -> str:
    """A number as people read and dial it from any country: "+223 20 62 00 00"."""
    import phonenumbers

    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
