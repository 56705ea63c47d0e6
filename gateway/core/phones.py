"""Phone numbers: parsed and validated with `phonenumbers`, stored as E.164, masked in logs."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "ML"  # a number written without +223 is read as Malian


class InvalidPhone(ValueError):
    pass


def parse_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 form of `raw`, or InvalidPhone with a reason."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("phone number is empty")
    if len(text) > 32:
        raise InvalidPhone("phone number is too long")
    return _e164(text, region)


@lru_cache(maxsize=4_096)  # a USSD session sends the same number with every hop (bounded: ~1 MB); failures aren't kept
def _e164(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(phone: str | None) -> str:
    """`+22370****34`: enough to tell callers apart in logs, not enough to call them."""
    if not phone:
        return "-"
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:6] + "*" * (len(phone) - 8) + phone[-2:]
