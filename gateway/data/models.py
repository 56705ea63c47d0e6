"""Database tables. The schema changes only through Alembic migrations (migrations/)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Named constraints, so that migrations can alter and drop them on every backend.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _ts(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), **kwargs)


# Reference data (regions, markets, crops, units, price kinds) is managed by staff. A row that
# anything refers to is retired (active = False), never deleted: menus and the SMS parser stop
# offering it, history keeps its name. `aliases` holds the other spellings farmers type in SMS,
# comma-separated ("sikaso, sikassou").


class Region(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    # Markets, producers and services name their region by this French name (a rename follows
    # through to them in the same unit of work, see gateway.reference).
    name_fr: str = Field(max_length=64, unique=True)
    name_bm: str = Field(default="", max_length=64)
    active: bool = True
    sort_order: int = 0


class Crop(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name_fr: str = Field(max_length=64)
    name_bm: str = Field(max_length=64)
    default_unit: str = Field(default="kg", max_length=16)
    sort_order: int = 0
    aliases: str = Field(default="", max_length=255)
    category: str = Field(default="vegetable", max_length=32)
    active: bool = True


class Market(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=64)  # French (and official) name
    region: str = Field(max_length=64, index=True)  # Region.name_fr
    name_bm: str = Field(default="", max_length=64)
    aliases: str = Field(default="", max_length=255)
    latitude: float | None = None
    longitude: float | None = None
    active: bool = True


class Unit(SQLModel, table=True):
    """A unit prices are given in: `kg`, `sack50`, `basket`... `kg` is its weight where fixed
    (a 50 kg sack: 50), None where it varies (a basket, a pile)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    name_fr: str = Field(max_length=32)
    name_bm: str = Field(default="", max_length=32)
    kg: float | None = None
    aliases: str = Field(default="", max_length=255)
    active: bool = True
    sort_order: int = 0


class PriceKind(SQLModel, table=True):
    """wholesale, retail..."""

    __tablename__ = "price_kind"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    name_fr: str = Field(max_length=32)
    name_bm: str = Field(default="", max_length=32)
    aliases: str = Field(default="", max_length=255)
    active: bool = True
    sort_order: int = 0


class PriceObservation(SQLModel, table=True):
    __tablename__ = "price_observation"
    __table_args__ = (Index("ix_price_crop_market_day", "crop_id", "market_id", "observed_on"),)

    id: int | None = Field(default=None, primary_key=True)
    crop_id: int = Field(foreign_key="crop.id")
    market_id: int = Field(foreign_key="market.id")
    observed_on: dt.date
    price: int = Field(description="FCFA per unit")
    unit: str = Field(default="kg", max_length=16)
    kind: str = Field(default="wholesale", max_length=16)  # wholesale | retail
    source: str = Field(default="", max_length=64)
    # Published prices are shown; held ones wait for staff review; rejected ones are kept for audit;
    # withdrawn ones were taken back by staff and corrected ones replaced by a correction (the
    # row whose `replaces_id` points here). Only published rows reach farmers.
    status: str = Field(default="published", max_length=16, index=True)
    reported_by_id: int | None = Field(default=None, foreign_key="producer.id")
    review_reason: str = Field(default="", max_length=200)
    created_at: dt.datetime = _ts()
    replaces_id: int | None = Field(default=None, foreign_key="price_observation.id")
    changed_by: str = Field(default="", max_length=120)
    changed_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Buyer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=80)
    phone: str | None = Field(default=None, max_length=20)  # E.164, checked by gateway.core.phones
    contact_name: str = Field(default="", max_length=80)
    # Opted in to one SMS a day with the new offers on their demands (gateway.actions.linkage).
    daily_summary: bool = False


class Demand(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    buyer_id: int = Field(foreign_key="buyer.id", index=True)
    crop_id: int = Field(foreign_key="crop.id")
    quantity_kg: int
    price: int = Field(description="FCFA per unit offered")
    unit: str = Field(default="kg", max_length=16)
    place: str = Field(max_length=80)
    valid_until: dt.date
    status: str = Field(default="open", max_length=16, index=True)  # open | closed
    created_at: dt.datetime = _ts()


PRODUCER_ROLES = ("producer", "enumerator")
ALERT_CHANNELS = ("sms", "voice", "both")


class Producer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=20, unique=True, description="E.164")
    language: str | None = Field(default=None, max_length=3)
    name: str = Field(default="", max_length=80)
    village: str = Field(default="", max_length=80)
    region: str = Field(default="", max_length=64)
    cluster: str = Field(default="", max_length=80)
    # "producer", or "enumerator": may report market prices by SMS (PRODUCER_ROLES; staff set it).
    role: str = Field(default="producer", max_length=16)
    opted_out: bool = False
    # How price alerts reach them: "sms", "voice" (a call that says them) or "both".
    alert_channel: str = Field(default="sms", max_length=8, sa_column_kwargs={"server_default": "sms"})
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class Offer(SQLModel, table=True):
    """A farmer's offer to supply a demand; one per demand and USSD session (retries update it)."""

    __table_args__ = (UniqueConstraint("demand_id", "producer_id", "session_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    demand_id: int = Field(foreign_key="demand.id", index=True)
    producer_id: int = Field(foreign_key="producer.id", index=True)
    quantity_kg: int
    status: str = Field(default="pending", max_length=16)  # pending | accepted | declined
    channel: str = Field(default="ussd", max_length=8)
    session_ref: str = Field(default="", max_length=100)
    created_at: dt.datetime = _ts()
    # A decision is taken once (pending → accepted | declined); the farmer's SMS goes with it.
    decided_by: str = Field(default="", max_length=120)
    decided_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    notified_sms_id: int | None = Field(default=None, foreign_key="sms_message.id")


class Tip(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    category: str = Field(max_length=16, index=True)  # gap | postharvest | nutrition
    crop_id: int | None = Field(default=None, foreign_key="crop.id")
    title_fr: str = Field(max_length=60)
    title_bm: str = Field(max_length=60)
    text_fr: str = Field(max_length=1000)
    text_bm: str = Field(max_length=1000)
    active: bool = True
    sort_order: int = 0


class Subscription(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("producer_id", "crop_id", "market_id"),
        Index("ix_subscription_crop_market", "crop_id", "market_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    producer_id: int = Field(foreign_key="producer.id", index=True)
    crop_id: int = Field(foreign_key="crop.id")
    market_id: int = Field(foreign_key="market.id")
    # Alert only when the price moved at least this much (percent, either way); 0: every time.
    threshold_percent: int = 0
    created_at: dt.datetime = _ts()


class UssdSession(SQLModel, table=True):
    """One row per USSD session: the caller's profile when it began (so that every hop replays
    from the same start, on any server) and, for analytics, the end-of-session notification."""

    __tablename__ = "ussd_session"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(max_length=100, unique=True)
    phone: str = Field(max_length=20, index=True)
    service_code: str = Field(default="", max_length=32)
    network_code: str = Field(default="", max_length=16)
    start_profile: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: dt.datetime = _ts(index=True)
    updated_at: dt.datetime = _ts()
    hops: int = 0  # hops that changed something (see gateway.ussd.service); all hops: end_hops
    last_screen: str = Field(default="", max_length=32)
    # The main-menu branch the caller went into (prices, demands...), for the dashboard.
    section: str = Field(default="", max_length=32)
    language: str | None = Field(default=None, max_length=3)
    errors: int = 0
    end_status: str | None = Field(default=None, max_length=16)
    end_cost: str | None = Field(default=None, max_length=32)
    end_duration_ms: int | None = None
    end_hops: int | None = None
    end_error: str | None = Field(default=None, max_length=255)
    ended_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SmsInbound(SQLModel, table=True):
    """Every SMS received, once per aggregator message id (aggregators retry until answered)."""

    __tablename__ = "sms_inbound"
    __table_args__ = (UniqueConstraint("provider", "provider_id"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    provider_id: str = Field(max_length=100)
    phone: str = Field(max_length=20, index=True)
    to: str = Field(default="", max_length=32)
    text: str = Field(sa_type=Text)
    link_id: str | None = Field(default=None, max_length=100)
    network_code: str = Field(default="", max_length=16)
    cost: str | None = Field(default=None, max_length=32)
    received_at: dt.datetime = Field(sa_type=DateTime(timezone=True))
    intent: str = Field(default="", max_length=24)
    # Why no reply was sent, when none was: "rate_limited", "opted_out"...
    note: str = Field(default="", max_length=64)
    created_at: dt.datetime = _ts(index=True)


class Broadcast(SQLModel, table=True):
    """Price alerts after a publication, or a message from staff to an audience.

    pending (waits for its time) → expanding → sending (one outbox row per recipient) → done;
    or draft / cancelled.
    """

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # alert | custom
    status: str = Field(default="pending", max_length=24, index=True)
    title: str = Field(default="", max_length=120)
    text_fr: str = Field(default="", sa_type=Text)
    text_bm: str = Field(default="", sa_type=Text)
    # alert: {"pairs": [[crop_id, market_id], ...]}; custom: filters (regions, markets, crops,
    # clusters, languages), each a list, all of them must match.
    audience: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    scheduled_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_by: str = Field(default="", max_length=120)
    # Large broadcasts wait in "awaiting_approval" for a second staff member.
    approved_by: str = Field(default="", max_length=120)
    approved_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Why a broadcast waits (its audience grew past the approval threshold after creation).
    hold_reason: str = Field(default="", max_length=200)
    recipients: int = 0
    skipped: int = 0
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()
    expanded_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SmsMessage(SQLModel, table=True):
    """One outbound SMS to one phone: what was sent, how it was encoded, what became of it.
    For a broadcast, exactly one row per recipient (and part), whatever happens to workers."""

    __tablename__ = "sms_message"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "phone", "part"),
        Index("ix_sms_message_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    part: int = 0
    phone: str = Field(max_length=20, index=True)
    producer_id: int | None = Field(default=None, foreign_key="producer.id", index=True)
    kind: str = Field(max_length=16)  # reply | alert | broadcast | notice
    language: str | None = Field(default=None, max_length=3)
    text: str = Field(sa_type=Text)
    encoding: str = Field(max_length=8)  # GSM-7 | UCS-2
    segments: int
    # queued → claimed (a worker's, under lease) → sending (its request is leaving) → sent →
    # delivered, or failed / undeliverable; unconfirmed: in flight when its sender died
    status: str = Field(default="queued", max_length=16, index=True)
    provider: str = Field(default="", max_length=16)
    provider_message_id: str | None = Field(default=None, max_length=100, index=True)
    provider_status: str = Field(default="", max_length=32)
    failure_reason: str = Field(default="", max_length=64)
    error_kind: str = Field(default="", max_length=16)  # throttled | rejected | account | transport | ambiguous
    cost: str = Field(default="", max_length=32)
    cost_amount: float = 0.0
    attempts: int = 0
    # A queued message is not sent before this (backoff, throttling, absent subscriber).
    next_attempt_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    inbound_id: int | None = Field(default=None, foreign_key="sms_inbound.id")
    created_at: dt.datetime = _ts(index=True)
    updated_at: dt.datetime = _ts()
    # Indexed: the daily budget counts today's sends on every worker step (a full scan grew
    # with the table: 294 ms at a million rows, measured by the soak).
    sent_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True), index=True)
    delivered_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Who claimed the row (a WorkerLease owner: the lease's expiry lives there, renewed while the
    # claimer lives). Its lease gone, a claimed row goes back to the queue and a `sending` one
    # (its request was leaving) becomes unconfirmed.
    lease_owner: str | None = Field(default=None, max_length=64)


class WorkerLease(SQLModel, table=True):
    """A sender's claim on outbox rows (a worker step, a reply being sent): live while
    `expires_at` is ahead, renewed while its process lives. Rows of an owner with no live lease
    were left by a dead process: a worker puts them back (see gateway.outbound.outbox.expire_leases)."""

    __tablename__ = "worker_lease"

    owner: str = Field(primary_key=True, max_length=64)
    expires_at: dt.datetime = Field(sa_type=DateTime(timezone=True))
    created_at: dt.datetime = _ts()


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=120, unique=True)
    name: str = Field(default="", max_length=80)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)  # admin | editor | reporter
    active: bool = True
    # Set by a one-time password (first admin, reset by an administrator): the console lets the
    # staff member do nothing else until they chose their own.
    must_change_password: bool = False
    # The console's language for this person ("fr", "en"); empty: the deployment's default.
    language: str = Field(default="", max_length=8)
    last_login_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # SHA-256 of the staff member's API token (the token itself is shown once).
    api_token_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_at: dt.datetime = _ts()


class StaffSession(SQLModel, table=True):
    """A console sign-in. The cookie carries a random id; only its SHA-256 is stored, so that a
    copy of the database does not sign anyone in. Revoked rows stay revoked (logout, password
    change, deactivation), which is what makes a copied cookie useless afterwards."""

    __tablename__ = "staff_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    staff_id: int = Field(foreign_key="staff_user.id", index=True)
    created_at: dt.datetime = _ts()
    last_seen_at: dt.datetime = _ts()
    user_agent: str = Field(default="", max_length=120)
    address: str = Field(default="", max_length=48)  # masked: the network, not the host
    revoked_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class LoginAttempt(SQLModel, table=True):
    """Console sign-in attempts of the last day, shared by every process: the sliding windows
    that throttle guessing per client address, per account and per trusted browser."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_address_at", "address", "at"),
        Index("ix_login_attempt_account_at", "account", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = _ts(index=True)
    address: str = Field(default="", max_length=48)
    account: str = Field(default="", max_length=120)  # as typed (normalised), known or not
    device: str = Field(default="", max_length=32)  # the trusted-browser cookie's nonce, if any
    ok: bool = False


class AuditLog(SQLModel, table=True):
    """Who changed what, when, with the values before and after."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = _ts(index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    staff_email: str = Field(default="", max_length=120)
    action: str = Field(max_length=32)
    entity: str = Field(max_length=32, index=True)
    entity_id: str = Field(default="", max_length=64)
    before: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class MessageOverride(SQLModel, table=True):
    """Staff's text for a catalog key in one language; wins over the catalog file."""

    __tablename__ = "message_override"
    __table_args__ = (UniqueConstraint("language", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    language: str = Field(max_length=3)  # 0015: "ses", a written language staff added
    key: str = Field(max_length=80)
    text: str = Field(sa_type=Text)
    reviewed: bool = False
    updated_by: str = Field(default="", max_length=120)
    updated_at: dt.datetime = _ts()


class MessageRevision(SQLModel, table=True):
    """Every saved version of a message, for history and revert."""

    __tablename__ = "message_revision"

    id: int | None = Field(default=None, primary_key=True)
    language: str = Field(max_length=3)
    key: str = Field(max_length=80, index=True)
    text: str = Field(sa_type=Text)
    reviewed: bool = False
    staff_email: str = Field(default="", max_length=120)
    at: dt.datetime = _ts()


class Service(SQLModel, table=True):
    """An entry of the services directory: who farmers can call for credit, inputs, advice or
    storage and processing, per region. Shown by the USSD Services menu (menus.types.ServiceEntry)."""

    __table_args__ = (Index("ix_service_category_region", "category", "region"),)

    id: int | None = Field(default=None, primary_key=True)
    category: str = Field(max_length=16)  # menus.types.SERVICE_CATEGORIES
    region: str = Field(max_length=64)
    name: str = Field(max_length=40)
    phone: str = Field(max_length=20, description="E.164")
    # One line each, short enough for a USSD screen (menus.types.SERVICE_SUMMARY_MAX).
    summary_fr: str = Field(max_length=60)
    summary_bm: str = Field(default="", max_length=60)
    active: bool = True
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


class ServiceRequest(SQLModel, table=True):
    """A caller asked for a directory entry by SMS: once per entry and USSD session (a retried
    hop sends nothing twice), and a record of which services farmers look for."""

    __tablename__ = "service_request"
    __table_args__ = (UniqueConstraint("service_id", "producer_id", "session_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(foreign_key="service.id")
    producer_id: int = Field(foreign_key="producer.id", index=True)
    session_ref: str = Field(default="", max_length=100)
    sms_id: int | None = Field(default=None, foreign_key="sms_message.id")
    created_at: dt.datetime = _ts()


class BuyerSummary(SQLModel, table=True):
    """The daily SMS to a buyer with the new offers: one row per buyer and day, so that any
    number of workers (or the command run twice) send it once."""

    __tablename__ = "buyer_summary"
    __table_args__ = (UniqueConstraint("buyer_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    buyer_id: int = Field(foreign_key="buyer.id")
    day: dt.date
    offers: int = 0
    # Offers up to this id are summarised; the next summary counts those after it.
    last_offer_id: int = 0
    sms_id: int | None = Field(default=None, foreign_key="sms_message.id")
    created_at: dt.datetime = _ts()


class BudgetUsage(SQLModel, table=True):
    """What a budget (SMS per day, replies per day, replies to new numbers per hour...) has spent
    in one period. One row per (name, period), reserved by gateway.outbound.budgets under a row lock, so
    any number of workers and processes share one ceiling."""

    __tablename__ = "budget_usage"

    name: str = Field(max_length=32, primary_key=True)
    period: str = Field(max_length=16, primary_key=True)  # "2026-12-01" (a day) or "2026-12-01T14" (an hour)
    used: int = Field(default=0)
    updated_at: dt.datetime = _ts()


# -- voice ---------------------------------------------------------------------------------------


class VoiceSession(SQLModel, table=True):
    """One row per call. Like a USSD session it keeps the caller's profile when it began (every
    key press replays the menus from it, on any process), and also the menu inputs so far: a
    voice aggregator sends one key press per callback, not the history. `voice_page` is where the
    caller is in a list spoken five options at a time; the final callback fills the end."""

    __tablename__ = "voice_session"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(max_length=100, unique=True)
    phone: str = Field(max_length=20, index=True)
    direction: str = Field(default="inbound", max_length=16)  # inbound | outbound
    start_profile: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    inputs: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The keys of the prompt last said ({"choices": [[key, option]], "more", "entry"}): a key
    # press is read against what the caller heard, without replaying the screen before it.
    keys: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    voice_page: int = 0
    silences: int = 0  # prompts in a row without a key press: the call ends after three
    language: str | None = Field(default=None, max_length=3)
    last_screen: str = Field(default="", max_length=32)
    section: str = Field(default="", max_length=32)
    started_at: dt.datetime = _ts(index=True)
    updated_at: dt.datetime = _ts()
    ended_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    duration_s: int | None = None
    amount: str | None = Field(default=None, max_length=32)
    currency: str | None = Field(default=None, max_length=8)
    hangup_cause: str | None = Field(default=None, max_length=64)


class AudioBlob(SQLModel, table=True):
    """Audio by content hash: recordings, synthetic prompts and joined playlists. Served only by
    this hash (unguessable, immutable: cached for a year by whoever fetches it)."""

    __tablename__ = "audio_blob"

    hash: str = Field(max_length=64, primary_key=True)
    mime: str = Field(default="audio/wav", max_length=32)
    size: int = 0
    duration_ms: int = 0
    data: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime = _ts()


class AudioPrompt(SQLModel, table=True):
    """One revision of one clip's audio in one language ("fr.num.71", "bm.text.main.title.0",
    "fr.crop.3"): recorded in the console, uploaded, or synthetic (made offline by the speech
    engine, flagged "record me"). The newest revision not rejected is played; older ones are the
    history. A staff recording is reviewed like a text: "pending" until another editor approves
    or rejects it (gateway.voice.prompts)."""

    __tablename__ = "audio_prompt"
    __table_args__ = (UniqueConstraint("clip", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    clip: str = Field(max_length=160, index=True)
    language: str = Field(max_length=8, index=True)
    revision: int = 1
    audio_hash: str = Field(max_length=64, foreign_key="audio_blob.hash")
    source: str = Field(default="synthetic", max_length=16)  # synthetic | recorded | uploaded
    text: str = Field(default="", sa_column=Column(Text, nullable=False))  # the words read
    staff_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: dt.datetime = _ts()
    # "" (synthetic: nothing to review) | pending | approved | rejected; who decided, when, why.
    review: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    reviewed_by: str = Field(default="", max_length=120, sa_column_kwargs={"server_default": ""})
    reviewed_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    review_note: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})


class VoiceCall(SQLModel, table=True):
    """A call Sugu places: calling back a farmer whose call it rejected (so that they pay nothing),
    or a voice alert. Queued, claimed by a worker under a lease (as outbox rows are), placed,
    then settled by the call's final callback; an unanswered one is tried again later.
    `pending_phone` is the phone while the call is queued or being placed and NULL after: its
    unique index keeps one call waiting per phone, however many missed calls came in."""

    __tablename__ = "voice_call"
    __table_args__ = (UniqueConstraint("broadcast_id", "phone"),)

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=20, index=True)
    pending_phone: str | None = Field(default=None, max_length=20, unique=True)
    purpose: str = Field(default="callback", max_length=16)  # callback | alert
    # A voice alert: its broadcast (one call per broadcast and phone, ever) and what it says.
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)
    pairs: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    language: str = Field(default="fr", max_length=3)
    status: str = Field(default="queued", max_length=16, index=True)
    # queued | calling | answered | not_answered | failed | refused
    due_at: dt.datetime = _ts(index=True)
    lease_until: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    attempts: int = 0
    client_request_id: str = Field(max_length=64, unique=True)
    session_id: str | None = Field(default=None, max_length=100, index=True)
    minutes_reserved: int = 0
    duration_s: int | None = None
    amount: str | None = Field(default=None, max_length=32)
    reason: str = Field(default="", max_length=64)  # why it was refused or failed
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()


# Languages farmers are served in are data (issue 16 item 10): staff add one in the console.
LANGUAGE_CODE_MAX = 3  # ISO 639-1 where there is one ("ff"), else ISO 639-3 ("ses", "khq")


class Language(SQLModel, table=True):
    """A language the menus may speak. `written`: it has a catalog of texts
    (messages/catalog/<code>.toml), so USSD and SMS can be in it; `voice`: calls are offered in it
    (its recordings, made in the studio). A voice-only language reads French on USSD and SMS, and
    says so. `fallback`: the language whose recordings stand in for its words and names not yet
    recorded, and whose number rules say its numbers while it has no
    messages/voice/rules/<code>.toml. Disabled: offered nowhere; its farmers get French, told why."""

    code: str = Field(primary_key=True, max_length=LANGUAGE_CODE_MAX)
    name: str = Field(max_length=40)  # its own name, as its speakers write it: "Fulfulde"
    name_fr: str = Field(max_length=40)  # for staff: "peul"
    written: bool = False
    voice: bool = True
    enabled: bool = True
    sort_order: int = 0
    fallback: str = Field(default="fr", max_length=LANGUAGE_CODE_MAX)  # "" for French itself
    created_at: dt.datetime = _ts()
    updated_at: dt.datetime = _ts()
