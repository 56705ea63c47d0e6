"""The voice phone of the simulators in headless Chromium (issue 16 item 9): call, press 1, hear the
prices prompt — its words on the screen and its real audio in an <audio> element the browser
loads — at a laptop's width and at a phone's (360 px, French console, no sideways scrolling).
Screenshots: test-artifacts/screenshots/<backend>/voice-simulator-<width>.png."""

from __future__ import annotations

import re

import pytest

from gateway.app import create_app
from gateway.data import auth, models
from tests.conftest import NOW
from tests.e2e.browser import PASSWORD, expect, fits_the_width, screenshot, serve

pytestmark = [pytest.mark.db, pytest.mark.browser]

CALLER = "+22370000042"
STAFF = "reporter@sugu.test"  # the least role: the simulators are everyone's


@pytest.fixture
def voice_console(settings, db, request):
    with db.unit_of_work() as session:
        auth.create_staff(session, email=STAFF, password=PASSWORD, role="reporter")
        session.add(models.Producer(phone=CALLER, language="fr"))

    def open_console(language: str):
        return serve(create_app(settings.model_copy(update={"console_language": language}), clock=lambda: NOW))

    return open_console


# (viewport, console language, the Call button, the silence key, the words of the main menu)
VIEWS = [
    ({"width": 1280, "height": 800}, "en", "Call", "No answer (silence)"),
    ({"width": 360, "height": 740}, "fr", "Appeler", "Pas de réponse (silence)"),
]


@pytest.mark.parametrize("viewport, language, call, silence", VIEWS, ids=["laptop-en", "phone-fr"])
def test_call_press_1_hear_the_prices(chromium, voice_console, backend, problems, viewport, language, call, silence):
    with voice_console(language) as url:
        phone = viewport["width"] < 600
        context = chromium.new_context(base_url=url, viewport=viewport, is_mobile=phone, has_touch=phone)
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            problems.watch(page)
            page.goto("/admin/login")
            page.locator("#email").fill(STAFF)
            page.locator("#password").fill(PASSWORD)
            page.locator("form button[type=submit]").click()
            page.wait_for_url(re.compile(r"/admin/?$"))
            page.goto("/admin/simulators")

            keypad = page.locator("#voice-keypad")
            expect(keypad.get_by_role("button", name="1", exact=True)).to_be_disabled()  # no call yet
            page.locator("#voice-phone-number").fill(CALLER)
            page.locator("#voice-phone").get_by_role("button", name=call, exact=True).click()
            expect(page.locator("#voice-words")).to_contain_text("Prix du marché")

            keypad.get_by_role("button", name="1", exact=True).click()
            words = page.locator("#voice-words")
            expect(words).to_contain_text("Prix: choisir un produit")
            expect(words).to_contain_text("Tomate")
            expect(page.locator("#voice-keys")).to_contain_text("9")
            expect(page.locator("#voice-phone").get_by_role("button", name=silence)).to_be_enabled()

            audio = page.locator("audio#voice-audio")
            expect(audio).to_have_attribute("controls", "")
            expect(audio).to_have_attribute("autoplay", "")
            source = audio.get_attribute("src")
            assert re.fullmatch(r"/voice/audio/[0-9a-f]{64}\.wav", source)
            response = page.request.get(source)
            assert response.status == 200 and response.headers["content-type"] == "audio/wav"
            assert response.body()[:4] == b"RIFF"
            # The browser itself decodes it: a real sound of a few seconds, not an empty file.
            page.wait_for_function("document.querySelector('#voice-audio').duration > 1")

            assert fits_the_width(page), page.evaluate("document.documentElement.scrollWidth")
            # On a phone the voice phone is the third one down: each answer opens at it, keys a thumb can hit.
            expect(page.locator("#voice-screen")).to_be_in_viewport()
            assert keypad.get_by_role("button", name="5", exact=True).bounding_box()["height"] >= 40
            shot = screenshot(page, backend, "voice-simulator")
            assert shot.stat().st_size > 10_000
        finally:
            context.close()
