"""SMS keywords and replies, pure: parsing as a table in both languages with typos, replies as a
table, and every reply template within one SMS segment."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menus.keywords import parse
from menus.sms import SmsConfig, respond
from menus.types import (
    Profile,
    ReportPrice,
    SetAlertChannel,
    SetLanguage,
    StartAlerts,
    StopAlerts,
    Subscribe,
    Subscription,
    Unsubscribe,
)
from messages import default_catalog, placeholders
from messages.catalog import LANGUAGES, load_file_catalog
from messages.sms import measure, render_sms
from tests.fakes import TODAY, demo_view

NOW = dt.datetime.combine(TODAY, dt.time(9, 30), ZoneInfo("Africa/Bamako"))
VIEW = demo_view()
CROPS, MARKETS = VIEW.crops(), VIEW.markets()

# text → (intent, crop, market, extra fields)
PARSES = [
    pytest.param("PRIX TOMATE SIKASSO", "price", 1, 1, {"keyword_language": "fr"}, id="fr-price"),
    pytest.param("prix tomate", "price", 1, None, {}, id="crop-only"),
    pytest.param("songo tamati", "price", 1, None, {"keyword_language": "bm"}, id="bm-price"),
    pytest.param("Sɔngɔ Tamati Sikaso", "price", 1, 1, {"keyword_language": "bm"}, id="bm-orthography-and-typo"),
    pytest.param("TOMATE", "price", 1, None, {"keyword_language": None}, id="just-a-crop"),
    pytest.param("tomatte sikasso prix", "price", 1, 1, {}, id="typo-and-order"),
    pytest.param("prix pomme de terre bamako", "price", 3, 7, {}, id="three-word-crop"),
    pytest.param("prix pomme de tere", "price", 3, None, {}, id="typo-in-phrase"),
    pytest.param("PRIX ÉCHALOTE SÉVARÉ", "price", 4, 4, {}, id="accents"),
    pytest.param("prix echalottes sevare", "price", 4, 4, {}, id="plural-typo"),
    pytest.param("prix jaba mopti", "price", 4, 3, {}, id="bm-shallot"),
    pytest.param("prix jababa", "price", 2, None, {}, id="bm-onion-not-shallot"),
    pytest.param("tamatiw", "price", 1, None, {}, id="bm-plural"),
    pytest.param("ALERTE TOMATE SIKASSO", "subscribe", 1, 1, {}, id="subscribe"),
    pytest.param("alrte tomate sikasso", "subscribe", 1, 1, {}, id="subscribe-typo"),
    pytest.param("abonner oignon mopti", "subscribe", 2, 3, {}, id="subscribe-synonym"),
    pytest.param("STOP", "stop", None, None, {}, id="stop"),
    pytest.param("Stop.", "stop", None, None, {}, id="stop-punctuation"),
    pytest.param("stop tomate sikasso", "stop", 1, 1, {}, id="stop-one"),
    pytest.param("ARRÊTER", "stop", None, None, {"keyword_language": "fr"}, id="stop-fr"),
    pytest.param("dabila", "stop", None, None, {"keyword_language": "bm"}, id="stop-bm"),
    pytest.param("START", "start", None, None, {}, id="start"),
    pytest.param("reprendre", "start", None, None, {"keyword_language": "fr"}, id="start-fr"),
    pytest.param("LANGUE BM", "language", None, None, {"language": "bm"}, id="language-bm"),
    pytest.param("langue francais", "language", None, None, {"language": "fr"}, id="language-fr"),
    pytest.param("bamanankan", "language", None, None, {"language": "bm"}, id="language-word-alone"),
    pytest.param("AIDE", "help", None, None, {}, id="help"),
    pytest.param("dɛmɛ", "help", None, None, {"keyword_language": "bm"}, id="help-bm"),
    pytest.param("", "help", None, None, {}, id="empty"),
    pytest.param("???", "help", None, None, {}, id="punctuation-only"),
    pytest.param("bonjour", "unknown", None, None, {}, id="unknown"),
    pytest.param("P TOMATE SIKASSO 350", "report", 1, 1, {"number": 350}, id="report"),
    pytest.param("p tomate sikasso 14000 panier gros", "report", 1, 1, {"number": 14000, "unit": "basket", "kind": "wholesale"}, id="report-unit-kind"),
    pytest.param("P 650 detail kg tomate bamako", "report", 1, 7, {"number": 650, "unit": "kg", "kind": "retail"}, id="report-any-order"),
    pytest.param("P TOMATE SIKASSO", "price", 1, 1, {}, id="report-without-number-is-a-query"),
    pytest.param("aide p", "help", None, None, {}, id="p-only-opens-a-report"),
    pytest.param("TENDANCE TOMATE SIKASSO", "trend", 1, 1, {"keyword_language": "fr"}, id="trend"),
    pytest.param("tendence oignon", "trend", 2, None, {}, id="trend-typo"),
    pytest.param("prevision prix oignon mopti", "trend", 2, 3, {}, id="trend-wins-over-price"),
    pytest.param("taabolo tamati", "trend", 1, None, {"keyword_language": "bm"}, id="trend-bm"),
    # How alerts come (issue 16 item 7): a call or SMS word; "both" words beside one or alone.
    pytest.param("APPEL", "channel", None, None, {"channel": "voice", "keyword_language": "fr"}, id="channel-call"),
    pytest.param("par appel svp", "channel", None, None, {"channel": "voice"}, id="channel-call-in-a-sentence"),
    pytest.param("apel", "channel", None, None, {"channel": "voice"}, id="channel-call-typo"),
    pytest.param("VOIX", "channel", None, None, {"channel": "voice", "keyword_language": "fr"}, id="channel-voice-word"),
    pytest.param("wele", "channel", None, None, {"channel": "voice", "keyword_language": "bm"}, id="channel-call-bm"),
    pytest.param("SMS", "channel", None, None, {"channel": "sms", "keyword_language": None}, id="channel-sms"),
    pytest.param("Sms.", "channel", None, None, {"channel": "sms"}, id="channel-sms-punctuation"),
    pytest.param("SMS ET APPEL", "channel", None, None, {"channel": "both"}, id="channel-sms-and-call"),
    pytest.param("sms ni wele", "channel", None, None, {"channel": "both"}, id="channel-both-bm-words"),
    pytest.param("LES DEUX", "channel", None, None, {"channel": "both", "keyword_language": "fr"}, id="channel-les-deux"),
    pytest.param("tous", "channel", None, None, {"channel": "both"}, id="channel-tous"),
    pytest.param("tous les deux", "channel", None, None, {"channel": "both"}, id="channel-tous-les-deux"),
    pytest.param("u fila bɛɛ", "channel", None, None, {"channel": "both", "keyword_language": "bm"}, id="channel-both-bm"),
    pytest.param("APPEL LES DEUX", "channel", None, None, {"channel": "both"}, id="channel-call-and-both"),
    pytest.param("ALERTE PAR APPEL", "channel", None, None, {"channel": "voice"}, id="alert-by-call-is-a-channel"),
    pytest.param("ALERTE TOMATE SIKASSO SMS", "subscribe", 1, 1, {"channel": None}, id="subscribe-wins-with-a-crop"),
    pytest.param("STOP SMS", "stop", None, None, {"channel": None}, id="stop-sms-stops"),
    pytest.param("prix tomate tous", "price", 1, None, {"channel": None}, id="tous-among-other-words-is-no-channel"),
    pytest.param("prix par sms", "price", None, None, {"channel": None}, id="price-wins-over-channel"),
    pytest.param("deux tomate", "price", 1, None, {"channel": None}, id="both-word-with-a-crop-is-no-channel"),
]


@pytest.mark.parametrize("text, intent, crop, market, extra", PARSES)
def test_parse(text, intent, crop, market, extra):
    parsed = parse(text, CROPS, MARKETS)
    assert (parsed.intent, parsed.crop_id, parsed.market_id) == (intent, crop, market)
    for name, value in extra.items():
        assert getattr(parsed, name) == value, name


@given(st.text(max_size=200))
def test_parse_never_fails(text):
    assert parse(text, CROPS, MARKETS).intent


SUBS = (Subscription(1, 1), Subscription(2, 3))
ENUMERATOR = {"role": "enumerator"}

# text, caller's language, profile extras → reply fragments (as sent, GSM-7 folded), effects
REPLIES = [
    pytest.param("PRIX TOMATE SIKASSO", "fr", {}, ["Tomate Sikasso 28/11: 14 000F/panier (gros) +8%"], (), id="price-one"),
    pytest.param("songo tamati sikasso", None, {}, ["Tamati Sikasso 28/11: 14 000F/panye (gros) +8%"], (), id="bm-unknown-caller-answered-in-bm"),
    pytest.param("prix oignon", "fr", {"region": "Mopti"}, ["Oignon F/kg: Mopti 975 +3% (28/11); Sévaré 1 000 +5% (28/11); Bamako"], (), id="price-list-home-region-first"),
    pytest.param("prix tomate bamako", "fr", {}, ["Tomate Bamako 16/11: 650F/kg (détail)"], (), id="no-previous-price"),
    pytest.param("prix echalote", "fr", {}, ["Pas encore de prix pour Échalote."], (), id="no-price"),
    pytest.param("prix oignon diré", "fr", {}, ["Oignon Diré 28/11: 1 050F/kg (gros) +11%"], (), id="market-typo-accent"),
    pytest.param("prix", "fr", {}, ["Envoyez PRIX et le produit"], (), id="price-how"),
    pytest.param("ALERTE TOMATE SIKASSO", "fr", {}, ["Alertes Tomate à Sikasso activées. STOP pour arreter."], (Subscribe(1, 1),), id="subscribe"),
    pytest.param("ALERTE TOMATE SIKASSO", "bm", {}, ["Tamati sòngò kunnafoni Sikasso: a daminèna."], (Subscribe(1, 1),), id="bm-subscribe"),
    pytest.param("ALERTE TOMATE", "fr", {}, ["Quel marché? Ex: ALERTE Tomate SIKASSO"], (), id="subscribe-which-market"),
    pytest.param("ALERTE", "fr", {}, ["Envoyez ALERTE, le produit et le marché"], (), id="subscribe-how"),
    pytest.param("STOP", "fr", {"subscriptions": SUBS}, ["Vous ne recevrez plus d'alertes Sugu. START pour reprendre."], (StopAlerts(),), id="stop"),
    pytest.param("dabila", "bm", {}, ["Sugu kunnafoni tèna ci i ma tun."], (StopAlerts(),), id="bm-stop"),
    pytest.param("STOP TOMATE", "fr", {"subscriptions": SUBS}, ["Alertes Tomate (Sikasso) arretées."], (Unsubscribe(1, 1),), id="stop-one"),
    # Finding (issue 15): "STOP CAROTTE" without a carrot alert, or "STOP SIKASO", stopped every SMS.
    pytest.param("STOP ECHALOTE", "fr", {"subscriptions": SUBS}, ["Vous n'avez pas d'alerte Échalote; rien n'est arreté. Vos alertes: Tomate Sikasso, Oignon Mopti. STOP seul"], (), id="stop-crop-without-alert-explains-and-stops-nothing"),
    pytest.param("STOP TOMATE MOPTI", "fr", {"subscriptions": SUBS}, ["Vous n'avez pas d'alerte Tomate Mopti; rien n'est arreté."], (), id="stop-crop-market-without-alert-stops-nothing"),
    pytest.param("STOP SIKASO", "fr", {"subscriptions": SUBS}, ["Alertes Tomate (Sikasso) arretées."], (Unsubscribe(1, 1),), id="stop-market-stops-that-markets-alerts"),
    pytest.param("STOP ECHALOTE", "fr", {}, ["Vous n'avez aucune alerte Échalote; rien n'est arreté. STOP seul arrete tous les SMS Sugu."], (), id="stop-crop-without-any-alert"),
    pytest.param("STOP ECHALOTE", "bm", {"subscriptions": SUBS}, ["kunnafoni tè i ye; foyi ma dabila.", "Tamati Sikasso, Jababa Mopti"], (), id="bm-stop-crop-without-alert"),
    pytest.param("STOP SVP", "fr", {"subscriptions": SUBS}, ["Vous ne recevrez plus"], (StopAlerts(),), id="stop-with-other-words-still-stops-all"),
    pytest.param("START", "fr", {"subscriptions": SUBS, "opted_out": True}, ["Alertes Sugu reprises (2 abonnement(s))."], (StartAlerts(),), id="start"),
    pytest.param("START", "fr", {}, ["Alertes Sugu reprises. Envoyez ALERTE"], (StartAlerts(),), id="start-without-subscriptions"),
    pytest.param("LANGUE BM", "fr", {}, ["Kan: bamanankan."], (SetLanguage("bm"),), id="language"),
    pytest.param("LANGUE", "fr", {}, ["Envoyez LANGUE FR ou LANGUE BM."], (), id="language-which"),
    pytest.param("bonjour", "fr", {}, ["Sugu: PRIX TOMATE SIKASSO", "Menu: *123#"], (), id="unknown-gets-help"),
    pytest.param("i ni ce", "bm", {}, ["Sugu: PRIX TAMATI SIKASSO (sòngò)"], (), id="bm-unknown-gets-help"),
    pytest.param("APPEL", "fr", {}, ["Vos alertes de prix viendront par appel. SMS pour les SMS"], (SetAlertChannel("voice"),), id="channel-call"),
    pytest.param("SMS", "fr", {"alert_channel": "voice"}, ["viendront par SMS. APPEL pour un appel"], (SetAlertChannel("sms"),), id="channel-sms"),
    pytest.param("LES DEUX", None, {}, ["viendront par SMS et par appel."], (SetAlertChannel("both"),), id="channel-both-unknown-caller-fr"),
    pytest.param("wele", None, {}, ["I ka sòngò kunnafoniw bèna na wele la."], (SetAlertChannel("voice"),), id="channel-bm-unknown-caller-answered-in-bm"),
    pytest.param("SMS", "bm", {}, ["bèna na SMS la. WELE ci"], (SetAlertChannel("sms"),), id="channel-sms-bm"),
    pytest.param("APPEL", "fr", {"opted_out": True}, ["par appel.", "Vos alertes sont arretées: START pour reprendre."], (SetAlertChannel("voice"),), id="channel-while-stopped-says-so"),
    pytest.param("sms ni wele", "bm", {"opted_out": True}, ["SMS ni wele la.", "START k'u daminè kokura."], (SetAlertChannel("both"),), id="channel-bm-both-while-stopped-fits"),
    pytest.param("aide", "fr", {}, ["APPEL (alertes par appel)"], (), id="help-says-how-to-choose-calls"),
    pytest.param("deme", "bm", {}, ["WELE (kunnafoni wele la)"], (), id="bm-help-says-how-to-choose-calls"),
    pytest.param("P TOMATE SIKASSO 14500", "fr", {}, ["Seuls les enqueteurs inscrits"], (), id="report-not-allowed"),
    pytest.param("P TOMATE SIKASSO 14500", "fr", ENUMERATOR, ["Merci. Prix publié: Tomate Sikasso 14 500F/panier (28/11)."], (ReportPrice(1, 1, 14500, "basket", "wholesale"),), id="report-published"),
    pytest.param("P TOMATE SIKASSO 90000", "fr", ENUMERATOR, ["à vérifier: bien plus haut que d'habitude (13 500F)"], (ReportPrice(1, 1, 90000, "basket", "wholesale", "bien plus haut que d'habitude (13\u202f500F)"),), id="report-too-high-held"),
    pytest.param("P TOMATE SIKASSO 3000", "fr", ENUMERATOR, ["bien plus bas que d'habitude"], None, id="report-too-low-held"),
    pytest.param("P ECHALOTE MOPTI 500", "fr", ENUMERATOR, ["pas de prix récent pour comparer"], None, id="report-no-reference-held"),
    pytest.param("P TOMATE 500", "fr", ENUMERATOR, ["Format: P TOMATE SIKASSO 350"], (), id="report-without-market"),
    pytest.param("P TOMATE SIKASSO 350 kg", "bm", ENUMERATOR, ["Sòngò sòròla: Tamati Sikasso 350F/kg", "sòngò kura tè yen"], None, id="bm-report-other-unit"),
]


@pytest.mark.parametrize("text, lang, extra, fragments, effects", REPLIES)
def test_reply(text, lang, extra, fragments, effects):
    reply = respond(
        text,
        profile=Profile(phone="+22370000001", language=lang, **extra),
        data=VIEW,
        catalog=default_catalog(),
        now=NOW,
        config=SmsConfig(),
    )
    sent = render_sms(reply.text, reply.language)
    for fragment in fragments:
        assert fragment in sent, f"{fragment!r} not in {sent!r}"
    if effects is not None:
        assert reply.effects == effects
    assert measure(sent).segments == 1, sent


# Worst cases from the demo content for every placeholder an SMS template uses.
LONG = {
    "crop": "Pomme de terre",
    "market": "Bandiagara",
    "date": "28/11",
    "price": "1 250 000",
    "unit": "sac 100kg",
    "kind": "détail",
    "change": " +150%",
    "items": "Pomme de terre Bandiagara 28/11: 1 250 000F/sac 100kg (+150%)",
    "count": "12",
    "ussd": "*123*45#",
    "reason": "bien plus haut que d'habitude (1 250 000F)",
    "median": "1 250 000",
    "limit": "1000",
    "quantity": "1 250 000",
    "wanted": "1 250 000",
    "direction": "a ma yɛlɛma",
    "until": "26/12",
    "span": "dɔgɔkun 4",
    "forecast": "1 250 000",
    "low": "1 100 000",
    "high": "1 400 000",
    "error": "35",
    "what": "Pomme de terre Bandiagara",
    "alerts": "12 alertes",  # what a list too long for one SMS becomes
    "name": "Koyra Chiini",  # a staff-added language's own name
    "number": "20 62 00 00",  # the voice number, as dialled in Mali
}
# Composed only when the result fits one segment; a shorter template stands in otherwise.
FITTED_WHEN_SENT = {"sms.trend_one_forecast"}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    "key", sorted(k for k in load_file_catalog("fr") if k.startswith(("sms.", "alert.")) and k not in FITTED_WHEN_SENT)
)
def test_every_sms_template_fits_one_segment(lang, key):
    template = load_file_catalog(lang)[key]
    text = template.format(**{name: LONG[name] for name in placeholders(template)})
    sent = render_sms(text, lang)
    encoding = measure(sent)
    assert encoding.encoding == "GSM-7", sent
    assert encoding.segments == 1, f"{encoding.units} septets: {sent}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_folding_can_be_turned_off(lang):
    reply = respond("LANGUE BM", profile=Profile(phone="+22370000001", language=lang), data=VIEW,
                    catalog=default_catalog(), now=NOW)
    assert "ɛ" in render_sms(reply.text, "bm", fold=False)
    assert measure(render_sms(reply.text, "bm", fold=False)).encoding == "UCS-2"
