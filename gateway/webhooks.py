"""Aggregator callbacks. Aggregator formats are parsed by the adapter; the work is one unit of
work per request, run off the event loop (the database driver is synchronous)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

import menus
from gateway import ussd
from gateway.aggregators import africastalking as at
from gateway.deps import CatalogDep, ClockDep, DbDep, SettingsDep
from gateway.phones import mask
from menus.paging import truncate
from messages import Catalog, to_ussd

log = logging.getLogger("gateway.ussd")

router = APIRouter(prefix="/webhooks/at", tags=["Africa's Talking callbacks"])


async def _form(request: Request) -> dict[str, str]:
    try:
        form = await request.form()
    except Exception as exc:  # malformed body: the sender's fault, never ours
        raise at.BadRequest(f"unreadable form: {exc.__class__.__name__}") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _bad_request(exc: at.BadRequest) -> PlainTextResponse:
    return PlainTextResponse(str(exc), status_code=400)


@router.post("/ussd", response_class=PlainTextResponse, summary="USSD hop")
async def ussd_hop(
    request: Request, db: DbDep, settings: SettingsDep, clock: ClockDep, catalog: CatalogDep
) -> PlainTextResponse:
    try:
        hop = at.parse_ussd(await _form(request))
    except at.BadRequest as exc:
        return _bad_request(exc)
    config = menus.EngineConfig(
        max_chars=settings.ussd_max_chars,
        max_steps=settings.ussd_max_steps,
        stale_after_days=settings.price_stale_days,
    )
    trace = ussd.HopTrace()

    def work():
        with db.unit_of_work() as session:
            return ussd.handle_hop(
                session, hop=hop, now=clock(), catalog=catalog, config=config, trace=trace
            )

    try:
        screen = await run_in_threadpool(work)
    except Exception as exc:
        # The caller must never see a failure as an HTTP error: the telco would show a
        # cryptic network message. End the session politely instead.
        log.exception(
            "ussd hop failed",
            extra={"session": hop.session_id, "phone": mask(hop.phone), "kind": exc.__class__.__name__},
        )
        if not isinstance(exc, OperationalError):
            await run_in_threadpool(_count_error, db, hop.session_id)
        return PlainTextResponse(at.ussd_reply(_apology(catalog, trace.language, settings.ussd_max_chars), end=True))
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

    await run_in_threadpool(work)
    return PlainTextResponse("OK")
