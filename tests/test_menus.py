"""The pure USSD engine: journeys as data, in both languages, and properties over random paths."""

from __future__ import annotations

import datetime as dt
import string
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menus import EngineConfig, Profile, run
from menus.types import (
    Crop,
    Demand,
    Market,
    PriceQuote,
    RecordOffer,
    SetLanguage,
    SetProfileField,
    StartAlerts,
    StopAlerts,
    Subscribe,
    Subscription,
    Tip,
    Unsubscribe,
)
from messages import default_catalog
from tests.fakes import TODAY, demo_view

NOW = dt.datetime.combine(TODAY, dt.time(10, 0), ZoneInfo("Africa/Bamako"))
PHONE = "+22370000001"


def hop(text: str, *, lang: str | None = "fr", subs=(), view=None, config=EngineConfig(), **profile):
    inputs = text.split("*") if text else []
    return run(
        inputs,
        profile=Profile(phone=PHONE, language=lang, subscriptions=tuple(subs), **profile),
        data=view or demo_view(),
        catalog=default_catalog(),
        now=NOW,
        config=config,
    )


SUBS = (Subscription(1, 1), Subscription(2, 3))

# (path, caller's language at session start, subscriptions, expected fragments, END?, effects)
JOURNEYS = [
    pytest.param("", None, (), ["Choisir la langue / Kan sugandi", "1. Francais", "2. Bamanankan"], False, (), id="new-caller-chooses-language"),
    pytest.param("1", None, (), ["Bienvenue sur Sugu!", "1. Prix du marche", "6. Langue"], False, (SetLanguage("fr"),), id="new-caller-french"),
    pytest.param("2", None, (), ["I bisimila Sugu la!", "1. Sugu songow"], False, (SetLanguage("bm"),), id="new-caller-bambara"),
    pytest.param("2*1", None, (), ["Songo: senefen sugandi", "1. Tamati", "3. Komitere"], False, (), id="new-caller-replays-in-bambara"),
    pytest.param("3", None, (), ["Choix invalide.", "1. Francais"], False, (), id="new-caller-bad-choice"),
    pytest.param("", "fr", (), ["Sugu - prix et conseils", "1. Prix du marche", "2. Demandes des acheteurs", "6. Langue"], False, (), id="main-menu"),
    pytest.param("9", "fr", (), ["Choix invalide.", "1. Prix du marche"], False, (), id="invalid-option"),
    pytest.param("98", "fr", (), ["Pas d'autre page.", "1. Prix du marche"], False, (), id="no-more-pages"),
    pytest.param("0", "fr", (), ["Choix invalide."], False, (), id="back-at-root"),
    pytest.param("1", "fr", (), ["Prix: choisir un produit", "1. Tomate", "3. Pomme de terre", "0.Retour 00.Menu"], False, (), id="prices-crops"),
    pytest.param("1*1", "fr", (), ["Tomate: choisir un marche", "1. Tous les marches", "2. Ou vendre: meilleurs prix", "3. Bamako", "6. Sikasso"], False, (), id="prices-markets"),
    pytest.param("1*1*6", "fr", (), ["Tomate - Sikasso", "14 000 F/panier (gros)", "Le 28/11", "+8% depuis le 21/11 (13 000 F)", "1. Recevoir les alertes SMS"], False, (), id="price-with-change"),
    pytest.param("1*1*5", "fr", (), ["16 500 F/panier", "0% depuis le 21/11"], False, (), id="price-unchanged"),
    pytest.param("1*1*4", "fr", (), ["Tomate - Dire", "Le 31/10 (il y a 4 sem.)", "-8% depuis le 24/10"], False, (), id="old-price-says-weeks"),
    pytest.param("1*1*3", "fr", (), ["650 F/kg (detail)", "Le 16/11 (il y a 12 j)"], False, (), id="old-price-says-days"),
    pytest.param("1*1*1", "fr", (), ["Tomate, F/panier:", "Bamako 650F/kg 16/11", "Sikasso 14 000 +8% 28/11"], False, (), id="all-markets"),
    pytest.param("1*1*6*1", "fr", (), ["Abonnement enregistre.", "Le 28/11"], False, (Subscribe(1, 1),), id="subscribe-from-price"),
    # Finding (issue 15): after subscribing, the same screen still offered "subscribe".
    pytest.param("1*1*6*1", "fr", (), ["Abonnement enregistre.", "1. Arreter ces alertes SMS"], False, (Subscribe(1, 1),), id="subscribed-price-screen-offers-unsubscribe"),
    pytest.param("1*1*6*1*1", "fr", (), ["Desabonne.", "1. Recevoir les alertes SMS"], False, (Unsubscribe(1, 1),), id="unsubscribe-from-price-then-subscribe-again"),
    pytest.param("1*1*6", "fr", SUBS, ["1. Arreter ces alertes SMS"], False, (), id="price-of-a-subscription-offers-unsubscribe"),
    pytest.param("1*1*6", "bm", SUBS, ["1. Nin kunnafoni SMS dabila"], False, (), id="bm-price-of-a-subscription-offers-unsubscribe"),
    pytest.param("1*1*6*1", "bm", SUBS, ["I togo bora.", "1. Songo kunnafoni soro SMS la"], False, (Unsubscribe(1, 1),), id="bm-unsubscribe-from-price"),
    pytest.param("1*1*6*1*0", "fr", (), ["Tomate: choisir un marche"], False, (), id="back-after-subscribing"),
    pytest.param("1*4", "fr", (), ["Pas encore de prix pour Echalote."], False, (), id="crop-without-prices"),
    pytest.param("1*2*1", "fr", (), ["Oignon, F/kg:", "98.Suite 0.Retour 00.Menu"], False, (), id="all-markets-paged"),
    pytest.param("1*2*1*98", "fr", (), ["Oignon, F/kg:", "Tombouctou 1 025 +8% 28/11", "0.Retour 00.Menu"], False, (), id="all-markets-page-two"),
    pytest.param("1*2*1*98*0", "fr", (), ["Bamako 1 075 +13% 28/11", "98.Suite"], False, (), id="back-to-page-one"),
    pytest.param("1*2*1*98*98", "fr", (), ["Pas d'autre page."], False, (), id="past-last-page"),
    pytest.param("1*1*00", "fr", (), ["Sugu - prix et conseils"], False, (), id="home"),
    pytest.param("2", "fr", (), ["Demandes des acheteurs", "1. Lawal Int.: Oignon 20 000kg", "2. Madougou Agro-Business: Echalote 10 000kg"], False, (), id="demands-hide-expired"),
    pytest.param("2*1", "fr", (), ["Lawal Int.", "Achete Oignon: 20 000 kg a 275 F/kg. Livraison: Sikasso. Jusqu'au 28/12/2026.", "1. Je peux fournir"], False, (), id="demand-detail"),
    pytest.param("2*1*1", "fr", (), ["Combien de kg pouvez-vous fournir?"], False, (), id="offer-asks-quantity"),
    pytest.param("2*1*1*beaucoup", "fr", (), ["Nombre de kg invalide. Ex: 500"], False, (), id="offer-quantity-not-a-number"),
    pytest.param("2*1*1*-5", "fr", (), ["Nombre de kg invalide. Ex: 500"], False, (), id="offer-quantity-negative"),
    pytest.param("2*1*1*9999999", "fr", (), ["Nombre de kg invalide. Ex: 500"], False, (), id="offer-quantity-too-big"),
    pytest.param("2*1*1*98", "fr", (), ["Offrir 98 kg de Oignon a Lawal Int.?", "1. Oui", "2. Non"], False, (), id="offer-98-kg-is-a-quantity"),
    pytest.param("2*1*1*500*1", "fr", (), ["Merci! Offre de 500 kg de Oignon pour Lawal Int. enregistree."], True, (RecordOffer(1, 500),), id="offer-recorded"),
    pytest.param("2*1*1*500*2", "fr", (), ["Offre annulee.", "1. Lawal Int."], False, (), id="offer-cancelled"),
    pytest.param("3", "fr", (), ["Conseils", "1. Bonnes pratiques", "2. Apres recolte", "3. Nutrition"], False, (), id="tips-categories"),
    pytest.param("3*2", "fr", (), ["Apres recolte", "1. Tomate"], False, (), id="tips-crops"),
    pytest.param("3*2*1", "fr", (), ["1. Recolte au frais", "2. Caisses, pas sacs"], False, (), id="tips-list"),
    pytest.param("3*2*1*1", "fr", (), ["Recolte au frais", "Recoltez les tomates le matin tot", "98.Suite"], False, (), id="tip-page-one"),
    pytest.param("3*2*1*1*98", "fr", (), ["Recolte au frais", "0.Retour 00.Menu"], False, (), id="tip-page-two"),
    pytest.param("3*3*1", "fr", (), ["Mangez des legumes", "Chaque jour."], False, (), id="single-tip-opens-directly"),
    pytest.param("3*3", "fr", (), ["1. Tous produits"], False, (), id="general-tips"),
    pytest.param("4", "fr", (), ["Alertes SMS de prix", "1. Mes abonnements", "4. Tout arreter"], False, (), id="alerts-menu"),
    pytest.param("4*1", "fr", (), ["Aucun abonnement."], False, (), id="no-subscriptions"),
    pytest.param("4*1", "fr", SUBS, ["Tomate - Sikasso", "Oignon - Mopti"], False, (), id="my-subscriptions"),
    pytest.param("4*2*1", "fr", (), ["Tomate: quel marche?", "1. Bamako", "6. Sikasso"], False, (), id="subscribe-markets"),
    pytest.param("4*2*1*6", "fr", (), ["Abonnement enregistre.", "1. Mes abonnements"], False, (Subscribe(1, 1),), id="subscribe"),
    pytest.param("4*2*1*6*1", "fr", (), ["Tomate - Sikasso"], False, (), id="subscription-shows-in-same-session"),
    pytest.param("4*3", "fr", SUBS, ["1. Tomate - Sikasso", "2. Oignon - Mopti"], False, (), id="unsubscribe-list"),
    pytest.param("4*3*2", "fr", SUBS, ["Desabonne."], False, (Unsubscribe(2, 3),), id="unsubscribe"),
    pytest.param("4*3*2*3*1", "fr", SUBS, ["Desabonne."], False, (Unsubscribe(1, 1),), id="unsubscribe-replays-its-own-list"),
    pytest.param("4*4", "fr", SUBS, ["Arreter toutes vos alertes SMS?", "1. Oui"], False, (), id="stop-confirm"),
    pytest.param("4*4*1", "fr", SUBS, ["Alertes arretees."], False, (StopAlerts(),), id="stop-all"),
    pytest.param("4*4*1*1", "fr", SUBS, ["Tomate - Sikasso"], False, (), id="stopped-keeps-subscriptions"),
    pytest.param("4*4*1", "fr", SUBS, ["4. Reprendre les alertes"], False, (StopAlerts(),), id="stopped-offers-restart"),
    pytest.param("4*4*2", "fr", SUBS, ["Alertes SMS de prix"], False, (), id="stop-declined"),
    pytest.param("5", "fr", (), ["Mon profil", "Nom: -", "Village: -", "98.Suite"], False, (), id="profile"),
    pytest.param("5*1", "fr", (), ["Entrez votre nom:"], False, (), id="profile-ask-name"),
    pytest.param("5*1*Awa  Traore", "fr", (), ["Profil enregistre.", "Nom: Awa Traore"], False, (SetProfileField("name", "Awa Traore"),), id="profile-name-saved"),
    pytest.param("5*1*x", "fr", (), ["Texte invalide (2-40 lettres)."], False, (), id="profile-name-too-short"),
    pytest.param("5*1*" + "a" * 41, "fr", (), ["Texte trop long."], False, (), id="profile-name-too-long"),
    pytest.param("5*1*<script>", "fr", (), ["Texte invalide"], False, (), id="profile-name-junk"),
    pytest.param("5*3", "fr", (), ["Choisissez votre region:", "1. Bamako", "2. Mopti"], False, (), id="profile-region-choices"),
    pytest.param("5*3*2", "fr", (), ["Profil enregistre.", "Region: Mopti"], False, (SetProfileField("region", "Mopti"),), id="profile-region-saved"),
    pytest.param("6", "fr", (), ["Langue", "1. Francais", "2. Bamanankan"], False, (), id="language-menu"),
    pytest.param("6*2", "fr", (), ["Kan: bamanankan", "1. Sugu songow"], False, (SetLanguage("bm"),), id="language-changed"),
    pytest.param("6*2*1", "fr", (), ["Songo: senefen sugandi"], False, (), id="language-applies-in-session"),
    pytest.param("*".join(["1", "0"] * 21), "fr", (), ["Session trop longue. Merci de rappeler."], True, (), id="too-many-steps"),
    # Bambara
    pytest.param("", "bm", (), ["Sugu - songo ni laadilikan", "1. Sugu songow", "2. Sanbaaw ka mako", "6. Kan"], False, (), id="bm-main-menu"),
    pytest.param("9", "bm", (), ["Sugandili ma nye."], False, (), id="bm-invalid-option"),
    pytest.param("1", "bm", (), ["Songo: senefen sugandi", "1. Tamati", "0.Segin 00.Damine"], False, (), id="bm-prices"),
    pytest.param("1*1*6", "bm", (), ["Tamati - Sikasso", "14 000 F/panye (gros)", "+8% ka bo 21/11 la (13 000 F)"], False, (), id="bm-price"),
    pytest.param("1*1*4", "bm", (), ["(dogokun 4)"], False, (), id="bm-old-price"),
    pytest.param("1*2*1", "bm", (), ["Jababa songo, F/kg:", "98.Nata 0.Segin 00.Damine"], False, (), id="bm-all-markets"),
    pytest.param("2*2", "bm", (), ["Be Jaba san: kilo 10 000, 400 F/kg. Yoro: Bandiagara."], False, (), id="bm-demand"),
    pytest.param("2*2*1*abc", "bm", (), ["Kilo hake ma nye. Mis: 500"], False, (), id="bm-offer-bad-quantity"),
    pytest.param("2*2*1*750*1", "bm", (), ["I ni ce! I ka Jaba kilo 750 dili sebenna Madougou Agro-Business ye."], True, (RecordOffer(2, 750),), id="bm-offer-recorded"),
    pytest.param("3*2*1*1", "bm", (), ["Tigeli sogoma", "Tamati tige sogoma joona", "98.Nata"], False, (), id="bm-tip"),
    pytest.param("4*2*1*6", "bm", (), ["I togo sebenna."], False, (Subscribe(1, 1),), id="bm-subscribe"),
    pytest.param("4*4*1", "bm", SUBS, ["Kunnafoniw dabilara."], False, (StopAlerts(),), id="bm-stop"),
    pytest.param("5", "bm", (), ["N ka profil", "Togo: -"], False, (), id="bm-profile"),
    pytest.param("6*1", "bm", (), ["Langue: francais", "1. Prix du marche"], False, (SetLanguage("fr"),), id="bm-to-french"),
    pytest.param("*".join(["1", "0"] * 21), "bm", (), ["Waati temena."], True, (), id="bm-too-many-steps"),
]


@pytest.mark.parametrize("path, lang, subs, fragments, end, effects", JOURNEYS)
def test_journey(path, lang, subs, fragments, end, effects):
    screen = hop(path, lang=lang, subs=subs)
    for fragment in fragments:
        assert fragment in screen.text, f"{fragment!r} not in:\n{screen.text}"
    assert screen.end is end
    assert screen.effects == effects
    assert_fits(screen.text, 160)


@pytest.mark.parametrize(
    "path, fragments, effects",
    [
        pytest.param("4", ["Alertes SMS (arretees)", "4. Reprendre les alertes"], (), id="menu"),
        pytest.param("4*4", ["Alertes reprises.", "4. Tout arreter"], (StartAlerts(),), id="restart"),
        pytest.param("4*2*1*6", ["Abonnement enregistre.", "4. Tout arreter"], (Subscribe(1, 1),), id="subscribe-restarts"),
    ],
)
def test_opted_out_caller(path, fragments, effects):
    screen = hop(path, subs=SUBS, opted_out=True)
    for fragment in fragments:
        assert fragment in screen.text, screen.text
    assert screen.effects == effects


def assert_fits(text: str, budget: int) -> None:
    assert len(text) <= budget, f"{len(text)} > {budget}:\n{text}"
    assert all(c == "\n" or 32 <= ord(c) < 127 for c in text), repr(text)


def test_pages_show_every_option_once_in_order():
    """Walking a long list page by page shows every label exactly once, never split."""
    crops = [Crop(i, f"Culture numéro {i} à très long nom", f"Sɛnɛfɛn {i}", "kg") for i in range(1, 40)]
    view = demo_view(crop_list=crops)
    seen, path = [], "1"
    for _ in range(40):
        screen = hop(path, view=view)
        seen += [line for line in screen.text.split("\n") if line[:1].isdigit() and not line.startswith("0.") and not line.startswith("98.")]
        if "98." not in screen.text:
            break
        path += "*98"
    expected = [f"{i}. Culture numero {i} a tres long nom" for i in range(1, 40)]
    assert seen == expected


def test_long_tip_reads_whole_across_pages():
    view = demo_view()
    words, path = [], "3*2*1*1"
    for _ in range(10):
        lines = hop(path, view=view).text.split("\n")
        words += " ".join(line for line in lines[1:] if not line.startswith(("0.", "98."))).split()
        if "98.Suite" not in lines[-1]:
            break
        path += "*98"
    from messages import to_ussd
    from tests.fakes import LONG_TIP_FR

    assert words == to_ussd(LONG_TIP_FR).split()


def test_error_line_does_not_move_page_breaks():
    """An error replaces the title; the page under it is the same page as without the error."""
    normal = hop("1*2*1*98").text.split("\n")
    after_error = hop("1*2*1*98*7").text.split("\n")
    assert after_error[0] == "Choix invalide."
    assert after_error[1:] == normal[1:]


def test_same_inputs_same_screen():
    for path in ("", "1*1*6", "2*1*1*500", "4*3*2*3*1", "5*1*Awa"):
        assert hop(path, subs=SUBS) == hop(path, subs=SUBS)


def test_stale_threshold_is_settable():
    assert "(il y a 12 j)" in hop("1*1*3").text
    assert "il y a" not in hop("1*1*3", config=EngineConfig(stale_after_days=14)).text


# -- properties over random input ----------------------------------------------------------------


def stress_view():
    long = "Pomme de terre de Sikasso variété Sahel extra longue"
    crops = [Crop(i, f"{long} {i}", f"Komitɛrɛ ɲɛnama ŋaniya {i} " * 2, "sack100") for i in range(1, 25)]
    markets = [Market(i, f"Marché de la ville numéro {i} Ségou-Korò", "Région très lointaine") for i in range(1, 40)]
    quotes = [
        PriceQuote(c.id, m.id, m.name, 1234567, "sack100", "retail", TODAY - dt.timedelta(days=m.id * 9), 999, TODAY - dt.timedelta(days=400))
        for c in crops[:5]
        for m in markets
    ]
    demands = [
        Demand(i, "Acheteur au nom vraiment très long SARL " * 2, (i % 24) + 1, 999999, 99999, "basket", "Lieu " * 20, TODAY + dt.timedelta(days=i))
        for i in range(1, 60)
    ]
    tips = [
        Tip(i, cat, (i % 3) or None, "Titre " * 10, "Tɔgɔ " * 10, "Texte très long. " * 60, "Kuma ɲɛnama. " * 80)
        for i, cat in enumerate(["gap", "postharvest", "nutrition"] * 10, start=1)
    ]
    return demo_view(crop_list=crops, market_list=markets, quotes=quotes, demand_list=demands, tip_list=tips)


STRESS = stress_view()
TOKENS = st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "9", "0", "00", "98", "", " ", "500", "Awa", "#", "**"])
JUNK = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
INPUTS = st.lists(st.one_of(TOKENS, TOKENS, TOKENS, JUNK, st.text(string.digits, max_size=12)), max_size=45)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs=INPUTS,
    lang=st.sampled_from([None, "fr", "bm"]),
    stress=st.booleans(),
    budget=st.sampled_from([80, 120, 160, 182]),
    subs=st.sampled_from([(), SUBS]),
)
def test_any_path_gives_a_screen_within_budget(inputs, lang, stress, budget, subs):
    # The aggregator joins inputs with "*": an input containing "*" arrives as several.
    text = "*".join(inputs)
    screen = hop(text, lang=lang, subs=subs, view=STRESS if stress else None, config=EngineConfig(max_chars=budget))
    assert isinstance(screen.end, bool)
    assert screen.text.strip()
    assert_fits(screen.text, budget)
    assert screen.language in ("fr", "bm")


# -- resuming: a hop steps only its last input from where the previous hop left the session --


def walk(path: str, *, lang: str | None, subs=(), view=None, config=EngineConfig()):
    """Each hop of `path` in turn, each resumed from the one before: what the gateway's process
    that answered the previous hop does. Yields (inputs, resumed screen, fully replayed screen)."""
    inputs = path.split("*") if path else []
    profile = Profile(phone=PHONE, language=lang, subscriptions=tuple(subs))
    common = dict(profile=profile, data=view or demo_view(), catalog=default_catalog(), now=NOW, config=config)
    resume = None
    for n in range(len(inputs) + 1):
        resumed = run(inputs[:n], resume=resume, **common)
        yield inputs[:n], resumed, run(inputs[:n], **common)
        if resumed.end:
            return
        resume = resumed.resume


def same_screen(a, b) -> bool:
    fields = ("text", "end", "screen_id", "language", "effects", "section", "structure", "entered_section")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


@pytest.mark.parametrize("path, lang, subs, fragments, end, effects", JOURNEYS)
def test_a_resumed_hop_shows_what_a_full_replay_shows(path, lang, subs, fragments, end, effects):
    for inputs, resumed, replayed in walk(path, lang=lang, subs=subs):
        assert same_screen(resumed, replayed), f"after {inputs}:\n{resumed.text}\n---\n{replayed.text}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=INPUTS, lang=st.sampled_from([None, "fr", "bm"]), stress=st.booleans(), subs=st.sampled_from([(), SUBS]))
def test_any_path_resumed_hop_by_hop_shows_what_full_replays_show(inputs, lang, stress, subs):
    path = "*".join(inputs)
    for prefix, resumed, replayed in walk(path, lang=lang, subs=subs, view=STRESS if stress else None):
        assert same_screen(resumed, replayed), prefix


def views_built(monkeypatch) -> list:
    """The screens the engine builds (menus.engine._Replay.view_*), in order."""
    from menus import engine

    built: list = []
    original = engine._Replay.view

    def view(self, frame):
        key = (frame.node, frame.args, self.lang, self.changes)
        if key not in self._views:
            built.append(frame.node)
        return original(self, frame)

    monkeypatch.setattr(engine._Replay, "view", view)
    return built


# (path of the hop, the screens a resumed hop builds: the one the last input was typed on, and
# the one it shows; a full replay builds every screen along the path)
RESUMES = [
    pytest.param("1*1*6*98*2", ["price_one", "price_trend"], id="onto-the-trend"),
    pytest.param("1*1*6*98*2*0", ["price_one"], id="back-from-the-trend"),
    pytest.param("1*1*6*98*2*0*0*0*5", ["price_markets", "price_one"], id="another-market"),
    pytest.param("1*2*1*98*98", ["price_all"], id="paging-all-markets"),
    pytest.param("2*1*1*500", ["offer_quantity", "offer_confirm"], id="an-offer's-quantity"),
]


@pytest.mark.parametrize("path, resumed_builds", RESUMES)
def test_a_hop_steps_only_its_last_input_when_the_previous_hop_was_answered_here(path, resumed_builds, monkeypatch):
    inputs = path.split("*")
    common = dict(profile=Profile(phone=PHONE, language="fr"), data=demo_view(), catalog=default_catalog(), now=NOW)
    before = run(inputs[:-1], **common)
    built = views_built(monkeypatch)
    resumed = run(inputs, resume=before.resume, **common)
    assert built == resumed_builds
    built.clear()
    assert same_screen(resumed, run(inputs, **common))
    assert len(built) > len(resumed_builds)  # what the full replay would have built


RESUME_MISSES = [
    pytest.param(("1", "1"), ("1", "1"), id="the-same-hop-again"),
    pytest.param(("1",), ("2", "1"), id="another-path"),
    pytest.param(("1", "1", "6"), ("1", "1"), id="a-later-hop"),
]


@pytest.mark.parametrize("previous, inputs", RESUME_MISSES)
def test_a_resume_from_another_path_is_ignored(previous, inputs):
    common = dict(profile=Profile(phone=PHONE, language="fr"), data=demo_view(), catalog=default_catalog(), now=NOW)
    stale = run(list(previous), **common).resume
    assert same_screen(run(list(inputs), resume=stale, **common), run(list(inputs), **common))


# -- layouts laid out once: pages shared between hops while the content is the same ------------


@pytest.mark.parametrize("path, lang, subs, fragments, end, effects", JOURNEYS)
def test_a_hop_with_screens_already_laid_out_shows_what_one_without_shows(path, lang, subs, fragments, end, effects):
    inputs = path.split("*") if path else []
    common = dict(profile=Profile(phone=PHONE, language=lang, subscriptions=tuple(subs)), data=demo_view(),
                  catalog=default_catalog(), now=NOW)
    shared: dict = {}
    for n in range(len(inputs) + 1):  # every hop of the path, twice: laid out, then reused
        for _ in range(2):
            assert same_screen(run(inputs[:n], laid_out=shared, **common), run(inputs[:n], **common))


def test_a_screen_laid_out_once_is_not_laid_out_again(monkeypatch):
    from menus.ussd import UssdRenderer

    laid = []
    original = UssdRenderer.pages
    monkeypatch.setattr(UssdRenderer, "pages", lambda self, layout, lang: laid.append(layout) or original(self, layout, lang))
    common = dict(profile=Profile(phone=PHONE, language="fr"), data=demo_view(), catalog=default_catalog(), now=NOW)
    shared: dict = {}
    run(["1", "1"], laid_out=shared, **common)
    first = len(laid)
    run(["1", "1"], laid_out=shared, **common)  # another caller on the same screen
    assert first >= 1 and len(laid) == first
    run(["1", "1"], laid_out=shared, **{**common, "profile": Profile(phone=PHONE, language="bm")})
    assert len(laid) > first  # another language: laid out anew
