"""The recording studio in a real headless Chromium (issue 16 item 4): record a prompt with a fake
microphone (`--use-fake-device-for-media-stream`: Chromium's own test beep), listen back, save,
see the revision listed and the coverage go up, fetch what calls will play (a telephone WAV), and
have another editor listen to it and approve it.
The plain upload form works with scripts off. The studio's pages pass the console walk-through's
checks in French, at a phone's width and a laptop's.

Screenshots: test-artifacts/screenshots/studio/."""

from __future__ import annotations

import io
import re
import wave

import pytest
from sqlmodel import select

from gateway.data import auth, models
from gateway.voice import prompts
from messages.voice import audio
from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    SCREENSHOTS,
    expect,
    fits_the_width,
    open_section,
    sign_in,
    signed_in,
)
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
from tests.test_voice_audio import silence, tone, wav

pytestmark = [pytest.mark.db, pytest.mark.browser]

FAKE_MICROPHONE = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
FOLDER = SCREENSHOTS / "studio"
REVIEWER = "awa.reviewer@sugu.test"


@pytest.fixture(scope="module")
def chromium_with_microphone(chromium):
    """A second Chromium of the same Playwright, whose microphone is Chromium's fake (a beep)."""
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_MICROPHONE)
    yield browser
    browser.close()


@pytest.fixture
def open_page(chromium_with_microphone, console, problems):
    contexts = []

    def make(viewport: dict, *, script: bool = True):
        phone = viewport["width"] < 600
        context = chromium_with_microphone.new_context(
            base_url=console, viewport=viewport, is_mobile=phone, has_touch=phone, java_script_enabled=script)
        context.grant_permissions(["microphone"], origin=console)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)
        return page

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(FOLDER / f"{name}-{page.viewport_size['width']}.png"), full_page=True)


def revisions_of(db, clip: str) -> list[models.AudioPrompt]:
    with db.unit_of_work() as session:
        rows = session.exec(select(models.AudioPrompt).where(models.AudioPrompt.clip == clip)).all()
        for row in rows:
            session.expunge(row)
        return rows


def test_record_with_the_microphone_save_and_hear_it(open_page, staff, db):
    page = open_page(LAPTOP)
    signed_in(page)
    open_section(page, "Recording studio")
    clip = page.locator("#studio-current").get_attribute("data-clip")
    recorded = page.locator("#cover-fr .count-to_review")
    expect(recorded).to_have_text("0")
    recorder = page.locator("#studio-current [data-recorder]")
    expect(recorder).to_be_visible()  # the script found MediaRecorder and showed it
    shot(page, "studio-before")

    record = recorder.get_by_role("button", name="Record", exact=True)
    stop = recorder.get_by_role("button", name="Stop")
    save = recorder.get_by_role("button", name="Save this recording")
    expect(save).to_be_disabled()
    record.click()
    expect(recorder.locator("[data-status]")).to_contain_text("Recording:")
    page.wait_for_timeout(1500)
    stop.click()
    expect(recorder.locator("[data-status]")).to_contain_text("Recorded:")
    recorder.get_by_role("button", name="Listen back").click()  # Web Audio: a script error would fail the test
    expect(save).to_be_enabled()
    save.click()

    page.wait_for_url(re.compile(r"/admin/studio\?lang=fr&after=" + re.escape(clip)))
    expect(page.locator(".flash.ok")).to_have_text(
        "Saved: revision 1 of this prompt now plays on calls. Another editor must listen to it and approve it.")
    expect(recorded).to_have_text("1")  # coverage went up: recorded, to review
    assert page.locator("#studio-current").get_attribute("data-clip") != clip  # on to the next one
    shot(page, "studio-after")

    [row] = revisions_of(db, clip)
    assert (row.revision, row.source) == (1, prompts.RECORDED)

    page.goto(f"/admin/studio/clips/{clip}")
    revision = page.locator("#revision-1")
    expect(revision).to_contain_text("recorded in the browser")
    expect(revision).to_contain_text("editor@sugu.test")
    expect(page.locator(".studio-now")).to_contain_text("recorded, to review")
    expect(page.locator("#review-own")).to_be_visible()  # nobody reviews their own recording
    src = revision.locator("audio").get_attribute("src")
    assert src == f"/voice/audio/{row.audio_hash}.wav"
    shot(page, "clip")

    # What a call plays: a telephone WAV, that the browser's own decoder reads too.
    served = page.request.get(src)
    assert served.status == 200 and served.headers["content-type"] == audio.PLAY_CONTENT_TYPE
    body = served.body()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    with wave.open(io.BytesIO(body), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert w.getnframes() > 0.2 * 8000
    seconds = page.evaluate("""async (src) => {
        const bytes = await (await fetch(src)).arrayBuffer();
        const decoded = await new OfflineAudioContext(1, 8000, 8000).decodeAudioData(bytes);
        return decoded.duration; }""", src)
    assert seconds > 0.2

    phone = open_page(PHONE_SMALL)
    signed_in(phone)
    for path, name in ((f"/admin/studio?lang=fr&after={clip}", "studio-after"), (f"/admin/studio/clips/{clip}", "clip")):
        phone.goto(path)
        assert fits_the_width(phone), path
        expect(phone.locator("[data-recorder]").first).to_be_visible()
        shot(phone, name)

    # Another editor, on a phone, listens to it and approves it.
    with db.unit_of_work() as session:
        auth.create_staff(session, email=REVIEWER, password=PASSWORD, role="editor")
    other = open_page(PHONE_SMALL)
    other.goto("/admin/login")
    sign_in(other, REVIEWER)
    other.wait_for_url(re.compile(r"/admin/?$"))
    other.goto(f"/admin/studio/clips/{clip}")
    review = other.locator("#review")
    expect(review).to_contain_text("recorded by editor@sugu.test")
    assert review.locator("audio").get_attribute("src") == src
    assert fits_the_width(other)
    shot(other, "review")
    review.get_by_role("button", name="Approve this recording").click()
    expect(other.locator(".flash.ok")).to_have_text("Revision 1 approved.")
    expect(other.locator(".studio-now")).to_contain_text("recorded and reviewed")
    expect(other.locator("#revision-1")).to_contain_text(f"approved by {REVIEWER}")
    [row] = revisions_of(db, clip)
    assert (row.review, row.reviewed_by) == ("approved", REVIEWER)


def test_the_upload_form_works_without_script(open_page, staff, db):
    page = open_page(PHONE_SMALL, script=False)
    signed_in(page)
    page.goto("/admin/studio?lang=bm")
    clip = page.locator("#studio-current").get_attribute("data-clip")
    expect(page.locator("[data-recorder]")).to_be_hidden()  # nothing to press that would not work
    field = page.get_by_label("Or upload a file (wav, mp3, ogg, m4a, webm)")

    field.set_input_files({"name": "silence.wav", "mimeType": "audio/wav", "buffer": wav(silence(1.0))})
    page.get_by_role("button", name="Upload this file").click()
    expect(page.locator("#f-audio-error")).to_have_text(
        "Nothing can be heard in this recording: check the microphone and record again.")
    assert page.locator("#studio-current").get_attribute("data-clip") == clip
    assert revisions_of(db, clip) == []
    assert fits_the_width(page)
    shot(page, "studio-refused")

    page.get_by_label("Or upload a file (wav, mp3, ogg, m4a, webm)").set_input_files(
        {"name": "prompt.wav", "mimeType": "audio/wav", "buffer": wav(silence(0.3) + tone(1.0))})
    page.get_by_role("button", name="Upload this file").click()
    expect(page.locator(".flash.ok")).to_contain_text("Saved: revision 1 of this prompt now plays on calls.")
    [row] = revisions_of(db, clip)
    assert row.source == prompts.UPLOADED


def test_the_studio_pages_in_french_at_phone_and_laptop_width(chromium, french_console, db, problems):
    """The console walk-through's checks (tests/e2e/test_console_walkthrough.py) on the studio's
    pages: French only, no sideways scrolling, under 100 kB and 10 requests on a cold load."""
    url, crop, _market = french_console
    with db.unit_of_work() as session:
        telephone = audio.normalise(wav(tone(0.5)), max_seconds=60)
        prompts.save_prompt(session, clip=f"fr.crop.{crop.id}", language="fr", data=telephone, source="recorded",
                            text=crop.name_fr, staff_id=None)
        prompts.save_prompt(session, clip="bm.num.5", language="bm", data=telephone, source="synthetic",
                            text="duuru", staff_id=None)
    pages = [
        ("studio", "/admin/studio"), ("studio-bm", "/admin/studio?lang=bm"),
        ("studio-synthetic", "/admin/studio?lang=bm&clip=bm.num.5"),
        ("clips", "/admin/studio/clips?lang=bm"), ("clips-filtered", "/admin/studio/clips?lang=fr&show=todo&kind=crop"),
        ("clip-borrowed", f"/admin/studio/clips/bm.crop.{crop.id}"), ("clip-recorded", f"/admin/studio/clips/fr.crop.{crop.id}"),
        ("dashboard", "/admin/"),
    ]
    findings = []
    for viewport in (PHONE_SMALL, LAPTOP):
        context, page = _signed_in_context(chromium, url, viewport)
        problems.watch(page)
        state = context.storage_state()
        for name, path in pages:
            response = page.goto(path)
            where = f"{name} at {viewport['width']} px"
            if response.status >= 400:
                findings.append(f"{where}: HTTP {response.status}")
            if not fits_the_width(page):
                findings.append(f"{where}: scrolls sideways ({page.evaluate('document.documentElement.scrollWidth')} px)")
            text = _console_text(page)
            english = sorted({m.group(0) for m in ENGLISH.finditer(text)})
            if english:
                findings.append(f"{where}: English words {english[:8]}")
            codes = sorted({m.group(0) for m in RAW_CODES.finditer(text)})
            if codes:
                findings.append(f"{where}: raw codes {codes[:8]}")
            shot(page, f"fr-{name}")
            if viewport is PHONE_SMALL:
                size, requests = _cold_load(chromium, url, path, state)
                if size >= MAX_BYTES or requests >= MAX_REQUESTS:
                    findings.append(f"{path}: {size} bytes in {requests} requests on a cold load")
        context.close()
    assert not findings, "\n".join(findings)
