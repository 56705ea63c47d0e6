"""The weekly radio bulletin: what it says (the region's main crops in its markets, with direction,
and a tip), that it is an MP3 of about one to two minutes, and who may download it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from gateway.data import auth
from gateway.data.dataview import SqlDataView
from menus import bulletin as bulletins
from menus.voice import DataNames, VoiceRenderer
from messages import default_catalog
from messages.voice import audio
from tests.conftest import NOW

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
