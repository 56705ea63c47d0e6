"""Console page: USSD, SMS and voice simulators that run the real menus on a throw-away copy.

The page holds the three phones at once: each form also posts the other phones' state (hidden
fields), so trying an SMS does not hang up the USSD session or the call in progress, and the
reverse. The voice phone runs the real voice service and plays the real joined audio; its key
presses are answered inside a transaction that is rolled back (nothing a call would change is
changed, no call is placed, nothing is paid), only the audio it made is kept, as any call's is."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Request
from sqlmodel import select

import menus
from gateway.admin.core import UTC, AnyStaff, Form, db_of, language_of, now_of, path_for, render, settings_of, tr
from gateway.aggregators.calling import DTMF_KEYS, INBOUND, VoiceCallback
from gateway.core.configs import engine_config, sms_config
from gateway.data import models
from gateway.data.dataview import SqlDataView
from gateway.voice.prompts import NoAudio, fallback_chains
from gateway.voice.service import MAX_SILENCES, Turn
from gateway.voice.webhook import QUANTITY_DIGITS
from menus.screen import QUANTITY
from menus.voice import BACK_KEY, HOME_KEY, MORE_KEY, REPEAT_KEY
from messages import staff as staff_text
from messages.catalog import LANGUAGES
from messages.sms import measure, render_sms
from messages.voice.audio import PLAY_EXTENSION

router = APIRouter(prefix="/admin", include_in_schema=False)

DEFAULT_PHONE = "+22370000099"
SMS_EXAMPLE = "PRIX TOMATE SIKASSO"  # what a farmer texts (a keyword of the SMS service, not a console text)
MAX_PATH = 400
# A simulated call's session id: the dashboard leaves `sim-` sessions out of farmers' figures.
SIM_PREFIX = "sim-"
_SIM_SESSION = re.compile(r"sim-[0-9a-f]{12}")
_INPUT = re.compile(r"[0-9]{1,7}")  # one menu input of a call: an option number or a quantity
MAX_VOICE_PAGE = 50


@dataclass
class PageState:
    """What both phones of the page show, carried from one post to the next."""

    ussd_phone: str = DEFAULT_PHONE
    path: str = ""
    language: str = ""
    dialled: bool = False
    sms_phone: str = DEFAULT_PHONE
    sms_text: str = ""
    voice_phone: str = DEFAULT_PHONE
    voice_session: str = ""  # "" while no call is on
    voice_inputs: str = ""  # the menus' inputs so far, comma-separated (as the service keeps them)
    voice_page: int = 0
    voice_silences: int = 0
    voice_ended: bool = False
    voice_entry: bool = False  # the prompt waits for a quantity ended by # (not one key)

    @classmethod
    def from_form(cls, form: dict, *, panel: str) -> "PageState":
        """`panel`: the phone whose form was posted; a plain `phone` / `text` field (scripts,
        older pages) belongs to it."""
        language = form.get("language", "")
        own_phone = form.get("phone", "")
        return cls(
            ussd_phone=form.get("ussd_phone", "") or (own_phone if panel == "ussd" else "") or DEFAULT_PHONE,
            path=form.get("path", "")[:MAX_PATH],
            language=language if language in LANGUAGES else "",
            dialled=form.get("dialled") == "1" or bool(form.get("path")) or bool(form.get("sent")),
            sms_phone=form.get("sms_phone", "") or (own_phone if panel == "sms" else "") or DEFAULT_PHONE,
            sms_text=(form.get("sms_text", "") or (form.get("text", "") if panel == "sms" else ""))[:480],
            voice_phone=form.get("voice_phone", "") or (own_phone if panel == "voice" else "") or DEFAULT_PHONE,
            voice_session=session if _SIM_SESSION.fullmatch(session := form.get("voice_session", "")) else "",
            voice_inputs=",".join(_inputs(form.get("voice_inputs", ""))),
            voice_page=_bounded(form.get("voice_page", ""), MAX_VOICE_PAGE),
            voice_silences=_bounded(form.get("voice_silences", ""), MAX_SILENCES),
            voice_ended=form.get("voice_ended") == "1",
            voice_entry=form.get("voice_entry") == "1",
        )

    @property
    def in_call(self) -> bool:
        return bool(self.voice_session) and not self.voice_ended


def _inputs(raw: str) -> list[str]:
    """The carried menu inputs; a tampered list is cut at its first foreign item."""
    parts = [p for p in raw[:MAX_PATH].split(",") if p]
    kept = []
    for part in parts:
        if not _INPUT.fullmatch(part):
            break
        kept.append(part)
    return kept


def _bounded(raw: str, top: int) -> int:
    return min(int(raw), top) if raw.isdigit() and len(raw) < 4 else 0


def _phone(request: Request, raw: str) -> tuple[str | None, str]:
    from gateway.core.phones import InvalidPhone, parse_phone

    try:
        return parse_phone(raw), ""
    except InvalidPhone:
        return None, tr(request, "Not a phone number: write it as +223 70 00 00 99 or 70 00 00 99.")


def _ussd(request: Request, state: PageState) -> dict:
    """The real engine and data, on a throw-away copy of the caller: the profile is read from
    the number's producer row, the menus replay the path, and what a real call would change
    (opt-out, offers, subscriptions, SMS) is listed, never applied (finding 10: a reporter opted
    a real farmer out and sent SMS abroad from here). Nothing is written, nothing is sent."""
    from gateway.data.content import current_catalog
    from gateway.data.producers import producer_by_phone
    from gateway.data.producers import profile_from_snapshot, snapshot

    phone, error = _phone(request, state.ussd_phone)
    if not state.dialled or phone is None:
        return {"error": error if state.dialled else ""}
    with db_of(request).unit_of_work() as session:
        copy = snapshot(session, producer_by_phone(session, phone))
        if state.language:
            copy["language"] = state.language  # the copy only: the producer keeps theirs
        screen = menus.run(
            tuple(state.path.split("*")) if state.path else (), profile=profile_from_snapshot(phone, copy),
            data=SqlDataView(session), catalog=current_catalog(session, request.app.state.content_cache),
            now=now_of(request), config=engine_config(settings_of(request)),
        )
        session.rollback()  # reads only; rolled back all the same
    # What the handset shows: the CON/END protocol word is for the operator, not the screen.
    return {"screen": screen.text, "end": screen.end, "chars": len(screen.text),
            "effects": [type(e).__name__ for e in screen.effects]}


def _sms(request: Request, state: PageState) -> dict:
    """The reply that would be sent, computed by the real responder; nothing is stored or sent."""
    from gateway.data.content import current_catalog
    from gateway.data.producers import producer_by_phone, profile_of
    from menus.sms import respond

    if not state.sms_text:
        return {}
    phone, error = _phone(request, state.sms_phone)
    if phone is None:
        return {"error": error}
    settings = settings_of(request)
    with db_of(request).unit_of_work() as session:
        producer = producer_by_phone(session, phone)
        profile = profile_of(session, producer) if producer else menus.Profile(phone=phone)
        reply = respond(state.sms_text, profile=profile, data=SqlDataView(session),
                        catalog=current_catalog(session, request.app.state.content_cache), now=now_of(request),
                        config=sms_config(settings))
        session.rollback()
    sent = render_sms(reply.text, reply.language, fold=settings.sms_fold)
    enc = measure(sent)
    return {"reply": sent, "intent": reply.intent, "encoding": enc.encoding, "segments": enc.segments,
            "effects": [type(e).__name__ for e in reply.effects]}


# -- the voice phone -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceHop:
    """One callback of a call, answered by the real voice service on a throw-away copy."""

    turn: Turn
    screen: menus.Screen  # the menus' screen the call is at
    inputs: tuple[str, ...]
    page: int
    silences: int
    effects: tuple[str, ...]  # what a real call would now change (effect names): not done


def voice_hop(app_state: Any, *, phone: str, session_id: str, digits: str | None,
              carried: tuple[list[str], int, int] | None = None) -> VoiceHop:
    """`digits` answered as the webhook answers them, in a transaction that is rolled back.

    `carried` is where a call the database does not keep stands (inputs, voice page, silences:
    the console carries them in its forms); without it, the call is the stored one, or a new call
    when there is none. The effects a real call would apply (opt-out, offers, subscriptions, SMS:
    finding 10) are applied inside the transaction too, then rolled back: they are only listed."""
    from gateway.data.content import current_catalog
    from gateway.data.producers import producer_by_phone, profile_from_snapshot, snapshot
    from gateway.voice import service as voice

    settings = app_state.settings
    now = app_state.clock()
    config = engine_config(settings)
    call = VoiceCallback(
        session_id=session_id, direction=INBOUND, phone=phone, service_number=settings.voice_number or None,
        is_active=True, digits=digits, recording_url=None, duration_s=None, currency=None, amount=None,
        call_state="", hangup_cause="", client_request_id=None, answered=None,
    )
    v = models.VoiceSession
    with app_state.db.unit_of_work() as session:
        catalog = current_catalog(session, app_state.content_cache)
        if carried is not None:
            inputs, page, silences = carried
            stamp = now.astimezone(UTC)
            session.add(v(session_id=session_id, phone=phone, direction=INBOUND, inputs=list(inputs), voice_page=page,
                          silences=silences, start_profile=snapshot(session, producer_by_phone(session, phone)),
                          started_at=stamp, updated_at=stamp))
            session.flush()
        before = session.exec(select(v.inputs).where(v.session_id == session_id)).first() or []
        turn = voice.answer(session, call=call, now=now, catalog=catalog, config=config,
                            rules=app_state.reply_rules, fold=settings.sms_fold)
        row = session.exec(select(v).where(v.session_id == session_id)).one()
        inputs = tuple(row.inputs or ())
        screen = menus.run(list(inputs), profile=profile_from_snapshot(phone, row.start_profile or {}),
                           data=SqlDataView(session), catalog=catalog, now=now, config=replace(config, spoken=True))
        # A key that moved the menus on: what the screen it led to would change.
        effects = tuple(type(e).__name__ for e in screen.effects) if list(inputs) != list(before) else ()
        hop = VoiceHop(turn, screen, inputs, row.voice_page, row.silences, effects)
        session.rollback()
    return hop


def voice_audio(app_state: Any, turn: Turn) -> str | None:
    """The hash of the turn's joined audio, as the webhook makes it; kept (committed) like any
    call's, since the audio route serves it from the database. None when it cannot be made."""
    try:
        with app_state.db.unit_of_work() as session:
            fallbacks = fallback_chains(SqlDataView(session).languages())
            return app_state.prompt_audio.playlist(session, turn.clips, fallbacks)
    except NoAudio:
        return None


def accepted_keys(turn: Turn) -> list[tuple[str, str]]:
    """What the prompt takes, as (key, meaning): meaning is choice, more, quantity, repeat, back,
    home (menus/voice.py: * repeat, 0 back, # main menu, 9 more)."""
    if turn.end:
        return []
    prompt = turn.prompt
    if prompt.entry == QUANTITY:
        # Typed then #: a lone # sends nothing (silence), so no main menu from here.
        return [("", "quantity"), (REPEAT_KEY, "repeat"), (BACK_KEY, "back")]
    keys = [(key, "choice") for key, _ in prompt.choices]
    if prompt.more:
        keys.append((MORE_KEY, "more"))
    return keys + [(REPEAT_KEY, "repeat"), (BACK_KEY, "back"), (HOME_KEY, "home")]


def digits_of(typed: str, *, entry: bool) -> str:
    """What the platform sends for keys typed at a prompt (as the fake's digits_sent): one key, or
    for a quantity the keys before # (a lone # sends nothing, which the service hears as silence)."""
    if entry:
        return typed.partition("#")[0][:QUANTITY_DIGITS]
    return typed[:1]


@dataclass(frozen=True)
class Press:
    digits: str | None  # None: a new call (its first callback carries no keys)


def _voice(request: Request, state: PageState, press: Press | None, *, note: str = "") -> dict:
    """The voice phone: the answer to `press`, or (another phone's form was posted) the prompt
    the call is at, said again."""
    panel: dict[str, Any] = {"note": note}
    if not state.voice_session:
        return panel
    phone, error = _phone(request, state.voice_phone)
    if phone is None:
        state.voice_session = ""
        return panel | {"error": error}
    app_state = request.app.state
    carried = (_inputs(state.voice_inputs), state.voice_page, state.voice_silences)
    if press is not None and press.digits is None:
        hop = voice_hop(app_state, phone=phone, session_id=state.voice_session, digits=None)
    elif press is not None:
        hop = voice_hop(app_state, phone=phone, session_id=state.voice_session, digits=press.digits, carried=carried)
    elif state.voice_silences >= MAX_SILENCES:  # the call ended on silence: its goodbye, again
        hop = voice_hop(app_state, phone=phone, session_id=state.voice_session, digits="",
                        carried=(carried[0], carried[1], MAX_SILENCES - 1))
    else:  # * repeats the prompt the call is at (without the notice it may have had)
        hop = voice_hop(app_state, phone=phone, session_id=state.voice_session, digits=REPEAT_KEY, carried=carried)
    if press is not None:  # where the call now stands, carried by every form of the page
        state.voice_inputs = ",".join(hop.inputs)
        state.voice_page, state.voice_silences = hop.page, hop.silences
        state.voice_ended = hop.turn.end
        state.voice_entry = hop.turn.prompt.entry == QUANTITY and not hop.turn.end
    digest = voice_audio(app_state, hop.turn)
    keys = accepted_keys(hop.turn)
    return panel | {
        "words": [clip.text for clip in hop.turn.clips],
        "audio": path_for(request, "voice_audio", name=f"{digest}{PLAY_EXTENSION}") if digest else "",
        "autoplay": press is not None,  # a key on another phone does not replay the call's audio
        "accepts": keys,
        "takes": {key for key, _ in keys if key},
        "end": hop.turn.end,
        "effects": list(hop.effects) if press is not None else [],
    }


def _page(request: Request, state: PageState, status_code: int = 200, *, press: Press | None = None,
          voice_note: str = "", voice_error: str = ""):
    ussd, sms = _ussd(request, state), _sms(request, state)
    voice = _voice(request, state, press, note=voice_note)
    if voice_error:
        voice["entry_error"] = voice_error
    lang = language_of(request)
    for panel in (ussd, sms, voice):  # what a real call or SMS would change, in words
        panel["effects"] = [staff_text.word(lang, "effect", name) for name in panel.get("effects", [])]
    bad = ussd.get("error") or sms.get("error") or voice.get("error") or voice_error
    return render(request, "simulators.html", {"state": state, "ussd": ussd, "sms": sms, "voice": voice,
                                               "sms_example": SMS_EXAMPLE},
                  status_code=400 if bad else status_code)


@router.get("/simulators", name="admin_simulators")
def simulators(request: Request, staff: AnyStaff):
    return _page(request, PageState())


# The handlers are plain functions (FastAPI runs them in its thread pool): a voice answer may
# synthesize a missing clip, which must not hold up the event loop.
@router.post("/simulators/ussd", name="admin_sim_ussd")
def sim_ussd(request: Request, staff: AnyStaff, form: Form):
    state = PageState.from_form(form, panel="ussd")
    if form.get("restart"):  # Dial: a new session from the first screen
        state.path, state.dialled = "", True
    elif form.get("sent") and state.dialled:
        entry = form.get("input", "")
        path = f"{state.path}*{entry}" if state.path else entry
        if len(path) > MAX_PATH:
            return _page(request, state, status_code=400)
        state.path = path
    return _page(request, state)


@router.post("/simulators/sms", name="admin_sim_sms")
def sim_sms(request: Request, staff: AnyStaff, form: Form):
    return _page(request, PageState.from_form(form, panel="sms"))


@router.post("/simulators/voice", name="admin_sim_voice")
def sim_voice(request: Request, staff: AnyStaff, form: Form):
    """Call, a key, silence, a quantity ended by #, or hang up; each answered by the voice service."""
    state = PageState.from_form(form, panel="voice")
    key = form.get("key", "")
    if form.get("call"):  # a new call, from its first prompt
        state.voice_session = SIM_PREFIX + secrets.token_hex(6)
        state.voice_inputs, state.voice_page, state.voice_silences = "", 0, 0
        state.voice_ended = state.voice_entry = False
        return _page(request, state, press=Press(None))
    if form.get("hangup"):
        was_on = state.in_call
        state.voice_session, state.voice_inputs, state.voice_page, state.voice_silences = "", "", 0, 0
        state.voice_ended = state.voice_entry = False
        return _page(request, state, voice_note="hung up" if was_on else "")
    if not state.in_call:
        return _page(request, state)
    if form.get("silence"):
        return _page(request, state, press=Press(""))
    if len(key) == 1 and key in DTMF_KEYS:
        # At a quantity prompt a key is sent by # like any typing: "5" then # gives "5".
        typed = key + "#" if state.voice_entry else key
        return _page(request, state, press=Press(digits_of(typed, entry=state.voice_entry)))
    if "quantity" in form:
        typed = form["quantity"].strip().replace(" ", "")
        typed = typed if typed.endswith("#") else typed + "#"
        if not re.fullmatch(rf"[0-9]{{1,{QUANTITY_DIGITS}}}#", typed):
            return _page(request, state, voice_error=tr(
                request, "Type a quantity in kilograms, digits only (at most {n}).", n=QUANTITY_DIGITS))
        return _page(request, state, press=Press(digits_of(typed, entry=True)))
    return _page(request, state)
