"""Console page: the dashboard (usage, deliveries, reply ceilings, what protects the service)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from sqlalchemy import func, or_
from sqlmodel import col, select

from gateway import models, replies
from gateway.admin.charts import line_chart
from gateway.admin.core import (
    UTC,
    AnyStaff,
    db_of,
    int_param,
    now_of,
    render,
    settings_of,
)

router = APIRouter(prefix="/admin", include_in_schema=False)


# -- dashboard -------------------------------------------------------------------------------------


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
    networks = [n.strip() for n in settings.webhook_allow_networks.split(",") if n.strip()]
    guard = " and ".join(filter(None, ["secret token" if secret else "", "networks " + ", ".join(networks) if networks else ""]))
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
        "refused": [(CEILING_LABELS[c], n) for c, n in today.refused.items()],
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
        for label, days in (("today", 1), ("7 days", 7), ("30 days", 30)):
            since = now - dt.timedelta(days=days)
            n, callers = session.exec(
                select(func.count(), func.count(func.distinct(s.phone))).where(s.started_at >= since, not_sim)
            ).one()
            usage.append((label, n, callers))
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
        crop_id = int_param(request.query_params.get("crop"), "crop", crops[0].id if crops else 0)
        market_id = int_param(request.query_params.get("market"), "market", markets[0].id if markets else 0)
        series = session.exec(
            select(obs.observed_on, obs.price).where(
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
    return render(
        request,
        "dashboard.html",
        {
            "usage": usage,
            "sections": sorted(((SECTION_LABELS.get(k, k), n) for k, n in sections), key=lambda x: -x[1]),
            "sms_counts": sms_counts,
            "sms_cost": sms_cost,
            "sms_provider": request.app.state.sender.name,
            "sms_fake": settings.sms_uses_fake or settings.orange_uses_fake,
            "stale": stale,
            "posture": _posture(request, settings, reply_today),
            "crops": crops,
            "markets": markets,
            "crop_id": crop_id,
            "market_id": market_id,
            "chart": line_chart([(d, p) for d, p in series], unit="F"),
        },
    )
