"""Who may get a reply, against SMS pumping: anyone can make the gateway answer (an SMS from any
number, a USSD hop asking for a directory SMS), and each answer is an SMS the project pays for.

A reply (an SMS answer, a directory SMS sent from a USSD menu) is queued only when
- the number belongs to an allowed country (GATEWAY_ALLOWED_COUNTRIES, by the number's region),
- the number is under its own daily cap (counted under a lock on its producer row, so that
  concurrent messages from one number cannot both pass the last slot),
- the replies' own daily budget has room (GATEWAY_DAILY_REPLY_BUDGET, apart from the bulk budget),
- for a number first heard from in the last 24 hours, the hourly ceiling on replies to such
  numbers has room (GATEWAY_NEW_NUMBER_REPLIES_PER_HOUR).
The two ceilings are rows of the shared ledger (gateway.outbound.budgets), reserved in the unit of work
that queues the reply: every process shares them, and a rolled-back request gives its unit back.
A refusal is counted in the ledger too (`refused:<ceiling>`, per day), which the dashboard and
/metrics read, and logged as a WARNING with the number masked.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable
from zoneinfo import ZoneInfo

import phonenumbers
from sqlmodel import Session, select

from gateway.core.phones import mask
from gateway.data import models
from gateway.outbound import budgets

log = logging.getLogger("gateway.replies")

REPLIES = "replies"  # per day
NEW_NUMBER_REPLIES = "replies_new"  # per hour
REFUSED_PREFIX = "refused:"  # per day, one row per ceiling
# The ceilings, as named in logs, metrics, the dashboard and sms_inbound.note.
COUNTRY, PER_NUMBER, DAILY_BUDGET, NEW_NUMBERS = "country", "per_number", "daily_budget", "new_numbers"
CEILINGS = (COUNTRY, PER_NUMBER, DAILY_BUDGET, NEW_NUMBERS)
NEW_NUMBER_WINDOW = dt.timedelta(hours=24)
UNLIMITED = 2**31 - 1


@dataclass(frozen=True)
class ReplyRules:
    allowed_regions: frozenset[str] = field(default_factory=lambda: frozenset({"ML"}))
    per_number_per_day: int = 10
    new_numbers_per_hour: int = 200
    daily_budget: int = 5_000
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Africa/Bamako"))

    @classmethod
    def from_settings(cls, settings) -> "ReplyRules":
        return cls(
            allowed_regions=settings.allowed_regions,
            per_number_per_day=settings.sms_replies_per_day,
            new_numbers_per_hour=settings.new_number_replies_per_hour,
            daily_budget=settings.daily_reply_budget,
            tz=settings.tz,
        )


@lru_cache(maxsize=4_096)
def region_of(phone: str) -> str | None:
    """ISO region of an E.164 number (None when unknown or unparsable)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None


def is_new(producer: models.Producer, now: dt.datetime) -> bool:
    created = producer.created_at
    if created is None:
        return True
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=dt.timezone.utc)
    return created >= now - NEW_NUMBER_WINDOW


def lock_number(session: Session, producer_id: int) -> None:
    """Serialise the replies of one number (PostgreSQL: a row lock until commit; SQLite's one
    writer already does it): the count that follows sees every reply committed before."""
    session.exec(select(models.Producer.id).where(models.Producer.id == producer_id).with_for_update()).first()


def refuse(session: Session, ceiling: str, *, phone: str, now: dt.datetime, tz: ZoneInfo, what: str) -> str:
    """Count and log a refusal; returns the ceiling's name."""
    budgets.reserve(session, REFUSED_PREFIX + ceiling, budgets.day_period(now, tz), 1, UNLIMITED, now=now)
    log.warning(f"{what} not sent: {ceiling} ceiling", extra={"phone": mask(phone), "ceiling": ceiling})
    return ceiling


def check(
    session: Session,
    *,
    producer: models.Producer,
    now: dt.datetime,
    rules: ReplyRules,
    sent_today: Callable[[], int],
    per_number: int | None = None,
    what: str = "reply",
) -> str | None:
    """None when one reply to `producer` may be queued now (its units are then reserved in this
    unit of work), else the ceiling that refused it. `sent_today` counts what this number already
    got under its own cap (`per_number`, default the rules' daily cap); it is called under the
    number's lock."""
    phone = producer.phone
    if region_of(phone) not in rules.allowed_regions:
        return refuse(session, COUNTRY, phone=phone, now=now, tz=rules.tz, what=what)
    lock_number(session, producer.id)
    cap = rules.per_number_per_day if per_number is None else per_number
    if sent_today() >= cap:
        return refuse(session, PER_NUMBER, phone=phone, now=now, tz=rules.tz, what=what)
    day = budgets.day_period(now, rules.tz)
    if not budgets.reserve(session, REPLIES, day, 1, rules.daily_budget, now=now):
        return refuse(session, DAILY_BUDGET, phone=phone, now=now, tz=rules.tz, what=what)
    if is_new(producer, now):
        hour = budgets.hour_period(now, rules.tz)
        if not budgets.reserve(session, NEW_NUMBER_REPLIES, hour, 1, rules.new_numbers_per_hour, now=now):
            budgets.refund(session, REPLIES, day, 1, now=now)
            return refuse(session, NEW_NUMBERS, phone=phone, now=now, tz=rules.tz, what=what)
    return None


@dataclass
class Today:
    """What the dashboard and /metrics show: replies spent today, refusals per ceiling."""

    replies: int
    new_number_replies_this_hour: int
    refused: dict[str, int]


def today(session: Session, now: dt.datetime, tz: ZoneInfo) -> Today:
    b = models.BudgetUsage
    day, hour = budgets.day_period(now, tz), budgets.hour_period(now, tz)
    names = [REPLIES] + [REFUSED_PREFIX + c for c in CEILINGS]
    rows = dict(session.exec(select(b.name, b.used).where(b.period == day, b.name.in_(names))).all())
    return Today(
        replies=rows.get(REPLIES, 0),
        new_number_replies_this_hour=budgets.spent(session, NEW_NUMBER_REPLIES, hour),
        refused={c: rows.get(REFUSED_PREFIX + c, 0) for c in CEILINGS},
    )
