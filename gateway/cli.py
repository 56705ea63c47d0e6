"""The `gateway` command (Typer)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer

# Tracebacks are for bugs: known start-up problems are said in one line by main().
app = typer.Typer(
    help="Sugu gateway: SMS and USSD market information.", no_args_is_help=True, pretty_exceptions_enable=False
)


def _settings():
    from gateway.core.settings import Settings

    return Settings()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    from gateway.core import migrate as mig

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

    from gateway.core.db import Database
    from gateway.data import models, seed

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
    from gateway.core.startup import DEV_MODE_BANNER, check_production

    check_production(settings)
    _check_database(settings)
    if settings.dev_mode:
        typer.secho(f"*** {DEV_MODE_BANNER} ***", fg=typer.colors.RED, bold=True, err=True)
    if settings.sms_provider == "orange" and settings.orange_uses_fake:
        typer.echo(f"No Orange credentials: SMS go to the built-in fake, {settings.public_url}/fake-orange/_fake/")
    elif settings.sms_uses_fake:
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


def _check_database(settings) -> None:
    """Before the server starts: the database opens and its schema is current (one line if not)."""
    from gateway.core import migrate as mig
    from gateway.core.db import Database
    from gateway.core.startup import StartupError

    db = Database.from_settings(settings)
    try:
        if not mig.is_current(db.engine):
            raise StartupError("the database schema is not current: run `gateway migrate` (or `make run`)")
    finally:
        db.dispose()


@app.command()
def simulate(
    phone: Annotated[str, typer.Option(help="Caller's number")] = "+22370000001",
    service_code: Annotated[str, typer.Option(help="USSD code")] = "*123#",
    voice: Annotated[bool, typer.Option("--voice", help="A voice call instead: each prompt's words, keys typed")] = False,
    language: Annotated[
        Optional[str], typer.Option(help="The language a new caller picks at the first question: any configured "
                                         "one (fr, bm, ff...); one the channel does not offer (voice-only on USSD, "
                                         "disabled) is served in French, with the notice its speakers get")
    ] = None,
) -> None:
    """A USSD session in the terminal, exactly as a phone shows it (the real engine and data); with
    --voice, a phone call: the words of each prompt, the keys it takes, then your keys."""
    import asyncio

    from gateway.core.phones import InvalidPhone, parse_phone

    try:
        phone = parse_phone(phone)
    except InvalidPhone as exc:
        raise typer.BadParameter(str(exc), param_hint="--phone") from None
    settings = _settings()
    if "GATEWAY_LOG_LEVEL" not in os.environ:  # the screens, not a log line per hop (unless asked for)
        settings = settings.model_copy(update={"log_level": "WARNING"})
    _check_database(settings)
    if language is not None:
        _check_language(settings, language)

    def session():
        return _simulate_voice(settings, phone, language) if voice else _simulate(settings, phone, service_code, language)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(session())
    else:  # called from code that runs an event loop in this thread (an embedding, a test): a thread of its own
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, session()).result()


def _check_language(settings, language: str) -> None:
    """--language: a configured language (console → Languages), enabled or not; else a clear error."""
    from gateway.core.db import Database
    from gateway.data import languages

    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            found = languages.rows(session)
    finally:
        db.dispose()
    _known_language(language, found)


def _known_language(code: str, found) -> None:
    from gateway.data import languages

    if code not in {lang.code for lang in found}:
        raise typer.BadParameter(f"unknown language {code!r}: configured are {languages.listed(found)}",
                                 param_hint="--language")


def _served(state, phone: str, language: str, *, spoken: bool):
    """What --language means for this caller on this channel: (their stored language or None, the
    language picked at the first question, the notice its speakers get there or "") — a language
    the channel does not offer is served in French, as menus.languages.serve does for its farmers."""
    from sqlmodel import select

    from gateway.data import models
    from gateway.data.dataview import SqlDataView
    from menus import languages as langs

    with state.db.unit_of_work() as session:
        configured = SqlDataView(session).languages()
        stored = session.exec(select(models.Producer.language).where(models.Producer.phone == phone)).first()
    served = langs.serve(language, configured, state.catalog, spoken=spoken, voice_number=state.settings.voice_number)
    notice = langs.notice_text(state.catalog, served.notice, served.language) if served.notice else ""
    offered = [lang.code for lang in langs.offered(configured, state.catalog, spoken=spoken)]
    return stored, served.language, notice, offered


def _say_picked(key: str, language: str, notice: str) -> None:
    typer.echo(f"> {key}  (--language {language})")
    if notice:
        typer.echo(f"(not offered here: its speakers are served in French, told \"{notice}\")")


async def _simulate(settings, phone: str, service_code: str, language: str | None = None) -> None:
    """Posts each hop to the application in-process, as the aggregator would (with the webhook
    secret when one is set), through httpx's ASGI transport: no socket, no test client."""
    import asyncio
    import logging
    from urllib.parse import urlencode

    import httpx

    from gateway.app import create_app

    # httpx logs every request at INFO: in a terminal simulator that is noise between screens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    session_id = f"sim-{uuid.uuid4().hex[:12]}"
    inputs: list[str] = []
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    url = "/webhooks/at/ussd" + (f"?{urlencode({'token': secret})}" if secret else "")
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        scripted: list[str] = []  # --language: the answer to a new caller's language screen
        notice = ""
        if language:
            stored, picked, notice, offered = _served(application.state, phone, language, spoken=False)
            if stored:
                typer.echo(f"({phone} speaks {stored}, from their profile: --language only answers a new "
                           "caller's first question)")
            elif picked in offered:  # the language screen lists what USSD offers, 1, 2...
                scripted.append(str(offered.index(picked) + 1))
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://simulator") as client:
            while True:
                form = {"sessionId": session_id, "serviceCode": service_code, "phoneNumber": phone,
                        "networkCode": "61002", "text": "*".join(inputs)}
                reply = await client.post(url, data=form)
                if reply.status_code != 200:
                    typer.echo(f"HTTP {reply.status_code}: {reply.text}", err=True)
                    raise typer.Exit(1)
                kind, text = reply.text[:3], reply.text[4:]
                _show(text, ended=kind == "END")
                if kind == "END":
                    typer.echo("The network closed the session. Goodbye.")
                    return
                if scripted:
                    inputs.append(scripted.pop())
                    _say_picked(inputs[-1], language, notice)
                    continue
                try:
                    answer = await asyncio.to_thread(input, "> ")
                except (EOFError, KeyboardInterrupt):
                    typer.echo("\nHung up. Goodbye.")
                    return
                inputs.append(answer.strip())


# The voice simulator's app answers at this base: the audio and callback URLs of its answers point
# back into the process (through the ASGI transport), never to a server or the network.
VOICE_SIM_BASE = "http://simulator"
VOICE_SIM_NUMBER = "+22320221234"  # the number called when GATEWAY_VOICE_NUMBER is not set (a Bamako landline)
QUIT = "q"


class _HeardPrompts:
    """The app's prompt audio, unchanged, noting the words of each playlist it joins: a Play URL
    names the audio by hash, the terminal shows the clips' texts."""

    def __init__(self, audio) -> None:
        self.audio = audio
        self.words: dict[str, list[str]] = {}

    def playlist(self, session, clips, fallbacks=None) -> str:
        digest = self.audio.playlist(session, clips, fallbacks)
        self.words[digest] = [clip.text for clip in clips]
        return digest


async def _simulate_voice(settings, phone: str, language: str | None) -> None:
    """A phone call through the real voice webhook, in-process: the fake Africa's Talking call
    driver posts each callback and fetches (and checks) every audio file played, over httpx's ASGI
    transport; no socket, no server, no network."""
    import asyncio
    import logging
    from urllib.parse import urlencode

    import httpx

    from gateway.admin.simulators import SIM_PREFIX, accepted_keys, voice_hop
    from gateway.aggregators.fake_at_voice import ENDED, AsyncFakeVoiceCall, FakeCallError
    from gateway.app import create_app

    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Answered, not rejected for a call back: the terminal is the phone, and no real call may be placed.
    settings = settings.model_copy(update={"voice_inbound": "answer", "public_url": VOICE_SIM_BASE})
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    url = f"{VOICE_SIM_BASE}/webhooks/at/voice" + (f"?{urlencode({'token': secret})}" if secret else "")
    session_id = f"{SIM_PREFIX}{uuid.uuid4().hex[:12]}"
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        state = application.state
        heard = state.prompt_audio = _HeardPrompts(state.prompt_audio)
        picked, notice = _served(state, phone, language, spoken=True)[1:3] if language else (None, "")
        transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=VOICE_SIM_BASE) as client:
            call = AsyncFakeVoiceCall(client, url, phone, settings.voice_number or VOICE_SIM_NUMBER,
                                      session_id=session_id)
            typer.echo(f"Calling Sugu from {phone}: each prompt's words, then the keys it takes. "
                       "Type keys and Enter; an empty line is silence; q hangs up.")
            step, first = call.start(), True
            while True:
                played, said = len(call.played), len(call.said)
                try:
                    await step
                except FakeCallError as exc:  # the gateway answered what the platform would refuse
                    typer.echo(f"The call failed: {exc}", err=True)
                    raise typer.Exit(1) from None
                for audio in call.played[played:]:
                    digest = audio.url.rsplit("/", 1)[-1].partition(".")[0]
                    _say(heard.words.get(digest, ["?"]), f"{audio.kind}, {audio.size // 1024} KiB")
                for text in call.said[said:]:
                    _say([text], "said by the platform")
                if call.state == ENDED:
                    typer.echo("The call has ended. Goodbye.")
                    return
                # What the prompt takes, asked of the voice service itself (its answer rolled back).
                hop = await asyncio.to_thread(voice_hop, state, phone=phone, session_id=session_id, digits="*")
                typer.echo("keys: " + _keys_line(accepted_keys(hop.turn)))
                typed = _first_answer(hop, phone, language, picked, notice) if first else None
                first = False
                if typed is None:
                    typed = await _read_keys()
                if typed == QUIT:
                    await call.hang_up(10 * len(call.transcript))
                    typer.echo("You hung up. Goodbye.")
                    return
                if not typed:
                    step = call.silence()
                else:
                    # A quantity is sent by # (added when not typed); elsewhere the first key counts.
                    quantity = call.waiting_for is not None and call.waiting_for.finish_on_key == "#"
                    step = call.press(typed + "#" if quantity and "#" not in typed else typed)


async def _read_keys() -> str:
    """Keys typed on one line ("" for silence, QUIT to hang up), asked again until they are keys."""
    import asyncio

    from gateway.aggregators.calling import DTMF_KEYS

    while True:
        try:
            typed = (await asyncio.to_thread(input, "> ")).strip().replace(" ", "")
        except (EOFError, KeyboardInterrupt):
            return QUIT
        if typed.lower() == QUIT or set(typed) <= DTMF_KEYS:
            return typed.lower()
        typer.echo("A phone keypad has 0-9, * and # only.")


def _first_answer(hop, phone: str, language: str | None, picked: str | None, notice: str) -> str | None:
    """--language: the key that answers the language question of a caller who has none stored
    (French's, with its speakers' notice, for a language calls do not offer)."""
    if not language:
        return None
    key = _language_key(hop, picked or language)
    if key:
        _say_picked(key, language, notice)
    elif hop.turn.language != language:
        typer.echo(f"({phone} speaks {hop.turn.language}, from their profile: --language only "
                   "answers a new caller's first question)")
    return key


def _keys_line(keys: list[tuple[str, str]]) -> str:
    meanings = {"more": "more", "repeat": "repeat", "back": "back", "home": "main menu"}
    shown = []
    for key, meaning in keys:
        if meaning == "quantity":
            shown.append("a quantity, then #")
        else:
            shown.append(f"{key} {meanings[meaning]}" if meaning in meanings else key)
    return " · ".join(shown)


def _language_key(hop, language: str) -> str | None:
    """The key that picks `language` when the call is at the language question, else None."""
    from menus.screen import LanguageRef
    from gateway.voice.service import LANGUAGE_SCREENS

    screen = hop.screen
    if screen.screen_id not in LANGUAGE_SCREENS or screen.structure is None:
        return None
    options = screen.structure.layout.options
    number = next((n for n, part in enumerate(options, 1)
                   if isinstance(part, LanguageRef) and part.code == language), None)
    return next((key for key, chosen in hop.turn.prompt.choices if chosen == number), None)


def _say(words: list[str], audio: str, *, columns: int | None = None) -> None:
    """One prompt: the words of its clips in order, wrapped to the terminal, and what was played."""
    import shutil
    import textwrap

    columns = columns or shutil.get_terminal_size((80, 24)).columns
    width = max(20, min(columns, 100) - 4)
    lines = textwrap.wrap(" ".join(words), width) or [""]
    typer.echo(f"(( {lines[0]}")
    for line in lines[1:]:
        typer.echo(f"   {line}")
    typer.echo(f"   [{audio}]")


def _read_csv(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        typer.echo(
            f"{path.name}: not UTF-8 (byte {exc.start + 1}); save it as \"CSV UTF-8\"", err=True
        )
        raise typer.Exit(1) from None


def _check_rows(name: str, total: int, errors: list, skip_errors: bool) -> int:
    """Print every error; exit when there are any and skipping was not asked. Returns how many
    lines were skipped."""
    for error in errors:
        typer.echo(f"{name}: {error}", err=True)
    bad_lines = len({e.line for e in errors})
    if bad_lines and not skip_errors:
        typer.echo(
            f"{bad_lines} of {total} rows have errors: nothing imported "
            "(correct them, or use --skip-errors to import the others)",
            err=True,
        )
        raise typer.Exit(1)
    return bad_lines


def _run_import(file: Path, skip_errors: bool, *, parse, load):
    """Read, check every row, then import in one unit of work (all or nothing)."""
    from sqlmodel import select

    from gateway.actions import imports
    from gateway.core.db import Database
    from gateway.data import models

    settings = _settings()
    text = _read_csv(file)
    now = dt.datetime.now(settings.tz)
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            crops = session.exec(select(models.Crop)).all()
            markets = session.exec(select(models.Market)).all()
            try:
                rows, errors = parse(text, crops, markets, now, session)
            except imports.FileFormatError as exc:
                typer.echo(f"{file.name}: {exc}", err=True)
                raise typer.Exit(1) from None
            skipped = _check_rows(file.name, len(rows) + len({e.line for e in errors}), errors, skip_errors)
            return load(session, rows, now), skipped
    finally:
        db.dispose()


_CSV_FILE = typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file, UTF-8, ';' or ','")
_SKIP_ERRORS = typer.Option("--skip-errors", help="Import the valid rows and skip the bad ones")


@app.command("import-prices")
def import_prices(
    file: Annotated[Path, _CSV_FILE],
    skip_errors: Annotated[bool, _SKIP_ERRORS] = False,
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Publish without SMS alerts")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen, write nothing")] = False,
    create_missing: Annotated[bool, typer.Option(
        "--create-missing", help="Create unknown markets (in the admin1 region, created too), crops and units")] = False,
    mapping: Annotated[Optional[Path], typer.Option(
        "--mapping", exists=True, dir_okay=False, readable=True,
        help="CSV kind,name,code (kind: market, crop, unit or pricetype): the file's name → an existing code")] = None,
    rate: Annotated[list[str], typer.Option(
        "--rate", help="Convert another currency: CUR=XOF per unit, e.g. GHS=98.5 (repeatable)")] = [],  # noqa: B006
    region: Annotated[str, typer.Option(
        "--region", help="Region of the markets --create-missing creates when the file has no admin1")] = "",
) -> None:
    """Publish market prices from a CSV file: date, market, crop, price[, unit, kind, currency],
    or WFP/VAM's layout as published on HDX (its HXL row is skipped, extra columns ignored).

    Any past date is accepted; prices older than GATEWAY_PRICE_STALE_DAYS are stored without
    alerts. Decimal prices are rounded to the nearest whole franc, halves up (853.5 -> 854),
    after conversion by --rate. Rows with a price of 0 are placeholders and skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gateway.actions import imports
    from gateway.core.db import Database

    settings = _settings()
    text = _read_csv(file)
    try:
        options = imports.PriceOptions(
            create_missing=create_missing, rates=imports.parse_rates(rate), region=region.strip(),
            mapping=imports.parse_mapping(_read_csv(mapping)) if mapping else {},
        )
    except (ValueError, imports.FileFormatError) as exc:
        typer.echo(f"{mapping.name if mapping and isinstance(exc, imports.FileFormatError) else 'options'}: {exc}",
                   err=True)
        raise typer.Exit(1) from None
    now = dt.datetime.now(settings.tz)
    total = max(1, text.count("\n"))
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            transient=True, disable=not sys.stdout.isatty(),
        ) as bar:
            checking = bar.add_task("checking", total=total)
            try:
                found = imports.read_price_file_from(
                    session, text, today=now.date(), options=options,
                    progress=lambda n: bar.advance(checking, n),
                )
            except imports.FileFormatError as exc:
                typer.echo(f"{file.name}: {exc}", err=True)
                raise typer.Exit(1) from None
            bar.update(checking, completed=total)
            _price_file_summary(file.name, found, dry_run)
            if found.bad_lines and not skip_errors:
                typer.echo(
                    f"{found.bad_lines} of {found.read} rows have errors: nothing imported "
                    "(correct them, or use --skip-errors to import the others)",
                    err=True,
                )
                raise typer.Exit(1)
            importing = bar.add_task("importing", total=len(found.rows))
            report = imports.import_prices(
                session, found.rows, now=now, source=f"import:{file.name}", alerts=not no_alerts,
                stale_days=settings.price_stale_days, found=found, dry_run=dry_run,
                progress=lambda n: bar.advance(importing, n),
            )
            if dry_run:
                session.rollback()  # nothing was written; and nothing will be
    finally:
        db.dispose()
    verb = "would be imported" if dry_run else "imported"
    typer.echo(
        f"{file.name}: {report.imported} prices {verb}, {report.already_present} already present, "
        f"{found.bad_lines} rows skipped, {found.zero} zero prices skipped (placeholders)"
    )
    created = ", ".join(f"{n} {what if n > 1 else what[:-1]}" for what, n in report.created.items() if n)
    if created:
        typer.echo(f"{'would create' if dry_run else 'created'}: {created}")
    if dry_run:
        typer.echo("dry run: nothing was written")
        return
    if report.broadcast_id is not None:
        alerts = f"alerts queued for {report.alert_pairs} of them (broadcast #{report.broadcast_id})"
    elif no_alerts:
        alerts = "no alerts (--no-alerts)"
    else:
        alerts = (
            f"no alerts (none is both newer than those already published and at most "
            f"{settings.price_stale_days} days old)" if report.pairs else "no alerts"
        )
    typer.echo(f"published new prices for {report.pairs} (crop, market) pairs; {alerts}")


def _price_file_summary(name: str, found, dry_run: bool) -> None:
    """Every refused row with its line; each unknown name once, with the rows it holds back."""
    for error in found.line_errors:
        typer.echo(f"{name}: {error}", err=True)
    for entry in found.unmatched:
        if entry.status == "created":
            rows = f"{entry.rows} row{'s' if entry.rows != 1 else ''}"
            typer.echo(f'{name}: {"would create" if dry_run else "creating"} {entry.what} "{entry.name}" ({rows})')
        else:
            typer.echo(f"{name}: {entry}", err=True)
    converted = ", ".join(f"{n} rows from {cur}" for cur, n in found.converted.items())
    if converted:
        typer.echo(f"{name}: converted to XOF: {converted}")


@app.command("import-producers")
def import_producers(
    file: Annotated[Path, _CSV_FILE],
    skip_errors: Annotated[bool, _SKIP_ERRORS] = False,
) -> None:
    """Create or update producers from a CSV file: phone[, name, language, village, region,
    cluster, subscriptions, role] (subscriptions: crop@market separated by ';' or '|'; role:
    producer or enumerator, each change audited)."""
    from gateway.actions import imports
    from gateway.data import languages

    report, skipped = _run_import(
        file,
        skip_errors,
        parse=lambda text, crops, markets, now, session: imports.parse_producers_csv(
            text, crops=crops, markets=markets, languages=languages.rows(session)),
        load=lambda session, rows, now: imports.import_producers(session, rows, now=now, source=f"cli:{file.name}"[:64]),
    )
    typer.echo(
        f"{file.name}: {report.rows} row{'s' if report.rows != 1 else ''} read ({report.created} new, "
        f"{report.updated} updated, {report.unchanged} already up to date), {skipped} rows skipped; subscriptions: "
        f"{report.subscriptions_added} added, {report.subscriptions_present} already present; "
        f"roles changed: {report.roles_changed}"
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="One step, then exit (for cron or tests)")] = False,
) -> None:
    """Run the broadcaster: expands broadcasts and sends the outbox. Any number may run at once."""
    import signal
    import time

    from gateway.core import logs
    from gateway.core.db import Database
    from gateway.outbound.senders import build_caller, build_sender
    from gateway.worker import WorkerCycle
    from messages import default_catalog

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)
    db, sender, catalog = Database.from_settings(settings), build_sender(settings), default_catalog()
    cycle = WorkerCycle(caller_factory=lambda: build_caller(settings))
    stopping = {"now": False}

    def stop(_signum, _frame) -> None:
        stopping["now"] = True  # finish the step under way: its rows are then all recorded

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    clock = lambda: dt.datetime.now(settings.tz)  # noqa: E731
    try:
        while not stopping["now"]:
            result = cycle.turn(db, sender, clock=clock, catalog=catalog, settings=settings)
            if once:
                typer.echo(f"claimed {result.claimed}, skipped {result.skipped}")
                return
            pause = cycle.pause_s(result, settings)
            deadline = time.monotonic() + pause
            while not stopping["now"] and time.monotonic() < deadline:
                time.sleep(min(0.2, pause))
    finally:
        sender.close()
        cycle.close()
        db.dispose()


@app.command("prune")
def prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go, delete nothing")] = False,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Keep this many days (default: GATEWAY_RETENTION_DAYS)")] = None,
) -> None:
    """Delete SMS and USSD session rows older than the retention period (the workers do it daily)."""
    from gateway.core.db import Database
    from gateway.worker import prune

    settings = _settings()
    keep = days or settings.retention_days
    if not keep:
        typer.echo("GATEWAY_RETENTION_DAYS is 0: everything is kept.")
        return
    db = Database.from_settings(settings)
    try:
        report = prune(db, now=dt.datetime.now(settings.tz), days=keep, dry_run=dry_run)
    finally:
        db.dispose()
    verb = "would delete" if dry_run else "deleted"
    counts = ", ".join(f"{name} {n:,}" for name, n in report.deleted.items())
    typer.echo(f"Older than {report.cutoff:%Y-%m-%d %H:%M} UTC ({keep} days): {verb} {counts}.")


@app.command("buyer-summary")
def buyer_summary(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the SMS without queueing anything")] = False,
) -> None:
    """Queue today's SMS summary of new offers for every opted-in buyer (once a day: the workers
    do it at GATEWAY_BUYER_SUMMARY_HOUR; running this again the same day sends nothing more)."""
    from gateway.actions import linkage
    from gateway.core.db import Database
    from messages import default_catalog

    settings = _settings()
    db = Database.from_settings(settings)
    try:
        results = linkage.send_buyer_summaries(
            db, lambda: dt.datetime.now(settings.tz), default_catalog(), settings, dry_run=dry_run
        )
    finally:
        db.dispose()
    for r in results:
        state = "already sent today" if r.already_sent else ("queued" if r.queued else "would be queued")
        typer.echo(f"{r.buyer} ({r.phone}): {r.offers} new offers, {state}")
        typer.echo(f"     {r.text}")
    if not results:
        typer.echo("no buyer to tell: none opted in with a phone, or no new offers")


def _names_to_ids(values: list[str], names, option: str) -> list[int]:
    ids = []
    for value in values:
        found, reason = names.find(value)
        if found is None:
            raise typer.BadParameter(reason, param_hint=option)
        ids.append(found)
    return ids


@app.command("broadcast")
def broadcast_command(
    text_fr: Annotated[str, typer.Option("--text-fr", help="The message in French")],
    text_bm: Annotated[str, typer.Option("--text-bm", help="The message in Bambara (default: French)")] = "",
    region: Annotated[list[str], typer.Option(help="Producers of this region (repeatable)")] = [],  # noqa: B006
    market: Annotated[list[str], typer.Option(help="Subscribed to a price at this market")] = [],  # noqa: B006
    crop: Annotated[list[str], typer.Option(help="Subscribed to this crop")] = [],  # noqa: B006
    cluster: Annotated[list[str], typer.Option(help="Producers of this group")] = [],  # noqa: B006
    language: Annotated[list[str], typer.Option(help="Producers of this language: any configured one (fr, bm, ff...)")] = [],  # noqa: B006
    at: Annotated[Optional[str], typer.Option(help="Send later: 'YYYY-MM-DD HH:MM', farmers' time")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    wait: Annotated[bool, typer.Option(help="Send now from this process, with a progress bar")] = True,
) -> None:
    """Send a message to an audience: preview per language with segments and cost, then send."""
    from sqlmodel import select

    from gateway.actions.imports import crop_names, market_names
    from gateway.core.db import Database
    from gateway.data import languages, models
    from gateway.outbound import broadcast

    settings = _settings()
    scheduled = None
    if at:
        try:
            scheduled = dt.datetime.fromisoformat(at).replace(tzinfo=settings.tz)
        except ValueError:
            raise typer.BadParameter("expected 'YYYY-MM-DD HH:MM'", param_hint="--at") from None
    now = dt.datetime.now(settings.tz)
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            configured = languages.rows(session)
            for code in language:
                _known_language(code, configured)
            crops = crop_names(session.exec(select(models.Crop)).all())
            markets = market_names(session.exec(select(models.Market)).all())
            audience = broadcast.Audience(
                regions=list(region),
                markets=_names_to_ids(market, markets, "--market"),
                crops=_names_to_ids(crop, crops, "--crop"),
                clusters=list(cluster),
                languages=list(language),
            )
            previews = broadcast.preview(session, text_fr=text_fr, text_bm=text_bm, audience=audience, settings=settings)
        total = sum(p.recipients for p in previews)
        for p in previews:
            if not p.recipients:  # a text nobody reads
                continue
            typer.echo(f"[{p.language}] {p.recipients} recipients, {p.encoding}, {p.segments} segment(s) each, "
                       f"about {p.estimated_cost:,.0f} XOF")
            typer.echo(f"     {p.text}")
            for code, n in p.speakers.items():
                if code != p.language:  # SMS are not written in their language (voice-only, disabled)
                    typer.echo(f"     of whom {n} speak {code}, who read this text")
        cost = sum(p.estimated_cost for p in previews)
        typer.echo(f"total: {total} recipients, about {cost:,.0f} XOF" + (f", at {at}" if at else ""))
        if total == 0:
            typer.echo("nobody to send to")
            raise typer.Exit(1)
        if not yes and not typer.confirm("Send?"):
            raise typer.Exit(1)
        with db.unit_of_work() as session:
            created = broadcast.create_broadcast(
                session, text_fr=text_fr, text_bm=text_bm, audience=audience, now=now,
                scheduled_at=scheduled, created_by="cli",
            )
            broadcast_id = created.id
        typer.echo(f"broadcast #{broadcast_id} created")
        if wait and (scheduled is None or scheduled <= now):
            _send_with_progress(db, settings, broadcast_id)
    finally:
        db.dispose()


def _send_with_progress(db, settings, broadcast_id: int) -> None:
    import time

    from rich.progress import Progress

    from gateway.data import models
    from gateway.outbound import broadcast
    from gateway.outbound.senders import build_sender
    from messages import default_catalog

    sender, catalog = build_sender(settings), default_catalog()
    clock = lambda: dt.datetime.now(settings.tz)  # noqa: E731
    try:
        with Progress() as progress:
            task = progress.add_task(f"broadcast #{broadcast_id}", total=None)
            while True:
                result = broadcast.worker_step(db, sender, clock=clock, catalog=catalog, settings=settings)
                with db.unit_of_work() as session:
                    stats = broadcast.stats(session, broadcast_id)
                    status = session.get(models.Broadcast, broadcast_id).status
                progress.update(task, total=stats["total"] or None, completed=stats["finished"])
                if status == "done":
                    break
                if status == "awaiting_approval":
                    progress.stop()
                    typer.echo("waits for a staff member's approval in the console")
                    break
                if result.quiet or result.budget_exhausted:
                    reason = "quiet hours" if result.quiet else "today's budget is spent"
                    progress.stop()
                    typer.echo(f"paused: {reason}; a worker (gateway worker, or gateway serve) will finish it")
                    break
                time.sleep(result.pause_s or (0 if result.claimed else 0.5))
        _print_stats(stats)
    finally:
        sender.close()


def _print_stats(stats: dict) -> None:
    counts = ", ".join(f"{status} {n}" for status, n in sorted(stats["counts"].items()))
    typer.echo(f"{counts}; {stats['segments']} segments, cost {stats['cost']:,.2f} XOF")


@app.command("broadcast-status")
def broadcast_status(
    broadcast_id: Annotated[Optional[int], typer.Argument(help="A broadcast; none: the latest ten")] = None,
) -> None:
    """Progress of broadcasts: queued, sent, delivered, failed, cost."""
    from sqlmodel import select

    from gateway.core.db import Database
    from gateway.data import models
    from gateway.outbound import broadcast

    db = Database.from_settings(_settings())
    try:
        with db.unit_of_work() as session:
            if broadcast_id is not None:
                rows = [session.get(models.Broadcast, broadcast_id)]
                if rows[0] is None:
                    typer.echo(f"no broadcast #{broadcast_id}", err=True)
                    raise typer.Exit(1)
            else:
                rows = session.exec(select(models.Broadcast).order_by(models.Broadcast.id.desc()).limit(10)).all()
            for b in rows:
                typer.echo(f"#{b.id} {b.kind} {b.status}: {b.title} ({b.recipients} recipients, {b.skipped} skipped)")
                if b.status == "awaiting_approval" and b.hold_reason:
                    typer.echo(f"  waits for approval in the console: {b.hold_reason}")
                _print_stats(broadcast.stats(session, b.id))
    finally:
        db.dispose()


@app.command()
def setup(
    first_admin: Annotated[
        Optional[str], typer.Option(help="Also create the first administrator (e-mail), like `staff first-admin`")
    ] = None,
    reference_file: Annotated[
        Optional[Path], typer.Option(help="A reference file to load instead of the shipped one (Mali)")
    ] = None,
) -> None:
    """Start a production database: migrate, load the reference data (regions, markets, crops,
    units, price kinds). No demo prices, producers, demands, buyers or tips. Idempotent: a second
    run adds nothing and never overwrites what staff changed."""
    from gateway.core import migrate as mig
    from gateway.data import reference

    settings = _settings()
    mig.upgrade(settings.database_url)
    typer.echo("database migrated to the newest revision")
    source = str(reference_file) if reference_file else f"gateway/reference_data/{reference.PRODUCTION_FILE} (shipped)"
    _load_reference(settings, reference_file, source)
    typer.echo("no demo content loaded (prices, producers, demands, buyers, tips): `gateway seed-demo` does that")
    if first_admin:
        staff_first_admin(email=first_admin)


def _load_reference(settings, path: Optional[Path], source: str) -> None:
    from gateway.core.db import Database
    from gateway.data import reference

    db = Database.from_settings(settings)
    try:
        document = reference.read_document(path) if path else reference.production_document()
        with db.unit_of_work() as session:
            report = reference.load(session, document, now=dt.datetime.now(dt.timezone.utc))
    except reference.Invalid as exc:
        typer.echo(f"reference data not loaded, nothing changed: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(f"reference data from {source}: {report}")
    if not report.total_added:
        typer.echo("nothing new: rows already there are kept as they are")


reference_app = typer.Typer(help="Reference data: regions, markets, crops, units, price kinds.", no_args_is_help=True)
app.add_typer(reference_app, name="reference")


@reference_app.command("import")
def reference_import(file: Annotated[Path, typer.Argument(help="A reference file (JSON, see README)")]) -> None:
    """Add the file's rows whose code is new; rows already there (edited or retired) are kept."""
    _load_reference(_settings(), file, str(file))


@reference_app.command("export")
def reference_export(
    file: Annotated[Optional[Path], typer.Argument(help="Where to write (default: standard output)")] = None,
) -> None:
    """Every reference row, retired ones marked "active": false, in the import format."""
    import json

    from gateway.core.db import Database
    from gateway.data import reference

    db = Database.from_settings(_settings())
    try:
        with db.unit_of_work() as session:
            document = reference.export(session)
    finally:
        db.dispose()
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text, "utf-8")
        typer.echo(f"{sum(len(v) for v in document.values())} rows written to {file}")


voice_app = typer.Typer(help="Voice: synthetic prompts, the weekly radio bulletin.", no_args_is_help=True)
app.add_typer(voice_app, name="voice")


@voice_app.command("synthesize")
def voice_synthesize(
    language: Annotated[Optional[list[str]], typer.Option("--language", help="fr, bm (default: both)")] = None,
) -> None:
    """Make the synthetic stand-in of every voice clip not recorded yet (offline, with the speech
    engine in the package): the first calls then wait for no synthesis. Safe to run again."""
    from gateway.core.db import Database
    from gateway.data.dataview import SqlDataView
    from gateway.voice import bulletin, prompts
    from menus.voice import inventory
    from messages import default_catalog

    languages = language or ["fr", "bm"]
    db = Database.from_settings(_settings())
    maker = prompts.PromptAudio()
    try:
        for lang in languages:
            with db.unit_of_work() as session:
                clips = inventory(default_catalog(), lang, SqlDataView(session), bulletin.regions(session))
                missing = [c for c in clips if c.id not in prompts.latest(session, [c.id for c in clips])]
            for start in range(0, len(missing), 50):  # short units of work: SQLite has one writer
                with db.unit_of_work() as session:
                    for clip in missing[start : start + 50]:
                        maker._synthetic(session, clip)
            typer.echo(f"{lang}: {len(clips)} clips, {len(missing)} synthesized now")
    finally:
        db.dispose()


@voice_app.command("bulletin")
def voice_bulletin(
    region: Annotated[str, typer.Argument(help="The region's name, e.g. Sikasso")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the MP3")],
    language: Annotated[str, typer.Option("--language", help="An enabled voice language's code: fr, bm, ff...")] = "fr",
) -> None:
    """This week's radio bulletin of a region as an MP3: its main crops' prices in its markets
    with their direction, and one tip (about one to two minutes)."""
    from gateway.core.db import Database
    from gateway.data import languages
    from gateway.data.dataview import SqlDataView
    from gateway.voice import bulletin
    from messages import default_catalog

    settings = _settings()
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            known = bulletin.regions(session)
            if region not in known:
                typer.echo(f"unknown region {region!r}; regions: {', '.join(known)}", err=True)
                raise typer.Exit(1)
            try:
                made = bulletin.make(session, region=region, language=language, catalog=default_catalog(),
                                     today=dt.datetime.now(settings.tz).date(), data=SqlDataView(session))
            except bulletin.NoSuchBulletin:
                spoken = [lang for lang in languages.rows(session) if lang.enabled and lang.voice]
                typer.echo(f"--language: {language!r} is not an enabled voice language; use one of: "
                           f"{languages.listed(spoken)}", err=True)
                raise typer.Exit(2) from None
    finally:
        db.dispose()
    output.write_bytes(made.mp3)
    typer.echo(f"{output}: {made.seconds:.0f} s, {made.prices} prices, week of {made.week_of:%d/%m/%Y}")


staff_app = typer.Typer(help="Staff accounts of the console.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")


@staff_app.command("add")
def staff_add(
    email: Annotated[str, typer.Argument(help="Their e-mail, used to sign in")],
    # The least role unless another is asked for (issue 15: new accounts defaulted to more).
    role: Annotated[str, typer.Option(help="reporter (the default: enters prices), editor or admin")] = "reporter",
    name: Annotated[str, typer.Option(help="Their name")] = "",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters")
    ] = "",
) -> None:
    """Create a staff account (asks for the password)."""
    from gateway.core.db import Database
    from gateway.data import auth

    db = Database.from_settings(_settings())
    try:
        with db.unit_of_work() as session:
            user = auth.create_staff(session, email=email, password=password, role=role, name=name)
            auth.audit(session, None, action="create", entity="staff", entity_id=user.email,
                       after={"role": role, "via": "cli"}, now=dt.datetime.now(dt.timezone.utc))
    except auth.AuthError as exc:
        typer.echo(f"not created: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(f"{user.email} can now sign in as {role}")


@staff_app.command("first-admin")
def staff_first_admin(
    email: Annotated[str, typer.Option(help="The first administrator's e-mail")] = "admin@sugu.local",
) -> None:
    """On a new install (no staff yet): an administrator with a one-time password, printed once."""
    from gateway.core.db import Database
    from gateway.data import auth

    settings = _settings()
    db = Database.from_settings(settings)
    try:
        with db.unit_of_work() as session:
            if auth.staff_count(session):
                return
            password = auth.one_time_password()
            auth.create_staff(session, email=email, password=password, role="admin", name="Administrator",
                              must_change_password=True)
    finally:
        db.dispose()
    typer.echo(f"Staff console {settings.public_url}/admin: sign in as {email} with the one-time password {password}")
    typer.echo("(shown only now, to be changed at the first sign-in; add accounts for the others under Staff)")


@staff_app.command("reset-password")
def staff_reset_password(
    email: Annotated[str, typer.Argument(help="The account's e-mail")],
) -> None:
    """A one-time password for an account (printed once; to be changed at the next sign-in); its
    console sessions end. For the administrator who cannot sign in any more."""
    from sqlmodel import select

    from gateway.core.db import Database
    from gateway.data import auth, models

    db = Database.from_settings(_settings())
    password = auth.one_time_password()
    now = dt.datetime.now(dt.timezone.utc)
    try:
        with db.unit_of_work() as session:
            user = session.exec(select(models.StaffUser).where(models.StaffUser.email == email.strip().lower())).first()
            if user is None:
                typer.echo(f"no account {email}", err=True)
                raise typer.Exit(1)
            auth.reset_password(session, user, auth.hash_password(password), now=now)
            auth.audit(session, None, action="reset", entity="staff", entity_id=user.email, after={"via": "cli"}, now=now)
    finally:
        db.dispose()
    typer.echo(f"{email}: one-time password {password} (shown only now; to be changed at the next sign-in)")


def _show(text: str, *, ended: bool, columns: int | None = None) -> None:
    """The screen in a box that fits the terminal: lines longer than the terminal is wide are
    wrapped at word boundaries (a handset wraps them too). The footer says whether the phone
    waits for an answer; the CON/END protocol word is the aggregator's, not the screen's."""
    import shutil
    import textwrap

    columns = columns or shutil.get_terminal_size((80, 24)).columns
    inner = max(20, min(columns, 100) - 4)
    lines = [part for line in text.split("\n") for part in (textwrap.wrap(line, inner) or [""])]
    width = max(24, *(len(line) for line in lines))
    typer.echo("+" + "-" * (width + 2) + "+")
    for line in lines:
        typer.echo(f"| {line.ljust(width)} |")
    footer = f" {'session ended' if ended else 'answer expected'} - {len(text)} chars "
    typer.echo("+" + footer.center(width + 2, "-") + "+")


def main(argv: Optional[list[str]] = None) -> None:
    from gateway.core.startup import explain

    try:
        app(argv)
    except Exception as exc:
        line = explain(exc, database_url=_database_url_of_environment())
        if line is None:
            raise
        typer.echo(f"gateway: {line}", err=True)
        raise SystemExit(2) from None


def _database_url_of_environment() -> str | None:
    try:
        return _settings().database_url
    except Exception:
        return None


if __name__ == "__main__":
    main()
