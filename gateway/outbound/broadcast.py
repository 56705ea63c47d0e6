"""The broadcaster: price alerts after a publication, staff broadcasts to an audience.

A broadcast is created in the same transaction as what caused it (a published price, a staff
decision) and expanded later by a worker into one outbox row per recipient, in one transaction:
a worker that dies while expanding leaves it pending, never half-expanded. Rows are then sent in
bulk by `worker_step` (one aggregator request per distinct text and up to 1,000 numbers), under
the cost controls: quiet hours, a daily budget of messages and segments, a cap per producer per
day, and never to anyone who opted out.

The daily budgets are a ledger in the database (gateway.outbound.budgets), reserved in the claim's unit
of work and refunded for what goes back unsent: any number of workers, in any number of
processes, share one ceiling. Claims are leased (gateway.outbound.outbox): a killed worker's claimed rows
return to the queue when its lease expires, and only its request in flight stays unconfirmed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Callable, Iterable, Sequence

from sqlalchemy import and_, case, false, func, insert, or_, update
from sqlmodel import Session, col, select

from gateway.aggregators.sending import SmsSender, Throttled
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.data import models
from gateway.data.content import overrides
from gateway.data.dataview import SqlDataView
from gateway.outbound import budgets, outbox
from gateway.outbound.budgets import in_quiet_hours
from gateway.outbound.outbox import Claimed, claimed_rows
from menus import languages as langs
from menus.types import PriceQuote
from messages import Catalog, default_catalog
from messages.formatting import money, short_date, signed_percent
from messages.sms import measure, render_sms

log = logging.getLogger("gateway.broadcast")

BULK_KINDS = ("alert", "broadcast")
ACTIVE = outbox.ACTIVE
# The daily budgets' names in the ledger (gateway.outbound.budgets), per farmers' day.
BUDGET_MESSAGES = "bulk_sms"
BUDGET_SEGMENTS = "bulk_segments"
SEGMENT = 160
EXPAND_CHUNK = 1_000  # outbox rows inserted per statement while expanding


# -- audiences -------------------------------------------------------------------------------------


@dataclass
class Audience:
    """Who a staff broadcast goes to: every non-empty list must match (empty: everyone)."""

    regions: list[str] = field(default_factory=list)
    markets: list[int] = field(default_factory=list)  # subscribed to a price at one of these
    crops: list[int] = field(default_factory=list)  # subscribed to one of these crops
    clusters: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> "Audience":
        return cls(**{k: list(v) for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return asdict(self)


def audience_query(audience: Audience):
    p = models.Producer
    query = select(p.id, p.phone, p.language).where(p.opted_out == False)  # noqa: E712
    if audience.regions:
        query = query.where(col(p.region).in_(audience.regions))
    if audience.clusters:
        query = query.where(col(p.cluster).in_(audience.clusters))
    if audience.languages:
        langs = list(audience.languages)
        # Producers who never chose a language read French.
        query = query.where(or_(col(p.language).in_(langs), col(p.language).is_(None) if "fr" in langs else false()))
    if audience.markets or audience.crops:
        s = models.Subscription
        sub = select(s.producer_id)
        if audience.markets:
            sub = sub.where(col(s.market_id).in_(audience.markets))
        if audience.crops:
            sub = sub.where(col(s.crop_id).in_(audience.crops))
        query = query.where(col(p.id).in_(sub))
    return query


# The languages a staff broadcast is written in (its text_fr and text_bm).
BROADCAST_TEXTS = ("fr", "bm")


def text_language(session: Session) -> Callable[[str | None], str]:
    """Which of a staff broadcast's texts a farmer reads, by the language of their profile: theirs
    when SMS are written in it (menus.languages.serve, as for SMS replies), else the French one: a
    voice-only or disabled language, or a written one the broadcast has no text for."""
    configured = SqlDataView(session).languages()  # one query for the whole audience
    catalog = default_catalog()

    def reads(language: str | None) -> str:
        served = langs.serve(language, configured, catalog, spoken=False).language
        return served if served in BROADCAST_TEXTS else langs.FRENCH

    return reads


@dataclass(frozen=True)
class LanguagePreview:
    language: str
    text: str
    encoding: str
    segments: int
    recipients: int
    estimated_cost: float
    # How many of the recipients speak each language (French for those who never chose): a
    # voice-only language's farmers are counted with the French text they read.
    speakers: dict[str, int] = field(default_factory=dict)


def preview(session: Session, *, text_fr: str, text_bm: str, audience: Audience, settings: Settings) -> list[LanguagePreview]:
    """What each text will reach, and what it will cost: everyone counted once, with the text
    they will read (the same rule as the sending, text_language)."""
    reads = text_language(session)
    speakers: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, _, language in session.exec(audience_query(audience)).all():
        spoken = language or langs.FRENCH
        speakers[reads(spoken)][spoken] += 1
    result = []
    for language, text in (("fr", text_fr), ("bm", text_bm or text_fr)):
        rendered = render_sms(text, language, fold=settings.sms_fold)
        encoding = measure(rendered)
        n = sum(speakers[language].values())
        result.append(
            LanguagePreview(language, rendered, encoding.encoding, encoding.segments, n,
                            n * encoding.segments * settings.sms_price_per_segment, dict(speakers[language]))
        )
    return result


@dataclass(frozen=True)
class Estimate:
    """What a broadcast will send, in all: recipients, SMS segments and cost (XOF)."""

    recipients: int
    segments: int
    cost: float
    languages: tuple[LanguagePreview, ...] = ()


def estimate(previews: Sequence[LanguagePreview]) -> Estimate:
    """The totals of `preview`'s languages."""
    return Estimate(
        recipients=sum(p.recipients for p in previews),
        segments=sum(p.recipients * p.segments for p in previews),
        cost=sum(p.estimated_cost for p in previews),
        languages=tuple(previews),
    )


def planned(session: Session, broadcast: models.Broadcast, settings: Settings) -> Estimate | None:
    """What a staff broadcast not yet expanded into outbox rows will send, as of now (its
    audience may still change until it is); None for alerts and corrections, whose recipients
    are only known when they are expanded."""
    if broadcast.kind != "custom":
        return None
    return estimate(preview(session, text_fr=broadcast.text_fr, text_bm=broadcast.text_bm,
                            audience=Audience.from_dict(broadcast.audience), settings=settings))


# -- creating broadcasts ---------------------------------------------------------------------------


def pair_key(crop_id: int, market_id: int) -> str:
    """How a (crop, market) is named in an alert's audience JSON (keys are strings there)."""
    return f"{crop_id}:{market_id}"


def publish_alerts(
    session: Session, *, pairs: Iterable[tuple[int, int]], now: dt.datetime, title: str = "",
    producers: Iterable[int] | None = None,
) -> models.Broadcast | None:
    """Alerts for newly published prices (crop, market); expanded and sent by a worker.
    `producers`: only these subscribers (alerts re-sent after a price correction)."""
    pairs = sorted({(int(c), int(m)) for c, m in pairs})
    if not pairs:
        return None
    audience: dict = {"pairs": [list(p) for p in pairs]}
    if producers is not None:
        audience["producers"] = sorted({int(p) for p in producers})
        if not audience["producers"]:
            return None
    stamp = now.astimezone(dt.timezone.utc)
    broadcast = models.Broadcast(
        kind="alert",
        status="pending",
        title=title or f"Price alerts ({len(pairs)} prices)",
        audience=audience,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(broadcast)
    session.flush()
    return broadcast


def create_broadcast(
    session: Session,
    *,
    text_fr: str,
    text_bm: str,
    audience: Audience,
    now: dt.datetime,
    scheduled_at: dt.datetime | None = None,
    created_by: str = "",
    title: str = "",
) -> models.Broadcast:
    if not text_fr.strip():
        raise ValueError("the French text is required")
    stamp = now.astimezone(dt.timezone.utc)
    broadcast = models.Broadcast(
        kind="custom",
        status="pending",
        title=title or text_fr.strip()[:60],
        text_fr=text_fr.strip(),
        text_bm=text_bm.strip(),
        audience=audience.to_dict(),
        scheduled_at=scheduled_at.astimezone(dt.timezone.utc) if scheduled_at else None,
        created_by=created_by,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(broadcast)
    session.flush()
    return broadcast


# -- expanding: one outbox row per recipient ------------------------------------------------------


def local_midnight_utc(now: dt.datetime, settings: Settings) -> dt.datetime:
    local = now.astimezone(settings.tz)
    return dt.datetime.combine(local.date(), dt.time(), settings.tz).astimezone(dt.timezone.utc)


def _sent_today(
    session: Session, phones: set[str], since: dt.datetime, texts: set[str]
) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Bulk SMS these phones got since `since`: how many each, and which of `texts` to whom
    (phone, text); other texts are not kept (a busy day holds many)."""
    m = models.SmsMessage
    counts: dict[str, int] = defaultdict(int)
    seen: set[tuple[str, str]] = set()
    ordered = sorted(phones)
    for start in range(0, len(ordered), 900):  # under SQLite's limit of bound parameters
        rows = session.exec(
            select(m.phone, m.text).where(
                col(m.kind).in_(BULK_KINDS), m.created_at >= since, m.status != "skipped",
                col(m.phone).in_(ordered[start : start + 900]),
            )
        ).all()
        for phone, text in rows:
            counts[phone] += 1
            if text in texts:
                seen.add((phone, text))
    return counts, seen


class AlertComposer:
    """One SMS per producer for all their subscriptions that changed, while it fits one segment
    (then a second part); texts are shared by everyone with the same language and changes."""

    def __init__(
        self, catalog: Catalog, quotes: dict[tuple[int, int], PriceQuote], crops: dict, fold: bool,
        *, markets: dict | None = None, units: dict | None = None,
    ):
        self.catalog, self.quotes, self.crops, self.fold = catalog, quotes, crops, fold
        # Staff-managed names (reference data), as the menus say them; the catalog is the fallback.
        self.markets, self.units = markets or {}, units or {}
        self._cache: dict[tuple, list[str]] = {}

    def item(self, language: str, pair: tuple[int, int]) -> str:
        q = self.quotes[pair]
        crop = self.crops[pair[0]]
        change = f" ({signed_percent(q.change_percent)})" if q.change_percent is not None else ""
        market = self.markets[q.market_id].label(language) if q.market_id in self.markets else q.market_name
        return self.catalog.text(
            language, "alert.item", crop=crop.name(language), market=market,
            date=short_date(q.observed_on), price=money(q.price), unit=self._unit(language, q.unit), change=change,
        )

    def _unit(self, language: str, code: str) -> str:
        if code in self.units:
            return self.units[code].name(language)
        key = f"unit.{code}"
        return self.catalog.text(language, key) if self.catalog.has(key) else code

    def texts(self, language: str, pairs: tuple[tuple[int, int], ...]) -> list[str]:
        key = (language, pairs)
        if key not in self._cache:
            parts: list[list[str]] = [[]]
            for pair in pairs:
                item = self.item(language, pair)
                candidate = self.message(language, parts[-1] + [item])
                if parts[-1] and measure(candidate).segments > 1:
                    parts.append([item])
                else:
                    parts[-1].append(item)
            self._cache[key] = [self.message(language, items) for items in parts]
        return self._cache[key]

    def message(self, language: str, items: list[str]) -> str:
        return render_sms(self.catalog.text(language, "alert.message", items="; ".join(items)), language, fold=self.fold)


def _alert_recipients(session: Session, broadcast: models.Broadcast, catalog: Catalog, settings: Settings,
                      by_voice: Callable[[list[tuple[str, str, tuple]]], set[str]] | None = None):
    """(producer id, phone, language, texts) of everyone the alert is sent to by SMS. Those who
    chose calls are handed to `by_voice` ([(phone, language, pairs)], all at once), which says
    whose calls it queued; the others (their voice alerts of the day, or the day's call minutes
    or francs, are spent) get the SMS, so that nobody misses the price."""
    pairs = {tuple(p) for p in broadcast.audience.get("pairs", [])}
    data = SqlDataView(session)
    quotes: dict[tuple[int, int], PriceQuote] = {}
    for crop_id in {c for c, _ in pairs}:
        for quote in data.latest_prices(crop_id):
            if (crop_id, quote.market_id) in pairs:
                quotes[(crop_id, quote.market_id)] = quote
    crops = {c.id: c for c in data.crops()}
    composer = AlertComposer(
        catalog, quotes, crops, settings.sms_fold,
        markets={mk.id: mk for mk in data.markets()}, units={u.code: u for u in data.units()},
    )
    _record_carried(session, broadcast, quotes, composer, settings)
    s, p = models.Subscription, models.Producer
    query = (
        select(p.id, p.phone, p.language, s.crop_id, s.market_id, s.threshold_percent, p.alert_channel)
        .join(p, p.id == s.producer_id)
        .where(
            col(s.crop_id).in_({c for c, _ in pairs}),
            col(s.market_id).in_({m for _, m in pairs}),
            p.opted_out == False,  # noqa: E712
        )
        .order_by(p.id)
    )
    if "producers" in broadcast.audience:
        query = query.where(col(p.id).in_(broadcast.audience["producers"]))
    rows = session.exec(query).all()
    wanted: dict[int, tuple[str, str, list]] = {}
    channels: dict[int, str] = {}
    for producer_id, phone, language, crop_id, market_id, threshold, channel in rows:
        channels[producer_id] = channel or "sms"
        pair = (crop_id, market_id)
        quote = quotes.get(pair)
        if quote is None:
            continue
        change = quote.change_percent
        if threshold and change is not None and abs(change) < threshold:
            continue  # moved less than this subscriber cares about
        wanted.setdefault(producer_id, (phone, language or "fr", []))[2].append(pair)
    ordered = {producer_id: tuple(sorted(subscribed, key=lambda pr: (crops[pr[0]].id, quotes[pr].market_name)))
               for producer_id, (_, _, subscribed) in wanted.items()}
    called: set[str] = set()
    if by_voice is not None:
        called = by_voice([(phone, language, ordered[producer_id])
                           for producer_id, (phone, language, _) in wanted.items()
                           if channels[producer_id] in ("voice", "both")])
    for producer_id, (phone, language, _) in wanted.items():
        if phone in called and channels[producer_id] == "voice":
            continue
        # A language without a catalog (voice-only) reads its SMS in French.
        written = language if catalog.has_language(language) else "fr"
        yield producer_id, phone, written, composer.texts(written, ordered[producer_id])


def _record_carried(session: Session, broadcast: models.Broadcast, quotes: dict, composer: AlertComposer, settings: Settings) -> None:
    """Which observation this alert carries per (crop, market), and its item as sent in each
    language: a later correction finds exactly the phones that got that value."""
    obs = models.PriceObservation
    carried = {}
    for (crop_id, market_id), q in quotes.items():
        obs_id = session.exec(
            select(obs.id).where(
                obs.crop_id == crop_id, obs.market_id == market_id, obs.observed_on == q.observed_on,
                obs.unit == q.unit, obs.kind == q.kind, obs.price == q.price, obs.status == "published",
            ).order_by(col(obs.id).desc())
        ).first()
        items = {language: render_sms(composer.item(language, (crop_id, market_id)), language, fold=settings.sms_fold)
                 for language in composer.catalog.languages()}
        carried[pair_key(crop_id, market_id)] = {"observation": obs_id, "items": items}
    # Reassigned, not changed in place: the JSON column only notices assignments.
    broadcast.audience = {**broadcast.audience, "carried": carried}


def _custom_recipients(session: Session, broadcast: models.Broadcast, settings: Settings):
    texts = {
        "fr": render_sms(broadcast.text_fr, "fr", fold=settings.sms_fold),
        "bm": render_sms(broadcast.text_bm or broadcast.text_fr, "bm", fold=settings.sms_fold),
    }
    reads = text_language(session)
    for producer_id, phone, language in session.exec(audience_query(Audience.from_dict(broadcast.audience))).all():
        language = reads(language)  # a voice-only or disabled language reads the French
        yield producer_id, phone, language, [texts[language]]


# -- which alerts carried an observation (a correction reaches exactly their receivers) --------------------------------------------------------


def _carriers(session: Session, obs: models.PriceObservation):
    """(broadcast, items by language) for every expanded alert that carried this observation."""
    b = models.Broadcast
    key = pair_key(obs.crop_id, obs.market_id)
    since = obs.created_at or dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    rows = session.exec(
        select(b).where(b.kind == "alert", col(b.expanded_at).is_not(None), b.expanded_at >= since).order_by(b.id)
    ).all()
    for row in rows:
        carried = (row.audience or {}).get("carried", {}).get(key)
        if carried and carried.get("observation") == obs.id:
            yield row, carried.get("items", {})


def carrying_messages(session: Session, obs: models.PriceObservation, statuses: tuple[str, ...]):
    """Outbox rows (id, phone, producer_id, language, broadcast_id) of alerts whose text holds
    this observation's item, in these statuses."""
    m = models.SmsMessage
    for row, items in _carriers(session, obs):
        matches = [and_(m.language == language, col(m.text).contains(item, autoescape=True))
                   for language, item in items.items() if item]
        if not matches:
            continue
        yield from session.exec(
            select(m.id, m.phone, m.producer_id, m.language, m.broadcast_id)
            .where(m.broadcast_id == row.id, col(m.status).in_(statuses), or_(*matches))
        ).all()


RECEIVED = ("sent", "delivered")  # the alert reached (or was handed to) the phone


def alert_receivers(session: Session, obs: models.PriceObservation) -> dict[str, tuple[int | None, str]]:
    """phone → (producer id, language) of everyone whose alert with this value was sent or
    delivered (not those whose send failed, is ambiguous or never happened)."""
    out: dict[str, tuple[int | None, str]] = {}
    for _, phone, producer_id, language, _ in carrying_messages(session, obs, RECEIVED):
        out.setdefault(phone, (producer_id, language or "fr"))
    return out


def _correction_recipients(session: Session, row: models.Broadcast):
    """For expand(): (producer id, phone, language, [text]) of a correction broadcast."""
    obs = session.get(models.PriceObservation, int(row.audience.get("observation", 0)))
    if obs is None:
        return
    texts = {"fr": row.text_fr, "bm": row.text_bm or row.text_fr}
    found = alert_receivers(session, obs)
    p = models.Producer
    ids = sorted({producer_id for producer_id, _ in found.values() if producer_id is not None})
    opted_out: set[str] = set()
    for start in range(0, len(ids), 900):  # under SQLite's limit of bound parameters
        opted_out.update(session.exec(
            select(p.phone).where(col(p.id).in_(ids[start : start + 900]), p.opted_out == True)  # noqa: E712
        ).all())
    for phone, (producer_id, language) in sorted(found.items()):
        if phone in opted_out:
            continue
        language = language if language in texts else "fr"
        yield producer_id, phone, language, [texts[language]]


def expand(session: Session, broadcast: models.Broadcast, *, now: dt.datetime, catalog: Catalog, settings: Settings) -> int:
    """Create the outbox rows of a claimed broadcast. Returns how many will be sent."""
    stamp = now.astimezone(dt.timezone.utc)
    catalog = catalog.with_overrides(overrides(session))  # staff's wording, as of now
    if broadcast.kind == "alert":
        from gateway.outbound import calls  # builds on budgets only: no import cycle

        def by_voice(alerts: list[tuple[str, str, tuple]]) -> set[str]:
            if not alerts:
                return set()
            room = calls.alert_room(session, now=now, settings=settings)  # what the day's call budgets still pay for
            return calls.queue_alerts(session, broadcast_id=broadcast.id, alerts=alerts, now=now, settings=settings,
                                      room=room)

        recipients = list(_alert_recipients(session, broadcast, catalog, settings, by_voice))
        kind = "alert"
    elif broadcast.kind == "correction":
        # A correction SMS goes out as a staff broadcast: the same budgets and quiet hours.
        recipients = list(_correction_recipients(session, broadcast))
        kind = "broadcast"
    else:
        recipients = list(_custom_recipients(session, broadcast, settings))
        kind = "broadcast"
    # Only alerts are checked for repeats: a staff broadcast may repeat on purpose.
    alert_texts = {t for r in recipients for t in r[3]} if kind == "alert" else set()
    already, received = _sent_today(session, {r[1] for r in recipients}, local_midnight_utc(now, settings), alert_texts)
    cap = settings.max_sms_per_producer_per_day
    # One small tuple per row until the insert (a broadcast may reach 100,000 producers): the
    # rows' dictionaries are built a chunk at a time, so the peak stays low.
    pending: list[tuple[str, str, int, int, str, str]] = []
    queued = skipped = 0
    for producer_id, phone, language, texts in recipients:
        # The same alert twice in a day (a price published again unchanged): once is enough.
        repeats = {t for t in texts if (phone, t) in received}
        over_cap = already.get(phone, 0) + len(texts) - len(repeats) > cap
        for part, text in enumerate(texts):
            reason = "already_sent" if text in repeats else ("daily_cap" if over_cap else "")
            pending.append((text, phone, part, producer_id, language, reason))
        sends = not over_cap and len(repeats) < len(texts)
        skipped += not sends
        queued += sends
    del recipients, already, received
    if kind == "broadcast" and _needs_approval(broadcast, queued, settings):
        # The audience grew after creation (an import, new subscribers): past the threshold, a
        # second staff member approves what will actually be sent.
        broadcast.status = "awaiting_approval"
        broadcast.hold_reason = (
            f"{queued} recipients at sending time, over the approval threshold of "
            f"{settings.broadcast_approval_threshold}: the audience grew after it was created"
        )[:200]
        broadcast.recipients = queued
        broadcast.updated_at = stamp
        session.add(broadcast)
        log.warning("broadcast held for approval", extra={"broadcast": broadcast.id, "recipients": queued})
        return 0
    # Rows of the same text get consecutive ids, so that a claimed batch groups into few
    # requests of up to 1,000 numbers (claims go in id order).
    pending.sort(key=lambda row: (row[0], row[1]))
    encodings: dict[str, tuple[str, int]] = {}
    for text in {row[0] for row in pending}:
        e = measure(text)
        encodings[text] = (e.encoding, e.segments)
    common = {
        "broadcast_id": broadcast.id, "kind": kind, "provider": "", "provider_status": "", "error_kind": "",
        "cost": "", "cost_amount": 0.0, "attempts": 0, "created_at": stamp, "updated_at": stamp,
    }  # fmt: skip
    table = models.SmsMessage.__table__
    connection = session.connection()
    for start in range(0, len(pending), EXPAND_CHUNK):
        connection.execute(insert(table), [
            {
                **common, "part": part, "phone": phone, "producer_id": producer_id, "language": language,
                "text": text, "encoding": encodings[text][0], "segments": encodings[text][1],
                "status": "skipped" if reason else "queued", "failure_reason": reason,
            }
            for text, phone, part, producer_id, language, reason in pending[start : start + EXPAND_CHUNK]
        ])  # fmt: skip
    broadcast.recipients = queued
    broadcast.skipped = skipped
    broadcast.status = "sending" if queued else "done"
    broadcast.expanded_at = stamp
    broadcast.finished_at = None if queued else stamp
    broadcast.updated_at = stamp
    session.add(broadcast)
    return queued


def _needs_approval(broadcast: models.Broadcast, recipients: int, settings: Settings) -> bool:
    """Staff broadcasts past the approval threshold need a second staff member's approval,
    checked again here, when the audience is known for good. Corrections (to those who got a
    wrong price) and operators' command-line broadcasts are not staff console broadcasts."""
    return (
        broadcast.kind == "custom" and not broadcast.approved_by and broadcast.created_by != "cli"
        and recipients > settings.broadcast_approval_threshold
    )


def expand_due(db: Database, *, now: dt.datetime, catalog: Catalog, settings: Settings) -> int:
    stamp = now.astimezone(dt.timezone.utc)
    b = models.Broadcast
    with db.unit_of_work() as session:
        due = session.exec(
            select(b.id)
            .where(b.status == "pending", or_(col(b.scheduled_at).is_(None), col(b.scheduled_at) <= stamp))
            .order_by(b.id)
            .limit(20)
        ).all()
    expanded = 0
    for broadcast_id in due:
        with db.unit_of_work() as session:
            # The claim and the rows are one transaction: another worker waits, then finds
            # nothing to claim; a crash rolls both back.
            claimed = session.exec(
                update(b).where(b.id == broadcast_id, b.status == "pending").values(status="expanding").returning(b.id)
            ).first()
            if claimed is None:
                continue
            broadcast = session.get(models.Broadcast, broadcast_id)
            n = expand(session, broadcast, now=now, catalog=catalog, settings=settings)
            if broadcast.status == "awaiting_approval":
                continue
            log.info("broadcast expanded", extra={"broadcast": broadcast_id, "recipients": n, "kind": broadcast.kind})
            expanded += 1
    return expanded


# -- sending ---------------------------------------------------------------------------------------


def bulk_allowance(session: Session, now: dt.datetime, settings: Settings) -> tuple[int, int]:
    """(messages, segments) of alerts and broadcasts that may still go out today, as the shared
    ledger says (a glance, no lock: the claim reserves under the lock)."""
    period = budgets.day_period(now, settings.tz)
    return (
        max(settings.daily_sms_budget - budgets.spent(session, BUDGET_MESSAGES, period), 0),
        max(settings.daily_segment_budget - budgets.spent(session, BUDGET_SEGMENTS, period), 0),
    )


def claim(
    session: Session, *, now: dt.datetime, limit: int, kinds: Sequence[str], owner: str | None = None,
    lease: dt.timedelta = outbox.LEASE,
) -> list[Claimed]:
    """Take up to `limit` due messages for `owner` (a fresh claimer by default), under its lease.
    FOR UPDATE SKIP LOCKED lets workers on PostgreSQL claim side by side; SQLite has one writer
    at a time, which is as safe."""
    if limit <= 0 or not kinds:
        return []
    owner = owner or outbox.new_owner()
    m = models.SmsMessage
    stamp = now.astimezone(dt.timezone.utc)
    due = (
        select(m.id)
        .where(
            m.status == "queued",
            col(m.kind).in_(list(kinds)),
            or_(col(m.next_attempt_at).is_(None), col(m.next_attempt_at) <= stamp),
        )
        # Replies first: someone is waiting for them.
        .order_by(case((m.kind == "reply", 0), else_=1), m.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = session.exec(
        update(m).where(col(m.id).in_(due.scalar_subquery())).values(
            status="claimed", lease_owner=owner, updated_at=stamp
        ).returning(m.id)
    ).all()
    if not ids:
        return []
    outbox.take_lease(session, owner, stamp, lease)
    return claimed_rows(session, [i[0] for i in ids])


def refund_bulk(session: Session, rows: Sequence[Claimed], now: dt.datetime, *, tz) -> None:
    """Give the budget of bulk rows that went back unsent to the day they were claimed in."""
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r.kind in BULK_KINDS:
            day = per_day[budgets.day_period(r.claimed_at, tz)]
            day[0] += 1
            day[1] += r.segments
    for period, (messages, segments) in sorted(per_day.items()):
        budgets.refund(session, BUDGET_MESSAGES, period, messages, now=now)
        budgets.refund(session, BUDGET_SEGMENTS, period, segments, now=now)


@dataclass
class StepResult:
    claimed: int = 0
    skipped: int = 0
    pause_s: float = 0.0  # throttled: the worker should wait this long
    quiet: bool = False
    budget_exhausted: bool = False
    expanded: int = 0  # broadcasts this step expanded
    calls_placed: int = 0  # voice calls the same turn placed (gateway.worker)


def worker_step(
    db: Database,
    sender: SmsSender,
    *,
    clock: Callable[[], dt.datetime],
    catalog: Catalog,
    settings: Settings,
    limit: int | None = None,
    owner: str | None = None,
) -> StepResult:
    """Expand due broadcasts, then claim and send one batch. Safe to run in many processes, and
    to kill anywhere: each step claims under a lease of its own (`owner`, fresh by default)."""
    now = clock()
    expanded = expand_due(db, now=now, catalog=catalog, settings=settings)
    result = StepResult(quiet=in_quiet_hours(now, settings), expanded=expanded)
    limit = limit or settings.worker_batch_size
    # A sender that makes one request per number claims fewer rows per step (see its max_claim).
    limit = min(limit, getattr(sender, "max_claim", None) or limit)
    owner = owner or outbox.new_owner()
    lease = dt.timedelta(seconds=settings.worker_lease_s)
    refund = partial(refund_bulk, tz=settings.tz)
    outbox.checkpoint("before_claim")
    with db.unit_of_work() as session:
        outbox.expire_leases(session, now, refund)
        kinds = ["reply"]
        bulk_limit = limit
        if not result.quiet:
            # Notices (staff decisions, buyers' summaries): one-to-one, outside the bulk budgets.
            kinds.append("notice")
            messages_left, segments_left = bulk_allowance(session, now, settings)
            result.budget_exhausted = messages_left == 0 or segments_left == 0
            if not result.budget_exhausted:
                kinds += list(BULK_KINDS)
                # Each message is at least one segment: never claim past either budget.
                bulk_limit = min(limit, messages_left, segments_left)
        rows = claim(session, now=now, limit=bulk_limit, kinds=kinds, owner=owner, lease=lease)
        rows, released = _reserve_budget(session, rows, now, settings)
        rows, result.skipped = _drop_opted_out(session, rows, now, refund)
    outbox.checkpoint("claimed")
    result.claimed = len(rows)
    if rows:
        for error in outbox.send_claimed(db, sender, rows, clock, refund=refund, lease=lease,
                                         retry_base_s=settings.retry_backoff_s):
            if isinstance(error, Throttled):
                result.pause_s = max(result.pause_s, error.retry_after or 5.0)
    finish_done(db, now)
    return result


def _reserve_budget(session, rows, now, settings):
    """Reserve today's budget for the claimed bulk rows in the shared ledger, under its lock;
    put back to the queue what it cannot pay for (the budget spent by other workers meanwhile,
    or multi-part messages past the segment budget)."""
    bulk = [r for r in rows if r.kind in BULK_KINDS]
    if not bulk:
        return rows, []
    period = budgets.day_period(now, settings.tz)
    granted = budgets.reserve(session, BUDGET_MESSAGES, period, len(bulk), settings.daily_sms_budget, now=now)
    wanted = sum(r.segments for r in bulk[:granted])
    segments = budgets.reserve(session, BUDGET_SEGMENTS, period, wanted, settings.daily_segment_budget, now=now)
    keep, release, used, paid = [], [], 0, 0
    for r in rows:
        if r.kind in BULK_KINDS:
            if paid >= granted or used + r.segments > segments:
                release.append(r.id)
                continue
            paid += 1
            used += r.segments
        keep.append(r)
    budgets.refund(session, BUDGET_MESSAGES, period, granted - paid, now=now)
    budgets.refund(session, BUDGET_SEGMENTS, period, segments - used, now=now)
    if release:
        m = models.SmsMessage
        session.exec(update(m).where(col(m.id).in_(release)).values(status="queued", lease_owner=None))
    return keep, release


def _drop_opted_out(session, rows, now, refund):
    """Someone who opted out after a broadcast was expanded gets nothing from it."""
    bulk_ids = {r.producer_id for r in rows if r.kind in BULK_KINDS and r.producer_id}
    if not bulk_ids:
        return rows, 0
    p = models.Producer
    out = set(session.exec(select(p.id).where(col(p.id).in_(bulk_ids), p.opted_out == True)).all())  # noqa: E712
    if not out:
        return rows, 0
    dropped = [r.id for r in rows if r.kind in BULK_KINDS and r.producer_id in out]
    m = models.SmsMessage
    session.exec(
        update(m).where(col(m.id).in_(dropped)).values(status="skipped", failure_reason="opted_out",
                                                       updated_at=now.astimezone(dt.timezone.utc))
    )
    dropped = set(dropped)
    refund(session, [r for r in rows if r.id in dropped], now)
    return [r for r in rows if r.id not in dropped], len(dropped)


def finish_done(db: Database, now: dt.datetime) -> None:
    b, m = models.Broadcast, models.SmsMessage
    stamp = now.astimezone(dt.timezone.utc)
    with db.unit_of_work() as session:
        sending = session.exec(select(b.id).where(b.status == "sending")).all()
        for broadcast_id in sending:
            active = session.exec(
                select(func.count()).where(m.broadcast_id == broadcast_id, col(m.status).in_(ACTIVE))
            ).one()
            if active == 0:
                session.exec(
                    update(b).where(b.id == broadcast_id, b.status == "sending").values(
                        status="done", finished_at=stamp, updated_at=stamp
                    )
                )


def stats(session: Session, broadcast_id: int) -> dict:
    """Counts per status, segments and cost so far, for progress displays."""
    m = models.SmsMessage
    rows = session.exec(
        select(m.status, func.count(), func.coalesce(func.sum(m.segments), 0), func.coalesce(func.sum(m.cost_amount), 0))
        .where(m.broadcast_id == broadcast_id)
        .group_by(m.status)
    ).all()
    counts = {status: n for status, n, _, _ in rows}
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "segments": sum(int(segments) for status, _, segments, _ in rows if status != "skipped"),
        "cost": round(sum(float(c) for *_, c in rows), 4),
        "finished": sum(n for status, n in counts.items() if status not in ACTIVE),
    }
