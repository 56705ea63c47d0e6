"""The USSD state machine.

`run()` replays every input of the session from the first screen (Africa's Talking sends them all,
joined by `*`) and returns the screen to show and the effects of the *last* input only: earlier
inputs had their effects applied on earlier hops. The replay starts from the caller's profile as it
was when the session began, and applies the session's own effects to a private copy as it goes, so
the same inputs always lead to the same screen, whichever server process answers.

Navigation, the same on every screen: `0` back (or previous page), `00` main menu, `98` next page.

Screens are built from phrases (menus.screen: catalog keys and typed values), never from text:
menus.ussd words and pages them for the handset, and the returned Screen carries the page shown
as structure too, so that another channel (voice) renders the same menus its own way.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Callable, MutableMapping, Sequence

from menus import languages, trends
from menus.screen import (
    FREE_TEXT,
    NOTHING,
    QUANTITY,
    CropRef,
    Day,
    KindRef,
    LanguageRef,
    Layout,
    MarketRef,
    Money,
    Number,
    Pair,
    Part,
    Percent,
    Phone,
    Quantity,
    RegionRef,
    Text,
    UnitRef,
    phrase,
)
from menus.types import (
    ALERT_CHANNELS,
    SERVICE_CATEGORIES,
    TIP_CATEGORIES,
    Crop,
    DataView,
    Demand,
    Effect,
    Language,
    Market,
    PriceQuote,
    Profile,
    RecordOffer,
    Screen,
    SendService,
    ServiceEntry,
    SetAlertChannel,
    SetLanguage,
    SetProfileField,
    StartAlerts,
    StopAlerts,
    Subscribe,
    Subscription,
    Term,
    Tip,
    Unsubscribe,
)
from menus.ussd import FLASH_WIDTH, Pages, UssdRenderer  # noqa: F401 (FLASH_WIDTH: tests read it here)
from menus.wording import Wording
from messages import Catalog, to_ussd

BACK, HOME, MORE = "0", "00", "98"
MAX_OFFER_KG = 1_000_000
PROFILE_FIELDS = ("name", "village", "region", "cluster")
_PROFILE_TEXT = re.compile(r"^[^\W_][\w .,'-]*$")
# ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() refuses.
_NUMBER = re.compile(r"[0-9]{1,9}")


# Every hop replays from the main menu: its phrases are made once.
_MAIN_TITLE = phrase("main.title")
_MAIN_MENU = tuple(
    (phrase(f"main.{label}"), node)
    for label, node in (
        ("prices", "price_crops"), ("demands", "demands"), ("tips", "tip_categories"), ("alerts", "alerts"),
        ("profile", "profile"), ("language", "language"), ("services", "services"),
    )
)  # fmt: skip


@dataclass(frozen=True)
class EngineConfig:
    max_chars: int = 160
    max_steps: int = 40
    max_input_chars: int = 40
    stale_after_days: int = 10
    # Best markets: prices older than this rank after the fresh ones, whatever their level.
    best_fresh_days: int = 21
    # The channel speaks (voice): languages are offered by voice rather than by catalog.
    spoken: bool = False
    # The service's voice number (E.164), told to callers of a voice-only language on USSD.
    voice_number: str = ""


@dataclass(frozen=True, slots=True)
class Frame:
    node: str
    args: tuple = ()
    page: int = 0


@dataclass
class Option:
    label: Part
    act: Callable[[], "Outcome"]


@dataclass
class View:
    """A screen with what each choice does; its `layout()` is what channels render."""

    title: Part
    body: list[Part] = field(default_factory=list)  # prose, may continue on the next page
    lines: list[Part] = field(default_factory=list)  # one fact each, never split
    options: list[Option] = field(default_factory=list)
    entry: Callable[[str], "Outcome"] | None = None  # free input instead of options
    nav: bool = True
    expects: str = ""  # with `entry`: QUANTITY or FREE_TEXT, for channels that cannot take words

    def layout(self) -> Layout:
        return Layout(
            self.title,
            tuple(self.body),
            tuple(self.lines),
            tuple([option.label for option in self.options]),
            self.nav,
            self.expects if self.entry is not None else "",
        )


@dataclass
class Outcome:
    push: Frame | None = None
    reset: tuple[Frame, ...] | None = None
    end: Part | None = None
    error: str | None = None  # catalog key
    notice: Part | None = None
    effects: tuple[Effect, ...] = ()


def _collate(name: str) -> str:
    """Alphabetical order as readers expect it: Sévaré before Sikasso."""
    return to_ussd(name).lower()


def _first_by_id(rows: Sequence) -> dict:
    found: dict = {}
    for row in rows:
        found.setdefault(row.id, row)
    return found


class _Memo:
    """Per-hop cache over the data view: the replay asks for the same lists many times."""

    def __init__(self, data: DataView) -> None:
        self._data = data
        self._cache: dict[tuple, object] = {}
        self._crop_ids: dict[int, Crop] | None = None
        self._market_ids: dict[int, Market] | None = None

    def _get(self, key: tuple, load: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def all_crops(self) -> Sequence[Crop]:
        return self._get(("all_crops",), lambda: list(self._data.crops()))

    def languages(self) -> tuple[Language, ...]:
        return self._get(("languages",), lambda: languages.configured(self._data))

    def crops(self) -> Sequence[Crop]:
        # Retired crops leave the menus; their names stay known for subscriptions and history.
        return self._get(("crops",), lambda: [c for c in self.all_crops() if c.active])

    def all_markets(self) -> Sequence[Market]:
        return self._get(
            ("all_markets",), lambda: sorted(self._data.markets(), key=lambda m: (_collate(m.name), m.id))
        )

    def markets(self) -> Sequence[Market]:
        return self._get(("markets",), lambda: [m for m in self.all_markets() if m.active])

    # By id, indexed once a hop: every crop and market name on a screen is looked up when worded.

    def crop(self, crop_id: int) -> Crop | None:
        if self._crop_ids is None:
            self._crop_ids = _first_by_id(self.all_crops())
        return self._crop_ids.get(crop_id)

    def market(self, market_id: int) -> Market | None:
        if self._market_ids is None:
            self._market_ids = _first_by_id(self.all_markets())
        return self._market_ids.get(market_id)

    def prices(self, crop_id: int) -> list[PriceQuote]:
        def load() -> list[PriceQuote]:
            quotes = [q for q in self._data.latest_prices(crop_id) if getattr(self.market(q.market_id), "active", True)]
            return sorted(quotes, key=lambda q: (_collate(q.market_name), q.market_id))

        return self._get(("prices", crop_id), load)

    def terms(self, what: str) -> dict[str, Term]:
        """Units or kinds by code, from the data when it has them (see DataView)."""
        found = self._cache.get((what,))
        if found is None:
            source = getattr(self._data, what, None)
            found = self._cache[(what,)] = {t.code: t for t in source()} if source else {}
        return found

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
        # Bumped whenever the session's own effects change the profile: screens are cached by it
        # (hashing the whole profile for every lookup cost more than building some screens).
        self.changes = 0
        self.data = _Memo(data)
        self.catalog = catalog
        # The languages this channel offers; a caller whose own is not among them is served in
        # French, told why on the first screen (menus.languages).
        self.offered = languages.offered(self.data.languages(), catalog, spoken=config.spoken)
        served = languages.serve(profile.language, self.data.languages(), catalog, spoken=config.spoken,
                                 voice_number=config.voice_number)
        self.lang = served.language
        self.lang_notice = served.notice
        self.today = now.date()
        self.config = config
        self.stack: list[Frame] = [self.home()]
        # The last main-menu branch the path went into, and whether the last input changed it:
        # the gateway records the branch when it changes, without reading what it stored.
        self.last_section = ""
        self.entered = False
        self.ussd = UssdRenderer(Wording(catalog, self.data), config.max_chars)
        # Replaying a path builds the same screens again and again: once per hop is enough.
        self._views: dict[tuple, View] = {}
        self._pages: dict[tuple, Pages] = {}
        self.laid_out: MutableMapping | None = None

    # -- helpers ------------------------------------------------------------------------------

    def home(self) -> Frame:
        return Frame("main") if self.profile.language else Frame("lang_first")

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
            case SetAlertChannel(channel=channel):
                self.profile = replace(p, alert_channel=channel)
            case SetProfileField(field=name, value=value):
                self.profile = replace(p, **{name: value})
        if self.profile is not p:
            self.changes += 1

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
            if frame.page + 1 < len(self.frame_pages(frame).lines):
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

    # -- rendering (menus.ussd words and pages the screens) --------------------------------------

    def render(self, flash: Part | None, effects: tuple[Effect, ...], inputs: Sequence[str] = ()) -> Screen:
        frame = self.stack[-1]
        text, page = self.ussd.page(self.frame_pages(frame), frame.page, flash, self.lang)
        resume = Resume(tuple(inputs), tuple(self.stack), self.profile, self.lang, self.last_section)
        return Screen(text, False, frame.node, self.lang, effects, self.section(), page, self.entered, resume)

    def restore(self, resume: Resume) -> None:
        """Stand where a previous replay of the same session stood (see Resume)."""
        self.stack = list(resume.stack)
        if resume.profile != self.profile:
            self.profile = resume.profile
            self.changes += 1
        self.lang = resume.lang
        self.last_section = resume.last_section

    def end(self, part: Part, screen_id: str, effects: tuple[Effect, ...]) -> Screen:
        text, page = self.ussd.end(part, self.lang)
        return Screen(text, True, screen_id, self.lang, effects, self.section(), page, self.entered)

    def section(self) -> str:
        return self.stack[1].node if len(self.stack) > 1 and self.stack[0].node == "main" else ""

    # -- screens --------------------------------------------------------------------------------

    def view(self, frame: Frame) -> View:
        key = (frame.node, frame.args, self.lang, self.changes)
        if key not in self._views:
            self._views[key] = getattr(self, f"view_{frame.node}")(*frame.args)
        return self._views[key]

    def frame_pages(self, frame: Frame) -> Pages:
        key = (frame.node, frame.args, self.lang, self.changes)
        if key not in self._pages:
            layout = self.view(frame).layout()
            shared = self.laid_out
            if shared is None:
                self._pages[key] = self.ussd.pages(layout, self.lang)
            else:  # the caller's cache of layouts already laid out for the same content (see run)
                found = shared.get((layout, self.lang))
                if found is None:
                    found = shared[(layout, self.lang)] = self.ussd.pages(layout, self.lang)
                self._pages[key] = found
        return self._pages[key]

    def language_options(self, *, first: bool) -> list[Option]:
        """Each language this channel offers, by its own name."""
        return [
            Option(LanguageRef(lang.code, lang.name), lambda c=lang.code: self.choose_language(c, first=first))
            for lang in self.offered
        ]

    def view_lang_first(self) -> View:
        return View(phrase("lang.choose"), options=self.language_options(first=True), nav=False)

    def choose_language(self, language: str, *, first: bool = False) -> Outcome:
        # The notice is worded after the effect, so in the language just chosen; a language
        # without a catalog of its own (voice-only) names itself, said in its own recording.
        if first:
            notice = phrase("lang.welcome")
        elif self.catalog.has_language(language):
            notice = phrase("lang.changed")
        else:
            name = next((lang.name for lang in self.offered if lang.code == language), language)
            notice = phrase("lang.changed_to", name=LanguageRef(language, name))
        return Outcome(reset=(Frame("main"),), effects=(SetLanguage(language),), notice=notice)

    def view_main(self) -> View:
        return View(
            _MAIN_TITLE,
            options=[Option(label, lambda node=node: Outcome(push=Frame(node))) for label, node in _MAIN_MENU],
            nav=False,
        )

    def view_language(self) -> View:
        return View(phrase("lang.title"), options=self.language_options(first=False))

    # Prices

    def crop_options(self, node: str) -> list[Option]:
        return [
            Option(CropRef(crop.id), lambda c=crop.id: Outcome(push=Frame(node, (c,))))
            for crop in self.data.crops()
        ]

    def view_price_crops(self) -> View:
        return View(phrase("prices.choose_crop"), options=self.crop_options("price_markets"))

    def view_price_markets(self, crop_id: int) -> View:
        quotes = self.data.prices(crop_id)
        crop = CropRef(crop_id)
        if not quotes:
            return View(crop, body=[phrase("prices.none", crop=crop)])
        options = [
            Option(phrase("prices.all_markets"), lambda: Outcome(push=Frame("price_all", (crop_id,)))),
            Option(phrase("prices.best_markets"), lambda: Outcome(push=Frame("best_markets", (crop_id, "home")))),
        ]
        options += [
            Option(MarketRef(q.market_id, q.market_name), lambda m=q.market_id: Outcome(push=Frame("price_one", (crop_id, m))))
            for q in quotes
        ]
        return View(phrase("prices.choose_market", crop=crop), options=options)

    def age_note(self, day: dt.date) -> Part:
        days = (self.today - day).days
        if days <= self.config.stale_after_days:
            return NOTHING
        if days < 14:
            return phrase("prices.age_days", days=Number(days))
        return phrase("prices.age_weeks", weeks=Number(days // 7))

    @staticmethod
    def change(quote: PriceQuote) -> Part:
        change = quote.change_percent
        return NOTHING if change is None else Percent(change)

    def view_price_one(self, crop_id: int, market_id: int) -> View:
        crop = CropRef(crop_id)
        quote = next((q for q in self.data.prices(crop_id) if q.market_id == market_id), None)
        title = phrase("prices.detail_title", crop=crop, market=MarketRef(market_id))
        if quote is None:
            return View(title, body=[phrase("prices.none", crop=crop)])
        body = [
            phrase(
                "prices.detail",
                price=Money(quote.price),
                unit=UnitRef(quote.unit),
                kind=KindRef(quote.kind),
                date=Day(quote.observed_on),
                age=self.age_note(quote.observed_on),
            )
        ]
        if quote.previous_price and quote.previous_on:
            body.append(
                phrase(
                    "prices.change",
                    change=self.change(quote),
                    previous=Money(quote.previous_price),
                    previous_date=Day(quote.previous_on),
                )
            )
        # Subscribe, or once subscribed (this session too: effects are mirrored), unsubscribe.
        if Subscription(crop_id, market_id) in self.profile.subscriptions and not self.profile.opted_out:
            alerts = Option(
                phrase("prices.stop_alerts"),
                lambda: Outcome(effects=(Unsubscribe(crop_id, market_id),), notice=phrase("alerts.unsubscribed")),
            )
        else:
            alerts = Option(
                phrase("prices.get_alerts"),
                lambda: Outcome(effects=(Subscribe(crop_id, market_id),), notice=phrase("alerts.subscribed")),
            )
        options = [
            alerts,
            Option(phrase("prices.trend"), lambda: Outcome(push=Frame("price_trend", (crop_id, market_id)))),
        ]
        return View(title, body=body, options=options)

    def view_price_trend(self, crop_id: int, market_id: int) -> View:
        """The direction (4 weeks, or up to 3 months on monthly series), the year-on-year change and
        the forecasts where they beat the last price, else its usual range; the same answer as
        SMS and the console, from menus.trends.report."""
        title = phrase("prices.detail_title", crop=CropRef(crop_id), market=MarketRef(market_id))
        found = trends.report(self.data.history(crop_id, market_id, trends.HISTORY_START), self.today)
        series = found.series
        if not series.points:
            return View(title, body=[phrase("trend.none")])
        unit = UnitRef(series.unit)
        if found.stale:
            price = Money(round(series.price(series.last)))
            return View(title, body=[phrase("trend.stale", price=price, unit=unit, date=Day(series.last_day, year=True))])
        # The quote the price screen showed, so both screens agree; the period's mean otherwise.
        quote = next((q for q in self.data.prices(crop_id) if q.market_id == market_id and q.unit == series.unit and q.kind == series.kind), None)
        latest, latest_on = (quote.price, quote.observed_on) if quote else (round(series.price(series.last)), series.last_day)
        if found.trend is None:
            return View(title, body=[phrase("trend.none")])
        trend = found.trend
        # One fact a line: a line is never split across pages.
        lines = [
            phrase(f"trend.{trend.direction}", change=Percent(trend.change_percent), span=trends.span_phrase(trend)),
            phrase("trend.latest", price=Money(latest), unit=unit, date=Day(latest_on)),
        ]
        if trend.year_percent is not None:
            lines.append(phrase("trend.year", change=Percent(trend.year_percent)))
        outlook = found.outlook
        if outlook.reason:
            lines.append(phrase(f"trend.no_forecast_{outlook.reason}"))
        for u in outlook.usual:
            key = "trend.usual" if u.low < u.high else "trend.usual_point"
            lines.append(phrase(key, when=trends.when_phrase(series.cadence, u.on), low=Money(u.low), high=Money(u.high)))
        if not outlook.forecasts:
            return View(title, lines=lines)
        for f in outlook.forecasts:
            key = "trend.forecast" if f.low < f.high else "trend.forecast_point"
            when = trends.when_phrase(series.cadence, f.on)
            lines.append(phrase(key, when=when, price=Money(f.price), low=Money(f.low), high=Money(f.high)))
        last = outlook.forecasts[-1]
        lines.append(phrase(f"trend.method.{last.method}", error=Number(last.error_percent), last=Number(last.last_error_percent)))
        lines.append(phrase(f"trend.confidence.{last.confidence}"))
        return View(title, lines=lines)

    def view_best_markets(self, crop_id: int, scope: str) -> View:
        """Where to sell: markets ranked by their latest price, fresh prices first, the caller's
        region unless they ask for all. Only prices in the crop's usual unit and kind compare."""
        crop = self.data.crop(crop_id)
        name = CropRef(crop_id)
        unit = crop.unit if crop else "kg"
        quotes = [q for q in self.data.prices(crop_id) if q.unit == unit and q.kind == "wholesale"]
        region = self.profile.region if scope == "home" else ""
        home = [q for q in quotes if (m := self.data.market(q.market_id)) and m.region == region]
        options = []
        if home and len(home) < len(quotes):
            quotes = home
            options.append(Option(phrase("prices.best_all"), lambda: Outcome(push=Frame("best_markets", (crop_id, "all")))))
            title = phrase("prices.best_title_region", crop=name, region=RegionRef(region), unit=UnitRef(unit))
        else:
            title = phrase("prices.best_title", crop=name, unit=UnitRef(unit))
        if not quotes:
            return View(title, body=[phrase("prices.none", crop=name)])
        fresh = self.today - dt.timedelta(days=self.config.best_fresh_days)
        ranked = sorted(quotes, key=lambda q: (q.observed_on < fresh, -q.price, _collate(q.market_name)))
        lines = [
            phrase("prices.best_line", market=MarketRef(q.market_id, q.market_name), price=Money(q.price), date=Day(q.observed_on))
            for q in ranked
        ]
        return View(title, lines=lines, options=options)

    def view_price_all(self, crop_id: int) -> View:
        crop = self.data.crop(crop_id)
        unit = crop.unit if crop else "kg"
        # The crop's usual unit is said once in the title; a market quoting another unit says so.
        lines = [
            phrase(
                "prices.line",
                market=MarketRef(q.market_id, q.market_name),
                price=Money(q.price, "" if q.unit == unit else q.unit),
                change=self.change(q),
                date=Day(q.observed_on),
            )
            for q in self.data.prices(crop_id)
        ]
        title = phrase("prices.all_title", crop=CropRef(crop_id), unit=UnitRef(unit))
        return View(title, lines=lines)

    # Buyer demand

    def demand_by_id(self, demand_id: int) -> Demand | None:
        return next((d for d in self.data.demands(self.today) if d.id == demand_id), None)

    def view_demands(self) -> View:
        demands = self.data.demands(self.today)
        if not demands:
            return View(phrase("demands.title"), body=[phrase("demands.none")])
        options = [
            Option(
                phrase("demands.option", buyer=Text(d.buyer_name), crop=CropRef(d.crop_id), quantity=Quantity(d.quantity_kg)),
                lambda i=d.id: Outcome(push=Frame("demand", (i,))),
            )
            for d in demands
        ]
        return View(phrase("demands.title"), options=options)

    def closed_demand(self) -> View:
        return View(phrase("demands.title"), body=[phrase("demands.closed")])

    def view_demand(self, demand_id: int) -> View:
        d = self.demand_by_id(demand_id)
        if d is None:
            return self.closed_demand()
        body = phrase(
            "demands.detail",
            buyer=Text(d.buyer_name),
            crop=CropRef(d.crop_id),
            quantity=Quantity(d.quantity_kg),
            price=Money(d.price),
            unit=UnitRef(d.unit),
            place=Text(d.place),
            until=Day(d.valid_until, year=True),
        )
        supply = Option(phrase("demands.supply"), lambda: Outcome(push=Frame("offer_quantity", (demand_id,))))
        return View(Text(d.buyer_name), body=[body], options=[supply])

    def view_offer_quantity(self, demand_id: int) -> View:
        def entry(raw: str) -> Outcome:
            digits = raw.replace(" ", "")
            if not _NUMBER.fullmatch(digits) or not 0 < int(digits) <= MAX_OFFER_KG:
                return Outcome(error="error.quantity")
            return Outcome(push=Frame("offer_confirm", (demand_id, int(digits))))

        if self.demand_by_id(demand_id) is None:
            return self.closed_demand()
        return View(phrase("offer.ask_quantity"), entry=entry, expects=QUANTITY)

    def view_offer_confirm(self, demand_id: int, quantity: int) -> View:
        d = self.demand_by_id(demand_id)
        if d is None:
            return self.closed_demand()
        offer = dict(quantity=Quantity(quantity), crop=CropRef(d.crop_id), buyer=Text(d.buyer_name))

        def confirm() -> Outcome:
            return Outcome(effects=(RecordOffer(demand_id, quantity),), end=phrase("offer.thanks", **offer))

        cancel = lambda: Outcome(  # noqa: E731
            reset=(Frame("main"), Frame("demands")), notice=phrase("offer.cancelled")
        )
        return View(
            phrase("offer.confirm_title"),
            body=[phrase("offer.confirm", **offer)],
            options=[Option(phrase("common.yes"), confirm), Option(phrase("common.no"), cancel)],
        )

    # Tips

    def view_tip_categories(self) -> View:
        options = [
            Option(phrase(f"tips.category.{cat}"), lambda c=cat: Outcome(push=Frame("tip_crops", (c,))))
            for cat in TIP_CATEGORIES
        ]
        return View(phrase("tips.title"), options=options)

    def view_tip_crops(self, category: str) -> View:
        tips = self.data.tips(category)
        title = phrase(f"tips.category.{category}")
        if not tips:
            return View(title, body=[phrase("tips.none")])
        crop_ids = {t.crop_id for t in tips}
        # Crops in catalogue order, then advice for every crop ("general") last.
        groups: list[tuple[int, Part]] = [(c.id, CropRef(c.id)) for c in self.data.crops() if c.id in crop_ids]
        if None in crop_ids:
            groups.append((0, phrase("tips.general")))
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
            phrase(f"tips.category.{category}"),
            options=[
                Option(Text(t.title(self.lang)), lambda i=t.id: Outcome(push=Frame("tip", (category, i))))
                for t in tips
            ],
        )

    def view_tip(self, category: str, tip_id: int) -> View:
        tip = next((t for t in self.data.tips(category) if t.id == tip_id), None)
        if tip is None:
            return View(phrase("tips.title"), body=[phrase("tips.none")])
        return View(Text(tip.title(self.lang)), body=[Text(tip.text(self.lang))])

    # SMS alerts

    def sub_label(self, sub: Subscription) -> Part:
        return phrase("alerts.item", crop=CropRef(sub.crop_id), market=MarketRef(sub.market_id))

    def view_alerts(self) -> View:
        go = lambda node: (lambda: Outcome(push=Frame(node)))  # noqa: E731
        stopped = self.profile.opted_out
        restart = lambda: Outcome(  # noqa: E731
            effects=(StartAlerts(),), notice=phrase("alerts.restarted")
        )
        return View(
            phrase("alerts.title_stopped" if stopped else "alerts.title"),
            options=[
                Option(phrase("alerts.mine"), go("alert_list")),
                Option(phrase("alerts.subscribe"), go("sub_crops")),
                Option(phrase("alerts.unsubscribe"), go("unsub_list")),
                Option(phrase("alerts.restart"), restart)
                if stopped
                else Option(phrase("alerts.stop_all"), go("stop_confirm")),
                # Last, so that the numbers farmers know (4: stop) stay where they were.
                Option(phrase("alerts.channel", how=phrase(f"alerts.by_{self.profile.alert_channel}")),
                       go("alert_channel")),
            ],
        )

    def view_alert_channel(self) -> View:
        back = (Frame("main"), Frame("alerts"))

        def choose(channel: str) -> Callable[[], Outcome]:
            return lambda: Outcome(effects=(SetAlertChannel(channel),), reset=back,
                                   notice=phrase("alerts.channel_saved"))

        return View(
            phrase("alerts.channel_title"),
            options=[Option(phrase(f"alerts.by_{c}"), choose(c)) for c in ALERT_CHANNELS],
        )

    def view_alert_list(self) -> View:
        subs = self.profile.subscriptions
        if not subs:
            return View(phrase("alerts.mine"), body=[phrase("alerts.none")])
        return View(phrase("alerts.mine"), lines=[self.sub_label(s) for s in subs])

    def view_sub_crops(self) -> View:
        return View(phrase("alerts.choose_crop"), options=self.crop_options("sub_markets"))

    def view_sub_markets(self, crop_id: int) -> View:
        def subscribe(market_id: int) -> Outcome:
            return Outcome(
                effects=(Subscribe(crop_id, market_id),),
                reset=(Frame("main"), Frame("alerts")),
                notice=phrase("alerts.subscribed"),
            )

        return View(
            phrase("alerts.choose_market", crop=CropRef(crop_id)),
            options=[Option(MarketRef(m.id), lambda i=m.id: subscribe(i)) for m in self.data.markets()],
        )

    def view_unsub_list(self) -> View:
        subs = self.profile.subscriptions
        if not subs:
            return View(phrase("alerts.unsubscribe"), body=[phrase("alerts.none")])

        def unsubscribe(sub: Subscription) -> Outcome:
            return Outcome(
                effects=(Unsubscribe(sub.crop_id, sub.market_id),),
                reset=(Frame("main"), Frame("alerts")),
                notice=phrase("alerts.unsubscribed"),
            )

        return View(
            phrase("alerts.unsubscribe"),
            options=[Option(self.sub_label(s), lambda s=s: unsubscribe(s)) for s in subs],
        )

    def view_stop_confirm(self) -> View:
        back = (Frame("main"), Frame("alerts"))
        stop = lambda: Outcome(  # noqa: E731
            effects=(StopAlerts(),), reset=back, notice=phrase("alerts.stopped")
        )
        return View(
            phrase("alerts.stop_all"),
            body=[phrase("alerts.stop_confirm")],
            options=[
                Option(phrase("common.yes"), stop),
                Option(phrase("common.no"), lambda: Outcome(reset=back)),
            ],
        )

    # Profile

    def view_profile(self) -> View:
        p = self.profile

        def value(name: str) -> Part:
            given = getattr(p, name)
            if not given:
                return phrase("profile.empty")
            return RegionRef(given) if name == "region" else Text(given)

        lines = [Pair(phrase(f"profile.field.{name}"), value(name), "colon") for name in PROFILE_FIELDS]
        edit = lambda name: (  # noqa: E731
            lambda: Outcome(push=Frame("profile_region" if name == "region" else "profile_edit", (name,)))
        )
        options = [Option(phrase(f"profile.edit.{name}"), edit(name)) for name in PROFILE_FIELDS]
        return View(phrase("profile.title"), lines=lines, options=options)

    def saved(self, name: str, value: str) -> Outcome:
        return Outcome(
            effects=(SetProfileField(name, value),),
            reset=(Frame("main"), Frame("profile")),
            notice=phrase("profile.saved"),
        )

    def view_profile_edit(self, name: str) -> View:
        def entry(raw: str) -> Outcome:
            value = " ".join(raw.split())
            if not 2 <= len(value) <= self.config.max_input_chars or not _PROFILE_TEXT.match(value):
                return Outcome(error="error.text")
            return self.saved(name, value)

        return View(phrase(f"profile.ask.{name}"), entry=entry, expects=FREE_TEXT)

    def view_profile_region(self, name: str) -> View:
        regions = sorted({m.region for m in self.data.markets() if m.region})
        return View(
            phrase("profile.ask.region"),
            options=[Option(RegionRef(r), lambda r=r: self.saved("region", r)) for r in regions],
        )

    # Services directory

    def view_services(self) -> View:
        return View(
            phrase("services.title"),
            options=[
                Option(phrase(f"services.category.{c}"), lambda c=c: Outcome(push=Frame("service_regions", (c,))))
                for c in SERVICE_CATEGORIES
            ],
        )

    def view_service_regions(self, category: str) -> View:
        title = phrase("services.choose_region", category=phrase(f"services.category.{category}"))
        regions = self.data.service_regions(category)
        if not regions:
            return View(title, body=[phrase("services.none")])
        # The caller's own region first: that is where they will travel to.
        home = self.profile.region
        regions = sorted(regions, key=lambda r: (r != home, _collate(r)))
        options = [Option(phrase("services.all_regions"), lambda: Outcome(push=Frame("service_list", (category, ""))))]
        options += [Option(RegionRef(r), lambda r=r: Outcome(push=Frame("service_list", (category, r)))) for r in regions]
        return View(title, options=options)

    def view_service_list(self, category: str, region: str) -> View:
        name = phrase(f"services.category.{category}")
        title = Pair(name, RegionRef(region), "dash") if region else name
        entries = self.data.services(category, region or None)
        if not entries:
            return View(title, body=[phrase("services.none")])
        options = [
            Option(Text(e.name) if region else Pair(Text(e.name), RegionRef(e.region), "paren"), lambda e=e: Outcome(push=Frame("service", (category, e.id))))
            for e in entries
        ]
        return View(title, options=options)

    def view_service(self, category: str, service_id: int) -> View:
        entry = next((e for e in self.data.services(category, None) if e.id == service_id), None)
        title = phrase(f"services.category.{category}")
        if entry is None:  # removed by staff since the list was shown
            return View(title, body=[phrase("services.none")])
        body = [phrase("services.entry", name=Text(entry.name), phone=Phone(entry.phone), summary=Text(entry.summary(self.lang)))]
        send = SendService(entry.id)
        option = Option(phrase("services.send_sms"), lambda: Outcome(effects=(send,), notice=phrase("services.sms_sent")))
        return View(title, body=body, options=[option])


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a replay stood after `inputs`: the next hop of the same session, whose inputs are
    these plus one, starts from here instead of replaying the path (see run). Plain values only:
    each hop builds its views again from the content it reads, so a resumed hop shows what a
    full replay shows."""

    inputs: tuple[str, ...]
    stack: tuple[Frame, ...]
    profile: Profile
    lang: str
    last_section: str


def run(
    inputs: Sequence[str],
    *,
    profile: Profile,
    data: DataView,
    catalog: Catalog,
    now: dt.datetime,
    config: EngineConfig = EngineConfig(),
    resume: Resume | None = None,
    laid_out: MutableMapping | None = None,
) -> Screen:
    """The screen for a session whose inputs so far are `inputs` (empty on the first hop).

    `resume`: the previous hop's `Screen.resume`, from the same start `profile`. When its inputs
    are these but the last, only the last input is stepped; otherwise (another process answered
    the previous hop, a repeated hop) the whole path is replayed. The returned screen's `resume`
    is where this hop left the session (None once it ends).

    `laid_out`: layouts already laid out into pages, by (Layout, language), shared between hops
    by a caller that empties it whenever the catalog or the names the layouts are worded with
    (crops, markets, units, kinds) change, and that uses one per EngineConfig; laying a screen
    out (wording, folding, paging) is most of what a hop that only reads costs."""
    replay = _Replay(profile, data, catalog, now, config)
    replay.laid_out = laid_out
    if len(inputs) > config.max_steps:
        return replay.end(phrase("session.too_long"), "too_long", ())
    # The session's first screen says why the caller is not served in their own language.
    flash: Part | None = replay.lang_notice
    last = len(inputs) - 1
    first = 0
    if resume is not None and last >= 0 and len(resume.inputs) == last and resume.inputs == tuple(inputs[:last]):
        replay.restore(resume)
        first = last
    for index in range(first, last + 1):
        raw = inputs[index]
        before = replay.last_section
        outcome = replay.step(raw.strip())
        replay.follow(outcome)
        replay.last_section = replay.section() or before
        replay.entered = replay.last_section != before
        effects = outcome.effects if index == last else ()
        if outcome.end is not None:
            return replay.end(outcome.end, replay.stack[-1].node, effects)
        if index == last:
            flash = phrase(outcome.error) if outcome.error else outcome.notice
            return replay.render(flash, effects, inputs)
    return replay.render(flash, (), inputs)
