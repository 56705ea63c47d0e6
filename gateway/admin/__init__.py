"""The staff console, mounted at /admin by create_app()."""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from gateway.admin.core import SESSION_MAX_AGE_S, LoginRequired, PasswordChangeRequired, path_for, render
from gateway.core.settings import Settings


def secret_key(settings: Settings) -> str:
    """GATEWAY_SECRET_KEY, else a random key kept next to the SQLite database (var/), so that
    every process of one install signs cookies alike and sessions survive restarts."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = Path(settings.secret_key_file)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def install(app: FastAPI, settings: Settings) -> None:
    # One module per console page (or family of pages), each with its own router; the order
    # is the order routes are matched in.
    from gateway.admin import (
        accounts,
        broadcasts,
        bulletins,
        dashboard,
        demands,
        intel,
        languages,
        linkage,
        price_import,
        prices,
        producers,
        reference,
        simulators,
        studio,
        texts,
        tips,
    )

    key = secret_key(settings)
    app.state.admin_secret = key  # also signs the trusted-browser cookies of sign-in throttling
    app.add_middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie="sugu_admin",
        max_age=SESSION_MAX_AGE_S,
        path="/admin",
        same_site="lax",
        https_only=settings.public_url.startswith("https://"),
    )
    app.mount(
        "/admin/static",
        StaticFiles(directory=str(resources.files("gateway.admin").joinpath("static"))),
        name="admin_static",
    )
    for page in (accounts, dashboard, texts, prices, broadcasts, simulators, producers, demands, tips,
                 linkage, intel, reference, price_import, studio, bulletins, languages):
        app.include_router(page.router)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _exc: LoginRequired):
        target = path_for(request, "admin_login") + "?" + urlencode({"next": request.url.path})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    async def to_password(request: Request, _exc: PasswordChangeRequired):
        return RedirectResponse(path_for(request, "admin_account"), status_code=303)

    default_http = app.exception_handlers.get(HTTPException)

    @app.exception_handler(HTTPException)
    async def console_errors(request: Request, exc: HTTPException):
        # Console pages answer errors with a page; the API and webhooks keep FastAPI's JSON.
        if request.url.path.startswith("/admin") and exc.status_code in (400, 403, 404, 409):
            return render(request, "error.html", {"status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code)
        from fastapi.exception_handlers import http_exception_handler

        return await (default_http or http_exception_handler)(request, exc)
