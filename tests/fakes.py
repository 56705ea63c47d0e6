"""An in-memory DataView for the pure menu tests, with data chosen to stress the screens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from menus.pricecheck import PricePoint
from menus.types import Crop, Demand, Market, PriceQuote, ServiceEntry, Tip

TODAY = dt.date(2026, 11, 28)


@dataclass
class MemoryDataView:
    crop_list: list[Crop] = field(default_factory=list)
    market_list: list[Market] = field(default_factory=list)
    quotes: list[PriceQuote] = field(default_factory=list)
    demand_list: list[Demand] = field(default_factory=list)
    tip_list: list[Tip] = field(default_factory=list)
    service_list: list[ServiceEntry] = field(default_factory=list)

    def crops(self):
        return list(self.crop_list)

    def markets(self):
        return list(self.market_list)

    def latest_prices(self, crop_id):
        return [q for q in self.quotes if q.crop_id == crop_id]

    def open_demands(self, today):
        return [d for d in self.demand_list if d.valid_until >= today]

    def tips(self, category):
        return [t for t in self.tip_list if t.category == category]

    def price_history(self, crop_id, market_id, since):
        points = []
        for q in self.quotes:
            if q.crop_id == crop_id and market_id in (None, q.market_id):
                points.append((q.price, q.unit, q.kind, q.observed_on))
                if q.previous_price and q.previous_on:
                    points.append((q.previous_price, q.unit, q.kind, q.previous_on))
        return [p for p in points if p[3] >= since]

    def price_points(self, crop_id, unit, since):
        # The demo quotes stand for staff prices (no reporter).
        return [PricePoint(price, market_id, day) for price, market_id, day in self._points(crop_id, unit) if day >= since]

    def _points(self, crop_id, unit):
        for q in self.quotes:
            if q.crop_id == crop_id and q.unit == unit:
                yield q.price, q.market_id, q.observed_on
                if q.previous_price and q.previous_on:
                    yield q.previous_price, q.market_id, q.previous_on

    def reports_by(self, producer_id, day):
        return 0

    def services(self, category, region):
        found = [s for s in self.service_list if s.category == category and region in (None, s.region)]
        return sorted(found, key=lambda s: (s.name.lower(), s.id))

    def service_regions(self, category):
        return sorted({s.region for s in self.service_list if s.category == category})


LONG_TIP_FR = (
    "Récoltez les tomates le matin tôt, quand il fait frais, et posez-les à l'ombre tout de suite. "
    "Utilisez des caisses en plastique plutôt que des sacs: les fruits écrasés pourrissent et font "
    "perdre tout le lot. Triez les fruits abîmés avant la vente et vendez-les à part."
)
LONG_TIP_BM = (
    "Tamati tigɛ sɔgɔma joona, tuma min na fiyɛn bɛ yen, ka a bila suma la o yɔrɔnin bɛɛ. "
    "Kɛsu plastiki baara ka tɛmɛ bɔrɔw kan: tamati ɲɔnin bɛ tiɲɛ ka tɔw bɛɛ tiɲɛ. "
    "Tamati tiɲɛnenw bɔ ka u feere u kelen na."
)


def demo_view(**overrides) -> MemoryDataView:
    crops = [
        Crop(1, "Tomate", "Tamati", "basket"),
        Crop(2, "Oignon", "Jababa", "kg"),
        Crop(3, "Pomme de terre", "Komitɛrɛ", "kg"),
        Crop(4, "Échalote", "Jaba", "kg"),
    ]
    markets = [
        Market(1, "Sikasso", "Sikasso"),
        Market(2, "Koutiala", "Sikasso"),
        Market(3, "Mopti", "Mopti"),
        Market(4, "Sévaré", "Mopti"),
        Market(5, "Tombouctou", "Tombouctou"),
        Market(6, "Diré", "Tombouctou"),
        Market(7, "Bamako", "Bamako"),
    ]
    week = dt.timedelta(days=7)
    quotes = [
        PriceQuote(1, 1, "Sikasso", 14000, "basket", "wholesale", TODAY, 13000, TODAY - week),
        PriceQuote(1, 3, "Mopti", 16500, "basket", "wholesale", TODAY, 16500, TODAY - week),
        PriceQuote(1, 6, "Diré", 18500, "basket", "wholesale", TODAY - 4 * week, 20000, TODAY - 5 * week),
        PriceQuote(1, 7, "Bamako", 650, "kg", "retail", TODAY - dt.timedelta(days=12), None, None),
        PriceQuote(2, 1, "Sikasso", 875, "kg", "wholesale", TODAY, 800, TODAY - week),
    ] + [
        PriceQuote(2, m.id, m.name, 900 + 25 * m.id, "kg", "wholesale", TODAY, 950, TODAY - week)
        for m in markets[1:]
    ]
    demands = [
        Demand(1, "Lawal Int.", 2, 20000, 275, "kg", "Sikasso", TODAY + dt.timedelta(days=30)),
        Demand(2, "Madougou Agro-Business", 4, 10000, 400, "kg", "Bandiagara", TODAY + dt.timedelta(days=60)),
        Demand(3, "Lawal Int.", 3, 15000, 250, "kg", "Sikasso", TODAY - dt.timedelta(days=1)),
    ]
    tips = [
        Tip(1, "postharvest", 1, "Récolte au frais", "Tigɛli sɔgɔma", LONG_TIP_FR, LONG_TIP_BM),
        Tip(2, "postharvest", 1, "Caisses, pas sacs", "Kɛsu, bɔrɔ tɛ", "Court.", "Surun."),
        Tip(3, "gap", 2, "Repiquage", "Jababa turuli", "Repiquez à 10 cm.", "A turu santimɛtɛrɛ 10."),
        Tip(4, "nutrition", None, "Mangez des légumes", "Nakɔfɛn dun", "Chaque jour.", "Don o don."),
    ]
    services = [
        ServiceEntry(1, "microfinance", "Sikasso", "Kafo Jiginew Sikasso", "+22320620000",
                     "Crédit de campagne pour maraîchers", "Sɛnɛkɛlaw ka juru sɛnɛ waati la"),
        ServiceEntry(2, "microfinance", "Mopti", "Soro Yiriwaso Mopti", "+22321430000",
                     "Petits crédits aux groupements", "Juru fitininw jɛkuluw ye"),
        ServiceEntry(3, "storage", "Sikasso", "Chambre froide de Médine", "+22376000101",
                     "Stockage au froid, 50 F/caisse/jour", "Nɛnɛ la marali, 50 F kɛsu kelen tile kelen"),
    ]
    view = MemoryDataView(crops, markets, quotes, demands, tips, services)
    for name, value in overrides.items():
        setattr(view, name, value)
    return view

