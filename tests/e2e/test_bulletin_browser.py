"""The radio bulletin's console page in a real headless Chromium (issue 16 item 8): reached from
the navigation, in French, at a phone's width and a laptop's, with the console walk-through's
checks (no sideways scrolling, no English, no raw code, under 100 kB and 10 requests on a cold
load: its row of the README's page weights); its player plays the MP3 and the link downloads it.

Screenshots: test-artifacts/screenshots/bulletin/."""

from __future__ import annotations

import pytest

from messages.voice import audio
from tests.e2e.browser import SCREENSHOTS, expect, fits_the_width
from tests.e2e.test_console_walkthrough import (  # noqa: F401 - french_console is a fixture
    ENGLISH,
    LAPTOP,
    MAX_BYTES,
    MAX_REQUESTS,
    PHONE_SMALL,
    RAW_CODES,
    _cold_load,
    _console_text,
    _signed_in_context,
    french_console,
)

pytestmark = [pytest.mark.db, pytest.mark.browser]

FOLDER = SCREENSHOTS / "bulletin"
PATH = "/admin/bulletins"


def test_the_bulletin_page_in_french_plays_and_downloads(chromium, french_console, problems):
    url, _crop, _market = french_console
    FOLDER.mkdir(parents=True, exist_ok=True)
    findings = []
    for viewport in (PHONE_SMALL, LAPTOP):
        context, page = _signed_in_context(chromium, url, viewport)
        problems.watch(page)
        menu = page.locator("header .menu-button")
        if menu.is_visible():
            menu.click()
        page.locator("header nav").get_by_role("link", name="Bulletin radio", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Bulletin radio")
        where = f"{PATH} at {viewport['width']} px"
        card = page.locator("#bulletin-sikasso-bm")
        card.locator("summary").click()  # what it says, unfolded
        expect(card.locator(".bulletin-words")).to_contain_text("Tamati")
        if not fits_the_width(page):
            findings.append(f"{where}: scrolls sideways ({page.evaluate('document.documentElement.scrollWidth')} px)")
        text = _console_text(page)
        english = sorted({m.group(0) for m in ENGLISH.finditer(text)})
        if english:
            findings.append(f"{where}: English words {english[:8]}")
        codes = sorted({m.group(0) for m in RAW_CODES.finditer(text)})
        if codes:
            findings.append(f"{where}: raw codes {codes[:8]}")
        page.screenshot(path=str(FOLDER / f"bulletins-{viewport['width']}.png"), full_page=True)
        if viewport is PHONE_SMALL:
            # The player fetches the MP3 with the console's cookie and plays it.
            seconds = page.evaluate("""async () => {
                const player = document.querySelector('#bulletin-sikasso-bm audio');
                player.muted = true;
                await player.play();
                return player.duration; }""")
            assert 30 <= seconds <= 150, seconds
            with page.expect_download() as download:
                card.get_by_role("link", name="Télécharger le MP3").click()
            saved = download.value
            assert saved.suggested_filename.startswith("sugu-sikasso-bm-") and saved.suggested_filename.endswith(".mp3")
            assert audio.sniff(open(saved.path(), "rb").read()) == "mp3"
            size, requests = _cold_load(chromium, url, PATH, context.storage_state())
            print(f"page weight: | `{PATH}` | {size / 1000:.1f} | {requests} |")
            if size >= MAX_BYTES or requests >= MAX_REQUESTS:
                findings.append(f"{PATH}: {size} bytes in {requests} requests on a cold load")
        context.close()
    assert not findings, "\n".join(findings)
