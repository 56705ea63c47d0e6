"""The Africa's Talking Voice callback (a call starts, a key is pressed, a call ends) and the audio
its prompts play.

Each callback is one unit of work in the thread pool: the service answers with the clips of the
next prompt, joined into one file named by its hash, and the adapter renders the response (one
`Play` inside `GetDigits`, then a `Redirect` back here, which is how silence comes back to us).
The audio route is outside the webhook guard: the platform fetches it without our secret, so a
file is reachable only by its unguessable content hash, and is immutable (cached for a year).
"""

from __future__ import annotations

import logging
import re
from functools import partial
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from gateway.aggregators import africastalking_voice as atv
from gateway.aggregators.africastalking import BadRequest
from gateway.aggregators.callbacks import bad_request, read_form, unavailable
from gateway.aggregators.calling import (
    INBOUND,
    OUTBOUND,
    GetDigits,
    Hangup,
    Play,
    Redirect,
    Reject,
    Say,
    VoiceResponse,
)
from gateway.core.configs import engine_config
from gateway.core.phones import mask
from gateway.data.content import current_catalog
from gateway.data.dataview import CachedDataView
from gateway.outbound import calls
from gateway.voice import prompts
from gateway.voice import service as voice
from menus.screen import QUANTITY
from messages import Catalog
from messages.voice import audio

log = logging.getLogger("gateway.voice")

router = APIRouter(prefix="/webhooks/at", tags=["Africa's Talking callbacks"])
audio_router = APIRouter(prefix="/voice", tags=["Voice audio"])

KEY_TIMEOUT_S = 8  # seconds the caller has to press a key before the prompt counts as unheard
QUANTITY_DIGITS = 7  # up to 9,999,999 kg, ended by #
_HASH = re.compile(r"[0-9a-f]{64}")


def _urls(request: Request) -> tuple[str, str]:
    """Where the platform calls back (with the webhook secret, if any) and where audio lives."""
    settings = request.app.state.settings
    base = settings.public_url.rstrip("/")
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    callback = f"{base}{router.prefix}/voice" + (f"?{urlencode({'token': secret})}" if secret else "")
    return callback, f"{base}{audio_router.prefix}/audio/"


def _response(turn: voice.Turn, digest: str, callback: str, audio_base: str) -> VoiceResponse:
    play = Play(f"{audio_base}{digest}{audio.PLAY_EXTENSION}")
    if turn.end:
        return VoiceResponse.of(play, Hangup())
    if turn.prompt.entry == QUANTITY:
        gather = GetDigits(play, num_digits=QUANTITY_DIGITS, timeout_s=KEY_TIMEOUT_S, finish_on_key="#",
                           callback_url=callback)
    else:
        gather = GetDigits(play, num_digits=1, timeout_s=KEY_TIMEOUT_S, callback_url=callback)
    return VoiceResponse.of(gather, Redirect(callback))


def _apology(catalog: Catalog, language: str | None) -> VoiceResponse:
    # Said by the platform's own voice: whatever failed may be our audio.
    languages = [language] if language else ["fr", "bm"]
    text = " ".join(catalog.text(lang, "error.internal") for lang in languages)
    return VoiceResponse.of(Say(text), Hangup())


def _xml(response: VoiceResponse) -> Response:
    return Response(atv.render(response), media_type=atv.RESPONSE_MEDIA_TYPE)


@router.post("/voice", summary="Voice call callback")
async def voice_callback(request: Request) -> Response:
    state = request.app.state
    db, settings, clock = state.db, state.settings, state.clock
    try:
        call = atv.parse_voice_callback(await read_form(request))
    except BadRequest as exc:
        return bad_request(exc)
    if not call.is_active:
        def end() -> None:
            with db.unit_of_work() as session:
                voice.record_end(session, call=call, now=clock())
                if call.direction == OUTBOUND:
                    calls.settle(session, call=call, now=clock(), settings=settings)

        try:
            await run_in_threadpool(end)
        except OperationalError:
            log.exception("voice end not stored: database unavailable")
            return unavailable(request)
        log.info("voice call ended", extra={"session": call.session_id, "phone": mask(call.phone),
                                            "duration_s": call.duration_s})
        return PlainTextResponse("OK")

    if call.direction == INBOUND and settings.voice_inbound == "callback":
        # Never answered (an answered call costs the farmer): rejected, and called back for free.
        def queue() -> str:
            if state.caller is None:
                return "no caller"
            with db.unit_of_work() as session:
                return calls.queue_callback(session, phone=call.phone, now=clock(), settings=settings).outcome

        try:
            outcome = await run_in_threadpool(queue)
        except OperationalError:
            log.exception("call back not queued: database unavailable", extra={"phone": mask(call.phone)})
            outcome = "unavailable"  # still rejected: the caller may try again
        log.info("missed call", extra={"session": call.session_id, "phone": mask(call.phone), "callback": outcome})
        return _xml(VoiceResponse.of(Reject()))

    callback, audio_base = _urls(request)
    config = engine_config(settings)
    language: list[str | None] = [None]

    def work() -> VoiceResponse:
        with db.unit_of_work() as session:
            catalog = current_catalog(session, state.content_cache)
            placed = calls.by_request(session, call.client_request_id) if call.direction == OUTBOUND else None
            answer = voice.answer
            if placed is not None and placed.purpose == calls.ALERT:
                answer = partial(voice.answer_alert, voice_call=placed)
            data = CachedDataView(session, state.content_cache)
            turn = answer(session, call=call, now=clock(), catalog=catalog, config=config, data=data,
                          rules=state.reply_rules, fold=settings.sms_fold)
            language[0] = turn.language
            digest = state.prompt_audio.playlist(session, turn.clips, prompts.fallback_chains(data.languages()))
            return _response(turn, digest, callback, audio_base)

    try:
        response = await run_in_threadpool(work)
    except Exception as exc:
        # A caller never hears a crash as silence or a dropped line: an apology, then goodbye.
        log.exception("voice callback failed", extra={"session": call.session_id, "phone": mask(call.phone),
                                                      "kind": exc.__class__.__name__})
        return _xml(_apology(state.catalog, language[0]))
    log.info("voice prompt", extra={"session": call.session_id, "phone": mask(call.phone), "digits": call.digits})
    return _xml(response)


@audio_router.get("/audio/{name}", summary="A prompt's audio, by content hash")
async def voice_audio(name: str, request: Request) -> Response:
    digest, _, extension = name.partition(".")
    if not _HASH.fullmatch(digest) or "." + extension != audio.PLAY_EXTENSION:
        return PlainTextResponse("not found", status_code=404)
    db = request.app.state.db

    def read() -> bytes | None:
        with db.unit_of_work() as session:
            return prompts.audio_bytes(session, digest)

    data = await run_in_threadpool(read)
    if data is None:
        return PlainTextResponse("not found", status_code=404)
    # The name is the content's hash: it never changes, so it may be kept for good.
    return Response(data, media_type=audio.PLAY_CONTENT_TYPE,
                    headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{digest}"'})
