"""Console pages: sign in and out, your account (password, language, sessions), staff accounts and
the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlmodel import col, func, select

from gateway.admin.core import (
    SESSION_MAX_AGE_S,
    Admin,
    AnyStaff,
    Form,
    back_to,
    client_address,
    current_staff,
    db_of,
    flash,
    language_of,
    now_of,
    path_for,
    render,
    settings_of,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import auth, models
from gateway.data.producers import insert_ignore
from messages import staff as staff_text

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- sign in ---------------------------------------------------------------------------------------


@router.get("/login", name="admin_login")
def login_page(request: Request):
    return render(request, "login.html", {"next": request.query_params.get("next", "")})


@router.post("/login", name="admin_login_post")
async def login(request: Request, form: Form):
    settings = settings_of(request)
    try:
        signed = await auth.sign_in(
            db_of(request), email=form.get("email", ""), password=form.get("password", ""),
            address=client_address(request), user_agent=request.headers.get("user-agent", ""),
            device_cookie=request.cookies.get(auth.DEVICE_COOKIE), secret=request.app.state.admin_secret,
            now=now_of(request),
        )
    except auth.AuthError as exc:
        # Translated here (the page shows it through _() as well, which leaves a translation as it is).
        return render(request, "login.html", {"error": tr(request, exc.text, **exc.params), "email": form.get("email", ""),
                                              "next": form.get("next", "")}, status_code=exc.status)
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


# -- your account: password, language and sessions -------------------------------------------------

# Which field of the password form an error of auth.change_password is about (shown beside it).
PASSWORD_FIELDS = {
    "the current password is wrong": "current",
    "the two new passwords differ": "repeat",
}
# Each language's name in that language, beside its name in the page's language: whoever cannot
# read the page's language still finds their own.
AUTONYMS = {"fr": "Français", "en": "English"}


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; they are UTC (shown in the service's timezone)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _account_page(request: Request, staff, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                  status_code: int = 200):
    with db_of(request).unit_of_work() as session:
        sessions = [
            {"id": s.id, "created_at": aware(s.created_at), "last_seen_at": aware(s.last_seen_at), "user_agent": s.user_agent,
             "address": s.address}
            for s in auth.live_sessions(session, staff.id, now=now_of(request), max_age=dt.timedelta(seconds=SESSION_MAX_AGE_S))
        ]
    return render(request, "account.html", {
        "sessions": sessions, "current": staff.session_id, "errors": errors or {},
        "values": values if values is not None else {"language": staff.language},
        "min_password": auth.MIN_PASSWORD, "language_options": _language_options(request),
    }, status_code=status_code)


def _language_options(request: Request) -> list[tuple[str, str]]:
    lang = language_of(request)
    default = staff_text.language_or_default(settings_of(request).console_language)
    options = [("", tr(request, "The service's default: {language}", language=staff_text.word(lang, "language", default)))]
    for code in staff_text.CONSOLE_LANGUAGES:
        name = staff_text.word(lang, "language", code)
        options.append((code, name[:1].upper() + name[1:] + ("" if code == lang else f" ({AUTONYMS[code]})")))
    return options


@router.get("/account", name="admin_account")
def account_page(request: Request, staff: AnyStaff):
    return _account_page(request, staff)


@router.post("/account/password", name="admin_password_change")
async def password_change(request: Request, staff: AnyStaff, form: Form):
    try:
        await auth.change_password(db_of(request), staff, current=form.get("current", ""), new=form.get("new", ""),
                                   repeat=form.get("repeat", ""), now=now_of(request))
    except auth.AuthError as exc:
        # Passwords are never sent back into the page; the reason stands beside the field.
        where = PASSWORD_FIELDS.get(exc.text, "new")
        return _account_page(request, staff, errors={where: tr(request, exc.text, **exc.params)},
                             status_code=400 if exc.status == 401 else exc.status)
    flash(request, "Password changed. Your other sessions are signed out.")
    return back_to(request, "admin_account")


@router.post("/account/language", name="admin_language_change")
async def language_change(request: Request, staff: AnyStaff, form: Form):
    """The console's language for this person ("" follows the service's default)."""
    chosen = form.get("language", "").strip()
    if chosen and chosen not in staff_text.CONSOLE_LANGUAGES:
        return _account_page(request, staff, errors={"language": tr(request, "Choose a language from the list.")},
                             values={"language": ""}, status_code=400)
    with db_of(request).unit_of_work() as session:
        user = session.get(models.StaffUser, staff.id)
        before = {"language": user.language}
        if user.language != chosen:
            user.language = chosen
            session.add(user)
            auth.audit(session, staff, action="language", entity="staff", entity_id=user.email, before=before,
                       after={"language": chosen}, now=now_of(request))
    # Shown on the next page, which already speaks the new language.
    flash(request, "Console language saved.")
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


# -- staff and audit -------------------------------------------------------------------------------

# New accounts get the least role: more is given on purpose, never by leaving a default.
LEAST_ROLE = "reporter"


def _staff_page(request: Request, status_code: int = 200, **shown: Any):
    with db_of(request).unit_of_work() as session:
        rows = [
            {"id": u.id, "email": u.email, "name": u.name, "role": u.role, "active": u.active, "language": u.language,
             "must_change_password": u.must_change_password, "last_login_at": aware(u.last_login_at)}
            for u in session.exec(select(models.StaffUser).order_by(models.StaffUser.email)).all()
        ]
    lang = language_of(request)
    offered = [(r, staff_text.word(lang, "staff_role", r)) for r in reversed(auth.ROLES)]  # the least first
    context = {"rows": rows, "roles": auth.ROLES, "roles_offered": offered, "least_role": LEAST_ROLE, "errors": {}, "values": {},
               "min_password": auth.MIN_PASSWORD, **shown}
    return render(request, "staff.html", context, status_code=status_code)


@router.get("/staff", name="admin_staff")
def staff_page(request: Request, staff: Admin):
    return _staff_page(request)


def _new_account_errors(request: Request, form: dict) -> dict[str, str]:
    """Every field of the new-account form checked at once, each reason beside its field."""
    errors = {}
    checks = (
        ("email", lambda: auth.normalize_email(form.get("email", ""))),
        ("password", lambda: auth.check_new_password(form.get("password", ""))),
    )
    for name, check in checks:
        try:
            check()
        except auth.AuthError as exc:
            errors[name] = tr(request, exc.text, **exc.params)
    if form.get("role", "") not in auth.ROLES:
        errors["role"] = tr(request, "Choose a role from the list.")
    if len(form.get("name", "").strip()) > 80:
        errors["name"] = tr(request, "At most {n} characters.", n=80)
    return errors


@router.post("/staff", name="admin_staff_create")
async def staff_create(request: Request, staff: Admin, form: Form):
    now = now_of(request)
    typed = {k: form.get(k, "") for k in ("email", "name", "role")}  # never the password
    errors = _new_account_errors(request, form)
    if not errors:
        try:
            password_hash = await auth.hash_password_async(form.get("password", ""))
            with db_of(request).unit_of_work() as session:
                # The password typed here is known to whoever typed it: a one-time password.
                user = auth.create_staff(session, email=form.get("email", ""), password="", password_hash=password_hash,
                                         role=form.get("role", ""), name=form.get("name", ""), must_change_password=True)
                auth.audit(session, staff, action="create", entity="staff", entity_id=user.email, after={"role": user.role}, now=now)
        except auth.AuthError as exc:
            if exc.status != 401:  # busy: nothing to fix in the form
                raise HTTPException(exc.status, tr(request, exc.text, **exc.params)) from None
            errors["email"] = tr(request, exc.text, **exc.params)  # already has an account
    if errors:
        return _staff_page(request, status_code=400, errors=errors, values=typed)
    flash(request, "Account created for {email}: give them the password; they choose their own at their first sign-in.",
          email=user.email)
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


AUDIT_SHOWN = 200


@router.get("/audit", name="admin_audit")
def audit_page(request: Request, staff: Admin):
    """The latest changes, newest first; narrowed by what was changed and by a word (who, which)."""
    a = models.AuditLog
    entity = request.query_params.get("entity", "").strip()[:32]
    q = request.query_params.get("q", "").replace("\x00", "").strip()[:80]
    query = select(a).order_by(col(a.id).desc())
    if entity:
        query = query.where(a.entity == entity)
    if q:
        word = q.lower()
        query = query.where(func.lower(a.staff_email).contains(word, autoescape=True)
                            | func.lower(a.entity_id).contains(word, autoescape=True))
    with db_of(request).unit_of_work() as session:
        entities = sorted(session.exec(select(a.entity).distinct()).all())
        rows = [
            {"at": aware(r.at), "staff_email": r.staff_email, "action": r.action, "entity": r.entity, "entity_id": r.entity_id,
             "before": r.before, "after": r.after}
            for r in session.exec(query.limit(AUDIT_SHOWN)).all()
        ]
    return render(request, "audit.html", {"rows": rows, "entities": entities, "entity": entity, "q": q, "shown": AUDIT_SHOWN})


__all__ = ["router", "insert_ignore"]
