"""The migration chain builds exactly the models' schema; the demo loader is idempotent."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func
from sqlmodel import SQLModel, select

from gateway.core import migrate
from gateway.data import models
from gateway.data import seed
from gateway.core.db import Database
from gateway.core.settings import Settings
from tests.conftest import TODAY

pytestmark = pytest.mark.db


def test_migrations_produce_the_models_schema(empty_db_url):
    migrate.upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == []
        assert migrate.is_current(engine)
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(empty_db_url):
    migrate.upgrade(empty_db_url)
    from alembic import command

    command.downgrade(migrate.alembic_config(empty_db_url), "base")
    engine = create_engine(empty_db_url)
    try:
        assert not migrate.is_current(engine)
    finally:
        engine.dispose()
    migrate.upgrade(empty_db_url)


def counts(session) -> dict[str, int]:
    return {
        m.__name__: session.exec(select(func.count()).select_from(m)).one()
        for m in (models.Crop, models.Market, models.PriceObservation, models.Buyer, models.Demand, models.Tip)
    }


def test_demo_content_meets_the_brief_and_loads_once(db_url):
    db = Database.from_settings(Settings(database_url=db_url))
    try:
        with db.unit_of_work() as session:
            before = counts(session)
            again = seed.seed_demo(session, today=TODAY)
            assert str(again) == "crops +0, markets +0, prices +0, buyers +0, demands +0, tips +0"
            assert counts(session) == before

            crops = {c.code for c in session.exec(select(models.Crop))}
            assert crops >= {"tomato", "onion", "shallot", "cabbage", "potato", "okra", "chili", "eggplant", "lettuce", "carrot"}
            markets = {m.name for m in session.exec(select(models.Market))}
            assert markets >= {"Sikasso", "Koutiala", "Bougouni", "Mopti", "Sévaré", "Bandiagara", "Djenné", "Tombouctou", "Diré", "Bamako"}
            weeks = session.exec(select(func.count(func.distinct(models.PriceObservation.observed_on)))).one()
            assert weeks >= 8
            tips = session.exec(select(models.Tip)).all()
            assert sum(bool(t.text_fr.strip()) for t in tips) >= 20 and sum(bool(t.text_bm.strip()) for t in tips) >= 20
            open_by_buyer = dict(
                session.exec(
                    select(models.Buyer.name, func.count())
                    .join(models.Demand, models.Demand.buyer_id == models.Buyer.id)
                    .where(models.Demand.status == "open", models.Demand.valid_until >= TODAY)
                    .group_by(models.Buyer.name)
                ).all()
            )
            assert open_by_buyer["Lawal Int."] >= 2 and open_by_buyer["Madougou Agro-Business"] >= 2
    finally:
        db.dispose()


def test_demo_prices_are_plausible(db_url):
    """Seasonal levels from the market facts: onions dear in November, potatoes cheap in April."""
    db = Database.from_settings(Settings(database_url=db_url))
    try:
        with db.unit_of_work() as session:
            def avg(code: str, month: int) -> float:
                rows = session.exec(
                    select(models.PriceObservation.price, models.PriceObservation.observed_on)
                    .join(models.Crop, models.Crop.id == models.PriceObservation.crop_id)
                    .where(models.Crop.code == code)
                ).all()
                values = [p for p, day in rows if day.month == month]
                return sum(values) / len(values)

            assert 700 <= avg("onion", 11) <= 1100
            assert 150 <= avg("onion", 2) <= 300
            assert avg("potato", 4) < avg("potato", 12)
            assert 9000 <= avg("tomato", 1) <= 25000  # per basket in season
    finally:
        db.dispose()
