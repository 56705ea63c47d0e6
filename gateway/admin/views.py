"""Console pages: sign-in, dashboard, messages with live phone preview, prices, broadcasts,
simulators, producers, demands, tips, staff and the audit log."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import func, or_
from sqlmodel import col, select

import menus
from gateway.deps import DbId
from gateway import auth, broadcast, corrections, linkage, models, outbox
from gateway import reference
from gateway import replies
from gateway.admin.core import (
    DB_INT_MAX,
    SESSION_MAX_AGE_S,
    Admin,
    AnyStaff,
    Editor,
    Form,
    PriceStaff,
    back_to,
    client_address,
    current_staff,
    db_of,
    flash,
    int_param,
    now_of,
    path_for,
    render,
)
from gateway.admin.charts import line_chart
from gateway.configs import engine_config, sms_config
from gateway.content import overrides
from gateway.dataview import SqlDataView
from gateway.effects import insert_ignore, set_role
from gateway.spreadsheets import csv_text
from messages import default_catalog, placeholders, to_ussd
from messages.catalog import LANGUAGES, limit_problem, load_file_catalog, template_problem
from messages.sms import measure, render_sms

router = APIRouter(prefix="/admin", include_in_schema=False)

UTC = dt.timezone.utc


def _settings(request: Request):
    return request.app.state.settings


def _clear_cache(request: Request) -> None:
    # This process shows the change at once; others within their cache's time to live.
    request.app.state.content_cache.clear()


# -- sign in ---------------------------------------------------------------------------------------


@router.get("/login", name="admin_login")
def login_page(request: Request):
    return render(request, "login.html", {"next": request.query_params.get("next", "")})


@router.post("/login", name="admin_login_post")
async def login(request: Request, form: Form):
    settings = _settings(request)
    try:
        signed = await auth.sign_in(
            db_of(request), email=form.get("email", ""), password=form.get("password", ""),
            address=client_address(request), user_agent=request.headers.get("user-agent", ""),
            device_cookie=request.cookies.get(auth.DEVICE_COOKIE), secret=request.app.state.admin_secret,
            now=now_of(request),
        )
    except auth.AuthError as exc:
        return render(request, "login.html", {"error": str(exc), "email": form.get("email", ""), "next": form.get("next", "")},
                      status_code=exc.status)
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in
    request.session["sid"] = signed.session_token
    target = form.get("next", "")
    if not target.startswith("/admin") or target.startswith("//") or "\\" in target:
        target = path_for(request, "admin_dashboard")
    if signed.staff.must_change_password:
        target = path_for(request, "admin_account")
    response = RedirectResponse(target, status_code=303)
    if signed.device_cookie:
        response.set_cookie(auth.DEVICE_COOKIE, signed.device_cookie, max_age=auth.DEVICE_MAX_AGE_S, path="/admin",
                            httponly=True, samesite="lax", secure=settings.public_url.startswith("https://"))
    return response


@router.post("/logout", name="admin_logout")
async def logout(request: Request, form: Form):
    staff = current_staff(request)
    if staff is not None and staff.session_id is not None:
        with db_of(request).unit_of_work() as session:
            auth.revoke_sessions(session, staff.id, only=staff.session_id, now=now_of(request))
    request.session.clear()
    return back_to(request, "admin_login")


# -- your account: password and sessions -----------------------------------------------------------


def _account_page(request: Request, staff, *, error: str = "", status_code: int = 200):
    with db_of(request).unit_of_work() as session:
        sessions = auth.live_sessions(session, staff.id, now=now_of(request), max_age=dt.timedelta(seconds=SESSION_MAX_AGE_S))
    return render(request, "account.html", {"sessions": sessions, "current": staff.session_id, "error": error,
                                            "min_password": auth.MIN_PASSWORD}, status_code=status_code)


@router.get("/account", name="admin_account")
def account_page(request: Request, staff: AnyStaff):
    return _account_page(request, staff)


@router.post("/account/password", name="admin_password_change")
async def password_change(request: Request, staff: AnyStaff, form: Form):
    try:
        await auth.change_password(db_of(request), staff, current=form.get("current", ""), new=form.get("new", ""),
                                   repeat=form.get("repeat", ""), now=now_of(request))
    except auth.AuthError as exc:
        return _account_page(request, staff, error=str(exc), status_code=400 if exc.status == 401 else exc.status)
    flash(request, "Password changed. Your other sessions are signed out.")
    return back_to(request, "admin_account")


@router.post("/account/sessions/{session_id}/revoke", name="admin_session_revoke")
async def session_revoke(request: Request, session_id: DbId, staff: AnyStaff, form: Form):
    with db_of(request).unit_of_work() as session:
        ended = auth.revoke_sessions(session, staff.id, only=session_id, now=now_of(request))
    if not ended:
        raise HTTPException(404, "No such session.")
    if session_id == staff.session_id:
        request.session.clear()
        return back_to(request, "admin_login")
    flash(request, "Session signed out.")
    return back_to(request, "admin_account")


# -- dashboard -------------------------------------------------------------------------------------


SECTION_LABELS = {
    "price_crops": "Prices",
    "demands": "Buyer demand",
    "tip_categories": "Tips",
    "alerts": "SMS alerts",
    "profile": "Profile",
    "language": "Language",
}


CEILING_LABELS = {
    replies.COUNTRY: "Number outside the allowed countries",
    replies.PER_NUMBER: "Per-number daily cap",
    replies.DAILY_BUDGET: "Daily reply budget",
    replies.NEW_NUMBERS: "Hourly ceiling on new numbers",
}


def _posture(request: Request, settings, today: replies.Today) -> dict:
    """What protects the service from the outside, and whether a reply ceiling was hit today."""
    secret = bool(settings.webhook_secret and settings.webhook_secret.get_secret_value())
    networks = [n.strip() for n in settings.webhook_allow_networks.split(",") if n.strip()]
    guard = " and ".join(filter(None, ["secret token" if secret else "", "networks " + ", ".join(networks) if networks else ""]))
    return {
        "dev_mode": settings.dev_mode,
        "guard": guard,
        "fakes": list(getattr(request.app.state, "fakes_mounted", [])),
        "countries": sorted(settings.allowed_regions),
        "replies": today.replies,
        "daily_reply_budget": settings.daily_reply_budget,
        "new_this_hour": today.new_number_replies_this_hour,
        "new_per_hour": settings.new_number_replies_per_hour,
        "per_number": settings.sms_replies_per_day,
        "bulk_sms": settings.daily_sms_budget,
        "bulk_segments": settings.daily_segment_budget,
        "refused": [(CEILING_LABELS[c], n) for c, n in today.refused.items()],
        "hit": any(today.refused.values()),
    }


@router.get("/", name="admin_dashboard")
def dashboard(request: Request, staff: AnyStaff):
    now = now_of(request).astimezone(UTC)
    settings = _settings(request)
    s, m = models.UssdSession, models.SmsMessage
    not_sim = ~col(s.session_id).startswith("sim-")  # staff trying the simulator are not farmers
    with db_of(request).unit_of_work() as session:
        usage = []
        for label, days in (("today", 1), ("7 days", 7), ("30 days", 30)):
            since = now - dt.timedelta(days=days)
            n, callers = session.exec(
                select(func.count(), func.count(func.distinct(s.phone))).where(s.started_at >= since, not_sim)
            ).one()
            usage.append((label, n, callers))
        sections = session.exec(
            select(s.section, func.count()).where(s.started_at >= now - dt.timedelta(days=30), s.section != "", not_sim).group_by(s.section)
        ).all()
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        sms_rows = session.exec(
            select(m.status, func.count(), func.coalesce(func.sum(m.cost_amount), 0)).where(m.created_at >= month).group_by(m.status)
        ).all()
        obs, mk = models.PriceObservation, models.Market
        latest = session.exec(
            select(mk.name, func.max(obs.observed_on)).join(obs, obs.market_id == mk.id, isouter=True)
            .where(or_(col(obs.status) == "published", col(obs.id).is_(None))).group_by(mk.name)
        ).all()
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        markets = session.exec(select(models.Market).order_by(models.Market.name)).all()
        reply_today = replies.today(session, now, settings.tz)
        crop_id = int_param(request.query_params.get("crop"), "crop", crops[0].id if crops else 0)
        market_id = int_param(request.query_params.get("market"), "market", markets[0].id if markets else 0)
        series = session.exec(
            select(obs.observed_on, obs.price).where(
                obs.crop_id == crop_id, obs.market_id == market_id, obs.status == "published",
                obs.observed_on >= now.date() - dt.timedelta(days=182),
            ).order_by(obs.observed_on)
        ).all()
    today = now_of(request).date()
    stale = [
        (name, day, (today - day).days if day else None)
        for name, day in sorted(latest)
        if day is None or (today - day).days > settings.price_stale_days
    ]
    sms_counts = {status: n for status, n, _ in sms_rows}
    sms_cost = sum(float(c) for *_, c in sms_rows)
    return render(
        request,
        "dashboard.html",
        {
            "usage": usage,
            "sections": sorted(((SECTION_LABELS.get(k, k), n) for k, n in sections), key=lambda x: -x[1]),
            "sms_counts": sms_counts,
            "sms_cost": sms_cost,
            "sms_provider": request.app.state.sender.name,
            "sms_fake": settings.sms_uses_fake or settings.orange_uses_fake,
            "stale": stale,
            "posture": _posture(request, settings, reply_today),
            "crops": crops,
            "markets": markets,
            "crop_id": crop_id,
            "market_id": market_id,
            "chart": line_chart([(d, p) for d, p in series], unit="F"),
        },
    )


# -- messages --------------------------------------------------------------------------------------

# Where in the menus each key shows, so that the preview is the real screen.
SCREEN_PATHS = [
    ("lang.choose", None, ""), ("lang.", "fr", "6"), ("main.", "fr", ""), ("nav.", "fr", "1"),
    ("error.invalid_choice", "fr", "9"), ("error.no_more", "fr", "98"), ("error.quantity", "fr", "2*1*1*x"),
    ("error.text", "fr", "5*1*x"), ("prices.choose_crop", "fr", "1"), ("prices.all_markets", "fr", "1*1"),
    ("prices.choose_market", "fr", "1*1"), ("prices.all_title", "fr", "1*1*1"), ("prices.line", "fr", "1*1*1"),
    ("prices.", "fr", "1*1*2"), ("unit.", "fr", "1*1*2"), ("kind.", "fr", "1*1*2"), ("demands.supply", "fr", "2*1"),
    ("demands.detail", "fr", "2*1"), ("demands.", "fr", "2"), ("offer.ask_quantity", "fr", "2*1*1"),
    ("offer.thanks", "fr", "2*1*1*500*1"), ("offer.cancelled", "fr", "2*1*1*500*2"), ("offer.", "fr", "2*1*1*500"),
    ("common.", "fr", "2*1*1*500"), ("tips.", "fr", "3"), ("alerts.stop_confirm", "fr", "4*4"),
    ("alerts.subscribed", "fr", "4*2*1*1"), ("alerts.choose_market", "fr", "4*2*1"), ("alerts.choose_crop", "fr", "4*2"),
    ("alerts.", "fr", "4"), ("profile.ask", "fr", "5*1"), ("profile.saved", "fr", "5*1*Awa"), ("profile.", "fr", "5"),
    ("session.", "fr", "*".join(["1", "0"] * 25)),
]
SAMPLES = {
    "crop": "Tomate", "market": "Sikasso", "price": "14 000", "unit": "kg", "kind": "gros", "date": "28/11",
    "change": " +8%", "previous": "13 000", "previous_date": "21/11", "age": "", "days": "12", "weeks": "3",
    "buyer": "Lawal Int.", "quantity": "500", "place": "Sikasso", "until": "31/12/2026", "items": "Tomate Sikasso 28/11: 14 000F/kg (+8%)",
    "count": "2", "ussd": "*123#", "reason": "bien plus haut que d'habitude (13 500F)", "median": "13 500",
}


def _screen_path(key: str) -> tuple[str | None, str] | None:
    for prefix, lang, path in SCREEN_PATHS:
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return lang, path
    return None


def preview(request: Request, key: str, language: str, text: str) -> dict[str, Any]:
    """The message as a phone shows it: the real USSD screen it appears in (real engine, real
    data) and, for SMS texts, the encoding and segments."""
    settings = _settings(request)
    result: dict[str, Any] = {"ussd_limit": settings.ussd_max_chars}
    sample = _sample(text) if template_problem(text) is None else text
    sms_text = render_sms(sample, language, fold=settings.sms_fold)
    encoding = measure(sms_text)
    result.update(sms=sms_text, encoding=encoding.encoding, segments=encoding.segments, units=encoding.units)
    where = _screen_path(key)
    if where is not None and not key.startswith(("sms.", "alert.")):
        with db_of(request).unit_of_work() as session:
            catalog = default_catalog().with_overrides({**overrides(session), (language, key): text})
            first_lang, path = where
            profile = menus.Profile(phone="+22300000000", language=None if first_lang is None else language)
            screen = menus.run(
                path.split("*") if path else [],
                profile=profile,
                data=SqlDataView(session),
                catalog=catalog,
                now=now_of(request),
                config=engine_config(settings),
            )
        result.update(ussd=screen.text, ussd_chars=len(screen.text))  # as the handset shows it: no CON/END
    else:
        ussd = to_ussd(sample)
        result.update(ussd=ussd, ussd_chars=len(ussd))
    return result


def _message_rows(session) -> list[dict]:
    files = {lang: load_file_catalog(lang) for lang in LANGUAGES}
    rows = {(o.language, o.key): o for o in session.exec(select(models.MessageOverride))}
    out = []
    for key in sorted(files["fr"]):
        item = {"key": key}
        for lang in LANGUAGES:
            override = rows.get((lang, key))
            item[lang] = override.text if override else files[lang].get(key, "")
            item[f"{lang}_reviewed"] = bool(override and override.reviewed)
            item[f"{lang}_edited"] = override is not None
        item["bm_missing"] = not item["bm"].strip()
        out.append(item)
    return out


@router.get("/messages", name="admin_messages")
def messages_page(request: Request, staff: Editor):
    show = request.query_params.get("show", "all")
    q = request.query_params.get("q", "").strip().lower()
    with db_of(request).unit_of_work() as session:
        rows = _message_rows(session)
    if show == "unreviewed":
        rows = [r for r in rows if not r["bm_reviewed"]]
    elif show == "missing":
        rows = [r for r in rows if r["bm_missing"]]
    if q:
        rows = [r for r in rows if q in r["key"].lower() or q in r["fr"].lower() or q in r["bm"].lower()]
    return render(request, "messages.html", {"rows": rows, "show": show, "q": q})


@router.get("/messages/{key}", name="admin_message")
def message_page(request: Request, key: str, staff: Editor):
    files = {lang: load_file_catalog(lang) for lang in LANGUAGES}
    if key not in files["fr"]:
        raise HTTPException(404, "No such message.")
    with db_of(request).unit_of_work() as session:
        current = {r.language: r for r in session.exec(select(models.MessageOverride).where(models.MessageOverride.key == key))}
        revisions = session.exec(
            select(models.MessageRevision).where(models.MessageRevision.key == key).order_by(col(models.MessageRevision.id).desc()).limit(30)
        ).all()
    texts = {lang: (current[lang].text if lang in current else files[lang].get(key, "")) for lang in LANGUAGES}
    reviewed = {lang: bool(lang in current and current[lang].reviewed) for lang in LANGUAGES}
    settings = _settings(request)
    previews = {
        lang: {**preview(request, key, lang, texts[lang]),
               "problem": check_message(key, texts[lang], lang, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold)}
        for lang in LANGUAGES
    }
    return render(
        request,
        "message.html",
        {"key": key, "texts": texts, "files": {l: files[l].get(key, "") for l in LANGUAGES}, "reviewed": reviewed,
         "previews": previews, "revisions": revisions, "placeholders": sorted(placeholders(files["fr"][key]))},
    )


@router.post("/messages/{key}/preview", name="admin_message_preview")
async def message_preview(request: Request, key: str, staff: Editor, form: Form):
    language = form.get("language", "fr")
    if language not in LANGUAGES:
        raise HTTPException(400, "unknown language")
    if key not in load_file_catalog("fr"):
        raise HTTPException(404, "No such message.")
    text = form.get("text", "")
    # Checked before anything renders it: a format spec in a placeholder can cost seconds of CPU
    # and memory (finding 8); a text over its limits is shown, with the problem.
    settings = _settings(request)
    problem = check_message(key, text, language, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold)
    if problem and (template_problem(text) or len(text) > MAX_MESSAGE_CHARS or not text.strip()):
        return JSONResponse({"error": problem}, status_code=400)
    return JSONResponse({**preview(request, key, language, text), "problem": problem})


def _save_message(session, staff, key: str, language: str, text: str, reviewed: bool, now: dt.datetime) -> None:
    row = session.exec(
        select(models.MessageOverride).where(models.MessageOverride.language == language, models.MessageOverride.key == key)
    ).first()
    before = {"text": row.text, "reviewed": row.reviewed} if row else {"text": load_file_catalog(language).get(key, "")}
    if row is None:
        row = models.MessageOverride(language=language, key=key, text=text)
    row.text, row.reviewed, row.updated_by, row.updated_at = text, reviewed, staff.email, now
    session.add(row)
    session.add(models.MessageRevision(language=language, key=key, text=text, reviewed=reviewed, staff_email=staff.email, at=now))
    auth.audit(session, staff, action="edit", entity="message", entity_id=f"{language}:{key}", before=before,
               after={"text": text, "reviewed": reviewed}, now=now)


MAX_MESSAGE_CHARS = 1000


def _sample(text: str) -> str:
    """The text with typical values in its placeholders (only for texts template_problem passed)."""
    return text.format_map(defaultdict(str, SAMPLES))


def check_message(key: str, text: str, language: str = "fr", *, ussd_max_chars: int = 160, fold: bool = True) -> str | None:
    """Why staff's text for a key cannot be saved or previewed, or None: only the key's own plain
    placeholders, and within the limits of its channel (one SMS, one USSD screen)."""
    expected = placeholders(load_file_catalog("fr")[key])
    if not text.strip():
        return "The text cannot be empty."
    if len(text) > MAX_MESSAGE_CHARS:
        return f"The text is longer than {MAX_MESSAGE_CHARS} characters."
    problem = template_problem(text)
    if problem:
        return problem
    unknown = placeholders(text) - expected
    if unknown:
        return f"Unknown placeholder(s): {', '.join('{' + n + '}' for n in sorted(unknown))}. Allowed: {', '.join('{' + n + '}' for n in sorted(expected)) or 'none'}."
    return limit_problem(key, language, _sample(text), ussd_max_chars=ussd_max_chars, fold=fold)


@router.post("/messages/{key}", name="admin_message_save")
async def message_save(request: Request, key: str, staff: Editor, form: Form):
    if key not in load_file_catalog("fr"):
        raise HTTPException(404, "No such message.")
    now = now_of(request).astimezone(UTC)
    settings = _settings(request)
    problems = []
    changes = []
    with db_of(request).unit_of_work() as session:
        current = {r.language: r for r in session.exec(select(models.MessageOverride).where(models.MessageOverride.key == key))}
        for lang in LANGUAGES:
            text = form.get(f"text_{lang}", "").strip()
            reviewed = form.get(f"reviewed_{lang}") == "on"
            problem = check_message(key, text, lang, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold) if text else check_message(key, text)
            if problem:
                problems.append(f"{lang}: {problem}")
                continue
            old = current.get(lang)
            file_text = load_file_catalog(lang).get(key, "")
            if (old and (old.text, old.reviewed) == (text, reviewed)) or (not old and text == file_text and not reviewed):
                continue
            changes.append((lang, text, reviewed))
        if problems:
            for p in problems:
                flash(request, p, "error")
            return back_to(request, "admin_message", key=key)
        for lang, text, reviewed in changes:
            _save_message(session, staff, key, lang, text, reviewed, now)
    _clear_cache(request)
    flash(request, "Saved: the next USSD hop and SMS use it." if changes else "Nothing changed.")
    return back_to(request, "admin_message", key=key)


@router.post("/messages/{key}/revert/{revision_id}", name="admin_message_revert")
async def message_revert(request: Request, key: str, revision_id: DbId, staff: Editor, form: Form):
    now = now_of(request).astimezone(UTC)
    with db_of(request).unit_of_work() as session:
        rev = session.get(models.MessageRevision, revision_id)
        if rev is None or rev.key != key:
            raise HTTPException(404, "No such revision.")
        settings = _settings(request)
        problem = check_message(key, rev.text, rev.language, ussd_max_chars=settings.ussd_max_chars, fold=settings.sms_fold)
        if problem:  # an old version may predate today's checks
            flash(request, f"This version cannot be restored: {problem}", "error")
            return back_to(request, "admin_message", key=key)
        _save_message(session, staff, key, rev.language, rev.text, rev.reviewed, now)
    _clear_cache(request)
    flash(request, f"Reverted {rev.language} to the version of {rev.at:%Y-%m-%d %H:%M}.")
    return back_to(request, "admin_message", key=key)


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
    settings = _settings(request)
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
    _clear_cache(request)
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
    _clear_cache(request)
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
    settings = _settings(request)
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
    _clear_cache(request)
    flash(request, f"Price #{obs_id} {'corrected' if action == 'correct' else 'withdrawn'}.")
    return back_to(request, "admin_correction_sms", obs_id=obs_id)


@router.get("/prices/{obs_id}/correction-sms", name="admin_correction_sms")
def correction_sms_page(request: Request, obs_id: DbId, staff: PriceStaff):
    """Who got the wrong value, what they will read and what it costs, before anything is sent."""
    with db_of(request).unit_of_work() as session:
        context = _change_context(session, obs_id)
        try:
            found = corrections.preview(session, obs_id, request.app.state.catalog, _settings(request))
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
                                                           settings=_settings(request), now=now)
            broadcast_id = row.id
    except corrections.CorrectionError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if created:
        flash(request, f"Correction SMS queued (broadcast #{broadcast_id}).")
    else:
        flash(request, f"The correction SMS was already queued (broadcast #{broadcast_id}); nothing more is sent.", "error")
    return back_to(request, "admin_correction_sms", obs_id=obs_id)


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
                                     audience=audience, settings=_settings(request))
    total = sum(p.recipients for p in previews)
    return JSONResponse({
        "languages": [p.__dict__ for p in previews],
        "recipients": total,
        "estimated_cost": sum(p.estimated_cost for p in previews),
        "needs_approval": total > _settings(request).broadcast_approval_threshold,
    })


@router.post("/broadcasts", name="admin_broadcast_create")
async def broadcast_create(request: Request, staff: Editor, form: Form):
    settings = _settings(request)
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


# -- simulators ------------------------------------------------------------------------------------


@router.get("/simulators", name="admin_simulators")
def simulators(request: Request, staff: AnyStaff):
    return render(request, "simulators.html", {"ussd": None, "phone": "+22370000099", "path": "", "sms": None})


def _sim_phone(request: Request, form: dict) -> str | None:
    from gateway.phones import InvalidPhone, parse_phone

    try:
        return parse_phone(form.get("phone", ""))
    except InvalidPhone as exc:
        flash(request, f"Phone: {exc}", "error")
        return None


@router.post("/simulators/ussd", name="admin_sim_ussd")
async def sim_ussd(request: Request, staff: AnyStaff, form: Form):
    """The real engine and data, on a throw-away copy of the caller: the profile is read from
    the number's producer row, the menus replay the path, and what a real call would change
    (opt-out, offers, subscriptions, SMS) is listed, never applied (finding 10: a reporter opted
    a real farmer out and sent SMS abroad from here). Nothing is written, nothing is sent."""
    from gateway.content import current_catalog
    from gateway.effects import producer_by_phone
    from gateway.ussd import profile_from_snapshot, snapshot

    phone = _sim_phone(request, form)
    if phone is None:
        return back_to(request, "admin_simulators")
    settings = _settings(request)
    path = form.get("path", "")
    entry = form.get("input", "")
    if form.get("restart"):
        path = ""
    elif form.get("sent"):
        path = f"{path}*{entry}" if path else entry
    if len(path) > 400:
        raise HTTPException(400, "The path is too long.")
    language = form.get("language") if form.get("language") in LANGUAGES else ""
    with db_of(request).unit_of_work() as session:
        copy = snapshot(session, producer_by_phone(session, phone))
        if language:
            copy["language"] = language  # the copy only: the producer keeps theirs
        screen = menus.run(
            tuple(path.split("*")) if path else (), profile=profile_from_snapshot(phone, copy), data=SqlDataView(session),
            catalog=current_catalog(session, request.app.state.content_cache), now=now_of(request),
            config=engine_config(settings),
        )
        session.rollback()  # reads only; rolled back all the same
    # What the handset shows: the CON/END protocol word is for the operator, not the screen.
    return render(request, "simulators.html", {"ussd": screen.text, "end": screen.end, "phone": phone, "path": path,
                                               "language": language, "sms": None, "chars": len(screen.text),
                                               "effects": [type(e).__name__ for e in screen.effects]})


@router.post("/simulators/sms", name="admin_sim_sms")
async def sim_sms(request: Request, staff: AnyStaff, form: Form):
    """The reply that would be sent, computed by the real responder; nothing is stored or sent."""
    from gateway.effects import producer_by_phone, profile_of
    from menus.sms import respond

    phone = _sim_phone(request, form)
    if phone is None:
        return back_to(request, "admin_simulators")
    settings = _settings(request)
    with db_of(request).unit_of_work() as session:
        producer = producer_by_phone(session, phone)
        profile = profile_of(session, producer) if producer else menus.Profile(phone=phone)
        from gateway.content import current_catalog

        reply = respond(form.get("text", ""), profile=profile, data=SqlDataView(session),
                        catalog=current_catalog(session, request.app.state.content_cache), now=now_of(request),
                        config=sms_config(settings))
        session.rollback()
    sent = render_sms(reply.text, reply.language, fold=settings.sms_fold)
    enc = measure(sent)
    return render(request, "simulators.html", {
        "ussd": None, "phone": phone, "path": "",
        "sms": {"text": form.get("text", ""), "reply": sent, "intent": reply.intent, "encoding": enc.encoding,
                "segments": enc.segments, "effects": [type(e).__name__ for e in reply.effects]},
    })


# -- producers -------------------------------------------------------------------------------------


@router.get("/producers", name="admin_producers")
def producers_page(request: Request, staff: Editor):
    q = request.query_params.get("q", "").strip()
    role = request.query_params.get("role", "")
    role = role if role in models.PRODUCER_ROLES else ""
    p = models.Producer
    with db_of(request).unit_of_work() as session:
        query = select(p).order_by(col(p.id).desc()).limit(100)
        if q:
            like = f"%{q}%"
            query = query.where(or_(col(p.phone).like(like), col(p.name).ilike(like), col(p.village).ilike(like)))
        if role:
            query = query.where(p.role == role)
        rows = session.exec(query).all()
        total = session.exec(select(func.count()).select_from(p)).one()
    return render(request, "producers.html", {"rows": rows, "q": q, "role": role, "roles": models.PRODUCER_ROLES,
                                              "total": total})


@router.get("/producers/{producer_id}", name="admin_producer")
def producer_page(request: Request, producer_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        producer = session.get(models.Producer, producer_id)
        if producer is None:
            raise HTTPException(404, "No such producer.")
        s = models.Subscription
        subs = session.exec(
            select(models.Crop.name_fr, models.Market.name, s.threshold_percent)
            .select_from(s)
            .join(models.Crop, models.Crop.id == s.crop_id)
            .join(models.Market, models.Market.id == s.market_id)
            .where(s.producer_id == producer_id)
        ).all()
        messages = session.exec(select(models.SmsMessage).where(models.SmsMessage.phone == producer.phone)
                                .order_by(col(models.SmsMessage.id).desc()).limit(50)).all()
        inbound = session.exec(select(models.SmsInbound).where(models.SmsInbound.phone == producer.phone)
                               .order_by(col(models.SmsInbound.id).desc()).limit(50)).all()
        offers = session.exec(select(models.Offer).where(models.Offer.producer_id == producer_id)).all()
    return render(request, "producer.html", {"p": producer, "subs": subs, "messages": messages, "inbound": inbound,
                                             "offers": offers, "roles": models.PRODUCER_ROLES})


@router.post("/producers/{producer_id}/role", name="admin_producer_role")
def producer_role(request: Request, producer_id: DbId, staff: Editor, form: Form):
    """Make or unmake an enumerator (who may report market prices by SMS); audited."""
    role = form.get("role", "")
    if role not in models.PRODUCER_ROLES:
        raise HTTPException(400, f"The role is one of: {', '.join(models.PRODUCER_ROLES)}.")
    with db_of(request).unit_of_work() as session:
        producer = session.get(models.Producer, producer_id)
        if producer is None:
            raise HTTPException(404, "No such producer.")
        changed = set_role(session, producer, role, staff=staff, now=now_of(request), via="console")
        phone = producer.phone
    flash(request, f"{phone} is {'now' if changed else 'already'} {'an enumerator' if role == 'enumerator' else 'a producer'}.")
    return back_to(request, "admin_producer", producer_id=producer_id)


@router.post("/producers/import", name="admin_producers_import")
async def producers_import(request: Request, staff: Editor):
    from gateway import imports

    form = await request.form()
    if not auth.csrf_ok(request.session, form.get("csrf_token")):
        raise HTTPException(403, "The form expired; reload it.")
    upload = form.get("file")
    if upload is None or not hasattr(upload, "read"):
        flash(request, "Choose a CSV file.", "error")
        return back_to(request, "admin_producers")
    raw = await upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        flash(request, 'The file is not UTF-8: save it as "CSV UTF-8".', "error")
        return back_to(request, "admin_producers")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        crops = session.exec(select(models.Crop)).all()
        markets = session.exec(select(models.Market)).all()
        try:
            rows, errors = imports.parse_producers_csv(text, crops=crops, markets=markets)
        except imports.FileFormatError as exc:
            flash(request, str(exc), "error")
            return back_to(request, "admin_producers")
        if errors and form.get("skip_errors") != "on":
            return render(request, "import_errors.html", {"errors": errors, "what": "producers"}, status_code=400)
        name = getattr(upload, "filename", "") or ""
        report = imports.import_producers(session, rows, now=now, staff=staff, source=f"import:{name}"[:64])
        auth.audit(session, staff, action="import", entity="producers", entity_id=name,
                   after={"rows": report.rows, "skipped_lines": len({e.line for e in errors}),
                          "roles_changed": report.roles_changed}, now=now)
    flash(request, f"{report.rows} producers imported ({report.created} new, {report.updated} updated); {len({e.line for e in errors})} rows skipped.")
    return back_to(request, "admin_producers")


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
    _clear_cache(request)
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
    _clear_cache(request)
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
    _clear_cache(request)
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
                               fold=_settings(request).sms_fold)
        auth.audit(session, staff, action="notify", entity="demand", entity_id=demand_id, after={"sms": row.id}, now=now)
    flash(request, f"SMS queued to {buyer.name}.")
    return back_to(request, "admin_demands")


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
    _clear_cache(request)
    flash(request, "Tip saved.")
    return back_to(request, "admin_tip", tip_id=saved_id)


# -- staff and audit -------------------------------------------------------------------------------


def _staff_page(request: Request, status_code: int = 200, **shown: Any):
    with db_of(request).unit_of_work() as session:
        rows = session.exec(select(models.StaffUser).order_by(models.StaffUser.email)).all()
    return render(request, "staff.html", {"rows": rows, "roles": auth.ROLES, **shown}, status_code=status_code)


@router.get("/staff", name="admin_staff")
def staff_page(request: Request, staff: Admin):
    return _staff_page(request)


@router.post("/staff", name="admin_staff_create")
async def staff_create(request: Request, staff: Admin, form: Form):
    now = now_of(request)
    try:
        password_hash = await auth.hash_password_async(form.get("password", ""))
        with db_of(request).unit_of_work() as session:
            user = auth.create_staff(session, email=form.get("email", ""), password="", password_hash=password_hash,
                                     role=form.get("role", ""), name=form.get("name", ""))
            auth.audit(session, staff, action="create", entity="staff", entity_id=user.email, after={"role": user.role}, now=now)
    except auth.AuthError as exc:
        flash(request, str(exc), "error")
        return back_to(request, "admin_staff")
    flash(request, "Account created.")
    return back_to(request, "admin_staff")


@router.post("/staff/{user_id}/{action}", name="admin_staff_action")
async def staff_action(request: Request, user_id: DbId, action: str, staff: Admin, form: Form):
    """Secrets made here (API token, one-time password) are shown once, in this response: never
    kept in the session cookie, which is signed but readable by whoever holds it."""
    if action not in ("deactivate", "activate", "token", "role", "reset"):
        raise HTTPException(404)
    now = now_of(request)
    shown: dict[str, str] = {}
    one_time = auth.one_time_password() if action == "reset" else None
    one_time_hash = await auth.hash_password_async(one_time) if one_time else None
    with db_of(request).unit_of_work() as session:
        user = session.get(models.StaffUser, user_id)
        if user is None:
            raise HTTPException(404, "No such account.")
        if user.id == staff.id and action in ("deactivate", "role", "reset"):
            raise HTTPException(409, "You cannot do that to your own account (change your password on your account page).")
        before = {"active": user.active, "role": user.role}
        if action == "token":
            shown = {"token": auth.issue_api_token(session, user), "token_for": user.email}
        elif action == "reset":
            auth.reset_password(session, user, one_time_hash, now=now)
            shown = {"one_time": one_time, "one_time_for": user.email}
        elif action == "role":
            if form.get("role") not in auth.ROLES:
                raise HTTPException(400, "Unknown role.")
            user.role = form["role"]
        else:
            user.active = action == "activate"
            # Deactivation ends every session; re-activation does not bring them back.
            auth.revoke_sessions(session, user.id, now=now)
        session.add(user)
        auth.audit(session, staff, action=action, entity="staff", entity_id=user.email, before=before,
                   after={"active": user.active, "role": user.role}, now=now)
    if shown:
        return _staff_page(request, **shown)
    return back_to(request, "admin_staff")


@router.get("/audit", name="admin_audit")
def audit_page(request: Request, staff: Admin):
    with db_of(request).unit_of_work() as session:
        rows = session.exec(select(models.AuditLog).order_by(col(models.AuditLog.id).desc()).limit(200)).all()
    return render(request, "audit.html", {"rows": rows})


__all__ = ["router", "insert_ignore"]
