"""What every console page shares: templates, the signed-in staff member, roles, CSRF, flashes."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from gateway import auth
from gateway.db import Database

TEMPLATES = Jinja2Templates(directory=str(resources.files("gateway.admin").joinpath("templates")))

# (label, route name, roles allowed besides admin)
NAV = [
    ("Dashboard", "admin_dashboard", ("editor", "reporter")),
    ("Prices", "admin_prices", ("editor", "reporter")),
    ("Trends", "admin_trends", ("editor", "reporter")),
    ("Demand", "admin_demands", ("editor",)),
    ("Services", "admin_services", ("editor",)),
    ("Reference data", "admin_reference", ("editor",)),
    ("Tips", "admin_tips", ("editor",)),
    ("Messages", "admin_messages", ("editor",)),
    ("Producers", "admin_producers", ("editor",)),
    ("Broadcasts", "admin_broadcasts", ("editor",)),
    ("Simulators", "admin_simulators", ("editor", "reporter")),
    ("Staff", "admin_staff", ()),
    ("Audit log", "admin_audit", ()),
]
EDITORS = ("editor",)
PRICE_PEOPLE = ("editor", "reporter")
SESSION_MAX_AGE_S = 8 * 3600


class LoginRequired(Exception):
    """Raised by `staff_required`; answered with a redirect to the login page."""


def db_of(request: Request) -> Database:
    return request.app.state.db


def now_of(request: Request) -> dt.datetime:
    return request.app.state.clock()


def current_staff(request: Request) -> auth.Staff | None:
    data = request.session
    staff_id = data.get("staff_id")
    if staff_id is None:
        return None
    started = data.get("login_at", 0)
    if now_of(request).timestamp() - started > SESSION_MAX_AGE_S:
        data.clear()
        return None
    with db_of(request).unit_of_work() as session:
        return auth.staff_by_id(session, staff_id)


def staff_required(request: Request) -> auth.Staff:
    staff = current_staff(request)
    if staff is None:
        raise LoginRequired()
    request.state.staff = staff
    return staff


def roles(*allowed: str):
    """Dependency: a signed-in staff member with one of these roles (admins always pass)."""

    def check(staff: Annotated[auth.Staff, Depends(staff_required)]) -> auth.Staff:
        if not staff.can(*allowed):
            raise HTTPException(status_code=403, detail="Your role does not allow this page.")
        return staff

    return check


AnyStaff = Annotated[auth.Staff, Depends(staff_required)]
Editor = Annotated[auth.Staff, Depends(roles(*EDITORS))]
PriceStaff = Annotated[auth.Staff, Depends(roles(*PRICE_PEOPLE))]
Admin = Annotated[auth.Staff, Depends(roles())]


async def form_of(request: Request) -> dict[str, str]:
    """The posted form, after checking its CSRF token (403 when it is missing or wrong)."""
    form = await request.form()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    submitted = data.get("csrf_token") or request.headers.get("x-csrf-token")
    if not auth.csrf_ok(request.session, submitted):
        raise HTTPException(status_code=403, detail="The form expired or did not come from this site; reload it.")
    return data


Form = Annotated[dict, Depends(form_of)]


def flash(request: Request, text: str, kind: str = "ok") -> None:
    # Reassigned, not appended in place: the session only notices assignments.
    request.session["flashes"] = [*request.session.get("flashes", []), [kind, text]]


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    staff = getattr(request.state, "staff", None) or current_staff(request)
    flashes = request.session.pop("flashes", [])
    base = {
        "request": request,
        "staff": staff,
        "nav": NAV,
        "csrf": auth.csrf_token(request.session),
        "flashes": flashes,
        "nonce": request.scope.get("state", {}).get("csp_nonce", ""),
    }
    base.update(context or {})
    return TEMPLATES.TemplateResponse(request, template, base, status_code=status_code)


def back_to(request: Request, name: str, **params: Any) -> RedirectResponse:
    return RedirectResponse(str(request.url_for(name, **params)), status_code=303)
