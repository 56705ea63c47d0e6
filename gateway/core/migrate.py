"""Running the Alembic chain from code (CLI, tests, start-up).

Alembic is imported by the functions that run it: a server only asks whether the schema is
current (is_current), which needs no Alembic (importing it costs ~10 MB resident)."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoSuchTableError, OperationalError, ProgrammingError

import migrations
from gateway.core.startup import prepare_sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    # "%" would be read as interpolation by configparser (passwords may contain it).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    prepare_sqlite_path(url)
    command.upgrade(alembic_config(url), revision)


def heads(url: str) -> set[str]:
    """The newest revisions of the chain, as Alembic reads them from migrations/versions."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest revision of the chain (migrations.HEAD): the row
    Alembic keeps in its version table, read directly."""
    try:
        with engine.connect() as conn:
            current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    except (NoSuchTableError, OperationalError, ProgrammingError) as exc:
        if _no_version_table(exc):
            return False  # never migrated
        raise
    return current == {migrations.HEAD}


def _no_version_table(exc: Exception) -> bool:
    message = str(exc).lower()
    return "alembic_version" in message and ("no such table" in message or "does not exist" in message)
