"""The USSD Services menu: category → region → entries → one entry, sent by SMS on request."""

from __future__ import annotations

import pytest

from menus.types import SendService
from tests.test_menus import assert_fits, hop

# (path, language, caller's region, expected fragments, effects)
SCREENS = [
    pytest.param("", "fr", "", ["7. Services"], (), id="main-menu-option"),
    pytest.param("7", "fr", "", ["Services", "1. Microfinance", "2. Intrants", "3. Conseil agricole", "4. Stockage, transformation"], (), id="categories"),
    pytest.param("7*1", "fr", "", ["Microfinance: quelle region?", "1. Toutes les regions", "2. Mopti", "3. Sikasso"], (), id="regions"),
    pytest.param("7*1", "fr", "Sikasso", ["2. Sikasso", "3. Mopti"], (), id="home-region-first"),
    pytest.param("7*1*1", "fr", "", ["Microfinance", "1. Kafo Jiginew Sikasso (Sikasso)", "2. Soro Yiriwaso Mopti (Mopti)"], (), id="all-regions"),
    pytest.param("7*1*3", "fr", "", ["Microfinance - Sikasso", "1. Kafo Jiginew Sikasso"], (), id="one-region"),
    pytest.param("7*1*3*1", "fr", "", ["Kafo Jiginew Sikasso", "+223 20 62 00 00", "Credit de campagne pour maraichers", "1. Recevoir par SMS"], (), id="entry"),
    pytest.param("7*1*3*1*1", "fr", "", ["SMS envoye.", "+223 20 62 00 00"], (SendService(1),), id="send-by-sms"),
    pytest.param("7*1*3*1*1*0", "fr", "", ["Microfinance - Sikasso"], (), id="back-after-sending"),
    pytest.param("7*2", "fr", "", ["Aucun service ici pour le moment."], (), id="empty-category"),
    pytest.param("7*4*1*1", "fr", "", ["Chambre froide de Medine", "50 F/caisse/jour"], (), id="storage"),
    pytest.param("7*4*1*1", "bm", "", ["Chambre froide de Medine", "Nene la marali"], (), id="bm-entry"),
    pytest.param("7*1", "bm", "", ["Juru soroli (microfinance): mara jumen?", "1. Mara bee"], (), id="bm-regions"),
    pytest.param("7*9", "fr", "", ["Choix invalide.", "1. Microfinance"], (), id="invalid-choice"),
]  # fmt: skip


@pytest.mark.parametrize("path, lang, region, fragments, effects", SCREENS)
def test_services_screen(path, lang, region, fragments, effects):
    screen = hop(path, lang=lang, region=region)
    for fragment in fragments:
        assert fragment in screen.text, f"{fragment!r} not in:\n{screen.text}"
    assert screen.effects == effects
    assert not screen.end
    assert_fits(screen.text, 160)
