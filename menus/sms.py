"""SMS keyword service, pure like the USSD engine: text in, reply and effects out.

The gateway stores the inbound message, applies the effects in the same transaction and queues
the reply. Replies are built as parts — phrases with typed values (menus.screen), as the USSD
screens are — and worded by menus.sms_render to fit one SMS segment in the sender's language;
the same parts can be said by the voice channel (menus.voice).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

from menus import languages as langs
from menus import pricecheck, trends
from menus.keywords import Parsed, parse
from menus.screen import (
    NOTHING,
    CropRef,
    Day,
    KindRef,
    LanguageRef,
    MarketRef,
    Money,
    Number,
    Pair,
    Part,
    Percent,
    Phrase,
    Text,
    UnitRef,
    phrase,
)
from menus.sms_render import SmsRenderer, TableNames, joined
from menus.types import (
    DataView,
    PriceQuote,
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
from menus.wording import Wording
from messages import Catalog
from messages.formatting import phone_local

SEGMENT = 160  # GSM-7 characters in one SMS
REPORT_WINDOW_DAYS = pricecheck.WINDOW_DAYS
MAX_REPORT_PRICE = 10_000_000


@dataclass(frozen=True)
class SmsConfig:
    fold: bool = True
    ussd_code: str = "*123#"
    report_tolerance: float = 2.0
    reports_per_day: int = 20  # per enumerator; beyond, reports wait for staff
    voice_number: str = ""  # E.164: told to farmers whose language is voice-only


@dataclass(frozen=True)
class SmsReply:
    intent: str
    language: str
    text: str  # `parts` worded (menus.sms_render), before folding for sending
    effects: tuple = ()
    parts: tuple[Part, ...] = ()  # what the reply says, as structure: said one after the other


class _Responder:
    def __init__(self, profile: Profile, data: DataView, catalog: Catalog, now: dt.datetime, config: SmsConfig):
        self.profile = profile
        self.data = data
        self.catalog = catalog
        self.today = now.date()
        self.config = config
        # A voice-only or disabled language is answered in French, which each reply says when it
        # fits in the segment (lists of prices leave it room): menus.languages.
        self.languages = langs.configured(data)
        served = langs.serve(profile.language, self.languages, catalog, spoken=False, voice_number=config.voice_number)
        self.lang = served.language
        self.suffix: tuple[Part, ...] = (served.notice,) if served.notice else ()
        # Retired crops and markets keep their names (subscriptions) but are not understood or listed.
        self._all_crops = {c.id: c for c in data.crops()}
        self._all_markets = {m.id: m for m in data.markets()}
        self._crops = {i: c for i, c in self._all_crops.items() if c.active}
        self._markets = {i: m for i, m in self._all_markets.items() if m.active}
        self._units = {t.code: t for t in data.units()} if hasattr(data, "units") else {}
        self._kinds = {t.code: t for t in data.kinds()} if hasattr(data, "kinds") else {}
        names = TableNames(self._all_crops, self._all_markets, {"units": self._units, "kinds": self._kinds})
        self.render = SmsRenderer(Wording(catalog, names), fold=config.fold)

    def word(self, part: Part) -> str:
        return self.render.text((part,), self.lang)

    def fits(self, *parts: Part) -> bool:
        """Whether `parts` fit one segment with the language notice after them."""
        return self.render.fits((*parts, *self.suffix), self.lang)

    def answer(self, parsed: Parsed, *parts: Part, effects: tuple = ()) -> SmsReply:
        return SmsReply(parsed.intent, self.lang, self.render.text(parts, self.lang), effects, parts)

    def reply(self, parsed: Parsed, key: str, effects: tuple = (), **values: Part) -> SmsReply:
        return self.answer(parsed, phrase(key, **values), effects=effects)

    # -- intents --------------------------------------------------------------------------------

    def respond(self, text: str) -> SmsReply:
        parsed = parse(
            text, list(self._crops.values()), list(self._markets.values()),
            units=[t for t in self._units.values() if t.active] if self._units else None,
            kinds=[t for t in self._kinds.values() if t.active] if self._kinds else None,
            languages=self.languages,
        )
        # A caller who never chose a language is answered in the language they wrote in.
        if self.profile.language is None and parsed.keyword_language:
            self.lang = parsed.keyword_language
        reply = getattr(self, f"on_{parsed.intent}")(parsed)
        if self.suffix and parsed.intent != "language" and self.fits(*reply.parts):
            reply = self.answer(parsed, *reply.parts, *self.suffix, effects=reply.effects)
        return reply

    def on_help(self, parsed: Parsed) -> SmsReply:
        return self.reply(parsed, "sms.help", ussd=Text(self.config.ussd_code))

    on_unknown = on_help

    def on_language(self, parsed: Parsed) -> SmsReply:
        chosen = next((lang for lang in self.languages if lang.code == parsed.language and lang.enabled), None)
        if chosen is None:
            return self.reply(parsed, "sms.language_which")
        effects = (SetLanguage(chosen.code),)
        if chosen in langs.offered(self.languages, self.catalog, spoken=False):
            self.lang = chosen.code
            return self.reply(parsed, "sms.language_set", effects)
        if not chosen.voice:
            return self.reply(parsed, "sms.language_which")
        # Voice-only: calls will speak it; SMS stay in French, and say so.
        self.lang = langs.FRENCH
        number = self.config.voice_number
        name = LanguageRef(chosen.code, chosen.name)
        if number:
            # Dialled as in Mali, as the language notice writes it (menus.languages.serve).
            return self.reply(parsed, "sms.language_voice_only", effects, name=name, number=Text(phone_local(number)))
        return self.reply(parsed, "sms.language_voice_only_call", effects, name=name)

    def on_channel(self, parsed: Parsed) -> SmsReply:
        """APPEL, SMS, LES DEUX: how price alerts come, as the alerts menu's option 5 sets it.
        Someone who stopped every SMS is told that alerts stay stopped until START."""
        parts = [phrase(f"sms.channel_{parsed.channel}")]
        if self.profile.opted_out:
            parts.append(phrase("sms.channel_stopped"))
        return self.answer(parsed, *parts, effects=(SetAlertChannel(parsed.channel),))

    def on_stop(self, parsed: Parsed) -> SmsReply:
        """STOP alone stops every SMS. STOP with a crop and/or market stops only those alerts;
        when the caller has none such, it says so and lists theirs instead of stopping all."""
        if parsed.crop_id is None and parsed.market_id is None:
            return self.reply(parsed, "sms.stopped", (StopAlerts(),))
        subs = [
            s for s in self.profile.subscriptions
            if parsed.crop_id in (None, s.crop_id) and parsed.market_id in (None, s.market_id)
        ]
        if subs:
            effects = tuple(Unsubscribe(s.crop_id, s.market_id) for s in subs)
            crops = {s.crop_id for s in subs}
            crop = CropRef(subs[0].crop_id) if len(crops) == 1 else phrase("sms.all_crops")
            where = MarketRef(subs[0].market_id) if len({s.market_id for s in subs}) == 1 else phrase("sms.all_markets")
            return self.reply(parsed, "sms.unsubscribed", effects, crop=crop, market=where)
        named = [CropRef(parsed.crop_id)] if parsed.crop_id is not None else []
        named += [MarketRef(parsed.market_id)] if parsed.market_id is not None else []
        what = joined(named, "space")
        if not self.profile.subscriptions:
            return self.reply(parsed, "sms.stop_no_alerts", what=what)
        alerts = joined([Pair(CropRef(s.crop_id), MarketRef(s.market_id), "space") for s in self.profile.subscriptions], "comma")
        text = phrase("sms.stop_not_subscribed", what=what, alerts=alerts)
        if not self.fits(text):
            count = phrase("sms.stop_alerts_count", count=Number(len(self.profile.subscriptions)))
            text = phrase("sms.stop_not_subscribed", what=what, alerts=count)
        return self.answer(parsed, text)

    def on_start(self, parsed: Parsed) -> SmsReply:
        if parsed.crop_id is not None and parsed.market_id is not None:
            return self.on_subscribe(parsed)
        count = len(self.profile.subscriptions)
        if count:
            return self.reply(parsed, "sms.started", (StartAlerts(),), count=Number(count))
        return self.reply(parsed, "sms.started_none", (StartAlerts(),))

    def on_subscribe(self, parsed: Parsed) -> SmsReply:
        if parsed.crop_id is None:
            return self.reply(parsed, "sms.subscribe_how")
        crop = CropRef(parsed.crop_id)
        if parsed.market_id is None:
            return self.reply(parsed, "sms.subscribe_which_market", crop=crop)
        effect = Subscribe(parsed.crop_id, parsed.market_id)
        return self.reply(parsed, "sms.subscribed", (effect,), crop=crop, market=MarketRef(parsed.market_id))

    def on_price(self, parsed: Parsed) -> SmsReply:
        if parsed.crop_id is None:
            return self.reply(parsed, "sms.price_how")
        crop_id = parsed.crop_id
        quotes = [q for q in self.data.latest_prices(crop_id) if q.market_id in self._markets]
        crop = CropRef(crop_id)
        if parsed.market_id is not None:
            quote = next((q for q in quotes if q.market_id == parsed.market_id), None)
            if quote is None:
                return self.reply(parsed, "sms.no_price_market", crop=crop, market=MarketRef(parsed.market_id))
            return self.reply(
                parsed,
                "sms.price_one",
                crop=crop,
                market=MarketRef(quote.market_id, quote.market_name),
                date=Day(quote.observed_on),
                price=Money(quote.price),
                unit=UnitRef(quote.unit),
                kind=KindRef(quote.kind),
                change=self.change(quote.change_percent),
            )
        if not quotes:
            return self.reply(parsed, "sms.no_price", crop=crop)
        return self.answer(parsed, self.price_list(crop_id, quotes))

    @staticmethod
    def change(percent: int | None) -> Part:
        """" +8%" after a price, or nothing when there is no earlier price."""
        return NOTHING if percent is None else phrase("sms.change", change=Percent(percent))

    def price_list(self, crop_id: int, quotes: list[PriceQuote]) -> Part:
        """As many markets as one SMS holds: the caller's region first, then the freshest."""
        region = self.profile.region

        def order(q: PriceQuote):
            home = self._markets[q.market_id].region == region if region else False
            return (not home, -q.observed_on.toordinal(), q.market_name)

        unit = self._crops[crop_id].unit
        items: list[Part] = []
        for q in sorted(quotes, key=order):
            price: Part = Money(q.price)
            if q.unit != unit:  # in the list's unit unless it says its own
                price = phrase("sms.price_other_unit", price=price, unit=UnitRef(q.unit))
            items.append(phrase("sms.price_item", market=MarketRef(q.market_id, q.market_name), price=price,
                                change=self.change(q.change_percent), date=Day(q.observed_on)))
        header = partial(phrase, "sms.price_list", crop=CropRef(crop_id), unit=UnitRef(unit))
        return self.most_that_fit(items, "semicolon", lambda listed: header(items=listed), at_least_one=True)

    def most_that_fit(self, items: Sequence[Part], style: str, whole: Callable[[Part], Part], *,
                      at_least_one: bool = False) -> Part | None:
        """`whole` with as many of `items` (from the first, joined by `style`) as one SMS holds;
        None when not even one fits, unless `at_least_one` (then the first goes in regardless)."""
        found = None
        for count in range(1, len(items) + 1):
            candidate = whole(joined(items[:count], style))
            if not self.fits(candidate) and not (at_least_one and count == 1):
                break
            found = candidate
        return found

    def trend_report(self, crop_id: int, market_id: int, outlook: bool = True) -> trends.Report:
        """The same answer the USSD screen and the console give (menus.trends.report)."""
        rows = self.data.price_history(crop_id, market_id, trends.HISTORY_START)
        return trends.report(rows, self.today, outlook=outlook)

    def on_trend(self, parsed: Parsed) -> SmsReply:
        """One market: direction, latest price and the next forecast, or why there is none. No
        market: the direction at as many markets as one SMS holds, the caller's region first."""
        if parsed.crop_id is None:
            return self.reply(parsed, "sms.trend_how")
        crop_id, crop = parsed.crop_id, CropRef(parsed.crop_id)
        if parsed.market_id is not None:
            market = MarketRef(parsed.market_id)
            found = self.trend_report(crop_id, parsed.market_id)
            series = found.series
            if found.stale:
                return self.reply(
                    parsed, "sms.trend_stale", crop=crop, market=market, unit=UnitRef(series.unit),
                    price=Money(round(series.price(series.last))), date=Day(series.last_day, year=True),
                )  # fmt: skip
            if found.trend is None:
                return self.reply(parsed, "sms.trend_none", crop=crop, market=market)
            # The quote a PRIX message would give, so both answers agree; the period's mean otherwise.
            quote = next(
                (q for q in self.data.latest_prices(crop_id)
                 if q.market_id == parsed.market_id and (q.unit, q.kind) == (series.unit, series.kind)),
                None,
            )  # fmt: skip
            values: dict[str, Part] = dict(
                crop=crop,
                market=market,
                direction=phrase(f"sms.trend_{found.trend.direction}"),
                change=Percent(found.trend.change_percent),
                span=trends.span_phrase(found.trend),
                price=Money(quote.price if quote else found.trend.latest),
                unit=UnitRef(series.unit),
                date=Day(quote.observed_on if quote else found.trend.latest_on),
            )
            outlook = found.outlook
            text: tuple[Part, ...] = (phrase("sms.trend_one", **values),)
            if outlook.forecasts:
                f = outlook.forecasts[0]
                candidate = (phrase(
                    "sms.trend_one_forecast", **values, until=trends.when_phrase(series.cadence, f.on),
                    forecast=Money(f.price), low=Money(f.low), high=Money(f.high), error=Number(f.error_percent),
                ),)  # fmt: skip
            elif outlook.usual:
                u = outlook.usual[0]
                candidate = (*text, phrase(
                    "sms.trend_usual", until=trends.when_phrase(series.cadence, u.on), low=Money(u.low), high=Money(u.high),
                ))  # fmt: skip
            else:
                candidate = (*text, phrase(f"sms.trend_no_forecast_{outlook.reason}"))
            return self.answer(parsed, *(candidate if self.fits(*candidate) else text))
        region = self.profile.region
        markets = sorted(
            (m for m in self._markets.values() if any(q.market_id == m.id for q in self.data.latest_prices(crop_id))),
            key=lambda m: (m.region != region if region else False, m.name),
        )
        found_all = [(m, f.trend) for m in markets if (f := self.trend_report(crop_id, m.id, outlook=False)).trend is not None]
        # One span for all said once in the header; mixed cadences say each market's own.
        one_span = len({self.word(trends.span_phrase(t)) for _, t in found_all}) == 1
        items: list[Part] = []
        for m, found in found_all:
            change: Part = Percent(found.change_percent)
            if not one_span:
                change = phrase("sms.trend_item_span", change=change, span=trends.span_phrase(found))
            items.append(phrase("sms.trend_item", market=MarketRef(m.id, m.name), change=change))
        if one_span:
            header = partial(phrase, "sms.trend_list", crop=crop, span=trends.span_phrase(found_all[0][1]))
        else:
            header = partial(phrase, "sms.trend_list_mixed", crop=crop)
        text = self.most_that_fit(items, "comma", lambda listed: header(items=listed))
        if text is None:
            return self.reply(parsed, "sms.trend_none_any", crop=crop)
        return self.answer(parsed, text)

    def on_report(self, parsed: Parsed) -> SmsReply:
        if self.profile.role != "enumerator":
            return self.reply(parsed, "sms.report_not_allowed")
        if parsed.crop_id is None or parsed.market_id is None or not parsed.number:
            return self.reply(parsed, "sms.report_format")
        price = parsed.number
        if not 0 < price <= MAX_REPORT_PRICE:
            return self.reply(parsed, "sms.report_format")
        crop_unit = self._crops[parsed.crop_id].unit
        unit = parsed.unit or crop_unit
        kind = parsed.kind or "wholesale"
        reason = self.check_report(parsed.crop_id, parsed.market_id, price, unit, kind)
        # Staff read why a report waits in the console: the effect carries it as words.
        effect = ReportPrice(parsed.crop_id, parsed.market_id, price, unit, kind,
                             held_reason=self.word(reason) if reason else "")
        values: dict[str, Part] = dict(
            crop=CropRef(parsed.crop_id),
            market=MarketRef(parsed.market_id),
            price=Money(price),
            unit=UnitRef(unit),
            date=Day(self.today),
        )
        if reason:
            return self.reply(parsed, "sms.report_held", (effect,), reason=reason, **values)
        return self.reply(parsed, "sms.report_published", (effect,), **values)

    def check_report(self, crop_id: int, market_id: int, price: int, unit: str, kind: str) -> Phrase | None:
        """None when the report may be published at once, else why it waits for staff."""
        reporter = self.profile.producer_id
        limit = self.config.reports_per_day
        # This report is not stored yet: the ones before it count.
        if reporter is not None and self.data.reports_by(reporter, self.today) >= limit:
            return phrase("sms.reason_daily_limit", limit=Number(limit))
        since = self.today - dt.timedelta(days=REPORT_WINDOW_DAYS)
        found = pricecheck.reference(
            self.data.price_points(crop_id, unit, since), market_id=market_id, today=self.today, reporter_id=reporter
        )
        if found is None:
            return phrase("sms.reason_no_reference")
        if not pricecheck.out_of_range(price, found.median, self.config.report_tolerance):
            return None
        key = "sms.reason_high" if price > found.median else "sms.reason_low"
        return phrase(key, median=Money(found.median))


def respond(
    text: str,
    *,
    profile: Profile,
    data: DataView,
    catalog: Catalog,
    now: dt.datetime,
    config: SmsConfig = SmsConfig(),
) -> SmsReply:
    return _Responder(profile, data, catalog, now, config).respond(text)


__all__ = ["SmsConfig", "SmsReply", "respond", "Subscription"]
