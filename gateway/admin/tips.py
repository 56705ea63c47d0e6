"""Console pages: Good Agricultural Practice and post-harvest tips, in French and Bambara."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from sqlmodel import select

from gateway.admin.core import (
    Editor,
    Form,
    back_to,
    clear_content_cache,
    db_of,
    flash,
    now_of,
    render,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import auth, models

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- tips ------------------------------------------------------------------------------------------

TIP_FIELDS = ("category", "crop_id", "title_fr", "title_bm", "text_fr", "text_bm", "active")
CATEGORIES = ("gap", "postharvest", "nutrition")
TEXT_FIELDS = ("title_fr", "title_bm", "text_fr", "text_bm")
MAX_TITLE, MAX_TEXT = 60, 1000
STATES = ("all", "active", "retired")


def _filters(request: Request) -> dict[str, str]:
    """The list's search and filters, from the query string (a plain GET form: works without
    script, and a filtered list can be bookmarked). Unknown values mean "any"."""
    q = request.query_params
    category = q.get("category", "")
    state = q.get("state", "all")
    crop = q.get("crop", "").strip()
    return {
        "q": q.get("q", "").strip()[:100],
        "category": category if category in CATEGORIES else "",
        "crop": crop if crop == "none" or crop.isdigit() else "",
        "state": state if state in STATES else "all",
    }


def _matches(tip: models.Tip, f: dict[str, str]) -> bool:
    if f["category"] and tip.category != f["category"]:
        return False
    if f["crop"] == "none" and tip.crop_id is not None:
        return False
    if f["crop"].isdigit() and tip.crop_id != int(f["crop"]):
        return False
    if f["state"] == "active" and not tip.active or f["state"] == "retired" and tip.active:
        return False
    if f["q"]:
        needle = f["q"].casefold()
        return any(needle in (getattr(tip, name) or "").casefold() for name in TEXT_FIELDS)
    return True


@router.get("/tips", name="admin_tips")
def tips_page(request: Request, staff: Editor):
    f = _filters(request)
    with db_of(request).unit_of_work() as session:
        every = session.exec(select(models.Tip).order_by(models.Tip.category, models.Tip.sort_order)).all()
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
    tips = [t for t in every if _matches(t, f)]
    filtered = any(f[k] for k in ("q", "category", "crop")) or f["state"] != "all"
    return render(request, "tips.html", {"tips": tips, "total": len(every), "crops": crops,
                                         "crop_names": {c.id: c.name_fr for c in crops}, "f": f, "filtered": filtered,
                                         "categories": CATEGORIES})


def _values_of(tip: models.Tip) -> dict[str, str]:
    return {"category": tip.category, "crop_id": "" if tip.crop_id is None else str(tip.crop_id),
            **{name: getattr(tip, name) or "" for name in TEXT_FIELDS}, "active": "on" if tip.active else ""}


def _tip_form(request: Request, tip_id: int, values: dict, errors: dict, crops, status_code: int = 200):
    return render(request, "tip.html", {"tip_id": tip_id, "values": values, "errors": errors, "crops": crops,
                                        "categories": CATEGORIES, "max_title": MAX_TITLE, "max_text": MAX_TEXT},
                  status_code=status_code)


@router.get("/tips/{tip_id}", name="admin_tip")
def tip_page(request: Request, tip_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        tip = session.get(models.Tip, tip_id) if tip_id else models.Tip(category="gap", title_fr="", title_bm="", text_fr="", text_bm="")
        if tip is None:
            raise HTTPException(404, "No such tip.")
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        values = _values_of(tip)
    return _tip_form(request, tip_id, values, {}, crops)


def _problems(request: Request, values: dict[str, str], crop_ids: set[int]) -> dict[str, str]:
    """What is wrong with a posted tip, field by field (empty: it can be saved)."""
    errors: dict[str, str] = {}
    if values["category"] not in CATEGORIES:
        errors["category"] = tr(request, "Choose a category.")
    crop = values["crop_id"]
    if crop and not (crop.isdigit() and int(crop) in crop_ids):
        errors["crop_id"] = tr(request, "Unknown crop: choose one from the list.")
    for name in ("title_fr", "text_fr"):
        if not values[name]:
            errors[name] = tr(request, "Required: farmers read the French text when no Bambara is given.")
    for name in ("title_fr", "title_bm"):
        if len(values[name]) > MAX_TITLE:
            errors[name] = tr(request, "At most {max} characters (now {n}).", max=MAX_TITLE, n=len(values[name]))
    for name in ("text_fr", "text_bm"):
        if len(values[name]) > MAX_TEXT:
            errors[name] = tr(request, "At most {max} characters (now {n}).", max=MAX_TEXT, n=len(values[name]))
    return errors


@router.post("/tips/{tip_id}", name="admin_tip_save")
async def tip_save(request: Request, tip_id: DbId, staff: Editor, form: Form):
    values = {name: form.get(name, "").strip() for name in TEXT_FIELDS}
    values.update(category=form.get("category", ""), crop_id=form.get("crop_id", "").strip(),
                  active="on" if form.get("active") == "on" else "")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        tip = session.get(models.Tip, tip_id) if tip_id else None
        if tip_id and tip is None:
            raise HTTPException(404, "No such tip.")
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        errors = _problems(request, values, {c.id for c in crops})
        if errors:
            # Nothing saved; the page comes back with what was typed and why it was refused.
            return _tip_form(request, tip_id, values, errors, crops, status_code=400)
        if tip is None:
            tip = models.Tip(category=values["category"], **{name: values[name] for name in TEXT_FIELDS})
        before = auth.snapshot(tip, TIP_FIELDS) if tip_id else None
        for name in TEXT_FIELDS:
            setattr(tip, name, values[name])
        tip.category = values["category"]
        tip.crop_id = int(values["crop_id"]) if values["crop_id"] else None
        tip.active = values["active"] == "on"
        session.add(tip)
        session.flush()
        auth.audit(session, staff, action="edit" if tip_id else "create", entity="tip", entity_id=tip.id,
                   before=before, after=auth.snapshot(tip, TIP_FIELDS), now=now)
        saved_id = tip.id
    clear_content_cache(request)
    flash(request, "Tip saved.")
    return back_to(request, "admin_tip", tip_id=saved_id)
