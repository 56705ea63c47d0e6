"""Plain data the USSD engine reads and returns.

Everything here is immutable and free of I/O so that the engine can be replayed, tested and
property-checked without a database. The gateway turns its rows into these types.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from menus.pricecheck import PricePoint
from menus.screen import Page

LANGUAGES = ("fr", "bm")  # the languages shipped with a catalog; others are data (Language)

TIP_CATEGORIES = ("gap", "postharvest", "nutrition")

# How price alerts reach a producer: an SMS, a call that says them (voice), or both.
ALERT_CHANNELS = ("sms", "voice", "both")

# The services directory; "storage" is cold storage and processing (post-harvest).
SERVICE_CATEGORIES = ("microfinance", "inputs", "extension", "storage")
# Characters (after folding to ASCII) so that name, phone and summary share one USSD screen.
SERVICE_NAME_MAX = 40
SERVICE_SUMMARY_MAX = 60


@dataclass(frozen=True)
class Language:
    """A language the menus may speak, as staff configured it (menus.languages)."""

    code: str
    name: str  # its own name, as its speakers write it: "Fulfulde"
    name_fr: str = ""
    written: bool = True  # has a catalog of texts: USSD and SMS can be in it
    voice: bool = True  # calls are offered in it
    enabled: bool = True
    fallback: str = "fr"  # whose recordings stand in for its words, whose rules say its numbers


@dataclass(frozen=True)
class Crop:
    id: int
    name_fr: str
    name_bm: str
    unit: str = "kg"
    aliases: tuple[str, ...] = ()  # other spellings farmers use in SMS
    active: bool = True  # retired: kept for names (history, subscriptions), left out of lists

    def name(self, lang: str) -> str:
        return self.name_bm if lang == "bm" and self.name_bm else self.name_fr


@dataclass(frozen=True)
class Market:
    id: int
    name: str  # French (official) name
    region: str
    name_bm: str = ""
    aliases: tuple[str, ...] = ()
    active: bool = True

    def label(self, lang: str) -> str:
        return self.name_bm if lang == "bm" and self.name_bm else self.name


@dataclass(frozen=True)
class Term:
    """A unit (kg, sack50...) or a price kind (wholesale...): its names and SMS spellings."""

    code: str
    name_fr: str
    name_bm: str = ""
    aliases: tuple[str, ...] = ()
    active: bool = True

    def name(self, lang: str) -> str:
        return self.name_bm if lang == "bm" and self.name_bm else self.name_fr


@dataclass(frozen=True)
class PriceQuote:
    """The latest observation for one crop at one market, with the one before it."""

    crop_id: int
    market_id: int
    market_name: str
    price: int
    unit: str
    kind: str  # "wholesale" | "retail"
    observed_on: dt.date
    previous_price: int | None = None
    previous_on: dt.date | None = None

    @property
    def change_percent(self) -> int | None:
        if not self.previous_price:
            return None
        return round((self.price - self.previous_price) * 100 / self.previous_price)


@dataclass(frozen=True)
class Demand:
    id: int
    buyer_name: str
    crop_id: int
    quantity_kg: int
    price: int
    unit: str
    place: str
    valid_until: dt.date


@dataclass(frozen=True)
class Tip:
    id: int
    category: str
    crop_id: int | None
    title_fr: str
    title_bm: str
    text_fr: str
    text_bm: str

    def title(self, lang: str) -> str:
        return self.title_bm if lang == "bm" and self.title_bm else self.title_fr

    def text(self, lang: str) -> str:
        return self.text_bm if lang == "bm" and self.text_bm else self.text_fr


@dataclass(frozen=True)
class ServiceEntry:
    """One active entry of the services directory."""

    id: int
    category: str
    region: str
    name: str
    phone: str  # E.164
    summary_fr: str
    summary_bm: str

    def summary(self, lang: str) -> str:
        return self.summary_bm if lang == "bm" and self.summary_bm else self.summary_fr


@dataclass(frozen=True, slots=True)
class Subscription:
    crop_id: int
    market_id: int


@dataclass(frozen=True, slots=True)
class Profile:
    """The caller as the session saw them when it started (see gateway.ussd.service)."""

    phone: str
    language: str | None = None  # None: never chose one, so the session starts by asking
    name: str = ""
    village: str = ""
    region: str = ""
    cluster: str = ""
    subscriptions: tuple[Subscription, ...] = ()
    opted_out: bool = False
    role: str = "producer"  # or "enumerator": may report prices by SMS
    producer_id: int | None = None  # the stored producer, when there is one (reports name it)
    alert_channel: str = "sms"  # one of ALERT_CHANNELS


class DataView(Protocol):
    """Read-only access to the content the menus show. Implemented over SQL by the gateway."""

    def crops(self) -> Sequence[Crop]:
        """Every crop, retired ones included (flagged): names outlive retirement."""
        ...

    def markets(self) -> Sequence[Market]:
        """Every market, retired ones included (flagged)."""
        ...

    # units() and kinds() -> Sequence[Term] (every row, retired flagged) are optional: without
    # them the catalog's unit.* and kind.* texts name units and kinds, and the SMS parser uses
    # its built-in words. languages() -> Sequence[Language] (in the order menus offer them) is
    # optional too: without it, French and Bambara (menus.languages.DEFAULT_LANGUAGES).

    def latest_prices(self, crop_id: int) -> Sequence[PriceQuote]:
        """Latest quote per market for this crop, any order."""
        ...

    def open_demands(self, today: dt.date) -> Sequence[Demand]: ...

    def tips(self, category: str) -> Sequence[Tip]: ...

    def price_history(
        self, crop_id: int, market_id: int | None, since: dt.date
    ) -> Sequence[tuple[int, str, str, dt.date]]:
        """Published (price, unit, kind, day) since `since`, for one market or all (None)."""
        ...

    def price_points(self, crop_id: int, unit: str, since: dt.date) -> Sequence[PricePoint]:
        """Published prices of a crop in one unit since `since`, every market, with who reported
        them (menus.pricecheck: the reference enumerators' reports are checked against)."""
        ...

    def reports_by(self, producer_id: int, day: dt.date) -> int:
        """Price reports (published, held or rejected) this enumerator sent for `day`."""
        ...

    def services(self, category: str, region: str | None) -> Sequence[ServiceEntry]:
        """Active entries of a category in a region (None: every region), ordered by name."""
        ...

    def service_regions(self, category: str) -> Sequence[str]:
        """Regions having active entries of this category, in alphabetical order."""
        ...


# Effects: what the gateway must apply, in one transaction, after a hop.


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class RecordOffer:
    demand_id: int
    quantity_kg: int


@dataclass(frozen=True)
class Subscribe:
    crop_id: int
    market_id: int


@dataclass(frozen=True)
class Unsubscribe:
    crop_id: int
    market_id: int


@dataclass(frozen=True)
class StopAlerts:
    """Opt out of every SMS; subscriptions are kept so that restarting restores them."""


@dataclass(frozen=True)
class StartAlerts:
    pass


@dataclass(frozen=True)
class SetAlertChannel:
    """How price alerts reach the caller: one of ALERT_CHANNELS."""

    channel: str


@dataclass(frozen=True)
class ReportPrice:
    """An enumerator's price report; `held_reason` non-empty: waits for staff review."""

    crop_id: int
    market_id: int
    price: int
    unit: str
    kind: str
    held_reason: str = ""


@dataclass(frozen=True)
class SetProfileField:
    field: str  # "name" | "village" | "region" | "cluster"
    value: str


@dataclass(frozen=True)
class SendService:
    """Send the caller one directory entry by SMS, in their language."""

    service_id: int


Effect = (
    SetLanguage | RecordOffer | Subscribe | Unsubscribe | StopAlerts | StartAlerts
    | SetProfileField | ReportPrice | SendService | SetAlertChannel
)


@dataclass(frozen=True)
class Screen:
    """What one hop answers: the rendered text (ASCII, within budget) and whether it ends."""

    text: str
    end: bool
    screen_id: str
    language: str
    effects: tuple[Effect, ...] = field(default=())
    section: str = ""  # the main-menu branch it belongs to ("price_crops"...), for statistics
    # The same screen as phrases and values (menus.screen), for channels that do not show text
    # (voice); None where the gateway answers without the menus.
    structure: Page | None = None
    # The last input went into another main-menu branch than the path's previous one.
    entered_section: bool = False
    # Where the session stands after this hop (menus.engine.Resume), for the next hop to start
    # from; None on an end screen and where the gateway answers without the menus.
    resume: object | None = field(default=None, compare=False, repr=False)
