"""The USSD state machine.

`run()` replays every input of the session from the first screen (Africa's Talking sends them all,
joined by `*`) and returns the screen to show and the effects of the *last* input only: earlier
inputs had their effects applied on earlier hops. The replay starts from the caller's profile as it
was when the session began, and applies the session's own effects to a private copy as it goes, so
the same inputs always lead to the same screen, whichever server process answers.

Navigation, the same on every screen: `0` back (or previous page), `00` main menu, `98` next page.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from messages import Catalog, to_ussd
from messages.formatting import long_date, money, phone_display, short_date, signed_percent

from menus import trends
from menus.paging import Item, paginate, screen_len, truncate
from menus.types import (
    Crop,
    DataView,
    Demand,
    Effect,
    Market,
    PriceQuote,
    Profile,
    RecordOffer,
    Screen,
    SendService,
    SERVICE_CATEGORIES,
    ServiceEntry,
    SetLanguage,
    SetProfileField,
    StartAlerts,
    StopAlerts,
    Term,
    Subscribe,
    Subscription,
    Tip,
    TIP_CATEGORIES,
    Unsubscribe,
)

BACK, HOME, MORE = "0", "00", "98"
# An error or notice line replaces the title for one screen; pages are laid out with this much
# room for the title so that page breaks never depend on whether an error is showing.
FLASH_WIDTH = 32
MAX_OPTIONS = 97  # 98 is "more"
MAX_OFFER_KG = 1_000_000
PROFILE_FIELDS = ("name", "village", "region", "cluster")
_PROFILE_TEXT = re.compile(r"^[^\W_][\w .,'-]*$")
# ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() refuses.
_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class EngineConfig:
    max_chars: int = 160
    max_steps: int = 40
    max_input_chars: int = 40
    stale_after_days: int = 10
    # Best markets: prices older than this rank after the fresh ones, whatever their level.
    best_fresh_days: int = 21


@dataclass(frozen=True)
class Frame:
    node: str
    args: tuple = ()
    page: int = 0


@dataclass
class Option:
    label: str
    act: Callable[[], "Outcome"]


@dataclass
class View:
    title: str
    body: list[str] = field(default_factory=list)  # prose, may continue on the next page
    lines: list[str] = field(default_factory=list)  # one fact each, never split
    options: list[Option] = field(default_factory=list)
    entry: Callable[[str], "Outcome"] | None = None  # free input instead of options
    nav: bool = True


@dataclass
class Outcome:
    push: Frame | None = None
    reset: tuple[Frame, ...] | None = None
    end: str | None = None
    error: str | None = None  # catalog key
    notice: str | None = None  # rendered text
    effects: tuple[Effect, ...] = ()


def _collate(name: str) -> str:
    """Alphabetical order as readers expect it: Sévaré before Sikasso."""
    return to_ussd(name).lower()


class _Memo:
    """Per-hop cache over the data view: the replay asks for the same lists many times."""

    def __init__(self, data: DataView) -> None:
        self._data = data
        self._cache: dict[tuple, object] = {}

    def _get(self, key: tuple, load: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def all_crops(self) -> Sequence[Crop]:
        return self._get(("all_crops",), lambda: list(self._data.crops()))

    def crops(self) -> Sequence[Crop]:
        # Retired crops leave the menus; their names stay known for subscriptions and history.
        return self._get(("crops",), lambda: [c for c in self.all_crops() if c.active])

    def all_markets(self) -> Sequence[Market]:
        return self._get(
            ("all_markets",), lambda: sorted(self._data.markets(), key=lambda m: (_collate(m.name), m.id))
        )

    def markets(self) -> Sequence[Market]:
        return self._get(("markets",), lambda: [m for m in self.all_markets() if m.active])

    def crop(self, crop_id: int) -> Crop | None:
        return next((c for c in self.all_crops() if c.id == crop_id), None)

    def market(self, market_id: int) -> Market | None:
        return next((m for m in self.all_markets() if m.id == market_id), None)

    def prices(self, crop_id: int) -> list[PriceQuote]:
        def load() -> list[PriceQuote]:
            quotes = [q for q in self._data.latest_prices(crop_id) if getattr(self.market(q.market_id), "active", True)]
            return sorted(quotes, key=lambda q: (_collate(q.market_name), q.market_id))

        return self._get(("prices", crop_id), load)

    def terms(self, what: str) -> dict[str, Term]:
        """Units or kinds by code, from the data when it has them (see DataView)."""
        source = getattr(self._data, what, None)
        return self._get((what,), lambda: {t.code: t for t in source()} if source else {})

    def demands(self, today: dt.date) -> list[Demand]:
        return self._get(
            ("demands", today),
            lambda: sorted(self._data.open_demands(today), key=lambda d: (d.valid_until, d.id)),
        )

    def tips(self, category: str) -> list[Tip]:
        return self._get(("tips", category), lambda: list(self._data.tips(category)))

    def services(self, category: str, region: str | None) -> list[ServiceEntry]:
        return self._get(("services", category, region), lambda: list(self._data.services(category, region)))

    def service_regions(self, category: str) -> list[str]:
        return self._get(("service_regions", category), lambda: list(self._data.service_regions(category)))

    def history(self, crop_id: int, market_id: int | None, since: dt.date) -> list:
        return self._get(("history", crop_id, market_id, since), lambda: list(self._data.price_history(crop_id, market_id, since)))


class _Replay:
    def __init__(
        self,
        profile: Profile,
        data: DataView,
        catalog: Catalog,
        now: dt.datetime,
        config: EngineConfig,
    ) -> None:
        self.profile = profile
        self.lang = profile.language or "fr"
        self.data = _Memo(data)
        self.catalog = catalog
        self.today = now.date()
        self.config = config
        self.stack: list[Frame] = [self.home()]
        # Replaying a path builds the same screens again and again: once per hop is enough.
        self._views: dict[tuple, View] = {}
        self._pages: dict[tuple, list[list[str]]] = {}

    # -- helpers ------------------------------------------------------------------------------

    def t(self, key: str, **params: object) -> str:
        return self.catalog.text(self.lang, key, **params)

    def home(self) -> Frame:
        return Frame("main") if self.profile.language else Frame("lang_first")

    def crop_name(self, crop_id: int) -> str:
        crop = self.data.crop(crop_id)
        return crop.name(self.lang) if crop else "?"

    def market_name(self, market_id: int, default: str = "?") -> str:
        market = self.data.market(market_id)
        return market.label(self.lang) if market else default

    def unit(self, unit: str) -> str:
        term = self.data.terms("units").get(unit)
        if term is not None:
            return term.name(self.lang)
        key = f"unit.{unit}"
        return self.t(key) if self.catalog.has(key) else unit

    def kind(self, kind: str) -> str:
        term = self.data.terms("kinds").get(kind)
        if term is not None:
            return term.name(self.lang)
        key = f"kind.{kind}"
        return self.t(key) if self.catalog.has(key) else kind

    def apply(self, effect: Effect) -> None:
        """Mirror an effect on the replay's private profile, as the gateway will on the real one."""
        p = self.profile
        match effect:
            case SetLanguage(language=language):
                self.profile = replace(p, language=language)
                self.lang = language
            case Subscribe(crop_id=c, market_id=m):
                subs = p.subscriptions
                if Subscription(c, m) not in subs:
                    subs = subs + (Subscription(c, m),)
                self.profile = replace(p, subscriptions=subs, opted_out=False)
            case Unsubscribe(crop_id=c, market_id=m):
                subs = tuple(s for s in p.subscriptions if s != Subscription(c, m))
                self.profile = replace(p, subscriptions=subs)
            case StopAlerts():
                self.profile = replace(p, opted_out=True)
            case StartAlerts():
                self.profile = replace(p, opted_out=False)
            case SetProfileField(field=name, value=value):
                self.profile = replace(p, **{name: value})

    # -- the loop -------------------------------------------------------------------------------

    def step(self, raw: str) -> Outcome:
        frame = self.stack[-1]
        if raw == HOME:
            self.stack = [self.home()]
            return Outcome()
        if raw == BACK:
            if frame.page > 0:
                self.stack[-1] = replace(frame, page=frame.page - 1)
            elif len(self.stack) > 1:
                self.stack.pop()
            else:
                return Outcome(error="error.invalid_choice")
            return Outcome()
        view = self.view(frame)
        if view.entry is not None:
            if len(raw) > self.config.max_input_chars:
                return Outcome(error="error.too_long")
            return view.entry(raw)
        if raw == MORE:
            if frame.page + 1 < len(self.frame_pages(frame)):
                self.stack[-1] = replace(frame, page=frame.page + 1)
                return Outcome()
            return Outcome(error="error.no_more")
        if _NUMBER.fullmatch(raw) and 1 <= int(raw) <= len(view.options):
            return view.options[int(raw) - 1].act()
        return Outcome(error="error.invalid_choice")

    def follow(self, outcome: Outcome) -> None:
        for effect in outcome.effects:
            self.apply(effect)
        if outcome.reset is not None:
            self.stack = list(outcome.reset)
        if outcome.push is not None:
            self.stack.append(outcome.push)

    # -- layout ---------------------------------------------------------------------------------

    def nav_lines(self, view: View) -> tuple[str, str]:
        parts = [self.t("nav.back"), self.t("nav.home")] if view.nav else []
        more = to_ussd(" ".join([self.t("nav.more"), *parts]))
        return to_ussd(" ".join(parts)), more

    def items(self, view: View) -> list[Item]:
        items = [Item(to_ussd(p), True) for text in view.body for p in text.split("\n") if p]
        items += [Item(to_ussd(line)) for line in view.lines]
        items += [
            Item(to_ussd(f"{n}. {option.label}"))
            for n, option in enumerate(view.options[:MAX_OPTIONS], start=1)
        ]
        return items

    def pages(self, view: View) -> list[list[str]]:
        budget = self.config.max_chars
        # At most two title lines, each at most half a screen, so that content always fits.
        title = [truncate(line, budget // 2) for line in to_ussd(view.title).split("\n")[:2]]
        if screen_len(title) > budget // 2:
            title = [truncate(" ".join(title), budget // 2)]
        nav_last, nav_more = self.nav_lines(view)
        header = [title[0].ljust(FLASH_WIDTH), *title[1:]]
        pages = paginate(header, self.items(view), nav_last, nav_more, budget)
        for page in pages:
            page[0] = title[0]
        return pages

    def render(self, flash: str | None, effects: tuple[Effect, ...]) -> Screen:
        frame = self.stack[-1]
        pages = self.frame_pages(frame)
        page = list(pages[min(frame.page, len(pages) - 1)])
        if flash:
            page[0] = truncate(to_ussd(flash).replace("\n", " "), FLASH_WIDTH)
        return Screen("\n".join(page), False, frame.node, self.lang, effects, self.section())

    def end(self, text: str, screen_id: str, effects: tuple[Effect, ...]) -> Screen:
        body = truncate(to_ussd(text), self.config.max_chars)
        return Screen(body, True, screen_id, self.lang, effects, self.section())

    def section(self) -> str:
        return self.stack[1].node if len(self.stack) > 1 and self.stack[0].node == "main" else ""

    # -- screens --------------------------------------------------------------------------------

    def view(self, frame: Frame) -> View:
        key = (frame.node, frame.args, self.lang, self.profile)
        if key not in self._views:
            self._views[key] = getattr(self, f"view_{frame.node}")(*frame.args)
        return self._views[key]

    def frame_pages(self, frame: Frame) -> list[list[str]]:
        key = (frame.node, frame.args, self.lang, self.profile)
        if key not in self._pages:
            self._pages[key] = self.pages(self.view(frame))
        return self._pages[key]

    def view_lang_first(self) -> View:
        return View(
            self.t("lang.choose"),
            options=[
                Option(self.t("lang.fr"), lambda: self.choose_language("fr", first=True)),
                Option(self.t("lang.bm"), lambda: self.choose_language("bm", first=True)),
            ],
            nav=False,
        )

    def choose_language(self, language: str, *, first: bool = False) -> Outcome:
        effect = SetLanguage(language)
        key = "lang.welcome" if first else "lang.changed"
        notice = self.catalog.text(language, key)
        return Outcome(reset=(Frame("main"),), effects=(effect,), notice=notice)

    def view_main(self) -> View:
        go = lambda node: (lambda: Outcome(push=Frame(node)))  # noqa: E731
        return View(
            self.t("main.title"),
            options=[
                Option(self.t("main.prices"), go("price_crops")),
                Option(self.t("main.demands"), go("demands")),
                Option(self.t("main.tips"), go("tip_categories")),
                Option(self.t("main.alerts"), go("alerts")),
                Option(self.t("main.profile"), go("profile")),
                Option(self.t("main.language"), go("language")),
                Option(self.t("main.services"), go("services")),
            ],
            nav=False,
        )

    def view_language(self) -> View:
        return View(
            self.t("lang.title"),
            options=[
                Option(self.t("lang.fr"), lambda: self.choose_language("fr")),
                Option(self.t("lang.bm"), lambda: self.choose_language("bm")),
            ],
        )

    # Prices

    def crop_options(self, node: str) -> list[Option]:
        return [
            Option(crop.name(self.lang), lambda c=crop.id: Outcome(push=Frame(node, (c,))))
            for crop in self.data.crops()
        ]

    def view_price_crops(self) -> View:
        return View(self.t("prices.choose_crop"), options=self.crop_options("price_markets"))

    def view_price_markets(self, crop_id: int) -> View:
        quotes = self.data.prices(crop_id)
        crop = self.crop_name(crop_id)
        if not quotes:
            return View(crop, body=[self.t("prices.none", crop=crop)])
        options = [
            Option(self.t("prices.all_markets"), lambda: Outcome(push=Frame("price_all", (crop_id,)))),
            Option(self.t("prices.best_markets"), lambda: Outcome(push=Frame("best_markets", (crop_id, "home")))),
        ]
        options += [
            Option(self.market_name(q.market_id, q.market_name), lambda m=q.market_id: Outcome(push=Frame("price_one", (crop_id, m))))
            for q in quotes
        ]
        return View(self.t("prices.choose_market", crop=crop), options=options)

    def age_note(self, day: dt.date) -> str:
        days = (self.today - day).days
        if days <= self.config.stale_after_days:
            return ""
        if days < 14:
            return self.t("prices.age_days", days=days)
        return self.t("prices.age_weeks", weeks=days // 7)

    def change_text(self, quote: PriceQuote) -> str:
        change = quote.change_percent
        return "" if change is None else signed_percent(change)

    def view_price_one(self, crop_id: int, market_id: int) -> View:
        crop = self.crop_name(crop_id)
        quote = next((q for q in self.data.prices(crop_id) if q.market_id == market_id), None)
        title = self.t("prices.detail_title", crop=crop, market=self.market_name(market_id))
        if quote is None:
            return View(title, body=[self.t("prices.none", crop=crop)])
        body = [
            self.t(
                "prices.detail",
                price=money(quote.price),
                unit=self.unit(quote.unit),
                kind=self.kind(quote.kind),
                date=short_date(quote.observed_on),
                age=self.age_note(quote.observed_on),
            )
        ]
        if quote.previous_price and quote.previous_on:
            body.append(
                self.t(
                    "prices.change",
                    change=self.change_text(quote),
                    previous=money(quote.previous_price),
                    previous_date=short_date(quote.previous_on),
                )
            )
        # Subscribe, or once subscribed (this session too: effects are mirrored), unsubscribe.
        if Subscription(crop_id, market_id) in self.profile.subscriptions and not self.profile.opted_out:
            alerts = Option(
                self.t("prices.stop_alerts"),
                lambda: Outcome(effects=(Unsubscribe(crop_id, market_id),), notice=self.t("alerts.unsubscribed")),
            )
        else:
            alerts = Option(
                self.t("prices.get_alerts"),
                lambda: Outcome(effects=(Subscribe(crop_id, market_id),), notice=self.t("alerts.subscribed")),
            )
        options = [
            alerts,
            Option(self.t("prices.trend"), lambda: Outcome(push=Frame("price_trend", (crop_id, market_id)))),
        ]
        return View(title, body=body, options=options)

    def view_price_trend(self, crop_id: int, market_id: int) -> View:
        """The direction (4 weeks, or up to 3 months on monthly series), the year-on-year change and
        the forecasts where they beat the last price, else its usual range; the same answer as
        SMS and the console, from menus.trends.report."""
        title = self.t("prices.detail_title", crop=self.crop_name(crop_id), market=self.market_name(market_id))
        found = trends.report(self.data.history(crop_id, market_id, trends.HISTORY_START), self.today)
        series = found.series
        if not series.points:
            return View(title, body=[self.t("trend.none")])
        if found.stale:
            price = money(round(series.price(series.last)))
            return View(title, body=[self.t("trend.stale", price=price, unit=self.unit(series.unit), date=long_date(series.last_day))])
        # The quote the price screen showed, so both screens agree; the period's mean otherwise.
        quote = next((q for q in self.data.prices(crop_id) if q.market_id == market_id and q.unit == series.unit and q.kind == series.kind), None)
        latest, latest_on = (quote.price, quote.observed_on) if quote else (round(series.price(series.last)), series.last_day)
        if found.trend is None:
            return View(title, body=[self.t("trend.none")])
        trend = found.trend
        # One fact a line: a line is never split across pages.
        lines = [
            self.t(f"trend.{trend.direction}", change=signed_percent(trend.change_percent), span=trends.span_text(self.t, trend)),
            self.t("trend.latest", price=money(latest), unit=self.unit(series.unit), date=short_date(latest_on)),
        ]
        if trend.year_percent is not None:
            lines.append(self.t("trend.year", change=signed_percent(trend.year_percent)))
        outlook = found.outlook
        if outlook.reason:
            lines.append(self.t(f"trend.no_forecast_{outlook.reason}"))
        for u in outlook.usual:
            when = trends.when_text(self.t, series.cadence, u.on, short_date)
            key = "trend.usual" if u.low < u.high else "trend.usual_point"
            lines.append(self.t(key, when=when, low=money(u.low), high=money(u.high)))
        if not outlook.forecasts:
            return View(title, lines=lines)
        for f in outlook.forecasts:
            key = "trend.forecast" if f.low < f.high else "trend.forecast_point"
            when = trends.when_text(self.t, series.cadence, f.on, short_date)
            lines.append(self.t(key, when=when, price=money(f.price), low=money(f.low), high=money(f.high)))
        last = outlook.forecasts[-1]
        lines.append(self.t(f"trend.method.{last.method}", error=last.error_percent, last=last.last_error_percent))
        lines.append(self.t(f"trend.confidence.{last.confidence}"))
        return View(title, lines=lines)

    def view_best_markets(self, crop_id: int, scope: str) -> View:
        """Where to sell: markets ranked by their latest price, fresh prices first, the caller's
        region unless they ask for all. Only prices in the crop's usual unit and kind compare."""
        crop = self.data.crop(crop_id)
        name = self.crop_name(crop_id)
        unit = crop.unit if crop else "kg"
        quotes = [q for q in self.data.prices(crop_id) if q.unit == unit and q.kind == "wholesale"]
        region = self.profile.region if scope == "home" else ""
        home = [q for q in quotes if (m := self.data.market(q.market_id)) and m.region == region]
        options = []
        if home and len(home) < len(quotes):
            quotes = home
            options.append(Option(self.t("prices.best_all"), lambda: Outcome(push=Frame("best_markets", (crop_id, "all")))))
            title = self.t("prices.best_title_region", crop=name, region=region, unit=self.unit(unit))
        else:
            title = self.t("prices.best_title", crop=name, unit=self.unit(unit))
        if not quotes:
            return View(title, body=[self.t("prices.none", crop=name)])
        fresh = self.today - dt.timedelta(days=self.config.best_fresh_days)
        ranked = sorted(quotes, key=lambda q: (q.observed_on < fresh, -q.price, _collate(q.market_name)))
        lines = [
            self.t("prices.best_line", market=self.market_name(q.market_id, q.market_name), price=money(q.price), date=short_date(q.observed_on))
            for q in ranked
        ]
        return View(title, lines=lines, options=options)

    def view_price_all(self, crop_id: int) -> View:
        crop = self.data.crop(crop_id)
        unit = crop.unit if crop else "kg"
        # The crop's usual unit is said once in the title; a market quoting another unit says so.
        lines = [
            self.t(
                "prices.line",
                market=self.market_name(q.market_id, q.market_name),
                price=money(q.price) + ("" if q.unit == unit else f"F/{self.unit(q.unit)}"),
                change=self.change_text(q),
                date=short_date(q.observed_on),
            ).strip()
            for q in self.data.prices(crop_id)
        ]
        title = self.t("prices.all_title", crop=self.crop_name(crop_id), unit=self.unit(unit))
        return View(title, lines=lines)

    # Buyer demand

    def demand_by_id(self, demand_id: int) -> Demand | None:
        return next((d for d in self.data.demands(self.today) if d.id == demand_id), None)

    def view_demands(self) -> View:
        demands = self.data.demands(self.today)
        if not demands:
            return View(self.t("demands.title"), body=[self.t("demands.none")])
        options = [
            Option(
                self.t("demands.option", buyer=d.buyer_name, crop=self.crop_name(d.crop_id), quantity=money(d.quantity_kg)),
                lambda i=d.id: Outcome(push=Frame("demand", (i,))),
            )
            for d in demands
        ]
        return View(self.t("demands.title"), options=options)

    def view_demand(self, demand_id: int) -> View:
        d = self.demand_by_id(demand_id)
        if d is None:
            return View(self.t("demands.title"), body=[self.t("demands.closed")])
        body = self.t(
            "demands.detail",
            buyer=d.buyer_name,
            crop=self.crop_name(d.crop_id),
            quantity=money(d.quantity_kg),
            price=money(d.price),
            unit=self.unit(d.unit),
            place=d.place,
            until=long_date(d.valid_until),
        )
        supply = Option(self.t("demands.supply"), lambda: Outcome(push=Frame("offer_quantity", (demand_id,))))
        return View(d.buyer_name, body=[body], options=[supply])

    def view_offer_quantity(self, demand_id: int) -> View:
        def entry(raw: str) -> Outcome:
            digits = raw.replace(" ", "")
            if not _NUMBER.fullmatch(digits) or not 0 < int(digits) <= MAX_OFFER_KG:
                return Outcome(error="error.quantity")
            return Outcome(push=Frame("offer_confirm", (demand_id, int(digits))))

        if self.demand_by_id(demand_id) is None:
            return View(self.t("demands.title"), body=[self.t("demands.closed")])
        return View(self.t("offer.ask_quantity"), entry=entry)

    def view_offer_confirm(self, demand_id: int, quantity: int) -> View:
        d = self.demand_by_id(demand_id)
        if d is None:
            return View(self.t("demands.title"), body=[self.t("demands.closed")])
        crop = self.crop_name(d.crop_id)

        def confirm() -> Outcome:
            text = self.t("offer.thanks", quantity=money(quantity), crop=crop, buyer=d.buyer_name)
            return Outcome(effects=(RecordOffer(demand_id, quantity),), end=text)

        cancel = lambda: Outcome(  # noqa: E731
            reset=(Frame("main"), Frame("demands")), notice=self.t("offer.cancelled")
        )
        body = self.t("offer.confirm", quantity=money(quantity), crop=crop, buyer=d.buyer_name)
        return View(
            self.t("offer.confirm_title"),
            body=[body],
            options=[Option(self.t("common.yes"), confirm), Option(self.t("common.no"), cancel)],
        )

    # Tips

    def view_tip_categories(self) -> View:
        options = [
            Option(self.t(f"tips.category.{cat}"), lambda c=cat: Outcome(push=Frame("tip_crops", (c,))))
            for cat in TIP_CATEGORIES
        ]
        return View(self.t("tips.title"), options=options)

    def view_tip_crops(self, category: str) -> View:
        tips = self.data.tips(category)
        title = self.t(f"tips.category.{category}")
        if not tips:
            return View(title, body=[self.t("tips.none")])
        crop_ids = {t.crop_id for t in tips}
        # Crops in catalogue order, then advice for every crop ("general") last.
        groups: list[tuple[int, str]] = [
            (c.id, c.name(self.lang)) for c in self.data.crops() if c.id in crop_ids
        ]
        if None in crop_ids:
            groups.append((0, self.t("tips.general")))
        return View(
            title,
            options=[
                Option(label, lambda g=gid: self.open_tip_group(category, g)) for gid, label in groups
            ],
        )

    def tips_of(self, category: str, group: int) -> list[Tip]:
        return [t for t in self.data.tips(category) if (t.crop_id or 0) == group]

    def open_tip_group(self, category: str, group: int) -> Outcome:
        tips = self.tips_of(category, group)
        if len(tips) == 1:
            return Outcome(push=Frame("tip", (category, tips[0].id)))
        return Outcome(push=Frame("tip_list", (category, group)))

    def view_tip_list(self, category: str, group: int) -> View:
        tips = self.tips_of(category, group)
        return View(
            self.t(f"tips.category.{category}"),
            options=[
                Option(t.title(self.lang), lambda i=t.id: Outcome(push=Frame("tip", (category, i))))
                for t in tips
            ],
        )

    def view_tip(self, category: str, tip_id: int) -> View:
        tip = next((t for t in self.data.tips(category) if t.id == tip_id), None)
        if tip is None:
            return View(self.t("tips.title"), body=[self.t("tips.none")])
        return View(tip.title(self.lang), body=[tip.text(self.lang)])

    # SMS alerts

    def sub_label(self, sub: Subscription) -> str:
        return self.t("alerts.item", crop=self.crop_name(sub.crop_id), market=self.market_name(sub.market_id))

    def view_alerts(self) -> View:
        go = lambda node: (lambda: Outcome(push=Frame(node)))  # noqa: E731
        stopped = self.profile.opted_out
        restart = lambda: Outcome(  # noqa: E731
            effects=(StartAlerts(),), notice=self.t("alerts.restarted")
        )
        return View(
            self.t("alerts.title_stopped" if stopped else "alerts.title"),
            options=[
                Option(self.t("alerts.mine"), go("alert_list")),
                Option(self.t("alerts.subscribe"), go("sub_crops")),
                Option(self.t("alerts.unsubscribe"), go("unsub_list")),
                Option(self.t("alerts.restart"), restart)
                if stopped
                else Option(self.t("alerts.stop_all"), go("stop_confirm")),
            ],
        )

    def view_alert_list(self) -> View:
        subs = self.profile.subscriptions
        if not subs:
            return View(self.t("alerts.mine"), body=[self.t("alerts.none")])
        return View(self.t("alerts.mine"), lines=[self.sub_label(s) for s in subs])

    def view_sub_crops(self) -> View:
        return View(self.t("alerts.choose_crop"), options=self.crop_options("sub_markets"))

    def view_sub_markets(self, crop_id: int) -> View:
        def subscribe(market_id: int) -> Outcome:
            return Outcome(
                effects=(Subscribe(crop_id, market_id),),
                reset=(Frame("main"), Frame("alerts")),
                notice=self.t("alerts.subscribed"),
            )

        return View(
            self.t("alerts.choose_market", crop=self.crop_name(crop_id)),
            options=[Option(m.label(self.lang), lambda i=m.id: subscribe(i)) for m in self.data.markets()],
        )

    def view_unsub_list(self) -> View:
        subs = self.profile.subscriptions
        if not subs:
            return View(self.t("alerts.unsubscribe"), body=[self.t("alerts.none")])

        def unsubscribe(sub: Subscription) -> Outcome:
            return Outcome(
                effects=(Unsubscribe(sub.crop_id, sub.market_id),),
                reset=(Frame("main"), Frame("alerts")),
                notice=self.t("alerts.unsubscribed"),
            )

        return View(
            self.t("alerts.unsubscribe"),
            options=[Option(self.sub_label(s), lambda s=s: unsubscribe(s)) for s in subs],
        )

    def view_stop_confirm(self) -> View:
        back = (Frame("main"), Frame("alerts"))
        stop = lambda: Outcome(  # noqa: E731
            effects=(StopAlerts(),), reset=back, notice=self.t("alerts.stopped")
        )
        return View(
            self.t("alerts.stop_all"),
            body=[self.t("alerts.stop_confirm")],
            options=[
                Option(self.t("common.yes"), stop),
                Option(self.t("common.no"), lambda: Outcome(reset=back)),
            ],
        )

    # Profile

    def view_profile(self) -> View:
        p = self.profile
        empty = self.t("profile.empty")
        lines = [
            self.t(f"profile.field.{name}") + ": " + (getattr(p, name) or empty)
            for name in PROFILE_FIELDS
        ]
        edit = lambda name: (  # noqa: E731
            lambda: Outcome(push=Frame("profile_region" if name == "region" else "profile_edit", (name,)))
        )
        options = [Option(self.t(f"profile.edit.{name}"), edit(name)) for name in PROFILE_FIELDS]
        return View(self.t("profile.title"), lines=lines, options=options)

    def saved(self, name: str, value: str) -> Outcome:
        return Outcome(
            effects=(SetProfileField(name, value),),
            reset=(Frame("main"), Frame("profile")),
            notice=self.t("profile.saved"),
        )

    def view_profile_edit(self, name: str) -> View:
        def entry(raw: str) -> Outcome:
            value = " ".join(raw.split())
            if not 2 <= len(value) <= self.config.max_input_chars or not _PROFILE_TEXT.match(value):
                return Outcome(error="error.text")
            return self.saved(name, value)

        return View(self.t(f"profile.ask.{name}"), entry=entry)

    def view_profile_region(self, name: str) -> View:
        regions = sorted({m.region for m in self.data.markets() if m.region})
        return View(
            self.t("profile.ask.region"),
            options=[Option(r, lambda r=r: self.saved("region", r)) for r in regions],
        )

    # Services directory

    def view_services(self) -> View:
        return View(
            self.t("services.title"),
            options=[
                Option(self.t(f"services.category.{c}"), lambda c=c: Outcome(push=Frame("service_regions", (c,))))
                for c in SERVICE_CATEGORIES
            ],
        )

    def view_service_regions(self, category: str) -> View:
        title = self.t("services.choose_region", category=self.t(f"services.category.{category}"))
        regions = self.data.service_regions(category)
        if not regions:
            return View(title, body=[self.t("services.none")])
        # The caller's own region first: that is where they will travel to.
        home = self.profile.region
        regions = sorted(regions, key=lambda r: (r != home, _collate(r)))
        options = [Option(self.t("services.all_regions"), lambda: Outcome(push=Frame("service_list", (category, ""))))]
        options += [Option(r, lambda r=r: Outcome(push=Frame("service_list", (category, r)))) for r in regions]
        return View(title, options=options)

    def view_service_list(self, category: str, region: str) -> View:
        title = self.t(f"services.category.{category}") + (f" - {region}" if region else "")
        entries = self.data.services(category, region or None)
        if not entries:
            return View(title, body=[self.t("services.none")])
        options = [
            Option(e.name + ("" if region else f" ({e.region})"), lambda e=e: Outcome(push=Frame("service", (category, e.id))))
            for e in entries
        ]
        return View(title, options=options)

    def view_service(self, category: str, service_id: int) -> View:
        entry = next((e for e in self.data.services(category, None) if e.id == service_id), None)
        title = self.t(f"services.category.{category}")
        if entry is None:  # removed by staff since the list was shown
            return View(title, body=[self.t("services.none")])
        body = [self.t("services.entry", name=entry.name, phone=phone_display(entry.phone), summary=entry.summary(self.lang))]
        send = SendService(entry.id)
        option = Option(self.t("services.send_sms"), lambda: Outcome(effects=(send,), notice=self.t("services.sms_sent")))
        return View(title, body=body, options=[option])


def run(
    inputs: Sequence[str],
    *,
    profile: Profile,
    data: DataView,
    catalog: Catalog,
    now: dt.datetime,
    config: EngineConfig = EngineConfig(),
) -> Screen:
    """The screen for a session whose inputs so far are `inputs` (empty on the first hop)."""
    replay = _Replay(profile, data, catalog, now, config)
    if len(inputs) > config.max_steps:
        return replay.end(replay.t("session.too_long"), "too_long", ())
    flash: str | None = None
    last = len(inputs) - 1
    for index, raw in enumerate(inputs):
        outcome = replay.step(raw.strip())
        replay.follow(outcome)
        effects = outcome.effects if index == last else ()
        if outcome.end is not None:
            return replay.end(outcome.end, replay.stack[-1].node, effects)
        if index == last:
            flash = replay.t(outcome.error) if outcome.error else outcome.notice
            return replay.render(flash, effects)
    return replay.render(flash, ())
