"""Console pages: price-alert broadcasts with audience, cost estimate, approval and sending."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from gateway import auth, broadcast, models
from gateway.admin.core import (
    UTC,
    Editor,
    Form,
    back_to,
    db_of,
    flash,
    now_of,
    render,
    settings_of,
)
from gateway.deps import DbId
from messages.catalog import LANGUAGES

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- broadcasts ------------------------------------------------------------------------------------


def _audience_from(form: dict, session) -> broadcast.Audience:
    def many(name: str) -> list[str]:
        return [v.strip() for v in form.get(name, "").split(",") if v.strip()]

    crop_ids = {c.code: c.id for c in session.exec(select(models.Crop))}
    market_ids = {m.code: m.id for m in session.exec(select(models.Market))}
    return broadcast.Audience(
        regions=[form["region"]] if form.get("region") else [],
        markets=[market_ids[c] for c in [form.get("market", "")] if c in market_ids],
        crops=[crop_ids[c] for c in [form.get("crop", "")] if c in crop_ids],
        clusters=many("clusters"),
        languages=[form["language"]] if form.get("language") in LANGUAGES else [],
    )


@router.get("/broadcasts", name="admin_broadcasts")
def broadcasts_page(request: Request, staff: Editor):
    with db_of(request).unit_of_work() as session:
        rows = session.exec(select(models.Broadcast).order_by(col(models.Broadcast.id).desc()).limit(50)).all()
        stats = {b.id: broadcast.stats(session, b.id) for b in rows}
        regions = sorted({m.region for m in session.exec(select(models.Market))})
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        markets = session.exec(select(models.Market).order_by(models.Market.name)).all()
    return render(request, "broadcasts.html", {"rows": rows, "stats": stats, "regions": regions, "crops": crops, "markets": markets})


@router.post("/broadcasts/preview", name="admin_broadcast_preview")
async def broadcast_preview(request: Request, staff: Editor, form: Form):
    with db_of(request).unit_of_work() as session:
        audience = _audience_from(form, session)
        previews = broadcast.preview(session, text_fr=form.get("text_fr", ""), text_bm=form.get("text_bm", ""),
                                     audience=audience, settings=settings_of(request))
    total = sum(p.recipients for p in previews)
    return JSONResponse({
        "languages": [p.__dict__ for p in previews],
        "recipients": total,
        "estimated_cost": sum(p.estimated_cost for p in previews),
        "needs_approval": total > settings_of(request).broadcast_approval_threshold,
    })


@router.post("/broadcasts", name="admin_broadcast_create")
async def broadcast_create(request: Request, staff: Editor, form: Form):
    settings = settings_of(request)
    text_fr = form.get("text_fr", "").strip()
    if not text_fr:
        flash(request, "The French text is required.", "error")
        return back_to(request, "admin_broadcasts")
    scheduled = None
    if form.get("at"):
        try:
            scheduled = dt.datetime.fromisoformat(form["at"]).replace(tzinfo=settings.tz)
        except ValueError:
            flash(request, "Unreadable date and time.", "error")
            return back_to(request, "admin_broadcasts")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        audience = _audience_from(form, session)
        total = sum(p.recipients for p in broadcast.preview(session, text_fr=text_fr, text_bm=form.get("text_bm", ""), audience=audience, settings=settings))
        if total == 0:
            flash(request, "Nobody matches this audience.", "error")
            return back_to(request, "admin_broadcasts")
        created = broadcast.create_broadcast(session, text_fr=text_fr, text_bm=form.get("text_bm", ""), audience=audience,
                                             now=now, scheduled_at=scheduled, created_by=staff.email)
        if total > settings.broadcast_approval_threshold:
            created.status = "awaiting_approval"  # the worker expands only "pending" broadcasts
            session.add(created)
        auth.audit(session, staff, action="create", entity="broadcast", entity_id=created.id,
                   after={"text_fr": text_fr, "audience": audience.to_dict(), "recipients": total, "status": created.status}, now=now)
        status = created.status
        broadcast_id = created.id
    if status == "awaiting_approval":
        flash(request, f"Broadcast #{broadcast_id} to {total} producers waits for another staff member's approval.")
    else:
        flash(request, f"Broadcast #{broadcast_id} to {total} producers is queued.")
    return back_to(request, "admin_broadcast", broadcast_id=broadcast_id)


@router.get("/broadcasts/{broadcast_id}", name="admin_broadcast")
def broadcast_page(request: Request, broadcast_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        b = session.get(models.Broadcast, broadcast_id)
        if b is None:
            raise HTTPException(404, "No such broadcast.")
        stats = broadcast.stats(session, broadcast_id)
    return render(request, "broadcast.html", {"b": b, "stats": stats})


@router.post("/broadcasts/{broadcast_id}/{action}", name="admin_broadcast_action")
async def broadcast_action(request: Request, broadcast_id: DbId, action: str, staff: Editor, form: Form):
    if action not in ("approve", "cancel"):
        raise HTTPException(404)
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        b = session.get(models.Broadcast, broadcast_id)
        if b is None:
            raise HTTPException(404, "No such broadcast.")
        if action == "approve":
            if b.status != "awaiting_approval":
                raise HTTPException(409, "This broadcast does not wait for approval.")
            if b.created_by == staff.email:
                raise HTTPException(403, "Another staff member must approve your broadcast.")
            b.status, b.approved_by, b.approved_at = "pending", staff.email, now.astimezone(UTC)
        else:
            if b.status not in ("awaiting_approval", "pending"):
                raise HTTPException(409, "Only a broadcast not yet sending can be cancelled.")
            b.status = "cancelled"
        session.add(b)
        auth.audit(session, staff, action=action, entity="broadcast", entity_id=broadcast_id, after={"status": b.status}, now=now)
    flash(request, f"Broadcast #{broadcast_id}: {'approved' if action == 'approve' else 'cancelled'}.")
    return back_to(request, "admin_broadcast", broadcast_id=broadcast_id)
