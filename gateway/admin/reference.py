"""Console pages for reference data: regions, markets, crops, units and price kinds (admin,
editor). Lists, a form per row (errors beside their field, what was typed kept), retire and
reactivate. The rules live in gateway.reference; this module only turns forms into calls."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import func
from sqlmodel import select

from gateway.admin.core import (
    Editor,
    Form,
    back_to,
    clear_content_cache,
    confirm_page,
    confirmed,
    db_of,
    flash,
    now_of,
    path_for,
    render,
    tn,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import models, reference
from messages import staff as staff_text

router = APIRouter(prefix="/admin/reference", include_in_schema=False)


# Labels, helps and titles below are English console texts, translated where shown (_() in the
# templates); their French is in messages/catalog/staff/fr/demand.toml.


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
    title: str  # "Markets"
    one: str  # "market", inside a sentence
    new: str  # "New market" (French nouns have a gender: one text each)
    inputs: tuple[Input, ...]
    columns: tuple[tuple[str, str], ...]  # (label, form value name) shown in the list


CODE = Input("code", "Code", width=32, help="Lowercase letters a-z, digits, - or _; fixed once created (API and imports use it).")
ALIASES = Input("aliases", "Other spellings", width=255, help="Comma-separated, as farmers type them in SMS: understood as this name.")
ORDER = Input("sort_order", "Order in menus", "number")

PAGES: dict[str, Page] = {
    "regions": Page("region", "Regions", "region", "New region", (
        CODE, Input("name_fr", "Name (French)", width=64, help="Renaming updates its markets, producers and services."),
        Input("name_bm", "Name (Bambara)", width=64), ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"))),
    "markets": Page("market", "Markets", "market", "New market", (
        CODE, Input("name", "Name (French)", width=64),
        Input("name_bm", "Name (Bambara)", width=64, help="Shown to Bambara callers; empty: the French name."),
        Input("region", "Region", "select"), ALIASES,
        Input("latitude", "Latitude", help="Decimal degrees, -90 to 90 (Sikasso: 11.317). Optional."),
        Input("longitude", "Longitude", help="Decimal degrees, -180 to 180 (Sikasso: -5.666). Optional."),
    ), (("Code", "code"), ("French", "name"), ("Bambara", "name_bm"), ("Region", "region"), ("Spellings", "aliases"))),
    "crops": Page("crop", "Crops", "crop", "New crop", (
        CODE, Input("name_fr", "Name (French)", width=64), Input("name_bm", "Name (Bambara)", width=64),
        Input("unit", "Usual unit", "select"), Input("category", "Category", "select"),
        ALIASES, ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"), ("Unit", "unit"), ("Spellings", "aliases"))),
    "units": Page("unit", "Units", "unit", "New unit", (
        Input("code", "Code", width=16, help=CODE.help), Input("name_fr", "Name (French)", width=32),
        Input("name_bm", "Name (Bambara)", width=32), Input("kg", "Kilograms", help="Its fixed weight (a 50 kg sack: 50); empty when it varies (a basket)."),
        ALIASES, ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"), ("kg", "kg"), ("Spellings", "aliases"))),
    "kinds": Page("price_kind", "Price kinds", "price kind", "New price kind", (
        Input("code", "Code", width=16, help=CODE.help), Input("name_fr", "Name (French)", width=32),
        Input("name_bm", "Name (Bambara)", width=32), ALIASES, ORDER,
    ), (("Code", "code"), ("French", "name_fr"), ("Bambara", "name_bm"), ("Spellings", "aliases"))),
}

NOT_FOUND = {"region": "No such region.", "market": "No such market.", "crop": "No such crop.", "unit": "No such unit.",
             "price_kind": "No such price kind."}


# gateway.reference explains bad input in English (for the API and the CLI); the console shows
# the same reasons in the reader's language. Unknown ones are shown as they are.
REASONS: tuple[tuple[re.Pattern, str], ...] = tuple((re.compile(pattern), text) for pattern, text in (
    (r"^required$", "required"),
    (r"^use lowercase letters", "use lowercase letters a-z, digits, '-' or '_', starting with a letter or digit"),
    (r"^control characters are not allowed$", "control characters are not allowed"),
    (r"^give both latitude and longitude, or neither$", "give both latitude and longitude, or neither"),
    (r"^no region with code '(?P<code>.*)'$", "no region with code {code}"),
    (r"^region (?P<name>.*) is retired$", "region {name} is retired"),
    (r"^no unit with code '(?P<code>.*)'$", "no unit with code {code}"),
    (r"^unit (?P<code>.*) is retired$", "unit {code} is retired"),
    (r"^region (?P<code>.*) already has this name$", "region {code} already has this name"),
    (r"^an? .* with code '(?P<code>.*)' exists already$", "this code exists already: {code}"),
    (r"^String should have at most (?P<n>\d+) characters?$", "at most {n} characters"),
    (r"^Input should be less than or equal to (?P<n>[-\d.]+)$", "must be less than or equal to {n}"),
    (r"^Input should be greater than or equal to (?P<n>[-\d.]+)$", "must be greater than or equal to {n}"),
    (r"^Input should be greater than (?P<n>[-\d.]+)$", "must be greater than {n}"),
    (r"^Input should be a valid (number|integer)", "a number is expected"),
))


def reason(request: Request, message: str) -> str:
    for pattern, text in REASONS:
        found = pattern.match(message)
        if found:
            return tr(request, text, **found.groupdict())
    return message


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
        categories = list(staff_text.words().get("crop_category", {}))
        categories += [] if not current.get("category") or current["category"] in categories else [current["category"]]
        # Labels in the reader's language: word() in the template.
        return {"unit": options("unit", "unit", lambda r: f"{r.name_fr} ({r.code})"),
                "category": [(code, "") for code in categories]}
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
    total = len(rows)
    q = request.query_params.get("q", "").strip()[:64]
    if q:  # a long list (markets) is searched by code, name or spelling
        needle = q.casefold()
        rows = [(row, v) for row, v in rows if any(needle in str(value).casefold() for value in v.values())]
    return render(request, "reference.html", {"page": page, "section": section, "rows": rows, "pages": PAGES,
                                              "total": total, "q": q})


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
                raise HTTPException(404, NOT_FOUND[page.entity])
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
                    raise HTTPException(404, NOT_FOUND[page.entity])
                row = reference.update_row(session, page.entity, row_id, typed, staff=staff, now=now_of(request))
            else:
                row = reference.create(session, page.entity, typed, staff=staff, now=now_of(request))
            code = row.code
    except reference.Invalid as exc:
        with db.unit_of_work() as session:
            if row_id:
                row = reference.get(session, page.entity, row_id)
                typed["code"] = row.code if row else ""
            context = _form(session, section, row_id, typed, {k: reason(request, v) for k, v in exc.errors.items()})
        return render(request, "reference_form.html", context, status_code=400)
    clear_content_cache(request)
    flash(request, "Saved: {what} {code}. Farmers see it on their next screen.", what=tr(request, page.one), code=code)
    return back_to(request, "admin_reference_list", section=section)


@router.post("/{section}/{row_id}/{action}", name="admin_reference_action")
async def reference_action(request: Request, section: str, row_id: DbId, action: str, staff: Editor, form: Form):
    page = _page(section)
    if action not in ("retire", "reactivate"):
        raise HTTPException(404, "No such action.")
    what = tr(request, page.one)
    with db_of(request).unit_of_work() as session:
        row = reference.get(session, page.entity, row_id)
        if row is None:
            raise HTTPException(404, NOT_FOUND[page.entity])
        if action == "retire" and row.active:
            refusal = retire_refusal(request, session, page.entity, row)
            if refusal:
                flash(request, "Not retired: {reason}", "error", reason=refusal)
                return back_to(request, "admin_reference_list", section=section)
            if not confirmed(form):
                return confirm_page(
                    request, title=tr(request, "Retire the {what} {name} ({code})?", what=what, code=row.code,
                                      name=getattr(row, "name_fr", None) or getattr(row, "name", "")),
                    lines=retire_effects(request, session, page.entity, row), action=path_for(
                        request, "admin_reference_action", section=section, row_id=row_id, action=action),
                    form=form, button=tr(request, "Retire"), cancel=path_for(request, "admin_reference_list", section=section),
                    danger=True,
                )
    try:
        with db_of(request).unit_of_work() as session:
            row = reference.set_active(session, page.entity, row_id, action == "reactivate", staff=staff, now=now_of(request))
            code = row.code
    except LookupError:
        raise HTTPException(404, NOT_FOUND[page.entity]) from None
    except reference.Invalid as exc:  # changed between the confirmation and now
        flash(request, "Not retired: {reason}", "error", reason="; ".join(reason(request, v) for v in exc.errors.values()))
        return back_to(request, "admin_reference_list", section=section)
    clear_content_cache(request)
    if action == "reactivate":
        flash(request, "Reactivated: {what} {code}. Back in menus and SMS.", what=what, code=code)
    else:
        flash(request, "Retired: {what} {code}. Gone from menus and SMS; history kept.", what=what, code=code)
    return back_to(request, "admin_reference_list", section=section)


def _count(session, model, *where) -> int:
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def retire_refusal(request: Request, session, entity: str, row) -> str:
    """Why the row cannot be retired now (gateway.reference's rules, said to the reader), or ""."""
    if entity == "region":
        m = models.Market
        names = session.exec(select(m.name).where(m.region == row.name_fr, m.active == True)).all()  # noqa: E712
        if names:
            return tr(request, "markets still active in {region}: {names}; retire or move them first.",
                      region=row.name_fr, names=", ".join(sorted(names)))
    elif entity == "unit":
        c = models.Crop
        names = session.exec(select(c.name_fr).where(c.default_unit == row.code, c.active == True)).all()  # noqa: E712
        if names:
            return tr(request, "it is the usual unit of {names}; give them another unit first.", names=", ".join(sorted(names)))
    elif entity == "price_kind":
        k = models.PriceKind
        if not _count(session, k, k.active == True, k.id != row.id):  # noqa: E712
            return tr(request, "the last active price kind cannot be retired.")
    return ""


def retire_effects(request: Request, session, entity: str, row) -> list[str]:
    """What retiring the row touches, counted, for the confirmation page."""
    po, sub, d, p = models.PriceObservation, models.Subscription, models.Demand, models.Producer
    lines: list[str] = []

    def prices(*where) -> None:
        n = _count(session, po, *where)
        lines.append(tn(request, n, "{n} price refers to it: it stays in the history.",
                        "{n} prices refer to it: they stay in the history.") if n else tr(request, "No price refers to it."))

    def subscriptions(*where) -> None:
        n = _count(session, sub, *where)
        people = session.exec(select(func.count(func.distinct(sub.producer_id))).where(*where)).one()
        lines.append(tr(request, "{subscriptions} ({producers}) name it: kept, but no new price will come for it, so no alert.",
                        subscriptions=tn(request, n, "{n} subscription", "{n} subscriptions"),
                        producers=tn(request, people, "{n} producer", "{n} producers"))
                     if n else tr(request, "No subscription names it."))

    def demands(*where) -> None:
        n = _count(session, d, d.status == "open", *where)
        lines.append(tn(request, n, "{n} open demand names it: it stays open until you close it.",
                        "{n} open demands name it: they stay open until you close them.")
                     if n else tr(request, "No open demand names it."))

    if entity == "crop":
        prices(po.crop_id == row.id)
        subscriptions(sub.crop_id == row.id)
        demands(d.crop_id == row.id)
    elif entity == "market":
        prices(po.market_id == row.id)
        subscriptions(sub.market_id == row.id)
    elif entity == "region":
        n = _count(session, p, p.region == row.name_fr)
        lines.append(tn(request, n, "{n} producer lives there: their profile keeps the region.",
                        "{n} producers live there: their profiles keep the region."))
        n = _count(session, models.Service, models.Service.region == row.name_fr)
        lines.append(tn(request, n, "{n} directory entry is in this region.", "{n} directory entries are in this region."))
    elif entity == "unit":
        prices(po.unit == row.code)
        demands(d.unit == row.code)
    elif entity == "price_kind":
        prices(po.kind == row.code)
    lines.append(tr(request, "It leaves the USSD menus and SMS keywords at once. Nothing is deleted: you can reactivate it."))
    return lines
