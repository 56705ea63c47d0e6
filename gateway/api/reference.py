"""Staff API for reference data (/api/v1/reference): regions, markets, crops, units and price
kinds, read by any staff token, changed by editors and admins. Rows are named by their code,
which never changes; retiring keeps a row for history. Same rules as the console (see
gateway.reference), same audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from gateway.api.routes import Code, Editor, api_staff
from gateway.data import auth, reference

router = APIRouter(prefix="/api/v1/reference", tags=["reference data"])

Section = Literal["regions", "markets", "crops", "units", "price_kinds"]
ENTITY = dict(reference.SECTIONS)
AnyStaff = Annotated[auth.Staff, Depends(api_staff)]


class Entry(BaseModel):
    """One row as `gateway reference export` writes it (fields depend on the section)."""

    model_config = {"extra": "allow"}
    code: str
    active: bool


class ReferenceDocument(BaseModel):
    model_config = {"extra": "forbid"}
    about: str | None = None
    regions: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    units: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    price_kinds: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    crops: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    markets: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class LoadOut(BaseModel):
    added: dict[str, int]
    kept: dict[str, int]


def _invalid(exc: reference.Invalid) -> HTTPException:
    return HTTPException(422, {"errors": exc.errors})


def _entry(session, section: str, row) -> dict:
    codes = {r.name_fr: r.code for r in reference.rows(session, "region")} if section == "markets" else {}
    entry = {name: getattr(row, name) for name in reference.SPECS[ENTITY[section]].fields}
    if section == "crops":
        entry["unit"] = entry.pop("default_unit")
    if section == "markets":
        entry["region"] = codes.get(row.region, row.region)
    return entry


def _row_or_404(session, section: str, code: str):
    row = reference.by_code(session, ENTITY[section], code)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {section[:-1].replace('_', ' ')} with code {code!r}")
    return row


@router.get("", response_model=ReferenceDocument, summary="Every reference row (retired ones too), as a reference file")
def export_reference(request: Request, staff: AnyStaff):
    with request.app.state.db.unit_of_work() as session:
        return reference.export(session)


@router.post("", response_model=LoadOut, summary="Load a reference file: adds the rows whose code is new, keeps the others")
def import_reference(request: Request, body: ReferenceDocument, staff: Editor):
    try:
        with request.app.state.db.unit_of_work() as session:
            report = reference.load(session, body.model_dump(exclude_none=True), staff=staff, now=request.app.state.clock())
    except reference.Invalid as exc:
        raise _invalid(exc) from None
    request.app.state.content_cache.clear()
    return LoadOut(added=report.added, kept=report.kept)


@router.get("/{section}", response_model=list[Entry], summary="One list of reference rows")
def list_section(request: Request, section: Section, staff: AnyStaff):
    with request.app.state.db.unit_of_work() as session:
        return [_entry(session, section, r) for r in reference.rows(session, ENTITY[section])]


@router.post("/{section}", response_model=Entry, status_code=201, summary="Add a reference row")
def create_row(request: Request, section: Section, staff: Editor, body: Annotated[dict[str, Any], Body()]):
    try:
        with request.app.state.db.unit_of_work() as session:
            row = reference.create(session, ENTITY[section], body, staff=staff, now=request.app.state.clock())
            out = _entry(session, section, row)
    except reference.Invalid as exc:
        raise _invalid(exc) from None
    request.app.state.content_cache.clear()
    return out


@router.patch("/{section}/{code}", response_model=Entry, summary="Change a reference row (fields not given are kept)")
def update_row(request: Request, section: Section, code: Code, staff: Editor, body: Annotated[dict[str, Any], Body()]):
    try:
        with request.app.state.db.unit_of_work() as session:
            row = _row_or_404(session, section, code)
            current = _entry(session, section, row)
            row = reference.update_row(session, ENTITY[section], row.id, {**current, **body}, staff=staff,
                                       now=request.app.state.clock())
            out = _entry(session, section, row)
    except reference.Invalid as exc:
        raise _invalid(exc) from None
    request.app.state.content_cache.clear()
    return out


@router.post("/{section}/{code}/{action}", response_model=Entry, summary="Retire or reactivate a reference row")
def retire_row(request: Request, section: Section, code: Code, action: Literal["retire", "reactivate"], staff: Editor):
    try:
        with request.app.state.db.unit_of_work() as session:
            row = _row_or_404(session, section, code)
            row = reference.set_active(session, ENTITY[section], row.id, action == "reactivate", staff=staff,
                                       now=request.app.state.clock())
            out = _entry(session, section, row)
    except reference.Invalid as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, {"errors": exc.errors}) from None
    request.app.state.content_cache.clear()
    return out
