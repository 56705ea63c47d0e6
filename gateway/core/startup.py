"""What stops the service from starting, said in one line instead of a traceback.

Operators meet these on their first command (a directory that cannot be written, a setting
missing): each known kind is turned into one sentence that names the setting or the path to fix.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

ENV_PREFIX = "GATEWAY_"


class StartupError(RuntimeError):
    """A problem of configuration or environment, already explained for the operator."""


def prepare_sqlite_path(url: str) -> None:
    """Create the folder of a SQLite database file (a fresh clone has no `var/`)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # explained where the URL is used
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    folder = Path(parsed.database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"cannot create the folder {folder} for the SQLite database ({exc.strerror}): "
            f"set {ENV_PREFIX}DATABASE_URL to a writable place"
        ) from None


def _settings_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = "_".join(str(part) for part in error.get("loc", ()) if part != "__root__")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{ENV_PREFIX}{where.upper()}: {message}" if where else message)
    return "configuration error: " + "; ".join(problems)


def _database_line(exc: Exception, url: str | None) -> str:
    where = ""
    if url:
        try:
            where = " " + make_url(url).render_as_string(hide_password=True)
        except ArgumentError:
            where = ""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = f"check {ENV_PREFIX}DATABASE_URL"
    if "unable to open database file" in reason:
        hint = f"the file or its folder is not writable; check {ENV_PREFIX}DATABASE_URL"
    return f"cannot open the database{where}: {reason} ({hint})"


def explain(exc: BaseException, *, database_url: str | None = None) -> str | None:
    """One line for a known start-up problem, or None for anything else."""
    if isinstance(exc, StartupError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return _settings_line(exc)
    if isinstance(exc, (OperationalError, NoSuchModuleError)):
        return _database_line(exc, database_url)
    if isinstance(exc, ArgumentError):
        return f"{ENV_PREFIX}DATABASE_URL is not a database URL: {exc}"
    return None


def check_production(settings) -> None:
    """Outside development mode, aggregator callbacks must be authenticated: without a secret (or
    the aggregator's networks) anyone who can reach the server could forge a price report, opt
    farmers out or make it text any number. Refuse to start, in one line."""
    if settings.dev_mode or settings.webhook_guarded:
        return
    raise StartupError(
        f"{ENV_PREFIX}WEBHOOK_SECRET is not set: anyone could forge aggregator callbacks; set it (and "
        f"end the callback URLs with ?token=<it>), or {ENV_PREFIX}WEBHOOK_ALLOW_NETWORKS, or "
        f"{ENV_PREFIX}DEV_MODE=true on a development machine"
    )


DEV_MODE_BANNER = (
    "DEVELOPMENT MODE (GATEWAY_DEV_MODE=true): fake aggregators mounted on loopback, callbacks "
    "accepted without a secret unless GATEWAY_WEBHOOK_SECRET is set. Never expose this server."
)
