"""The `gateway` command (Typer)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Sugu gateway: SMS and USSD market information.", no_args_is_help=True)


def _settings():
    from gateway.settings import Settings

    return Settings()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    from gateway import migrate as mig

    settings = _settings()
    mig.upgrade(settings.database_url)
    typer.echo("database is up to date")


@app.command("seed-demo")
def seed_demo(
    if_empty: Annotated[bool, typer.Option(help="Only when the database has no crops yet")] = False,
) -> None:
    """Load the demo content (idempotent: existing content is kept)."""
    from sqlalchemy import func
    from sqlmodel import select

    from gateway import models, seed
    from gateway.db import Database

    settings = _settings()
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            if if_empty and session.exec(select(func.count()).select_from(models.Crop)).one():
                typer.echo("database already has content; demo not loaded")
                return
            report = seed.seed_demo(session, today=dt.datetime.now(settings.tz).date())
        typer.echo(f"demo content: {report}")
    finally:
        db.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes")] = 1,
) -> None:
    """Serve the HTTP API (webhooks and, later, the staff console)."""
    import os

    import uvicorn

    # Workers read their settings from the environment: tell them where they are reached
    # (used by the built-in fake SMS server when no Africa's Talking key is configured).
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    os.environ.setdefault("GATEWAY_PUBLIC_URL", f"http://{local}:{port}")
    settings = _settings()  # fail early, with a clear message, on bad configuration
    if settings.sms_uses_fake:
        typer.echo(f"No Africa's Talking key: SMS go to the built-in fake, {settings.public_url}/fake-at/_fake/")
    uvicorn.run(
        "gateway.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def simulate(
    phone: Annotated[str, typer.Option(help="Caller's number")] = "+22370000001",
    service_code: Annotated[str, typer.Option(help="USSD code")] = "*123#",
) -> None:
    """A USSD session in the terminal, exactly as a phone shows it (the real engine and data)."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.phones import InvalidPhone, parse_phone

    try:
        phone = parse_phone(phone)
    except InvalidPhone as exc:
        raise typer.BadParameter(str(exc), param_hint="--phone") from None
    session_id = f"sim-{uuid.uuid4().hex[:12]}"
    inputs: list[str] = []
    with TestClient(create_app(_settings())) as client:
        while True:
            form = {
                "sessionId": session_id,
                "serviceCode": service_code,
                "phoneNumber": phone,
                "networkCode": "61002",
                "text": "*".join(inputs),
            }
            reply = client.post("/webhooks/at/ussd", data=form)
            if reply.status_code != 200:
                typer.echo(f"HTTP {reply.status_code}: {reply.text}", err=True)
                raise typer.Exit(1)
            kind, text = reply.text[:3], reply.text[4:]
            _show(text, kind)
            if kind == "END":
                return
            try:
                answer = input("> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo("")
                return
            inputs.append(answer.strip())


def _show(text: str, kind: str) -> None:
    width = max(24, *(len(line) for line in text.split("\n")))
    typer.echo("+" + "-" * (width + 2) + "+")
    for line in text.split("\n"):
        typer.echo(f"| {line.ljust(width)} |")
    footer = f" {kind} {len(text)} chars "
    typer.echo("+" + footer.center(width + 2, "-") + "+")


def main(argv: Optional[list[str]] = None) -> None:
    app(argv)


if __name__ == "__main__":
    main()
