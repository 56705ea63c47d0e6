"""Console pages: buyers' demands, offers by group, closing, CSV export, buyer SMS."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import col, select

from gateway import auth, linkage, models, outbox, reference
from gateway.admin.core import (
    DB_INT_MAX,
    UTC,
    Editor,
    Form,
    back_to,
    clear_content_cache,
    db_of,
    flash,
    now_of,
    render,
    settings_of,
)
from gateway.content import overrides
from gateway.deps import DbId
from gateway.spreadsheets import csv_text
from messages import default_catalog

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- buyer demand ----------------------------------------------------------------------------------

DEMAND_FIELDS = ("buyer_id", "crop_id", "quantity_kg", "price", "unit", "place", "valid_until", "status")


@router.get("/demands", name="admin_demands")
def demands_page(request: Request, staff: Editor):
    d = models.Demand
    with db_of(request).unit_of_work() as session:
        demands = session.exec(select(d).order_by(col(d.status), col(d.valid_until))).all()
        buyers = {b.id: b for b in session.exec(select(models.Buyer))}
        crops = {c.id: c for c in session.exec(select(models.Crop).order_by(models.Crop.sort_order))}
        totals = linkage.offer_totals(session, demands)
        units = reference.active_unit_codes(session)
    return render(request, "demands.html", {"demands": demands, "buyers": buyers, "crops": crops, "totals": totals,
                                            "today": now_of(request).date(), "units": units})


def _demand_values(form: dict, units: list[str]) -> tuple[dict | None, str | None]:
    try:
        values = {
            "buyer_id": int(form["buyer_id"]), "crop_id": int(form["crop_id"]), "quantity_kg": int(form["quantity_kg"]),
            "price": int(form["price"]), "unit": form.get("unit") or "kg", "place": form.get("place", "").strip()[:80],
            "valid_until": dt.date.fromisoformat(form["valid_until"]),
        }
    except (KeyError, ValueError):
        return None, "Fill every field: numbers for quantity and price, a date for the deadline."
    if not all(0 < values[k] <= DB_INT_MAX for k in ("buyer_id", "crop_id", "quantity_kg", "price")):
        return None, "Quantity and price must be positive numbers (and not absurdly large)."
    if values["quantity_kg"] <= 0 or values["price"] <= 0 or not values["place"] or values["unit"] not in units:
        return None, "Quantity and price must be positive, the place given and the unit known."
    return values, None


@router.post("/demands", name="admin_demand_create")
async def demand_create(request: Request, staff: Editor, form: Form):
    with db_of(request).unit_of_work() as session:
        units = reference.active_unit_codes(session)
    values, problem = _demand_values(form, units)
    if problem:
        flash(request, problem, "error")
        return back_to(request, "admin_demands")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        crop = session.get(models.Crop, values["crop_id"])
        if session.get(models.Buyer, values["buyer_id"]) is None or crop is None or not crop.active:
            raise HTTPException(400, "Unknown buyer or crop (or the crop is retired).")
        demand = models.Demand(**values, created_at=now.astimezone(UTC))
        session.add(demand)
        session.flush()
        auth.audit(session, staff, action="create", entity="demand", entity_id=demand.id, after=values, now=now)
    clear_content_cache(request)
    flash(request, "Demand published: farmers see it in the USSD menu.")
    return back_to(request, "admin_demands")


@router.get("/demands/{demand_id}", name="admin_demand")
def demand_page(request: Request, demand_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        if demand is None:
            raise HTTPException(404, "No such demand.")
        buyers = session.exec(select(models.Buyer)).all()
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        totals = linkage.offer_totals(session, [demand])[demand.id]
        o, p = models.Offer, models.Producer
        offers = session.exec(select(o, p).join(p, p.id == o.producer_id).where(o.demand_id == demand_id)
                              .order_by(p.cluster, o.id)).all()
        # Active units, and the demand's own even when retired since.
        units = reference.active_unit_codes(session)
        units += [] if demand.unit in units else [demand.unit]
    return render(request, "demand.html", {"d": demand, "buyers": buyers, "crops": crops, "units": units,
                                           "totals": totals, "offers": offers, "today": now_of(request).date()})


@router.post("/demands/{demand_id}", name="admin_demand_save")
async def demand_save(request: Request, demand_id: DbId, staff: Editor, form: Form):
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        units = reference.active_unit_codes(session) + ([demand.unit] if demand else [])
    values, problem = _demand_values(form, units)
    if problem:
        flash(request, problem, "error")
        return back_to(request, "admin_demand", demand_id=demand_id)
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        if demand is None:
            raise HTTPException(404, "No such demand.")
        before = auth.snapshot(demand, DEMAND_FIELDS)
        for name, value in values.items():
            setattr(demand, name, value)
        session.add(demand)
        auth.audit(session, staff, action="edit", entity="demand", entity_id=demand_id, before=before,
                   after=auth.snapshot(demand, DEMAND_FIELDS), now=now)
    clear_content_cache(request)
    flash(request, f"Demand #{demand_id} saved.")
    return back_to(request, "admin_demands")


@router.post("/demands/{demand_id}/close", name="admin_demand_close")
async def demand_close(request: Request, demand_id: DbId, staff: Editor, form: Form):
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        if demand is None:
            raise HTTPException(404, "No such demand.")
        before = auth.snapshot(demand, DEMAND_FIELDS)
        demand.status = "closed"
        session.add(demand)
        auth.audit(session, staff, action="close", entity="demand", entity_id=demand_id, before=before, after={"status": "closed"}, now=now)
    clear_content_cache(request)
    flash(request, f"Demand #{demand_id} closed.")
    return back_to(request, "admin_demands")


@router.get("/demands/{demand_id}/offers.csv", name="admin_demand_export")
def demand_export(request: Request, demand_id: DbId, staff: Editor):
    o, p = models.Offer, models.Producer
    with db_of(request).unit_of_work() as session:
        rows = session.exec(
            select(o, p).join(p, p.id == o.producer_id).where(o.demand_id == demand_id).order_by(p.cluster, o.id)
        ).all()
    text = csv_text(  # farmers' names and villages come from SMS and USSD: no formulas (finding 12)
        ["offer", "date", "phone", "name", "village", "region", "cluster", "quantity_kg", "status"],
        ([offer.id, offer.created_at.date().isoformat(), producer.phone, producer.name, producer.village,
          producer.region, producer.cluster, offer.quantity_kg, offer.status] for offer, producer in rows),
    )
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="demand-{demand_id}-offers.csv"'})


@router.post("/demands/{demand_id}/notify", name="admin_demand_notify")
async def demand_notify(request: Request, demand_id: DbId, staff: Editor, form: Form):
    """An SMS to the buyer with the offers so far."""
    o = models.Offer
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        buyer = session.get(models.Buyer, demand.buyer_id) if demand else None
        if demand is None or buyer is None:
            raise HTTPException(404, "No such demand.")
        if not buyer.phone:
            flash(request, f"{buyer.name} has no phone number on record.", "error")
            return back_to(request, "admin_demands")
        n, kg = session.exec(select(func.count(), func.coalesce(func.sum(o.quantity_kg), 0)).where(o.demand_id == demand_id)).one()
        crop = session.get(models.Crop, demand.crop_id)
        catalog = default_catalog().with_overrides(overrides(session))
        text = catalog.text("fr", "sms.buyer_summary", crop=crop.name_fr, count=n, quantity=f"{int(kg):,}".replace(",", " "), wanted=f"{demand.quantity_kg:,}".replace(",", " "))
        row = outbox.queue_sms(session, phone=buyer.phone, text=text, language="fr", kind="notice", now=now.astimezone(UTC),
                               fold=settings_of(request).sms_fold)
        auth.audit(session, staff, action="notify", entity="demand", entity_id=demand_id, after={"sms": row.id}, now=now)
    flash(request, f"SMS queued to {buyer.name}.")
    return back_to(request, "admin_demands")
