"""USSD screens for market intelligence: trend and forecast, best markets. Tables, both languages."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import pytest

from menus import Profile
from menus.sms import SmsConfig, respond
from messages import default_catalog
from messages.sms import measure, render_sms
from tests.fakes import TODAY, MemoryDataView, demo_view
from tests.test_menus import NOW, assert_fits, hop


@dataclass
class HistoryView(MemoryDataView):
    """The demo view with a long weekly history for (crop, market) pairs."""

    history_rows: dict = field(default_factory=dict)

    def price_history(self, crop_id, market_id, since):
        rows = self.history_rows.get((crop_id, market_id), [])
        return [r for r in rows if r[3] >= since]


def weekly(prices, unit="basket", end=TODAY):
    return [(p, unit, "wholesale", end - dt.timedelta(weeks=len(prices) - 1 - i)) for i, p in enumerate(prices)]


def seasonal(weeks, last):
    """A yearly cycle that ends at `last`, the price the quotes show."""
    wave = [1 + 0.4 * math.sin(2 * math.pi * w / 52) for w in range(weeks)]
    return [round(last * v / wave[-1]) for v in wave]


def history_view(**rows) -> HistoryView:
    base = demo_view()
    view = HistoryView(base.crop_list, base.market_list, base.quotes, base.demand_list, base.tip_list, base.service_list)
    view.history_rows = {
        (1, 1): weekly(seasonal(160, 14000)),  # tomato at Sikasso: three years, seasonal
        (1, 3): weekly([14500, 15000, 15500, 16000, 16500]),  # Mopti: five weeks only
        (2, 1): weekly([round(875 * 0.97 ** (w - 19)) for w in range(20)], unit="kg"),  # onion: falling
        (1, 6): weekly([18000] * 39 + [18500], end=TODAY - dt.timedelta(weeks=4)),  # Diré: reports stopped
        **rows,
    }
    return view


# (path, language, region, expected fragments, fragments that must not show)
SCREENS = [
    pytest.param("1*1", "fr", "", ["1. Tous les marches", "2. Ou vendre: meilleurs prix", "3. Bamako"], [], id="option-on-markets"),
    pytest.param("1*1*6", "fr", "", ["1. Recevoir les alertes SMS", "2. Tendance et prevision"], [], id="option-on-price"),
    pytest.param("1*2*2", "fr", "", ["Oignon, meilleurs prix d'abord (F/kg):", "Bamako 1 075 F (28/11)\nDire 1 050 F"], ["Tous les marches"], id="best-all-ranked"),
    pytest.param("1*2*2", "fr", "Sikasso", ["Oignon, Sikasso, meilleurs prix", "Koutiala 950 F (28/11)\nSikasso 875 F (28/11)", "1. Tous les marches"], ["Mopti"], id="best-home-region"),
    pytest.param("1*2*2*1", "fr", "Sikasso", ["Oignon, meilleurs prix d'abord", "Bamako 1 075 F"], [], id="best-then-all"),
    pytest.param("1*1*2", "fr", "", ["Mopti 16 500 F (28/11)\nSikasso 14 000 F (28/11)\nDire 18 500 F (31/10)"], ["Bamako"], id="best-stale-after-fresh-other-unit-out"),
    pytest.param("1*1*2", "fr", "Tombouctou", ["Tomate, Tombouctou", "Dire 18 500 F (31/10)"], [], id="best-region-of-one"),
    pytest.param("1*1*2", "fr", "Kayes", ["Tomate, meilleurs prix d'abord"], ["Tous les marches"], id="best-region-without-market"),
    pytest.param("1*2*2", "bm", "", ["Jababa, songo nyuman folo (F/kg):", "Bamako 1 075 F"], [], id="bm-best"),
    pytest.param("1*1*6*2", "fr", "", ["Tomate - Sikasso", "4 sem.", "Dernier prix: 14 000 F/panier le 28/11", "sur un an", "Vers le 12/12:"], [], id="trend-seasonal"),
    pytest.param("1*1*6*2*98", "fr", "", ["Vers le 26/12:", "Methode: ", "Erreur moy. passee"], [], id="trend-forecast-page-two"),
    pytest.param("1*1*5*2", "fr", "", ["Tomate - Mopti", "En hausse: +", "Pas assez d'historique pour une prevision."], ["Vers le"], id="trend-short-history"),
    pytest.param("1*1*4*2", "fr", "", ["Tomate - Dire", "Stable: +", "Dernier prix: 18 500 F/panier le 31/10", "Dernier prix trop ancien pour une prevision."], ["Vers le"], id="trend-stale-no-forecast"),
    pytest.param("1*2*8*2", "fr", "", ["Oignon - Sikasso", "En baisse: -11% en 4 sem.", "Dernier prix: 875 F/kg le 28/11"], [], id="trend-falling"),
    pytest.param("1*1*3*2", "fr", "", ["Pas assez de prix recents pour une tendance."], [], id="trend-none"),
    pytest.param("1*1*6*2", "bm", "", ["Tamati - Sikasso", "dogokun 4 kono", "Songo laban: 14 000 F/panye 28/11", "nyogon:"], [], id="bm-trend"),
    pytest.param("1*1*5*2", "bm", "", ["Songo korow ma caya ka nyefo ke."], [], id="bm-trend-short-history"),
]  # fmt: skip


@pytest.mark.parametrize("path, lang, region, fragments, absent", SCREENS)
def test_screen(path, lang, region, fragments, absent):
    view = history_view()
    screen = hop(path, lang=lang, view=view, region=region)
    text = screen.text
    pages = _all_pages(path, lang, view, region)  # prose continues on the next pages
    for fragment in fragments:
        assert fragment in pages, f"{fragment!r} not in:\n{pages}"
    for fragment in absent:
        assert fragment not in text, text
    assert not screen.end
    assert_fits(text, 160)


def _all_pages(path, lang, view, region) -> str:
    pages, current = [], path
    for _ in range(6):
        text = hop(current, lang=lang, view=view, region=region).text
        pages.append(text)
        if "98." not in text:
            break
        current += "*98"
    return "\n".join(pages)


@pytest.mark.parametrize("lang", ["fr", "bm"])
@pytest.mark.parametrize("crop_market", ["1*6", "1*4", "1*5", "1*3", "2*8", "2*3"])
def test_trend_screens_fit_every_page(lang, crop_market):
    view = history_view()
    path = f"1*{crop_market}*2"
    for _ in range(6):
        screen = hop(path, lang=lang, view=view)
        assert_fits(screen.text, 160)
        if "98." not in screen.text:
            break
        path += "*98"


# SMS: text, caller's language, region → fragments of the reply as sent (GSM-7 folded)
SMS = [
    pytest.param("TENDANCE TOMATE SIKASSO", "fr", "", ["Tomate Sikasso: hausse +", "en 4 sem., dernier: 14 000F/panier le 28/11. Vers le 12/12: ", "erreur moy."], id="one-market-with-forecast"),
    pytest.param("tendance tomate mopti", "fr", "", ["Tomate Mopti: hausse +", "dernier: 16 500F/panier le 28/11."], id="short-history-no-forecast"),
    pytest.param("tendance oignon sikasso", "fr", "", ["Oignon Sikasso: baisse -11% en 4 sem."], id="falling"),
    pytest.param("tendance tomate bamako", "fr", "", ["Pas assez de prix pour la tendance de Tomate à Bamako."], id="no-history"),
    pytest.param("TENDANCE TOMATE", "fr", "Mopti", ["Tomate, 4 sem.: Mopti +", ", Diré +", ", Sikasso +"], id="all-markets-home-first"),
    pytest.param("TENDANCE ECHALOTE", "fr", "", ["Pas assez de prix pour la tendance de Échalote."], id="none-anywhere"),
    pytest.param("TENDANCE", "fr", "", ["Envoyez TENDANCE et le produit"], id="how"),
    pytest.param("taabolo tamati sikasso", None, "", ["Tamati Sikasso: a bè yèlèn +", "dògòkun 4 kònò", "nyògòn:"], id="bm"),
]  # fmt: skip


@pytest.mark.parametrize("text, lang, region, fragments", SMS)
def test_sms_trend(text, lang, region, fragments):
    reply = respond(
        text, profile=Profile(phone="+22370000001", language=lang, region=region), data=history_view(),
        catalog=default_catalog(), now=NOW, config=SmsConfig(),
    )  # fmt: skip
    sent = render_sms(reply.text, reply.language)
    for fragment in fragments:
        assert fragment in sent, f"{fragment!r} not in {sent!r}"
    assert reply.intent == "trend"
    assert reply.effects == ()
    assert measure(sent).segments == 1, sent


# -- real monthly series (finding: farmers never got a trend on them) ---------------------------

from tests.test_intel_console import CARROTS_ABOMEY, monthly  # noqa: E402


def monthly_view(shift_months=65, prices=CARROTS_ABOMEY):
    """Tomato at Bamako (market 7, whose quote is retail F/kg) with a real monthly WFP history."""
    view = history_view()
    view.history_rows[(1, 7)] = [(p, "kg", "retail", day) for day, p in monthly(prices, shift_months)]
    return view


# (name, path or SMS, language, shift in months, expected fragments, absent fragments)
MONTHLY = [
    pytest.param("ussd", "1*1*3*2", "fr", 65, [r"(En hausse|En baisse|Stable): [+-]?\d+% en [123] mois", r"sur un an",
                 r"Pas de prevision fiable ici: rien n'a fait mieux que le dernier prix\.", r"En (decembre|janvier), d'habitude: [\d ]+ a [\d ]+ F"],
                 ["sem.", "Pas assez de prix recents"], id="monthly-ussd-fr"),
    pytest.param("ussd", "1*1*3*2", "bm", 65, [r"Songo .*: [+-]?\d+% kalo [123] kono", r"(desanburu|zanwuye) kalo, a ka ca a la"],
                 ["dogokun"], id="monthly-ussd-bm"),
    pytest.param("ussd", "1*1*3*2", "fr", 0, [r"Dernier prix: [\d ]+ F/kg le 15/06/2021, trop ancien pour une tendance\."],
                 ["En hausse", "En baisse"], id="five-years-old-ussd"),
    pytest.param("sms", "TENDANCE TOMATE BAMAKO", "fr", 65, [r"Tomate Bamako: (hausse|baisse|stable) [+-]?\d+% en [123] mois, dernier: ",
                 r"Pas de prévision fiable\. En (décembre|janvier), d'habitude [\d ]+-[\d ]+F\."], ["sem."], id="monthly-sms-fr"),
    pytest.param("sms", "TENDANCE TOMATE BAMAKO", "fr", 0, [r"Tomate Bamako: dernier prix [\d ]+F/kg le 15/06/2021, trop ancien"], [], id="five-years-old-sms"),
    pytest.param("sms", "TENDANCE TOMATE", "fr", 65, [r"Tomate: .*Bamako [+-]?\d+% en [123] mois", r"Sikasso \+\d+% en 4 sem\."], [], id="mixed-cadences-list"),
]  # fmt: skip


@pytest.mark.parametrize("channel, what, lang, shift, fragments, absent", MONTHLY)
def test_monthly_series_get_a_trend_in_months(channel, what, lang, shift, fragments, absent):
    """Finding: on real monthly series farmers never got a trend ("Pas assez de prix récents")."""
    import re

    view = monthly_view(shift)
    if channel == "ussd":
        text = _all_pages(what, lang, view, "")  # each page's fit: the test below
    else:
        reply = respond(what, profile=Profile(phone="+22370000001", language=lang), data=view,
                        catalog=default_catalog(), now=NOW, config=SmsConfig())  # fmt: skip
        text = render_sms(reply.text, reply.language)
        assert measure(text).segments == 1, text
    for pattern in fragments:
        assert re.search(pattern, text), f"{pattern!r} not in:\n{text}"
    for fragment in absent:
        assert fragment not in text, text


@pytest.mark.parametrize("lang", ["fr", "bm"])
@pytest.mark.parametrize("shift", [0, 60, 64, 65])
def test_monthly_trend_screens_fit_every_page(lang, shift):
    view = monthly_view(shift)
    path = "1*1*3*2"
    for _ in range(6):
        screen = hop(path, lang=lang, view=view)
        assert_fits(screen.text, 160)
        if "98." not in screen.text:
            break
        path += "*98"


def test_sms_trend_list_names_markets_in_the_callers_language():
    """Finding: the all-markets TENDANCE list printed the French market name to Bambara callers."""
    import dataclasses

    view = history_view()
    view.market_list = [dataclasses.replace(m, name_bm="Dire-dugu") if m.name == "Diré" else m for m in view.market_list]
    reply = respond(
        "taabolo tamati", profile=Profile(phone="+22370000001", language="bm", region="Tombouctou"), data=view,
        catalog=default_catalog(), now=NOW, config=SmsConfig(),
    )  # fmt: skip
    sent = render_sms(reply.text, reply.language)
    assert "Dire-dugu" in sent and "Diré" not in sent and "Dire " not in sent, sent
