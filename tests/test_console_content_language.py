"""Issue 15 on the content pages (farmers' messages, tips, broadcasts): French by default, phone
first, search and filters on long lists, forgiving forms, and a broadcast that states its count,
SMS segments and cost before anything is sent."""

from __future__ import annotations

import re

import pytest
from sqlmodel import func, select

from gateway.outbound import broadcast
from gateway.data import models
from gateway.app import create_app
from tests.configured_languages import FULFULDE, SONGHOY, add_languages
from tests.test_admin import Browser, app, browser, clock, staff  # noqa: F401 - fixtures

pytestmark = pytest.mark.db


def visible(html: str) -> str:
    """The page's main text as a reader sees it (no tags, no script)."""
    main = html.split("<main", 1)[-1]
    main = re.sub(r"<(script|style)\b.*?</\1>", " ", main, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)).replace("&#39;", "'").replace("&amp;", "&")


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="(?:f-)?([\w]+?)-error">([^<]*)</p>', html))


def count(db, table, *where) -> int:
    with db.unit_of_work() as session:
        return session.exec(select(func.count()).select_from(table).where(*where)).one()


@pytest.fixture
def french(settings, clock, staff):  # noqa: F811
    """An editor signed in to a console that speaks French (the default outside tests)."""
    b = Browser(create_app(settings.model_copy(update={"console_language": "fr"}), clock=clock))
    assert b.login("editor@sugu.test").status_code == 303
    yield b
    b.close()


@pytest.fixture
def farmers(db):
    """Three producers in Sikasso: one reads French, two Bambara."""
    with db.unit_of_work() as session:
        for i, language in enumerate(["fr", "bm", "bm"]):
            session.add(models.Producer(phone=f"+2237100000{i}", language=language, region="Sikasso"))


# -- tips: search and filters --------------------------------------------------------------------------


def tip_titles(html: str) -> list[str]:
    table = html.split('class="cards tips-list"', 1)
    return re.findall(r'<td class="tip-fr" data-label="[^"]*"[^>]*><b>([^<]*)</b>', table[1]) if len(table) > 1 else []


@pytest.mark.parametrize(
    "query, expected",
    [
        pytest.param("", 32, id="everything"),
        pytest.param("q=pépinière", 1, id="search-french-text"),
        pytest.param("q=PÉPINIÈRE", 1, id="search-ignores-case"),
        pytest.param("q=pepinyɛri", 1, id="search-bambara-title"),
        pytest.param("q=piment", 3, id="search-several"),
        pytest.param("category=nutrition", 5, id="category"),
        pytest.param("crop=none", 15, id="tips-for-every-crop"),
        pytest.param("category=gap&q=piment", 2, id="search-within-a-category"),
        pytest.param("state=retired", 0, id="retired-none-yet"),
        pytest.param("category=bogus&crop=abc&state=zz", 32, id="unknown-filters-mean-any"),
    ],
)
def test_issue15_tips_search_and_filters(browser, query, expected):
    # Finding: Tips was one 20,940 px page with no search at 390 px.
    page = browser("editor").get(f"/admin/tips?{query}")
    assert page.status_code == 200
    assert len(tip_titles(page.text)) == expected
    assert '<form method="get"' in page.text and 'name="q"' in page.text and 'name="category"' in page.text
    assert 'name="crop"' in page.text and 'name="state"' in page.text
    if expected == 0:
        assert "No tip matches this search." in page.text


def test_issue15_tips_filter_by_crop_and_retired(browser, db):
    with db.unit_of_work() as session:
        tomato = session.exec(select(models.Crop).where(models.Crop.code == "tomato")).one()
        tip = session.exec(select(models.Tip).where(models.Tip.crop_id == tomato.id)).first()
        tip.active = False
        session.add(tip)
        tomato_id, retired_title = tomato.id, tip.title_fr
    b = browser("editor")
    assert len(tip_titles(b.get(f"/admin/tips?crop={tomato_id}").text)) == 3
    retired = b.get("/admin/tips?state=retired").text
    assert tip_titles(retired) == [retired_title] and "1 tip found" in retired
    assert retired_title not in tip_titles(b.get("/admin/tips?state=active").text)


def test_issue15_tips_list_in_french_as_cards(french):
    page = french.get("/admin/tips?category=nutrition").text
    assert '<table class="cards tips-list">' in page
    assert 'data-label="Catégorie">nutrition' in page and 'data-label="Culture">' in page
    assert "5 conseils trouvés" in page and "32 conseils en tout" in page
    # Categories are words, not codes, in the filter and the list.
    assert ">bonnes pratiques agricoles</option>" in page and ">gap<" not in page
    nothing = french.get("/admin/tips?q=zzzz").text
    assert "Aucun conseil ne correspond à cette recherche." in nothing and "tips-list" not in nothing


# -- tips: the form keeps what was typed ---------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field, reason",
    [
        pytest.param({"title_fr": ""}, "title_fr", "Required", id="no-french-title"),
        pytest.param({"text_fr": "  "}, "text_fr", "Required", id="no-french-text"),
        pytest.param({"title_bm": "x" * 61}, "title_bm", "At most 60 characters (now 61)", id="long-title"),
        pytest.param({"category": "bogus"}, "category", "Choose a category", id="bad-category"),
        pytest.param({"crop_id": "999"}, "crop_id", "Unknown crop", id="unknown-crop"),
        pytest.param({"crop_id": "abc"}, "crop_id", "Unknown crop", id="crop-not-a-number"),
    ],
)
def test_issue15_tip_form_keeps_typed_values_with_field_errors(browser, db, change, field, reason):
    with db.unit_of_work() as session:
        before = session.get(models.Tip, 1).model_dump()
    form = {"category": "postharvest", "crop_id": "", "title_fr": "Séchage", "title_bm": "Jalan",
            "text_fr": "Séchez les oignons à l'ombre.", "text_bm": "Jaba ja suma la.", **change}
    answer = browser("editor").post("/admin/tips/1", form)
    assert answer.status_code == 400
    assert reason in field_errors(answer.text)[field]
    for name in ("title_fr", "title_bm"):
        if form[name].strip() and name != field:
            assert f'value="{form[name]}"' in answer.text
    assert "Séchez les oignons à l&#39;ombre." in answer.text or field == "text_fr"
    with db.unit_of_work() as session:
        assert session.get(models.Tip, 1).model_dump() == before  # nothing saved


def test_issue15_new_tip_refused_creates_nothing(browser, db):
    tips = count(db, models.Tip)
    answer = browser("editor").post("/admin/tips/0", {"category": "gap", "title_fr": "Paillage", "text_fr": ""})
    assert answer.status_code == 400 and 'value="Paillage"' in answer.text
    assert count(db, models.Tip) == tips


# -- messages: search and filters ------------------------------------------------------------------------


def message_keys(html: str) -> list[str]:
    return re.findall(r'<td data-label="[^"]*"><a href="/admin/messages/([^"]+)">', html)


def test_issue15_messages_search(browser, db):
    b = browser("editor")
    first = b.get("/admin/messages").text
    total = int(re.search(r'id="messages-count">(\d+) messages', first).group(1))
    assert total > 100 and len(message_keys(first)) == 60  # in pages
    every = [k for n in range(1, total // 60 + 2) for k in message_keys(b.get(f"/admin/messages?page={n}").text)]
    every = list(dict.fromkeys(every))
    assert len(every) == total
    # By screen or section: only the SMS replies.
    sms = message_keys(b.get("/admin/messages?section=sms").text)
    assert sms and all(k.startswith("sms.") for k in sms) and len(sms) < len(every)
    # By key and by text, either language, whatever the case.
    assert "main.title" in message_keys(b.get("/admin/messages?q=MAIN.TITLE").text)
    found = message_keys(b.get("/admin/messages?q=Prix ET conseils").text)
    assert "main.title" in found and len(found) < 5
    # Reviewed or not, and missing Bambara.
    b.post("/admin/messages/main.title", {"text_fr": "Sugu - prix et conseils", "text_bm": "Sugu - sɔngɔ kura", "reviewed_bm": "on"})
    assert message_keys(b.get("/admin/messages?show=reviewed").text) == ["main.title"]
    assert "main.title" not in message_keys(b.get("/admin/messages?show=unreviewed&section=main").text)
    assert message_keys(b.get("/admin/messages?show=edited").text) == ["main.title"]
    # Combined, and a search that finds nothing says so.
    assert message_keys(b.get("/admin/messages?section=main&q=sɔngɔ kura").text) == ["main.title"]
    nothing = b.get("/admin/messages?q=zzzz-nothing").text
    assert "No message matches this search." in nothing and message_keys(nothing) == []
    # Unknown filter values mean "any", never a crash.
    assert message_keys(b.get("/admin/messages?section=nope&show=bogus").text) == every[:60]


def test_issue15_messages_list_in_french_as_cards(french):
    page = french.get("/admin/messages?section=main").text
    assert '<table class="cards messages-list">' in page and 'data-label="Clé"' in page
    assert ">réponses SMS</option>" in page  # sections as words
    assert re.search(r"\d+ messages trouvés · \d+ messages en tout", page)


# -- messages: the editor in French, forgiving --------------------------------------------------------------


def test_issue15_message_editor_in_french_with_its_script_texts(french):
    page = french.get("/admin/messages/main.title").text
    assert "Écran USSD, tel que le téléphone l&#39;affiche" in page
    # The live preview's own texts come from the catalog (a data- attribute), not the script.
    assert 'data-unavailable="Aperçu indisponible' in page
    assert "Preview unavailable" not in page
    preview = french.post("/admin/messages/sms.help/preview", {"language": "fr", "text": "x" * 170}).json()
    assert preview["problem"].startswith("Trop long pour un SMS : 2 segments")
    refused = french.post("/admin/messages/sms.help/preview", {"language": "fr", "text": "Composez {ussd:x>5}"})
    assert refused.status_code == 400 and "sans format" in refused.json()["error"]


def test_issue15_message_form_keeps_typed_values(browser, db):
    b = browser("editor")
    answer = b.post("/admin/messages/prices.none", {"text_fr": "Pas de prix pour {plante}", "text_bm": "{crop} sɔngɔ tɛ yen.",
                                                    "reviewed_bm": "on"})
    assert answer.status_code == 400
    assert "Unknown placeholder(s): {plante}" in field_errors(answer.text)["text_fr"]
    assert "Pas de prix pour {plante}</textarea>" in answer.text and "{crop} sɔngɔ tɛ yen.</textarea>" in answer.text
    assert 'name="reviewed_bm" checked' in answer.text
    assert count(db, models.MessageOverride) == 0  # the valid Bambara is not saved either


# -- broadcasts ---------------------------------------------------------------------------------------------

COMPOSED = {"text_fr": "Réunion des producteurs jeudi à Sikasso.", "region": "Sikasso"}


def test_issue15_broadcast_send_needs_confirmation_with_count_and_cost(browser, db, farmers):
    # Finding: "Send" sent at once, with no confirmation step.
    b = browser("editor")
    confirm = b.post("/admin/broadcasts", {**COMPOSED, "text_bm": "Sɛnɛkɛlaw ka ɲɔgɔnye alamisa."})
    assert confirm.status_code == 200
    assert count(db, models.Broadcast) == 0  # nothing created, nothing sent
    text = visible(confirm.text)
    assert "3 producers will receive this message." in text
    assert "3 SMS segments in all." in text
    assert "Estimated cost: about 30 XOF" in text
    assert "French: 1 recipient, GSM-7, 1 segment each, about 10 XOF" in text
    assert "Bambara: 2 recipients" in text
    assert 'name="confirmed" value="1"' in confirm.text and "Send to 3 producers" in text
    sent = b.post("/admin/broadcasts", {**COMPOSED, "text_bm": "Sɛnɛkɛlaw ka ɲɔgɔnye alamisa.", "confirmed": "1"})
    assert sent.status_code == 303
    with db.unit_of_work() as session:
        (created,) = session.exec(select(models.Broadcast)).all()
    assert (created.status, created.text_bm) == ("pending", "Sɛnɛkɛlaw ka ɲɔgɔnye alamisa.")


def test_issue15_broadcast_confirmation_in_french(french, farmers):
    page = visible(french.post("/admin/broadcasts", {**COMPOSED, "text_bm": "Sɛnɛkɛlaw ka ɲɔgɔnye."}).text)
    assert "3 producteurs recevront ce message." in page
    assert "français : 1 destinataire, GSM-7, 1 segment chacun, environ 10 FCFA" in page
    assert "bambara : 2 destinataires" in page
    assert "Coût estimé : environ 30 FCFA" in page and "Envoyer à 3 producteurs" in page


@pytest.mark.parametrize(
    "audience",
    [
        pytest.param({"region": "Mopti"}, id="nobody-in-the-region"),
        pytest.param({"region": "Sikasso", "clusters": "Nowhere"}, id="nobody-in-the-group"),
    ],
)
def test_issue15_broadcast_with_no_recipients_is_refused(browser, db, farmers, audience):
    b = browser("editor")
    for confirmed in ({}, {"confirmed": "1"}):  # even a forged confirmation
        answer = b.post("/admin/broadcasts", {"text_fr": "Bonjour", **audience, **confirmed})
        assert answer.status_code == 400
        assert "Nobody matches this audience, so nothing was sent." in visible(answer.text)
        assert ">Bonjour</textarea>" in answer.text  # what was typed is kept
    assert count(db, models.Broadcast) == 0


def test_issue15_broadcast_detail_after_send_shows_planned_counts(browser, db, farmers):
    # Finding: right after sending, 0 recipients / 0 segments / 0 XOF under "queued to 3 producers".
    b = browser("editor")
    sent = b.post("/admin/broadcasts", {**COMPOSED, "confirmed": "1"})
    page = b.get(sent.headers["location"])
    text = visible(page.text)
    assert "Broadcast #1 to 3 producers is queued." in text
    planned = visible(page.text.split('id="planned"', 1)[1].split("</div>\n</div>", 1)[0])
    assert "3 recipients planned" in planned and "3 SMS segments planned" in planned and "30 XOF, estimated cost" in planned
    assert "Queued: sending starts within a minute" in text and "queued" in text  # the status in words
    assert 'id="progress"' not in page.text
    assert "planned" in visible(b.get("/admin/broadcasts").text)
    # Once the worker has written the outbox rows, the real counts replace the plan.
    from messages import default_catalog

    with db.unit_of_work() as session:
        row = session.get(models.Broadcast, 1)
        broadcast.expand(session, row, now=row.created_at, catalog=default_catalog(), settings=b.client.app.state.settings)
    after = b.get("/admin/broadcasts/1").text
    assert 'id="planned"' not in after and 'id="progress"' in after
    assert "3 recipients" in visible(after) and "3 queued" in visible(after)


@pytest.fixture
def fulfulde(db, farmers):
    """Two of the farmers in Sikasso speak Fulfulde, a voice-only language staff added; Songhoy is
    configured too (disabled), with nobody."""
    add_languages(db, FULFULDE, SONGHOY)
    with db.unit_of_work() as session:
        for i in range(2):
            session.add(models.Producer(phone=f"+2237100010{i}", language="ff", region="Sikasso"))


@pytest.mark.parametrize("console, audience, total, says, never", [
    pytest.param("editor", {}, "5 producers will receive this message.", [
                                "French: 3 recipients, GSM-7, 1 segment each, about 30 XOF",
                                "2 of them speak peul: SMS are not written in it, they read this text.",
                                "Bambara: 2 recipients"], [], id="everyone"),
    pytest.param("editor", {"language": "ff"}, "2 producers will receive this message.", [
                                                "French: 2 recipients, GSM-7, 1 segment each, about 20 XOF",
                                                "2 of them speak peul"],
                 ["Bambara:", "0 recipients"], id="filter-fulfulde-no-empty-bambara-line"),
    pytest.param("editor", {"language": "bm"}, "2 producers will receive this message.", ["Bambara: 2 recipients"], ["French:", "0 recipients", "peul"],
                 id="filter-bambara-no-empty-french-line"),
    pytest.param("french", {"language": "ff"}, "2 producteurs recevront ce message.", ["français : 2 destinataires",
                                                "dont 2 qui parlent peul : les SMS ne sont pas écrits dans cette langue"],
                 ["bambara :", "0 destinataire"], id="in-french"),
])
def test_broadcast_to_a_voice_only_language_is_counted_with_the_french_text(browser, french, fulfulde, console,
                                                                           audience, total, says, never):
    b = french if console == "french" else browser("editor")
    form = b.get("/admin/broadcasts").text
    options = re.findall(r'<option value="(\w+)"[^>]*>([^<]+)</option>', form.split('id="language"', 1)[1].split("</select>")[0])
    assert [code for code, _ in options] == ["fr", "bm", "ff", "ses"] and ("ff", "peul") in options
    confirm = visible(b.post("/admin/broadcasts", {**COMPOSED, "text_bm": "I ni ce", **audience}).text)
    estimate = b.post("/admin/broadcasts/preview", {**COMPOSED, "text_bm": "I ni ce", **audience}).json()
    assert total in confirm
    for text in (confirm, " ".join(estimate["lines"])):
        assert all(fragment in text for fragment in says), text
        assert not any(fragment in text for fragment in never), text


def test_broadcast_language_filter_refuses_an_unconfigured_code(browser, db, fulfulde):
    answer = browser("editor").post("/admin/broadcasts", {**COMPOSED, "language": "wo", "confirmed": "1"})
    assert answer.status_code == 400 and field_errors(answer.text)["language"].startswith("Unknown language")
    assert count(db, models.Broadcast) == 0


@pytest.mark.parametrize("language, says", [
    pytest.param("en", "2 Bambara speakers will receive the French text: no Bambara text was given.", id="en"),
    pytest.param("fr", "2 bambaraphones recevront le texte français : aucun texte bambara n'a été saisi.", id="fr"),
])
def test_issue15_broadcast_french_only_warns_bambara_get_french(browser, french, farmers, language, says):
    # Finding: that Bambara speakers get French was said only in the estimate line.
    b = french if language == "fr" else browser("editor")
    form = b.get("/admin/broadcasts").text
    hint = {"en": "Leave it empty and Bambara speakers will receive the French text.",
            "fr": "Si vous le laissez vide, les bambaraphones recevront le texte français."}[language]
    assert hint in visible(form)
    confirm = b.post("/admin/broadcasts", COMPOSED)
    assert re.search(r'<p class="alert">' + re.escape(says.replace("'", "&#39;")), confirm.text), visible(confirm.text)
    estimate = b.post("/admin/broadcasts/preview", COMPOSED).json()
    assert estimate["warning"] == says
    # With a Bambara text, no warning.
    assert b.post("/admin/broadcasts/preview", {**COMPOSED, "text_bm": "I ni ce"}).json()["warning"] == ""
    assert 'class="alert"' not in b.post("/admin/broadcasts", {**COMPOSED, "text_bm": "I ni ce"}).text
    sent = b.post("/admin/broadcasts", {**COMPOSED, "confirmed": "1"})
    assert 'id="bm-reads-french"' in b.get(sent.headers["location"]).text


@pytest.mark.parametrize(
    "change, field, reason",
    [
        pytest.param({"text_fr": ""}, "text_fr", "Write the French text", id="no-french"),
        pytest.param({"at": "tomorrow"}, "at", "Unreadable date and time", id="unreadable-time"),
        pytest.param({"at": "2020-01-01T08:00"}, "at", "This time is past", id="past-time"),
        pytest.param({"region": "Atlantis"}, "region", "Unknown region", id="unknown-region"),
        pytest.param({"crop": "mango-x"}, "bc_crop", "Unknown crop", id="unknown-crop"),
        pytest.param({"language": "en"}, "language", "Unknown language", id="unknown-language"),
    ],
)
def test_issue15_broadcast_form_keeps_typed_values_with_field_errors(browser, db, farmers, change, field, reason):
    form = {"text_fr": "Réunion jeudi", "text_bm": "Ɲɔgɔnye alamisa", "region": "Sikasso", "market": "sikasso",
            "clusters": "Kignan, Loulouni", "language": "", "at": "", **change}
    answer = browser("editor").post("/admin/broadcasts", form)
    assert answer.status_code == 400
    assert reason in field_errors(answer.text)[field]
    assert "Ɲɔgɔnye alamisa</textarea>" in answer.text and 'value="Kignan, Loulouni"' in answer.text
    if field != "region":
        assert '<option value="Sikasso" selected>' in answer.text
    if field != "at" or change["at"]:
        assert f'value="{form["at"]}"' in answer.text
    assert count(db, models.Broadcast) == 0


def test_issue15_broadcast_confirmation_cancel_keeps_the_message(browser, farmers):
    b = browser("editor")
    confirm = b.post("/admin/broadcasts", {**COMPOSED, "text_bm": "I ni ce", "language": "bm"}).text
    cancel = re.search(r'<a class="button secondary" href="([^"]+)"', confirm).group(1).replace("&amp;", "&")
    back = b.get(cancel).text
    assert ">Réunion des producteurs jeudi à Sikasso.</textarea>" in back and ">I ni ce</textarea>" in back
    assert '<option value="bm" selected>' in back and '<option value="Sikasso" selected>' in back


def test_issue15_broadcasts_stay_for_editors(browser, farmers):
    assert browser("reporter").post("/admin/broadcasts", {**COMPOSED, "confirmed": "1"}).status_code == 403


def test_issue15_no_broadcasts_yet_says_how_to_create_one(french):
    page = french.get("/admin/broadcasts").text
    assert '<p class="empty">Aucune diffusion pour l&#39;instant. Rédigez un message ci-dessus' in page
    assert "broadcasts-list" not in page


def test_issue15_broadcast_pages_in_french(french, farmers, db):
    sent = french.post("/admin/broadcasts", {**COMPOSED, "confirmed": "1"})
    detail = visible(french.get(sent.headers["location"]).text)
    assert "Diffusion n° 1" in detail and "en file d'envoi" in detail and "message libre" in detail
    assert "3 destinataires prévus" in detail and "3 segments SMS prévus" in detail
    with db.unit_of_work() as session:
        broadcast.publish_alerts(session, pairs=[(1, 1), (2, 1)], now=models.Broadcast().created_at)
    page = french.get("/admin/broadcasts").text
    assert '<table class="cards broadcasts-list">' in page and "data-label=\"Statut\">en file d&#39;envoi" in page
    assert "Alertes de prix (2 prix)" in page and "alerte de prix" in page
    assert "3 (prévision)" in page and "environ 30 FCFA" in page
    for english in ("recipients", "pending", "custom", "Price alerts"):
        assert english not in visible(page), english


def test_issue15_scheduled_broadcast_says_when_in_words(browser, farmers):
    import datetime as dt

    from tests.conftest import NOW

    at = (NOW + dt.timedelta(days=1)).replace(hour=8, minute=0)
    b = browser("editor")
    form = {**COMPOSED, "at": at.strftime("%Y-%m-%dT%H:%M")}
    assert f"Sent from {at:%d/%m/%Y} 08:00, outside the quiet hours." in visible(b.post("/admin/broadcasts", form).text)
    sent = b.post("/admin/broadcasts", {**form, "confirmed": "1"})
    text = visible(b.get(sent.headers["location"]).text)
    assert f"Scheduled: it will be sent from {at:%d/%m/%Y} 08:00" in text and "scheduled" in text
    assert "3 recipients planned" in text


def test_issue15_messages_list_comes_in_pages_that_keep_the_filters(browser):
    from gateway.admin.texts import MESSAGES_PER_PAGE

    b = browser("editor")
    first = b.get("/admin/messages").text
    assert first.count('<tr>\n<td data-label') <= MESSAGES_PER_PAGE
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = b.get("/admin/messages?show=all&page=2").text
    assert 'rel="prev"' in second
    assert b.get("/admin/messages?page=9999").status_code == 200  # beyond the last: the last page
    assert b.get("/admin/messages?page=abc").status_code == 200
    filtered = b.get("/admin/messages?q=prix&page=1").text
    assert "page=2" not in filtered or "q=prix" in filtered


# -- the Texts page edits every written language, not a pair named in the code ---------------------------

SES_TEXTS = {"main.title": "Sugu - hayey"}


@pytest.mark.parametrize("catalog_file, offered", [
    pytest.param(True, ["fr", "bm", "ses"], id="written-with-its-catalog-even-disabled"),
    pytest.param(False, ["fr", "bm"], id="marked-written-without-a-catalog-file"),
])
def test_the_texts_page_offers_every_written_language(browser, db, monkeypatch, catalog_file, offered):
    from gateway.admin import texts
    from messages import Catalog
    from messages.catalog import load_file_catalog

    add_languages(db, FULFULDE, {**SONGHOY, "written": True})  # Fulfulde is voice-only: no texts
    if catalog_file:
        files = {"fr": load_file_catalog("fr"), "bm": load_file_catalog("bm"), "ses": SES_TEXTS}
        monkeypatch.setattr(texts, "default_catalog", lambda: Catalog(files))
        monkeypatch.setattr(texts, "load_file_catalog", lambda lang: files[lang])
    b = browser("editor")
    listed = b.get("/admin/messages?q=main.title").text
    assert re.findall(r'<th lang="(\w+)">', listed) == offered
    editor = b.get("/admin/messages/main.title").text
    assert re.findall(r'<textarea id="text_(\w+)"', editor) == offered
    typed = {f"text_{lang}": f"Sugu {lang}" for lang in ("fr", "bm", "ses", "ff")}
    assert b.post("/admin/messages/main.title", typed).status_code == 303
    with db.unit_of_work() as session:
        saved = sorted(session.exec(select(models.MessageOverride.language)).all())
    assert saved == sorted(offered)  # nothing for Fulfulde, nor for a language without its catalog
    preview = b.post("/admin/messages/main.title/preview", {"text": "Sugu", "language": "ses"})
    assert preview.status_code == (200 if catalog_file else 400)
