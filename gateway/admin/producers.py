"""Console pages: producers, their roles, and the producers CSV import."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import func, or_
from sqlmodel import col, select

from gateway.admin.core import (
    Editor,
    Form,
    back_to,
    db_of,
    flash,
    now_of,
    render,
    tn,
    tr,
)
from gateway.core.deps import DbId
from gateway.data import auth, languages, models
from gateway.data.producers import set_role

router = APIRouter(prefix="/admin", include_in_schema=False)

LIST_LIMIT = 100


# -- producers -------------------------------------------------------------------------------------


@router.get("/producers", name="admin_producers")
def producers_page(request: Request, staff: Editor):
    q = request.query_params.get("q", "").strip()
    role = request.query_params.get("role", "")
    role = role if role in models.PRODUCER_ROLES else ""
    p = models.Producer
    with db_of(request).unit_of_work() as session:
        query = select(p).order_by(col(p.id).desc()).limit(LIST_LIMIT)
        if q:
            like = f"%{q}%"
            query = query.where(or_(col(p.phone).like(like), col(p.name).ilike(like), col(p.village).ilike(like)))
        if role:
            query = query.where(p.role == role)
        rows = session.exec(query).all()
        total = session.exec(select(func.count()).select_from(p)).one()
    return render(request, "producers.html", {"rows": rows, "q": q, "role": role, "roles": models.PRODUCER_ROLES,
                                              "total": total, "limit": LIST_LIMIT})


@router.get("/producers/{producer_id}", name="admin_producer")
def producer_page(request: Request, producer_id: DbId, staff: Editor):
    with db_of(request).unit_of_work() as session:
        producer = session.get(models.Producer, producer_id)
        if producer is None:
            raise HTTPException(404, "No such producer.")
        s = models.Subscription
        subs = session.exec(
            select(models.Crop.name_fr, models.Market.name, s.threshold_percent)
            .select_from(s)
            .join(models.Crop, models.Crop.id == s.crop_id)
            .join(models.Market, models.Market.id == s.market_id)
            .where(s.producer_id == producer_id)
        ).all()
        messages = session.exec(select(models.SmsMessage).where(models.SmsMessage.phone == producer.phone)
                                .order_by(col(models.SmsMessage.id).desc()).limit(50)).all()
        inbound = session.exec(select(models.SmsInbound).where(models.SmsInbound.phone == producer.phone)
                               .order_by(col(models.SmsInbound.id).desc()).limit(50)).all()
        offers = session.exec(select(models.Offer).where(models.Offer.producer_id == producer_id)).all()
    return render(request, "producer.html", {"p": producer, "subs": subs, "messages": messages, "inbound": inbound,
                                             "offers": offers, "roles": models.PRODUCER_ROLES,
                                             "channels": models.ALERT_CHANNELS})


@router.post("/producers/{producer_id}/role", name="admin_producer_role")
def producer_role(request: Request, producer_id: DbId, staff: Editor, form: Form):
    """Make or unmake an enumerator (who may report market prices by SMS); audited."""
    role = form.get("role", "")
    if role not in models.PRODUCER_ROLES:
        raise HTTPException(400, "The role is producer or enumerator.")
    with db_of(request).unit_of_work() as session:
        producer = session.get(models.Producer, producer_id)
        if producer is None:
            raise HTTPException(404, "No such producer.")
        changed = set_role(session, producer, role, staff=staff, now=now_of(request), via="console")
        phone = producer.phone
    if role == "enumerator":
        flash(request, "{phone} is now an enumerator." if changed else "{phone} is already an enumerator.", phone=phone)
    else:
        flash(request, "{phone} is now a producer." if changed else "{phone} is already a producer.", phone=phone)
    return back_to(request, "admin_producer", producer_id=producer_id)


@router.post("/producers/{producer_id}/alert-channel", name="admin_producer_alert_channel")
def producer_alert_channel(request: Request, producer_id: DbId, staff: Editor, form: Form):
    """How the producer's price alerts reach them: SMS, a call, or both; audited."""
    channel = form.get("alert_channel", "")
    if channel not in models.ALERT_CHANNELS:
        raise HTTPException(400, "Alerts go by SMS, call or both.")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        producer = session.get(models.Producer, producer_id)
        if producer is None:
            raise HTTPException(404, "No such producer.")
        before, phone = producer.alert_channel, producer.phone
        if before != channel:
            auth.audit(session, staff, action="alert_channel", entity="producer", entity_id=phone,
                       before={"alert_channel": before}, after={"alert_channel": channel, "via": "console"}, now=now)
            producer.alert_channel = channel
            producer.updated_at = now.astimezone(dt.timezone.utc)
            session.add(producer)
    flash(request, "Alerts for {phone}: saved." if before != channel else "Nothing changed.", phone=phone)
    return back_to(request, "admin_producer", producer_id=producer_id)


@router.post("/producers/import", name="admin_producers_import")
async def producers_import(request: Request, staff: Editor):
    from gateway.actions import imports

    form = await request.form()
    if not auth.csrf_ok(request.session, form.get("csrf_token")):
        raise HTTPException(403, "The form expired or did not come from this site; reload it.")
    upload = form.get("file")
    if upload is None or not hasattr(upload, "read"):
        flash(request, "Choose a CSV file.", "error")
        return back_to(request, "admin_producers")
    raw = await upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        flash(request, 'The file is not UTF-8: save it as "CSV UTF-8".', "error")
        return back_to(request, "admin_producers")
    now = now_of(request)
    with db_of(request).unit_of_work() as session:
        crops = session.exec(select(models.Crop)).all()
        markets = session.exec(select(models.Market)).all()
        try:
            rows, errors = imports.parse_producers_csv(text, crops=crops, markets=markets,
                                                       languages=languages.rows(session))
        except imports.FileFormatError as exc:
            flash(request, "The file cannot be read: {reason}", "error", reason=str(exc))
            return back_to(request, "admin_producers")
        if errors and form.get("skip_errors") != "on":
            return render(request, "import_errors.html", {"errors": errors, "what": "producers"}, status_code=400)
        name = getattr(upload, "filename", "") or ""
        report = imports.import_producers(session, rows, now=now, staff=staff, source=f"import:{name}"[:64])
        auth.audit(session, staff, action="import", entity="producers", entity_id=name,
                   after={"rows": report.rows, "skipped_lines": len({e.line for e in errors}),
                          "roles_changed": report.roles_changed}, now=now)
    changed, details = import_summary(request, report, len({e.line for e in errors}))
    if changed:
        flash(request, "Import done. {details}.", details=details)
    else:
        flash(request, "Nothing changed. {details}.", details=details)
    return back_to(request, "admin_producers")


def import_summary(request: Request, report, skipped: int) -> tuple[bool, str]:
    """What an import did, counted: a file read again says that nothing changed rather than
    "4 producers imported (0 new, 0 updated)" (issue 15)."""
    counts = tr(request, "{rows}: {new}, {updated}, {same}", rows=tn(request, report.rows, "{n} row read", "{n} rows read"),
                new=tn(request, report.created, "{n} new", "{n} new"),
                updated=tn(request, report.updated, "{n} updated", "{n} updated"),
                same=tn(request, report.unchanged, "{n} already up to date", "{n} already up to date"))
    extra = []
    if report.subscriptions_added:
        extra.append(tn(request, report.subscriptions_added, "{n} subscription added", "{n} subscriptions added"))
    if report.roles_changed:
        extra.append(tn(request, report.roles_changed, "{n} role changed", "{n} roles changed"))
    if skipped:
        extra.append(tn(request, skipped, "{n} row skipped", "{n} rows skipped"))
    details = counts + "".join("; " + e for e in extra)
    return bool(report.created or report.updated or report.subscriptions_added or report.roles_changed), details
