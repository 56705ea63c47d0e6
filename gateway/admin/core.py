"""What every console page shares: templates, the signed-in staff member, roles, CSRF, flashes."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from gateway.core.db import Database
from gateway.data import auth
from messages import staff as staff_text

TEMPLATES = Jinja2Templates(directory=str(resources.files("gateway.admin").joinpath("templates")))


@pass_context
def _url_for(context: dict, name: str, /, **path_params: Any) -> str:
    return path_for(context["request"], name, **path_params)


# Links in pages are paths (see path_for), not URLs built from the Host header.
TEMPLATES.env.globals["url_for"] = _url_for


# -- the console's language: every template text goes through _() or _n(), every code through
# word(), every number and date through a filter (messages/staff.py; tests/test_console_language.py)


@pass_context
def _gettext(context: dict, text: str, /, **params: Any) -> str:
    return staff_text.gettext(context["lang"], text, **params)


@pass_context
def _ngettext(context: dict, n: int, one: str, other: str, /, **params: Any) -> str:
    return staff_text.ngettext(context["lang"], n, one, other, **params)


@pass_context
def _word(context: dict, kind: str, code: Any) -> str:
    found = staff_text.word(context["lang"], kind, code)
    if kind == "language" and found == code:  # a language staff added: its name from the table
        return context.get("language_names", {}).get(code, found)
    return found


@pass_context
def _num(context: dict, value: Any) -> str:
    return staff_text.number(value, context["lang"]) if isinstance(value, (int, float)) else ("" if value is None else str(value))


@pass_context
def _day(context: dict, value: Any) -> str:
    return staff_text.date(value, context["lang"]) if isinstance(value, (dt.date, dt.datetime)) else (value or "")


@pass_context
def _day_short(context: dict, value: Any) -> str:
    return staff_text.date(value, context["lang"], short=True) if isinstance(value, (dt.date, dt.datetime)) else (value or "")


@pass_context
def _when(context: dict, value: Any) -> str:
    if not isinstance(value, dt.datetime):
        return value or ""
    return staff_text.date_time(value, context["lang"], tz=context.get("tz"))


TEMPLATES.env.globals.update(_=_gettext, _n=_ngettext, word=_word)
TEMPLATES.env.filters.update(num=_num, day=_day, day_short=_day_short, when=_when)


def language_of(request: Request) -> str:
    """The console's language for this request: the staff member's choice, else the deployment's."""
    staff = current_staff(request)
    chosen = staff.language if staff is not None else ""
    return staff_text.language_or_default(chosen or request.app.state.settings.console_language)


def tr(request: Request, text: str, /, **params: Any) -> str:
    """A console text (English in code) in the request's language, for Python code that builds
    one (CSV headers, JSON answers); pages use _() in templates, flash() and errors translate
    themselves."""
    return staff_text.gettext(language_of(request), text, **params)

# (label, route name, roles allowed besides admin)
# Sixteen entries wrapped the laptop header to three lines: Languages is reached from Reference
# data, where it belongs (a list staff manage like regions and crops).
NAV = [
    ("Dashboard", "admin_dashboard", ("editor", "reporter")),
    ("Prices", "admin_prices", ("editor", "reporter")),
    ("Trends", "admin_trends", ("editor", "reporter")),
    ("Demand", "admin_demands", ("editor",)),
    ("Services", "admin_services", ("editor",)),
    ("Reference data", "admin_reference", ("editor",)),
    ("Tips", "admin_tips", ("editor",)),
    ("Messages", "admin_messages", ("editor",)),
    ("Recording studio", "admin_studio", ("editor",)),
    ("Radio bulletin", "admin_bulletins", ("editor", "reporter")),
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


class PasswordChangeRequired(Exception):
    """Raised by `staff_required` while the account has a one-time password; answered with a
    redirect to the account page, the only one such a session may use."""


# Routes a session with a one-time password may use: choose a password, or sign out.
ONE_TIME_PASSWORD_ROUTES = {"admin_account", "admin_password_change", "admin_language_change", "admin_logout"}


def db_of(request: Request) -> Database:
    return request.app.state.db


def now_of(request: Request) -> dt.datetime:
    return request.app.state.clock()


def current_staff(request: Request) -> auth.Staff | None:
    """The staff member of the request's console session: the signed cookie holds only a random
    session id, checked against the staff_session table on every request (logout, deactivation
    and password changes end sessions there)."""
    if "staff" in request.scope.get("state", {}):
        return request.state.staff
    token = request.session.get("sid")
    if not token:
        return None
    with db_of(request).unit_of_work() as session:
        staff = auth.staff_by_session(session, token, now=now_of(request), max_age=dt.timedelta(seconds=SESSION_MAX_AGE_S))
    if staff is None:
        request.session.clear()
    return staff


def staff_required(request: Request) -> auth.Staff:
    staff = current_staff(request)
    if staff is None:
        raise LoginRequired()
    request.state.staff = staff
    route = request.scope.get("route")
    if staff.must_change_password and getattr(route, "name", None) not in ONE_TIME_PASSWORD_ROUTES:
        raise PasswordChangeRequired()
    return staff


DB_INT_MAX = 2_147_483_647  # PostgreSQL's integer: beyond, the query itself fails


def int_param(raw: str | None, what: str, default: int | None = None) -> int:
    """A number from a query string or form: 400 with a clear message when it is not one (the
    console answered 500 for ?market=abc), the default when it is absent."""
    raw = (raw or "").strip()
    if not raw and default is not None:
        return default
    if not raw.isdigit() or int(raw) > DB_INT_MAX:
        raise HTTPException(status_code=400, detail=f"{what}: expected a number, got {raw[:20]!r}.")
    return int(raw)


def client_address(request: Request) -> str:
    """The client's address as the server saw it (behind a proxy: run uvicorn with
    --proxy-headers and --forwarded-allow-ips so that this is the real client)."""
    return request.client.host if request.client else ""


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


def tn(request: Request, n: int, one: str, other: str, /, **params: Any) -> str:
    """tr() for a count: the plural form of the request's language ({n} is the count)."""
    return staff_text.ngettext(language_of(request), n, one, other, **params)


def flash(request: Request, text: str, kind: str = "ok", /, **params: Any) -> None:
    """A note for the next page. `text` is English with {placeholders}, translated when shown
    (so the words of the catalog, and numbers written as the reader's language writes them)."""
    # Reassigned, not appended in place: the session only notices assignments.
    request.session["flashes"] = [*request.session.get("flashes", []), [kind, text, params]]


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    staff = current_staff(request)
    lang = language_of(request)
    flashes = [
        (kind, staff_text.gettext(lang, text, **(rest[0] if rest else {})))
        for kind, text, *rest in request.session.pop("flashes", [])
    ]
    settings = request.app.state.settings
    base = {
        "lang": lang,
        "tz": _zone(settings.timezone),
        "request": request,
        "staff": staff,
        "nav": NAV,
        "csrf": auth.csrf_token(request.session),
        "flashes": flashes,
        "nonce": request.scope.get("state", {}).get("csp_nonce", ""),
    }
    base.update(context or {})
    return TEMPLATES.TemplateResponse(request, template, base, status_code=status_code)


@lru_cache(maxsize=8)
def _zone(name: str) -> dt.tzinfo:
    return ZoneInfo(name)


def path_for(request: Request, name: str, /, **params: Any) -> str:
    """A route's path, never an absolute URL: the Host header a client sends must not end up in
    a Location header or a link (cache poisoning, phishing links). Browsers resolve it against
    the page they are on; absolute URLs, where one is needed, come from GATEWAY_PUBLIC_URL."""
    return request.scope.get("root_path", "") + str(request.app.url_path_for(name, **params))


def paged(request: Request, rows: list, per_page: int, route: str, query: dict[str, Any]) -> dict[str, Any]:
    """One page of `rows` (?page=N; a number out of range gives the nearest page) and the links
    to its neighbours, which keep `query` (the page's filters)."""
    pages = max(1, -(-len(rows) // per_page))
    raw = request.query_params.get("page", "1")
    page = min(int(raw), pages) if raw.isdigit() and 0 < len(raw) <= 4 and int(raw) > 0 else 1
    link = lambda n: path_for(request, route) + "?" + urlencode({**query, "page": n})  # noqa: E731
    return {"rows": rows[(page - 1) * per_page: page * per_page], "page": page, "pages": pages,
            "previous": link(page - 1) if page > 1 else "", "next": link(page + 1) if page < pages else ""}


def public_url(request: Request, path: str) -> str:
    """An absolute URL for links that leave the console (e-mails, exports): GATEWAY_PUBLIC_URL."""
    return request.app.state.settings.public_url.rstrip("/") + path


def back_to(request: Request, name: str, **params: Any) -> RedirectResponse:
    return RedirectResponse(path_for(request, name, **params), status_code=303)


UTC = dt.timezone.utc


def settings_of(request: Request):
    return request.app.state.settings


def clear_content_cache(request: Request) -> None:
    # This process shows the change at once; others within their cache's time to live.
    request.app.state.content_cache.clear()


def confirmed(form: dict) -> bool:
    """Whether a costly or destructive action was confirmed (see `confirm_page`)."""
    return form.get("confirmed") == "1"


def confirm_page(request: Request, *, title: str, lines: list[str], action: str, form: dict, button: str,
                 cancel: str, cost: str = "", warning: str = "", danger: bool = False) -> HTMLResponse:
    """The page that stands between a click and an action that costs money or cannot be undone:
    what will happen, to how many, at what cost. Texts come translated (tr()); the form's own
    fields are posted again with confirmed=1."""
    fields = [(k, v) for k, v in form.items() if k not in ("csrf_token", "confirmed")]
    return render(request, "confirm.html", {"title": title, "lines": lines, "cost": cost, "warning": warning,
                                            "action": action, "fields": fields, "button": button,
                                            "cancel": cancel, "danger": danger})
