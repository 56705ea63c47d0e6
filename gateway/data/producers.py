"""Producers as every channel and import finds them: looked up or created by phone (safe when
processes race), their role, and the profile the menus see."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from gateway.data import auth, models
from menus import types as m


def insert_ignore(session: Session, model: type, values: dict, keys: list[str]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING (safe when processes race): the new row's id, or None
    when the row already existed. (RETURNING, because rowcount is not reliable across drivers.)"""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    if "id" not in model.__table__.c:  # keyed by what it holds (audio by hash): nothing to return
        session.exec(stmt)
        return None
    return session.exec(stmt.returning(model.id)).scalar()


def producer_by_phone(session: Session, phone: str) -> models.Producer | None:
    return session.exec(select(models.Producer).where(models.Producer.phone == phone)).first()


def ensure_producer(session: Session, phone: str) -> models.Producer:
    producer = producer_by_phone(session, phone)
    if producer is None:
        insert_ignore(session, models.Producer, {"phone": phone}, ["phone"])
        producer = producer_by_phone(session, phone)
    assert producer is not None
    return producer


def set_role(session: Session, producer: models.Producer, role: str, *, staff: auth.Staff | None,
             now: dt.datetime, via: str) -> bool:
    """Make or unmake an enumerator (who may report prices by SMS), audited; False when the
    producer already had that role. `via`: console, api or the import's file name."""
    if role not in models.PRODUCER_ROLES:
        raise ValueError(f"role must be one of {', '.join(models.PRODUCER_ROLES)}, not {role!r}")
    if producer.role == role:
        return False
    auth.audit(session, staff, action="role", entity="producer", entity_id=producer.phone,
               before={"role": producer.role}, after={"role": role, "via": via}, now=now)
    producer.role = role
    producer.updated_at = now.astimezone(dt.timezone.utc)
    session.add(producer)
    return True


def profile_of(session: Session, producer: models.Producer) -> m.Profile:
    subs = session.exec(
        select(models.Subscription.crop_id, models.Subscription.market_id)
        .where(models.Subscription.producer_id == producer.id)
        .order_by(models.Subscription.id)
    ).all()
    return m.Profile(
        phone=producer.phone,
        language=producer.language,
        name=producer.name,
        village=producer.village,
        region=producer.region,
        cluster=producer.cluster,
        subscriptions=tuple(m.Subscription(c, mk) for c, mk in subs),
        opted_out=producer.opted_out,
        role=producer.role,
        producer_id=producer.id,
        alert_channel=producer.alert_channel or "sms",
    )


# Built once: the first hop of every session reads its caller's start, and building the
# statements was most of the cost of reading it (see start_of).
_p, _s = models.Producer.__table__, models.Subscription.__table__
_START = core_select(
    _p.c.id, _p.c.language, _p.c.name, _p.c.village, _p.c.region, _p.c.cluster, _p.c.opted_out, _p.c.alert_channel
).where(_p.c.phone == bindparam("phone"))
_START_SUBSCRIPTIONS = (
    core_select(_s.c.crop_id, _s.c.market_id).where(_s.c.producer_id == bindparam("pid")).order_by(_s.c.id)
)


def start_of(session: Session, phone: str) -> dict:
    """snapshot(session, producer_by_phone(session, phone)), in two prebuilt statements."""
    connection = session.connection()
    row = connection.execute(_START, {"phone": phone}).first()
    if row is None:
        return {}
    subs = connection.execute(_START_SUBSCRIPTIONS, {"pid": row.id}).all()
    return {
        "language": row.language,
        "name": row.name,
        "village": row.village,
        "region": row.region,
        "cluster": row.cluster,
        "opted_out": row.opted_out,
        "subscriptions": [[c, mk] for c, mk in subs],
        "alert_channel": row.alert_channel or "sms",
    }


def snapshot(session: Session, producer: models.Producer | None) -> dict:
    """The profile a session starts from (USSD, voice): every hop replays from it."""
    if producer is None:
        return {}
    profile = profile_of(session, producer)
    return {
        "language": profile.language,
        "name": profile.name,
        "village": profile.village,
        "region": profile.region,
        "cluster": profile.cluster,
        "opted_out": profile.opted_out,
        "subscriptions": [[s.crop_id, s.market_id] for s in profile.subscriptions],
        "alert_channel": profile.alert_channel,
    }


def profile_from_snapshot(phone: str, data: dict) -> m.Profile:
    return m.Profile(
        phone=phone,
        language=data.get("language"),
        name=data.get("name") or "",
        village=data.get("village") or "",
        region=data.get("region") or "",
        cluster=data.get("cluster") or "",
        opted_out=bool(data.get("opted_out")),
        subscriptions=tuple(m.Subscription(c, mk) for c, mk in data.get("subscriptions", [])),
        alert_channel=data.get("alert_channel") or "sms",
    )
