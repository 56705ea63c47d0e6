"""Console pages: buyers' demands, offers by group, closing, CSV export, buyer SMS."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import col, select

from gateway.actions import linkage
from gateway.admin.core import (
    DB_INT_MAX,
    UTC,
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
    settings_of,
    tn,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import auth, models, reference
from gateway.data.content import overrides
from gateway.data.spreadsheets import csv_text
from gateway.outbound import outbox
from messages import default_catalog
from messages.sms import measure, render_sms

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- buyer demand ----------------------------------------------------------------------------------

DEMAND_FIELDS = ("buyer_id", "crop_id", "quantity_kg", "price", "unit", "place", "valid_until", "status")
TYPED_FIELDS = ("buyer_id", "crop_id", "quantity_kg", "price", "unit", "place", "valid_until")


def _today(request: Request) -> dt.date:
    # Farmers' calendar, as linkage.is_expired and the USSD menu count it.
    return now_of(request).astimezone(settings_of(request).tz).date()


def _list_context(session, today: dt.date) -> dict:
    d = models.Demand
    demands = session.exec(select(d).order_by(col(d.status), col(d.valid_until))).all()
    return {
        "demands": demands,
        "buyers": {b.id: b for b in session.exec(select(models.Buyer).order_by(models.Buyer.name))},
        "crops": {c.id: c for c in session.exec(select(models.Crop).order_by(models.Crop.sort_order))},
        "totals": linkage.offer_totals(session, demands),
        "units": reference.active_unit_codes(session),
        "today": today,
    }


@router.get("/demands", name="admin_demands")
def demands_page(request: Request, staff: Editor):
    with db_of(request).unit_of_work() as session:
        context = _list_context(session, _today(request))
    return render(request, "demands.html", {**context, "values": {}, "errors": {}})


def _parse_date(raw: str) -> dt.date:
    """ISO (what a date picker sends) or dd/mm/yyyy (what a person types where there is none)."""
    raw = raw.strip()
    if "/" in raw:
        day, month, year = raw.split("/")
        return dt.date(int(year), int(month), int(day))
    return dt.date.fromisoformat(raw)


def _whole(raw: str | None) -> int | None:
    raw = (raw or "").strip().replace(" ", "").replace("\u202f", "").replace("\xa0", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= DB_INT_MAX else None


def _demand_values(request: Request, session, form: dict, *, today: dt.date, demand: models.Demand | None = None
                   ) -> tuple[dict, dict[str, str]]:
    """The demand's values from the form, and what is wrong beside each field (translated).
    A new demand must end today or later: one already past would never reach a farmer."""
    values: dict = {}
    errors: dict[str, str] = {}
    buyer = session.get(models.Buyer, _whole(form.get("buyer_id")) or 0)
    if buyer is None:
        errors["buyer_id"] = tr(request, "Choose a buyer from the list.")
    else:
        values["buyer_id"] = buyer.id
    crop = session.get(models.Crop, _whole(form.get("crop_id")) or 0)
    if crop is None or not (crop.active or (demand is not None and crop.id == demand.crop_id)):
        errors["crop_id"] = tr(request, "Choose a crop from the list.")
    else:
        values["crop_id"] = crop.id
    for name, problem in (("quantity_kg", "A whole number of kilograms, more than 0."),
                          ("price", "A whole number of FCFA, more than 0.")):
        number = _whole(form.get(name))
        if number is None:
            errors[name] = tr(request, problem)
        else:
            values[name] = number
    units = reference.active_unit_codes(session) + ([demand.unit] if demand is not None else [])
    unit = form.get("unit") or "kg"
    if unit not in units:
        errors["unit"] = tr(request, "Choose a unit from the list.")
    else:
        values["unit"] = unit
    place = " ".join(form.get("place", "").split())[:80]
    if not place:
        errors["place"] = tr(request, "Say where the crop is to be delivered.")
    else:
        values["place"] = place
    try:
        until = _parse_date(form.get("valid_until", ""))
    except ValueError:
        errors["valid_until"] = tr(request, "A date, such as 31/12/2026.")
    else:
        if until < today and demand is None:
            errors["valid_until"] = tr(request, "This date is already past: farmers would never see the demand. "
                                                "Give today or a later date.")
        values["valid_until"] = until
    return values, errors


@router.post("/demands", name="admin_demand_create")
async def demand_create(request: Request, staff: Editor, form: Form):
    now = now_of(request)
    today = _today(request)
    with db_of(request).unit_of_work() as session:
        values, errors = _demand_values(request, session, form, today=today)
        if errors:
            # Everything typed comes back, with the reason beside each wrong field; nothing saved.
            context = _list_context(session, today)
            typed = {k: form.get(k, "") for k in TYPED_FIELDS}
            return render(request, "demands.html", {**context, "values": typed, "errors": errors}, status_code=400)
        demand = models.Demand(**values, created_at=now.astimezone(UTC))
        session.add(demand)
        session.flush()
        auth.audit(session, staff, action="create", entity="demand", entity_id=demand.id, after=values, now=now)
        demand_id = demand.id
    clear_content_cache(request)
    flash(request, "Demand #{id} published: farmers see it in the USSD menu until {date}.", id=demand_id,
          date=values["valid_until"].strftime("%d/%m/%Y"))
    return back_to(request, "admin_demands")


def _demand_context(session, demand: models.Demand, today: dt.date) -> dict:
    o, p = models.Offer, models.Producer
    units = reference.active_unit_codes(session)
    units += [] if demand.unit in units else [demand.unit]  # the demand's own, even when retired since
    return {
        "d": demand, "today": today, "units": units,
        "buyers": session.exec(select(models.Buyer).order_by(models.Buyer.name)).all(),
        "crops": session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all(),
        "totals": linkage.offer_totals(session, [demand])[demand.id],
        "offers": session.exec(select(o, p).join(p, p.id == o.producer_id).where(o.demand_id == demand.id)
                               .order_by(p.cluster, o.id)).all(),
    }


def _stored_values(demand: models.Demand) -> dict[str, str]:
    return {"buyer_id": str(demand.buyer_id), "crop_id": str(demand.crop_id), "quantity_kg": str(demand.quantity_kg),
            "price": str(demand.price), "unit": demand.unit, "place": demand.place,
            "valid_until": demand.valid_until.isoformat()}


@router.get("/demands/{demand_id}", name="admin_demand")
def demand_page(request: Request, demand_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        if demand is None:
            raise HTTPException(404, "No such demand.")
        context = _demand_context(session, demand, _today(request))
    return render(request, "demand.html", {**context, "values": _stored_values(demand), "errors": {}})


@router.post("/demands/{demand_id}", name="admin_demand_save")
async def demand_save(request: Request, demand_id: DbId, staff: Editor, form: Form):
    now = now_of(request)
    today = _today(request)
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        if demand is None:
            raise HTTPException(404, "No such demand.")
        values, errors = _demand_values(request, session, form, today=today, demand=demand)
        if errors:
            context = _demand_context(session, demand, today)
            typed = {k: form.get(k, "") for k in TYPED_FIELDS}
            return render(request, "demand.html", {**context, "values": typed, "errors": errors}, status_code=400)
        before = auth.snapshot(demand, DEMAND_FIELDS)
        for name, value in values.items():
            setattr(demand, name, value)
        session.add(demand)
        auth.audit(session, staff, action="edit", entity="demand", entity_id=demand_id, before=before,
                   after=auth.snapshot(demand, DEMAND_FIELDS), now=now)
        status = demand.status
    clear_content_cache(request)
    if status == "open" and linkage.is_expired(demand, today):
        # Saved as asked, but nobody must believe farmers see it.
        flash(request, "Demand #{id} saved. Its deadline ({date}) is past: it is expired and farmers do not see it; "
                       "give a later date to show it again.", "error", id=demand_id,
              date=demand.valid_until.strftime("%d/%m/%Y"))
    else:
        flash(request, "Demand #{id} saved.", id=demand_id)
    return back_to(request, "admin_demands")


@router.post("/demands/{demand_id}/close", name="admin_demand_close")
async def demand_close(request: Request, demand_id: DbId, staff: Editor, form: Form):
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        if demand is None:
            raise HTTPException(404, "No such demand.")
        if demand.status == "closed":
            flash(request, "Demand #{id} was already closed: nothing changed.", "error", id=demand_id)
            return back_to(request, "admin_demands")
        if not confirmed(form):
            return _close_confirmation(request, session, demand, form)
        before = auth.snapshot(demand, DEMAND_FIELDS)
        demand.status = "closed"
        session.add(demand)
        auth.audit(session, staff, action="close", entity="demand", entity_id=demand_id, before=before, after={"status": "closed"}, now=now)
    clear_content_cache(request)
    flash(request, "Demand #{id} closed: farmers no longer see it.", id=demand_id)
    return back_to(request, "admin_demands")


def _close_confirmation(request: Request, session, demand: models.Demand, form: dict):
    """Who is concerned by the closing, and what they get (nothing is sent: say so)."""
    o = models.Offer
    crop = session.get(models.Crop, demand.crop_id)
    buyer = session.get(models.Buyer, demand.buyer_id)
    totals = linkage.offer_totals(session, [demand])[demand.id].overall
    producers = session.exec(select(func.count(func.distinct(o.producer_id))).where(o.demand_id == demand.id)).one()
    offers = totals.count("pending", "accepted", "declined")
    lines = [
        tr(request, "Demand #{id}: {crop} for {buyer}, {kg} kg wanted.", id=demand.id, crop=crop.name_fr if crop else "?",
           buyer=buyer.name if buyer else "?", kg=demand.quantity_kg),
        tr(request, "{offers} from {producers}: {accepted}, {pending}, {declined}.",
           offers=tn(request, offers, "{n} offer", "{n} offers"),
           producers=tn(request, producers, "{n} producer", "{n} producers"),
           accepted=tn(request, totals.count("accepted"), "{n} accepted", "{n} accepted"),
           pending=tn(request, totals.count("pending"), "{n} pending", "{n} pending"),
           declined=tn(request, totals.count("declined"), "{n} declined", "{n} declined")),
        tr(request, "Farmers will no longer see it in the USSD menu and can no longer offer."),
        tr(request, "The producers who offered receive nothing: no SMS is sent."),
    ]
    if totals.count("pending"):
        lines.append(tn(request, totals.count("pending"),
                        "{n} offer is still pending: accept or decline it first if the producer should hear back "
                        "(each decision sends one SMS).",
                        "{n} offers are still pending: accept or decline them first if the producers should hear "
                        "back (each decision sends one SMS)."))
    return confirm_page(
        request, title=tr(request, "Close demand #{id}?", id=demand.id), lines=lines,
        cost=tr(request, "Cost: no SMS, 0 FCFA."), action=path_for(request, "admin_demand_close", demand_id=demand.id),
        form=form, button=tr(request, "Close the demand"), cancel=path_for(request, "admin_demand", demand_id=demand.id),
        danger=True,
    )


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
    """An SMS to the buyer with the offers so far, after a confirmation that shows it and its cost."""
    o = models.Offer
    now = now_of(request)
    settings = settings_of(request)
    with db_of(request).unit_of_work() as session:
        demand = session.get(models.Demand, demand_id)
        buyer = session.get(models.Buyer, demand.buyer_id) if demand else None
        if demand is None or buyer is None:
            raise HTTPException(404, "No such demand.")
        if not buyer.phone:
            flash(request, "{buyer} has no phone number on record: add one under Buyers.", "error", buyer=buyer.name)
            return back_to(request, "admin_demands")
        n, kg = session.exec(select(func.count(), func.coalesce(func.sum(o.quantity_kg), 0)).where(o.demand_id == demand_id)).one()
        crop = session.get(models.Crop, demand.crop_id)
        catalog = default_catalog().with_overrides(overrides(session))
        text = catalog.text("fr", "sms.buyer_summary", crop=crop.name_fr, count=n, quantity=f"{int(kg):,}".replace(",", " "), wanted=f"{demand.quantity_kg:,}".replace(",", " "))
        if not confirmed(form):
            segments = measure(render_sms(text, "fr", fold=settings.sms_fold)).segments
            cost = round(segments * settings.sms_price_per_segment)
            return confirm_page(
                request, title=tr(request, "SMS the buyer?"),
                lines=[tr(request, "One SMS to {buyer} ({phone}):", buyer=buyer.name, phone=buyer.phone), text],
                cost=tr(request, "Cost: {segments}, about {cost} FCFA.", cost=cost,
                        segments=tn(request, segments, "{n} SMS segment", "{n} SMS segments")),
                action=path_for(request, "admin_demand_notify", demand_id=demand_id), form=form,
                button=tr(request, "Send the SMS"), cancel=path_for(request, "admin_demands"),
            )
        row = outbox.queue_sms(session, phone=buyer.phone, text=text, language="fr", kind="notice", now=now.astimezone(UTC),
                               fold=settings.sms_fold)
        auth.audit(session, staff, action="notify", entity="demand", entity_id=demand_id, after={"sms": row.id}, now=now)
    flash(request, "SMS queued to {buyer}.", buyer=buyer.name)
    return back_to(request, "admin_demands")
