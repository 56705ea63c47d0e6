"""Orange's callbacks: inbound SMS and delivery receipts, posted as JSON, mapped onto the same
internal events as Africa's Talking's (`sms.receive`, `sms.record_delivery`) with the same
guarantees: a malformed body is answered 400 with the reason and nothing is stored; handling is
idempotent; while the database is away the answer is 503, so that Orange tries again.

The paths sit under /webhooks/, so the webhook guard (secret `?token=`, allowed networks) and the
body limit apply to them as to every aggregator callback."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from typing import Any, Callable

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from gateway.aggregators import orange
from gateway.aggregators.africastalking import BadRequest, DeliveryReport, InboundSms
from gateway.aggregators.callbacks import bad_request as _bad_request
from gateway.aggregators.callbacks import unavailable as _unavailable
from gateway.core.configs import sms_config
from gateway.core.deps import ClockDep, DbDep
from gateway.core.phones import mask
from gateway.data import models
from gateway.data.content import current_catalog
from gateway.outbound import outbox
from gateway.sms import service as sms

log = logging.getLogger("gateway.orange")

router = APIRouter(prefix="/webhooks/orange", tags=["Orange callbacks"])

# A receipt without a message id of ours is matched to the number's oldest message still `sent`
# within this window.
MATCH_WINDOW = dt.timedelta(days=2)


def _without_nul(value: Any) -> Any:
    """NUL characters dropped from every string: PostgreSQL refuses them in text, and no SMS
    field means anything by one (the same rule as the Africa's Talking forms)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


async def _json(request: Request) -> Any:
    try:
        return _without_nul(json.loads(await request.body()))
    except (ValueError, UnicodeDecodeError):  # the sender's fault, never ours
        raise BadRequest("unreadable JSON body") from None
    except RecursionError:  # nested deeper than the parser goes (a 16 KiB body of "[")
        raise BadRequest("JSON body nested too deeply") from None


async def _stored(request: Request, work: Callable[[], Any], what: str, **extra: Any) -> tuple[bool, Any]:
    """Run `work` (one unit of work) off the event loop: (True, its result), or (False, the 503
    to answer) when the database is unavailable."""
    try:
        return True, await run_in_threadpool(work)
    except OperationalError:
        log.exception(f"{what} not stored: database unavailable", extra=extra)
        return False, _unavailable(request)


async def receive_sms(
    request: Request, background: BackgroundTasks, message: InboundSms, provider: str
) -> PlainTextResponse:
    """An inbound SMS, whichever aggregator brought it: stored once, answered after the commit."""
    state = request.app.state
    settings, db, clock = state.settings, state.db, state.clock

    def work() -> int | None:
        with db.unit_of_work() as session:
            return sms.receive(
                session,
                message=message,
                provider=provider,
                now=clock(),
                catalog=current_catalog(session, state.content_cache),
                config=sms_config(settings),
                replies_per_day=settings.sms_replies_per_day,
                tz=settings.tz,
                rules=state.reply_rules,
            )

    ok, reply_id = await _stored(request, work, "sms", phone=mask(message.phone))
    if not ok:
        return reply_id
    if reply_id is not None:
        # Through the configured sender, after the commit: never a reply to a message not stored.
        background.add_task(outbox.send_messages, db, state.sender, [reply_id], clock)
    return PlainTextResponse("OK")


@router.post("/sms", response_class=PlainTextResponse, summary="Incoming SMS (Orange)")
async def sms_inbound(request: Request, background: BackgroundTasks) -> PlainTextResponse:
    try:
        message = orange.parse_inbound(await _json(request))
    except BadRequest as exc:
        return _bad_request(exc)
    return await receive_sms(request, background, message, orange.PROVIDER)


def match_report(session: Session, report: DeliveryReport, now: dt.datetime) -> DeliveryReport:
    """The report with the message id it speaks of. Orange's receipt carries the number and, in
    callbackData, an id only if Orange put one there: when that id is not one of ours, the
    number's oldest message still `sent` is the one; failing that, a fresh id lets
    `sms.record_delivery` settle the number's unconfirmed message (a send that timed out)."""
    m = models.SmsMessage
    known = select(m.id).where(m.provider_message_id == report.message_id)
    if report.message_id and session.exec(known).first():
        return report
    row = session.exec(
        select(m.provider_message_id)
        .where(
            m.provider == orange.PROVIDER,
            m.phone == report.phone,
            m.status == "sent",
            col(m.provider_message_id).is_not(None),
            m.sent_at >= now.astimezone(dt.timezone.utc) - MATCH_WINDOW,
        )
        .order_by(m.sent_at, m.id)
    ).first()
    # Never callbackData itself here: a constant one would bind every later receipt to one message.
    return dataclasses.replace(report, message_id=row or f"orange-dr-{uuid.uuid4().hex}")


@router.post("/sms/delivery", response_class=PlainTextResponse, summary="SMS delivery receipt (Orange)")
async def sms_delivery(request: Request, db: DbDep, clock: ClockDep) -> PlainTextResponse:
    try:
        report = orange.parse_delivery(await _json(request))
    except BadRequest as exc:
        return _bad_request(exc)

    def work() -> tuple[bool, str]:
        with db.unit_of_work() as session:
            now = clock()
            matched = match_report(session, report, now)
            return sms.record_delivery(session, report=matched, now=now), matched.message_id

    ok, result = await _stored(request, work, "delivery receipt", phone=mask(report.phone))
    if not ok:
        return result
    found, message_id = result
    if not found:
        extra = {"phone": mask(report.phone), "status": report.provider_status}
        extra["provider_message_id"] = message_id
        log.warning("delivery receipt for an unknown message", extra=extra)
    return PlainTextResponse("OK")
