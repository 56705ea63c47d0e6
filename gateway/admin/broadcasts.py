"""Console pages: price-alert broadcasts with audience, cost estimate, approval and sending."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from gateway.admin.core import (
    UTC,
    Editor,
    Form,
    back_to,
    confirm_page,
    confirmed,
    db_of,
    flash,
    language_of,
    now_of,
    path_for,
    render,
    settings_of,
    tn,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import auth, languages, models
from gateway.outbound import broadcast
from messages import staff as staff_text

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- broadcasts ------------------------------------------------------------------------------------

FIELDS = ("text_fr", "text_bm", "region", "market", "crop", "clusters", "language", "at")
# Statuses before the worker writes one outbox row per recipient: the counts are planned ones.
NOT_EXPANDED = ("draft", "pending", "awaiting_approval", "expanding")
MAX_TEXT = 1000


def _many(raw: str) -> list[str]:
    return [v.strip() for v in raw.split(",") if v.strip()]


def _choices(session) -> dict:
    return {
        "regions": sorted({m.region for m in session.exec(select(models.Market))}),
        "crops": session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all(),
        "markets": session.exec(select(models.Market).order_by(models.Market.name)).all(),
        # Every configured language, in the menus' order: its farmers keep it even when disabled.
        "languages": languages.rows(session),
    }


def _language_names(request: Request, found) -> dict[str, str]:
    """code -> the language's name for staff: the console's word for French and Bambara, the
    French name staff gave the others (console → Languages)."""
    lang = language_of(request)
    return {row.code: staff_text.word(lang, "language", row.code) if row.code in ("fr", "bm") else row.name_fr or row.name
            for row in found}


def _audience_from(form: dict, session, codes: set[str]) -> broadcast.Audience:
    crop_ids = {c.code: c.id for c in session.exec(select(models.Crop))}
    market_ids = {m.code: m.id for m in session.exec(select(models.Market))}
    return broadcast.Audience(
        regions=[form["region"]] if form.get("region") else [],
        markets=[market_ids[c] for c in [form.get("market", "")] if c in market_ids],
        crops=[crop_ids[c] for c in [form.get("crop", "")] if c in crop_ids],
        clusters=_many(form.get("clusters", "")),
        languages=[form["language"]] if form.get("language") in codes else [],
    )


def _kind(request: Request, kind: str) -> str:
    if kind == "correction":  # not in words.toml's broadcast_kind table (see the report)
        return tr(request, "price correction")
    return staff_text.word(language_of(request), "broadcast_kind", kind)


_ALERT_RESENT = re.compile(r"Re-sent after a price change \(#(\d+)\)$")
_CORRECTION = re.compile(r"Correction of price #(\d+)$")


def _title(request: Request, b: models.Broadcast) -> str:
    """The broadcast's title in the console's language: staff's own words for their messages,
    rebuilt from what it is for those the service writes (stored in English)."""
    if b.kind == "alert":
        resent = _ALERT_RESENT.match(b.title or "")
        if resent:
            return tr(request, "Alerts re-sent after a price change (#{id})", id=resent.group(1))
        n = len(b.audience.get("pairs", []))
        return tn(request, n, "Price alerts ({n} price)", "Price alerts ({n} prices)")
    correction = _CORRECTION.match(b.title or "")
    if b.kind == "correction" and correction:
        return tr(request, "Correction of price #{id}", id=correction.group(1))
    return b.title


def _status_word(request: Request, b: models.Broadcast) -> str:
    # "pending" is a scheduled broadcast only when it has a time; otherwise it is in the queue.
    if b.status == "pending" and not b.scheduled_at:
        return tr(request, "queued")
    return staff_text.word(language_of(request), "broadcast_status", b.status)


def _status_line(request: Request, b: models.Broadcast, stats: dict, settings) -> str:
    """Where the broadcast is, in a sentence."""
    lang = language_of(request)
    if b.status == "pending" and b.scheduled_at:
        when = staff_text.date_time(b.scheduled_at, lang, tz=settings.tz)
        return tr(request, "Scheduled: it will be sent from {when}, outside the quiet hours.", when=when)
    if b.status == "pending":
        return tr(request, "Queued: sending starts within a minute, outside the quiet hours.")
    if b.status == "awaiting_approval":
        return tr(request, "Waits for another staff member's approval before anything is sent.")
    if b.status == "expanding":
        return tr(request, "Being prepared: the list of recipients is being drawn up.")
    if b.status == "sending":
        return tr(request, "Sending: {done} of {total} messages handled.", done=stats["finished"], total=stats["total"])
    if b.status == "done":
        return tr(request, "Finished: every message has been handled.")
    if b.status == "cancelled":
        return tr(request, "Cancelled: nothing more will be sent.")
    return staff_text.word(lang, "broadcast_status", b.status)


def _page(request: Request, values: dict, errors: dict, status_code: int = 200):
    settings = settings_of(request)
    with db_of(request).unit_of_work() as session:
        rows = session.exec(select(models.Broadcast).order_by(col(models.Broadcast.id).desc()).limit(50)).all()
        stats = {b.id: broadcast.stats(session, b.id) for b in rows}
        planned = {b.id: broadcast.planned(session, b, settings) for b in rows
                   if b.status in NOT_EXPANDED and not stats[b.id]["total"]}
        context = _choices(session)
    context["language_choices"] = list(_language_names(request, context["languages"]).items())
    titles = {b.id: _title(request, b) for b in rows}
    kinds = {b.id: _kind(request, b.kind) for b in rows}
    statuses = {b.id: _status_word(request, b) for b in rows}
    return render(request, "broadcasts.html", {**context, "rows": rows, "stats": stats, "planned": planned,
                                               "titles": titles, "kinds": kinds, "statuses": statuses, "values": values, "errors": errors,
                                               "threshold": settings.broadcast_approval_threshold},
                  status_code=status_code)


@router.get("/broadcasts", name="admin_broadcasts")
def broadcasts_page(request: Request, staff: Editor):
    # A confirmation's "Change the message" comes back here with the values in the query string.
    values = {name: request.query_params.get(name, "")[:MAX_TEXT] for name in FIELDS}
    return _page(request, values, {})


def _estimate_lines(request: Request, est: broadcast.Estimate, text_bm: str, names: dict[str, str]) -> dict:
    lines = []
    for p in est.languages:
        if not p.recipients:  # a text nobody reads is no line ("0 recipients")
            continue
        lines.append(tr(request, "{language}: {recipients}, {encoding}, {segments} each, about {cost} XOF: {text}",
                        language=names.get(p.language, p.language),
                        recipients=tn(request, p.recipients, "{n} recipient", "{n} recipients"),
                        encoding=p.encoding, segments=tn(request, p.segments, "{n} segment", "{n} segments"),
                        cost=round(p.estimated_cost), text=p.text))
        # Counted above with the text they read: a voice-only or disabled language's farmers.
        lines += [tn(request, n, "{n} of them speaks {language}: SMS are not written in it, they read this text.",
                     "{n} of them speak {language}: SMS are not written in it, they read this text.",
                     language=names.get(code, code))
                  for code, n in p.speakers.items() if code != p.language]
    bm = next((p.recipients for p in est.languages if p.language == "bm"), 0)
    warning = ""
    if not text_bm.strip() and bm:
        warning = tn(request, bm, "{n} Bambara speaker will receive the French text: no Bambara text was given.",
                     "{n} Bambara speakers will receive the French text: no Bambara text was given.")
    total = tr(request, "Total: {recipients}, {segments}, about {cost} XOF",
               recipients=tn(request, est.recipients, "{n} recipient", "{n} recipients"),
               segments=tn(request, est.segments, "{n} SMS segment", "{n} SMS segments"), cost=round(est.cost))
    return {"lines": lines, "total_text": total, "warning": warning}


@router.post("/broadcasts/preview", name="admin_broadcast_preview")
async def broadcast_preview(request: Request, staff: Editor, form: Form):
    settings = settings_of(request)
    with db_of(request).unit_of_work() as session:
        names = _language_names(request, languages.rows(session))
        audience = _audience_from(form, session, set(names))
        previews = broadcast.preview(session, text_fr=form.get("text_fr", "")[:MAX_TEXT],
                                     text_bm=form.get("text_bm", "")[:MAX_TEXT], audience=audience, settings=settings)
    est = broadcast.estimate(previews)
    needs_approval = est.recipients > settings.broadcast_approval_threshold
    words = _estimate_lines(request, est, form.get("text_bm", ""), names)
    if needs_approval:
        words["total_text"] += " " + tr(request, "(needs a second staff member's approval)")
    return JSONResponse({
        "languages": [p.__dict__ for p in previews],
        "recipients": est.recipients,
        "segments": est.segments,
        "estimated_cost": est.cost,
        "needs_approval": needs_approval,
        **words,
    })


def _problems(request: Request, values: dict, choices: dict, settings, now: dt.datetime) -> tuple[dict, dt.datetime | None]:
    """What is wrong with a composed broadcast, field by field, and its time when one is given."""
    errors: dict[str, str] = {}
    if not values["text_fr"]:
        errors["text_fr"] = tr(request, "Write the French text: every producer can read it, and Bambara speakers get it when there is no Bambara text.")
    for name in ("text_fr", "text_bm"):
        if len(values[name]) > MAX_TEXT:
            errors[name] = tr(request, "At most {max} characters (now {n}).", max=MAX_TEXT, n=len(values[name]))
    if values["region"] and values["region"] not in choices["regions"]:
        errors["region"] = tr(request, "Unknown region: choose one from the list.")
    if values["market"] and values["market"] not in {m.code for m in choices["markets"]}:
        errors["market"] = tr(request, "Unknown market: choose one from the list.")
    if values["crop"] and values["crop"] not in {c.code for c in choices["crops"]}:
        errors["crop"] = tr(request, "Unknown crop: choose one from the list.")
    if values["language"] and values["language"] not in {row.code for row in choices["languages"]}:
        errors["language"] = tr(request, "Unknown language: choose one from the list.")
    scheduled = None
    if values["at"]:
        try:
            scheduled = dt.datetime.fromisoformat(values["at"]).replace(tzinfo=settings.tz)
        except ValueError:
            errors["at"] = tr(request, "Unreadable date and time: pick them in the calendar, or leave empty to send now.")
        else:
            if scheduled < now - dt.timedelta(minutes=5):
                errors["at"] = tr(request, "This time is past: leave it empty to send now.")
    return errors, scheduled


@router.post("/broadcasts", name="admin_broadcast_create")
async def broadcast_create(request: Request, staff: Editor, form: Form):
    settings = settings_of(request)
    values = {name: form.get(name, "").strip() for name in FIELDS}
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        choices = _choices(session)
        errors, scheduled = _problems(request, values, choices, settings, now)
        names = _language_names(request, choices["languages"])
        if not errors:
            audience = _audience_from(values, session, set(names))
            est = broadcast.estimate(broadcast.preview(session, text_fr=values["text_fr"], text_bm=values["text_bm"],
                                                       audience=audience, settings=settings))
            if est.recipients == 0:
                errors["audience"] = tr(request, "Nobody matches this audience, so nothing was sent. Choose a wider audience: all regions, any market, any crop, or fewer groups.")
    if errors:
        # Nothing created: the form comes back with what was typed and why, beside each field.
        return _page(request, values, errors, status_code=400)
    needs_approval = est.recipients > settings.broadcast_approval_threshold
    if not confirmed(form):
        return _confirm(request, values, est, scheduled, needs_approval, names)
    with db_of(request).unit_of_work() as session:
        created = broadcast.create_broadcast(session, text_fr=values["text_fr"], text_bm=values["text_bm"], audience=audience,
                                             now=now, scheduled_at=scheduled, created_by=staff.email)
        if needs_approval:
            created.status = "awaiting_approval"  # the worker expands only "pending" broadcasts
            session.add(created)
        auth.audit(session, staff, action="create", entity="broadcast", entity_id=created.id,
                   after={"text_fr": values["text_fr"], "audience": audience.to_dict(), "recipients": est.recipients,
                          "segments": est.segments, "estimated_cost": est.cost, "status": created.status}, now=now)
        broadcast_id = created.id
    if needs_approval:
        flash(request, "Broadcast #{id} to {n} producers waits for another staff member's approval.", id=str(broadcast_id), n=est.recipients)
    else:
        flash(request, "Broadcast #{id} to {n} producers is queued.", id=str(broadcast_id), n=est.recipients)
    return back_to(request, "admin_broadcast", broadcast_id=broadcast_id)


def _confirm(request: Request, values: dict, est: broadcast.Estimate, scheduled: dt.datetime | None, needs_approval: bool,
             names: dict[str, str]):
    """Before anything is sent: to how many, how many SMS segments, at what cost."""
    settings = settings_of(request)
    words = _estimate_lines(request, est, values["text_bm"], names)
    lines = [tn(request, est.recipients, "{n} producer will receive this message.", "{n} producers will receive this message.")]
    lines += words["lines"]
    lines.append(tn(request, est.segments, "{n} SMS segment in all.", "{n} SMS segments in all."))
    if scheduled:
        lines.append(tr(request, "Sent from {when}, outside the quiet hours.",
                        when=staff_text.date_time(scheduled, language_of(request), tz=settings.tz)))
    else:
        lines.append(tr(request, "Sent as soon as you confirm, outside the quiet hours."))
    if needs_approval:
        lines.append(tr(request, "More than {n} recipients: another staff member must approve it before it is sent.",
                        n=settings.broadcast_approval_threshold))
    back = path_for(request, "admin_broadcasts") + "?" + urlencode({k: v for k, v in values.items() if v})
    return confirm_page(
        request, title=tr(request, "Send this broadcast?"), lines=lines,
        cost=tr(request, "Estimated cost: about {cost} XOF", cost=round(est.cost)),
        warning=words["warning"], action=path_for(request, "admin_broadcast_create"), form=values,
        button=tn(request, est.recipients, "Send to {n} producer", "Send to {n} producers"), cancel=back,
    )


@router.get("/broadcasts/{broadcast_id}", name="admin_broadcast")
def broadcast_page(request: Request, broadcast_id: DbId, staff: Editor):
    settings = settings_of(request)
    with db_of(request).unit_of_work() as session:
        b = session.get(models.Broadcast, broadcast_id)
        if b is None:
            raise HTTPException(404, "No such broadcast.")
        stats = broadcast.stats(session, broadcast_id)
        # Until the worker writes the outbox rows, the counts are the planned ones, not zeros.
        planned = broadcast.planned(session, b, settings) if b.status in NOT_EXPANDED and not stats["total"] else None
    hold = ""
    if b.status == "awaiting_approval" and b.hold_reason:
        hold = tr(request, "{n} recipients at sending time, over the approval threshold of {max}: the audience grew after it was created.",
                  n=b.recipients, max=settings.broadcast_approval_threshold)
    return render(request, "broadcast.html", {
        "b": b, "stats": stats, "planned": planned, "title": _title(request, b), "kind": _kind(request, b.kind), "status": _status_word(request, b),
        "status_line": _status_line(request, b, stats, settings), "hold": hold,
        "bm_reads_french": b.kind == "custom" and not (b.text_bm or "").strip(),
    })


@router.post("/broadcasts/{broadcast_id}/{action}", name="admin_broadcast_action")
async def broadcast_action(request: Request, broadcast_id: DbId, action: str, staff: Editor, form: Form):
    if action not in ("approve", "cancel"):
        raise HTTPException(404)
    now = now_of(request)
    settings = settings_of(request)
    with db_of(request).unit_of_work() as session:
        b = session.get(models.Broadcast, broadcast_id)
        if b is None:
            raise HTTPException(404, "No such broadcast.")
        if action == "approve":
            if b.status != "awaiting_approval":
                raise HTTPException(409, "This broadcast does not wait for approval.")
            if b.created_by == staff.email:
                raise HTTPException(403, "Another staff member must approve your broadcast.")
            if not confirmed(form):
                # Approving sends: the approver sees the count and the cost first.
                est = broadcast.planned(session, b, settings)
                lines = [tr(request, "Broadcast #{id}, written by {who}: {text}", id=str(b.id), who=b.created_by or "-",
                            text=_title(request, b))]
                cost = ""
                if est is not None:
                    lines.append(tn(request, est.recipients, "{n} producer will receive this message.",
                                    "{n} producers will receive this message."))
                    lines.append(tn(request, est.segments, "{n} SMS segment in all.", "{n} SMS segments in all."))
                    cost = tr(request, "Estimated cost: about {cost} XOF", cost=round(est.cost))
                return confirm_page(request, title=tr(request, "Approve and send this broadcast?"), lines=lines, cost=cost,
                                    action=path_for(request, "admin_broadcast_action", broadcast_id=broadcast_id, action="approve"),
                                    form=form, button=tr(request, "Approve and send"),
                                    cancel=path_for(request, "admin_broadcast", broadcast_id=broadcast_id))
            b.status, b.approved_by, b.approved_at = "pending", staff.email, now.astimezone(UTC)
        else:
            if b.status not in ("awaiting_approval", "pending"):
                raise HTTPException(409, "Only a broadcast not yet sending can be cancelled.")
            b.status = "cancelled"
        session.add(b)
        auth.audit(session, staff, action=action, entity="broadcast", entity_id=broadcast_id, after={"status": b.status}, now=now)
    if action == "approve":
        flash(request, "Broadcast #{id} approved: it is queued for sending.", id=str(broadcast_id))
    else:
        flash(request, "Broadcast #{id} cancelled: nothing more will be sent.", id=str(broadcast_id))
    return back_to(request, "admin_broadcast", broadcast_id=broadcast_id)
