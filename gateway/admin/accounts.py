"""Console pages: sign in and out, your account (password, sessions), staff accounts and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlmodel import col, select

from gateway import auth, models
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
    now_of,
    path_for,
    render,
    settings_of,
)
from gateway.deps import DbId
from gateway.effects import insert_ignore

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
