"""Console page: USSD and SMS simulators that run the real menus on a throw-away copy."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

import menus
from gateway.admin.core import (
    AnyStaff,
    Form,
    back_to,
    db_of,
    flash,
    now_of,
    render,
    settings_of,
)
from gateway.configs import engine_config, sms_config
from gateway.dataview import SqlDataView
from messages.catalog import LANGUAGES
from messages.sms import measure, render_sms

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- simulators ------------------------------------------------------------------------------------


@router.get("/simulators", name="admin_simulators")
def simulators(request: Request, staff: AnyStaff):
    return render(request, "simulators.html", {"ussd": None, "phone": "+22370000099", "path": "", "sms": None})


def _sim_phone(request: Request, form: dict) -> str | None:
    from gateway.phones import InvalidPhone, parse_phone

    try:
        return parse_phone(form.get("phone", ""))
    except InvalidPhone as exc:
        flash(request, f"Phone: {exc}", "error")
        return None


@router.post("/simulators/ussd", name="admin_sim_ussd")
async def sim_ussd(request: Request, staff: AnyStaff, form: Form):
    """The real engine and data, on a throw-away copy of the caller: the profile is read from
    the number's producer row, the menus replay the path, and what a real call would change
    (opt-out, offers, subscriptions, SMS) is listed, never applied (finding 10: a reporter opted
    a real farmer out and sent SMS abroad from here). Nothing is written, nothing is sent."""
    from gateway.content import current_catalog
    from gateway.effects import producer_by_phone
    from gateway.ussd import profile_from_snapshot, snapshot

    phone = _sim_phone(request, form)
    if phone is None:
        return back_to(request, "admin_simulators")
    settings = settings_of(request)
    path = form.get("path", "")
    entry = form.get("input", "")
    if form.get("restart"):
        path = ""
    elif form.get("sent"):
        path = f"{path}*{entry}" if path else entry
    if len(path) > 400:
        raise HTTPException(400, "The path is too long.")
    language = form.get("language") if form.get("language") in LANGUAGES else ""
    with db_of(request).unit_of_work() as session:
        copy = snapshot(session, producer_by_phone(session, phone))
        if language:
            copy["language"] = language  # the copy only: the producer keeps theirs
        screen = menus.run(
            tuple(path.split("*")) if path else (), profile=profile_from_snapshot(phone, copy), data=SqlDataView(session),
            catalog=current_catalog(session, request.app.state.content_cache), now=now_of(request),
            config=engine_config(settings),
        )
        session.rollback()  # reads only; rolled back all the same
    # What the handset shows: the CON/END protocol word is for the operator, not the screen.
    return render(request, "simulators.html", {"ussd": screen.text, "end": screen.end, "phone": phone, "path": path,
                                               "language": language, "sms": None, "chars": len(screen.text),
                                               "effects": [type(e).__name__ for e in screen.effects]})


@router.post("/simulators/sms", name="admin_sim_sms")
async def sim_sms(request: Request, staff: AnyStaff, form: Form):
    """The reply that would be sent, computed by the real responder; nothing is stored or sent."""
    from gateway.effects import producer_by_phone, profile_of
    from menus.sms import respond

    phone = _sim_phone(request, form)
    if phone is None:
        return back_to(request, "admin_simulators")
    settings = settings_of(request)
    with db_of(request).unit_of_work() as session:
        producer = producer_by_phone(session, phone)
        profile = profile_of(session, producer) if producer else menus.Profile(phone=phone)
        from gateway.content import current_catalog

        reply = respond(form.get("text", ""), profile=profile, data=SqlDataView(session),
                        catalog=current_catalog(session, request.app.state.content_cache), now=now_of(request),
                        config=sms_config(settings))
        session.rollback()
    sent = render_sms(reply.text, reply.language, fold=settings.sms_fold)
    enc = measure(sent)
    return render(request, "simulators.html", {
        "ussd": None, "phone": phone, "path": "",
        "sms": {"text": form.get("text", ""), "reply": sent, "intent": reply.intent, "encoding": enc.encoding,
                "segments": enc.segments, "effects": [type(e).__name__ for e in reply.effects]},
    })
