"""SMS keyword service, pure like the USSD engine: text in, reply text and effects out.

The gateway stores the inbound message, applies the effects in the same transaction and queues
the reply. Replies are composed to fit one SMS segment in the sender's language.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from messages import Catalog
from messages.formatting import money, short_date, signed_percent
from messages.sms import measure, render_sms

from menus import trends
from menus.keywords import Parsed, parse
from menus.types import (
    DataView,
    PriceQuote,
    Profile,
    ReportPrice,
    SetLanguage,
    StartAlerts,
    StopAlerts,
    Subscribe,
    Subscription,
    Unsubscribe,
)

SEGMENT = 160  # GSM-7 characters in one SMS
REPORT_WINDOW_DAYS = 56
TREND_HISTORY_DAYS = 7 * (trends.YEAR_WEEKS * 3 + 8)  # enough for the seasonal forecasts
MAX_REPORT_PRICE = 10_000_000


@dataclass(frozen=True)
class SmsConfig:
    fold: bool = True
    ussd_code: str = "*123#"
    report_tolerance: float = 2.0


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
        self.lang = profile.language or "fr"
        self._crops = {c.id: c for c in data.crops()}
        self._markets = {m.id: m for m in data.markets()}

    def t(self, key: str, **params: object) -> str:
        return self.catalog.text(self.lang, key, **params)

    def crop(self, crop_id: int) -> str:
        return self._crops[crop_id].name(self.lang)

    def market(self, market_id: int) -> str:
        return self._markets[market_id].name

    def unit(self, unit: str) -> str:
        key = f"unit.{unit}"
        return self.t(key) if self.catalog.has(key) else unit

    def fits(self, text: str) -> bool:
        return measure(render_sms(text, self.lang, fold=self.config.fold)).segments == 1

    def reply(self, parsed: Parsed, key: str, effects: tuple = (), **params: object) -> SmsReply:
        return SmsReply(parsed.intent, self.lang, self.t(key, **params), effects)

    # -- intents --------------------------------------------------------------------------------

    def respond(self, text: str) -> SmsReply:
        parsed = parse(text, list(self._crops.values()), list(self._markets.values()))
        # A caller who never chose a language is answered in the language they wrote in.
        if self.profile.language is None and parsed.keyword_language:
            self.lang = parsed.keyword_language
        handler = getattr(self, f"on_{parsed.intent}")
        return handler(parsed)

    def on_help(self, parsed: Parsed) -> SmsReply:
        return self.reply(parsed, "sms.help", ussd=self.config.ussd_code)

    on_unknown = on_help

    def on_language(self, parsed: Parsed) -> SmsReply:
        if parsed.language is None:
            return self.reply(parsed, "sms.language_which")
        self.lang = parsed.language
        return self.reply(parsed, "sms.language_set", (SetLanguage(parsed.language),))

    def on_stop(self, parsed: Parsed) -> SmsReply:
        if parsed.crop_id is not None:
            subs = [
                s for s in self.profile.subscriptions
                if s.crop_id == parsed.crop_id and parsed.market_id in (None, s.market_id)
            ]
            if subs:
                effects = tuple(Unsubscribe(s.crop_id, s.market_id) for s in subs)
                where = self.market(subs[0].market_id) if len(subs) == 1 else self.t("sms.all_markets")
                return self.reply(parsed, "sms.unsubscribed", effects, crop=self.crop(parsed.crop_id), market=where)
        return self.reply(parsed, "sms.stopped", (StopAlerts(),))

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
        quotes = list(self.data.latest_prices(crop_id))
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
                market=quote.market_name,
                date=short_date(quote.observed_on),
                price=money(quote.price),
                unit=self.unit(quote.unit),
                kind=self.t(f"kind.{quote.kind}"),
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
            part = self.t("sms.price_item", market=q.market_name, price=price, change=change, date=short_date(q.observed_on))
            candidate = self.t("sms.price_list", crop=self.crop(crop_id), unit=self.unit(unit), items="; ".join(parts + [part]))
            if parts and not self.fits(candidate):
                break
            parts.append(part)
            text = candidate
        return text

    def series(self, crop_id: int, market_id: int) -> trends.Series:
        since = self.today - dt.timedelta(days=TREND_HISTORY_DAYS)
        return trends.weekly_series(self.data.price_history(crop_id, market_id, since))

    def on_trend(self, parsed: Parsed) -> SmsReply:
        """One market: direction, latest price and the 2-week forecast. No market: the direction
        at as many markets as one SMS holds, the caller's region first."""
        if parsed.crop_id is None:
            return self.reply(parsed, "sms.trend_how")
        crop_id, crop = parsed.crop_id, self.crop(parsed.crop_id)
        if parsed.market_id is not None:
            market = self.market(parsed.market_id)
            series = self.series(crop_id, parsed.market_id)
            found = trends.trend(series)
            if found is None:
                return self.reply(parsed, "sms.trend_none", crop=crop, market=market)
            # The quote a PRIX message would give, so both answers agree; the weekly mean otherwise.
            quote = next(
                (q for q in self.data.latest_prices(crop_id)
                 if q.market_id == parsed.market_id and (q.unit, q.kind) == (series.unit, series.kind)),
                None,
            )  # fmt: skip
            params = dict(
                crop=crop,
                market=market,
                direction=self.t(f"sms.trend_{found.direction}"),
                change=signed_percent(found.change_percent),
                price=money(quote.price if quote else found.latest),
                unit=self.unit(series.unit),
                date=short_date(quote.observed_on if quote else found.latest_on),
            )
            outlook = trends.forecast(series, self.today, horizons=(2,))
            if outlook.forecasts:
                f = outlook.forecasts[0]
                text = self.t(
                    "sms.trend_one_forecast", **params, until=short_date(f.week_ending),
                    forecast=money(f.price), low=money(f.low), high=money(f.high), error=f.error_percent,
                )  # fmt: skip
                if self.fits(text):
                    return SmsReply(parsed.intent, self.lang, text)
            return self.reply(parsed, "sms.trend_one", **params)
        region = self.profile.region
        markets = sorted(
            (m for m in self._markets.values() if any(q.market_id == m.id for q in self.data.latest_prices(crop_id))),
            key=lambda m: (m.region != region if region else False, m.name),
        )
        parts: list[str] = []
        text = ""
        for m in markets:
            found = trends.trend(self.series(crop_id, m.id))
            if found is None:
                continue
            part = self.t("sms.trend_item", market=m.name, change=signed_percent(found.change_percent))
            candidate = self.t("sms.trend_list", crop=crop, items=", ".join(parts + [part]))
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
        """Empty when the price is within the usual range, else why it waits for staff."""
        since = self.today - dt.timedelta(days=REPORT_WINDOW_DAYS)
        history = [p for p in self.data.price_history(crop_id, market_id, since) if p[1] == unit]
        if len(history) < 2:
            # Too little here: compare with the same crop everywhere.
            history = [p for p in self.data.price_history(crop_id, None, since) if p[1] == unit]
        if len(history) < 2:
            return self.t("sms.reason_no_reference")
        median = statistics.median(p[0] for p in history)
        tolerance = self.config.report_tolerance
        if price > median * tolerance:
            return self.t("sms.reason_high", median=money(median))
        if price < median / tolerance:
            return self.t("sms.reason_low", median=money(median))
        return ""


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
