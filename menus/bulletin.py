"""The weekly radio bulletin of a region: what community radio stations broadcast for farmers who
listen rather than dial. Built from the same data and the same spoken clips as the voice menus,
so the bulletin and the phone never disagree.

Pure: a region and a data view in, the phrases to say out (menus.voice turns them into clips).
About one to two minutes: the region's main crops (those with the most markets priced this
fortnight, at most MAX_CROPS), at most MAX_MARKETS markets each (the freshest prices), each with
its price and 4-week direction, then one tip (a different one each week).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from menus import trends
from menus.screen import CropRef, Day, MarketRef, Money, Part, Percent, RegionRef, Text, UnitRef, phrase
from menus.types import TIP_CATEGORIES, DataView, Market, PriceQuote, Tip

MAX_CROPS = 3
MAX_MARKETS = 3
FRESH_DAYS = 14  # a price older than this is not this week's news


@dataclass(frozen=True)
class Bulletin:
    region: str
    language: str
    week_of: dt.date  # the Monday of the week it speaks for
    parts: tuple[Part, ...]
    prices: int  # price lines said (0: nothing fresh to say this week)
    tip: Tip | None = None  # the week's tip, said by parts[tip_at] (None: no tip to say)
    tip_at: int | None = None


def _direction(data: DataView, quote: PriceQuote, today: dt.date) -> Part:
    rows = data.price_history(quote.crop_id, quote.market_id, trends.HISTORY_START)
    found = trends.report(rows, today, unit=quote.unit, kind=quote.kind, outlook=False).trend
    if found is None or found.direction == "stable":
        return phrase("voice.bulletin.stable")
    return phrase("voice.bulletin.change", change=Percent(found.change_percent))


def bulletin(region: str, language: str, today: dt.date, data: DataView) -> Bulletin:
    week_of = today - dt.timedelta(days=today.weekday())
    markets: dict[int, Market] = {m.id: m for m in data.markets() if m.active and m.region == region}
    fresh_since = today - dt.timedelta(days=FRESH_DAYS)
    by_crop: list[tuple[int, list[PriceQuote]]] = []
    for crop in data.crops():
        if not crop.active:
            continue
        quotes = [q for q in data.latest_prices(crop.id) if q.market_id in markets and q.observed_on >= fresh_since]
        if quotes:
            # The freshest first; one line per market (its most recent unit and kind).
            quotes.sort(key=lambda q: (q.observed_on, q.market_id), reverse=True)
            seen: set[int] = set()
            quotes = [q for q in quotes if not (q.market_id in seen or seen.add(q.market_id))]
            by_crop.append((crop.id, quotes[:MAX_MARKETS]))
    by_crop.sort(key=lambda item: -len(item[1]))
    parts: list[Part] = [phrase("voice.bulletin.intro", date=Day(week_of), region=RegionRef(region))]
    lines = 0
    for crop_id, quotes in by_crop[:MAX_CROPS]:
        parts.append(phrase("voice.bulletin.crop", crop=CropRef(crop_id)))
        for quote in quotes:
            parts.append(phrase(
                "voice.bulletin.line",
                market=MarketRef(quote.market_id, quote.market_name),
                price=Money(quote.price),
                unit=UnitRef(quote.unit),
                direction=_direction(data, quote, today),
            ))
            lines += 1
    if not lines:
        parts.append(phrase("voice.bulletin.no_prices"))
    tips = all_tips(data)
    tip = tips[week_of.isocalendar().week % len(tips)] if tips else None
    tip_at = None
    if tip is not None:
        title, text = tip_words(tip, language)
        tip_at = len(parts)
        parts.append(phrase("voice.bulletin.tip", title=title, text=text))
    parts.append(phrase("voice.bulletin.outro"))
    return Bulletin(region, language, week_of, tuple(parts), lines, tip, tip_at)


def all_tips(data: DataView) -> list[Tip]:
    """Every tip a bulletin may say, in the order the weeks take them."""
    return sorted((tip for category in TIP_CATEGORIES for tip in data.tips(category)), key=lambda t: t.id)


def tip_words(tip: Tip, language: str) -> tuple[Text, Text]:
    """A tip's title and text as a bulletin says them (staff-written words: the language's own,
    else French)."""
    return Text(tip.title(language)), Text(tip.text(language))
