"""The staff console end to end, in a real headless Chromium driven by Playwright: sign in, edit a
Bambara message and watch the phone preview follow, publish a price and read it in the USSD
simulator, compose a broadcast and read its estimate. Full-page screenshots of the main pages, at
desktop and phone width, are kept under test-artifacts/screenshots/<backend>/ (git-ignored).

Each test serves the real app (uvicorn, a free loopback port) on a fresh database of each backend
(tests/e2e/browser.py)."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from gateway.data import models
from tests.e2e.browser import (
    BM_LONG,
    BM_LONG_IN_SMS,
    BM_LONG_ON_USSD,
    DESKTOP,
    EDITOR,
    PHONE,
    SCREENSHOTS,
    answer,
    go_to,
    choice_for,
    expect,
    open_section,
    screenshot,
    sign_in,
    signed_in,
)

pytestmark = [pytest.mark.db, pytest.mark.browser]


# -- a. signing in ------------------------------------------------------------------------------------


def test_wrong_password_shows_the_error_then_the_editor_signs_in(page, staff):
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sugu staff console")

    sign_in(page, EDITOR, "not the password")
    expect(page.locator(".flash.error")).to_have_text("wrong e-mail or password")
    expect(page.get_by_label("E-mail")).to_have_value(EDITOR)  # kept, the password is not
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.locator("header nav")).to_have_count(0)

    sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(page.locator("header .who")).to_have_text("editor@sugu.test (editor)")
    nav = page.locator("header nav")
    expect(nav.get_by_role("link", name="Messages")).to_be_visible()
    expect(nav.get_by_role("link", name="Staff")).to_have_count(0)  # admins only


def test_sign_in_leads_back_to_the_page_asked_for(page, staff):
    page.goto("/admin/messages")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=(/|%2F)admin(/|%2F)messages$"))
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/admin/messages$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Messages")


# -- b. a Bambara message and its live phone preview -----------------------------------------------------


BM_SHORT = "Sugu - sɔngɔ kura ni laadilikan"


def test_bambara_edit_updates_the_ussd_preview_and_segments_then_saves(page, staff):
    signed_in(page)
    open_section(page, "Messages")
    # The list is paged (60 a page): staff find a text by its key or words.
    page.locator("#q").fill("main.title")
    page.locator("#q").press("Enter")
    page.get_by_role("link", name="main.title", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Message main.title")

    preview = page.locator("#preview_bm")
    ussd, chars = preview.locator("pre.ussd"), preview.locator(".ussd-chars")
    segments, sms = preview.locator(".sms-segments"), preview.locator(".sms-text")
    expect(ussd).to_contain_text("Sugu - songo ni laadilikan")
    expect(segments).to_have_text("1")
    chars_before = chars.inner_text()

    area = page.locator("#text_bm")
    area.click()
    area.press("ControlOrMeta+a")
    area.press_sequentially(BM_LONG)  # typed, key by key, replacing the selection
    expect(area).to_have_value(BM_LONG)

    # The server renders the real menu screen (debounced ~150 ms): folded to ASCII, and the SMS
    # written with GSM-7 look-alikes, now two segments.
    expect(ussd).to_contain_text(BM_LONG_ON_USSD)
    expect(chars).not_to_have_text(chars_before)
    expect(segments).to_have_text("2")
    expect(preview.locator(".sms-encoding")).to_have_text("GSM-7")
    expect(sms).to_contain_text(BM_LONG_IN_SMS)
    screen = ussd.inner_text()
    assert screen.isascii(), screen
    assert int(chars.inner_text()) <= 160
    # The French side did not move.
    expect(page.locator("#preview_fr pre.ussd")).to_have_text(re.compile(r"^Sugu - prix et conseils"))

    # Longer than a USSD screen: the preview says so, and saving is refused (issue 14, finding 8).
    expect(preview.locator(".preview-problem")).to_contain_text("Too long for a USSD screen")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#text_bm-error")).to_contain_text("Too long for a USSD screen")  # beside the field
    area = page.locator("#text_bm")
    area.fill(BM_SHORT)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash")).to_have_text("Saved: the next USSD hop and SMS use it.")
    expect(page.locator("#text_bm")).to_have_value(BM_SHORT)
    expect(segments).to_have_text("1")  # rendered by the server this time
    history = page.locator("table").filter(has_text="Revert to this")
    expect(history.locator("tr", has_text=EDITOR)).to_have_count(1)
    expect(history).to_contain_text(BM_SHORT)


# -- c. a price, from the grid to the phone -----------------------------------------------------------------


def test_published_price_shows_in_the_ussd_simulator(page, staff, db):
    with db.unit_of_work() as session:
        tomato = session.exec(select(models.Crop).where(models.Crop.code == "tomato")).one()
        dire = session.exec(select(models.Market).where(models.Market.code == "dire")).one()  # no price yet today
        farmer = models.Producer(phone="+22370000001", language="fr", region="Tombouctou")
        session.add(farmer)
        session.flush()
        session.add(models.Subscription(producer_id=farmer.id, crop_id=tomato.id, market_id=dire.id))

    signed_in(page)
    open_section(page, "Prices")
    page.get_by_label("Market", exact=True).select_option(label="Diré (Tombouctou)")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_label("Market", exact=True)).to_have_value(str(dire.id))
    tomato_row = page.locator("tr", has_text="Tomate / Tamati")
    expect(tomato_row).to_contain_text("(31/10/2026)")  # four weeks old

    page.get_by_label("Price of Tomate", exact=True).fill("15 500")
    page.get_by_role("button", name="Check and publish…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Publish 1 price for Diré, 28/11/2026?")
    expect(page.locator("#alert-count")).to_contain_text("1 subscribed producer will get an SMS alert")
    page.get_by_role("button", name="Publish and alert").click()
    expect(page.locator(".flash")).to_contain_text("1 price published for Diré; alerts queued for 1 producer")
    expect(tomato_row).to_contain_text("15,500 F/basket (28/11/2026)")

    open_section(page, "Simulators")
    page.get_by_label("Language (new dial)").select_option("fr")
    page.get_by_role("button", name="Dial *123#").click()
    screen = page.locator("#ussd-screen")
    expect(screen).to_have_text(re.compile(r"^Sugu - prix et conseils"))  # as a handset shows it: no "CON "
    answer(page, "1")
    expect(screen).to_contain_text("Prix: choisir un produit")
    answer(page, choice_for(screen.text_content(), "Tomate"))
    expect(screen).to_contain_text("Tomate: choisir un marche")
    answer(page, choice_for(screen.text_content(), "Dire"))
    expect(screen).to_contain_text("Tomate - Dire")
    expect(screen).to_contain_text("15 500 F/panier (gros)")  # the narrow no-break space folded
    expect(screen).to_contain_text("Le 28/11")


# -- d. a broadcast and its estimate ---------------------------------------------------------------------


def test_broadcast_estimate_follows_text_and_region(page, staff, db):
    with db.unit_of_work() as session:
        for i, (region, language, opted_out) in enumerate(
            [("Mopti", "fr", False), ("Mopti", None, False), ("Mopti", "bm", False), ("Mopti", "bm", True),
             ("Sikasso", "fr", False)]
        ):
            session.add(models.Producer(phone=f"+2237600000{i}", region=region, language=language, opted_out=opted_out))

    signed_in(page)
    open_section(page, "Broadcasts")
    estimate, total = page.locator("#estimate"), page.locator("#estimate-total")
    expect(estimate).to_have_text("Type a message to see its estimate.")

    page.get_by_label("Français").fill("Réunion des producteurs jeudi à 9h au marché de Sévaré.")
    expect(total).to_have_text("Total: 4 recipients, 4 SMS segments, about 40 XOF")  # every region; opted-out left out

    # One change at a time, each estimate awaited: the page does not order overlapping answers.
    lines = estimate.locator("div")
    page.get_by_label("Bamanankan").fill("Sɛnɛkɛlaw ka ɲɔgɔnye bɛna kɛ alamisa sɔgɔma Sevare sugu la.")
    expect(lines.nth(1)).to_contain_text("Bambara: 1 recipient, GSM-7, 1 segment each, about 10 XOF: Sènèkèlaw ka nyògònye")

    page.get_by_label("Region").select_option("Mopti")
    expect(total).to_have_text("Total: 3 recipients, 3 SMS segments, about 30 XOF")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_have_text(
        "French: 2 recipients, GSM-7, 1 segment each, about 20 XOF: Réunion des producteurs jeudi à 9h au marché de Sévaré."
    )
    expect(lines.nth(1)).to_have_text(
        "Bambara: 1 recipient, GSM-7, 1 segment each, about 10 XOF: Sènèkèlaw ka nyògònye bèna kè alamisa sògòma Sevare sugu la."
    )

    page.get_by_role("button", name="Send", exact=True).click()
    # Issue 15: a confirmation with the count and the cost comes first.
    expect(page.get_by_role("heading", level=1)).to_have_text("Send this broadcast?")
    expect(page.locator(".confirm")).to_contain_text("30 XOF")
    page.get_by_role("button", name="Send to 3 producers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Broadcast #\d+"))
    expect(page.locator(".flash")).to_contain_text("to 3 producers is queued")


# -- e. screenshots of the main pages ---------------------------------------------------------------------


def at_both_widths(new_page):
    """A signed-in editor's page at desktop width, then one at phone width sharing the sign-in."""
    desktop = new_page(DESKTOP)
    signed_in(desktop)
    yield desktop
    yield new_page(PHONE, storage_state=desktop.context.storage_state())


def test_screenshots_of_the_main_pages(new_page, staff, backend, db):
    with db.unit_of_work() as session:  # a reader of each language: the estimate has a line for each
        for i, language in enumerate(("fr", "bm")):
            session.add(models.Producer(phone=f"+2237610000{i}", region="Mopti", language=language))
    for page in at_both_widths(new_page):
        page.goto("/admin/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
        expect(page.locator("svg.chart")).to_be_visible()
        screenshot(page, backend, "dashboard")

        page.goto("/admin/messages?q=main")
        expect(page.get_by_role("link", name="main.title", exact=True)).to_be_visible()
        screenshot(page, backend, "messages")

        page.goto("/admin/messages/main.title")
        page.locator("#text_bm").fill(BM_LONG)
        expect(page.locator("#preview_bm .sms-segments")).to_have_text("2")
        screenshot(page, backend, "message-edit")

        page.goto("/admin/prices")
        expect(page.get_by_label("Price of Tomate", exact=True)).to_be_visible()
        screenshot(page, backend, "prices")

        page.goto("/admin/broadcasts")
        page.get_by_label("Français").fill("Réunion des producteurs jeudi à 9h au marché de Sévaré.")
        expect(page.locator("#estimate-total")).to_contain_text("XOF")
        page.get_by_label("Bamanankan").fill("Sɛnɛkɛlaw ka ɲɔgɔnye bɛna kɛ alamisa sɔgɔma Sevare sugu la.")
        expect(page.locator("#estimate")).to_contain_text("Sènèkèlaw ka nyògònye")
        screenshot(page, backend, "broadcasts")

        page.goto("/admin/simulators")
        page.get_by_label("Language (new dial)").select_option("bm")
        page.get_by_role("button", name="Dial *123#").click()
        expect(page.locator("#ussd-screen")).to_contain_text("Sugu - songo ni laadilikan")
        answer(page, "1")
        expect(page.locator("#ussd-screen")).to_contain_text("Tamati")
        screenshot(page, backend, "simulators")

    names = sorted(p.name for p in (SCREENSHOTS / backend.name).glob("*.png"))
    for name in ("dashboard", "messages", "message-edit", "prices", "broadcasts", "simulators"):
        assert f"{name}-1280.png" in names and f"{name}-390.png" in names, names


# -- e. market intelligence ------------------------------------------------------------------------


def test_trends_overview_then_a_markets_forecast_chart(new_page, staff, backend):
    for page in at_both_widths(new_page):
        page.goto("/admin/")
        go_to(page, "Trends")
        page.get_by_label("Crop").select_option(label="Oignon / Jababa")
        page.get_by_role("button", name="Open").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Trends and forecasts: Oignon")
        row = page.locator("#trends tr:has(td:first-child b:text-is('Sikasso'))")
        expect(row).to_contain_text("%, n=")  # the forecast's backtest error (the last price's, n=…)
        expect(page.locator("#trends tr:has(td:first-child b:text-is('Diré'))")).to_contain_text("last price too old for a forecast")
        screenshot(page, backend, "trends")
        row.get_by_role("link", name="detail").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Oignon at Sikasso: trend and forecast")
        expect(page.locator("svg.chart")).to_be_visible()
        expect(page.locator("svg.chart circle")).to_have_count(4)  # the four weekly forecasts
        expect(page.locator("#forecast tr")).to_have_count(5)
        expect(page.locator("#backtest")).to_contain_text("seasonal and trend")
        screenshot(page, backend, "trend-detail")


def test_a_new_directory_entry_shows_in_the_ussd_services_menu(page, staff):
    signed_in(page)
    go_to(page, "Services")
    expect(page.get_by_role("heading", level=1)).to_have_text("Services directory")
    page.get_by_role("link", name="New entry").click()
    page.get_by_label("Category").select_option("storage")
    page.get_by_label("Region").select_option("Mopti")
    page.get_by_label("Name").fill("Frigo de Sévaré <b>coop</b>")
    page.get_by_label("Phone").fill("12")  # not a number: refused, nothing saved
    page.get_by_label("In French").fill("Oignons au frais, 25 F/sac/jour")
    page.get_by_label("In Bambara").fill("Jaba marali nɛnɛ la, 25 F bɔrɔ kelen")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.error")).to_contain_text("Phone")
    page.get_by_label("Phone").fill("76 00 02 02")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Service saved: farmers see it in the USSD Services menu.")

    go_to(page, "Simulators")
    page.get_by_label("Language (new dial)").select_option("fr")
    page.get_by_role("button", name="Dial *123#").click()
    screen = page.locator("#ussd-screen")
    answer(page, choice_for(screen.text_content(), "Services"))
    answer(page, choice_for(screen.text_content(), "Stockage, transformation"))
    answer(page, choice_for(screen.text_content(), "Mopti"))
    expect(screen).to_contain_text("Frigo de Sevare <b>coop</b>")  # typed markup stays text
    answer(page, choice_for(screen.text_content(), "Frigo de Sevare <b>coop</b>"))
    expect(screen).to_contain_text("+223 76 00 02 02")
    expect(screen).to_contain_text("Oignons au frais, 25 F/sac/jour")
    expect(screen).to_contain_text("1. Recevoir par SMS")
