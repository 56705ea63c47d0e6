"""Console pages for market intelligence: trend and forecast per crop and market, with the
backtest error, computed by the same code (menus.trends) that answers farmers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from sqlmodel import select

from gateway import models
from gateway.admin.charts import forecast_chart
from gateway.admin.core import PriceStaff, db_of, now_of, render
from gateway.dataview import SqlDataView
from menus import trends

router = APIRouter(prefix="/admin")

HISTORY_DAYS = 7 * (trends.YEAR_WEEKS * 3 + 8)
CHART_WEEKS = 104
METHOD_TEXT = {
    "last": "last price kept (no change)",
    "trend": "slope of the last 8 weeks, damped",
    "seasonal": "same weeks in past years, applied to today's level",
    "seasonal_trend": "past years' season plus half of this year's difference in slope",
}


@dataclass
class MarketOutlook:
    market: models.Market
    series: trends.Series
    trend: trends.Trend | None
    outlook: trends.Outlook
    scores: dict


def _int_param(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "")
    if not raw.isdigit() or len(raw) > 9:
        raise HTTPException(404, "Choose a crop and a market.")
    return int(raw)


def _outlook(view: SqlDataView, crop_id: int, market: models.Market, today: dt.date) -> MarketOutlook:
    series = trends.weekly_series(view.price_history(crop_id, market.id, today - dt.timedelta(days=HISTORY_DAYS)))
    scores = trends.backtest(series, max_origins=None)
    outlook = trends.forecast(series, today, horizons=trends.HORIZONS, scores=scores)
    return MarketOutlook(market, series, trends.trend(series), outlook, scores)


@router.get("/trends", name="admin_trends")
def trends_overview(request: Request, staff: PriceStaff):
    """Every market of one crop: direction, year change, the 2- and 4-week forecasts, the error."""
    today = now_of(request).date()
    with db_of(request).unit_of_work() as session:
        crops = session.exec(select(models.Crop).order_by(models.Crop.name_fr)).all()
        raw = request.query_params.get("crop", "")
        crop = session.get(models.Crop, int(raw)) if raw.isdigit() and len(raw) <= 9 else (crops[0] if crops else None)
        if crop is None:
            raise HTTPException(404, "No such crop.")
        markets = session.exec(select(models.Market).order_by(models.Market.region, models.Market.name)).all()
        view = SqlDataView(session)
        rows = [o for o in (_outlook(view, crop.id, m, today) for m in markets) if len(o.series)]
    return render(request, "trends.html", {"crops": crops, "crop": crop, "rows": rows, "methods": METHOD_TEXT, "min_samples": trends.MIN_SAMPLES})


@router.get("/trends/detail", name="admin_trend")
def trend_detail(request: Request, staff: PriceStaff):
    today = now_of(request).date()
    crop_id, market_id = _int_param(request, "crop"), _int_param(request, "market")
    with db_of(request).unit_of_work() as session:
        crop, market = session.get(models.Crop, crop_id), session.get(models.Market, market_id)
        if crop is None or market is None:
            raise HTTPException(404, "Choose a crop and a market.")
        o = _outlook(SqlDataView(session), crop.id, market, today)
    recent = [w for w in o.series.ordered if w > (max(o.series.weeks) if o.series.weeks else 0) - CHART_WEEKS]
    history = [(trends.week_end(w), round(o.series.price(w))) for w in recent]
    ahead = [(f.week_ending, f.price, f.low, f.high) for f in o.outlook.forecasts]
    table = [
        (method, [o.scores.get((method, h)) for h in trends.HORIZONS]) for method in trends.METHODS
    ]
    return render(
        request,
        "trend.html",
        {
            "crop": crop, "market": market, "o": o, "table": table, "horizons": trends.HORIZONS,
            "chart": forecast_chart(history, ahead, unit=f"F/{o.series.unit}"), "methods": METHOD_TEXT,
            "min_samples": trends.MIN_SAMPLES, "max_age": trends.MAX_AGE_WEEKS,
        },
    )  # fmt: skip
