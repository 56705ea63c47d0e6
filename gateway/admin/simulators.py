"""Console page: USSD and SMS simulators that run the real menus on a throw-away copy.

The page holds both phones at once: each form also posts the other phone's state (hidden
fields), so trying an SMS does not hang up the USSD session in progress, and the reverse."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request

import menus
from gateway.admin.core import AnyStaff, Form, db_of, language_of, now_of, render, settings_of, tr
from gateway.core.configs import engine_config, sms_config
from gateway.data.dataview import SqlDataView
from messages import staff as staff_text
from messages.catalog import LANGUAGES
from messages.sms import measure, render_sms

router = APIRouter(prefix="/admin", include_in_schema=False)

DEFAULT_PHONE = "+22370000099"
SMS_EXAMPLE = "PRIX TOMATE SIKASSO"  # what a farmer texts (a keyword of the SMS service, not a console text)
MAX_PATH = 400


@dataclass
class PageState:
    """What both phones of the page show, carried from one post to the next."""

    ussd_phone: str = DEFAULT_PHONE
    path: str = ""
    language: str = ""
    dialled: bool = False
    sms_phone: str = DEFAULT_PHONE
    sms_text: str = ""

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
        )


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


def _page(request: Request, state: PageState, status_code: int = 200):
    ussd, sms = _ussd(request, state), _sms(request, state)
    lang = language_of(request)
    for panel in (ussd, sms):  # what a real call or SMS would change, in words
        panel["effects"] = [staff_text.word(lang, "effect", name) for name in panel.get("effects", [])]
    bad = ussd.get("error") or sms.get("error")
    return render(request, "simulators.html", {"state": state, "ussd": ussd, "sms": sms, "sms_example": SMS_EXAMPLE},
                  status_code=400 if bad else status_code)


@router.get("/simulators", name="admin_simulators")
def simulators(request: Request, staff: AnyStaff):
    return _page(request, PageState())


@router.post("/simulators/ussd", name="admin_sim_ussd")
async def sim_ussd(request: Request, staff: AnyStaff, form: Form):
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
async def sim_sms(request: Request, staff: AnyStaff, form: Form):
    return _page(request, PageState.from_form(form, panel="sms"))
