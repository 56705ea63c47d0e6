"""The FastAPI application. `create_app()` builds everything; nothing happens at import time."""

from __future__ import annotations

import datetime as dt
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from gateway import logs, webhooks
from gateway.db import Database
from gateway.deps import Clock
from gateway.settings import Settings
from messages import default_catalog


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.db = Database.from_settings(settings)
        try:
            yield
        finally:
            app.state.db.dispose()

    app = FastAPI(
        title="Sugu gateway",
        summary="SMS and USSD market information for vegetable producers in Mali",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or (lambda: dt.datetime.now(settings.tz))
    app.state.catalog = default_catalog()
    app.include_router(webhooks.router)

    @app.get("/healthz", response_class=PlainTextResponse, tags=["operations"])
    def healthz() -> str:
        return "ok"

    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory` and `gateway serve`: settings from the environment."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    return create_app(settings)
