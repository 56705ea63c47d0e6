"""Ceilings shared by every worker and process: what a budget spent per period, in the database.

A caller reserves what it is about to spend in the unit of work that spends it (a claim of bulk
messages, a reply being queued): if that unit of work rolls back, the reservation goes with it.
What goes back unspent (a message returned to the queue) is refunded. The row is read under a
lock (FOR UPDATE on PostgreSQL; SQLite's single writer, taken by the INSERT first), so two
workers can never both spend the last units: with 50 left, five workers get 50 between them,
not 250.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select, update

from gateway.data import models

B = models.BudgetUsage
CHUNK = 900  # names per statement: under SQLite's limit of bound parameters


def day_period(now: dt.datetime, tz: ZoneInfo) -> str:
    """The farmers' calendar day: budgets restart at local midnight."""
    return now.astimezone(tz).date().isoformat()


def hour_period(now: dt.datetime, tz: ZoneInfo) -> str:
    return now.astimezone(tz).strftime("%Y-%m-%dT%H")


def _ensure_row(session: Session, name: str, period: str, now: dt.datetime) -> None:
    # Written first, so that on SQLite this unit of work holds the write lock before it reads.
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.exec(
        insert(B).values(name=name, period=period, used=0, updated_at=now).on_conflict_do_nothing(
            index_elements=["name", "period"]
        )
    )


def hold(session: Session, name: str, period: str, *, now: dt.datetime) -> None:
    """Lock this budget's row to the end of the unit of work (a mutex for whoever spends it:
    PostgreSQL's row lock; SQLite's single writer, taken by the INSERT)."""
    _ensure_row(session, name, period, now.astimezone(dt.timezone.utc))
    session.exec(select(B.used).where(B.name == name, B.period == period).with_for_update()).one()


def reserve(session: Session, name: str, period: str, wanted: int, limit: int, *, now: dt.datetime) -> int:
    """Up to `wanted` units out of `limit` for this period; returns what was granted (0 when spent)."""
    if wanted <= 0:
        return 0
    now = now.astimezone(dt.timezone.utc)
    _ensure_row(session, name, period, now)
    used = session.exec(select(B.used).where(B.name == name, B.period == period).with_for_update()).one()
    granted = max(0, min(wanted, limit - used))
    if granted:
        session.exec(
            update(B).where(B.name == name, B.period == period).values(used=B.used + granted, updated_at=now)
        )
    return granted


def reserve_each(session: Session, names: list[str], period: str, limit: int, *, now: dt.datetime) -> set[str]:
    """One unit from each of many budgets of this period (a cap per phone, for thousands of
    phones): the names granted one, under the same locks as `reserve`, a few statements per
    CHUNK names rather than three per name."""
    names = sorted(set(names))  # one order for everyone: two workers never wait on each other in a circle
    if not names or limit <= 0:
        return set()
    now = now.astimezone(dt.timezone.utc)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    connection = session.connection()
    statement = insert(B).on_conflict_do_nothing(index_elements=["name", "period"])
    granted: set[str] = set()
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        connection.execute(statement, [{"name": n, "period": period, "used": 0, "updated_at": now} for n in chunk])
        used = session.exec(
            select(B.name, B.used).where(col(B.name).in_(chunk), B.period == period).order_by(B.name).with_for_update()
        ).all()
        room = [name for name, spent in used if spent < limit]
        if room:
            session.exec(update(B).where(col(B.name).in_(room), B.period == period).values(used=B.used + 1, updated_at=now))
        granted.update(room)
    return granted


def refund(session: Session, name: str, period: str, amount: int, *, now: dt.datetime) -> None:
    """Give back what was reserved and not spent (never below zero)."""
    if amount <= 0:
        return
    session.exec(
        update(B)
        .where(B.name == name, B.period == period)
        .values(used=case((B.used >= amount, B.used - amount), else_=0), updated_at=now.astimezone(dt.timezone.utc))
    )


def spent(session: Session, name: str, period: str) -> int:
    return session.exec(select(B.used).where(B.name == name, B.period == period)).first() or 0


def in_quiet_hours(now: dt.datetime, settings) -> bool:
    """Inside GATEWAY_QUIET_HOURS (farmers' time): no alert, broadcast or call placed."""
    window = settings.quiet_window
    if window is None:
        return False
    start, end = window
    t = now.astimezone(settings.tz).time()
    return (start <= t or t < end) if start > end else (start <= t < end)
