"""SMS replies as structure (issue 16 item 1, "one menu engine, three channels"): each reply is
built from phrases with typed values (menus.screen), its text is those parts worded by the same
Wording as USSD (menus.sms_render), and the voice channel can say the same parts — a farmer who
cannot read could hear the SMS reply."""

from __future__ import annotations

from string import Formatter

import pytest

from menus.screen import CropRef, MarketRef, Money, Pair, Phrase, Text, UnitRef, phrase
from menus.sms import SmsConfig, respond
from menus.sms_render import SmsRenderer, joined
from menus.types import Profile, Subscription
from menus.voice import _SAYABLE, DataNames, VoiceRenderer
from menus.wording import Wording
from messages import default_catalog
from messages.sms import measure, render_sms
from tests.fakes import demo_view
from tests.test_languages import FF, FR, BM, VOICE_NUMBER, view as languages_view
from tests.test_sms_keywords import NOW
from tests.test_screen_structure import parts_of
from tests.test_trend_screens import history_view, monthly_view

CATALOG = default_catalog()
SUBS = (Subscription(1, 1), Subscription(2, 3))
MANY = tuple(Subscription(c, m) for c in (1, 2, 3) for m in range(1, 8))
VIEWS = {
    "demo": demo_view,
    "history": history_view,
    "monthly": lambda: monthly_view(65),
    "old": lambda: monthly_view(0),
    "fulfulde": lambda: languages_view(FR, BM, FF),
}
# Words a reply may carry as they are, not as typed values: the USSD code and the voice number,
# which are configured as written (the notice writes the number as dialled in Mali).
AS_WRITTEN = {"*123#", "20 22 12 34", ""}

# text, caller's language, profile extras, data → the reply's parts (their keys, in order) and its
# exact text, byte for byte what the responder wrote before replies were structure.
REPLIES = [
    pytest.param("PRIX TOMATE SIKASSO", "fr", {}, "demo", ["sms.price_one"],
                 "Tomate Sikasso 28/11: 14\u202f000F/panier (gros) +8%", id="price-one"),
    pytest.param("prix tomate", "fr", {}, "demo", ["sms.price_list"],
                 "Tomate F/panier: Mopti 16\u202f500 0% (28/11); Sikasso 14\u202f000 +8% (28/11); Bamako 650/kg (16/11); "
                 "Diré 18\u202f500 -8% (31/10)", id="price-list-another-unit"),
    pytest.param("prix oignon", "bm", {"region": "Mopti"}, "demo", ["sms.price_list"],
                 "Jababa F/kg: Mopti 975 +3% (28/11); Sévaré 1\u202f000 +5% (28/11); Bamako 1\u202f075 +13% (28/11); "
                 "Diré 1\u202f050 +11% (28/11); Koutiala 950 0% (28/11)", id="price-list-bm-home-region-first"),
    pytest.param("TENDANCE TOMATE SIKASSO", "fr", {}, "history", ["sms.trend_one_forecast"],
                 "Tomate Sikasso: hausse +20% en 4 sem., dernier: 14\u202f000F/panier le 28/11. Vers le 12/12: "
                 "15\u202f000F (15\u202f000-15\u202f000), erreur moy. 0%", id="trend-forecast"),
    pytest.param("tendance tomate bamako", "fr", {}, "monthly", ["sms.trend_one", "sms.trend_usual"],
                 "Tomate Bamako: hausse +46% en 3 mois, dernier: 650F/kg le 16/11. Pas de prévision fiable. "
                 "En décembre, d'habitude 1\u202f000-2\u202f100F.", id="trend-usual-range"),
    pytest.param("tendance tomate mopti", "fr", {}, "history", ["sms.trend_one", "sms.trend_no_forecast_too_short"],
                 "Tomate Mopti: hausse +14% en 4 sem., dernier: 16\u202f500F/panier le 28/11. "
                 "Pas assez d'historique pour prévoir.", id="trend-no-forecast"),
    pytest.param("tendance tomate bamako", "fr", {}, "old", ["sms.trend_stale"],
                 "Tomate Bamako: dernier prix 1\u202f450F/kg le 15/06/2021, trop ancien pour une tendance.", id="trend-stale"),
    pytest.param("TENDANCE TOMATE", "fr", {"region": "Mopti"}, "history", ["sms.trend_list"],
                 "Tomate, 4 sem.: Mopti +14%, Diré +2%, Sikasso +20%", id="trend-list"),
    pytest.param("TENDANCE TOMATE", "fr", {}, "monthly", ["sms.trend_list_mixed"],
                 "Tomate: Bamako +46% en 3 mois, Diré +2% en 4 sem., Mopti +14% en 4 sem., Sikasso +20% en 4 sem.",
                 id="trend-list-mixed-spans"),
    pytest.param("ALERTE TOMATE SIKASSO", "fr", {}, "demo", ["sms.subscribed"],
                 "Alertes Tomate à Sikasso activées. STOP pour arrêter.", id="subscribe"),
    pytest.param("ALERTE TOMATE SIKASSO", "bm", {}, "demo", ["sms.subscribed"],
                 "Tamati sɔngɔ kunnafoni Sikasso: a daminɛna. STOP k'a dabila.", id="subscribe-bm"),
    pytest.param("stop sikasso", "fr", {"subscriptions": SUBS}, "demo", ["sms.unsubscribed"],
                 "Alertes Tomate (Sikasso) arrêtées.", id="stop-one-market"),
    pytest.param("STOP ECHALOTE", "fr", {"subscriptions": SUBS}, "demo", ["sms.stop_not_subscribed"],
                 "Vous n'avez pas d'alerte Échalote; rien n'est arrêté. Vos alertes: Tomate Sikasso, Oignon Mopti. "
                 "STOP seul arrête tous les SMS.", id="stop-lists-the-alerts"),
    pytest.param("STOP ECHALOTE", "fr", {"subscriptions": MANY}, "demo", ["sms.stop_not_subscribed"],
                 "Vous n'avez pas d'alerte Échalote; rien n'est arrêté. Vos alertes: 21 alertes. STOP seul arrête tous les SMS.",
                 id="stop-counts-alerts-too-many-to-list"),
    pytest.param("START", "fr", {"subscriptions": SUBS}, "demo", ["sms.started"],
                 "Alertes Sugu reprises (2 abonnement(s)). STOP pour arrêter.", id="start"),
    pytest.param("APPEL", "fr", {"opted_out": True}, "demo", ["sms.channel_voice", "sms.channel_stopped"],
                 "Vos alertes de prix viendront par appel. SMS pour les SMS, LES DEUX pour les deux. "
                 "Vos alertes sont arrêtées: START pour reprendre.", id="channel-while-stopped"),
    pytest.param("LANGUE BM", "fr", {}, "demo", ["sms.language_set"],
                 "Kan: bamanankan. DƐMƐ ci ka dɛmɛ sɔrɔ.", id="language"),
    pytest.param("LANGUE FULFULDE", "fr", {}, "fulfulde", ["sms.language_voice_only"],
                 "Langue: Fulfulde pour les appels au 20 22 12 34. Les SMS restent en français.", id="language-voice-only"),
    pytest.param("PRIX TOMATE SIKASSO", "ff", {}, "fulfulde", ["sms.price_one", "lang.voice_only"],
                 "Tomate Sikasso 28/11: 14\u202f000F/panier (gros) +8% Fulfulde: appel au 20 22 12 34",
                 id="voice-only-caller-gets-the-notice"),
    pytest.param("AIDE", "fr", {}, "demo", ["sms.help"],
                 "Sugu: PRIX TOMATE SIKASSO (prix), TENDANCE TOMATE (tendance), ALERTE TOMATE SIKASSO (alertes), "
                 "APPEL (alertes par appel), STOP, LANGUE BM. Menu: *123#", id="help"),
    pytest.param("bonjour", "bm", {}, "demo", ["sms.help"],
                 "Sugu: PRIX TAMATI SIKASSO (sɔngɔ), TENDANCE TAMATI (taabolo), ALERTE TAMATI SIKASSO (kunnafoni), "
                 "WELE (kunnafoni wele la), STOP, LANGUE FR. Menu: *123#", id="unknown-keyword-bm"),
    pytest.param("P TOMATE SIKASSO 90000", "fr", {"role": "enumerator"}, "demo", ["sms.report_held"],
                 "Prix reçu: Tomate Sikasso 90\u202f000F/panier, à vérifier: bien plus haut que d'habitude (13\u202f500F).",
                 id="report-held"),
]  # fmt: skip


def answer(text, lang, extra, data):
    config = SmsConfig(voice_number=VOICE_NUMBER)
    return respond(text, profile=Profile(phone="+22370000001", language=lang, **extra), data=data, catalog=CATALOG,
                   now=NOW, config=config)


@pytest.mark.parametrize("text, lang, extra, data, keys, expected", REPLIES)
def test_a_reply_is_its_parts_worded(text, lang, extra, data, keys, expected):
    data = VIEWS[data]()
    reply = answer(text, lang, extra, data)
    assert reply.text == expected
    assert [p.key for p in reply.parts] == keys
    # Worded anew from the parts alone, with names read from the data as the voice channel does.
    assert SmsRenderer(Wording(CATALOG, DataNames(data))).text(reply.parts, reply.language) == reply.text
    # Typed values, not finished text: only the configured words travel as they are written.
    written = {p.text for part in reply.parts for p in parts_of(part) if isinstance(p, Text)}
    assert written <= AS_WRITTEN, written
    assert measure(render_sms(reply.text, reply.language)).segments == 1


@pytest.mark.parametrize("text, lang, extra, data, keys, expected", REPLIES)
def test_the_voice_channel_can_say_a_reply(text, lang, extra, data, keys, expected):
    data = VIEWS[data]()
    reply = answer(text, lang, extra, data)
    clips = [c for part in reply.parts for c in VoiceRenderer(CATALOG, DataNames(data)).speak(part, reply.language)]
    ids = [c.id for c in clips]
    assert clips and all(c.text.strip() and c.text != "?" for c in clips), clips
    for part in (p for top in reply.parts for p in parts_of(top)):
        if isinstance(part, Phrase):
            key = f"voice.{part.key}" if CATALOG.has(f"voice.{part.key}") else part.key
            pieces = Formatter().parse(CATALOG.template(reply.language, key))
            said = [f"{reply.language}.text.{key}.{i}" for i, (lit, *_) in enumerate(pieces) if lit and _SAYABLE.search(lit)]
            assert set(said) <= set(ids), (part.key, said)
        elif isinstance(part, CropRef):
            assert f"{reply.language}.crop.{part.id}" in ids
        elif isinstance(part, MarketRef):
            assert f"{reply.language}.market.{part.id}" in ids


# -- the renderer -----------------------------------------------------------------------------------

WORDING = Wording(CATALOG, DataNames(demo_view()))

# parts, language, fold → the text, and the text as sent
RENDERED = [
    pytest.param((phrase("sms.subscribed", crop=CropRef(3), market=MarketRef(4)),), "bm", True,
                 "Komitɛrɛ sɔngɔ kunnafoni Sévaré: a daminɛna. STOP k'a dabila.",
                 "Komitèrè sòngò kunnafoni Sévaré: a daminèna. STOP k'a dabila.", id="folded-for-gsm7"),
    pytest.param((phrase("sms.subscribed", crop=CropRef(3), market=MarketRef(4)),), "bm", False,
                 "Komitɛrɛ sɔngɔ kunnafoni Sévaré: a daminɛna. STOP k'a dabila.",
                 "Komitɛrɛ sɔngɔ kunnafoni Sévaré: a daminɛna. STOP k'a dabila.", id="not-folded-when-off"),
    pytest.param((phrase("sms.channel_sms"), phrase("sms.channel_stopped")), "fr", True,
                 "Vos alertes de prix viendront par SMS. APPEL pour un appel, LES DEUX pour les deux. "
                 "Vos alertes sont arrêtées: START pour reprendre.",
                 "Vos alertes de prix viendront par SMS. APPEL pour un appel, LES DEUX pour les deux. "
                 "Vos alertes sont arretées: START pour reprendre.", id="parts-joined-by-a-space"),
    pytest.param((joined([CropRef(1), CropRef(2), CropRef(4)], "comma"),), "fr", True,
                 "Tomate, Oignon, Échalote", "Tomate, Oignon, Échalote", id="a-list"),
    pytest.param((joined([Pair(CropRef(1), MarketRef(1), "space"), Pair(CropRef(2), MarketRef(3), "space")], "semicolon"),),
                 "bm", True, "Tamati Sikasso; Jababa Mopti", "Tamati Sikasso; Jababa Mopti", id="names-in-a-list"),
    pytest.param((phrase("sms.price_other_unit", price=Money(14000), unit=UnitRef("basket")),), "fr", True,
                 "14\u202f000/panier", "14 000/panier", id="a-price-in-another-unit"),
]  # fmt: skip


@pytest.mark.parametrize("parts, lang, fold, text, sent", RENDERED)
def test_renderer(parts, lang, fold, text, sent):
    renderer = SmsRenderer(WORDING, fold=fold)
    assert renderer.text(parts, lang) == text
    assert renderer.sent(parts, lang) == sent


@pytest.mark.parametrize("count, fits", [pytest.param(1, True, id="one-alert"), pytest.param(6, False, id="six-alerts")])
def test_fits_measures_one_segment_as_sent(count, fits):
    alerts = joined([Pair(CropRef(3), MarketRef(m % 7 + 1), "space") for m in range(count)], "comma")
    parts = (phrase("sms.stop_not_subscribed", what=CropRef(4), alerts=alerts),)
    assert SmsRenderer(WORDING).fits(parts, "fr") is fits
