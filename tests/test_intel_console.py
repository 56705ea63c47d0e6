"""Console: trend and forecast pages over the demo history (three years of weekly prices)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlmodel import select

from gateway.data import models
from tests.conftest import TODAY

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
    # Shown forecasts beat the last price on the same past origins: the console says by how much.
    pairs = [(int(a), int(b)) for a, b in re.findall(r"(\d+)% \((\d+)%, n=\d+\)", table)]
    assert pairs and all(0 <= a <= b < 50 for a, b in pairs)
    assert "How the forecasts are made" in html


def test_detail_shows_chart_forecast_and_backtest(browser):
    html = browser("editor").get("/admin/trends/detail?crop=1&market=1").text
    assert "<svg" in html and "Price history and forecast" in html
    forecast = html[html.index('id="forecast"') : html.index('id="backtest"')]
    assert forecast.count("<tr>") == 5  # header + horizons 1–4
    assert "52 weekly prices" not in html and re.search(r"\d+ weekly prices", html)
    backtest = html[html.index('id="backtest"') :]
    for method in ("last price", "trend", "seasonal", "seasonal and trend"):  # named, not coded (issue 15)
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
    assert "No forecast: the last price (" in html and "is 4 weeks old; forecasts need one within 3 weeks." in html


# A real monthly series (WFP, carrots at Abomey, F/kg retail, 2019-07 to 2021-06), moved 65 months
# later so that its last price falls in November 2026, as if imported this month.
CARROTS_ABOMEY = [
    ("2019-07", 1200), ("2019-08", 1060), ("2019-09", 1038), ("2019-10", 1000), ("2020-02", 1167),
    ("2020-03", 1138), ("2020-04", 1125), ("2020-05", 1100), ("2020-06", 1062), ("2020-07", 1016),
    ("2020-08", 1000), ("2020-09", 933), ("2020-10", 1000), ("2020-11", 1100), ("2020-12", 1181),
    ("2021-01", 1162), ("2021-02", 1175), ("2021-03", 1266), ("2021-04", 600), ("2021-05", 1425),
    ("2021-06", 1450),
]  # fmt: skip


def monthly(series, shift_months):
    out = []
    for month, price in series:
        year, m = map(int, month.split("-"))
        index = year * 12 + m - 1 + shift_months
        out.append((dt.date(index // 12, index % 12 + 1, 15), price))
    return out


def add_market(db, code, name, prices):
    """A market of its own with tomato prices on the given days (kg, retail, as WFP's)."""
    with db.unit_of_work() as session:
        market = models.Market(code=code, name=name, region="Sikasso")
        session.add(market)
        session.flush()
        for day, price in prices:
            session.add(models.PriceObservation(crop_id=1, market_id=market.id, observed_on=day, price=price,
                                                unit="kg", kind="retail", source="import:test"))  # fmt: skip
        return market.id


def test_console_counts_monthly_prices_in_months(browser, db):
    """Finding: the console called 21 monthly prices "21 weeks" and found no history a year back."""
    market_id = add_market(db, "abomey", "Abomey", monthly(CARROTS_ABOMEY, 65))
    html = browser("editor").get(f"/admin/trends/detail?crop=1&market={market_id}").text
    history = html[html.index('id="history"') :][:300]
    assert "21 monthly prices" in history and "week" not in history
    direction = html[html.index('id="direction"') :][:300]
    assert re.search(r"(up|down|stable), [+-]?\d+% over [123] months?", direction), direction
    year = html[html.index('id="year"') :][:300]
    assert re.search(r"[+-]?\d+% \(same months a year earlier\)", year), year
    assert "weeks ahead" not in html and "1 month ahead" in html


def test_console_says_a_five_year_old_price_is_too_old(browser, db):
    """Finding: a series whose last price was five years old was said to have "fewer than 8 past
    forecasts" (its rows fell outside the window read), not that its last price was too old."""
    market_id = add_market(db, "oldmarket", "Vieux marché", monthly(CARROTS_ABOMEY, 0))
    html = browser("editor").get(f"/admin/trends/detail?crop=1&market={market_id}").text
    said = html[html.index('id="no-forecast"') :][:300]
    assert "No forecast: the last price (15/06/2021) is 65 months old" in said
    assert "fewer than" not in html and "too short" not in said
    overview = browser("editor").get("/admin/trends?crop=1").text
    row = overview[overview.index("Vieux marché") :][:1500]
    assert "last price too old for a forecast (65 months)" in row


def test_console_sms_and_ussd_give_the_same_answer(browser, db):
    """One function answers all three: the direction and the outlook on a real monthly series."""
    from gateway.data.dataview import SqlDataView
    from menus import trends
    from tests.test_menus import hop

    market_id = add_market(db, "abomey", "Abomey", monthly(CARROTS_ABOMEY, 65))
    with db.unit_of_work() as session:
        view = SqlDataView(session)
        expected = trends.report(view.price_history(1, market_id, trends.HISTORY_START), TODAY)
        # The USSD menus on the same database: tomato, then Abomey in the market list, then trend.
        pages, path = [], "1*1"
        listed = hop(path, view=view).text
        while "Abomey" not in listed and "98." in listed:
            path += "*98"
            listed = hop(path, view=view).text
        path += "*" + re.search(r"(\d+)\. ?Abomey", listed).group(1) + "*2"
        for _ in range(5):
            pages.append(hop(path, view=view).text)
            if "98." not in pages[-1]:
                break
            path += "*98"
    ussd = "\n".join(pages)
    assert expected.trend is not None
    assert f"{expected.trend.change_percent:+d}% en {expected.trend.span} mois".replace("+0%", "0%") in ussd, ussd
    assert expected.outlook.reason == trends.NO_SKILL  # real series: nothing beat the last price
    assert "Pas de prevision fiable" in ussd
    change = f"{expected.trend.change_percent:+d}%".replace("+0%", "0%")
    html = browser("editor").get(f"/admin/trends/detail?crop=1&market={market_id}").text
    assert f"{expected.trend.change_percent:+d}% over {expected.trend.span} month" in html
    sms = browser("editor").post("/admin/simulators/sms", {"phone": "+22370000042", "text": "TENDANCE TOMATE ABOMEY"}).text
    assert f"{change} en {expected.trend.span} mois" in sms, sms
    assert "Pas de prévision fiable" in sms and "No reliable forecast" in html
