"""Aggregator callbacks. Aggregator formats are parsed by the adapter; the work is one unit of
work per request, run off the event loop (the database driver is synchronous) — except a USSD
hop on SQLite, whose reads (and writes, when no other writer holds the lock) are quicker on the
loop than the hand-off to the thread pool (see ussd_hop)."""
# Each route parses with the adapter, answers 400 with the reason for a malformed form (nothing
# stored), and runs its unit of work in the thread pool.

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from gateway import outbox, sms, ussd
from gateway.aggregators import africastalking as at
from gateway.configs import engine_config, sms_config
from gateway.content import current_catalog
from gateway.dataview import CachedDataView
from gateway.deps import CatalogDep, ClockDep, DbDep, SettingsDep
from gateway.phones import mask
from menus.paging import truncate
from messages import Catalog, to_ussd

log = logging.getLogger("gateway.ussd")

router = APIRouter(prefix="/webhooks/at", tags=["Africa's Talking callbacks"])


MAX_FORM_FIELDS = 100


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        # What aggregators send. Parsed with the standard library, as Starlette does (latin-1
        # bytes, then %-escapes as UTF-8): its streaming parser costs a tenth of a hop here.
        body = await request.body()
        try:
            pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError as exc:
            raise at.BadRequest(f"unreadable form: {exc}") from None
        # NUL dropped: PostgreSQL refuses it in text, and no field means anything by one; a
        # caller's hop is answered rather than refused (the farmer would see a network error).
        return {k.replace("\x00", ""): v.replace("\x00", "") for k, v in pairs}
    try:
        form = await request.form(max_fields=MAX_FORM_FIELDS)
    except Exception as exc:  # malformed body: the sender's fault, never ours
        raise at.BadRequest(f"unreadable form: {exc.__class__.__name__}") from None
    return {k.replace("\x00", ""): v.replace("\x00", "") for k, v in form.items() if isinstance(v, str)}


def _bad_request(exc: at.BadRequest) -> PlainTextResponse:
    return PlainTextResponse(str(exc), status_code=400)


class PhoneRateLimit:
    """At most `per_minute` requests per phone in this process (a runaway handset or a replay
    loop cannot monopolise it); a sliding one-minute window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, list[float]] = {}
        self._sweep_at = 0.0

    def allow(self, phone: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now >= self._sweep_at:
            # Once a minute, forget the phones idle for a minute: memory follows the callers of
            # the last minute or two, not every number ever seen.
            self._seen = {p: ts for p, ts in self._seen.items() if now - ts[-1] < 60}
            self._sweep_at = now + 60
        recent = [t for t in self._seen.get(phone, ()) if now - t < 60]
        if len(recent) >= self.per_minute:
            self._seen[phone] = recent
            return False
        recent.append(now)
        self._seen[phone] = recent
        return True

    def __len__(self) -> int:
        return len(self._seen)


@router.post("/ussd", response_class=PlainTextResponse, summary="USSD hop")
async def ussd_hop(request: Request) -> PlainTextResponse:
    # The hottest route reads app.state directly: FastAPI's dependency solving costs about a
    # fifth of a hop here (measured), the other routes keep the named dependencies.
    state = request.app.state
    db, settings, clock, catalog = state.db, state.settings, state.clock, state.catalog
    metrics = request.app.state.metrics
    started = time.perf_counter()
    try:
        hop = at.parse_ussd(await _form(request))
    except at.BadRequest as exc:
        metrics.webhook_errors.labels("bad_request").inc()
        return _bad_request(exc)
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
        event = at.parse_ussd_end(await _form(request))
    except at.BadRequest as exc:
        return _bad_request(exc)

    def work() -> None:
        with db.unit_of_work() as session:
            ussd.record_end(session, event=event, now=clock())

    try:
        await run_in_threadpool(work)
    except OperationalError:
        log.exception("ussd end event not stored: database unavailable")
        return _unavailable(request)
    return PlainTextResponse("OK")


# -- SMS ---------------------------------------------------------------------------------------


def _unavailable(request: Request) -> PlainTextResponse:
    request.app.state.metrics.webhook_errors.labels("unavailable").inc()
    # The aggregator retries until it gets a 200: nothing is lost while the database is away.
    return PlainTextResponse("temporarily unavailable", status_code=503, headers={"Retry-After": "60"})


@router.post("/sms", response_class=PlainTextResponse, summary="Incoming SMS")
async def sms_inbound(
    request: Request,
    background: BackgroundTasks,
    db: DbDep,
    settings: SettingsDep,
    clock: ClockDep,
    catalog: CatalogDep,
) -> PlainTextResponse:
    try:
        message = at.parse_inbound_sms(await _form(request))
    except at.BadRequest as exc:
        return _bad_request(exc)
    config = sms_config(settings)

    def work() -> int | None:
        with db.unit_of_work() as session:
            return sms.receive(
                session,
                message=message,
                provider=at.PROVIDER,
                now=clock(),
                catalog=current_catalog(session, request.app.state.content_cache),
                config=config,
                replies_per_day=settings.sms_replies_per_day,
                tz=settings.tz,
                rules=request.app.state.reply_rules,
            )

    try:
        reply_id = await run_in_threadpool(work)
    except OperationalError:
        log.exception("sms not stored: database unavailable", extra={"phone": mask(message.phone)})
        return _unavailable(request)
    if reply_id is not None:
        # Sent after the commit, so a reply never goes out for a message we failed to store.
        background.add_task(outbox.send_messages, db, request.app.state.sender, [reply_id], clock)
    return PlainTextResponse("OK")


@router.post("/sms/delivery", response_class=PlainTextResponse, summary="SMS delivery report")
async def sms_delivery(request: Request, db: DbDep, clock: ClockDep) -> PlainTextResponse:
    try:
        report = at.parse_delivery_report(await _form(request))
    except at.BadRequest as exc:
        return _bad_request(exc)

    def work() -> bool:
        with db.unit_of_work() as session:
            return sms.record_delivery(session, report=report, now=clock())

    try:
        found = await run_in_threadpool(work)
    except OperationalError:
        log.exception("delivery report not stored: database unavailable")
        return _unavailable(request)
    if not found:
        log.warning("delivery report for an unknown message", extra={"provider_message_id": report.message_id})
    return PlainTextResponse("OK")


@router.post("/sms/optout", response_class=PlainTextResponse, summary="Bulk SMS opt-out")
async def sms_optout(request: Request, db: DbDep, clock: ClockDep) -> PlainTextResponse:
    try:
        phone, sender_id = at.parse_optout(await _form(request))
    except at.BadRequest as exc:
        return _bad_request(exc)

    def work() -> None:
        with db.unit_of_work() as session:
            sms.record_optout(session, phone=phone, now=clock())

    try:
        await run_in_threadpool(work)
    except OperationalError:
        log.exception("opt-out not stored: database unavailable", extra={"phone": mask(phone)})
        return _unavailable(request)
    log.info("opted out", extra={"phone": mask(phone), "sender_id": sender_id})
    return PlainTextResponse("OK")
