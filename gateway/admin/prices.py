"""Console pages: the prices grid, review, history, corrections and withdrawals, correction SMS."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlmodel import col, select

from gateway.admin.charts import line_chart
from gateway.admin.core import (
    UTC,
    Form,
    PriceStaff,
    back_to,
    clear_content_cache,
    confirm_page,
    confirmed,
    db_of,
    flash,
    int_param,
    language_of,
    now_of,
    paged,
    path_for,
    render,
    settings_of,
    tn,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import auth, models
from gateway.data.content import overrides
from gateway.data.dataview import SqlDataView
from gateway.outbound import broadcast, corrections
from menus.types import PriceQuote
from messages import staff as staff_text
from messages.sms import measure

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- prices ----------------------------------------------------------------------------------------

# Still used by the demand pages (being moved to the unit table separately); prices read the tables.
UNITS = ("kg", "sack50", "sack100", "basket", "crate", "pile")


def _units_kinds(session) -> tuple[list[str], list[str]]:
    """The units and price kinds staff may choose: the active rows of the reference tables."""
    return corrections.active_codes(session, models.Unit), corrections.active_codes(session, models.PriceKind)


def _day(raw: str | None, default: dt.date) -> dt.date | None:
    """A market day from a form or a link: the date picker's 2026-11-28, or 28/11/2026 typed by
    hand (a browser without a picker). None when it is not a date."""
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        if "/" in raw:
            day, month, year = (int(part) for part in raw.split("/"))
            return dt.date(year, month, day)
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def _grid_context(request: Request, session, market_id: int | None, day: dt.date) -> dict:
    """What the prices grid shows for one market and day: the crops, what is already published,
    the latest published price of each, and the reports waiting for review."""
    markets = session.exec(select(models.Market).order_by(models.Market.name)).all()
    if market_id is None:
        market_id = markets[0].id if markets else 0
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
    market = next((m for m in markets if m.id == market_id), None)
    return {"markets": markets, "market_id": market_id, "market": market, "crops": crops, "day": day, "entered": entered,
            "latest": latest, "held": held, "names": names, "units": units, "kinds": kinds, "values": {}, "errors": {}}


@router.get("/prices", name="admin_prices")
def prices_page(request: Request, staff: PriceStaff):
    today = now_of(request).date()
    typed_day = request.query_params.get("date")
    day = _day(typed_day, today)
    errors = {}
    if day is None:
        errors["date"] = tr(request, "{typed} is not a date: use dd/mm/yyyy.", typed=(typed_day or "")[:20])
        day = today
    with db_of(request).unit_of_work() as session:
        market_id = int_param(request.query_params.get("market"), "market", 0) or None
        context = _grid_context(request, session, market_id, day)
    context["filter_errors"] = errors
    context["typed_day"] = typed_day if errors else ""
    return render(request, "prices.html", context)


def _parse_grid(request: Request, form: dict, crops, units, kinds) -> tuple[list[tuple], dict[str, str]]:
    """The typed rows (crop, price, unit, kind), and the reason beside each bad cell."""
    rows, errors = [], {}
    for crop in crops:
        typed = form.get(f"price_{crop.id}", "").strip()
        raw = "".join(typed.split()).replace("\u202f", "").replace(".", "")
        if not raw:
            continue
        if not raw.isdigit() or not 0 < int(raw) <= 10_000_000:
            errors[f"price_{crop.id}"] = tr(request, "{typed} is not a price in FCFA: type a whole number, such as 14 000.",
                                            typed=repr(typed[:20]))
            continue
        unit = form.get(f"unit_{crop.id}") or crop.default_unit
        kind = form.get(f"kind_{crop.id}") or "wholesale"
        if unit not in units:
            errors[f"unit_{crop.id}"] = tr(request, "Unknown unit: choose one from the list.")
            continue
        if kind not in kinds:
            errors[f"kind_{crop.id}"] = tr(request, "Unknown kind of price: choose one from the list.")
            continue
        rows.append((crop.id, int(raw), unit, kind))
    return rows, errors


def _grid_again(request: Request, session, market_id: int, day: dt.date, form: dict, errors: dict[str, str]):
    """The grid as it was posted, every typed value kept, each bad cell with its reason: 400,
    nothing saved."""
    context = _grid_context(request, session, market_id, day)
    context.update(values=form, errors=errors, filter_errors={}, typed_day="")
    return render(request, "prices.html", context, status_code=400)


def alert_estimate(session, request: Request, market: models.Market, day: dt.date, rows: list[tuple]) -> dict:
    """How many subscribed producers publishing `rows` (crop, price, unit, kind) at `market` would
    alert, in how many SMS and segments, and at what cost: the alerts composed as the worker will
    compose them (one SMS per producer while it fits one segment, subscribers' thresholds), before
    quiet hours, budgets and the daily cap per producer, which can only lower it."""
    settings = settings_of(request)
    if not rows:
        return {"producers": 0, "sms": 0, "segments": 0, "cost": 0.0}
    data = SqlDataView(session)
    latest = {}
    for crop_id, *_ in rows:
        latest[crop_id] = next((q for q in data.latest_prices(crop_id) if q.market_id == market.id), None)
    quotes = {}
    for crop_id, price, unit, kind in rows:
        before = latest.get(crop_id)
        same_unit = before is not None and before.unit == unit
        quotes[(crop_id, market.id)] = PriceQuote(
            crop_id, market.id, market.name, price, unit, kind, day,
            previous_price=before.price if same_unit else None,
        )
    catalog = request.app.state.catalog.with_overrides(overrides(session))
    composer = broadcast.AlertComposer(
        catalog, quotes, {c.id: c for c in data.crops()}, settings.sms_fold,
        markets={mk.id: mk for mk in data.markets()}, units={u.code: u for u in data.units()},
    )
    subs, p = models.Subscription, models.Producer
    found = session.exec(
        select(p.id, p.language, subs.crop_id, subs.threshold_percent).join(p, p.id == subs.producer_id)
        .where(subs.market_id == market.id, col(subs.crop_id).in_([r[0] for r in rows]), p.opted_out == False)  # noqa: E712
    ).all()
    wanted: dict[int, tuple[str, list]] = {}
    for producer_id, language, crop_id, threshold in found:
        change = quotes[(crop_id, market.id)].change_percent
        if threshold and change is not None and abs(change) < threshold:
            continue  # moved less than this subscriber cares about: no alert
        wanted.setdefault(producer_id, (language or "fr", []))[1].append((crop_id, market.id))
    sms = segments = 0
    for language, pairs in wanted.values():
        for text in composer.texts(language if language in ("fr", "bm") else "fr", tuple(sorted(pairs))):
            sms += 1
            segments += measure(text).segments
    return {"producers": len(wanted), "sms": sms, "segments": segments, "cost": segments * settings.sms_price_per_segment}


def xof(request: Request, amount: float) -> str:
    """An amount in XOF as the reader's language writes it (14 000 XOF)."""
    return staff_text.number(round(amount), language_of(request)) + " XOF"


@router.post("/prices", name="admin_prices_save")
async def prices_save(request: Request, staff: PriceStaff, form: Form):
    """Two steps: the grid is checked (alert count and cost, prices far from the usual, prices that
    replace one already published that day) and shown; `confirm` publishes. A new value for a price
    already published (same crop, unit and kind) is a correction of it, never a second price. A
    bad cell sends the grid back with every typed value and the reason beside the cell."""
    settings = settings_of(request)
    today = now_of(request).date()
    market_id = int_param(form.get("market"), "market")
    day = _day(form.get("date"), today)
    now = now_of(request).astimezone(UTC)
    with db_of(request).unit_of_work() as session:
        market = session.get(models.Market, market_id)
        if market is None:
            raise HTTPException(400, "Unknown market.")
        if day is None or day > today:
            problem = ("Prices cannot be dated in the future." if day is not None
                       else "{typed} is not a date: use dd/mm/yyyy.")
            context_day = today if day is None else day
            response = _grid_again(request, session, market_id, context_day, form,
                                   {"date": tr(request, problem, typed=repr(form.get("date", "")[:20]))})
            return response
        if form.get("back") == "1":  # back from the confirmation to the grid, as it was typed
            response = _grid_again(request, session, market_id, day, form, {})
            response.status_code = 200
            return response
        grid = path_for(request, "admin_prices") + "?" + urlencode({"market": market_id, "date": day.isoformat()})
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        rows, errors = _parse_grid(request, form, crops, *_units_kinds(session))
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
        if errors:
            return _grid_again(request, session, market_id, day, form, errors)
        if not rows:
            return _grid_again(request, session, market_id, day, form,
                               {"grid": tr(request, "Enter at least one price.")})
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
        estimate = alert_estimate(session, request, market, day, new_rows)
        problems = []
        if form.get("confirm") == "yes":
            unacknowledged = [c for c in outliers if form.get(f"ack_{c}") != "yes"]
            if unacknowledged:
                problems.append(tr(request, "Tick each price far from the usual to confirm it was checked, or go back and fix it."))
            if fixes and not form.get("correction_reason", "").strip():
                problems.append(tr(request, "Say why the published prices are corrected."))
        if form.get("confirm") != "yes" or problems:
            return render(request, "prices_confirm.html", {
                "market": market, "day": day, "rows": new_rows, "fixes": fixes, "outliers": outliers, "problems": problems,
                "form": {k: v for k, v in form.items() if k not in ("confirm", "correction_reason", "csrf_token") and not k.startswith("ack_")},
                "reason": form.get("correction_reason", ""), "crops": {c.id: c for c in crops}, "alerts": estimate["producers"],
                "estimate": estimate, "cost": xof(request, estimate["cost"]),
                "price_per_segment": xof(request, settings.sms_price_per_segment),
                "grid": grid,
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
        market_name = market.name
    clear_content_cache(request)
    if new_rows:
        flash(request, "{prices} published for {market}; alerts queued for {producers} (broadcast #{id}).",
              prices=tn(request, len(new_rows), "{n} price", "{n} prices"), market=market_name,
              producers=tn(request, estimate["producers"], "{n} producer", "{n} producers"), id=str(created.id))
    for old_id in corrected:
        flash(request, "Price #{id} corrected. If its alert already went out, send the correction SMS from its page.", id=str(old_id))
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
        if decision == "approve" and not confirmed(form):
            return _approve_confirmation(request, session, row, form)
        before = auth.snapshot(row, ("status", "price", "review_reason"))
        row.status = "published" if decision == "approve" else "rejected"
        session.add(row)
        auth.audit(session, staff, action=decision, entity="price", entity_id=obs_id, before=before, after={"status": row.status}, now=now)
        if decision == "approve":
            broadcast.publish_alerts(session, pairs=[(row.crop_id, row.market_id)], now=now, title="Approved report")
    clear_content_cache(request)
    if decision == "approve":
        flash(request, "Report published.")
    else:
        flash(request, "Report rejected.")
    return back_to(request, "admin_prices")


def _approve_confirmation(request: Request, session, row: models.PriceObservation, form: dict):
    """Publishing a held report alerts its subscribers: how many, and at what cost, first."""
    lang = language_of(request)
    market, crop = session.get(models.Market, row.market_id), session.get(models.Crop, row.crop_id)
    estimate = alert_estimate(session, request, market, row.observed_on, [(row.crop_id, row.price, row.unit, row.kind)])
    lines = [tr(request, "{crop} at {market}, {day}: {price} F/{unit} ({kind}) will be published.", crop=crop.name_fr,
                market=market.name, day=staff_text.date(row.observed_on, lang), price=row.price,
                unit=staff_text.word(lang, "unit", row.unit), kind=staff_text.word(lang, "price_kind", row.kind))]
    if estimate["producers"]:
        lines.append(tn(request, estimate["producers"], "{n} subscribed producer will get an SMS alert",
                        "{n} subscribed producers will get an SMS alert")
                     + " (" + tn(request, estimate["segments"], "{n} segment", "{n} segments") + ").")
    else:
        lines.append(tr(request, "No subscribed producer will get an alert: publishing costs nothing."))
    return confirm_page(request, title=tr(request, "Publish this report?"), lines=lines,
                        cost=tr(request, "Estimated cost: {cost}", cost=xof(request, estimate["cost"])),
                        action=path_for(request, "admin_price_review", obs_id=row.id), form=form,
                        button=tr(request, "Publish and alert"), cancel=path_for(request, "admin_prices"))


HISTORY_PER_PAGE = 30


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
    # The chart draws every row; the list shows HISTORY_PER_PAGE (120 cards were 25,000 px tall at 360 px).
    one_page = paged(request, rows, HISTORY_PER_PAGE, "admin_price_history", {"crop": crop.id, "market": market.id})
    return render(request, "price_history.html", {"crop": crop, "market": market, **one_page, "chart": line_chart(
        published, lang=language_of(request), axis_label=tr(request, "FCFA per {unit}", unit=_unit_word(request, rows)),
        empty_text=tr(request, "Not enough published prices for a chart yet."), label=tr(request, "Price history"))})


def _change_context(session, obs_id: int) -> dict:
    row = session.get(models.PriceObservation, obs_id)
    if row is None:
        raise HTTPException(404, "No such price.")
    units, kinds = _units_kinds(session)
    return {"o": row, "crop": session.get(models.Crop, row.crop_id), "market": session.get(models.Market, row.market_id),
            "units": units, "kinds": kinds, "later": corrections.current(session, row) if row.status == "corrected" else None,
            "values": {}, "errors": {}, "action": ""}


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
    """The published price was wrong and there is no right value: nobody sees it any more. What
    it affects is confirmed first (the price before it, the producers who received it)."""
    return _price_fix(request, obs_id, "withdraw", staff, form)


def _fix_errors(request: Request, session, old: models.PriceObservation, action: str, form: dict) -> tuple[dict[str, str], int]:
    """The reason beside each field of the correct / withdraw form that cannot be accepted, and
    the status to answer with (422; 409 when the price is no longer published)."""
    errors: dict[str, str] = {}
    if old.status != "published":
        errors["form"] = tr(request, "Price #{id} is already {status}; only a published price can change.",
                            id=str(old.id), status=staff_text.word(language_of(request), "price_status", old.status))
        return errors, 409
    reason = " ".join(form.get("reason", "").split())
    if not reason:
        errors["reason"] = tr(request, "A reason is required: say why (it is kept in the audit log).")
    elif len(reason) > corrections.REASON_MAX:
        errors["reason"] = tr(request, "The reason is longer than {n} characters.", n=corrections.REASON_MAX)
    if action == "correct":
        typed = form.get("price", "").strip()
        raw = "".join(typed.split()).replace("\u202f", "").replace(".", "")
        units, kinds = _units_kinds(session)
        unit, kind = form.get("unit") or old.unit, form.get("kind") or old.kind
        if not raw.isdigit() or not 0 < int(raw) <= corrections.MAX_REPORT_PRICE:
            errors["price"] = tr(request, "{typed} is not a price in FCFA: type a whole number, such as 14 000.", typed=repr(typed[:20]))
        elif (int(raw), unit, kind) == (old.price, old.unit, old.kind):
            errors["price"] = tr(request, "The correction is the same as the published price.")
        if unit not in units:
            errors["unit"] = tr(request, "Unknown unit: choose one from the list.")
        if kind not in kinds:
            errors["kind"] = tr(request, "Unknown kind of price: choose one from the list.")
    return errors, 422


def _withdraw_lines(request: Request, session, old: models.PriceObservation) -> list[str]:
    """What withdrawing a price changes: the price that becomes the latest again, and who
    received the wrong one."""
    lang = language_of(request)
    crop, market = session.get(models.Crop, old.crop_id), session.get(models.Market, old.market_id)
    obs = models.PriceObservation
    earlier = session.exec(
        select(obs).where(obs.crop_id == old.crop_id, obs.market_id == old.market_id, obs.status == "published", obs.id != old.id)
        .order_by(col(obs.observed_on).desc(), col(obs.id).desc())
    ).first()
    lines = [tr(request, "{crop} at {market}, {day}: {price} F/{unit} ({kind}) disappears from USSD, SMS replies, trends and the API.",
                crop=crop.name_fr, market=market.name, day=staff_text.date(old.observed_on, lang), price=old.price,
                unit=staff_text.word(lang, "unit", old.unit), kind=staff_text.word(lang, "price_kind", old.kind))]
    if earlier is not None:
        lines.append(tr(request, "Farmers will see the price before it again: {price} F/{unit} of {day}.", price=earlier.price,
                        unit=staff_text.word(lang, "unit", earlier.unit), day=staff_text.date(earlier.observed_on, lang)))
    else:
        lines.append(tr(request, "There is no earlier price: farmers will be told there is no price for this crop at this market."))
    received = len(broadcast.alert_receivers(session, old))
    if received:
        lines.append(tn(request, received, "{n} producer received this value in an alert: you can send a correction SMS afterwards.",
                        "{n} producers received this value in an alert: you can send them a correction SMS afterwards."))
    else:
        lines.append(tr(request, "No producer received this value in an alert."))
    lines.append(tr(request, "Alerts with this value not yet sent are stopped. This cannot be undone."))
    return lines


def _price_fix(request: Request, obs_id: int, action: str, staff, form: dict):
    now = now_of(request).astimezone(UTC)
    settings = settings_of(request)
    error, status, warning, errors = "", 200, None, {}
    try:
        with db_of(request).unit_of_work() as session:
            old = session.get(models.PriceObservation, obs_id)
            if old is None:
                raise HTTPException(404, "No such price.")
            errors, status = _fix_errors(request, session, old, action, form)
            if errors:
                raise corrections.CorrectionError("")
            if action == "correct":
                price = int("".join(form["price"].split()).replace("\u202f", "").replace(".", ""))
                unit = form.get("unit") or old.unit
                warning = corrections.outlier(session, crop_id=old.crop_id, market_id=old.market_id, price=price,
                                              unit=unit, today=old.observed_on, tolerance=settings.price_report_tolerance,
                                              ignore=old.id)
                if warning and form.get("ack") != "yes" and (price, unit) != (old.price, old.unit):
                    errors["ack"] = tr(request, "This value is far from the usual: tick the box to confirm it was checked.")
                    status = 422
                    raise corrections.CorrectionError("")
                corrections.correct(session, staff, obs_id=obs_id, price=price, unit=unit, kind=form.get("kind") or None,
                                    reason=form.get("reason", ""), now=now)
            else:
                if not confirmed(form):
                    lines = _withdraw_lines(request, session, old)
                    return confirm_page(
                        request, title=tr(request, "Withdraw price #{id}?", id=str(obs_id)), lines=lines,
                        action=path_for(request, "admin_price_withdraw", obs_id=obs_id), form=form,
                        button=tr(request, "Withdraw the price"), cancel=path_for(request, "admin_price_change", obs_id=obs_id),
                        warning=tr(request, "Reason: {reason}", reason=" ".join(form.get("reason", "").split())), danger=True)
                corrections.withdraw(session, staff, obs_id=obs_id, reason=form.get("reason", ""), now=now)
    except corrections.CorrectionError as exc:
        if isinstance(exc, corrections.NotFound):
            raise HTTPException(404, str(exc)) from None
        error = str(exc)  # a race the checks above could not see (someone else changed it meanwhile)
        status = status if errors else exc.status
    if errors or error:
        with db_of(request).unit_of_work() as session:
            context = _change_context(session, obs_id)
        return render(request, "price_change.html", {**context, "error": errors.pop("form", "") or error, "warning": warning,
                                                      "values": form, "errors": errors, "action": action}, status_code=status)
    clear_content_cache(request)
    if action == "correct":
        flash(request, "Price #{id} corrected.", id=str(obs_id))
    else:
        flash(request, "Price #{id} withdrawn.", id=str(obs_id))
    return back_to(request, "admin_correction_sms", obs_id=obs_id)


@router.get("/prices/{obs_id}/correction-sms", name="admin_correction_sms")
def correction_sms_page(request: Request, obs_id: DbId, staff: PriceStaff):
    """Who got the wrong value, what they will read and what it costs, before anything is sent."""
    with db_of(request).unit_of_work() as session:
        context = _change_context(session, obs_id)
        try:
            found = corrections.preview(session, obs_id, request.app.state.catalog, settings_of(request))
        except corrections.Conflict:
            raise HTTPException(409, tr(request, "Price #{id} is {status}: correct or withdraw it first.", id=str(obs_id),
                                        status=staff_text.word(language_of(request), "price_status", context["o"].status))) from None
        except corrections.CorrectionError as exc:
            raise HTTPException(exc.status, str(exc)) from None
    return render(request, "correction_sms.html", {**context, "p": found, "cost": xof(request, found.estimated_cost),
                                                   "price_per_segment": xof(request, settings_of(request).sms_price_per_segment)})


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
    except corrections.NotFound:
        raise HTTPException(404, "No such price.") from None
    except corrections.Conflict:
        raise HTTPException(409, "Correct or withdraw the price first.") from None
    except corrections.CorrectionError:
        raise HTTPException(422, "Nobody received an alert with this price: there is nothing to correct by SMS.") from None
    if created:
        flash(request, "Correction SMS queued (broadcast #{id}).", id=str(broadcast_id))
    else:
        flash(request, "The correction SMS was already queued (broadcast #{id}); nothing more is sent.", "error", id=str(broadcast_id))
    return back_to(request, "admin_correction_sms", obs_id=obs_id)


def _unit_word(request: Request, rows) -> str:
    """The unit the chart's prices are in: the commonest among the published rows."""
    from collections import Counter

    units = Counter(o.unit for o in rows if o.status == "published")
    code = units.most_common(1)[0][0] if units else "kg"
    return staff_text.word(language_of(request), "unit", code)
