"""USSD service: one hop = load the session's start, replay the menus, apply the effects.

Runs inside the caller's unit of work (one transaction per hop); never commits itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

import menus
from gateway import models
from gateway.aggregators.africastalking import UssdHop, UssdSessionEnd
from gateway.dataview import SqlDataView
from menus import types as m
from messages import Catalog


@dataclass
class HopTrace:
    """What the hop learnt before it failed, so that an apology speaks the caller's language."""

    language: str | None = None


def insert_ignore(session: Session, model: type, values: dict, keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: safe when two processes race on the same row."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    session.exec(stmt)


def producer_by_phone(session: Session, phone: str) -> models.Producer | None:
    return session.exec(select(models.Producer).where(models.Producer.phone == phone)).first()


def ensure_producer(session: Session, phone: str) -> models.Producer:
    producer = producer_by_phone(session, phone)
    if producer is None:
        insert_ignore(session, models.Producer, {"phone": phone}, ["phone"])
        producer = producer_by_phone(session, phone)
    assert producer is not None
    return producer


def snapshot(session: Session, producer: models.Producer | None) -> dict:
    if producer is None:
        return {}
    subs = session.exec(
        select(models.Subscription.crop_id, models.Subscription.market_id)
        .where(models.Subscription.producer_id == producer.id)
        .order_by(models.Subscription.id)
    ).all()
    return {
        "language": producer.language,
        "name": producer.name,
        "village": producer.village,
        "region": producer.region,
        "cluster": producer.cluster,
        "opted_out": producer.opted_out,
        "subscriptions": [[c, mk] for c, mk in subs],
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
    )


def start_or_resume(session: Session, hop: UssdHop, now: dt.datetime) -> models.UssdSession:
    row = session.exec(
        select(models.UssdSession).where(models.UssdSession.session_id == hop.session_id)
    ).first()
    if row is not None:
        return row
    values = {
        "session_id": hop.session_id,
        "phone": hop.phone,
        "service_code": hop.service_code,
        "network_code": hop.network_code,
        "start_profile": snapshot(session, producer_by_phone(session, hop.phone)),
        "started_at": now,
        "updated_at": now,
    }
    insert_ignore(session, models.UssdSession, values, ["session_id"])
    return session.exec(
        select(models.UssdSession).where(models.UssdSession.session_id == hop.session_id)
    ).one()


def apply_effects(
    session: Session, *, phone: str, effects: tuple[m.Effect, ...], session_ref: str, now: dt.datetime
) -> None:
    """Apply what the menus asked for. Each effect is idempotent: a hop that the aggregator
    sends twice (a retry after a timeout) leaves the same state as once."""
    if not effects:
        return
    producer = ensure_producer(session, phone)
    for effect in effects:
        match effect:
            case m.SetLanguage(language=language):
                producer.language = language
            case m.SetProfileField(field=name, value=value):
                setattr(producer, name, value)
            case m.Subscribe(crop_id=crop_id, market_id=market_id):
                producer.opted_out = False
                insert_ignore(
                    session,
                    models.Subscription,
                    {"producer_id": producer.id, "crop_id": crop_id, "market_id": market_id, "created_at": now},
                    ["producer_id", "crop_id", "market_id"],
                )
            case m.Unsubscribe(crop_id=crop_id, market_id=market_id):
                session.exec(
                    delete(models.Subscription).where(
                        models.Subscription.producer_id == producer.id,
                        models.Subscription.crop_id == crop_id,
                        models.Subscription.market_id == market_id,
                    )
                )
            case m.StopAlerts():
                producer.opted_out = True
                session.exec(
                    delete(models.Subscription).where(models.Subscription.producer_id == producer.id)
                )
            case m.RecordOffer(demand_id=demand_id, quantity_kg=quantity):
                offer = session.exec(
                    select(models.Offer).where(
                        models.Offer.demand_id == demand_id,
                        models.Offer.producer_id == producer.id,
                        models.Offer.session_ref == session_ref,
                    )
                ).first()
                if offer is None:
                    session.add(
                        models.Offer(
                            demand_id=demand_id,
                            producer_id=producer.id,
                            quantity_kg=quantity,
                            channel="ussd",
                            session_ref=session_ref,
                            created_at=now,
                        )
                    )
                else:
                    offer.quantity_kg = quantity
            case _:
                raise TypeError(f"unknown effect {effect!r}")
    producer.updated_at = now
    session.add(producer)


def handle_hop(
    session: Session,
    *,
    hop: UssdHop,
    now: dt.datetime,
    catalog: Catalog,
    config: menus.EngineConfig,
    trace: HopTrace | None = None,
) -> m.Screen:
    trace = trace or HopTrace()
    stamp = now.astimezone(dt.timezone.utc)  # stored in UTC; `now` stays local for the menus
    row = start_or_resume(session, hop, stamp)
    profile = profile_from_snapshot(hop.phone, row.start_profile or {})
    trace.language = row.language or profile.language
    screen = menus.run(
        hop.inputs, profile=profile, data=SqlDataView(session), catalog=catalog, now=now, config=config
    )
    trace.language = screen.language
    apply_effects(session, phone=hop.phone, effects=screen.effects, session_ref=hop.session_id, now=stamp)
    row.hops += 1
    row.last_screen = screen.screen_id[:32]
    row.language = screen.language
    row.updated_at = stamp
    session.add(row)
    return screen


def record_end(session: Session, *, event: UssdSessionEnd, now: dt.datetime) -> None:
    now = now.astimezone(dt.timezone.utc)
    insert_ignore(
        session,
        models.UssdSession,
        {
            "session_id": event.session_id,
            "phone": event.phone,
            "service_code": event.service_code,
            "network_code": event.network_code,
            "start_profile": {},
            "started_at": now,
            "updated_at": now,
        },
        ["session_id"],
    )
    row = session.exec(
        select(models.UssdSession).where(models.UssdSession.session_id == event.session_id)
    ).one()
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
