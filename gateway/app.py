"""The FastAPI application. `create_app()` builds everything; nothing happens at import time."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from gateway import admin, worker
from gateway.aggregators.callbacks import PhoneRateLimit
from gateway.api import reference as api_reference
from gateway.api import routes as api
from gateway.core import logs, migrate
from gateway.core.db import Database
from gateway.core.deps import Clock
from gateway.core.middleware import (
    BodyLimit,
    FastLane,
    LoopbackOnly,
    RejectNul,
    RequestId,
    SecurityHeaders,
    WebhookGuard,
)
from gateway.core.settings import Settings
from gateway.core.startup import DEV_MODE_BANNER, check_production
from gateway.data.dataview import ContentCache
from gateway.metrics import Metrics
from gateway.outbound.replies import ReplyRules
from gateway.outbound.senders import (
    FAKE_AT_PREFIX,
    FAKE_AT_VOICE_PREFIX,
    FAKE_ORANGE_PREFIX,
    build_caller,
    build_sender,
    sends_to_a_fake,
)
from gateway.sms import webhook as sms_webhook
from gateway.sms import webhook_orange as sms_webhook_orange
from gateway.ussd import service as ussd_service
from gateway.ussd import webhook as ussd_webhook
from gateway.voice import webhook as voice_webhook
from gateway.voice.prompts import PromptAudio
from messages import default_catalog

log = logging.getLogger("gateway.app")

# Africa's Talking documents no body limit; the adapter sends up to MAX_RECIPIENTS (1,000) numbers
# with a text of up to 10 segments, about 20 KiB form-encoded. 1 MiB leaves room for any of it.
FAKE_BODY_BYTES = 1 << 20
# The serving process's garbage collector (gc.set_threshold): Python's default is (700, 10, 10).
GC_THRESHOLDS = (7_000, 10, 10)


async def _worker_loop(app: FastAPI) -> None:
    """The in-process broadcaster (single-machine installs): the same step as `gateway worker`."""
    state = app.state
    settings: Settings = state.settings
    cycle = worker.WorkerCycle(caller=state.caller, caller_factory=lambda: state.caller)
    while True:
        try:
            result = await run_in_threadpool(
                cycle.turn, state.db, state.sender, clock=state.clock, catalog=state.catalog, settings=settings
            )
            pause = cycle.pause_s(result, settings)
        except Exception:
            log.exception("broadcaster step failed; trying again shortly")
            pause = settings.worker_poll_s * 5
        await asyncio.sleep(pause)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.db = Database.from_settings(settings)
        app.state.sender = build_sender(settings)
        app.state.caller = build_caller(settings)
        if settings.dev_mode:
            log.warning(DEV_MODE_BANNER)
        elif sends_to_a_fake(settings):
            log.warning("no aggregator credentials: SMS cannot be sent (the built-in fakes run only with GATEWAY_DEV_MODE=true)")
        worker_task = asyncio.create_task(_worker_loop(app)) if settings.worker_in_process else None
        if getattr(app.state, "freeze_heap", False):
            # Everything built so far (modules, routes, the catalogs) lives as long as the process:
            # out of the collector's sight, a full collection walks only what requests made, and
            # stops stalling every request in flight for a tenth of a second (bench/ussd_load.py).
            gc.collect()
            gc.freeze()
            # Collections ten times rarer: a full one walks every object requests keep alive
            # (remembered sessions, cached content) and stalled every request in flight for
            # 40-100 ms every few thousand hops; garbage waiting longer costs ~1.4 MB after
            # 20,000 hops (bench/ussd_load.py, README: Figures).
            gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            if worker_task is not None:
                worker_task.cancel()
                with suppress(asyncio.CancelledError):
                    await worker_task
            app.state.sender.close()
            if app.state.caller is not None:
                app.state.caller.close()
            app.state.db.dispose()

    app = FastAPI(
        title="Sugu gateway",
        summary="SMS and USSD market information for vegetable producers in Mali",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or (lambda: dt.datetime.now(settings.tz))
    app.state.catalog = default_catalog()
    app.state.content_cache = ContentCache(settings.content_cache_s)
    app.state.reply_rules = ReplyRules.from_settings(settings)
    app.state.ussd = ussd_service.Hops(settings, app.state.content_cache, app.state.reply_rules)
    app.state.prompt_audio = PromptAudio()
    app.include_router(ussd_webhook.router)
    app.include_router(sms_webhook.router)
    app.include_router(sms_webhook_orange.router)
    app.include_router(voice_webhook.router)
    app.include_router(voice_webhook.audio_router)
    app.include_router(api.router)
    app.include_router(api_reference.router)
    admin.install(app, settings)
    # Outermost last: request id, body limits, webhook guard, console headers, NUL guard, the
    # USSD hop's fast lane, the app.
    app.add_middleware(FastLane, path=ussd_webhook.HOP_PATH, endpoint=ussd_webhook.ussd_hop)
    # The recording studio takes audio files, which are full of NUL bytes (gateway/admin/studio.py).
    app.add_middleware(RejectNul, prefixes=("/admin",), binary_uploads=("/admin/studio/clips/",))
    app.add_middleware(SecurityHeaders, prefix="/admin", hsts=settings.public_url.startswith("https://"))
    app.add_middleware(
        WebhookGuard,
        prefix="/webhooks/",
        secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
        networks=settings.webhook_allow_networks.split(","),
    )
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        # The fakes take what the real APIs take: a 1,000-recipient bulk request is ~17 KiB.
        by_prefix={"/admin": settings.max_upload_bytes, "/api/": settings.max_upload_bytes,
                   FAKE_AT_PREFIX: FAKE_BODY_BYTES, FAKE_ORANGE_PREFIX: FAKE_BODY_BYTES,
                   FAKE_AT_VOICE_PREFIX: FAKE_BODY_BYTES},
        timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(RequestId)

    # The fakes list every SMS with full numbers and take configuration without a sign-in: only
    # in development mode, and only for this machine.
    app.state.fakes_mounted = []
    if settings.dev_mode and settings.sms_uses_fake and not settings.at_base_url:
        from gateway.aggregators.fake_at import FakeAT, create_fake_at_app
        from messages.sms import measure

        fake = create_fake_at_app(FakeAT(segments=lambda text: measure(text).segments))
        app.mount(FAKE_AT_PREFIX, LoopbackOnly(fake))
        app.state.fakes_mounted.append(FAKE_AT_PREFIX)
    if settings.dev_mode and settings.sms_uses_fake and not settings.voice_base_url:
        from gateway.aggregators.fake_at_voice import create_fake_at_voice_app

        app.mount(FAKE_AT_VOICE_PREFIX, LoopbackOnly(create_fake_at_voice_app()))
        app.state.fakes_mounted.append(FAKE_AT_VOICE_PREFIX)
    if settings.dev_mode and settings.orange_uses_fake and not settings.orange_base_url:
        from gateway.aggregators.fake_orange import create_fake_orange_app

        app.mount(FAKE_ORANGE_PREFIX, LoopbackOnly(create_fake_orange_app()))
        app.state.fakes_mounted.append(FAKE_ORANGE_PREFIX)

    app.state.metrics = Metrics(app)
    app.state.ussd_limiter = PhoneRateLimit(settings.ussd_hops_per_minute)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        # People who open the bare address are staff: the console (its sign-in when signed out).
        return RedirectResponse("/admin", status_code=303)

    @app.get("/healthz", response_class=PlainTextResponse, tags=["operations"], summary="The process is alive")
    def healthz() -> str:
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse, tags=["operations"], summary="Ready for traffic")
    def readyz() -> PlainTextResponse:
        try:
            ready = migrate.is_current(app.state.db.engine)
        except Exception as exc:
            return PlainTextResponse(f"database unreachable: {exc.__class__.__name__}", status_code=503)
        if not ready:
            return PlainTextResponse("database schema is not current: run gateway migrate", status_code=503)
        return PlainTextResponse("ready")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory` and `gateway serve`: settings from the environment."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    check_production(settings)  # `gateway serve` said it already; uvicorn --factory run by hand too
    app = create_app(settings)
    app.state.freeze_heap = True  # a serving process, not a test's: see lifespan
    return app
