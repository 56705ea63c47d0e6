"""The console's simulators show what a handset shows, keep the USSD and SMS phones apart, and
speak the console's language (issue 15)."""

from __future__ import annotations

import html
import re

import pytest

from tests.test_admin import Browser, app, browser, clock, staff  # noqa: F401 (fixtures)

pytestmark = pytest.mark.db


def screen_of(page: str) -> str:
    found = re.search(r'id="ussd-screen"[^>]*>(.*?)</div>', page, re.S)
    assert found, "no USSD screen on the page"
    return html.unescape(found.group(1))


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<form[^>]*action="/admin/simulators/sms".*?name="{name}" value="([^"]*)"', page, re.S)
    return html.unescape(found.group(1)) if found else ""


def test_issue15_sms_simulator_keeps_the_ussd_session(browser):
    b = browser("editor")
    page = b.post("/admin/simulators/ussd", {"ussd_phone": "+22370000042", "restart": "1", "language": "fr"}).text
    page = b.post("/admin/simulators/ussd", {"ussd_phone": "+22370000042", "language": "fr", "path": "", "dialled": "1",
                                             "input": "1", "sent": "1"}).text
    prices_screen = screen_of(page)
    assert "Prix: choisir un produit" in prices_screen
    # The SMS form carries the USSD phone's state, as the page renders it...
    carried = {name: hidden(page, name) for name in ("ussd_phone", "path", "dialled", "language")}
    assert carried == {"ussd_phone": "+22370000042", "path": "1", "dialled": "1", "language": "fr"}
    # ...so that trying an SMS leaves the USSD session where it was.
    page = b.post("/admin/simulators/sms", {**carried, "sms_phone": "+22370000043", "sms_text": "AIDE"}).text
    assert screen_of(page) == prices_screen
    assert 'id="sms-reply"' in page


def test_issue15_ussd_simulator_keeps_the_sms_reply(browser):
    b = browser("editor")
    page = b.post("/admin/simulators/sms", {"sms_phone": "+22370000043", "sms_text": "PRIX TOMATE"}).text
    reply = re.search(r'id="sms-reply"><p><b>(.*?)</b>', page, re.S).group(1)
    page = b.post("/admin/simulators/ussd", {"ussd_phone": "+22370000042", "restart": "1", "sms_phone": "+22370000043",
                                             "sms_text": "PRIX TOMATE"}).text
    assert re.search(r'id="sms-reply"><p><b>(.*?)</b>', page, re.S).group(1) == reply
    assert screen_of(page).startswith("Sugu")


@pytest.mark.parametrize("path,ended", [("", False), ("1", False), ("2*1*1*500*1", True)],
                         ids=["first-screen", "next-screen", "end-screen"])
def test_issue15_ussd_simulator_shows_no_protocol_word(browser, path, ended):
    page = browser("editor").post("/admin/simulators/ussd", {"ussd_phone": "+22370000042", "path": path, "dialled": "1",
                                                             "language": "fr", "restart": "" if path else "1"}).text
    screen = screen_of(page)
    assert not screen.startswith(("CON ", "END ")), screen
    assert ('id="ussd-ended"' in page) == ended, screen


def test_issue15_dial_button_looks_like_the_call_key(browser):
    page = browser("editor").get("/admin/simulators").text
    dial = re.search(r'<button name="restart" value="1" class="([^"]*)">', page)
    assert dial and "dial" in dial.group(1).split() and "secondary" not in dial.group(1).split()


def test_issue15_simulator_bad_phone_is_said_beside_the_field(browser):
    response = browser("editor").post("/admin/simulators/ussd", {"ussd_phone": "12", "restart": "1"})
    assert response.status_code == 400
    assert 'id="sim-phone-error"' in response.text and 'value="12"' in response.text
