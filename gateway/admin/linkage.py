"""Console pages for market linkages: decisions on offers, buyers' phones and daily summary, and
the services directory. Same rules as the other content pages: editors (and admins) only, a CSRF
token on every form, every change audited."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import func
from sqlmodel import col, select

from gateway.actions import linkage
from gateway.admin.core import (
    Editor,
    Form,
    back_to,
    clear_content_cache,
    db_of,
    flash,
    language_of,
    now_of,
    render,
    settings_of,
    tr,
)
from gateway.core.deps import DbId
from gateway.core.phones import InvalidPhone, parse_phone
from gateway.data import auth, models
from gateway.data.content import current_catalog
from menus.types import SERVICE_CATEGORIES, SERVICE_NAME_MAX, SERVICE_SUMMARY_MAX
from messages import staff as staff_text
from messages import to_ussd

router = APIRouter(prefix="/admin", include_in_schema=False)

UTC = dt.timezone.utc


NOT_FOUND = {"offer": "No such offer.", "buyer": "No such buyer.", "service": "No such service."}


def _found(row, what: str):
    if row is None:
        raise HTTPException(404, NOT_FOUND[what])
    return row


# gateway.core.phones says what is wrong in English; the console says it in the reader's language.
PHONE_REASONS = {
    "phone number is empty": "Give a phone number.",
    "phone number is too long": "This phone number is too long.",
    "not a valid phone number": "Not a valid phone number.",
}


def phone_reason(request: Request, exc: InvalidPhone) -> str:
    reason = str(exc)
    if reason.startswith("not a phone number"):
        return tr(request, "Not a phone number: write it as +223 76 00 00 00 or 76 00 00 00.")
    return tr(request, PHONE_REASONS.get(reason, "Not a valid phone number."))


# -- offers ----------------------------------------------------------------------------------------


@router.post("/offers/{offer_id}/{decision}", name="admin_offer_decide")
async def offer_decide(request: Request, offer_id: DbId, decision: str, staff: Editor, form: Form):
    if decision not in ("accept", "decline"):
        raise HTTPException(404)
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        offer = _found(session.get(models.Offer, offer_id), "offer")
        before = auth.snapshot(offer, ("status", "decided_by"))
        result = linkage.decide_offer(
            session, offer_id=offer_id, accept=decision == "accept", staff_email=staff.email, now=now,
            catalog=current_catalog(session, request.app.state.content_cache), settings=settings_of(request),
        )
        offer = result.offer
        if result.changed:
            auth.audit(session, staff, action=decision, entity="offer", entity_id=offer_id, before=before,
                       after={"status": offer.status, "sms": result.sms_id}, now=now)
        demand_id, status, decided_by = offer.demand_id, offer.status, offer.decided_by
    shown = staff_text.word(language_of(request), "offer_status", status)
    if not result.changed:
        flash(request, "Offer #{id} was already {status} by {who}: nothing changed, no SMS sent.", "error",
              id=offer_id, status=shown, who=decided_by or tr(request, "someone"))
    elif result.sms_id is None:
        flash(request, "Offer #{id} {status}; no SMS: the producer opted out of SMS.", id=offer_id, status=shown)
    else:
        flash(request, "Offer #{id} {status}; the farmer's SMS is queued.", id=offer_id, status=shown)
    return back_to(request, "admin_demand", demand_id=demand_id)


# -- buyers ----------------------------------------------------------------------------------------

BUYER_FIELDS = ("phone", "daily_summary")


@router.get("/buyers", name="admin_buyers")
def buyers_page(request: Request, staff: Editor):
    with db_of(request).unit_of_work() as session:
        buyers = session.exec(select(models.Buyer).order_by(models.Buyer.name)).all()
    return render(request, "buyers.html", {"buyers": buyers, "hour": settings_of(request).buyer_summary_hour})


@router.post("/buyers/{buyer_id}", name="admin_buyer_save")
async def buyer_save(request: Request, buyer_id: DbId, staff: Editor, form: Form):
    raw = form.get("phone", "").strip()
    summary = form.get("daily_summary") == "on"
    try:
        phone = parse_phone(raw) if raw else None
    except InvalidPhone as exc:
        flash(request, "Phone: {reason} Nothing saved.", "error", reason=phone_reason(request, exc))
        return back_to(request, "admin_buyers")
    if summary and phone is None:
        flash(request, "The daily summary needs a phone number. Nothing saved.", "error")
        return back_to(request, "admin_buyers")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        buyer = _found(session.get(models.Buyer, buyer_id), "buyer")
        before = auth.snapshot(buyer, BUYER_FIELDS)
        buyer.phone, buyer.daily_summary = phone, summary
        session.add(buyer)
        auth.audit(session, staff, action="edit", entity="buyer", entity_id=buyer_id, before=before,
                   after=auth.snapshot(buyer, BUYER_FIELDS), now=now)
        name = buyer.name
    flash(request, "{name} saved.", name=name)
    return back_to(request, "admin_buyers")


# -- services directory ----------------------------------------------------------------------------


def _regions(session) -> list[str]:
    """Regions staff may choose: those of the markets, and any already in the directory."""
    markets = session.exec(select(models.Market.region).distinct()).all()
    listed = session.exec(select(models.Service.region).distinct()).all()
    return sorted({r for r in (*markets, *listed) if r})


@router.get("/services", name="admin_services")
def services_page(request: Request, staff: Editor):
    category = request.query_params.get("category", "")
    region = request.query_params.get("region", "")
    s = models.Service
    with db_of(request).unit_of_work() as session:
        query = select(s).order_by(s.category, s.region, s.name)
        if category:
            query = query.where(s.category == category)
        if region:
            query = query.where(s.region == region)
        rows = session.exec(query).all()
        regions = _regions(session)
        sr = models.ServiceRequest
        requested = dict(session.exec(
            select(sr.service_id, func.count()).where(col(sr.sms_id).is_not(None)).group_by(sr.service_id)
        ).all())
    return render(request, "services.html", {"rows": rows, "categories": SERVICE_CATEGORIES, "regions": regions,
                                             "category": category, "region": region, "requested": requested})


def _service_form(request: Request, values: dict, service_id: int, regions, errors=None, status_code: int = 200):
    return render(request, "service.html", {
        "values": values, "service_id": service_id, "categories": SERVICE_CATEGORIES, "regions": regions,
        "errors": errors or {}, "name_max": SERVICE_NAME_MAX, "summary_max": SERVICE_SUMMARY_MAX,
    }, status_code=status_code)


def service_errors(request: Request, form: dict, values: dict, regions) -> dict[str, str]:
    """What is wrong with an entry, beside each field and in the reader's language (the same rules
    as gateway.actions.linkage.check_service, which says them in English for the logs)."""
    errors: dict[str, str] = {}
    if values["category"] not in SERVICE_CATEGORIES:
        errors["category"] = tr(request, "Choose a category from the list.")
    if values["region"] not in set(regions):
        errors["region"] = tr(request, "Choose a region from the list.")
    for name, required, missing, too_long in (
        ("name", True, "Name is required.", "Name is too long for a USSD screen: at most {n} characters."),
        ("summary_fr", True, "French summary is required.", "French summary is too long for a USSD screen: at most {n} characters."),
        ("summary_bm", False, "", "Bambara summary is too long for a USSD screen: at most {n} characters."),
    ):
        limit = SERVICE_NAME_MAX if name == "name" else SERVICE_SUMMARY_MAX
        if required and not values[name]:
            errors[name] = tr(request, missing)
        elif max(len(values[name]), len(to_ussd(values[name]))) > limit:  # as a phone shows it: ɲ is "ny"
            errors[name] = tr(request, too_long, n=limit)
    try:
        parse_phone(form.get("phone", ""))
    except InvalidPhone as exc:
        errors["phone"] = phone_reason(request, exc)
    return errors


def _typed(values: dict) -> dict:
    return {**values, "active": bool(values.get("active"))}


@router.get("/services/{service_id}", name="admin_service")
def service_page(request: Request, service_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        if service_id:
            service = _found(session.get(models.Service, service_id), "service")
            values = {name: getattr(service, name) for name in linkage.SERVICE_FIELDS}
        else:
            values = {"category": request.query_params.get("category") or SERVICE_CATEGORIES[0], "region": "",
                      "name": "", "phone": "", "summary_fr": "", "summary_bm": "", "active": True}
        regions = _regions(session)
    return _service_form(request, _typed(values), service_id, regions)


@router.post("/services/{service_id}", name="admin_service_save")
async def service_save(request: Request, service_id: DbId, staff: Editor, form: Form):
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        service = _found(session.get(models.Service, service_id), "service") if service_id else None
        regions = _regions(session)
        values, problems = linkage.check_service(form, regions)
        if problems:
            # Shown with what was typed, each reason beside its field; nothing is saved.
            typed = {**values, "phone": form.get("phone", "")}
            errors = service_errors(request, form, values, regions) or {"name": problems[0]}
            return _service_form(request, _typed(typed), service_id, regions, errors, status_code=400)
        before = auth.snapshot(service, linkage.SERVICE_FIELDS) if service else None
        service = service or models.Service(**values, created_at=now.astimezone(UTC))
        for name, value in values.items():
            setattr(service, name, value)
        service.updated_at = now.astimezone(UTC)
        session.add(service)
        session.flush()
        auth.audit(session, staff, action="edit" if service_id else "create", entity="service", entity_id=service.id,
                   before=before, after=auth.snapshot(service, linkage.SERVICE_FIELDS), now=now)
        saved_id = service.id
    clear_content_cache(request)
    if values["active"]:
        flash(request, "Service saved: farmers see it in the USSD Services menu.")
    else:
        flash(request, "Service saved (hidden from farmers).")
    return back_to(request, "admin_service", service_id=saved_id)


@router.post("/services/{service_id}/{action}", name="admin_service_action")
async def service_action(request: Request, service_id: DbId, action: str, staff: Editor, form: Form):
    if action not in ("deactivate", "activate"):
        raise HTTPException(404)
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        service = _found(session.get(models.Service, service_id), "service")
        before = {"active": service.active}
        service.active = action == "activate"
        service.updated_at = now.astimezone(UTC)
        session.add(service)
        auth.audit(session, staff, action=action, entity="service", entity_id=service_id, before=before,
                   after={"active": service.active}, now=now)
        name = service.name
    clear_content_cache(request)
    if action == "activate":
        flash(request, "{name}: shown to farmers.", name=name)
    else:
        flash(request, "{name}: hidden from farmers.", name=name)
    return back_to(request, "admin_services")
