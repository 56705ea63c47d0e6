"""Console pages: the prices grid, review, history, corrections and withdrawals, correction SMS."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func
from sqlmodel import col, select

from gateway import auth, broadcast, corrections, models
from gateway.admin.charts import line_chart
from gateway.admin.core import (
    UTC,
    Form,
    PriceStaff,
    back_to,
    clear_content_cache,
    db_of,
    flash,
    int_param,
    now_of,
    path_for,
    render,
    settings_of,
)
from gateway.dataview import SqlDataView
from gateway.deps import DbId

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- prices ----------------------------------------------------------------------------------------

# Still used by the demand pages (being moved to the unit table separately); prices read the tables.
UNITS = ("kg", "sack50", "sack100", "basket", "crate", "pile")


def _units_kinds(session) -> tuple[list[str], list[str]]:
    """The units and price kinds staff may choose: the active rows of the reference tables."""
    return corrections.active_codes(session, models.Unit), corrections.active_codes(session, models.PriceKind)


def _day(raw: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(raw) if raw else default
    except ValueError:
        return default


@router.get("/prices", name="admin_prices")
def prices_page(request: Request, staff: PriceStaff):
    today = now_of(request).date()
    day = _day(request.query_params.get("date"), today)
    with db_of(request).unit_of_work() as session:
        markets = session.exec(select(models.Market).order_by(models.Market.name)).all()
        market_id = int_param(request.query_params.get("market"), "market", markets[0].id)
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        obs = models.PriceObservation
        entered = {
            o.crop_id: o for o in session.exec(
                select(obs).where(obs.market_id == market_id, obs.observed_on == day, obs.status == "published").order_by(obs.id)
            )
        }
        data = SqlDataView(session)
        latest = {c.id: next((q for q in data.latest_prices(c.id) if q.market_id == market_id), None) for c in crops}
        held = session.exec(select(obs).where(obs.status == "held").order_by(obs.id)).all()
        names = {c.id: c.name_fr for c in crops}, {m.id: m.name for m in markets}
        units, kinds = _units_kinds(session)
    return render(
        request,
        "prices.html",
        {"markets": markets, "market_id": market_id, "crops": crops, "day": day, "entered": entered,
         "latest": latest, "held": held, "names": names, "units": units, "kinds": kinds},
    )


def _parse_grid(form: dict, crops, units, kinds) -> tuple[list[tuple], list[str]]:
    rows, errors = [], []
    for crop in crops:
        raw = form.get(f"price_{crop.id}", "").replace(" ", "").replace("\u202f", "")
        if not raw:
            continue
        if not raw.isdigit() or not 0 < int(raw) <= 10_000_000:
            errors.append(f"{crop.name_fr}: {raw!r} is not a price in FCFA")
            continue
        unit = form.get(f"unit_{crop.id}") or crop.default_unit
        kind = form.get(f"kind_{crop.id}") or "wholesale"
        if unit not in units or kind not in kinds:
            errors.append(f"{crop.name_fr}: unknown unit or kind")
            continue
        rows.append((crop.id, int(raw), unit, kind))
    return rows, errors


@router.post("/prices", name="admin_prices_save")
async def prices_save(request: Request, staff: PriceStaff, form: Form):
    """Two steps: the grid is checked (alert count, prices far from the usual, prices that replace
    one already published that day) and shown; `confirm` publishes. A new value for a price already
    published (same crop, unit and kind) is a correction of it, never a second price."""
    settings = settings_of(request)
    today = now_of(request).date()
    day = _day(form.get("date"), today)
    grid = path_for(request, "admin_prices") + "?" + urlencode({"market": form.get("market", ""), "date": day.isoformat()})
    if day > today:
        flash(request, "Prices cannot be dated in the future.", "error")
        return RedirectResponse(path_for(request, "admin_prices"), status_code=303)
    market_id = int_param(form.get("market"), "market")
    now = now_of(request).astimezone(UTC)
    with db_of(request).unit_of_work() as session:
        market = session.get(models.Market, market_id)
        if market is None:
            raise HTTPException(400, "Unknown market.")
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        rows, errors = _parse_grid(form, crops, *_units_kinds(session))
        obs = models.PriceObservation
        published = {
            o.id: o for o in session.exec(select(obs).where(obs.market_id == market_id, obs.observed_on == day, obs.status == "published"))
        }
        # The grid shows what is already published for the day: only changes are published again.
        typed = bool(rows)
        rows = [r for r in rows if not any((o.crop_id, o.price, o.unit, o.kind) == r for o in published.values())]
        if typed and not rows and not errors:
            flash(request, "Nothing changed: these prices are already published.")
            return RedirectResponse(grid, status_code=303)
        if errors or not rows:
            for e in errors or ["Enter at least one price."]:
                flash(request, e, "error")
            return RedirectResponse(grid, status_code=303)
        # A new value typed over the one the grid showed (its id is in the form) corrects it.
        shown = {}
        for r in rows:
            raw = form.get(f"obs_{r[0]}", "")
            o = published.get(int(raw)) if raw.isdigit() else None
            if o is not None and o.crop_id == r[0]:
                shown[r] = o
        fixes = shown
        new_rows = [r for r in rows if r not in fixes]
        outliers = {}
        for r in rows:
            found = corrections.outlier(session, crop_id=r[0], market_id=market_id, price=r[1], unit=r[2], today=day,
                                        tolerance=settings.price_report_tolerance,
                                        ignore=fixes[r].id if r in fixes else None)
            if found:
                outliers[r[0]] = found
        subs = models.Subscription
        alerts = session.exec(
            select(func.count(func.distinct(subs.producer_id))).join(models.Producer, models.Producer.id == subs.producer_id)
            .where(subs.market_id == market_id, col(subs.crop_id).in_([r[0] for r in new_rows]), models.Producer.opted_out == False)  # noqa: E712
        ).one() if new_rows else 0
        problems = []
        if form.get("confirm") == "yes":
            unacknowledged = [c for c in outliers if form.get(f"ack_{c}") != "yes"]
            if unacknowledged:
                problems.append("Tick each price far from the usual to confirm it was checked, or go back and fix it.")
            if fixes and not form.get("correction_reason", "").strip():
                problems.append("Say why the published prices are corrected.")
        if form.get("confirm") != "yes" or problems:
            return render(request, "prices_confirm.html", {
                "market": market, "day": day, "rows": new_rows, "fixes": fixes, "outliers": outliers, "problems": problems,
                "form": {k: v for k, v in form.items() if k not in ("confirm", "correction_reason", "csrf_token") and not k.startswith("ack_")},
                "reason": form.get("correction_reason", ""), "crops": {c.id: c for c in crops}, "alerts": alerts,
            }, status_code=422 if problems else 200)
        for crop_id, price, unit, kind in new_rows:
            session.add(models.PriceObservation(crop_id=crop_id, market_id=market_id, observed_on=day, price=price, unit=unit,
                                                kind=kind, source=f"console:{staff.email}"[:64], created_at=now))
        corrected = []
        for (crop_id, price, unit, kind), old in fixes.items():
            corrections.correct(session, staff, obs_id=old.id, price=price, unit=unit, kind=kind,
                                      reason=form.get("correction_reason", ""), now=now)
            corrected.append(old.id)
        created = None
        if new_rows:
            auth.audit(session, staff, action="publish", entity="prices", entity_id=f"{market.name} {day}",
                       after={"rows": new_rows, "outliers_acknowledged": sorted(outliers)}, now=now)
            created = broadcast.publish_alerts(session, pairs=[(r[0], market_id) for r in new_rows], now=now, title=f"Prices {market.name} {day}")
    clear_content_cache(request)
    if new_rows:
        flash(request, f"{len(new_rows)} prices published for {market.name}; alerts queued for {alerts} producers (broadcast #{created.id}).")
    for old_id in corrected:
        flash(request, f"Price #{old_id} corrected. If its alert already went out, send the correction SMS from its page.")
    return RedirectResponse(grid, status_code=303)


@router.post("/prices/review/{obs_id}", name="admin_price_review")
async def price_review(request: Request, obs_id: DbId, staff: PriceStaff, form: Form):
    decision = form.get("decision")
    if decision not in ("approve", "reject"):
        raise HTTPException(400, "approve or reject")
    now = now_of(request).astimezone(UTC)
    with db_of(request).unit_of_work() as session:
        row = session.get(models.PriceObservation, obs_id)
        if row is None or row.status != "held":
            raise HTTPException(404, "No such report waiting for review.")
        before = auth.snapshot(row, ("status", "price", "review_reason"))
        row.status = "published" if decision == "approve" else "rejected"
        session.add(row)
        auth.audit(session, staff, action=decision, entity="price", entity_id=obs_id, before=before, after={"status": row.status}, now=now)
        if decision == "approve":
            broadcast.publish_alerts(session, pairs=[(row.crop_id, row.market_id)], now=now, title="Approved report")
    clear_content_cache(request)
    flash(request, f"Report {'published' if decision == 'approve' else 'rejected'}.")
    return back_to(request, "admin_prices")


@router.get("/prices/history", name="admin_price_history")
def price_history(request: Request, staff: PriceStaff):
    with db_of(request).unit_of_work() as session:
        crop = session.get(models.Crop, int_param(request.query_params.get("crop"), "crop", 0))
        market = session.get(models.Market, int_param(request.query_params.get("market"), "market", 0))
        if crop is None or market is None:
            raise HTTPException(404, "Choose a crop and a market.")
        obs = models.PriceObservation
        rows = session.exec(
            select(obs).where(obs.crop_id == crop.id, obs.market_id == market.id).order_by(col(obs.observed_on).desc(), col(obs.id).desc()).limit(120)
        ).all()
    published = sorted((o.observed_on, o.price) for o in rows if o.status == "published")
    return render(request, "price_history.html", {"crop": crop, "market": market, "rows": rows, "chart": line_chart(published, unit="F")})


def _change_context(session, obs_id: int) -> dict:
    row = session.get(models.PriceObservation, obs_id)
    if row is None:
        raise HTTPException(404, "No such price.")
    units, kinds = _units_kinds(session)
    return {"o": row, "crop": session.get(models.Crop, row.crop_id), "market": session.get(models.Market, row.market_id),
            "units": units, "kinds": kinds, "later": corrections.current(session, row) if row.status == "corrected" else None}


@router.get("/prices/{obs_id}/change", name="admin_price_change")
def price_change_page(request: Request, obs_id: DbId, staff: PriceStaff):
    with db_of(request).unit_of_work() as session:
        context = _change_context(session, obs_id)
    return render(request, "price_change.html", context)


@router.post("/prices/{obs_id}/correct", name="admin_price_correct")
async def price_correct(request: Request, obs_id: DbId, staff: PriceStaff, form: Form):
    """A new value replaces the published one (same crop, market and day), with a reason."""
    return _price_fix(request, obs_id, "correct", staff, form)


@router.post("/prices/{obs_id}/withdraw", name="admin_price_withdraw")
async def price_withdraw(request: Request, obs_id: DbId, staff: PriceStaff, form: Form):
    """The published price was wrong and there is no right value: nobody sees it any more."""
    return _price_fix(request, obs_id, "withdraw", staff, form)


def _price_fix(request: Request, obs_id: int, action: str, staff, form: dict):
    now = now_of(request).astimezone(UTC)
    settings = settings_of(request)
    error, status, warning = "", 200, None
    try:
        with db_of(request).unit_of_work() as session:
            if session.get(models.PriceObservation, obs_id) is None:
                raise HTTPException(404, "No such price.")
            if action == "correct":
                raw = form.get("price", "").replace(" ", "").replace("\u202f", "")
                if not raw.isdigit():
                    raise corrections.CorrectionError(f"{raw!r} is not a price in FCFA")
                old = session.get(models.PriceObservation, obs_id)
                unit = form.get("unit") or old.unit
                warning = corrections.outlier(session, crop_id=old.crop_id, market_id=old.market_id, price=int(raw),
                                              unit=unit, today=old.observed_on, tolerance=settings.price_report_tolerance,
                                              ignore=old.id)
                if warning and form.get("ack") != "yes" and (int(raw), unit) != (old.price, old.unit):
                    raise corrections.CorrectionError("This value is far from the usual: tick the box to confirm it was checked.")
                corrections.correct(session, staff, obs_id=obs_id, price=int(raw), unit=unit, kind=form.get("kind") or None,
                                    reason=form.get("reason", ""), now=now)
            else:
                corrections.withdraw(session, staff, obs_id=obs_id, reason=form.get("reason", ""), now=now)
    except corrections.CorrectionError as exc:
        error, status = str(exc), exc.status
        if isinstance(exc, corrections.NotFound):
            raise HTTPException(404, error) from None
    if error:
        with db_of(request).unit_of_work() as session:
            context = _change_context(session, obs_id)
        return render(request, "price_change.html", {**context, "error": error, "warning": warning, "form": form}, status_code=status)
    clear_content_cache(request)
    flash(request, f"Price #{obs_id} {'corrected' if action == 'correct' else 'withdrawn'}.")
    return back_to(request, "admin_correction_sms", obs_id=obs_id)


@router.get("/prices/{obs_id}/correction-sms", name="admin_correction_sms")
def correction_sms_page(request: Request, obs_id: DbId, staff: PriceStaff):
    """Who got the wrong value, what they will read and what it costs, before anything is sent."""
    with db_of(request).unit_of_work() as session:
        context = _change_context(session, obs_id)
        try:
            found = corrections.preview(session, obs_id, request.app.state.catalog, settings_of(request))
        except corrections.CorrectionError as exc:
            raise HTTPException(exc.status, str(exc)) from None
    return render(request, "correction_sms.html", {**context, "p": found})


@router.post("/prices/{obs_id}/correction-sms", name="admin_correction_sms_send")
async def correction_sms_send(request: Request, obs_id: DbId, staff: PriceStaff, form: Form):
    if form.get("confirm") != "yes":
        raise HTTPException(400, "Confirm on the preview page.")
    now = now_of(request)
    try:
        with db_of(request).unit_of_work() as session:
            row, created = corrections.send_correction_sms(session, staff, obs_id=obs_id, catalog=request.app.state.catalog,
                                                           settings=settings_of(request), now=now)
            broadcast_id = row.id
    except corrections.CorrectionError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if created:
        flash(request, f"Correction SMS queued (broadcast #{broadcast_id}).")
    else:
        flash(request, f"The correction SMS was already queued (broadcast #{broadcast_id}); nothing more is sent.", "error")
    return back_to(request, "admin_correction_sms", obs_id=obs_id)
