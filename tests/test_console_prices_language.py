"""Issue 15 on the price pages (grid, publishing, history, corrections, correction SMS, import,
trends): French by default, forgiving forms, confirmations that state count and cost, tables as
cards on a phone, empty states that say what to do."""

from __future__ import annotations

import datetime as dt
import html as html_text
import re

import pytest
from sqlmodel import func, select

from gateway.outbound import corrections
from gateway.data import models
from gateway.app import create_app
from messages import default_catalog
from messages import staff as staff_text
from tests.conftest import NOW
from tests.test_admin import Browser, Clock, app, browser, clock, staff  # noqa: F401 (fixtures)
from tests.test_corrections import SIKASSO, TODAY, TOMATO, YESTERDAY, add_price, alerted  # noqa: F401 (alerted: a fixture)

pytestmark = pytest.mark.db

NNBSP = "\u202f"


@pytest.fixture
def french(settings, staff):  # noqa: F811
    """A browser signed in as an editor on a console that speaks French (the default)."""
    french_app = create_app(settings.model_copy(update={"console_language": "fr"}), clock=Clock())
    b = Browser(french_app)
    assert b.login("editor@sugu.test").status_code == 303
    yield b
    b.close()


def console_prices(db) -> int:
    with db.unit_of_work() as session:
        obs = models.PriceObservation
        return session.exec(select(func.count()).select_from(obs).where(obs.source.startswith("console"))).one()


def subscribe(db, n: int, crops=(TOMATO,)) -> None:
    with db.unit_of_work() as session:
        for i in range(n):
            p = models.Producer(phone=f"+2237000{i:04d}", language="fr")
            session.add(p)
            session.flush()
            for crop in crops:
                session.add(models.Subscription(producer_id=p.id, crop_id=crop, market_id=SIKASSO))


# -- forgiving forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, reason",
    [
        pytest.param("abc", "is not a price in FCFA", id="letters"),
        pytest.param("0", "is not a price in FCFA", id="zero"),
        pytest.param("-500", "is not a price in FCFA", id="negative"),
        pytest.param("12,5", "is not a price in FCFA", id="decimal"),
    ],
)
def test_issue15_prices_grid_keeps_typed_values_and_marks_bad_cell(browser, db, bad, reason):  # noqa: F811
    """Finding: one bad cell blanked every cell of the grid. Now the grid comes back with every
    value typed, the reason beside the bad cell, and nothing published."""
    b = browser("reporter")
    form = {"market": str(SIKASSO), "date": YESTERDAY.isoformat(), "price_1": "15 500", "price_2": bad, "price_3": "900",
            "unit_3": "kg", "kind_3": "retail"}
    response = b.post("/admin/prices", form)
    assert response.status_code == 400
    page = response.text
    assert 'value="15 500"' in page and f'value="{bad}"' in page and 'value="900"' in page
    # The choices made in the other cells are kept too.
    row3 = page[page.index('id="price_3"') :].split("</tr>")[0]
    assert '<option value="kg" selected>' in row3 and '<option value="retail" selected>' in row3
    # The reason sits beside the bad cell, and only there.
    cell = page[page.index('id="price_2"') :].split("</td>")[0]
    assert 'aria-invalid="true"' in cell and 'id="price_2-error"' in cell and reason in cell
    assert page.count('class="field-error"') == 1
    assert "1 entry to fix: nothing was published" in page
    assert console_prices(db) == 0


def test_issue15_prices_grid_future_date_keeps_values(browser, db):  # noqa: F811
    b = browser("reporter")
    response = b.post("/admin/prices", {"market": str(SIKASSO), "date": (TODAY + dt.timedelta(days=1)).isoformat(), "price_1": "15500"})
    assert response.status_code == 400 and "cannot be dated in the future" in response.text and 'value="15500"' in response.text
    assert console_prices(db) == 0


@pytest.mark.parametrize(
    "data, field, reason",
    [
        pytest.param({"price": "abc", "reason": "typo"}, "price", "is not a price in FCFA", id="bad-price"),
        pytest.param({"price": "13000", "reason": " "}, "reason", "reason is required", id="no-reason"),
        pytest.param({"price": "1300", "reason": "typo"}, "price", "same as the published", id="same-value"),
    ],
)
def test_issue15_price_correction_keeps_typed_values_and_marks_the_field(browser, db, data, field, reason):  # noqa: F811
    typo = add_price(db, 1300)
    response = browser("editor").post(f"/admin/prices/{typo}/correct", data)
    assert response.status_code == 422
    page = response.text
    assert f'value="{data["price"]}"' in page and f'value="{data["reason"]}"' in page
    assert reason in page[page.index(f'id="{field}"') :].split("</div>")[0]
    with db.unit_of_work() as session:
        assert session.get(models.PriceObservation, typo).status == "published"


# -- confirmations with count and cost -------------------------------------------------------------


@pytest.mark.parametrize(
    "subscribers, crops, lines",
    [
        pytest.param(0, (TOMATO,), ["Aucun producteur abonné ne recevra d'alerte"], id="nobody"),
        pytest.param(1, (TOMATO,), ["1 producteur abonné recevra une alerte SMS", "1 SMS", "1 segment"], id="one"),
        pytest.param(3, (TOMATO, 2), ["3 producteurs abonnés recevront une alerte SMS", "3 SMS", "3 segments"], id="three-two-crops-each"),
    ],
)
def test_issue15_price_publish_confirmation_states_count_and_cost(french, db, settings, subscribers, crops, lines):
    """Publishing alerts every subscriber: the confirmation says how many prices, how many
    producers, SMS and segments, and what it costs in XOF, before anything is published."""
    subscribe(db, subscribers, crops)
    form = {"market": str(SIKASSO), "date": TODAY.isoformat(), "price_1": "15500", "price_2": "9000"}
    page = french.post("/admin/prices", form)
    assert page.status_code == 200, page.text[-800:]
    text = html_text.unescape(page.text)
    assert "2 nouveaux prix seront publiés" in text and "Publier 2 prix pour Sikasso, le 28/11/2026" in text
    for line in lines:
        assert line in text, text[text.index('id="publish-summary"') :][:800]
    # One SMS of one segment per producer: both prices fit in it.
    cost = staff_text.number(round(subscribers * settings.sms_price_per_segment), "fr") + " XOF"
    assert f"Coût estimé : {cost}" in text
    assert console_prices(db) == 0


def test_issue15_correction_sms_confirmation_states_count_and_cost(french, db, settings, alerted):  # noqa: F811
    typo = alerted
    assert french.post(f"/admin/prices/{typo}/withdraw", {"reason": "mauvais marché", "confirmed": "1"}).status_code == 303
    page = html_text.unescape(french.get(f"/admin/prices/{typo}/correction-sms").text)
    with db.unit_of_work() as session:
        expected = corrections.preview(session, typo, default_catalog(), settings)
    cost = staff_text.number(round(expected.estimated_cost), "fr") + " XOF"
    assert expected.recipients == 2 and expected.estimated_cost > 0
    assert "2 producteurs ont reçu cette valeur dans une alerte." in page
    assert f'<b id="sms-cost">{cost}</b>' in page
    assert f"Envoyer la correction à 2 producteurs pour {cost}" in page
    main = page[page.index("<main>") :]
    assert "Price #" not in main and "producers" not in main and "XOF (" not in main
    with db.unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(models.Broadcast).where(models.Broadcast.kind == "correction")).one() == 0


def test_issue15_withdrawal_is_confirmed_with_what_it_affects(french, db):
    earlier = add_price(db, 12500, day=TODAY - dt.timedelta(days=3))
    typo = add_price(db, 1300)
    assert earlier
    page = french.post(f"/admin/prices/{typo}/withdraw", {"reason": "mauvais marché"})
    assert page.status_code == 200
    text = html_text.unescape(page.text)
    assert "Retirer le prix n° " in text and "1 300 F/panier (gros) disparaît".replace(" ", NNBSP, 1) in text
    assert "Les producteurs verront de nouveau le prix précédent : " in text and "Aucun producteur n'a reçu" in text
    assert 'name="confirmed" value="1"' in text and 'value="mauvais marché"' in text
    with db.unit_of_work() as session:
        assert session.get(models.PriceObservation, typo).status == "published"
    assert french.post(f"/admin/prices/{typo}/withdraw", {"reason": "mauvais marché", "confirmed": "1"}).status_code == 303
    with db.unit_of_work() as session:
        assert session.get(models.PriceObservation, typo).status == "withdrawn"


# -- French: words, dates, numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, french_texts, english_texts",
    [
        pytest.param("/admin/prices?market=1", ["Jour de marché", "Dernier prix publié", "panier", "gros", "Vérifier et publier"],
                     ["Latest published", ">basket<", ">wholesale<", "Market day"], id="grid"),
        pytest.param("/admin/prices/history?crop=1&market=1", ["publié", "gros", "/2026", "tendance et prévision"],
                     [">published<", ">wholesale<", "2026-11"], id="history"),
        pytest.param("/admin/trends?crop=2", ["Tendances et prévisions : Oignon", "Comment les prévisions sont faites", "semaines"],
                     ["How the forecasts are made", "weekly<", " weeks"], id="trends"),
        pytest.param("/admin/trends/detail?crop=1&market=1", ["tendance et prévision", "Test rétrospectif", "semaine"],
                     ["Backtest on this history", "weeks ahead", "2026-"], id="trend"),
        pytest.param("/admin/prices/import", ["Importer des prix", "Vérifier le fichier", "Taux de change"],
                     ["Check the file", "Exchange rates"], id="import"),
    ],
)
def test_issue15_price_pages_speak_french(french, path, french_texts, english_texts):
    page = french.get(path)
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    for text in french_texts:
        assert text in page.text, text
    for text in english_texts:
        assert text not in page.text, text


def test_issue15_prices_are_written_with_grouped_digits_and_french_dates(french, db):
    add_price(db, 13500, day=YESTERDAY)
    page = french.get(f"/admin/prices/history?crop={TOMATO}&market={SIKASSO}").text
    assert f"13{NNBSP}500 F/panier" in page and YESTERDAY.strftime("%d/%m/%Y") in page


def _history(b, page: str = "") -> tuple[list[int], str, str]:
    """The price ids listed on a page of the history, its chart and its pager."""
    text = b.get(f"/admin/prices/history?crop={TOMATO}&market={SIKASSO}" + (f"&page={page}" if page else "")).text
    ids = [int(i) for i in re.findall(r'<td data-label="#">(\d+)</td>', text)]
    chart = re.search(r'<svg class="chart".*?</svg>', text, re.S).group(0)
    pager = (re.search(r'<nav class="pager.*?</nav>', text, re.S) or re.search("$", "")).group(0)
    return ids, chart, pager


def test_issue15_price_history_comes_in_pages(french, db):
    """Finding (walk-through at 360 px): the history listed 120 cards, 25,000 px tall. It lists
    30 at a time, newest first, with links that keep the crop and market; the chart still draws
    every price."""
    with db.unit_of_work() as session:
        obs = models.PriceObservation
        listed = min(120, session.exec(select(func.count()).select_from(obs).where(
            obs.crop_id == TOMATO, obs.market_id == SIKASSO)).one())
    assert listed > 60  # the demo data: three pages at least
    first, chart, pager = _history(french)
    second, chart_two, pager_two = _history(french, "2")
    assert len(first) == len(second) == 30 and not set(first) & set(second)
    assert chart == chart_two
    assert f'href="/admin/prices/history?crop={TOMATO}&amp;market={SIKASSO}&amp;page=2" rel="next"' in pager
    assert "Page 1 sur" in pager and 'rel="prev"' not in pager
    assert 'rel="prev"' in pager_two and "Page 2 sur" in pager_two
    last = str(-(-listed // 30))
    for page in (last, "9999", "abc", "0"):  # past the end: the last page; not a number: the first
        ids = _history(french, page)[0]
        assert ids == (first if page in ("abc", "0") else _history(french, last)[0]), page
    assert len(_history(french, last)[0]) == listed - 30 * (int(last) - 1)


@pytest.mark.parametrize(
    "typed, shown, status",
    [
        pytest.param("27/11/2026", "Prix du 27/11/2026 à Sikasso", 200, id="typed-by-hand"),
        pytest.param("2026-11-27", "Prix du 27/11/2026 à Sikasso", 200, id="picker"),
        pytest.param("31/02/2026", "n'est pas une date : utilisez jj/mm/aaaa", 200, id="no-such-day"),
        pytest.param("hier", "n'est pas une date", 200, id="words"),
    ],
)
def test_issue15_market_day_is_shown_and_accepted_as_dd_mm_yyyy(french, typed, shown, status):
    page = french.get(f"/admin/prices?market={SIKASSO}&date={typed}")
    assert page.status_code == status and shown in html_text.unescape(page.text)


def test_issue15_grid_posted_with_a_dd_mm_yyyy_date_is_accepted(browser, db):  # noqa: F811
    page = browser("reporter").post("/admin/prices", {"market": str(SIKASSO), "date": YESTERDAY.strftime("%d/%m/%Y"), "price_1": "15500"})
    assert page.status_code == 200 and 'id="confirm-prices"' in page.text
    assert f'name="date" value="{YESTERDAY.strftime("%d/%m/%Y")}"' in page.text


# -- phone first: cards with labels; empty states ----------------------------------------------------


def cells_without_label(html: str) -> list[str]:
    """Cells of a table that on a phone would show a value without saying what it is."""
    bad = []
    for table in re.findall(r"<table\b.*?</table>", html, re.S):
        for attrs, inner in re.findall(r"<td\b([^>]*)>(.*?)</td>", table, re.S):
            inner = inner.strip()
            # Actions (links, buttons) and a card's title (the bold first cell) need no label.
            if "data-label" in attrs or not inner or inner.startswith(("<a ", "<form", "<b>", "<label")):
                continue
            bad.append(inner[:60])
    return bad


@pytest.mark.parametrize(
    "path",
    ["/admin/prices?market=1", "/admin/prices/history?crop=1&market=1", "/admin/trends?crop=2", "/admin/trends/detail?crop=1&market=1"],
)
def test_issue15_price_tables_become_cards_with_every_column_labelled(browser, db, path):  # noqa: F811
    """Finding: at 390 px Prices hid the kind and history columns, Trends the forecasts."""
    with db.unit_of_work() as session:
        session.add(models.PriceObservation(crop_id=1, market_id=1, observed_on=NOW.date(), price=90000, unit="basket",
                                            status="held", review_reason="far above", source="sms:+22376555444"))
    html = browser("editor").get(path).text
    tables = re.findall(r"<table\b[^>]*>", html)
    assert tables and all("cards" in t for t in tables), tables
    assert cells_without_label(html) == []


def test_issue15_publish_confirmation_tables_are_cards(browser, db):  # noqa: F811
    html = browser("editor").post("/admin/prices", {"market": str(SIKASSO), "date": YESTERDAY.isoformat(), "price_1": "1300"}).text
    tables = re.findall(r"<table\b[^>]*>", html)
    assert tables and all("cards" in t for t in tables) and cells_without_label(html) == []


def test_issue15_empty_states_say_what_to_do(french, db):
    with db.unit_of_work() as session:
        market = models.Market(code="kita", name="Kita", region="Kayes")
        session.add(market)
        session.flush()
        market_id = market.id
    grid = french.get(f"/admin/prices?market={market_id}").text
    assert 'class="empty"' in grid and "Aucun prix publié pour ce marché ce jour-là : saisissez" in grid
    history = french.get(f"/admin/prices/history?crop=1&market={market_id}").text
    assert 'class="empty"' in history and "<table" not in history and "Ouvrir la grille des prix" in history
    with db.unit_of_work() as session:
        crop = models.Crop(code="gombo", name_fr="Gombo", name_bm="Gan", default_unit="kg", sort_order=99)
        session.add(crop)
        session.flush()
        crop_id = crop.id
    trends_page = french.get(f"/admin/trends?crop={crop_id}").text
    assert 'class="empty"' in trends_page and "Saisissez-les dans la grille des prix" in trends_page
    assert 'id="trends"' not in trends_page


def test_issue15_approving_a_held_report_states_alerts_and_cost_first(french, db, settings):
    subscribe(db, 2)
    with db.unit_of_work() as session:
        held = models.PriceObservation(crop_id=TOMATO, market_id=SIKASSO, observed_on=TODAY, price=16000, unit="basket",
                                       status="held", review_reason="far above", source="sms:+22376555444")
        session.add(held)
        session.flush()
        held_id = held.id
    page = html_text.unescape(french.post(f"/admin/prices/review/{held_id}", {"decision": "approve"}).text)
    cost = staff_text.number(round(2 * settings.sms_price_per_segment), "fr") + " XOF"
    assert "2 producteurs abonnés recevront une alerte SMS" in page and f"Coût estimé : {cost}" in page
    with db.unit_of_work() as session:
        assert session.get(models.PriceObservation, held_id).status == "held"
        assert session.exec(select(func.count()).select_from(models.Broadcast)).one() == 0


def test_issue15_back_from_the_publish_confirmation_keeps_the_grid_as_typed(browser, db):  # noqa: F811
    b = browser("reporter")
    form = {"market": str(SIKASSO), "date": YESTERDAY.isoformat(), "price_1": "15500", "price_3": "900", "unit_3": "kg"}
    assert 'id="confirm-prices"' in b.post("/admin/prices", form).text
    back = b.post("/admin/prices", {**form, "confirm": "yes", "back": "1"})
    assert back.status_code == 200 and 'id="price-grid"' in back.text
    assert 'value="15500"' in back.text and 'value="900"' in back.text and 'class="field-error"' not in back.text
    assert console_prices(db) == 0
