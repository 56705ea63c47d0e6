"""SMS keyword service, pure like the USSD engine: text in, reply text and effects out.

The gateway stores the inbound message, applies the effects in the same transaction and queues
the reply. Replies are composed to fit one SMS segment in the sender's language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from menus import languages as langs
from menus import pricecheck, trends
from menus.keywords import Parsed, parse
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
from messages import Catalog
from messages.formatting import long_date, money, phone_local, short_date, signed_percent
from messages.sms import measure, render_sms

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
    text: str
    effects: tuple = ()


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
        self.suffix = " " + langs.notice_text(catalog, served.notice, served.language) if served.notice else ""
        # Retired crops and markets keep their names (subscriptions) but are not understood or listed.
        self._all_crops = {c.id: c for c in data.crops()}
        self._all_markets = {m.id: m for m in data.markets()}
        self._crops = {i: c for i, c in self._all_crops.items() if c.active}
        self._markets = {i: m for i, m in self._all_markets.items() if m.active}
        self._units = {t.code: t for t in data.units()} if hasattr(data, "units") else {}
        self._kinds = {t.code: t for t in data.kinds()} if hasattr(data, "kinds") else {}

    def t(self, key: str, **params: object) -> str:
        return self.catalog.text(self.lang, key, **params)

    def crop(self, crop_id: int) -> str:
        return self._all_crops[crop_id].name(self.lang)

    def market(self, market_id: int) -> str:
        return self._all_markets[market_id].label(self.lang)

    def unit(self, unit: str) -> str:
        if unit in self._units:
            return self._units[unit].name(self.lang)
        key = f"unit.{unit}"
        return self.t(key) if self.catalog.has(key) else unit

    def kind(self, kind: str) -> str:
        if kind in self._kinds:
            return self._kinds[kind].name(self.lang)
        key = f"kind.{kind}"
        return self.t(key) if self.catalog.has(key) else kind

    def fits(self, text: str) -> bool:
        return measure(render_sms(text + self.suffix, self.lang, fold=self.config.fold)).segments == 1

    def reply(self, parsed: Parsed, key: str, effects: tuple = (), **params: object) -> SmsReply:
        return SmsReply(parsed.intent, self.lang, self.t(key, **params), effects)

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
        if self.suffix and parsed.intent != "language" and self.fits(reply.text):
            reply = replace(reply, text=reply.text + self.suffix)
        return reply

    def on_help(self, parsed: Parsed) -> SmsReply:
        return self.reply(parsed, "sms.help", ussd=self.config.ussd_code)

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
        if number:
            return self.reply(parsed, "sms.language_voice_only", effects, name=chosen.name, number=phone_local(number))
        return self.reply(parsed, "sms.language_voice_only_call", effects, name=chosen.name)

    def on_channel(self, parsed: Parsed) -> SmsReply:
        """APPEL, SMS, LES DEUX: how price alerts come, as the alerts menu's option 5 sets it.
        Someone who stopped every SMS is told that alerts stay stopped until START."""
        text = self.t(f"sms.channel_{parsed.channel}")
        if self.profile.opted_out:
            text = f"{text} {self.t('sms.channel_stopped')}"
        return SmsReply(parsed.intent, self.lang, text, (SetAlertChannel(parsed.channel),))

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
            crop = self.crop(subs[0].crop_id) if len(crops) == 1 else self.t("sms.all_crops")
            where = self.market(subs[0].market_id) if len({s.market_id for s in subs}) == 1 else self.t("sms.all_markets")
            return self.reply(parsed, "sms.unsubscribed", effects, crop=crop, market=where)
        what = " ".join(
            name for name in (
                self.crop(parsed.crop_id) if parsed.crop_id is not None else "",
                self.market(parsed.market_id) if parsed.market_id is not None else "",
            ) if name
        )  # fmt: skip
        if not self.profile.subscriptions:
            return self.reply(parsed, "sms.stop_no_alerts", what=what)
        alerts = ", ".join(f"{self.crop(s.crop_id)} {self.market(s.market_id)}" for s in self.profile.subscriptions)
        text = self.t("sms.stop_not_subscribed", what=what, alerts=alerts)
        if not self.fits(text):
            text = self.t("sms.stop_not_subscribed", what=what, alerts=self.t("sms.stop_alerts_count", count=len(self.profile.subscriptions)))
        return SmsReply(parsed.intent, self.lang, text)

    def on_start(self, parsed: Parsed) -> SmsReply:
        if parsed.crop_id is not None and parsed.market_id is not None:
            return self.on_subscribe(parsed)
        count = len(self.profile.subscriptions)
        key = "sms.started" if count else "sms.started_none"
        return self.reply(parsed, key, (StartAlerts(),), count=count)

    def on_subscribe(self, parsed: Parsed) -> SmsReply:
        if parsed.crop_id is None:
            return self.reply(parsed, "sms.subscribe_how")
        crop = self.crop(parsed.crop_id)
        if parsed.market_id is None:
            return self.reply(parsed, "sms.subscribe_which_market", crop=crop)
        effect = Subscribe(parsed.crop_id, parsed.market_id)
        return self.reply(parsed, "sms.subscribed", (effect,), crop=crop, market=self.market(parsed.market_id))

    def on_price(self, parsed: Parsed) -> SmsReply:
        if parsed.crop_id is None:
            return self.reply(parsed, "sms.price_how")
        crop_id = parsed.crop_id
        quotes = [q for q in self.data.latest_prices(crop_id) if q.market_id in self._markets]
        crop = self.crop(crop_id)
        if parsed.market_id is not None:
            quote = next((q for q in quotes if q.market_id == parsed.market_id), None)
            if quote is None:
                return self.reply(parsed, "sms.no_price_market", crop=crop, market=self.market(parsed.market_id))
            change = f" {signed_percent(quote.change_percent)}" if quote.change_percent is not None else ""
            return self.reply(
                parsed,
                "sms.price_one",
                crop=crop,
                market=self.market(quote.market_id),
                date=short_date(quote.observed_on),
                price=money(quote.price),
                unit=self.unit(quote.unit),
                kind=self.kind(quote.kind),
                change=change,
            )
        if not quotes:
            return self.reply(parsed, "sms.no_price", crop=crop)
        return SmsReply(parsed.intent, self.lang, self.price_list(crop_id, quotes))

    def price_list(self, crop_id: int, quotes: list[PriceQuote]) -> str:
        """As many markets as one SMS holds: the caller's region first, then the freshest."""
        region = self.profile.region

        def order(q: PriceQuote):
            home = self._markets[q.market_id].region == region if region else False
            return (not home, -q.observed_on.toordinal(), q.market_name)

        unit = self._crops[crop_id].unit
        parts: list[str] = []
        text = ""
        for q in sorted(quotes, key=order):
            price = money(q.price) + ("" if q.unit == unit else f"/{self.unit(q.unit)}")
            change = f" {signed_percent(q.change_percent)}" if q.change_percent is not None else ""
            part = self.t("sms.price_item", market=self.market(q.market_id), price=price, change=change, date=short_date(q.observed_on))
            candidate = self.t("sms.price_list", crop=self.crop(crop_id), unit=self.unit(unit), items="; ".join(parts + [part]))
            if parts and not self.fits(candidate):
                break
            parts.append(part)
            text = candidate
        return text

    def trend_report(self, crop_id: int, market_id: int, outlook: bool = True) -> trends.Report:
        """The same answer the USSD screen and the console give (menus.trends.report)."""
        rows = self.data.price_history(crop_id, market_id, trends.HISTORY_START)
        return trends.report(rows, self.today, outlook=outlook)

    def on_trend(self, parsed: Parsed) -> SmsReply:
        """One market: direction, latest price and the next forecast, or why there is none. No
        market: the direction at as many markets as one SMS holds, the caller's region first."""
        if parsed.crop_id is None:
            return self.reply(parsed, "sms.trend_how")
        crop_id, crop = parsed.crop_id, self.crop(parsed.crop_id)
        if parsed.market_id is not None:
            market = self.market(parsed.market_id)
            found = self.trend_report(crop_id, parsed.market_id)
            series = found.series
            if found.stale:
                return self.reply(
                    parsed, "sms.trend_stale", crop=crop, market=market, unit=self.unit(series.unit),
                    price=money(round(series.price(series.last))), date=long_date(series.last_day),
                )  # fmt: skip
            if found.trend is None:
                return self.reply(parsed, "sms.trend_none", crop=crop, market=market)
            # The quote a PRIX message would give, so both answers agree; the period's mean otherwise.
            quote = next(
                (q for q in self.data.latest_prices(crop_id)
                 if q.market_id == parsed.market_id and (q.unit, q.kind) == (series.unit, series.kind)),
                None,
            )  # fmt: skip
            params = dict(
                crop=crop,
                market=market,
                direction=self.t(f"sms.trend_{found.trend.direction}"),
                change=signed_percent(found.trend.change_percent),
                span=trends.span_text(self.t, found.trend),
                price=money(quote.price if quote else found.trend.latest),
                unit=self.unit(series.unit),
                date=short_date(quote.observed_on if quote else found.trend.latest_on),
            )
            outlook = found.outlook
            text = self.t("sms.trend_one", **params)
            if outlook.forecasts:
                f = outlook.forecasts[0]
                candidate = self.t(
                    "sms.trend_one_forecast", **params, until=trends.when_text(self.t, series.cadence, f.on, short_date),
                    forecast=money(f.price), low=money(f.low), high=money(f.high), error=f.error_percent,
                )  # fmt: skip
            elif outlook.usual:
                u = outlook.usual[0]
                candidate = text + " " + self.t(
                    "sms.trend_usual", until=trends.when_text(self.t, series.cadence, u.on, short_date),
                    low=money(u.low), high=money(u.high),
                )  # fmt: skip
            else:
                candidate = text + " " + self.t(f"sms.trend_no_forecast_{outlook.reason}")
            return SmsReply(parsed.intent, self.lang, candidate if self.fits(candidate) else text)
        region = self.profile.region
        markets = sorted(
            (m for m in self._markets.values() if any(q.market_id == m.id for q in self.data.latest_prices(crop_id))),
            key=lambda m: (m.region != region if region else False, m.name),
        )
        found_all = [(m, f.trend) for m in markets if (f := self.trend_report(crop_id, m.id, outlook=False)).trend is not None]
        # One span for all said once in the header; mixed cadences say each market's own.
        spans = {trends.span_text(self.t, t) for _, t in found_all}
        parts: list[str] = []
        text = ""
        for m, found in found_all:
            change = signed_percent(found.change_percent)
            if len(spans) > 1:
                change = self.t("sms.trend_item_span", change=change, span=trends.span_text(self.t, found))
            part = self.t("sms.trend_item", market=self.market(m.id), change=change)
            if len(spans) == 1:
                candidate = self.t("sms.trend_list", crop=crop, span=next(iter(spans)), items=", ".join(parts + [part]))
            else:
                candidate = self.t("sms.trend_list_mixed", crop=crop, items=", ".join(parts + [part]))
            if not self.fits(candidate):
                break
            parts.append(part)
            text = candidate
        if not parts:
            return self.reply(parsed, "sms.trend_none_any", crop=crop)
        return SmsReply(parsed.intent, self.lang, text)

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
        effect = ReportPrice(parsed.crop_id, parsed.market_id, price, unit, kind, held_reason=reason)
        params = dict(
            crop=self.crop(parsed.crop_id),
            market=self.market(parsed.market_id),
            price=money(price),
            unit=self.unit(unit),
            date=short_date(self.today),
        )
        if reason:
            return self.reply(parsed, "sms.report_held", (effect,), reason=reason, **params)
        return self.reply(parsed, "sms.report_published", (effect,), **params)

    def check_report(self, crop_id: int, market_id: int, price: int, unit: str, kind: str) -> str:
        """Empty when the report may be published at once, else why it waits for staff."""
        reporter = self.profile.producer_id
        limit = self.config.reports_per_day
        # This report is not stored yet: the ones before it count.
        if reporter is not None and self.data.reports_by(reporter, self.today) >= limit:
            return self.t("sms.reason_daily_limit", limit=limit)
        since = self.today - dt.timedelta(days=REPORT_WINDOW_DAYS)
        found = pricecheck.reference(
            self.data.price_points(crop_id, unit, since), market_id=market_id, today=self.today, reporter_id=reporter
        )
        if found is None:
            return self.t("sms.reason_no_reference")
        if not pricecheck.out_of_range(price, found.median, self.config.report_tolerance):
            return ""
        key = "sms.reason_high" if price > found.median else "sms.reason_low"
        return self.t(key, median=money(found.median))

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
