"""Console page: the dashboard (usage, deliveries, reply ceilings, what protects the service)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from fastapi import APIRouter, Request
from sqlalchemy import func, or_
from sqlmodel import col, select

from gateway.admin.charts import line_chart
from gateway.admin.studio import STATUSES, coverage, language_names
from gateway.admin.core import (
    UTC,
    AnyStaff,
    db_of,
    int_param,
    language_of,
    now_of,
    render,
    settings_of,
    tr,
)
from gateway.data import models
from gateway.outbound import replies
from messages import staff as staff_text

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- dashboard -------------------------------------------------------------------------------------

# English labels, translated when shown (their French is in the staff catalog: accounts.toml).
SECTION_LABELS = {
    "price_crops": "Prices",
    "demands": "Buyer demand",
    "tip_categories": "Tips",
    "alerts": "SMS alerts",
    "profile": "Profile",
    "language": "Language",
}


CEILING_LABELS = {
    replies.COUNTRY: "Number outside the allowed countries",
    replies.PER_NUMBER: "Per-number daily cap",
    replies.DAILY_BUDGET: "Daily reply budget",
    replies.NEW_NUMBERS: "Hourly ceiling on new numbers",
}


def _posture(request: Request, settings, today: replies.Today) -> dict:
    """What protects the service from the outside, and whether a reply ceiling was hit today."""
    secret = bool(settings.webhook_secret and settings.webhook_secret.get_secret_value())
    networks = ", ".join(n.strip() for n in settings.webhook_allow_networks.split(",") if n.strip())
    if secret and networks:
        guard = tr(request, "secret token and networks {networks}", networks=networks)
    elif secret:
        guard = tr(request, "secret token")
    elif networks:
        guard = tr(request, "networks {networks}", networks=networks)
    else:
        guard = ""
    return {
        "dev_mode": settings.dev_mode,
        "guard": guard,
        "fakes": list(getattr(request.app.state, "fakes_mounted", [])),
        "countries": sorted(settings.allowed_regions),
        "replies": today.replies,
        "daily_reply_budget": settings.daily_reply_budget,
        "new_this_hour": today.new_number_replies_this_hour,
        "new_per_hour": settings.new_number_replies_per_hour,
        "per_number": settings.sms_replies_per_day,
        "bulk_sms": settings.daily_sms_budget,
        "bulk_segments": settings.daily_segment_budget,
        "refused": [(tr(request, CEILING_LABELS[c]), n) for c, n in today.refused.items()],
        "hit": any(today.refused.values()),
    }


@router.get("/", name="admin_dashboard")
def dashboard(request: Request, staff: AnyStaff):
    now = now_of(request).astimezone(UTC)
    settings = settings_of(request)
    s, m = models.UssdSession, models.SmsMessage
    not_sim = ~col(s.session_id).startswith("sim-")  # staff trying the simulator are not farmers
    with db_of(request).unit_of_work() as session:
        usage = []
        for days in (1, 7, 30):
            since = now - dt.timedelta(days=days)
            n, callers = session.exec(
                select(func.count(), func.count(func.distinct(s.phone))).where(s.started_at >= since, not_sim)
            ).one()
            usage.append((days, n, callers))
        # Said beside the counts: staff who tried five simulator sessions wondered why 1 showed.
        simulated = session.exec(
            select(func.count()).where(s.started_at >= now - dt.timedelta(days=30), ~not_sim)
        ).one()
        sections = session.exec(
            select(s.section, func.count()).where(s.started_at >= now - dt.timedelta(days=30), s.section != "", not_sim).group_by(s.section)
        ).all()
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        sms_rows = session.exec(
            select(m.status, func.count(), func.coalesce(func.sum(m.cost_amount), 0)).where(m.created_at >= month).group_by(m.status)
        ).all()
        obs, mk = models.PriceObservation, models.Market
        latest = session.exec(
            select(mk.name, func.max(obs.observed_on)).join(obs, obs.market_id == mk.id, isouter=True)
            .where(or_(col(obs.status) == "published", col(obs.id).is_(None))).group_by(mk.name)
        ).all()
        crops = session.exec(select(models.Crop).order_by(models.Crop.sort_order)).all()
        markets = session.exec(select(models.Market).order_by(models.Market.name)).all()
        reply_today = replies.today(session, now, settings.tz)
        voice = coverage(request, session)
        names = language_names(request, session)
        crop_id = int_param(request.query_params.get("crop"), "crop", crops[0].id if crops else 0)
        market_id = int_param(request.query_params.get("market"), "market", markets[0].id if markets else 0)
        series = session.exec(
            select(obs.observed_on, obs.price, obs.unit, obs.kind).where(
                obs.crop_id == crop_id, obs.market_id == market_id, obs.status == "published",
                obs.observed_on >= now.date() - dt.timedelta(days=182),
            ).order_by(obs.observed_on)
        ).all()
    today = now_of(request).date()
    stale = [
        (name, day, (today - day).days if day else None)
        for name, day in sorted(latest)
        if day is None or (today - day).days > settings.price_stale_days
    ]
    sms_counts = {status: n for status, n, _ in sms_rows}
    sms_cost = sum(float(c) for *_, c in sms_rows)
    points, unit = _one_series(series)
    lang = language_of(request)
    per_unit = tr(request, "FCFA per {unit}", unit=staff_text.word(lang, "unit", unit)) if unit else "FCFA"
    return render(
        request,
        "dashboard.html",
        {
            "usage": usage,
            "simulated": simulated,
            "sections": sorted(((tr(request, SECTION_LABELS[k]) if k in SECTION_LABELS else k, n) for k, n in sections),
                               key=lambda x: -x[1]),
            "sms_counts": sms_counts,
            "sms_cost": sms_cost,
            "sms_provider": request.app.state.sender.name,
            "sms_fake": settings.sms_uses_fake or settings.orange_uses_fake,
            "stale": stale,
            "posture": _posture(request, settings, reply_today),
            "voice": voice,
            "language_names": names,
            "voice_statuses": STATUSES,
            "crops": crops,
            "markets": markets,
            "crop_id": crop_id,
            "market_id": market_id,
            "chart": line_chart(
                points, unit=per_unit, lang=lang, axis_label=per_unit,
                empty_text=tr(request, "Not enough published prices for a chart of this crop at this market yet: choose another pair, or enter prices."),
                label=tr(request, "Price over six months"),
            ),
        },
    )


def _one_series(rows) -> tuple[list[tuple[dt.date, int]], str]:
    """One line means one unit and one kind of price: wholesale when there is any, in the unit
    most used (a basket and a kilo on one line would read as a price jump)."""
    if not rows:
        return [], ""
    wholesale = [r for r in rows if r[3] == "wholesale"] or list(rows)
    units = Counter(r[2] for r in wholesale)
    unit = units.most_common(1)[0][0]
    return [(day, price) for day, price, u, _kind in wholesale if u == unit], unit
