"""The Africa's Talking USSD callbacks: a hop (parsed by the adapter, answered by the USSD
service in one unit of work) and the end-of-session event. A hop on SQLite runs on the event loop:
its reads (and writes, when no other writer holds the lock) are quicker there than the hand-off
to the thread pool (see ussd_hop)."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from gateway.aggregators import africastalking as at
from gateway.aggregators.callbacks import bad_request, read_form, unavailable
from gateway.core.configs import engine_config
from gateway.core.deps import ClockDep, DbDep
from gateway.core.phones import mask
from gateway.data.content import current_catalog
from gateway.data.dataview import CachedDataView
from gateway.ussd import service as ussd
from menus.paging import truncate
from messages import Catalog, to_ussd

log = logging.getLogger("gateway.ussd")

router = APIRouter(prefix="/webhooks/at", tags=["Africa's Talking callbacks"])


@router.post("/ussd", response_class=PlainTextResponse, summary="USSD hop")
async def ussd_hop(request: Request) -> PlainTextResponse:
    # The hottest route reads app.state directly: FastAPI's dependency solving costs about a
    # fifth of a hop here (measured), the other routes keep the named dependencies.
    state = request.app.state
    db, settings, clock, catalog = state.db, state.settings, state.clock, state.catalog
    metrics = request.app.state.metrics
    started = time.perf_counter()
    try:
        hop = at.parse_ussd(await read_form(request))
    except at.BadRequest as exc:
        metrics.webhook_errors.labels("bad_request").inc()
        return bad_request(exc)
    if not request.app.state.ussd_limiter.allow(hop.phone):
        metrics.webhook_errors.labels("rate_limited").inc()
        log.warning("ussd rate limit", extra={"phone": mask(hop.phone)})
        return PlainTextResponse(at.ussd_reply(_busy(catalog), end=True))
    config = engine_config(settings)
    trace = ussd.HopTrace()

    cache = request.app.state.content_cache
    now = clock()

    def plan(session):
        data = CachedDataView(session, cache)
        trace.catalog = current_catalog(session, cache)
        return ussd.plan_hop(session, hop=hop, now=now, catalog=trace.catalog, config=config, data=data, trace=trace)

    def record(session, planned):
        ussd.record_hop(session, planned, hop=hop, now=now, catalog=trace.catalog, fold=settings.sms_fold,
                        rules=state.reply_rules)

    def read():
        with db.unit_of_work() as session:
            return plan(session)

    def write(planned):
        with db.unit_of_work() as session:
            record(session, planned)

    def write_now(planned) -> bool:
        """The writes without waiting: False when another writer holds SQLite's lock."""
        try:
            with db.unit_of_work(wait=False) as session:
                record(session, planned)
        except OperationalError as exc:
            if not db.is_busy(exc):
                raise
            return False
        return True

    def whole():
        with db.unit_of_work() as session:
            planned = plan(session)
            record(session, planned)
            return planned

    try:
        if db.dialect == "sqlite":
            # On the event loop: handing a millisecond of work to the thread pool cost more than
            # the work (GIL hand-offs; measured with bench/ussd_load.py: 1.85 → 1.38 ms of server
            # CPU per hop, 514 → 712 req/s). WAL readers never wait for a lock; the writes are
            # tried without waiting, and only when another writer (a broadcast) holds SQLite's
            # lock do they go to the pool to wait there, never stalling the loop. (pysqlite reads
            # outside a transaction anyway: splitting reads and writes changes nothing a hop sees.)
            planned = read()
            if planned.changed and not write_now(planned):
                await run_in_threadpool(write, planned)
        else:
            planned = await run_in_threadpool(whole)
        screen = planned.screen
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
