"""The radio bulletin in every enabled voice language, voice-only ones included (Fulfulde): said
by the language's own recordings where they exist, its fallbacks' otherwise, else synthetic; its
words shown in French and labelled so; its tip said only once recorded in the language (never a
synthetic French voice reading it on the radio), the console saying so; downloads by the console
and the API, and a clear refusal for a language that has no bulletin."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlmodel import select

from gateway.app import create_app
from gateway.data import auth, models
from gateway.data.dataview import SqlDataView
from gateway.voice import bulletin, prompts
from messages import default_catalog
from messages.voice import audio
from tests.conftest import NOW
from tests.test_admin import Browser, browser, clock, staff  # noqa: F401 - fixtures
from tests.test_bulletin import card
from tests.test_studio import app, store  # noqa: F401 - this module's app: the studio's

pytestmark = pytest.mark.db

TODAY = NOW.date()


def set_language(db, code, **values):
    with db.unit_of_work() as session:
        row = session.get(models.Language, code) or models.Language(
            code=code, name={"ff": "Fulfulde", "ses": "Koyraboro senni"}.get(code, code),
            name_fr={"ff": "peul", "ses": "songhaï"}.get(code, code), written=False, voice=True, enabled=True,
            fallback="fr", sort_order=10)
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)


@pytest.fixture
def fulfulde(db):
    set_language(db, "ff")


def script(db, language="ff", region="Sikasso", session=True):
    with db.unit_of_work() as s:
        return bulletin.script(region=region, language=language, today=TODAY, catalog=default_catalog(),
                               data=SqlDataView(s), session=s if session else None)


def ids_of(db, table, **where) -> int:
    with db.unit_of_work() as session:
        query = select(table.id)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return session.exec(query).first()


# -- what a voice-only language's bulletin says ---------------------------------------------------------


def test_a_voice_only_bulletin_says_the_french_words_by_its_own_clips(db, fulfulde):
    fr, ff = script(db, "fr"), script(db, "ff")
    assert (ff.language, ff.words_in, fr.words_in) == ("ff", "fr", "fr")
    assert ff.prices == fr.prices > 0
    assert all(c.id.split(".")[0] in ("ff", "fr") for c in ff.clips)
    # Words and names are its own clips (recorded in the studio); numbers are French's (no ff rules).
    assert {c.id.split(".")[1] for c in ff.clips if c.id.startswith("fr.")} <= {"num", "scale", "word", "month"}
    assert any(c.id.startswith("ff.crop.") for c in ff.clips) and "Tomate" in " ".join(ff.lines)


def test_a_voice_only_tip_is_left_out_until_its_words_are_recorded_in_the_language(db, fulfulde):
    fr = script(db, "fr")
    assert fr.tip == bulletin.TIP_SAID and any("conseil de la semaine" in line for line in fr.lines)
    left_out = script(db)
    assert left_out.tip == bulletin.TIP_LEFT_OUT
    assert [c.id.split(".")[:2] for c in left_out.to_record] == [["ff", "say"], ["ff", "say"]]  # title, text
    assert not any("conseil de la semaine" in line for line in left_out.lines)
    assert not {c.id for c in left_out.to_record} & {c.id for c in left_out.clips}
    # Without a session nothing says it was recorded: left out all the same.
    assert script(db, session=False).tip == bulletin.TIP_LEFT_OUT
    # A synthetic stand-in is not a recording; half of the words recorded is not enough.
    title, text = left_out.to_record
    store(db, title.id, prompts.SYNTHETIC)
    store(db, text.id, prompts.RECORDED)
    half = script(db)
    assert half.tip == bulletin.TIP_LEFT_OUT and [c.id for c in half.to_record] == [title.id]
    store(db, title.id, prompts.UPLOADED)
    said = script(db)
    assert said.tip == bulletin.TIP_SAID and said.to_record == ()
    assert {title.id, text.id} <= {c.id for c in said.clips}
    assert any("conseil de la semaine" in line for line in said.lines)


def test_a_written_languages_tip_is_said_as_before(db, fulfulde):
    for language in ("fr", "bm"):
        found = script(db, language)
        assert (found.tip, found.to_record, found.words_in) == (bulletin.TIP_SAID, (), language)


CROP, MARKET = "crop", "market"


@pytest.mark.parametrize("fallback, recorded, own, borrowed", [
    pytest.param("fr", [], 0, {}, id="nothing-recorded"),
    pytest.param("fr", ["ff.crop"], 1, {}, id="its-own"),
    pytest.param("fr", ["fr.crop"], 0, {"fr": 1}, id="french-borrowed"),
    pytest.param("fr", ["ff.crop", "fr.crop"], 1, {}, id="its-own-first"),
    pytest.param("bm", ["bm.crop", "fr.market"], 0, {"bm": 1, "fr": 1}, id="each-fallback-named"),
    pytest.param("bm", ["bm.crop", "fr.crop"], 0, {"bm": 1}, id="nearest-fallback-first"),
    pytest.param("fr", ["fr.num.0"], 0, {"fr": 1}, id="french-number-clips-are-borrowed"),
])
def test_where_each_clip_comes_from(db, fallback, recorded, own, borrowed):
    set_language(db, "ff", fallback=fallback)
    before = script(db)
    crop = next(c.id for c in before.clips if c.id.startswith("ff.crop."))
    market = next(c.id for c in before.clips if c.id.startswith("ff.market."))
    number = next((c.id for c in before.clips if c.id.startswith("fr.num.")), None)  # by Bambara's rules: none
    names = {"ff.crop": crop, "fr.crop": "fr." + crop[3:], "bm.crop": "bm." + crop[3:], "fr.market": "fr." + market[3:],
             "fr.num.0": number}
    for clip in recorded:
        store(db, names[clip], prompts.RECORDED)
    found = script(db)
    distinct = len({c.id for c in found.clips})
    assert found.count(bulletin.OWN) == own and dict(found.borrowed) == borrowed
    assert found.count(bulletin.SYNTHETIC) == distinct - own - sum(borrowed.values())


# -- the console page ------------------------------------------------------------------------------------


def test_the_page_shows_a_voice_only_bulletin_in_french_with_its_sources_and_the_missing_tip(browser, db, fulfulde):  # noqa: F811
    b = browser("reporter")
    page = b.get("/admin/bulletins").text
    shown = card(page, "sikasso", "ff")
    assert "<h3>peul</h3>" in shown
    assert "What it says (text in French)" in shown and 'lang="fr"' in shown
    assert "peul has no written texts: here are the French words its recordings say in peul." in html.unescape(shown)
    said = script(db)
    words = re.findall(r"<p>([^<]*)</p>", shown.split('class="bulletin-words"', 1)[1])
    assert [html.unescape(w) for w in words] == list(said.lines)
    assert "Tip left out" in shown and "no peul recording yet" in shown
    links = re.findall(r'<a href="(/admin/studio/clips/ff\.say\.[^"]+)"', shown)
    assert links == [f"/admin/studio/clips/{c.id}" for c in said.to_record] and len(links) == 2
    distinct = len({c.id for c in said.clips})
    assert f"0 clips recorded in peul" in shown and f"{distinct} synthetic" in shown
    # The written languages' cards: their own text, no label, no tip left out.
    for lang in ("fr", "bm"):
        other = card(page, "sikasso", lang)
        assert "text in" not in other and "Tip left out" not in other and f'lang="{lang}"' in other
    # The studio offers the tip's words to record, in Fulfulde only.
    editor = browser("editor")
    for link in links:
        assert editor.get(link).status_code == 200
        assert editor.get(link.replace("/ff.say.", "/bm.say.")).status_code == 404


def test_a_recorded_tip_and_borrowed_clips_show_on_the_page(browser, db, fulfulde):  # noqa: F811
    said = script(db)
    for clip in said.to_record:
        store(db, clip.id, prompts.RECORDED)
    crop = next(c.id for c in said.clips if c.id.startswith("ff.crop."))
    store(db, "fr." + crop[3:], prompts.RECORDED)
    shown = card(browser("reporter").get("/admin/bulletins").text, "sikasso", "ff")
    assert "Tip left out" not in shown and "conseil de la semaine" in shown
    assert "2 clips recorded in peul" in shown
    assert '<li class="source-borrowed" data-language="fr">1 borrowed from French</li>' in shown


def test_the_page_in_french_for_a_voice_only_language(settings, clock, staff, db, fulfulde):  # noqa: F811
    b = Browser(create_app(settings.model_copy(update={"console_language": "fr"}), clock=clock))
    try:
        assert b.login("reporter@sugu.test").status_code == 303
        shown = html.unescape(card(b.get("/admin/bulletins").text, "sikasso", "ff"))
    finally:
        b.close()
    for text in ("Ce qu'il dit (texte en français)", "Le peul n'a pas de textes écrits", "Conseil omis",
                 "Ses mots n'ont pas encore d'enregistrement en peul", "0 extrait enregistré en peul", "synthétiques"):
        assert text in shown, text


# -- downloads: console and API ----------------------------------------------------------------------------


def test_the_console_downloads_a_voice_only_bulletin(browser, db, fulfulde):  # noqa: F811
    response = browser("reporter").get("/admin/bulletins/mopti.mp3?language=ff")
    assert response.status_code == 200, response.text[:300]
    week = TODAY - dt.timedelta(days=TODAY.weekday())
    assert response.headers["content-disposition"] == f'attachment; filename="sugu-mopti-ff-{week:%Y-%m-%d}.mp3"'
    assert audio.sniff(response.content) == "mp3"


@pytest.mark.parametrize("change, path", [
    pytest.param({}, "/admin/bulletins/sikasso.mp3?language=xx", id="unknown"),
    pytest.param({"enabled": False}, "/admin/bulletins/sikasso.mp3?language=ff", id="disabled"),
    pytest.param({"voice": False, "written": True}, "/admin/bulletins/sikasso.mp3?language=ff", id="not-by-voice"),
    pytest.param({}, "/admin/bulletins/sikasso.mp3?language=", id="empty"),
    pytest.param({}, "/admin/bulletins/sikasso.mp3?language=%00", id="nul"),
])
def test_the_console_has_no_bulletin_in_a_language_not_offered_by_voice(browser, db, change, path):  # noqa: F811
    set_language(db, "ff", **change)
    response = browser("reporter").get(path)
    assert response.status_code in (400, 404) and "audio" not in response.headers["content-type"]


@pytest.fixture
def token(db):
    with db.unit_of_work() as session:
        user = auth.create_staff(session, email="radio@radio.test", password="x" * 12, role="reporter")
        return auth.issue_api_token(session, user)


def test_the_api_gives_a_voice_only_bulletin(client, db, token, fulfulde):
    response = client.get("/api/v1/bulletins/Mopti.mp3?language=ff", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text[:300]
    assert 'filename="sugu-mopti-ff-' in response.headers["content-disposition"]
    assert audio.sniff(response.content) == "mp3"


@pytest.mark.parametrize("change, query, status, detail", [
    pytest.param({}, "language=xx", 422, "not an enabled voice language", id="unknown"),
    pytest.param({"enabled": False}, "language=ff", 422, "not an enabled voice language", id="disabled"),
    pytest.param({"voice": False, "written": True}, "language=ff", 422, "not an enabled voice language",
                 id="not-by-voice"),
    pytest.param({}, "language=FRENCH", 422, "", id="not-a-code"),
    pytest.param({}, "language=", 422, "", id="empty"),
])
def test_the_api_refuses_a_language_without_a_bulletin(client, db, token, change, query, status, detail):
    set_language(db, "ff", **change)
    response = client.get(f"/api/v1/bulletins/Mopti.mp3?{query}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status, response.text[:300]
    assert detail in response.text


def test_make_refuses_what_has_no_bulletin_and_makes_nothing(db, fulfulde):
    with db.unit_of_work() as session:
        data = SqlDataView(session)
        for region, language, what in (("Nowhere", "ff", "region"), ("Mopti", "xx", "language")):
            with pytest.raises(bulletin.NoSuchBulletin) as refused:
                bulletin.make(session, region=region, language=language, today=TODAY, catalog=default_catalog(),
                              data=data)
            assert refused.value.what == what
        assert session.exec(select(models.AudioPrompt)).first() is None
