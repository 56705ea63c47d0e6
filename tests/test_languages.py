"""Languages are data (issue 16 item 10): staff add Fulfulde or Songhoy in the console, voice-only
or written; the language menus offer what is configured (USSD: written languages; voice: voice
languages, each name said in its own recording); a voice-only or disabled language is served in
French on USSD and SMS, which say why; recordings and number speech fall back per language."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pytest
from sqlmodel import func, select

import menus
from gateway.data import models
from gateway.data.dataview import SqlDataView
from gateway.voice import prompts
from menus import languages as langs
from menus.keywords import parse
from menus.screen import LanguageRef, Money, phrase
from menus.sms import SmsConfig, respond
from menus.types import Language, Profile, SetLanguage
from menus.voice import DataNames, VoiceRenderer
from messages import Catalog, default_catalog
from messages.catalog import load_file_catalog
from tests.fakes import TODAY, demo_view
from tests.test_admin import app, browser, clock, staff  # noqa: F401 - fixtures

NOW = dt.datetime.combine(TODAY, dt.time(9, 0))
FR, BM = langs.DEFAULT_LANGUAGES
FF = Language("ff", "Fulfulde", "peul", written=False, voice=True)
SES = Language("ses", "Koyraboro senni", "songhaï", written=True, voice=False)
VOICE_NUMBER = "+22320221234"
CATALOG = default_catalog()
# A written third language: a small catalog of its own (a key it lacks is said in French).
WITH_SES = Catalog({"fr": load_file_catalog("fr"), "bm": load_file_catalog("bm"),
                    "ses": {"main.title": "Sugu - hayey", "lang.changed": "Senni: koyraboro senni"}})


@dataclass
class View:
    """The demo data with configured languages (the gateway's data view reads the table)."""

    base: object
    configured: tuple[Language, ...]

    def __getattr__(self, name):
        return getattr(self.base, name)

    def languages(self):
        return self.configured


def view(*configured: Language) -> View:
    return View(demo_view(), configured)


def run(inputs, *, language=None, configured=(FR, BM, FF), spoken=False, catalog=CATALOG, voice_number=VOICE_NUMBER):
    config = menus.EngineConfig(spoken=spoken, voice_number=voice_number)
    return menus.run(list(inputs), profile=Profile(phone="+22370000001", language=language), data=view(*configured),
                     catalog=catalog, now=NOW, config=config)


def offered(screen) -> list[str]:
    return [c.label.code for c in screen.structure.layout.choices() if isinstance(c.label, LanguageRef)]


# -- which languages the menus offer ------------------------------------------------------------------


@pytest.mark.parametrize("configured, spoken, catalog, expected", [
    pytest.param((FR, BM), False, CATALOG, ["fr", "bm"], id="shipped"),
    pytest.param((FR, BM, FF), False, CATALOG, ["fr", "bm"], id="ussd-leaves-out-voice-only"),
    pytest.param((FR, BM, FF), True, CATALOG, ["fr", "bm", "ff"], id="voice-offers-voice-only"),
    pytest.param((FR, replace(BM, enabled=False), FF), True, CATALOG, ["fr", "ff"], id="disabled-disappears"),
    pytest.param((FR, BM, SES), False, WITH_SES, ["fr", "bm", "ses"], id="written-third-language"),
    pytest.param((FR, BM, SES), False, CATALOG, ["fr", "bm"], id="written-without-its-catalog-file"),
    pytest.param((FR, BM, SES), True, WITH_SES, ["fr", "bm"], id="written-not-by-voice"),
    pytest.param((FF, BM, FR), True, CATALOG, ["ff", "bm", "fr"], id="in-the-configured-order"),
])
def test_the_language_menus_offer_what_is_configured(configured, spoken, catalog, expected):
    assert offered(run([], configured=configured, spoken=spoken, catalog=catalog)) == expected
    assert offered(run(["6"], language="fr", configured=configured, spoken=spoken, catalog=catalog)) == expected


def test_with_french_and_bambara_the_screens_are_the_ones_without_configuration():
    """The golden table holds for fr/bm: a configured list of the two is the built-in one."""
    for inputs in ([], ["2"], ["1", "6"], ["1", "6", "2"]):
        plain = menus.run(inputs, profile=Profile(phone="+22370000001"), data=demo_view(), catalog=CATALOG, now=NOW)
        assert run(inputs, configured=(FR, BM)).text == plain.text


@pytest.mark.parametrize("code, configured, spoken, voice_number, language, notice", [
    pytest.param("bm", (FR, BM, FF), False, "", "bm", None, id="offered"),
    pytest.param(None, (FR, BM, FF), False, "", "fr", None, id="never-chose"),
    pytest.param("ff", (FR, BM, FF), True, "", "ff", None, id="voice-only-by-voice"),
    pytest.param("ff", (FR, BM, FF), False, VOICE_NUMBER, "fr", "Fulfulde: appel au 20 22 12 34", id="voice-only-on-ussd"),
    pytest.param("ff", (FR, BM, FF), False, "", "fr", "Fulfulde: par appel vocal", id="voice-only-no-number"),
    pytest.param("ff", (FR, BM, replace(FF, enabled=False)), True, "", "fr", "Fulfulde: non disponible", id="disabled-by-voice"),
    pytest.param("ff", (FR, BM, replace(FF, enabled=False)), False, VOICE_NUMBER, "fr", "Fulfulde: non disponible",
                 id="disabled-on-ussd"),
    pytest.param("bm", (FR, replace(BM, enabled=False)), False, "", "fr", "Bamanankan: non disponible", id="bambara-disabled"),
    pytest.param("xx", (FR, BM), False, "", "fr", "xx: non disponible", id="unknown-code"),
])
def test_a_language_not_offered_here_is_served_in_french_and_says_so(code, configured, spoken, voice_number, language,
                                                                     notice):
    screen = run([], language=code, configured=configured, spoken=spoken, voice_number=voice_number)
    assert screen.language == language and screen.screen_id == ("lang_first" if code is None else "main")
    first_line = screen.text.split("\n")[0]
    if notice:
        assert first_line == notice
        later = run(["1"], language=code, configured=configured, spoken=spoken, voice_number=voice_number)
        assert later.language == language and notice not in later.text  # the first screen only
    else:
        assert screen.structure.notice is None


def test_a_written_third_language_speaks_its_catalog_and_french_where_it_has_no_text():
    chosen = run(["6", "3"], language="fr", configured=(FR, BM, SES), catalog=WITH_SES)
    assert chosen.effects == (SetLanguage("ses"),)
    assert chosen.text.split("\n")[0] == "Senni: koyraboro senni"
    home = run([], language="ses", configured=(FR, BM, SES), catalog=WITH_SES)
    assert home.language == "ses" and home.text.startswith("Sugu - hayey\n1. Prix du marche")


def test_choosing_a_voice_only_language_by_voice_names_it_in_its_own_recording():
    screen = run(["6", "3"], language="fr", configured=(FR, BM, FF), spoken=True)
    assert screen.effects == (SetLanguage("ff"),) and screen.language == "ff"
    renderer = VoiceRenderer(CATALOG, DataNames(view(FR, BM, FF)))
    said = [c.id for c in renderer.speak(screen.structure.notice, "ff")]
    assert said == ["ff.text.lang.changed_to.0", "ff.language"]


# -- voice: names, fallbacks, numbers ---------------------------------------------------------------------


def test_the_first_voice_prompt_says_every_voice_language_by_its_own_recording():
    from gateway.voice.service import _prompt

    screen = run([], configured=(FR, BM, FF), spoken=True)
    clips, prompt = _prompt(screen, VoiceRenderer(CATALOG, DataNames(view(FR, BM, FF))), 0, greeting=True)
    ids = [c.id for c in clips]
    for lang in ("fr", "bm", "ff"):  # said in every offered language in turn...
        assert f"{lang}.text.lang.choose.0" in ids
        assert ids.count(f"{lang}.language") == 3  # ...each language's name in its own recording
    assert next(c for c in clips if c.id == "ff.language").text == "Fulfulde"
    assert [number for _, number in prompt.choices] == [1, 2, 3]


@pytest.mark.parametrize("code, configured, chain, rules", [
    pytest.param("fr", (FR, BM, FF), (), "fr", id="french"),
    pytest.param("bm", (FR, BM, FF), ("fr",), "bm", id="bambara-has-its-rules"),
    pytest.param("ff", (FR, BM, FF), ("fr",), "fr", id="fulfulde-by-french-rules"),
    pytest.param("ff", (FR, BM, replace(FF, fallback="bm")), ("bm", "fr"), "bm", id="fulfulde-by-bambara"),
    pytest.param("ses", (FR, BM, replace(SES, fallback="ff"), replace(FF, fallback="bm")), ("ff", "bm", "fr"), "bm",
                 id="a-chain"),
    pytest.param("ff", (FR, BM, replace(FF, fallback="ff")), ("fr",), "fr", id="a-loop-ends-in-french"),
    pytest.param("zz", (FR, BM), ("fr",), "fr", id="unknown"),
])
def test_fallbacks_and_number_rules(code, configured, chain, rules):
    assert langs.fallbacks(code, configured) == chain
    assert langs.number_language(code, configured) == rules


@pytest.mark.parametrize("configured, amount, rules", [
    pytest.param((FR, BM, FF), 81, "fr", id="french-rules-until-ff-has-its-own"),
    pytest.param((FR, BM, replace(FF, fallback="bm")), 350, "bm", id="bambara-rules-by-fallback"),
])
def test_numbers_in_a_language_without_rules_are_said_by_its_fallback(configured, amount, rules):
    from messages.voice import numbers

    renderer = VoiceRenderer(CATALOG, DataNames(view(*configured)))
    said = tuple(c.id for c in renderer.speak(Money(amount), "ff"))
    assert said == numbers.say_money(amount, rules)  # the fallback's clips, recorded in its studio list


# -- SMS ---------------------------------------------------------------------------------------------


def sms(text, language, configured=(FR, BM, FF), voice_number=VOICE_NUMBER, catalog=CATALOG):
    return respond(text, profile=Profile(phone="+22370000001", language=language), data=view(*configured),
                   catalog=catalog, now=NOW, config=SmsConfig(voice_number=voice_number))


@pytest.mark.parametrize("text, language, configured, reply_language, effects, fragments", [
    pytest.param("PRIX TOMATE SIKASSO", "ff", (FR, BM, FF), "fr", (), ["Tomate", "Fulfulde: appel au 20 22 12 34"],
                 id="voice-only-answered-in-french-with-notice"),
    # A price list leaves the notice room; a long reply (the help, since it names APPEL) goes without it.
    pytest.param("PRIX TOMATE SIKASSO", "ff", (FR, BM, replace(FF, enabled=False)), "fr", (), ["Tomate", "Fulfulde: non disponible"],
                 id="disabled-answered-in-french-with-notice"),
    pytest.param("LANGUE FULFULDE", "fr", (FR, BM, FF), "fr", (SetLanguage("ff"),),
                 ["Langue: Fulfulde pour les appels au 20 22 12 34. Les SMS restent en français."], id="langue-voice-only"),
    pytest.param("langue ff", "bm", (FR, BM, FF), "fr", (SetLanguage("ff"),), ["Les SMS restent"], id="by-code"),
    pytest.param("LANGUE FF", "fr", (FR, BM, replace(FF, enabled=False)), "fr", (), ["LANGUE FR ou LANGUE BM"],
                 id="langue-disabled"),
    pytest.param("LANGUE BM", "fr", (FR, BM, FF), "bm", (SetLanguage("bm"),), ["Kan: bamanankan"], id="bambara"),
    pytest.param("ses tomates", "fr", (FR, BM, replace(SES, voice=True)), "fr", (), ["Tomate"],
                 id="a-code-that-is-a-word-needs-LANGUE"),
])
def test_sms_in_a_voice_only_or_disabled_language(text, language, configured, reply_language, effects, fragments):
    reply = sms(text, language, configured)
    assert reply.language == reply_language and reply.effects == effects
    for fragment in fragments:
        assert fragment in reply.text, reply.text


def test_an_sms_list_leaves_room_for_the_notice():
    from messages.sms import measure, render_sms

    reply = sms("PRIX OIGNON", "ff")
    assert reply.text.endswith("Fulfulde: appel au 20 22 12 34")
    assert measure(render_sms(reply.text, "fr")).segments == 1
    assert len(reply.text.split(";")) < len(sms("PRIX OIGNON", "fr").text.split(";")) + 1


def test_langue_with_a_staff_added_name_needs_the_keyword():
    crops, markets = demo_view().crops(), demo_view().markets()
    assert parse("LANGUE PEUL", crops, markets, languages=(FR, BM, FF)).language == "ff"
    assert parse("peul", crops, markets, languages=(FR, BM, FF)).intent == "unknown"


# -- the catalogs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "bm"])
@pytest.mark.parametrize("key, values", [
    ("lang.voice_only", {"name": "Fulfulde", "number": "20 22 12 34"}),
    ("lang.voice_only_call", {"name": "Fulfulde"}),
    ("lang.unavailable", {"name": "Fulfulde"}),
])
def test_the_notices_fit_the_line_in_place_of_the_title(lang, key, values):
    from menus.engine import FLASH_WIDTH
    from messages import to_ussd

    assert len(to_ussd(CATALOG.text(lang, key, **values))) <= FLASH_WIDTH


# -- through the console, the database and the channels ----------------------------------------------------

ADD_FULFULDE = {"code": "ff", "name": "Fulfulde", "name_fr": "peul", "voice": "on", "enabled": "on", "fallback": "fr",
                "sort_order": "10"}


@pytest.mark.db
def test_the_migration_seeds_french_and_bambara(db):
    with db.unit_of_work() as session:
        assert [(x.code, x.written, x.voice, x.enabled, x.fallback) for x in SqlDataView(session).languages()] == [
            ("fr", True, True, True, ""), ("bm", True, True, True, "fr")]


@pytest.mark.db
@pytest.mark.parametrize("change, field, reason", [
    pytest.param({"code": "FF1"}, "code", "Two or three lowercase letters", id="bad-code"),
    pytest.param({"code": "bm"}, "code", "already a language", id="taken"),
    pytest.param({"name": "  "}, "name", "Write its name.", id="no-name"),
    pytest.param({"name_fr": "x" * 41}, "name_fr", "At most 40 characters", id="long-name"),
    pytest.param({"written": "on"}, "written", "messages/catalog/ff.toml", id="written-without-catalog"),
    pytest.param({"voice": ""}, "voice", "by voice, in writing, or both", id="neither"),
    pytest.param({"fallback": "ff"}, "fallback", "another configured language", id="itself"),
    pytest.param({"fallback": "xx"}, "fallback", "another configured language", id="unknown-fallback"),
    pytest.param({"sort_order": "-1"}, "sort_order", "0 to 999", id="bad-order"),
])
def test_a_bad_language_is_refused_beside_its_field_and_changes_nothing(browser, db, change, field, reason):  # noqa: F811
    b = browser("editor")
    before = _counts(db)
    response = b.post("/admin/languages", {**ADD_FULFULDE, **change})
    assert response.status_code == 400
    error = response.text.split(f'id="f-{field}-error">', 1)[1].split("</p>", 1)[0]
    assert reason in error
    assert _counts(db) == before


@pytest.mark.db
@pytest.mark.parametrize("change, field", [
    pytest.param({"enabled": ""}, "enabled", id="french-stays-enabled"),
    pytest.param({"written": ""}, "enabled", id="french-stays-written"),
])
def test_french_cannot_be_switched_off(browser, db, change, field):  # noqa: F811
    b = browser("editor")
    form = {"name": "Français", "name_fr": "français", "written": "on", "voice": "on", "enabled": "on", "sort_order": "1"}
    response = b.post("/admin/languages/fr", {**form, **change})
    assert response.status_code == 400 and f'id="f-{field}-error"' in response.text
    with db.unit_of_work() as session:
        assert session.get(models.Language, "fr").enabled


def _counts(db):
    with db.unit_of_work() as session:
        return (session.exec(select(func.count()).select_from(models.Language)).one(),
                session.exec(select(func.count()).select_from(models.AuditLog)).one())


def _add_fulfulde(browser, db):  # noqa: F811
    b = browser("editor")
    response = b.post("/admin/languages", ADD_FULFULDE)
    assert response.status_code == 303, response.text[:500]
    with db.unit_of_work() as session:
        row = session.get(models.Language, "ff")
        assert (row.name, row.written, row.voice, row.enabled, row.fallback) == ("Fulfulde", False, True, True, "fr")
        audit = session.exec(select(models.AuditLog).where(models.AuditLog.entity == "language")).one()
        assert (audit.action, audit.entity_id, audit.after["voice"]) == ("create", "ff", True)
    return b


@pytest.mark.db
def test_fulfulde_added_in_the_console_is_listed_with_its_coverage(browser, db):  # noqa: F811
    b = _add_fulfulde(browser, db)
    page = b.get("/admin/languages").text
    row = page.split('id="language-ff"', 1)[1].split("</tr>", 1)[0]
    assert "Fulfulde" in row and "voice only" in row and 'href="/admin/studio?lang=ff"' in row
    assert "0 of " in row  # nothing recorded yet
    studio = b.get("/admin/studio?lang=ff").text
    assert 'aria-current="page">peul</a>' in studio
    clips = b.get("/admin/studio/clips?lang=ff&q=Fulfulde").text
    assert "ff.language" in clips
    assert b.get("/admin/languages/ff").status_code == 200
    assert browser("reporter").get("/admin/languages").status_code == 403


# -- a Fulfulde farmer on each channel -------------------------------------------------------------------------

FARMER = "+22370123987"


@pytest.fixture
def channels(settings):
    """One app for the console, USSD, SMS and voice, with a voice number to tell farmers."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from tests.conftest import NOW as CLOCK
    from tests.test_voice import Heard

    served = create_app(settings.model_copy(update={"voice_inbound": "answer", "voice_number": VOICE_NUMBER}),
                        clock=lambda: CLOCK)
    heard = Heard()
    with TestClient(served) as client:
        served.state.prompt_audio = heard
        client.heard = heard
        yield client


def _ussd(client, session_id, text=""):
    return client.post("/webhooks/at/ussd", data={"sessionId": session_id, "serviceCode": "*123#", "phoneNumber": FARMER,
                                                   "networkCode": "61002", "text": text}).text


def _set(db, code, **flags):
    with db.unit_of_work() as session:
        row = session.get(models.Language, code) or models.Language(code=code, name="Fulfulde", name_fr="peul")
        for name, value in flags.items():
            setattr(row, name, value)
        session.add(row)


@pytest.mark.db
def test_a_farmer_who_chose_fulfulde_by_voice(channels, db):
    from tests.test_voice import dial

    _set(db, "ff", written=False, voice=True, enabled=True, fallback="fr", sort_order=10)
    # By voice: the first prompt offers Fulfulde (third), said by its own recording (synthetic for now).
    call = dial(channels, phone=FARMER)
    assert "Fulfulde" in channels.heard.prompts[-1]
    call.press("3")
    with db.unit_of_work() as session:
        assert session.exec(select(models.Producer.language).where(models.Producer.phone == FARMER)).one() == "ff"
        assert session.exec(select(models.VoiceSession.language)).one() == "ff"
    # USSD: French, with the notice on the first screen only.
    first = _ussd(channels, "ATUid_ff_1")
    assert first.startswith("CON Fulfulde: appel au 20 22 12 34\n1. Prix du marche")
    assert "Fulfulde" not in _ussd(channels, "ATUid_ff_1", "1")
    # SMS: French, and the notice.
    channels.post("/webhooks/at/sms", data={"from": FARMER, "to": "36123", "text": "PRIX TOMATE SIKASSO",
                                             "date": "2026-11-28 09:30:00", "id": "in-ff-1", "networkCode": "61002"})
    with db.unit_of_work() as session:
        reply = session.exec(select(models.SmsMessage).where(models.SmsMessage.phone == FARMER)).one()
    assert reply.language == "fr" and reply.text.endswith("Fulfulde: appel au 20 22 12 34")
    # Disabled: gone from the voice menu; the farmer hears and reads French, told why.
    _set(db, "ff", enabled=False)
    channels.app.state.content_cache.clear()
    assert _ussd(channels, "ATUid_ff_2").startswith("CON Fulfulde: non disponible\n")
    dial(channels, phone=FARMER)
    assert "Fulfulde non disponible" in channels.heard.prompts[-1]  # said: its name, then the words
    dial(channels, phone="+22370999888")  # a new caller
    assert "Fulfulde" not in channels.heard.prompts[-1]


@pytest.mark.db
def test_fulfulde_plays_its_recordings_and_borrows_the_fallbacks_otherwise(db):
    from tests.test_studio import store

    chains = {"fr": (), "bm": ("fr",), "ff": ("fr",)}
    store(db, "ff.text.main.title.0", prompts.RECORDED)
    store(db, "fr.text.main.prices.0", prompts.RECORDED)
    store(db, "fr.num.80", prompts.RECORDED)
    store(db, "ff.text.main.tips.0", prompts.SYNTHETIC)
    store(db, "fr.language", prompts.RECORDED)
    with db.unit_of_work() as session:
        found = prompts.resolve(session, ["ff.text.main.title.0", "ff.text.main.prices.0", "ff.text.main.tips.0",
                                          "ff.language", "ff.text.main.demands.0"], chains)
        assert {clip: (row.clip, borrowed) for clip, (row, borrowed) in found.items()} == {
            "ff.text.main.title.0": ("ff.text.main.title.0", None),  # its own recording
            "ff.text.main.prices.0": ("fr.text.main.prices.0", "fr.text.main.prices.0"),  # the fallback's
            "ff.text.main.tips.0": ("ff.text.main.tips.0", None),  # its synthetic stand-in
        }  # its own name is never borrowed; nothing at all: synthesized when a call needs it
        # With Bambara as its fallback, a Bambara recording stands in first, then French.
        store(db, "bm.text.main.prices.0", prompts.RECORDED)
        chained = prompts.resolve(session, ["ff.text.main.prices.0"], {"ff": ("bm", "fr")})
        assert chained["ff.text.main.prices.0"][1] == "bm.text.main.prices.0"


def test_a_stand_in_for_a_language_without_a_voice_is_said_by_its_fallbacks():
    assert prompts._voice_for("ff", {"ff": ("bm", "fr")}) == "bm"
    assert prompts._voice_for("ff", None) == "fr"
    assert prompts._voice_for("bm", None) == "bm"


def test_the_voice_language_menu_key_follows_the_configured_order():
    assert offered(run([], configured=(FR, FF, BM), spoken=True)) == ["fr", "ff", "bm"]
    assert run(["2"], configured=(FR, FF, BM), spoken=True).effects == (SetLanguage("ff"),)


def test_the_language_names_are_phrases_of_the_data_not_of_the_catalog():
    assert not CATALOG.has("lang.fr") and not CATALOG.has("lang.bm")
    assert phrase("lang.title") in [run(["6"], language="fr").structure.layout.title]
