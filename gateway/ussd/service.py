"""USSD service: one hop = load the session's start, replay the menus, apply the effects.

`Hops.answer` is what the webhook calls: it reads, then writes only when something worth
recording changed (Database.read_then_write). plan_hop reads in the session it is given,
record_hop writes in the transaction it is given; neither commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import bindparam, case, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

import menus
from gateway.actions.effects import apply_effects
from gateway.aggregators.africastalking import UssdHop, UssdSessionEnd
from gateway.core.configs import engine_config
from gateway.core.db import Database
from gateway.core.phones import mask
from gateway.core.settings import Settings
from gateway.data import models
from gateway.data.content import ContentCache, current_catalog
from gateway.data.dataview import CachedDataView, SqlDataView
from gateway.data.producers import profile_from_snapshot, start_of
from gateway.outbound.replies import ReplyRules
from menus import types as m
from menus.paging import truncate
from messages import Catalog, to_ussd

log = logging.getLogger("gateway.ussd")


@dataclass
class HopTrace:
    """What the hop learnt before it failed, so that an apology speaks the caller's language."""

    language: str | None = None
    catalog: Catalog | None = None


@dataclass
class HopPlan:
    """What a hop showed, and what it must write: the replay reads only (see plan_hop)."""

    screen: m.Screen
    new_session: bool
    start_profile: dict
    changed: bool  # something worth writing: a new session, effects, another branch, the end
    catalog: Catalog | None = field(default=None, repr=False)


class SessionStarts:
    """Each live session's caller and profile at its first hop, as this process last saw them,
    and where its last hop here left the menus (menus.Resume).

    The start is written once, by the session's first hop, and never changes: a hop whose session
    is remembered here replays the menus without reading the database (most hops only read, so
    most hops then touch no table at all), and steps only its last input when the previous hop
    was answered here too. Bounded, least recently used out; a session this process never saw
    (another process, a restart) is read from the database and replayed whole, as before, so
    any process can answer any hop. Locked: on PostgreSQL hops run in the thread pool.
    """

    # A session idle this long is over (telcos end USSD sessions after a few minutes at most):
    # forgetting it keeps memory to the sessions alive now, not the last 20,000.
    IDLE_S = 300.0

    def __init__(self, size: int = 20_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._clock = clock
        # session id: [phone, profile, resume, last seen], least recently seen first
        self._starts: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, session_id: str, phone: str) -> list | None:
        found = self._starts.get(session_id)
        if found is None or found[0] != phone:  # another caller's session id: the database decides
            return None
        now = self._clock()
        if now - found[3] > self.IDLE_S:
            return None
        found[3] = now
        self._starts.move_to_end(session_id)
        return found

    def get(self, session_id: str, phone: str) -> dict | None:
        with self._lock:
            found = self._entry(session_id, phone)
            return None if found is None else found[1]

    def resume(self, session_id: str, phone: str) -> menus.Resume | None:
        with self._lock:
            found = self._entry(session_id, phone)
            return None if found is None else found[2]

    def put(self, session_id: str, phone: str, profile: dict, resume: menus.Resume | None = None) -> None:
        with self._lock:
            now = self._clock()
            self._starts[session_id] = [phone, profile, resume, now]
            self._starts.move_to_end(session_id)
            if len(self._starts) > self._size:
                self._starts.popitem(last=False)
            while self._starts:  # the idle ones, oldest first
                oldest = next(iter(self._starts.values()))
                if now - oldest[3] <= self.IDLE_S:
                    break
                self._starts.popitem(last=False)

    def keep(self, session_id: str, phone: str, resume: menus.Resume | None) -> None:
        """Where the session's latest hop left the menus (a session not remembered: nothing)."""
        with self._lock:
            found = self._starts.get(session_id)
            if found is not None and found[0] == phone:
                found[2] = resume
                found[3] = self._clock()

    def __len__(self) -> int:
        return len(self._starts)


class LaidOut(OrderedDict):
    """Screens already laid out into pages (menus.run's `laid_out`), by layout and language,
    for as long as the content they were worded from stays the same: the catalog and the crops,
    markets, units and kinds the content cache holds, compared by identity (the cache replaces
    them when it reloads them). At most `size`, the oldest out."""

    def __init__(self, size: int = 1000) -> None:
        super().__init__()
        self.size = size
        self._content: tuple = ()

    def for_content(self, *content: object) -> "LaidOut":
        if len(content) != len(self._content) or any(a is not b for a, b in zip(content, self._content)):
            self.clear()
            self._content = content
        return self

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)


class Hops:
    """The USSD hop as the webhook answers it, one per process (app.state.ussd)."""

    def __init__(self, settings: Settings, cache: ContentCache, rules: ReplyRules | None = None) -> None:
        self.config = engine_config(settings)
        self.fold = settings.sms_fold
        self.cache = cache
        self.rules = rules
        self.starts = SessionStarts()
        self.laid_out = LaidOut()

    async def answer(self, db: Database, hop: UssdHop, *, now: dt.datetime, trace: HopTrace) -> m.Screen:
        def read(session: Session) -> HopPlan:
            catalog = trace.catalog = current_catalog(session, self.cache)
            data = CachedDataView(session, self.cache)
            laid_out = self.laid_out.for_content(catalog, data.crops(), data.markets(), data.units(), data.kinds())
            plan = plan_hop(
                session, hop=hop, now=now, catalog=catalog, config=self.config, data=data, trace=trace,
                starts=self.starts, laid_out=laid_out,
            )
            plan.catalog = catalog
            return plan

        def write(connection: Connection, plan: HopPlan) -> None:
            record_hop(connection, plan, hop=hop, now=now, catalog=plan.catalog, fold=self.fold, rules=self.rules)

        # A session this process remembers is replayed from memory (see SessionStarts).
        remembered = self.starts.get(hop.session_id, hop.phone) is not None
        plan = await db.read_then_write(read, write, writes=lambda plan: plan.changed, reads_nothing=remembered)
        if plan.new_session:  # written: later hops of this session need not read it
            self.starts.put(hop.session_id, hop.phone, plan.start_profile, plan.screen.resume)
        else:
            self.starts.keep(hop.session_id, hop.phone, plan.screen.resume)
        return plan.screen


def plan_hop(
    session: Session,
    *,
    hop: UssdHop,
    now: dt.datetime,
    catalog: Catalog,
    config: menus.EngineConfig,
    data: m.DataView | None = None,
    trace: HopTrace | None = None,
    starts: SessionStarts | None = None,
    laid_out: LaidOut | None = None,
) -> HopPlan:
    """Load the session's start (from `starts` when this process remembers it) and replay the
    menus: reads only. `laid_out`: see LaidOut."""
    trace = trace or HopTrace()
    known = starts.get(hop.session_id, hop.phone) if starts is not None else None
    if known is not None:
        trace.language = known.get("language")
        return _replay(session, hop, known, new_session=False, now=now, catalog=catalog, config=config, data=data,
                       trace=trace, resume=starts.resume(hop.session_id, hop.phone), laid_out=laid_out)
    start = session.connection().execute(_SESSION_START, {"session_id": hop.session_id}).first()
    if start is not None and start[3] != hop.phone:
        # A session id is not a secret: a hop naming another caller's session must neither see
        # that caller's profile nor act in their name. End it; write nothing.
        log.warning("ussd hop on another caller's session", extra={"session": hop.session_id, "phone": mask(hop.phone)})
        language = start[1] or "fr"
        trace.language = language
        text = truncate(to_ussd(catalog.text(language, "error.internal")), config.max_chars)
        return HopPlan(m.Screen(text=text, end=True, screen_id="foreign_session", language=language), False, {}, False)
    if start is None:
        start_profile = start_of(session, hop.phone)
        trace.language = start_profile.get("language")
    else:
        start_profile = start[0] or {}
        trace.language = start[1] or start_profile.get("language")
        if starts is not None:
            starts.put(hop.session_id, hop.phone, start_profile)
    return _replay(session, hop, start_profile, new_session=start is None, now=now, catalog=catalog, config=config,
                   data=data, trace=trace, laid_out=laid_out)


def _replay(
    session: Session, hop: UssdHop, start_profile: dict, *, new_session: bool, now: dt.datetime, catalog: Catalog,
    config: menus.EngineConfig, data: m.DataView | None, trace: HopTrace, resume: menus.Resume | None = None,
    laid_out: LaidOut | None = None,
) -> HopPlan:
    profile = profile_from_snapshot(hop.phone, start_profile)
    screen = menus.run(
        hop.inputs, profile=profile, data=data or SqlDataView(session), catalog=catalog, now=now, config=config,
        resume=resume, laid_out=laid_out,
    )
    trace.language = screen.language
    # Most hops only read; the session row is written when something worth recording changed
    # (the branch it records is the last one the path went into: the menus say when that changes).
    # Hop counts per session come from the aggregator's end-of-session notification.
    changed = bool(new_session or screen.effects or screen.end or screen.entered_section)
    return HopPlan(screen, new_session, start_profile, changed)


def record_hop(
    connection: Connection, plan: HopPlan, *, hop: UssdHop, now: dt.datetime, catalog: Catalog, fold: bool = True,
    rules: ReplyRules | None = None,
) -> None:
    """The hop's writes, in the caller's transaction: the session row, the effects. Nothing when
    the hop only read. `rules` bound the SMS an effect sends (gateway.outbound.replies)."""
    if not plan.changed:
        return
    screen = plan.screen
    stamp = now.astimezone(dt.timezone.utc)  # stored in UTC; `now` stays local for the menus
    hop_values = {"screen": screen.screen_id[:32], "section": screen.section[:32], "lang": screen.language, "stamp": stamp}
    if plan.new_session:
        # One statement: the row with this first hop in it (a first hop the aggregator sends
        # again finds the row and counts the hop, as any later hop does).
        connection.execute(
            _session_upsert(connection.dialect.name),
            {
                "session_id": hop.session_id,
                "phone": hop.phone,
                "service_code": hop.service_code,
                "network_code": hop.network_code,
                "start_profile": plan.start_profile,
                "started_at": stamp,
                "updated_at": stamp,
                "hops": 1,
                "last_screen": hop_values["screen"],
                "section": hop_values["section"],
                "language": screen.language,
            },
        )
    else:
        connection.execute(_SESSION_HOP, {"sid": hop.session_id, **hop_values})
    if screen.effects:
        # The effects use the ORM; its session joins this transaction and commits nothing.
        with Session(bind=connection, expire_on_commit=False) as session:
            apply_effects(
                session,
                phone=hop.phone,
                effects=screen.effects,
                session_ref=hop.session_id,
                now=stamp,
                today=now.date(),
                catalog=catalog,
                fold=fold,
                rules=rules,
            )
            session.flush()


# Built once: statement construction is most of SQLAlchemy's cost on a hop this small.
_us = models.UssdSession.__table__
_SESSION_START = select(_us.c.start_profile, _us.c.language, _us.c.section, _us.c.phone).where(
    _us.c.session_id == bindparam("session_id")
)
_SESSION_INSERTS: dict[str, object] = {}
_SESSION_UPSERTS: dict[str, object] = {}


def _session_insert(dialect: str):
    """INSERT ... ON CONFLICT DO NOTHING for a session's row (a repeated first hop), built once
    per dialect."""
    stmt = _SESSION_INSERTS.get(dialect)
    if stmt is None:
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = _SESSION_INSERTS[dialect] = module.insert(_us).on_conflict_do_nothing(index_elements=["session_id"])
    return stmt


def _session_upsert(dialect: str):
    """A session's row with its first hop, or, when the row exists (that hop sent again, or an
    end-of-session event that came first), the hop counted in it as _SESSION_HOP does. Built
    once per dialect."""
    stmt = _SESSION_UPSERTS.get(dialect)
    if stmt is None:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(_us)
        new = insert.excluded
        stmt = _SESSION_UPSERTS[dialect] = insert.on_conflict_do_update(
            index_elements=["session_id"],
            set_={
                "hops": _us.c.hops + 1,
                "last_screen": new.last_screen,
                "section": case((new.section != "", new.section), else_=_us.c.section),
                "language": new.language,
                "updated_at": new.updated_at,
            },
        )
    return stmt


_SESSION_HOP = (
    update(_us)
    .where(_us.c.session_id == bindparam("sid"))
    .values(
        hops=_us.c.hops + 1,
        last_screen=bindparam("screen"),
        # The last branch of the main menu the caller went into.
        section=case((bindparam("section") != "", bindparam("section")), else_=_us.c.section),
        language=bindparam("lang"),
        updated_at=bindparam("stamp"),
    )
)


def record_end(session: Session, *, event: UssdSessionEnd, now: dt.datetime) -> None:
    now = now.astimezone(dt.timezone.utc)
    connection = session.connection()
    connection.execute(
        _session_insert(connection.dialect.name),
        {
            "session_id": event.session_id,
            "phone": event.phone,
            "service_code": event.service_code,
            "network_code": event.network_code,
            "start_profile": {},
            "started_at": now,
            "updated_at": now,
        },
    )
    row = session.exec(
        select(models.UssdSession).where(models.UssdSession.session_id == event.session_id)
    ).one()
    if row.phone != event.phone:  # bound to its caller, as hops are
        log.warning("ussd end event for another caller's session", extra={"session": event.session_id, "phone": mask(event.phone)})
        return
    row.end_status = event.status
    row.end_cost = event.cost or None
    row.end_duration_ms = event.duration_ms
    row.end_hops = event.hops
    row.end_error = event.error or None
    row.ended_at = event.ended_at or now
    row.updated_at = now
    session.add(row)


def note_error(session: Session, *, session_id: str) -> None:
    row = session.exec(
        select(models.UssdSession).where(models.UssdSession.session_id == session_id)
    ).first()
    if row is not None:
        row.errors += 1
        session.add(row)
