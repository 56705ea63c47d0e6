"""The Africa's Talking USSD callbacks: a hop (parsed by the adapter, answered by the USSD
service, gateway.ussd.service.Hops) and the end-of-session event."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from gateway.aggregators import africastalking as at
from gateway.aggregators.callbacks import bad_request, read_form, unavailable
from gateway.core.deps import ClockDep, DbDep
from gateway.core.phones import mask
from gateway.ussd import service as ussd
from menus.paging import truncate
from messages import Catalog, to_ussd

log = logging.getLogger("gateway.ussd")

router = APIRouter(prefix="/webhooks/at", tags=["Africa's Talking callbacks"])
HOP_PATH = "/webhooks/at/ussd"  # also served by gateway.core.middleware.FastLane, before the router


@router.post("/ussd", response_class=PlainTextResponse, summary="USSD hop")
async def ussd_hop(request: Request) -> PlainTextResponse:
    # The hottest route reads app.state directly: FastAPI's dependency solving costs about a
    # fifth of a hop here (measured), the other routes keep the named dependencies.
    state = request.app.state
    db, settings, clock, catalog, metrics = state.db, state.settings, state.clock, state.catalog, state.metrics
    started = time.perf_counter()
    try:
        hop = at.parse_ussd(await read_form(request))
    except at.BadRequest as exc:
        metrics.webhook_errors.labels("bad_request").inc()
        return bad_request(exc)
    if not state.ussd_limiter.allow(hop.phone):
        metrics.webhook_errors.labels("rate_limited").inc()
        log.warning("ussd rate limit", extra={"phone": mask(hop.phone)})
        return PlainTextResponse(at.ussd_reply(_busy(catalog), end=True))
    trace = ussd.HopTrace()
    try:
        screen = await state.ussd.answer(db, hop, now=clock(), trace=trace)
    except Exception as exc:
        # The caller must never see a failure as an HTTP error: the telco would show a
        # cryptic network message. End the session politely instead.
        log.exception(
            "ussd hop failed",
            extra={"session": hop.session_id, "phone": mask(hop.phone), "kind": exc.__class__.__name__},
        )
        if not isinstance(exc, OperationalError):
            await run_in_threadpool(_count_error, db, hop.session_id)
        metrics.webhook_errors.labels("internal" if not isinstance(exc, OperationalError) else "unavailable").inc()
        metrics.ussd_hops.labels("error").inc()
        apology = _apology(trace.catalog or catalog, trace.language, settings.ussd_max_chars)
        return PlainTextResponse(at.ussd_reply(apology, end=True))
    metrics.ussd_hops.labels("end" if screen.end else "con").inc()
    metrics.ussd_latency.observe(time.perf_counter() - started)
    if log.isEnabledFor(logging.INFO):  # masking the number costs more than the check
        log.info(
            "ussd hop",
            extra={"session": hop.session_id, "phone": mask(hop.phone), "screen": screen.screen_id, "end": screen.end},
        )
    return PlainTextResponse(at.ussd_reply(screen.text, end=screen.end))


def _apology(catalog: Catalog, language: str | None, width: int) -> str:
    if language:
        return truncate(to_ussd(catalog.text(language, "error.internal")), width)
    # Language unknown (the database may be down): say it in both.
    both = catalog.text("fr", "error.internal") + "\n" + catalog.text("bm", "error.internal")
    return truncate(to_ussd(both), width)


def _busy(catalog: Catalog) -> str:
    both = catalog.text("fr", "error.busy") + "\n" + catalog.text("bm", "error.busy")
    return truncate(to_ussd(both), 160)


def _count_error(db, session_id: str) -> None:
    try:
        with db.unit_of_work() as session:
            ussd.note_error(session, session_id=session_id)
    except Exception:
        log.warning("could not count a ussd error", exc_info=True)


@router.post("/ussd/events", response_class=PlainTextResponse, summary="USSD end of session")
async def ussd_session_end(request: Request, db: DbDep, clock: ClockDep) -> PlainTextResponse:
    try:
        event = at.parse_ussd_end(await read_form(request))
    except at.BadRequest as exc:
        return bad_request(exc)

    def work() -> None:
        with db.unit_of_work() as session:
            ussd.record_end(session, event=event, now=clock())

    try:
        await run_in_threadpool(work)
    except OperationalError:
        log.exception("ussd end event not stored: database unavailable")
        return unavailable(request)
    return PlainTextResponse("OK")
