"""Console: trend and forecast pages over the demo history (three years of weekly prices)."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from gateway import models

from tests.test_admin import app, browser, clock, staff  # noqa: F401  (fixtures)

pytestmark = pytest.mark.db


def test_overview_lists_markets_with_direction_forecast_and_error(browser):
    page = browser("reporter").get("/admin/trends?crop=2")
    assert page.status_code == 200
    html = page.text
    assert "Trends and forecasts: Oignon" in html
    table = html[html.index('id="trends"') :]
    assert "Sikasso" in table and "Mopti" in table
    # The demo's Diré reports stopped weeks ago: said, not forecast.
    assert "last price too old for a forecast" in table
    errors = [int(e) for e in re.findall(r"(\d+)% \(n=\d+\)", table)]
    assert errors and all(0 < e < 50 for e in errors)
    assert "How the forecasts are made" in html


def test_detail_shows_chart_forecast_and_backtest(browser):
    html = browser("editor").get("/admin/trends/detail?crop=1&market=1").text
    assert "<svg" in html and "price history and forecast" in html
    forecast = html[html.index('id="forecast"') : html.index('id="backtest"')]
    assert forecast.count("<tr>") == 5  # header + horizons 1–4
    backtest = html[html.index('id="backtest"') :]
    for method in ("last", "trend", "seasonal", "seasonal_trend"):
        assert f"<b>{method}</b>" in backtest
    assert re.search(r"\d+\.\d% \(n=\d+\)", backtest)


@pytest.mark.parametrize(
    "path, status",
    [
        ("/admin/trends/detail?crop=1", 404),
        ("/admin/trends/detail?crop=abc&market=1", 404),
        ("/admin/trends/detail?crop=999&market=1", 404),
        ("/admin/trends/detail?crop=1&market=99999999999999", 404),
        ("/admin/trends?crop=999", 404),
    ],
)
def test_bad_parameters_are_a_clear_404(browser, path, status):
    response = browser("editor").get(path)
    assert response.status_code == status
    assert "Traceback" not in response.text


def test_stale_market_says_why_there_is_no_forecast(browser, db):
    # Diré's demo reports stopped four weeks before today.
    with db.unit_of_work() as session:
        market_id = session.exec(select(models.Market.id).where(models.Market.name == "Diré")).one()
    html = browser("editor").get(f"/admin/trends/detail?crop=2&market={market_id}").text
    assert "No forecast: the last price is more than 3 weeks old." in html
