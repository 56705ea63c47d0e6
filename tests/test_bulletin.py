"""The weekly radio bulletin: what it says (the region's main crops in its markets, with direction,
and a tip), that it is an MP3 of about one to two minutes, and who may download it: by the API, the
command line, and the console's page (every region in every language, its words, a player)."""

from __future__ import annotations

import datetime as dt
import html
import re
import subprocess
import sys

import pytest
from sqlmodel import select

from gateway.app import create_app
from gateway.data import auth, models
from gateway.data.dataview import SqlDataView
from gateway.voice import bulletin
from menus import bulletin as bulletins
from menus.voice import DataNames, VoiceRenderer
from messages import default_catalog
from messages.voice import audio
from tests.conftest import NOW
from tests.test_admin import ROLES, Browser, app, browser, clock, staff  # noqa: F401 - fixtures

pytestmark = pytest.mark.db

TODAY = NOW.date()


def said(db, region, language, today=TODAY):
    with db.unit_of_work() as session:
        data = SqlDataView(session)
        made = bulletins.bulletin(region, language, today, data)
        renderer = VoiceRenderer(default_catalog(), DataNames(data))
        return made, " ".join(c.text for part in made.parts for c in renderer.speak(part, language))


@pytest.mark.parametrize("region, language, heard", [
    ("Sikasso", "fr", ["Sikasso", "Tomate", "francs le panier", "Le conseil de la semaine"]),
    ("Sikasso", "bm", ["Sikasso", "Tamati", "panye kelen", "laadilikan"]),
    ("Mopti", "fr", ["Mopti", "francs"]),
])
def test_the_bulletin_says_the_regions_prices_with_direction_and_a_tip(db, region, language, heard):
    made, words = said(db, region, language)
    assert 0 < made.prices <= bulletins.MAX_CROPS * bulletins.MAX_MARKETS
    for expected in heard:
        assert expected in words, f"{expected!r} not in {words}"
    assert "F/" not in words and "kg" not in words.split()  # said, not written


def test_only_the_regions_markets_and_fresh_prices(db):
    made, words = said(db, "Sikasso", "fr")
    assert "Bamako" not in words and "Mopti" not in words
    old, words = said(db, "Sikasso", "fr", today=TODAY + dt.timedelta(days=60))
    assert old.prices == 0 and "Pas de nouveaux prix" in words


def test_a_different_tip_each_week(db):
    tips = {said(db, "Sikasso", "fr", TODAY + dt.timedelta(weeks=w))[1].split("conseil de la semaine")[-1][:40]
            for w in range(3)}
    assert len(tips) == 3


@pytest.fixture
def token(db):
    with db.unit_of_work() as session:
        user = auth.create_staff(session, email="reporter@radio.test", password="x" * 12, role="reporter")
        return auth.issue_api_token(session, user)


def test_the_api_gives_an_mp3_of_one_to_two_and_a_half_minutes(client, token):
    response = client.get("/api/v1/bulletins/Sikasso.mp3?language=fr", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    assert 'filename="sugu-sikasso-fr-' in response.headers["content-disposition"]
    assert audio.sniff(response.content) == "mp3"
    assert 45 <= audio.duration_s(response.content) <= 150


@pytest.mark.parametrize("path, auth_header, status", [
    ("/api/v1/bulletins/Sikasso.mp3", False, 401),
    ("/api/v1/bulletins/Nowhere.mp3", True, 404),
    ("/api/v1/bulletins/Sikasso.mp3?language=en", True, 422),
])
def test_the_api_refuses(client, token, path, auth_header, status):
    headers = {"Authorization": f"Bearer {token}"} if auth_header else {}
    assert client.get(path, headers=headers).status_code == status


def test_the_cli_writes_the_mp3(settings, tmp_path):
    env = {"GATEWAY_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    out = tmp_path / "b.mp3"
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "voice", "bulletin", "Mopti", "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert audio.sniff(out.read_bytes()) == "mp3" and "prices" in done.stdout


# -- the console's page: every region in every language, its words, a player and the MP3 ----------

CONSOLE_PAGES = [
    ("/admin/bulletins", "text/html"),
    ("/admin/bulletins/sikasso.mp3?language=bm", "audio/mpeg"),
]


@pytest.mark.parametrize("path, content_type", CONSOLE_PAGES)
def test_the_console_bulletins_are_for_price_staff(browser, path, content_type):  # noqa: F811
    anonymous = browser().get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/admin/login")
    for role in ROLES:  # every role: reporters give prices to radio stations too
        response = browser(role).get(path)
        assert response.status_code == 200, (role, response.text[:300])
        assert response.headers["content-type"].startswith(content_type)


def region_codes(db) -> dict[str, str]:
    with db.unit_of_work() as session:
        return {r.code: r.name_fr for r in session.exec(select(models.Region).where(models.Region.active))}


def card(html: str, code: str, lang: str) -> str:
    return html.split(f'id="bulletin-{code}-{lang}"', 1)[1].split('<div class="card bulletin"', 1)[0]


def test_the_page_lists_every_region_and_language_with_what_it_says(browser, db):  # noqa: F811
    page = browser("reporter").get("/admin/bulletins").text
    codes = region_codes(db)
    assert codes and set(re.findall(r'<section class="bulletin-region" id="bulletin-([\w-]+)">', page)) == set(codes)
    with db.unit_of_work() as session:
        data = SqlDataView(session)
        for code, region in codes.items():
            for lang in ("fr", "bm"):
                shown = card(page, code, lang)
                src = f"/admin/bulletins/{code}.mp3?language={lang}"
                assert f'<audio class="bulletin-player" controls preload="none" src="{src}">' in shown
                assert f'<a class="button" href="{src}" download>' in shown
                said = bulletin.script(region=region, language=lang, today=TODAY, catalog=default_catalog(), data=data)
                words = re.findall(r"<p>([^<]*)</p>", shown.split('class="bulletin-words"', 1)[1])
                assert [html.unescape(w) for w in words] == list(said.lines), (code, lang)
    sikasso = {lang: html.unescape(card(page, "sikasso", lang)) for lang in ("fr", "bm")}
    for lang, heard in (("fr", ["Sikasso", "Tomate", "francs le panier", "Le conseil de la semaine"]),
                        ("bm", ["Sikasso", "Tamati", "panye kelen", "laadilikan"])):
        for expected in heard:
            assert expected in sikasso[lang], (lang, expected)


def test_the_console_mp3_is_the_weeks_bulletin_to_download(browser, db):  # noqa: F811
    response = browser("editor").get("/admin/bulletins/mopti.mp3?language=fr")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    week = TODAY - dt.timedelta(days=TODAY.weekday())
    assert response.headers["content-disposition"] == f'attachment; filename="sugu-mopti-fr-{week:%Y-%m-%d}.mp3"'
    assert audio.sniff(response.content) == "mp3" and 30 <= audio.duration_s(response.content) <= 150


@pytest.mark.parametrize("path", [
    "/admin/bulletins/nowhere.mp3",
    "/admin/bulletins/sikasso.mp3?language=en",
    "/admin/bulletins/Sikasso.mp3",  # by the region's code, not its name
])
def test_an_unknown_bulletin_is_not_found(browser, path):  # noqa: F811
    assert browser("reporter").get(path).status_code == 404


def test_a_retired_region_has_no_bulletin(browser, db):  # noqa: F811
    with db.unit_of_work() as session:
        region = session.exec(select(models.Region).where(models.Region.code == "mopti")).one()
        region.active = False
        session.add(region)
    b = browser("reporter")
    assert 'id="bulletin-mopti"' not in b.get("/admin/bulletins").text
    assert b.get("/admin/bulletins/mopti.mp3").status_code == 404


def test_the_bulletin_page_in_french(settings, clock, staff):  # noqa: F811
    b = Browser(create_app(settings.model_copy(update={"console_language": "fr"}), clock=clock))
    try:
        assert b.login("reporter@sugu.test").status_code == 303
        page = html.unescape(b.get("/admin/bulletins").text)
    finally:
        b.close()
    for text in ("Bulletin radio", "Télécharger le MP3", "Ce qu'il dit", "Semaine du 23/11/2026", "prix annoncés"):
        assert text in page, text
    assert '<a href="/admin/bulletins" class="on" aria-current="page">Bulletin radio</a>' in page


@pytest.mark.parametrize("language, returncode, said", [
    pytest.param("ff", 0, "prices", id="voice-only"),
    pytest.param("xx", 2, "not an enabled voice language", id="unknown"),
])
def test_the_cli_makes_a_bulletin_in_any_enabled_voice_language(settings, db, tmp_path, language, returncode, said):
    from tests.configured_languages import FULFULDE, add_languages

    add_languages(db, FULFULDE)
    env = {"GATEWAY_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"}
    out = tmp_path / "b.mp3"
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "voice", "bulletin", "Mopti", "-o", str(out),
                           "--language", language], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == returncode, done.stderr
    assert said in done.stdout + done.stderr
    assert out.exists() is (returncode == 0)
