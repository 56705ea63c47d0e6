"""Console pages: Good Agricultural Practice and post-harvest tips, in French and Bambara."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from sqlmodel import select

from gateway import auth, models
from gateway.admin.core import (
    Editor,
    Form,
    back_to,
    clear_content_cache,
    db_of,
    flash,
    int_param,
    now_of,
    render,
)
from gateway.deps import DbId

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- tips ------------------------------------------------------------------------------------------

TIP_FIELDS = ("category", "crop_id", "title_fr", "title_bm", "text_fr", "text_bm", "active")


@router.get("/tips", name="admin_tips")
def tips_page(request: Request, staff: Editor):
    with db_of(request).unit_of_work() as session:
        tips = session.exec(select(models.Tip).order_by(models.Tip.category, models.Tip.sort_order)).all()
        crops = {c.id: c for c in session.exec(select(models.Crop))}
    return render(request, "tips.html", {"tips": tips, "crops": crops})


@router.get("/tips/{tip_id}", name="admin_tip")
def tip_page(request: Request, tip_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        tip = session.get(models.Tip, tip_id) if tip_id else models.Tip(category="gap", title_fr="", title_bm="", text_fr="", text_bm="")
        if tip is None:
            raise HTTPException(404, "No such tip.")
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
    return render(request, "tip.html", {"tip": tip, "crops": crops, "tip_id": tip_id})


@router.post("/tips/{tip_id}", name="admin_tip_save")
async def tip_save(request: Request, tip_id: DbId, staff: Editor, form: Form):
    values = {name: form.get(name, "").strip() for name in ("title_fr", "title_bm", "text_fr", "text_bm")}
    category = form.get("category")
    if category not in ("gap", "postharvest", "nutrition") or not values["title_fr"] or not values["text_fr"]:
        flash(request, "Category, French title and French text are required.", "error")
        return back_to(request, "admin_tip", tip_id=tip_id)
    if any(len(values[k]) > 60 for k in ("title_fr", "title_bm")) or any(len(values[k]) > 1000 for k in ("text_fr", "text_bm")):
        flash(request, "Titles are at most 60 characters, texts 1000.", "error")
        return back_to(request, "admin_tip", tip_id=tip_id)
    crop_raw = form.get("crop_id", "")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        tip = session.get(models.Tip, tip_id) if tip_id else models.Tip(category=category, **values)
        if tip is None:
            raise HTTPException(404, "No such tip.")
        before = auth.snapshot(tip, TIP_FIELDS) if tip_id else None
        for k, v in values.items():
            setattr(tip, k, v)
        tip.category = category
        tip.crop_id = int_param(crop_raw, "crop") if crop_raw.strip() else None
        if tip.crop_id is not None and session.get(models.Crop, tip.crop_id) is None:
            raise HTTPException(400, "Unknown crop.")
        tip.active = form.get("active") == "on"
        session.add(tip)
        session.flush()
        auth.audit(session, staff, action="edit" if tip_id else "create", entity="tip", entity_id=tip.id,
                   before=before, after=auth.snapshot(tip, TIP_FIELDS), now=now)
        saved_id = tip.id
    clear_content_cache(request)
    flash(request, "Tip saved.")
    return back_to(request, "admin_tip", tip_id=saved_id)
