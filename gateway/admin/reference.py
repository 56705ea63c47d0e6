"""Console pages for reference data: regions, markets, crops, units and price kinds (admin,
editor). Lists, a form per row (errors beside their field, what was typed kept), retire and
reactivate. The rules live in gateway.reference; this module only turns forms into calls."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request

from gateway import reference
from gateway.admin.core import Editor, Form, back_to, clear_content_cache, db_of, flash, now_of, render
from gateway.deps import DbId

router = APIRouter(prefix="/admin/reference", include_in_schema=False)


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    kind: str = "text"  # text | number | select
    width: int = 0  # maxlength; 0: none
    help: str = ""


@dataclass(frozen=True)
class Page:
    entity: str  # gateway.reference.SPECS key
    title: str
    one: str
    inputs: tuple[Input, ...]
    columns: tuple[tuple[str, str], ...]  # (label, form value name) shown in the list


CODE = Input("code", "Code", width=32, help="Lowercase letters a-z, digits, - or _; fixed once created (API and imports use it).")
ALIASES = Input("aliases", "Other spellings", width=255, help="Comma-separated, as farmers type them in SMS: understood as this name.")
ORDER = Input("sort_order", "Order in menus", "number")

PAGES: dict[str, Page] = {
    "regions": Page("region", "Regions", "region", (
        CODE, Input("name_fr", "Name (French)", width=64, help="Renaming updates its markets, producers and services."),
        Input("name_bm", "Name (Bambara)", width=64), ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"))),
    "markets": Page("market", "Markets", "market", (
        CODE, Input("name", "Name (French)", width=64),
        Input("name_bm", "Name (Bambara)", width=64, help="Shown to Bambara callers; empty: the French name."),
        Input("region", "Region", "select"), ALIASES,
        Input("latitude", "Latitude", help="Decimal degrees, -90 to 90 (Sikasso: 11.317). Optional."),
        Input("longitude", "Longitude", help="Decimal degrees, -180 to 180 (Sikasso: -5.666). Optional."),
    ), (("Code", "code"), ("French", "name"), ("Bambara", "name_bm"), ("Region", "region"), ("Spellings", "aliases"))),
    "crops": Page("crop", "Crops", "crop", (
        CODE, Input("name_fr", "Name (French)", width=64), Input("name_bm", "Name (Bambara)", width=64),
        Input("unit", "Usual unit", "select"), Input("category", "Category", width=32, help="vegetable, fruit, cereal... (a code)."),
        ALIASES, ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"), ("Unit", "unit"), ("Spellings", "aliases"))),
    "units": Page("unit", "Units", "unit", (
        Input("code", "Code", width=16, help=CODE.help), Input("name_fr", "Name (French)", width=32),
        Input("name_bm", "Name (Bambara)", width=32), Input("kg", "Kilograms", help="Its fixed weight (a 50 kg sack: 50); empty when it varies (a basket)."),
        ALIASES, ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"), ("kg", "kg"), ("Spellings", "aliases"))),
    "kinds": Page("price_kind", "Price kinds", "price kind", (
        Input("code", "Code", width=16, help=CODE.help), Input("name_fr", "Name (French)", width=32),
        Input("name_bm", "Name (Bambara)", width=32), ALIASES, ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"), ("Spellings", "aliases"))),
}


def _page(section: str) -> Page:
    page = PAGES.get(section)
    if page is None:
        raise HTTPException(404, "No such reference list.")
    return page


def _values(session, page: Page, row) -> dict[str, str]:
    """A row as the form shows it (strings; a market's region and a crop's unit by code)."""
    values: dict[str, str] = {}
    for field in page.inputs:
        source = {"unit": "default_unit"}.get(field.name, field.name) if page.entity == "crop" else field.name
        value = getattr(row, source, "")
        values[field.name] = "" if value is None else str(value)
    if page.entity == "market":
        codes = {name: code for code, name in reference.region_names(session).items()}
        values["region"] = codes.get(row.region, "")
    return values


def _choices(session, page: Page, current: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Pickers offer active rows only, plus the one the row already has."""
    def options(entity: str, key: str, label) -> list[tuple[str, str]]:
        return [(r.code, label(r)) for r in reference.rows(session, entity) if r.active or r.code == current.get(key)]

    if page.entity == "market":
        return {"region": options("region", "region", lambda r: r.name_fr)}
    if page.entity == "crop":
        return {"unit": options("unit", "unit", lambda r: f"{r.name_fr} ({r.code})")}
    return {}


def _form(session, section: str, row_id: int, values: dict, errors: dict) -> dict:
    page = _page(section)
    return {"page": page, "section": section, "row_id": row_id, "v": values, "errors": errors,
            "choices": _choices(session, page, values), "is_new": row_id == 0}


@router.get("", name="admin_reference")
def reference_home(request: Request, staff: Editor):
    return back_to(request, "admin_reference_list", section="markets")


@router.get("/{section}", name="admin_reference_list")
def reference_list(request: Request, section: str, staff: Editor):
    page = _page(section)
    with db_of(request).unit_of_work() as session:
        rows = [(r, _values(session, page, r)) for r in reference.rows(session, page.entity)]
        if page.entity == "market":  # the list names regions; the form picks them by code
            for row, values in rows:
                values["region"] = row.region
    return render(request, "reference.html", {"page": page, "section": section, "rows": rows, "pages": PAGES})


@router.get("/{section}/{row_id}", name="admin_reference_row")
def reference_row(request: Request, section: str, row_id: DbId, staff: Editor):
    page = _page(section)
    with db_of(request).unit_of_work() as session:
        if row_id == 0:
            values = {f.name: "" for f in page.inputs}
            values.update({"unit": "kg", "category": "vegetable", "sort_order": "0"} if page.entity == "crop" else {})
        else:
            row = reference.get(session, page.entity, row_id)
            if row is None:
                raise HTTPException(404, f"No such {page.one}.")
            values = _values(session, page, row)
        context = _form(session, section, row_id, values, {})
    return render(request, "reference_form.html", context)


@router.post("/{section}/{row_id}", name="admin_reference_save")
async def reference_save(request: Request, section: str, row_id: DbId, staff: Editor, form: Form):
    page = _page(section)
    typed = {f.name: form.get(f.name, "") for f in page.inputs}
    if row_id:
        typed.pop("code")  # fixed once created
    if "sort_order" in typed and not typed["sort_order"].strip():
        typed["sort_order"] = "0"
    db = db_of(request)
    try:
        with db.unit_of_work() as session:
            if row_id:
                if reference.get(session, page.entity, row_id) is None:
                    raise HTTPException(404, f"No such {page.one}.")
                row = reference.update_row(session, page.entity, row_id, typed, staff=staff, now=now_of(request))
            else:
                row = reference.create(session, page.entity, typed, staff=staff, now=now_of(request))
            code = row.code
    except reference.Invalid as exc:
        with db.unit_of_work() as session:
            if row_id:
                row = reference.get(session, page.entity, row_id)
                typed["code"] = row.code if row else ""
            context = _form(session, section, row_id, typed, exc.errors)
        return render(request, "reference_form.html", context, status_code=400)
    clear_content_cache(request)
    flash(request, f"{page.one.capitalize()} {code} saved: farmers see it on their next screen.")
    return back_to(request, "admin_reference_list", section=section)


@router.post("/{section}/{row_id}/{action}", name="admin_reference_action")
async def reference_action(request: Request, section: str, row_id: DbId, action: str, staff: Editor, form: Form):
    page = _page(section)
    if action not in ("retire", "reactivate"):
        raise HTTPException(404, "No such action.")
    try:
        with db_of(request).unit_of_work() as session:
            row = reference.set_active(session, page.entity, row_id, action == "reactivate", staff=staff, now=now_of(request))
            code = row.code
    except LookupError:
        raise HTTPException(404, f"No such {page.one}.") from None
    except reference.Invalid as exc:
        flash(request, f"Not retired: {exc}", "error")
        return back_to(request, "admin_reference_list", section=section)
    clear_content_cache(request)
    done = "reactivated: back in menus and SMS" if action == "reactivate" else "retired: gone from menus and SMS, history kept"
    flash(request, f"{page.one.capitalize()} {code} {done}.")
    return back_to(request, "admin_reference_list", section=section)
