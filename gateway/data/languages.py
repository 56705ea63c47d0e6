"""The languages farmers are served in, as staff configure them (console → Languages): the rules
a row must keep, and its audited changes. The menus read them through the data view
(menus.languages); nothing else in the code names a language but French, the fallback of all.

A written language needs its catalog file (messages/catalog/<code>.toml); a voice-only one needs
nothing but recordings (the studio lists its clips: the French texts to say in it). Its numbers
are said by messages/voice/rules/<code>.toml when a native speaker has written one, else by its
fallback's rules."""

from __future__ import annotations

import datetime as dt
import re
from typing import Mapping

from sqlmodel import Session, select

from gateway.data import auth, models
from messages import Catalog

FRENCH = "fr"
CODE = re.compile(r"[a-z]{2,3}")
NAME_MAX = 40
ORDER_MAX = 999
FLAGS = ("written", "voice", "enabled")
# Errors are English console texts, translated where shown (messages/catalog/staff/fr/languages.toml).
BAD_CODE = "Two or three lowercase letters: the language's ISO 639 code (ff for Fulfulde, ses for Songhoy)."
TAKEN = "This code is already a language: edit it in the list."
NO_NAME = "Write its name."
LONG_NAME = "At most 40 characters, on one line."
NO_CATALOG = "No written catalog for this language (messages/catalog/{code}.toml): leave it voice-only."
NO_CHANNEL = "Offer it by voice, in writing, or both."
FRENCH_STAYS = "French is what every other language falls back to: it stays enabled, written and offered by voice."
BAD_FALLBACK = "Choose another configured language."
LOOP = "This would make a circle of fallbacks: choose a language that does not fall back on this one."
BAD_ORDER = "A whole number from 0 to 999."


class Invalid(ValueError):
    """A form that cannot be saved: {field: English reason}; nothing was changed."""

    def __init__(self, errors: dict[str, str], params: dict[str, str] | None = None) -> None:
        super().__init__(errors)
        self.errors = errors
        self.params = params or {}


def rows(session: Session) -> list[models.Language]:
    return list(session.exec(select(models.Language).order_by(models.Language.sort_order, models.Language.code)))


def _name(value: str) -> tuple[str, str | None]:
    text = " ".join(value.split())
    if not text:
        return text, NO_NAME
    if len(text) > NAME_MAX or any(ord(c) < 32 for c in value if c not in "\t\n\r"):
        return text, LONG_NAME
    return text, None


def _checked(code: str, typed: Mapping[str, str], known: dict[str, models.Language], catalog: Catalog,
             errors: dict[str, str]) -> dict:
    """The row's new values from the form (checkboxes are "on" when ticked), or errors."""
    values: dict = {}
    for field in ("name", "name_fr"):
        values[field], problem = _name(typed.get(field, ""))
        if problem:
            errors[field] = problem
    for flag in FLAGS:
        values[flag] = typed.get(flag) == "on"
    if values["written"] and not catalog.has_language(code):
        errors["written"] = NO_CATALOG
    if not values["written"] and not values["voice"]:
        errors["voice"] = NO_CHANNEL
    order = typed.get("sort_order", "").strip() or "0"
    if not order.isdigit() or len(order) > 3:
        errors["sort_order"] = BAD_ORDER
    else:
        values["sort_order"] = int(order)
    fallback = typed.get("fallback", "").strip()
    if code == FRENCH:
        if not all(values[flag] for flag in FLAGS):
            errors["enabled"] = FRENCH_STAYS
        values["fallback"] = ""
    elif fallback not in known or fallback == code:
        errors["fallback"] = BAD_FALLBACK
    else:
        seen, current = {code}, fallback
        while current and current not in seen:  # it must reach French without coming back here
            seen.add(current)
            current = known[current].fallback if current in known else ""
        if current == code:
            errors["fallback"] = LOOP
        values["fallback"] = fallback
    return values


def _audited(row: models.Language) -> dict:
    return {name: getattr(row, name) for name in ("name", "name_fr", *FLAGS, "sort_order", "fallback")}


def save(session: Session, *, code: str, typed: Mapping[str, str], new: bool, catalog: Catalog,
         staff: auth.Staff, now: dt.datetime) -> models.Language:
    """Add a language (`new`) or change one: checked as a whole, audited; Invalid changes nothing."""
    known = {row.code: row for row in rows(session)}
    errors: dict[str, str] = {}
    code = code.strip().lower() if new else code
    if new and not CODE.fullmatch(code):
        errors["code"] = BAD_CODE
    elif new and code in known:
        errors["code"] = TAKEN
    elif not new and code not in known:
        raise KeyError(code)
    values = _checked(code, typed, known, catalog, errors)
    if errors:
        raise Invalid(errors, {"code": code})
    stamp = now.astimezone(dt.timezone.utc)
    row = known.get(code) or models.Language(code=code, created_at=stamp, **values)
    before = None if new else _audited(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = stamp
    session.add(row)
    auth.audit(session, staff, action="create" if new else "edit", entity="language", entity_id=code,
               before=before, after=_audited(row), now=now)
    return row


# -- what other features accept: any configured code, a written one where a text is meant ------------


def written(found, catalog: Catalog) -> list:
    """The languages texts are written in: marked written and with a catalog file, enabled or
    not (staff write a language's texts before they offer it), French first as in the menus."""
    return [lang for lang in found if lang.written and catalog.has_language(lang.code)]


def listed(found) -> str:
    """The codes staff may use, for an error message: "fr (français), bm (bambara), ff (peul)"."""
    return ", ".join(f"{lang.code} ({lang.name_fr or lang.name})" for lang in found)
