"""Reference data managed by staff: regions, markets, crops, units and price kinds.

One service for the console, the API, the CLI import and `gateway setup`: input is checked by
pydantic models bounded by the column widths, cross-row rules (unique codes, an active region or
unit referred to) are checked here, every change writes an audit row (before/after), and the
caller's unit of work commits (services never commit). Rows are retired, never deleted: history,
prices and subscriptions keep pointing at them. A region's French name is what markets, producers
and services store, so a rename follows through to them in the same unit of work.

Codes never change once created: API clients, imports and exports refer to rows by them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import func, update
from sqlmodel import Session, select

from gateway.data import auth, models

CODE_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # newlines too: a name is one line
CODE_HELP = "lowercase letters a-z, digits, '-' or '_'"
PRODUCTION_FILE = "mali.json"


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _aliases(value: Any) -> Any:
    """"a, b,, A" → "a, b": one spelling each, in the order given, no empties."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        return value
    seen: dict[str, str] = {}
    for part in value.split(","):
        part = " ".join(part.split())
        if part and part.casefold() not in seen:
            seen[part.casefold()] = part
    return ", ".join(seen.values())


def _code(width: int):
    return Annotated[str, Field(min_length=1, max_length=width, pattern=CODE_PATTERN)]


def _name(width: int, required: bool = True):
    return Annotated[str, Field(min_length=1 if required else 0, max_length=width)]


Aliases = Annotated[str, BeforeValidator(_aliases), Field(max_length=255)]


def _optional_float(**bounds):
    # An empty form field is "none given"; the bounds apply to a number only.
    return Annotated[Annotated[float, Field(**bounds)] | None, BeforeValidator(_blank_to_none)]


class _In(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value):
        # PostgreSQL refuses NUL outright; no name needs a control character.
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value


class RegionIn(_In):
    code: _code(32)
    name_fr: _name(64)
    name_bm: _name(64, required=False) = ""
    sort_order: int = Field(0, ge=0, le=10_000)


class UnitIn(_In):
    code: _code(16)
    name_fr: _name(32)
    name_bm: _name(32)
    kg: _optional_float(gt=0, le=10_000) = None
    aliases: Aliases = ""
    sort_order: int = Field(0, ge=0, le=10_000)


class KindIn(_In):
    code: _code(16)
    name_fr: _name(32)
    name_bm: _name(32)
    aliases: Aliases = ""
    sort_order: int = Field(0, ge=0, le=10_000)


class CropIn(_In):
    code: _code(32)
    name_fr: _name(64)
    name_bm: _name(64)
    unit: _code(16) = "kg"  # a unit's code: the crop's usual unit
    category: Annotated[str, Field(min_length=1, max_length=32, pattern=CODE_PATTERN)] = "vegetable"
    aliases: Aliases = ""
    sort_order: int = Field(0, ge=0, le=10_000)


class MarketIn(_In):
    code: _code(32)
    name: _name(64)  # French, official
    name_bm: _name(64, required=False) = ""
    region: _code(32)  # a region's code
    aliases: Aliases = ""
    latitude: _optional_float(ge=-90, le=90) = None
    longitude: _optional_float(ge=-180, le=180) = None

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


@dataclass(frozen=True)
class Spec:
    model: type
    schema: type[_In]
    fields: tuple[str, ...]  # what the audit log shows
    label: str


SPECS: dict[str, Spec] = {
    "region": Spec(models.Region, RegionIn, ("code", "name_fr", "name_bm", "sort_order", "active"), "region"),
    "market": Spec(
        models.Market, MarketIn,
        ("code", "name", "name_bm", "region", "aliases", "latitude", "longitude", "active"), "market",
    ),
    "crop": Spec(
        models.Crop, CropIn,
        ("code", "name_fr", "name_bm", "default_unit", "category", "aliases", "sort_order", "active"), "crop",
    ),
    "unit": Spec(models.Unit, UnitIn, ("code", "name_fr", "name_bm", "kg", "aliases", "sort_order", "active"), "unit"),
    "price_kind": Spec(
        models.PriceKind, KindIn, ("code", "name_fr", "name_bm", "aliases", "sort_order", "active"), "price kind"
    ),
}
# Order of loading: what is referred to comes first. File sections are named after them.
SECTIONS = (("regions", "region"), ("units", "unit"), ("price_kinds", "price_kind"), ("crops", "crop"), ("markets", "market"))


class Invalid(Exception):
    """Bad input: `errors` maps a field name ("" for the whole row) to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors = errors


def _messages(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch":
            message = f"use {CODE_HELP}, starting with a letter or digit"
        elif err["type"] == "string_too_short":
            message = "required"
        elif err["type"] == "missing":
            message = "required"
        errors.setdefault(name, message)
    return errors


def check(entity: str, raw: dict) -> _In:
    """Raw values (form strings, JSON) → the validated input, or Invalid with per-field errors."""
    try:
        return SPECS[entity].schema.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(_messages(exc)) from None


def get(session: Session, entity: str, row_id: int):
    return session.get(SPECS[entity].model, row_id)


def by_code(session: Session, entity: str, code: str):
    model = SPECS[entity].model
    return session.exec(select(model).where(model.code == code)).first()


def rows(session: Session, entity: str, *, active_only: bool = False) -> list:
    model = SPECS[entity].model
    query = select(model)
    if active_only:
        query = query.where(model.active == True)  # noqa: E712
    order = (model.name,) if entity == "market" else (model.sort_order, model.id)
    return list(session.exec(query.order_by(*order)))


def active_unit_codes(session: Session) -> list[str]:
    """The units offered in pickers (demands, prices), in their order."""
    return [u.code for u in rows(session, "unit", active_only=True)]


def region_names(session: Session) -> dict[str, str]:
    """Region code → French name (the string markets, producers and services store)."""
    return {r.code: r.name_fr for r in rows(session, "region")}


def _snapshot(entity: str, row) -> dict:
    return auth.snapshot(row, SPECS[entity].fields)


def _column_values(session: Session, entity: str, data: _In, row=None) -> dict:
    """Validated input → column values, with cross-row checks (raises Invalid)."""
    values = data.model_dump()
    values.pop("code")
    errors: dict[str, str] = {}
    if entity == "market":
        region = by_code(session, "region", data.region)
        unchanged = row is not None and region is not None and region.name_fr == row.region
        if region is None:
            errors["region"] = f"no region with code {data.region!r}"
        elif not region.active and not unchanged:
            errors["region"] = f"region {region.name_fr} is retired"
        else:
            values["region"] = region.name_fr
    elif entity == "crop":
        unit = by_code(session, "unit", values.pop("unit"))
        unchanged = row is not None and unit is not None and unit.code == row.default_unit
        if unit is None:
            errors["unit"] = f"no unit with code {data.unit!r}"
        elif not unit.active and not unchanged:
            errors["unit"] = f"unit {unit.code} is retired"
        else:
            values["default_unit"] = unit.code
    elif entity == "region":
        model = models.Region
        clash = session.exec(select(model).where(model.name_fr == data.name_fr)).first()
        if clash is not None and clash is not row:
            errors["name_fr"] = f"region {clash.code} already has this name"
    if errors:
        raise Invalid(errors)
    return values


def create(session: Session, entity: str, raw: dict, *, staff: auth.Staff | None, now: dt.datetime, audited: bool = True):
    spec = SPECS[entity]
    data = check(entity, raw)
    if by_code(session, entity, data.code) is not None:
        raise Invalid({"code": f"a {spec.label} with code {data.code!r} exists already"})
    values = _column_values(session, entity, data)
    row = spec.model(code=data.code, **values)
    session.add(row)
    session.flush()
    if audited:
        auth.audit(session, staff, action="create", entity=entity, entity_id=row.code, after=_snapshot(entity, row), now=now)
    return row


def update_row(session: Session, entity: str, row_id: int, raw: dict, *, staff: auth.Staff | None, now: dt.datetime):
    """Change a row's names, spellings, unit, region... (not its code)."""
    row = get(session, entity, row_id)
    if row is None:
        raise LookupError(f"no {SPECS[entity].label} {row_id}")
    data = check(entity, {**raw, "code": row.code})
    values = _column_values(session, entity, data, row)
    before = _snapshot(entity, row)
    old_name = row.name_fr if entity == "region" else None
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    if entity == "region" and old_name != row.name_fr:
        _rename_region(session, old_name, row.name_fr)
    session.flush()
    after = _snapshot(entity, row)
    if after != before:
        auth.audit(session, staff, action="edit", entity=entity, entity_id=row.code, before=before, after=after, now=now)
    return row


def _rename_region(session: Session, old: str, new: str) -> None:
    # Markets, producers and services store the region's name: they follow in this transaction.
    for model in (models.Market, models.Producer, models.Service):
        session.execute(update(model).where(model.region == old).values(region=new))


def set_active(session: Session, entity: str, row_id: int, active: bool, *, staff: auth.Staff | None, now: dt.datetime):
    """Retire (active=False) or reactivate a row. Refused while an active row depends on it."""
    row = get(session, entity, row_id)
    if row is None:
        raise LookupError(f"no {SPECS[entity].label} {row_id}")
    if row.active == active:
        return row
    if not active:
        _check_retire(session, entity, row)
    before = _snapshot(entity, row)
    row.active = active
    session.add(row)
    session.flush()
    auth.audit(session, staff, action="reactivate" if active else "retire", entity=entity, entity_id=row.code,
               before=before, after=_snapshot(entity, row), now=now)
    return row


def _check_retire(session: Session, entity: str, row) -> None:
    if entity == "region":
        m = models.Market
        names = session.exec(select(m.name).where(m.region == row.name_fr, m.active == True)).all()  # noqa: E712
        if names:
            raise Invalid({"": f"markets still active in {row.name_fr}: {', '.join(sorted(names))}; retire or move them first"})
    elif entity == "unit":
        c = models.Crop
        names = session.exec(select(c.name_fr).where(c.default_unit == row.code, c.active == True)).all()  # noqa: E712
        if names:
            raise Invalid({"": f"the usual unit of {', '.join(sorted(names))}; give them another unit first"})
    elif entity == "price_kind":
        k = models.PriceKind
        others = session.exec(select(func.count()).select_from(k).where(k.active == True, k.id != row.id)).one()  # noqa: E712
        if not others:
            raise Invalid({"": "the last active price kind cannot be retired"})


# -- reference files -------------------------------------------------------------------------------


@dataclass
class LoadReport:
    added: dict[str, int] = field(default_factory=lambda: {s: 0 for s, _ in SECTIONS})
    kept: dict[str, int] = field(default_factory=lambda: {s: 0 for s, _ in SECTIONS})

    def __str__(self) -> str:
        return ", ".join(f"{s} +{self.added[s]} ({self.kept[s]} kept)" for s, _ in SECTIONS)

    @property
    def total_added(self) -> int:
        return sum(self.added.values())


def production_document() -> dict:
    """The reference file shipped with the package (gateway/reference_data/mali.json)."""
    return json.loads(resources.files("gateway").joinpath("reference_data", PRODUCTION_FILE).read_text("utf-8"))


def read_document(path: Path) -> dict:
    try:
        document = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid({"": f"{path}: not a readable JSON file ({exc})"}) from None
    if not isinstance(document, dict):
        raise Invalid({"": f"{path}: expected an object with regions, units, price_kinds, crops, markets"})
    return document


def _exists(session: Session, entity: str, entry: dict):
    row = by_code(session, entity, str(entry.get("code", "")))
    if row is None and entity == "region" and entry.get("name_fr"):
        # The migration named regions from the markets' strings: match those by name too.
        row = session.exec(select(models.Region).where(models.Region.name_fr == entry["name_fr"])).first()
    return row


def load(
    session: Session, document: dict, *, staff: auth.Staff | None = None, now: dt.datetime, audited: bool = True
) -> LoadReport:
    """Add the rows of a reference document whose code is not in the database yet.

    Rows already there are kept as they are (staff edits win, a retired row stays retired), so
    loading twice adds nothing. Everything is checked: the first bad entry raises Invalid naming
    it ("markets[3].region: ...") and the caller's unit of work rolls back.
    """
    report = LoadReport()
    unknown = set(document) - {s for s, _ in SECTIONS} - {"about"}
    if unknown:
        raise Invalid({"": f"unknown sections: {', '.join(sorted(unknown))}"})
    for section, entity in SECTIONS:
        entries = document.get(section) or []
        if not isinstance(entries, list):
            raise Invalid({section: "expected a list"})
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise Invalid({f"{section}[{index}]": "expected an object"})
            if _exists(session, entity, entry) is not None:
                report.kept[section] += 1
                continue
            entry = dict(entry)
            if "sort_order" in SPECS[entity].fields and "sort_order" not in entry:
                entry["sort_order"] = index
            try:
                row = create(session, entity, entry, staff=staff, now=now, audited=audited)
                if entry.get("active") is False:  # an export's retired row comes back retired
                    row.active = False
                    session.add(row)
            except Invalid as exc:
                raise Invalid({f"{section}[{index}].{k}" if k else f"{section}[{index}]": v for k, v in exc.errors.items()}) from None
            report.added[section] += 1
    return report


def export(session: Session) -> dict:
    """Every row (retired ones with "active": false), in the format `load` reads."""
    codes = {r.name_fr: r.code for r in rows(session, "region")}
    out: dict[str, list] = {}
    for section, entity in SECTIONS:
        entries = []
        for row in rows(session, entity):
            entry = {name: getattr(row, name) for name in SPECS[entity].fields}
            if entity == "crop":
                entry["unit"] = entry.pop("default_unit")
            if entity == "market":
                entry["region"] = codes.get(row.region, row.region)
            entries.append(entry)
        out[section] = entries
    return out
