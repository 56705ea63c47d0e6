"""The console's recording studio (issue 16 items 4 and 6): coverage per language, the next prompt
to record, uploads of every accepted kind checked, normalised and stored as revisions, refusals
that store nothing and say why beside the field, the French recording a Bambara word borrows,
synthetic prompts flagged, the review of recordings by another editor, buyers' names, and the
dashboard's voice panel.

Every upload is made here: WAVs with the `wave` module, the others encoded with PyAV
(tests/test_voice_audio.py's generators)."""

from __future__ import annotations

import hashlib
import html
import io
import re
import wave

import pytest
from sqlmodel import col, func, select, update

from gateway.admin import studio
from gateway.admin.studio import ClipState
from gateway.app import create_app
from gateway.data import models
from gateway.data.dataview import SqlDataView
from gateway.voice import prompts
from menus.voice import Clip, inventory
from messages import default_catalog
from messages import staff as staff_text
from messages.voice import audio
from tests.conftest import NOW
from tests.test_admin import ROLES, Browser, browser, clock, staff  # noqa: F401 - fixtures
from tests.test_voice_audio import encoded, silence, tone, wav

pytestmark = pytest.mark.db

# A small body limit for this module, so that "too big" costs a megabyte, not five.
MAX_UPLOAD = 1_200_000
LIMIT = MAX_UPLOAD - studio.FORM_ALLOWANCE_BYTES


@pytest.fixture
def app(settings, clock):  # noqa: F811 - this module's app: test_admin's browser fixture uses it
    return create_app(settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD}), clock=clock)


@pytest.fixture
def french(settings, clock, staff):  # noqa: F811
    """An editor signed in to a console that speaks French (the default outside tests)."""
    b = Browser(create_app(settings.model_copy(update={"console_language": "fr", "max_upload_bytes": MAX_UPLOAD}),
                           clock=clock))
    assert b.login("editor@sugu.test").status_code == 303
    yield b
    b.close()


@pytest.fixture
def ids(db):
    """Clip ids of the seeded data: crops by code."""
    with db.unit_of_work() as session:
        return {c.code: c.id for c in session.exec(select(models.Crop))}


def clips(db, lang: str) -> list[Clip]:
    with db.unit_of_work() as session:
        regions = studio.active_regions(session)
        return inventory(default_catalog(), lang, SqlDataView(session), regions)


def telephone(seconds: float = 0.5) -> bytes:
    return audio.normalise(wav(tone(seconds, rate=8000), rate=8000), max_seconds=60)


def store(db, clip: str, source: str, text: str = "", review: str = "", staff_id: int | None = None,
          seconds: float = 0.5) -> models.AudioPrompt:
    """A revision of `clip`; `review` ("approved", "rejected") decided by someone else at once."""
    with db.unit_of_work() as session:
        row = prompts.save_prompt(session, clip=clip, language=clip.split(".")[0], data=telephone(seconds),
                                  source=source, text=text or clip, staff_id=staff_id)
        if review:
            row.review, row.reviewed_by, row.reviewed_at = review, "reviewer@sugu.test", row.created_at
            session.add(row)
            session.flush()
        session.expunge(row)
        return row


def count(db, table, *where) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(table).where(*where)).one()


def revisions(db, clip: str) -> list[models.AudioPrompt]:
    with db.unit_of_work() as session:
        rows = session.exec(select(models.AudioPrompt).where(models.AudioPrompt.clip == clip)
                            .order_by(models.AudioPrompt.revision)).all()
        for row in rows:
            session.expunge(row)
        return rows


def upload(b: Browser, clip: str, data: bytes, content_type: str, *, name: str = "prompt.bin", json_answer: bool = False,
           **fields):
    headers = {"Accept": "application/json"} if json_answer else {}
    return b.post(f"/admin/studio/clips/{clip}", {"back": "studio", **fields},
                  files={"audio": (name, data, content_type)}, headers=headers)


def visible(html: str) -> str:
    main = html.split("<main", 1)[-1]
    main = re.sub(r"<(script|style)\b.*?</\1>", " ", main, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)).replace("&#39;", "'").replace("&amp;", "&")


def cover(html: str, lang: str) -> dict[str, int]:
    """The studio's coverage card of one language: {status: count}."""
    card = html.split(f'id="cover-{lang}"', 1)[1].split('<div class="card"', 1)[0]
    return {status: int(n) for status, n in re.findall(r'<b class="count-(\w+)">(\d+)</b>', card)}


def dashboard_row(html: str, lang: str) -> list[str]:
    row = html.split(f'<tr id="voice-{lang}">', 1)[1].split("</tr>", 1)[0]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<td class="num"[^>]*>(.*?)</td>', row)]


# -- who may use it -----------------------------------------------------------------------------------------

EDITORS = {"admin", "editor"}
PAGES = [
    "/admin/studio",
    "/admin/studio?lang=bm",
    "/admin/studio?lang=bm&after=bm.num.5",
    "/admin/studio/clips",
    "/admin/studio/clips?lang=bm&show=todo&kind=num&q=ni&page=2",
    "/admin/studio/clips/fr.crop.1",
    "/admin/studio/clips/bm.text.main.title.0",
]


@pytest.mark.parametrize("path", PAGES)
def test_studio_pages_are_for_editors(browser, path):  # noqa: F811
    assert browser().get(path).status_code == 303  # anonymous: to the sign-in page
    for role in ROLES:
        response = browser(role).get(path)
        assert response.status_code == (200 if role in EDITORS else 403), (role, response.text[:300])


def test_saving_needs_an_editor_and_the_form_token(browser, db):  # noqa: F811
    data = wav(tone(1.0))
    assert browser().post("/admin/studio/clips/fr.crop.1", csrf=False, files={"audio": ("a.wav", data, "audio/wav")}
                          ).status_code in (303, 403)
    reporter = browser("reporter")
    assert upload(reporter, "fr.crop.1", data, "audio/wav").status_code == 403
    editor = browser("editor")
    for token in (None, "forged"):
        fields = {} if token is None else {"csrf_token": token}
        response = editor.post("/admin/studio/clips/fr.crop.1", fields, csrf=False,
                               files={"audio": ("a.wav", data, "audio/wav")})
        assert response.status_code == 403
    first = revisions(db, "fr.crop.1")
    restore = editor.post("/admin/studio/clips/fr.crop.1/restore/1", csrf=False)
    assert restore.status_code == 403
    assert first == [] and count(db, models.AudioPrompt) == 0 and count(db, models.AudioBlob) == 0


@pytest.mark.parametrize("clip", ["fr.crop.999", "xx.crop.1", "fr.say.0123456789abcdef0123", "fr", "bm.num.1000000000"])
def test_an_unknown_clip_is_not_found_and_nothing_is_stored(browser, db, clip):  # noqa: F811
    b = browser("editor")
    assert b.get(f"/admin/studio/clips/{clip}").status_code == 404
    assert upload(b, clip, wav(tone(1.0)), "audio/wav").status_code == 404
    assert count(db, models.AudioPrompt) == 0 and count(db, models.AudioBlob) == 0


# -- coverage ----------------------------------------------------------------------------------------------

# (name, revisions to store as (clip, source[, review]) in order, expected {lang: {status: n}};
# "missing" is the rest). A staff recording waits for review ("to_review") until another editor
# approves it ("reviewed"); a rejected one counts as nothing (what played before it plays again).
# Bambara words and names borrow a French recording, never a French synthetic one, and never a
# number (money is counted in 5-franc units).
COVERAGE = [
    ("nothing yet", [], {"fr": {}, "bm": {}}),
    ("a French crop recorded", [("fr.crop.1", "recorded")], {"fr": {"to_review": 1}, "bm": {"borrowed": 1}}),
    ("a French crop recorded and approved", [("fr.crop.1", "recorded", "approved")],
     {"fr": {"reviewed": 1}, "bm": {"borrowed": 1}}),
    ("a French number uploaded", [("fr.num.70", "uploaded")], {"fr": {"to_review": 1}, "bm": {}}),
    ("synthetic in both", [("fr.crop.2", "synthetic"), ("bm.crop.2", "synthetic")],
     {"fr": {"synthetic": 1}, "bm": {"synthetic": 1}}),
    ("a French synthetic lends nothing", [("fr.crop.2", "synthetic")], {"fr": {"synthetic": 1}, "bm": {}}),
    ("Bambara's own recording first", [("fr.crop.1", "recorded", "approved"), ("bm.crop.1", "recorded")],
     {"fr": {"reviewed": 1}, "bm": {"to_review": 1}}),
    ("a French recording over a Bambara synthetic", [("fr.crop.1", "recorded"), ("bm.crop.1", "synthetic")],
     {"fr": {"to_review": 1}, "bm": {"borrowed": 1}}),
    ("the newest revision counts", [("fr.market.1", "recorded"), ("fr.market.1", "synthetic")],
     {"fr": {"synthetic": 1}, "bm": {}}),
    ("a newer recording waits for its own review", [("fr.market.1", "recorded", "approved"), ("fr.market.1", "uploaded")],
     {"fr": {"to_review": 1}, "bm": {"borrowed": 1}}),
    ("a rejected recording gives way to the approved one before it",
     [("fr.market.1", "recorded", "approved"), ("fr.market.1", "uploaded", "rejected")], {"fr": {"reviewed": 1}, "bm": {"borrowed": 1}}),
    ("a rejected recording gives way to the synthetic voice", [("fr.market.1", "synthetic"), ("fr.market.1", "recorded", "rejected")],
     {"fr": {"synthetic": 1}, "bm": {}}),
    ("a rejected recording alone leaves nothing", [("fr.crop.1", "recorded", "rejected")], {"fr": {}, "bm": {}}),
    ("menu text, month and region", [("fr.text.main.title.0", "recorded"), ("bm.month.11", "uploaded", "approved"),
                                     ("fr.region.sikasso", "recorded")],
     {"fr": {"to_review": 2}, "bm": {"reviewed": 1, "borrowed": 2}}),
]
RECORDED_STATUSES = ("reviewed", "to_review", "borrowed", "synthetic")


@pytest.mark.parametrize("name, stored, expected", COVERAGE, ids=[c[0] for c in COVERAGE])
def test_coverage_per_language_on_the_studio_and_the_dashboard(browser, db, name, stored, expected):  # noqa: F811
    for clip, source, *review in stored:
        store(db, clip, source, review=review[0] if review else "")
    b = browser("editor")
    page = b.get("/admin/studio").text
    board = b.get("/admin/").text
    for lang in ("fr", "bm"):
        total = len(clips(db, lang))
        want = {s: expected[lang].get(s, 0) for s in RECORDED_STATUSES}
        want["missing"] = total - sum(want.values())
        shown = cover(page, lang)
        if lang == "fr":
            assert "borrowed" not in shown  # French borrows from nobody
            shown["borrowed"] = 0
        assert shown == want, lang
        assert f"{total} prompts" in page.split(f'id="cover-{lang}"', 1)[1]
        row = dashboard_row(board, lang)
        assert row[0].startswith(str(want["reviewed"]))
        assert row[1:] == [str(want["to_review"]), str(want["borrowed"]) if lang == "bm" else "—",
                           str(want["synthetic"]), str(want["missing"]), str(total)]


def test_the_dashboard_panel_links_editors_to_the_studio(browser):  # noqa: F811
    for role in ROLES:
        page = browser(role).get("/admin/").text
        assert '<h2 id="voice-prompts">Voice prompts</h2>' in page
        assert ('href="/admin/studio"' in page) == (role in EDITORS), role


def test_the_dashboard_panel_in_french(french):
    page = french.get("/admin/").text.replace("&#39;", "'")
    for header in ("Prompts vocaux", "Enregistrés et vérifiés", "Enregistrés, à vérifier", "Emprunté à une autre langue",
                   "Synthèse seulement", "Rien encore"):
        assert f">{header}</" in page, header
    assert "Ouvrir le studio d'enregistrement" in page


# -- the next prompt to record --------------------------------------------------------------------------------


def _states(*statuses: str) -> list[ClipState]:
    return [ClipState(Clip(f"fr.num.{i}", str(i)), status, None, None, None) for i, status in enumerate(statuses)]


@pytest.mark.parametrize(
    "statuses, after, expected",
    [
        pytest.param(("missing", "missing"), "", "fr.num.0", id="the-first"),
        pytest.param(("reviewed", "synthetic", "missing"), "", "fr.num.1", id="recorded-ones-are-passed"),
        pytest.param(("to_review", "missing"), "", "fr.num.1", id="one-waiting-for-review-is-recorded"),
        pytest.param(("missing", "reviewed", "borrowed"), "fr.num.0", "fr.num.2", id="skip-past-recorded"),
        pytest.param(("missing", "synthetic", "to_review"), "fr.num.1", "fr.num.0", id="wraps-to-the-start"),
        pytest.param(("missing", "missing"), "fr.num.99", "fr.num.0", id="unknown-after-starts-over"),
        pytest.param(("reviewed", "to_review"), "", None, id="all-recorded"),
    ],
)
def test_next_to_record(statuses, after, expected):
    found = studio._next_to_record(_states(*statuses), after)
    assert (found.id if found else None) == expected


def current_clip(html: str) -> str:
    return re.search(r'id="studio-current" data-clip="([^"]+)"', html).group(1)


def test_the_studio_offers_the_next_missing_prompt_and_skips(browser, db):  # noqa: F811
    b = browser("editor")
    order = [c.id for c in clips(db, "bm")]
    page = b.get("/admin/studio?lang=bm").text
    assert current_clip(page) == order[0]
    first = next(c for c in clips(db, "bm") if c.id == order[0])
    assert f'<p class="studio-words" lang="bm">{first.text}</p>' in page
    assert f'href="/admin/studio?lang=bm&amp;after={order[0]}#next"' in page  # Skip
    assert current_clip(b.get(f"/admin/studio?lang=bm&after={order[0]}").text) == order[1]
    # Saving goes on to the one after the saved clip.
    saved = upload(b, order[1], wav(tone(1.0)), "audio/wav")
    assert saved.status_code == 303 and saved.headers["location"] == f"/admin/studio?lang=bm&after={order[1]}"
    assert current_clip(b.get(saved.headers["location"]).text) == order[2]
    # A clip can be chosen (from the list), recorded or not.
    assert current_clip(b.get(f"/admin/studio?lang=bm&clip={order[1]}").text) == order[1]


@pytest.mark.parametrize(
    "clip, kind_label, where",
    [
        ("fr.text.main.title.0", "menu text", "main menu"),
        ("fr.text.voice.help.0", "menu text", "said only on calls"),
        ("fr.crop.1", "crop name", "said wherever the menus name it"),
        ("bm.market.5", "market name", "said wherever the menus name it"),
        ("fr.region.sikasso", "region name", "said wherever the menus name it"),
        ("fr.unit.kg", "unit", "said wherever the menus name it"),
        ("bm.kind.wholesale", "price kind", "said wherever the menus name it"),
        ("fr.buyer.lawal-int", "buyer name", "said wherever the menus name it"),
        ("bm.buyer.madougou-agro-business", "buyer name", "said wherever the menus name it"),
        ("fr.num.71", "number", "joined with other clips"),
        ("bm.month.11", "month", "joined with other clips"),
        ("fr.scale.1000", "hundred, thousand, million", "joined with other clips"),
        ("bm.word.and", "word said with numbers", "joined with other clips"),
    ],
)
def test_a_prompt_says_what_it_is_and_where_it_is_used(browser, clip, kind_label, where):  # noqa: F811
    page = browser("editor").get(f"/admin/studio?clip={clip}&lang={clip[:2]}").text
    assert current_clip(page) == clip
    said = visible(page.split('id="studio-current"', 1)[1])
    assert kind_label in said and where in said


# -- uploads ------------------------------------------------------------------------------------------------------

SPEECH_44K = silence(0.3) + tone(1.0) + silence(0.3)
SPEECH_48K = silence(0.3, rate=48_000) + tone(1.0, rate=48_000) + silence(0.3, rate=48_000)

# (name, make the file, the type the browser declares, the file's name)
UPLOADS = [
    ("wav mono 44.1 kHz", lambda: wav(SPEECH_44K), "audio/wav", "a.wav"),
    ("wav stereo 48 kHz as audio/x-wav", lambda: wav(silence(0.3, rate=48_000, channels=2)
                                                      + tone(1.0, rate=48_000, channels=2), rate=48_000, channels=2),
     "audio/x-wav", "a.wav"),
    ("mp3", lambda: encoded("mp3", "libmp3lame", SPEECH_44K, rate=44_100), "audio/mpeg", "a.mp3"),
    ("ogg/opus", lambda: encoded("ogg", "libopus", SPEECH_48K, rate=48_000), "audio/ogg", "a.ogg"),
    ("webm/opus as MediaRecorder sends it", lambda: encoded("webm", "libopus", SPEECH_48K, rate=48_000),
     "audio/webm;codecs=opus", "recording.webm"),
    ("m4a/aac", lambda: encoded("ipod", "aac", SPEECH_44K, rate=44_100), "audio/mp4", "a.m4a"),
    ("m4a/aac as audio/x-m4a", lambda: encoded("ipod", "aac", SPEECH_44K, rate=44_100), "audio/x-m4a", "a.m4a"),
]


@pytest.mark.parametrize("name, make, content_type, filename", UPLOADS, ids=[u[0] for u in UPLOADS])
def test_an_upload_of_each_kind_becomes_a_telephone_revision(browser, db, ids, name, make, content_type, filename):  # noqa: F811
    clip = f"fr.crop.{ids['tomato']}"
    b = browser("editor")
    response = upload(b, clip, make(), content_type, name=filename, text="words made up in the form")
    assert response.status_code == 303, response.text[-600:]
    [row] = revisions(db, clip)
    assert (row.revision, row.source, row.language) == (1, "uploaded", "fr")
    assert row.text == "Tomate"  # the inventory's words, never the form's
    with db.unit_of_work() as session:
        editor = session.exec(select(models.StaffUser).where(models.StaffUser.email == "editor@sugu.test")).one()
        [entry] = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "voice_prompt")).all()
        assert row.staff_id == editor.id
        assert (entry.action, entry.entity_id, entry.staff_email) == ("create", clip, "editor@sugu.test")
        assert entry.after["revision"] == 1 and entry.after["audio_hash"] == row.audio_hash
    served = b.client.get(f"/voice/audio/{row.audio_hash}.wav")
    assert served.status_code == 200 and served.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(served.content), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        assert 0.9 <= w.getnframes() / 8000 <= 1.3  # the silence around the tone cut
    page = b.get(response.headers["location"]).text
    assert "Saved: revision 1 of this prompt now plays on calls. Another editor must listen to it and approve it." in page
    assert cover(page, "fr")["to_review"] == 1 and row.review == "pending"


def test_the_recorder_posts_its_recording_and_gets_json(browser, db):  # noqa: F811
    b = browser("editor")
    data = encoded("webm", "libopus", SPEECH_48K, rate=48_000)
    response = upload(b, "bm.num.5", data, "audio/webm;codecs=opus", name="recording.webm", json_answer=True,
                      source="recorded")
    assert response.status_code == 200
    assert response.json() == {"next": "/admin/studio?lang=bm&after=bm.num.5", "revision": 1}
    [row] = revisions(db, "bm.num.5")
    assert row.source == "recorded" and row.text == "duuru"


# (name, make the file, declared type, the reason said). Nothing is stored for any of them.
REFUSALS = [
    ("garbage", lambda: b"this is not audio at all " * 40, "audio/wav", "unreadable"),
    ("empty", lambda: b"", "audio/wav", "empty"),
    ("a wav header over junk", lambda: b"RIFF\xff\xff\xff\xffWAVEjunk" + b"\x01\x02" * 500, "audio/wav", "unreadable"),
    ("too long (61 s of sound)", lambda: wav(tone(61.0, rate=8000), rate=8000), "audio/wav", "too_long"),
    ("silent", lambda: wav(silence(2.0)), "audio/wav", "silent"),
    ("a wav declared as mp3", lambda: wav(SPEECH_44K), "audio/mpeg", "type"),
    ("an mp3 declared as text", lambda: encoded("mp3", "libmp3lame", SPEECH_44K, rate=44_100), "text/plain", "type"),
    ("an ogg declared as nothing in particular", lambda: encoded("ogg", "libopus", SPEECH_48K, rate=48_000),
     "application/octet-stream", "type"),
    ("too big for the studio", lambda: wav(tone((LIMIT + 2000) / 16_000, rate=8000), rate=8000), "audio/wav", "too_big"),
]
REASON_TEXTS = {
    "unreadable": "This is not audio that can be read",
    "empty": "The file is empty",
    "too_long": "Longer than 60 seconds once the silence around it is cut",
    "silent": "Nothing can be heard in this recording",
    "type": "The file says it is",
    "too_big": "The file is too large",
}


@pytest.mark.parametrize("answer", ["page", "clip page", "json"])
@pytest.mark.parametrize("name, make, content_type, reason", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_bad_file_is_refused_with_its_reason_and_nothing_is_stored(browser, db, name, make, content_type, reason,  # noqa: F811
                                                                    answer):
    b = browser("editor")
    data = make()
    assert len(data) < MAX_UPLOAD - 4000  # within the body limit: the studio itself answers
    response = upload(b, "fr.crop.2", data, content_type, json_answer=answer == "json",
                      back="clip" if answer == "clip page" else "studio")
    assert response.status_code == 400
    if answer == "json":
        body = response.json()
        assert body["reason"] == reason and body["error"].startswith(REASON_TEXTS[reason])
    else:
        # Beside the field, the page as it was (the studio on the same prompt, or the prompt's page).
        error = re.search(r'<p class="field-error" id="f-audio-error" data-reason="(\w+)">([^<]*)</p>', response.text)
        assert error and error.group(1) == reason and error.group(2).startswith(REASON_TEXTS[reason])
        assert 'aria-invalid="true" aria-describedby="f-audio-error"' in response.text
        if answer == "page":
            assert current_clip(response.text) == "fr.crop.2"
        else:
            assert "<h1>Voice prompt <code>fr.crop.2</code></h1>" in response.text
    assert count(db, models.AudioPrompt) == 0 and count(db, models.AudioBlob) == 0
    assert count(db, models.AuditLog, models.AuditLog.entity == "voice_prompt") == 0


def test_a_body_over_the_console_limit_is_refused_before_the_studio(browser, db):  # noqa: F811
    response = upload(browser("editor"), "fr.crop.2", wav(tone(MAX_UPLOAD / 16_000, rate=8000), rate=8000), "audio/wav")
    assert response.status_code == 413
    assert count(db, models.AudioPrompt) == 0 and count(db, models.AudioBlob) == 0


def test_a_refusal_in_french(french, db):
    response = upload(french, "fr.crop.2", b"rien de sonore " * 40, "audio/wav")
    assert response.status_code == 400
    assert "Ce n'est pas un son lisible : envoyez un fichier wav, mp3, ogg, m4a ou webm." in response.text.replace("&#39;", "'")
    too_big = upload(french, "fr.crop.2", wav(tone((LIMIT + 2000) / 16_000, rate=8000), rate=8000), "audio/wav")
    assert "Le fichier est trop lourd (1,2 Mo ; 1,2 Mo au plus)" in too_big.text
    assert count(db, models.AudioPrompt) == 0


def test_a_missing_file_is_asked_for(browser, db):  # noqa: F811
    response = browser("editor").post("/admin/studio/clips/fr.crop.2", {"back": "studio"})
    assert response.status_code == 400 and 'data-reason="missing"' in response.text
    assert "Choose a file to upload, or record one." in response.text


def test_a_nul_in_a_text_field_is_refused_and_other_uploads_keep_the_guard(browser, db):  # noqa: F811
    b = browser("editor")
    response = upload(b, "fr.crop.2", wav(SPEECH_44K), "audio/wav", back="stu\x00dio")
    assert response.status_code == 400 and count(db, models.AudioPrompt) == 0
    # The console's other multipart forms are still scanned whole (a CSV with a NUL).
    other = b.post("/admin/prices/import", files={"file": ("p.csv", b"a,b\x00\n", "text/csv")})
    assert other.status_code == 400 and "NUL" in other.text


# -- revisions, borrowing, synthetic ---------------------------------------------------------------------------------


def test_revisions_are_listed_and_an_older_one_can_play_again(browser, db, ids):  # noqa: F811
    clip = f"fr.crop.{ids['onion']}"
    b = browser("editor")
    assert upload(b, clip, wav(SPEECH_44K), "audio/wav", back="clip").headers["location"] == f"/admin/studio/clips/{clip}"
    second = upload(b, clip, encoded("mp3", "libmp3lame", SPEECH_44K, rate=44_100), "audio/mpeg", back="clip")
    page = b.get(second.headers["location"]).text
    assert "Saved: revision 2 of this prompt now plays on calls." in page
    for revision in (1, 2):
        row = page.split(f'<tr id="revision-{revision}">', 1)[1].split("</tr>", 1)[0]
        assert "editor@sugu.test" in row and "uploaded file" in row and "28/11/2026 10:00" in row
        assert re.search(r'<audio class="studio-player" controls preload="none" src="/voice/audio/[0-9a-f]{64}\.wav">', row)
        assert ("Play this one again" in row) == (revision == 1)
    first, newest = revisions(db, clip)
    restored = b.post(f"/admin/studio/clips/{clip}/restore/{first.id}")
    assert restored.status_code == 303
    assert "Revision 1 plays again." in b.get(restored.headers["location"]).text
    third = revisions(db, clip)[-1]
    assert (third.revision, third.audio_hash, third.source) == (3, first.audio_hash, "uploaded")
    with db.unit_of_work() as session:
        actions = session.exec(select(models.AuditLog.action).where(models.AuditLog.entity == "voice_prompt")
                               .order_by(models.AuditLog.id)).all()
    assert actions == ["create", "create", "edit"]
    # Another clip's revision cannot be restored here.
    assert b.post(f"/admin/studio/clips/fr.crop.{ids['tomato']}/restore/{first.id}").status_code == 404


def test_a_bambara_name_borrows_the_french_recording_and_says_so(browser, french, db, ids):  # noqa: F811
    crop = ids["tomato"]
    b = browser("editor")
    before = b.get(f"/admin/studio/clips/bm.crop.{crop}").text
    assert "nothing yet" in visible(before) and "French recording borrowed" not in before
    assert upload(b, f"fr.crop.{crop}", wav(SPEECH_44K), "audio/wav").status_code == 303
    [french_row] = revisions(db, f"fr.crop.{crop}")
    page = b.get(f"/admin/studio/clips/bm.crop.{crop}").text
    now = page.split('class="studio-now"', 1)[1].split("</div>", 1)[0]
    assert "French recording borrowed" in now
    assert "No Bambara recording yet: calls in Bambara play the French recording of this word." in visible(now)
    assert f'href="/admin/studio/clips/fr.crop.{crop}"' in now
    assert f'src="/voice/audio/{french_row.audio_hash}.wav"' in now
    listed = b.get("/admin/studio/clips?lang=bm&show=borrowed").text
    assert re.findall(r'<tr id="clip-([^"]+)">', listed) == [f"bm.crop.{crop}"]
    assert "enregistrement en français emprunté" in french.get(f"/admin/studio/clips/bm.crop.{crop}").text
    # A number is never borrowed: Bambara counts money in 5-franc units.
    assert upload(b, "fr.num.70", wav(SPEECH_44K), "audio/wav").status_code == 303
    number = b.get("/admin/studio/clips/bm.num.70").text
    assert "nothing yet" in visible(number.split('class="studio-now"', 1)[1].split("</div>", 1)[0])


@pytest.mark.parametrize("fallback, recorded, borrowed, label", [
    pytest.param("fr", ["fr"], "fr", "enregistrement en français emprunté", id="french"),
    pytest.param("bm", ["bm", "fr"], "bm", "enregistrement en bambara emprunté", id="bambara-nearest"),
    pytest.param("bm", ["fr"], "fr", "enregistrement en français emprunté", id="bambara-then-french"),
    pytest.param("ff", ["ff", "fr"], "ff", "enregistrement en peul emprunté", id="a-staff-added-language-by-its-name"),
])
def test_a_borrowed_recording_names_the_language_it_is_borrowed_from(french, db, ids, fallback, recorded, borrowed,
                                                                     label):
    # Songhoy falls back on `fallback` (Fulfulde itself falling back on French).
    with db.unit_of_work() as session:
        for code, name, name_fr, to in (("ff", "Fulfulde", "peul", "fr"), ("ses", "Koyraboro senni", "songhaï", fallback)):
            session.add(models.Language(code=code, name=name, name_fr=name_fr, written=False, voice=True,
                                        enabled=True, fallback=to, sort_order=10))
    crop = ids["tomato"]
    for lang in recorded:
        store(db, f"{lang}.crop.{crop}", prompts.RECORDED)
    page = french.get(f"/admin/studio/clips/ses.crop.{crop}").text
    now = html.unescape(page.split('class="studio-now"', 1)[1].split("</div>", 1)[0])
    assert f'data-language="{borrowed}">{label}</span>' in now
    assert f'href="/admin/studio/clips/{borrowed}.crop.{crop}"' in now
    # The list says it per clip too; its filter names no language (each clip may borrow another's).
    listed = html.unescape(french.get("/admin/studio/clips?lang=ses&show=borrowed").text)
    assert label in listed and "enregistrement d'une autre langue emprunté" in listed


def test_a_synthetic_prompt_is_flagged_record_me(browser, french, db, ids):  # noqa: F811
    clip = f"fr.crop.{ids['onion']}"
    row = store(db, clip, "synthetic", text="Oignon")
    page = browser("editor").get(f"/admin/studio/clips/{clip}").text
    assert "synthetic — record me" in page and f'src="/voice/audio/{row.audio_hash}.wav"' in page
    assert "synthetic voice" in page.split('<tr id="revision-1">', 1)[1] and "the system" in page
    french_page = french.get(f"/admin/studio/clips/{clip}").text
    assert "synthétique — à enregistrer" in french_page and "voix de synthèse" in french_page
    studio_page = french.get(f"/admin/studio?clip={clip}").text
    assert "synthétique — à enregistrer" in studio_page


def test_a_recording_of_other_words_is_flagged_when_the_text_changes(browser, db, ids):  # noqa: F811
    clip = f"fr.crop.{ids['onion']}"
    store(db, clip, "recorded", text="Oignons rouges")
    page = browser("editor").get(f"/admin/studio/clips/{clip}").text
    assert "words changed since recorded" in page and "Words read:" in page


# -- review: another editor listens, approves or rejects ------------------------------------------------------------------


def staff_id(db, email: str) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(models.StaffUser.id).where(models.StaffUser.email == email)).one()


def review(b: Browser, clip: str, revision_id: int, verdict: str, **fields):
    return b.post(f"/admin/studio/clips/{clip}/review/{revision_id}", {"verdict": verdict, **fields})


def review_audits(db) -> list[models.AuditLog]:
    with db.unit_of_work() as session:
        rows = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "voice_prompt",
                                                          col(models.AuditLog.action).in_(["approve", "reject"]))).all()
        for row in rows:
            session.expunge(row)
        return rows


# (name, who reviews (a role), the verdict posted, the answer, the review afterwards). The
# recording is the editor's.
REVIEWS = [
    ("another editor approves", "editor2", "approve", 303, "approved"),
    ("an administrator approves", "admin", "approve", 303, "approved"),
    ("another editor rejects", "editor2", "reject", 303, "rejected"),
    ("nobody approves their own recording", "editor", "approve", 403, "pending"),
    ("nobody rejects their own either", "editor", "reject", 403, "pending"),
    ("a reporter may not review", "reporter", "approve", 403, "pending"),
    ("an unknown verdict", "editor2", "maybe", 400, "pending"),
]


@pytest.mark.parametrize("name, reviewer, verdict, status, after", REVIEWS, ids=[r[0] for r in REVIEWS])
def test_a_recording_is_reviewed_by_another_editor(browser, db, ids, name, reviewer, verdict, status, after):  # noqa: F811
    clip = f"fr.crop.{ids['tomato']}"
    row = store(db, clip, "recorded", text="Tomate", staff_id=staff_id(db, "editor@sugu.test"))
    response = review(browser(reviewer), clip, row.id, verdict, note="  trop de bruit  ")
    assert response.status_code == status, response.text[-400:]
    [stored] = revisions(db, clip)
    assert stored.review == after
    audits = review_audits(db)
    if status == 303:
        assert response.headers["location"] == f"/admin/studio/clips/{clip}"
        assert (stored.reviewed_by, stored.reviewed_at is not None) == (f"{reviewer}@sugu.test", True)
        assert stored.review_note == "trop de bruit"
        [entry] = audits
        assert (entry.action, entry.entity_id, entry.staff_email) == (verdict, clip, f"{reviewer}@sugu.test")
        assert entry.before == {"revision": 1, "review": "pending"} and entry.after["review"] == after
    else:
        assert (stored.reviewed_by, stored.reviewed_at, audits) == ("", None, [])


# (name, what to do before the review, the answer). Nothing changes for any of them.
REVIEW_REFUSED = [
    ("without the form token", lambda db, row: row, 403),
    ("already approved", lambda db, row: store(db, row.clip, "recorded", review="approved",
                                              staff_id=row.staff_id, seconds=0.7), 409),
    ("a synthetic voice", lambda db, row: store(db, row.clip, "synthetic", seconds=0.7), 409),
    ("an older revision replaced by a newer one", lambda db, row: (store(db, row.clip, "uploaded", seconds=0.7), row)[1], 409),
    ("a reason over 200 characters", lambda db, row: row, 400),
    ("another clip's revision", lambda db, row: row, 404),
    ("no such revision", lambda db, row: row, 404),
]


@pytest.mark.parametrize("name, before, status", REVIEW_REFUSED, ids=[r[0] for r in REVIEW_REFUSED])
def test_a_review_that_cannot_be_is_refused_and_changes_nothing(browser, db, ids, name, before, status):  # noqa: F811
    clip = f"fr.crop.{ids['tomato']}"
    first = store(db, clip, "recorded", text="Tomate", staff_id=staff_id(db, "editor@sugu.test"))
    target = before(db, first)
    snapshot = [(r.id, r.review, r.reviewed_by) for r in revisions(db, clip)]
    b = browser("editor2")
    fields = {"note": "x" * 201} if name.startswith("a reason") else {}
    path_clip = f"fr.crop.{ids['onion']}" if name == "another clip's revision" else clip
    revision_id = 99_999 if name == "no such revision" else target.id
    if name == "without the form token":
        response = b.post(f"/admin/studio/clips/{clip}/review/{revision_id}", {"verdict": "approve"}, csrf=False)
    else:
        response = review(b, path_clip, revision_id, "approve", **fields)
    assert response.status_code == status
    assert [(r.id, r.review, r.reviewed_by) for r in revisions(db, clip)] == snapshot and review_audits(db) == []


# (name, revisions stored in order as (source, review), which of them plays (None: a new synthetic
# voice)). Unreviewed recordings play, as unreviewed texts do; a rejected one never plays again.
PLAYS = [
    ("a recording waiting for review plays", [("recorded", "")], 0),
    ("an approved recording plays", [("recorded", "approved")], 0),
    ("a newer recording plays before its review", [("recorded", "approved"), ("uploaded", "")], 1),
    ("a rejected recording gives way to the approved one before it", [("recorded", "approved"), ("uploaded", "rejected")], 0),
    ("a rejected recording gives way to the synthetic voice", [("synthetic", ""), ("recorded", "rejected")], 0),
    ("a rejected recording alone: a synthetic voice is made", [("recorded", "rejected")], None),
]


@pytest.mark.parametrize("name, stored, plays", PLAYS, ids=[p[0] for p in PLAYS])
def test_what_calls_play_while_recordings_are_reviewed(db, ids, name, stored, plays):
    clip = Clip(f"fr.crop.{ids['tomato']}", "Tomate")
    rows = [store(db, clip.id, source, review=verdict, seconds=0.4 + 0.1 * i) for i, (source, verdict) in enumerate(stored)]
    maker = prompts.PromptAudio(lambda text, lang: wav(tone(0.3, rate=8000), rate=8000), cache_s=0)
    with db.unit_of_work() as session:
        name_played = maker.playlist(session, [clip])
        playing = prompts.latest(session, [clip.id])[clip.id]
        session.expunge(playing)
    if plays is None:
        assert (playing.revision, playing.source) == (len(rows) + 1, "synthetic")
    else:
        assert playing.id == rows[plays].id
    assert name_played == hashlib.sha256(("playlist:" + playing.audio_hash).encode()).hexdigest()


def test_the_clip_page_shows_the_review_and_who_may_give_it(browser, french, db, ids):  # noqa: F811
    clip = f"fr.crop.{ids['tomato']}"
    store(db, clip, "synthetic", text="Tomate")
    editor = browser("editor")
    assert upload(editor, clip, wav(SPEECH_44K), "audio/wav", back="clip").status_code == 303
    own = editor.get(f"/admin/studio/clips/{clip}").text
    assert 'id="review"' in own and "You made this recording: another editor must review it." in own
    assert "/review/" not in own  # no approve or reject button for the recorder
    assert "recorded, to review" in visible(own.split('class="studio-now"', 1)[1].split("</div>", 1)[0])
    row2 = own.split('<tr id="revision-2">', 1)[1].split("</tr>", 1)[0]
    assert "to review" in row2
    assert "—" in own.split('<tr id="revision-1">', 1)[1].split("</tr>", 1)[0]  # a synthetic voice: nothing to review

    other = browser("editor2")
    page = other.get(f"/admin/studio/clips/{clip}").text
    section = visible(page.split('id="review"', 1)[1].split("</section>", 1)[0])
    assert "Revision 2, recorded by editor@sugu.test on 28/11/2026 10:00." in section
    [first, second] = revisions(db, clip)
    assert f'action="/admin/studio/clips/{clip}/review/{second.id}"' in page
    assert f'src="/voice/audio/{second.audio_hash}.wav"' in page.split('id="review"', 1)[1]
    studio_card = other.get(f"/admin/studio?lang=fr&clip={clip}").text
    assert "it plays while it waits for another editor" in visible(studio_card)
    assert f'href="/admin/studio/clips/{clip}#review"' in studio_card

    approved = review(other, clip, second.id, "approve")
    page = other.get(approved.headers["location"]).text
    assert "Revision 2 approved." in page and 'id="review"' not in page
    assert "approved by editor2@sugu.test on 28/11/2026 10:00" in page.split('<tr id="revision-2">', 1)[1]
    assert "Approved by editor2@sugu.test on 28/11/2026 10:00." in visible(
        other.get(f"/admin/studio?lang=fr&clip={clip}").text)
    assert "recorded and reviewed" in page
    french_page = french.get(f"/admin/studio/clips/{clip}").text.replace("&#39;", "'")
    assert "approuvée par editor2@sugu.test le 28/11/2026 10:00" in french_page
    assert "enregistré et vérifié" in french_page


def test_a_rejected_recording_stops_playing_and_cannot_play_again(browser, db, ids):  # noqa: F811
    clip = f"fr.crop.{ids['onion']}"
    approved = store(db, clip, "recorded", text="Oignon", review="approved")
    editor, other = browser("editor"), browser("editor2")
    assert upload(editor, clip, wav(SPEECH_44K), "audio/wav", back="clip").status_code == 303
    newest = revisions(db, clip)[-1]
    rejected = review(other, clip, newest.id, "reject", note="On entend la radio derrière.")
    page = other.get(rejected.headers["location"]).text
    assert "Revision 2 rejected: calls no longer play it." in page
    row = page.split('<tr id="revision-2">', 1)[1].split("</tr>", 1)[0]
    assert "rejected by editor2@sugu.test on 28/11/2026 10:00" in row and "On entend la radio derrière." in row
    assert "Play this one again" not in row
    now = page.split('class="studio-now"', 1)[1].split("</div>", 1)[0]
    assert f'src="/voice/audio/{approved.audio_hash}.wav"' in now  # the approved one plays again
    assert other.post(f"/admin/studio/clips/{clip}/restore/{newest.id}").status_code == 409
    assert len(revisions(db, clip)) == 2


def test_of_two_reviewers_at_once_one_decides(db, ids):
    row = store(db, f"fr.crop.{ids['tomato']}", "recorded", text="Tomate")
    with db.unit_of_work() as session:
        seen = session.get(models.AudioPrompt, row.id)  # as the second reviewer loaded it: pending
        session.exec(update(models.AudioPrompt).where(models.AudioPrompt.id == row.id)
                     .values(review="approved", reviewed_by="first@sugu.test")
                     .execution_options(synchronize_session=False))
        assert seen.review == "pending"
        with pytest.raises(prompts.ReviewRefused) as refused:
            prompts.review(session, seen, verdict="rejected", staff_id=0, staff_email="second@sugu.test",
                           now=NOW)
    assert refused.value.reason == "decided"
    [stored] = revisions(db, row.clip)
    assert (stored.review, stored.reviewed_by) == ("approved", "first@sugu.test")


def test_restoring_an_approved_revision_keeps_its_review(browser, db, ids):  # noqa: F811
    clip = f"fr.crop.{ids['onion']}"
    first = store(db, clip, "recorded", text="Oignon", review="approved")
    store(db, clip, "uploaded", text="Oignon", seconds=0.8)
    b = browser("editor")
    assert b.post(f"/admin/studio/clips/{clip}/restore/{first.id}").status_code == 303
    third = revisions(db, clip)[-1]
    assert (third.revision, third.audio_hash, third.review, third.reviewed_by) == (
        3, first.audio_hash, "approved", "reviewer@sugu.test")


@pytest.mark.parametrize("status, detail", studio.REVIEW_REFUSALS.values())
def test_every_review_refusal_has_its_french(status, detail):
    assert status in (403, 409) and detail in staff_text.texts("fr")


# -- the list ----------------------------------------------------------------------------------------------------------


def listed(html: str) -> list[str]:
    return re.findall(r'<tr id="clip-([^"]+)">', html)


def test_the_list_searches_filters_and_pages(browser, db, ids):  # noqa: F811
    store(db, f"fr.crop.{ids['tomato']}", "recorded", text="Tomate")
    store(db, "fr.num.71", "synthetic", text="soixante et onze")
    b = browser("editor")
    every = clips(db, "fr")
    per_page = studio.CLIPS_PER_PAGE
    cases = [
        ("lang=fr", [c.id for c in every][:per_page]),
        ("lang=fr&page=2", [c.id for c in every][per_page:2 * per_page]),
        ("lang=fr&page=9999", [c.id for c in every][(len(every) - 1) // per_page * per_page:]),
        ("lang=fr&show=to_review", [f"fr.crop.{ids['tomato']}"]),
        ("lang=fr&show=reviewed", []),
        ("lang=fr&show=synthetic", ["fr.num.71"]),
        ("lang=fr&show=borrowed", []),
        ("lang=fr&kind=crop", [c.id for c in every if c.id.startswith("fr.crop.")]),
        ("lang=fr&kind=buyer", ["fr.buyer.lawal-int", "fr.buyer.madougou-agro-business"]),
        ("lang=bm&q=lawal", ["bm.buyer.lawal-int"]),
        ("lang=fr&kind=month&show=todo", [f"fr.month.{m}" for m in range(1, 13)]),
        ("lang=fr&q=SOIXANTE ET", [c.id for c in every if "soixante et" in c.text]),
        ("lang=fr&q=fr.region.", [c.id for c in every if c.id.startswith("fr.region.")]),
        ("lang=bm&q=tamati", [f"bm.crop.{ids['tomato']}"]),
        ("lang=xx&show=bogus&kind=zz", [c.id for c in every][:per_page]),  # unknown filters mean any
    ]
    for query, expected in cases:
        page = b.get(f"/admin/studio/clips?{query}")
        assert page.status_code == 200
        assert listed(page.text) == expected, query
    assert "No prompt matches this search." in b.get("/admin/studio/clips?q=zzzz").text
    found = b.get("/admin/studio/clips?lang=fr&kind=month").text
    assert "12 prompts found" in found and f"{len(every)} prompts in all" in found


# -- every text has its French --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [*studio.KIND_LABELS.values(), *studio.REFUSALS.values()])
def test_every_label_and_refusal_has_its_french(text):
    assert text in staff_text.texts("fr")


def test_the_studio_in_french(french):
    page = french.get("/admin/studio?lang=bm").text
    text = visible(page)
    for french_text in ("Studio d'enregistrement", "Prochain prompt à enregistrer", "À lire à voix haute",
                        "Enregistrer", "Arrêter", "Réécouter", "Garder cet enregistrement", "Passer au suivant",
                        "Ou envoyez un fichier (wav, mp3, ogg, m4a, webm)", "60 secondes et 1,2 Mo au plus."):
        assert french_text in text, french_text
    assert '<a href="/admin/studio" class="on" aria-current="page">Studio d&#39;enregistrement</a>' in page
    assert '<script src="/admin/static/studio.js" defer></script>' in page and "nonce" not in page.split("<main", 1)[1]


def test_recordings_made_before_reviews_existed_wait_for_one(empty_db_url):
    from sqlalchemy import create_engine, text

    from gateway.core import migrate

    migrate.upgrade(empty_db_url, "0012")
    engine = create_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO audio_blob (hash, mime, size, duration_ms, data, created_at) "
                              "VALUES ('h', 'audio/wav', 1, 1, :data, :at)"), {"data": b"\0", "at": NOW})
            for revision, source in ((1, "synthetic"), (2, "recorded"), (3, "uploaded")):
                conn.execute(text("INSERT INTO audio_prompt (clip, language, revision, audio_hash, source, text, created_at) "
                                  "VALUES ('fr.crop.1', 'fr', :r, 'h', :s, 'Tomate', :at)"), {"r": revision, "s": source, "at": NOW})
        migrate.upgrade(empty_db_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT source, review, reviewed_by FROM audio_prompt ORDER BY revision")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("synthetic", "", ""), ("recorded", "pending", ""), ("uploaded", "pending", "")]
