"""Console pages for market intelligence: trend and forecast per crop and market, with the
backtest error, computed by the same function (menus.trends.report) that answers farmers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from sqlmodel import select

from gateway.admin.charts import forecast_chart
from gateway.admin.core import PriceStaff, db_of, language_of, now_of, render, tn, tr
from gateway.data import models
from gateway.data.dataview import SqlDataView
from menus import trends
from messages import staff as staff_text

router = APIRouter(prefix="/admin")

CHART_YEARS = 2


def method_names(request: Request) -> dict[str, tuple[str, str]]:
    """Each forecasting method: (its name, what it does), in the reader's language."""
    return {
        "last": (tr(request, "last price"), tr(request, "last price carried forward (the yardstick)")),
        "trend": (tr(request, "trend"), tr(request, "recent slope (8 weeks or 6 months), damped")),
        "seasonal": (tr(request, "seasonal"), tr(request, "same weeks or months in past years, applied to today's level")),
        "seasonal_trend": (tr(request, "seasonal and trend"),
                           tr(request, "past years' season plus half of this year's difference in slope")),
    }


@dataclass
class MarketOutlook:
    market: models.Market
    report: trends.Report
    request: Request

    @property
    def series(self) -> trends.Series:
        return self.report.series

    @property
    def trend(self) -> trends.Trend | None:
        return self.report.trend

    @property
    def outlook(self) -> trends.Outlook:
        return self.report.outlook

    @property
    def scores(self) -> dict:
        return self.report.scores or {}

    @property
    def weekly(self) -> bool:
        return self.series.cadence == trends.WEEKLY

    def periods(self, n: int) -> str:
        """"3 months", "1 week": counts in the series' own cadence, never weeks for months."""
        if self.weekly:
            return tn(self.request, n, "{n} week", "{n} weeks")
        return tn(self.request, n, "{n} month", "{n} months")

    def period_word(self) -> str:
        """"weeks" or "months", for "the same weeks a year earlier"."""
        return tr(self.request, "weeks") if self.weekly else tr(self.request, "months")


def _int_param(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "")
    if not raw.isdigit() or len(raw) > 9:
        raise HTTPException(404, "Choose a crop and a market.")
    return int(raw)


def _outlook(request: Request, view: SqlDataView, crop_id: int, market: models.Market, today: dt.date,
             all_horizons: bool) -> MarketOutlook:
    # The whole history, as USSD and SMS read it: a price five years old is "too old", not absent.
    rows = view.price_history(crop_id, market.id, trends.HISTORY_START)
    return MarketOutlook(market, trends.report(rows, today, all_horizons=all_horizons), request)


@router.get("/trends", name="admin_trends")
def trends_overview(request: Request, staff: PriceStaff):
    """Every market of one crop: what farmers are told (direction, year change, forecasts or the
    last price's usual range, or why not), from the same function as USSD and SMS."""
    today = now_of(request).date()
    with db_of(request).unit_of_work() as session:
        crops = session.exec(select(models.Crop).order_by(models.Crop.name_fr)).all()
        raw = request.query_params.get("crop", "")
        crop = session.get(models.Crop, int(raw)) if raw.isdigit() and len(raw) <= 9 else (crops[0] if crops else None)
        if crop is None:
            raise HTTPException(404, "No such crop.")
        markets = session.exec(select(models.Market).order_by(models.Market.region, models.Market.name)).all()
        view = SqlDataView(session)
        rows = [o for o in (_outlook(request, view, crop.id, m, today, False) for m in markets) if len(o.series)]
    return render(request, "trends.html", {"crops": crops, "crop": crop, "rows": rows, "methods": method_names(request), "cadences": trends.CADENCES})


@router.get("/trends/detail", name="admin_trend")
def trend_detail(request: Request, staff: PriceStaff):
    today = now_of(request).date()
    crop_id, market_id = _int_param(request, "crop"), _int_param(request, "market")
    with db_of(request).unit_of_work() as session:
        crop, market = session.get(models.Crop, crop_id), session.get(models.Market, market_id)
        if crop is None or market is None:
            raise HTTPException(404, "Choose a crop and a market.")
        o = _outlook(request, SqlDataView(session), crop.id, market, today, True)
    series = o.series
    recent = [p for p in series.ordered if p > (series.last or 0) - CHART_YEARS * series.spec.year]
    history = [(series.date(p), round(series.price(p))) for p in recent]
    ahead = [(f.on, f.price, f.low, f.high) for f in o.outlook.forecasts]
    ahead += [(u.on, round(series.price(series.last)), u.low, u.high) for u in o.outlook.usual]
    horizons = series.spec.horizons
    table = [(method, [o.scores.get((method, h)) for h in horizons]) for method in trends.METHODS]
    return render(
        request,
        "trend.html",
        {
            "crop": crop, "market": market, "o": o, "table": table, "horizons": horizons, "spec": series.spec,
            "chart": forecast_chart(
                history, sorted(ahead), lang=language_of(request),
                axis_label=tr(request, "FCFA per {unit}", unit=staff_text.word(language_of(request), "unit", series.unit)),
                empty_text=tr(request, "Not enough published prices for a chart yet."),
                label=tr(request, "Price history and forecast")), "methods": method_names(request),
        },
    )  # fmt: skip
