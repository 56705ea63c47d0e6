"""The Africa's Talking SMS callbacks: an incoming SMS (stored and answered by the SMS service
in one unit of work, the reply sent after the commit), delivery reports and bulk opt-outs."""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from gateway.aggregators import africastalking as at
from gateway.aggregators.callbacks import bad_request, read_form, unavailable
from gateway.core.configs import sms_config
from gateway.core.deps import CatalogDep, ClockDep, DbDep, SettingsDep
from gateway.core.phones import mask
from gateway.data.content import current_catalog
from gateway.outbound import outbox
from gateway.sms import service as sms

log = logging.getLogger("gateway.sms")

router = APIRouter(prefix="/webhooks/at", tags=["Africa's Talking callbacks"])


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
        message = at.parse_inbound_sms(await read_form(request))
    except at.BadRequest as exc:
        return bad_request(exc)
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
        return unavailable(request)
    if reply_id is not None:
        # Sent after the commit, so a reply never goes out for a message we failed to store.
        background.add_task(outbox.send_messages, db, request.app.state.sender, [reply_id], clock)
    return PlainTextResponse("OK")


@router.post("/sms/delivery", response_class=PlainTextResponse, summary="SMS delivery report")
async def sms_delivery(request: Request, db: DbDep, clock: ClockDep) -> PlainTextResponse:
    try:
        report = at.parse_delivery_report(await read_form(request))
    except at.BadRequest as exc:
        return bad_request(exc)

    def work() -> bool:
        with db.unit_of_work() as session:
            return sms.record_delivery(session, report=report, now=clock())

    try:
        found = await run_in_threadpool(work)
    except OperationalError:
        log.exception("delivery report not stored: database unavailable")
        return unavailable(request)
    if not found:
        log.warning("delivery report for an unknown message", extra={"provider_message_id": report.message_id})
    return PlainTextResponse("OK")


@router.post("/sms/optout", response_class=PlainTextResponse, summary="Bulk SMS opt-out")
async def sms_optout(request: Request, db: DbDep, clock: ClockDep) -> PlainTextResponse:
    try:
        phone, sender_id = at.parse_optout(await read_form(request))
    except at.BadRequest as exc:
        return bad_request(exc)

    def work() -> None:
        with db.unit_of_work() as session:
            sms.record_optout(session, phone=phone, now=clock())

    try:
        await run_in_threadpool(work)
    except OperationalError:
        log.exception("opt-out not stored: database unavailable", extra={"phone": mask(phone)})
        return unavailable(request)
    log.info("opted out", extra={"phone": mask(phone), "sender_id": sender_id})
    return PlainTextResponse("OK")
