"""The worker's cycle: its daily chores (buyers' summaries, pruning old traffic), the step that
sends, and giving memory back after it.

Sugu runs unattended for months on a small server: every SMS, inbound message and USSD session
leaves a row, a broadcast 100,000 of them. Rows older than GATEWAY_RETENTION_DAYS are deleted,
in short transactions (SQLite has one writer: a long delete would hold every hop's write):

- outbound SMS in a final state (never queued or sending), except those another row still names
  (an offer's decision SMS, a directory request, a buyer's summary: kept as their record);
- inbound SMS no remaining outbound SMS answers;
- USSD sessions (their statistics are over by then).

Prices, producers, offers, broadcasts (their counts stay on the broadcast row) and the audit log
are kept: they are the project's record, and small.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import delete, exists, select
from sqlmodel import col

from gateway.actions import linkage
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.data import models
from gateway.outbound import broadcast
from messages import Catalog

log = logging.getLogger("gateway.housekeeping")

FINAL_SMS = ("sent", "delivered", "failed", "undeliverable", "rejected", "skipped", "unconfirmed")
BATCH = 2_000
PRUNE_HOUR = 3  # farmers' time: nobody dials, no alert goes out (quiet hours)


def _old_sms_ids(session, cutoff: dt.datetime, limit: int) -> list[int]:
    m = models.SmsMessage
    named = [models.Offer.notified_sms_id, models.ServiceRequest.sms_id, models.BuyerSummary.sms_id]
    query = select(m.id).where(m.created_at < cutoff, col(m.status).in_(FINAL_SMS))
    for ref in named:
        query = query.where(~exists().where(ref == m.id))
    return list(session.execute(query.order_by(m.id).limit(limit)).scalars())


def _old_inbound_ids(session, cutoff: dt.datetime, limit: int) -> list[int]:
    i, m = models.SmsInbound, models.SmsMessage
    query = select(i.id).where(i.created_at < cutoff, ~exists().where(m.inbound_id == i.id))
    return list(session.execute(query.order_by(i.id).limit(limit)).scalars())


def _old_session_ids(session, cutoff: dt.datetime, limit: int) -> list[int]:
    u = models.UssdSession
    return list(session.execute(select(u.id).where(u.started_at < cutoff).order_by(u.id).limit(limit)).scalars())


def _old_call_session_ids(session, cutoff: dt.datetime, limit: int) -> list[int]:
    v = models.VoiceSession
    return list(session.execute(select(v.id).where(v.started_at < cutoff).order_by(v.id).limit(limit)).scalars())


FINAL_CALLS = ("answered", "not_answered", "failed")


def _old_call_ids(session, cutoff: dt.datetime, limit: int) -> list[int]:
    c = models.VoiceCall
    query = select(c.id).where(c.created_at < cutoff, col(c.status).in_(FINAL_CALLS))
    return list(session.execute(query.order_by(c.id).limit(limit)).scalars())


# Outbound first: an inbound SMS can go once no reply names it.
TABLES = (
    ("sms_message", models.SmsMessage, _old_sms_ids),
    ("sms_inbound", models.SmsInbound, _old_inbound_ids),
    ("ussd_session", models.UssdSession, _old_session_ids),
    ("voice_session", models.VoiceSession, _old_call_session_ids),
    ("voice_call", models.VoiceCall, _old_call_ids),
)
# A prompt's joined audio is made again when asked for after it went: kept a week (a call in
# progress, or a platform fetching late, never misses it), unlike recordings, which stay.
PLAYLIST_DAYS = 7


def _prune_playlists(db: Database, now: dt.datetime, *, dry_run: bool, batch: int) -> int:
    a, p = models.AudioBlob, models.AudioPrompt
    cutoff = now.astimezone(dt.timezone.utc) - dt.timedelta(days=PLAYLIST_DAYS)
    total = 0
    while True:
        with db.unit_of_work() as session:
            hashes = list(session.execute(
                select(a.hash).where(a.created_at < cutoff, ~exists().where(p.audio_hash == a.hash))
                .order_by(a.hash).limit(batch if not dry_run else 10**9)
            ).scalars())
            if hashes and not dry_run:
                session.execute(delete(a).where(col(a.hash).in_(hashes)))
        total += len(hashes)
        if dry_run or len(hashes) < batch:
            return total


@dataclass
class PruneReport:
    cutoff: dt.datetime
    deleted: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


def prune(db: Database, *, now: dt.datetime, days: int, dry_run: bool = False, batch: int = BATCH) -> PruneReport:
    """Delete the traffic rows older than `days` (see the module's docstring), `batch` rows a
    transaction. `dry_run`: count only."""
    cutoff = now.astimezone(dt.timezone.utc) - dt.timedelta(days=days)
    report = PruneReport(cutoff, dry_run=dry_run)
    for name, model, old_ids in TABLES:
        total = 0
        while True:
            with db.unit_of_work() as session:
                ids = old_ids(session, cutoff, batch if not dry_run else 10**9)
                if ids and not dry_run:
                    session.execute(delete(model).where(col(model.id).in_(ids)))
            total += len(ids)
            if dry_run or len(ids) < batch:
                break
        report.deleted[name] = total
    report.deleted["audio_playlist"] = _prune_playlists(db, now, dry_run=dry_run, batch=batch)
    if not dry_run and any(report.deleted.values()):
        log.info("pruned old traffic", extra={"deleted": report.deleted, "cutoff": cutoff.isoformat()})
    return report


@dataclass
class DailyChores:
    """Called on every worker step; each chore runs at most once a day, from its hour on (a worker
    started later that day still does it; the chores themselves are safe to run twice)."""

    summaries: linkage.DailySummaries = field(default_factory=linkage.DailySummaries)
    pruned_on: dt.date | None = None

    def tick(self, db: Database, clock: Callable[[], dt.datetime], catalog: Catalog, settings: Settings) -> None:
        self.summaries.tick(db, clock, catalog, settings)
        now = clock()
        local = now.astimezone(settings.tz)
        if settings.retention_days and local.hour >= PRUNE_HOUR and self.pruned_on != local.date():
            self.pruned_on = local.date()
            prune(db, now=now, days=settings.retention_days)


class HeapTrimmer:
    """Give the heap freed by the worker's work (a broadcast expanded, batches sent) back to the
    operating system: at most every `min_interval_s` while the work goes on, and once when the
    worker falls idle after it. glibc keeps freed memory for reuse, and a large expansion's peak
    then stays in the resident size: the soak test measured the gateway growing at each price
    batch and flat in between. No-op where there is no glibc."""

    def __init__(self, min_interval_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last = -min_interval_s
        self._owed = False  # work was done since the last trim
        name = ctypes.util.find_library("c")
        try:
            self._trim = ctypes.CDLL(name).malloc_trim if name else None
        except (OSError, AttributeError):
            self._trim = None

    def after_step(self, did_work: bool) -> bool:
        now = self._clock()
        self._owed = self._owed or did_work
        if not self._owed or self._trim is None:
            return False
        if did_work and now - self._last < self.min_interval_s:
            return False  # more may come at once: the idle step after it trims
        self._last, self._owed = now, False
        self._trim(0)
        return True


@dataclass
class WorkerCycle:
    """One turn of a broadcaster, the same for `gateway worker` and the in-process worker of
    `gateway serve`: the daily chores (buyers' summaries are queued before the step, which then
    sends them with the rest), one `broadcast.worker_step`, then the heap trim."""

    chores: DailyChores = field(default_factory=DailyChores)
    trimmer: HeapTrimmer = field(default_factory=HeapTrimmer)
    # Builds the VoiceCaller that places calls (calls back missed calls), on the first call due:
    # a worker that never calls does not load the voice adapter and its HTTP client.
    caller_factory: Callable[[], object | None] | None = None
    caller: object | None = None

    def turn(self, db: Database, sender, *, clock: Callable[[], dt.datetime], catalog: Catalog, settings: Settings):
        self.chores.tick(db, clock, catalog, settings)
        result = broadcast.worker_step(db, sender, clock=clock, catalog=catalog, settings=settings)
        if self.caller_factory is not None:
            from gateway.outbound import calls

            result.calls_placed = calls.step(db, self._caller, clock=clock, settings=settings).placed
        self.trimmer.after_step(bool(result.claimed or result.expanded or result.calls_placed))
        return result

    def _caller(self):
        if self.caller is None and self.caller_factory is not None:
            self.caller = self.caller_factory()
        return self.caller

    def close(self) -> None:
        if self.caller is not None:
            self.caller.close()
            self.caller = None

    @staticmethod
    def pause_s(result, settings: Settings) -> float:
        """How long to wait before the next turn: as told when throttled, none while there is work."""
        return result.pause_s or (0 if result.claimed or result.calls_placed else settings.worker_poll_s)
