"""USSD load benchmark: the real gateway against a bare FastAPI endpoint, same uvicorn set-up.

    .venv/bin/python bench/ussd_load.py [--rounds 2] [--duration 15] [--rates 100,300,600] ...

What it does, in one run:

1. Makes a temporary directory with a fresh SQLite database, runs `gateway migrate` and
   `gateway seed-demo` on it (GATEWAY_DATABASE_URL, GATEWAY_LOG_LEVEL=WARNING; the per-phone hop
   limit raised, since 1,000 callers at machine speed dial faster than handsets can).
2. Starts two servers, each one uvicorn process with the same options and no access log:
   the gateway (gateway.app:app_factory) and bench/bare_app.py (reads the form, answers a
   constant "CON ..." screen).
3. Saturated comparison with wrk (a C load generator, so that the servers are the limit, not the
   client; installed by scripts/install-wrk when missing): the journeys of the Python client
   below are walked once, reading the screens, to find input paths valid for the demo data
   (prices, "where to sell", trend, all markets with paging, a demand offer, tips, a
   subscription); a generated Lua script replays them as Africa's Talking posts them (form fields,
   `text` = all inputs joined by `*`), a new sessionId every journey: returning callers from a
   pool of --phones numbers (each registered first: it dialled once and chose French) and a
   share of new callers (--new-callers, 20%: a number never seen, choosing the language first).
   Gateway and bare alternate (--rounds times each); printed per
   run: req/s, latency, server CPU per hop (/proc/<pid>/stat of the uvicorn process), non-2xx,
   bad replies; then gateway / bare.
4. Paced runs with wrk (each connection a handset pausing --paced-think-ms on average between a
   reply and its next input, through the script's delay(); wrk starts a request's clock when it
   writes it): p50/p90/p99 and server CPU per hop at each of --rates hops/s, gateway and bare
   side by side. The target is judged on these: the Python client below adds its own latency
   (bare's p99 at 300 hops/s was 16.9 ms through it on an idle machine).
5. Paced runs with the Python client (the same pacing, reading each screen and checking it):
   p50/p90/p99, and the screens that were not what the journey expected.
6. Prints PASS/FAIL for the targets of issue 17: gateway >= 0.5 x bare req/s; paced p99 < 15 ms
   at 300 hops/s. Exit status 0 unless a server failed to start.

The load generators share the machine with the servers: the load average is printed with each
run; compare only figures from the same run.
"""


from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PATH = "/webhooks/at/ussd"
SERVICE_CODE = "*123#"
NETWORK_CODE = "61002"

RATIO_TARGET = 0.5  # issue 17: gateway >= 0.5 x bare req/s (wrk)
P99_TARGET_MS = 15.0  # paced, at 300 hops/s

# Same uvicorn options for both servers. `gateway serve` uses workers=1, proxy_headers=True,
# log_level="info" (which includes access lines); here: warning and no access log.
UVICORN_OPTIONS = ["--workers", "1", "--proxy-headers", "--log-level", "warning", "--no-access-log"]

# ---------------------------------------------------------------------------------------------
# Journeys: generators that yield the next input and receive the reply it produced.
# ---------------------------------------------------------------------------------------------

_OPTION = re.compile(r"^(\d+)\. ", re.M)
_MORE = re.compile(r"(^|\s)98\.")
LANGUAGE_SCREEN = "Choisir la langue"
APOLOGIES = ("Desole, le service a un probleme", "Haketo, baara in ma se ka ke sisan")


class JourneyError(Exception):
    """The reply is well formed but is not the screen the journey expected."""


@dataclass
class Ctx:
    rng: random.Random
    strict: bool  # check screen contents (gateway); the bare server always shows the same screen

    def expect(self, reply: str, *fragments: str) -> None:
        if not self.strict:
            return
        missing = [f for f in fragments if f not in reply]
        if missing:
            raise JourneyError(f"expected {missing!r} in {reply[:80]!r}")

    def pick(self, reply: str, *, at_least: int = 1, fallback: int = 1) -> str:
        """One of the numbered options the screen shows (>= at_least)."""
        shown = [n for n in map(int, _OPTION.findall(reply)) if n >= at_least]
        if not shown:
            if self.strict:
                raise JourneyError(f"no option >= {at_least} in {reply[:80]!r}")
            return str(fallback)
        return str(self.rng.choice(shown))


def has_more(reply: str) -> bool:
    return bool(_MORE.search(reply))


def choose_crop(ctx: Ctx, reply: str):
    """On a crop list (9 per page): usually pick from the first page, sometimes page on first."""
    if has_more(reply) and ctx.rng.random() < 0.2:
        reply = yield "98"
    return (yield ctx.pick(reply))


def j_price_browse(ctx: Ctx):
    r = yield "1"
    ctx.expect(r, "Prix: choisir un produit")
    r = yield from choose_crop(ctx, r)
    ctx.expect(r, "choisir un marche", "1. Tous les marches", "2. Ou vendre")
    if ctx.rng.random() < 0.3:  # where to sell: markets ranked by price
        r = yield "2"
        ctx.expect(r, "meilleurs prix d'abord")
        r = yield "0"
    r = yield ctx.pick(r, at_least=3, fallback=3)
    ctx.expect(r, " - ")  # "Tomate - Sikasso" (or "no price yet" with the same title)
    if ctx.rng.random() < 0.3 and "2. Tendance" in r:  # trend and forecast (the heaviest screen)
        r = yield "2"
        ctx.expect(r, " - ")
        r = yield "0"
    r = yield "0"  # back to the market list
    ctx.expect(r, "choisir un marche")
    r = yield ctx.pick(r, at_least=3, fallback=4)
    ctx.expect(r, " - ")
    r = yield "00"  # main menu, then hang up
    ctx.expect(r, "1. Prix du marche")


def j_all_markets(ctx: Ctx):
    r = yield "1"
    ctx.expect(r, "Prix: choisir un produit")
    r = yield from choose_crop(ctx, r)
    ctx.expect(r, "1. Tous les marches")
    r = yield "1"
    ctx.expect(r, ", F/")  # "Oignon, F/kg:"
    pages = 0
    while has_more(r) and pages < 4:
        r = yield "98"
        ctx.expect(r, ", F/")
        pages += 1
    if ctx.strict and pages == 0:
        raise JourneyError("all-markets list fitted on one page: no paging exercised")


def j_demand_offer(ctx: Ctx):
    r = yield "2"
    ctx.expect(r, "Demandes des acheteurs")
    r = yield ctx.pick(r)
    ctx.expect(r, "1. Je peux fournir")
    r = yield "1"
    ctx.expect(r, "Combien de kg")
    r = yield str(ctx.rng.choice([100, 250, 500, 800, 1000, 1500, 2000]))
    ctx.expect(r, "Confirmer l'offre", "1. Oui")
    r = yield "1"
    if ctx.strict and not (r.startswith("END ") and "Merci" in r):
        raise JourneyError(f"offer not confirmed with END: {r[:80]!r}")


def j_tips(ctx: Ctx):
    r = yield "3"
    ctx.expect(r, "Conseils", "1. Bonnes pratiques")
    r = yield str(ctx.rng.randint(1, 3))
    r = yield ctx.pick(r)  # a crop, or "all crops"
    if _OPTION.search(r):  # several tips for that crop: a list to choose from
        r = yield ctx.pick(r)
    for _ in range(2):  # read on
        if not has_more(r):
            break
        r = yield "98"


def j_subscribe(ctx: Ctx):
    r = yield "4"
    ctx.expect(r, "Alertes SMS", "2. ")
    r = yield "2"
    ctx.expect(r, "Alerte pour quel produit?")
    r = yield from choose_crop(ctx, r)
    ctx.expect(r, "quel marche?")
    r = yield ctx.pick(r)
    ctx.expect(r, "Abonnement enregistre.")
    r = yield "1"  # my list now shows it
    ctx.expect(r, "Mes abonnements")
    if ctx.strict and "Aucun abonnement" in r:
        raise JourneyError("subscription missing from my list")


JOURNEYS = {  # name: (journey, weight)
    "prices": (j_price_browse, 30),
    "all-markets": (j_all_markets, 20),
    "offer": (j_demand_offer, 15),
    "tips": (j_tips, 20),
    "subscribe": (j_subscribe, 15),
}


# ---------------------------------------------------------------------------------------------
# Load generator (one process; --client-procs runs several and sums them)
# ---------------------------------------------------------------------------------------------


@dataclass
class Stats:
    requests: int = 0  # completed inside the measured window
    latencies: list = field(default_factory=list)  # ms, requests inside the window
    errors: Counter = field(default_factory=Counter)
    error_samples: list = field(default_factory=list)
    journeys: Counter = field(default_factory=Counter)  # completed, inside the window
    new_callers: int = 0  # sessions that began with the language choice
    sessions: int = 0
    cpu_seconds: float = 0.0  # this process, during the window

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "latencies": self.latencies,
            "errors": dict(self.errors),
            "error_samples": self.error_samples[:5],
            "journeys": dict(self.journeys),
            "new_callers": self.new_callers,
            "sessions": self.sessions,
            "cpu_seconds": self.cpu_seconds,
        }


@dataclass
class LoadSpec:
    url: str
    users: list  # global indexes of the virtual users this process runs
    proc: int
    t_go: float  # wall clock: users start
    warmup: float
    duration: float
    phones: int
    seed: int
    strict: bool
    think_ms: float
    timeout: float
    pool: str  # "shared": one AsyncClient for all sessions; "per-session": one each


def phone_number(i: int) -> str:
    return f"+2237{i:07d}"  # +22370000000 ... valid Malian mobile numbers


async def _load(spec: LoadSpec) -> dict:
    import httpx

    w0 = spec.t_go + spec.warmup
    w1 = w0 + spec.duration
    stats = Stats()
    names = list(JOURNEYS)
    weights = [JOURNEYS[n][1] for n in names]

    tls = ssl.create_default_context()

    def new_client(connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        # One TLS context for all (plain HTTP here, but httpx builds one per client otherwise:
        # ~10 ms of CPU each, which delayed the first hops of hundreds of paced handsets).
        return httpx.AsyncClient(base_url=spec.url, limits=limits, timeout=spec.timeout, verify=tls)

    # Shared (default): one client whose pool holds one connection per session. Per-session: each
    # virtual handset has its own client and connection (same number of connections in all).
    async with new_client(len(spec.users)) as shared:

        async def hop(client: httpx.AsyncClient, session_id: str, phone: str, text: str) -> str | None:
            form = {
                "sessionId": session_id,
                "serviceCode": SERVICE_CODE,
                "phoneNumber": phone,
                "networkCode": NETWORK_CODE,
                "text": text,
            }
            kind = None
            started = time.perf_counter()
            try:
                response = await client.post(PATH, data=form)
                reply = response.text
                if response.status_code != 200:
                    kind = f"HTTP {response.status_code}"
                elif not reply.startswith(("CON ", "END ")):
                    kind = "reply not CON/END"
                elif reply.startswith("END ") and any(a in reply for a in APOLOGIES):
                    kind = "apology END (server-side failure)"
            except httpx.HTTPError as exc:
                reply = ""
                kind = f"transport {exc.__class__.__name__}"
            elapsed = (time.perf_counter() - started) * 1000.0
            done = time.time()
            if w0 <= done <= w1:
                stats.requests += 1
                stats.latencies.append(elapsed)
                if kind:
                    stats.errors[kind] += 1
                    if len(stats.error_samples) < 5:
                        stats.error_samples.append(f"{kind}: text={text!r} reply={reply[:100]!r}")
            return None if kind else reply

        def fail(kind: str, text: str, reply: str) -> None:
            """A reply that was well formed but wrong; counted on the request that produced it."""
            if w0 <= time.time() <= w1:
                stats.errors[kind] += 1
                if len(stats.error_samples) < 5:
                    stats.error_samples.append(f"{kind}: text={text!r} reply={reply[:100]!r}")

        async def user(index: int) -> None:
            if spec.pool == "shared":
                await handset(index, shared)
            else:
                async with new_client(1) as own:
                    await handset(index, own)

        async def think(rng: random.Random) -> None:
            if spec.think_ms:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * spec.think_ms / 1000.0)

        async def handset(index: int, client: httpx.AsyncClient) -> None:
            rng = random.Random(spec.seed * 1_000_003 + index)
            if spec.think_ms:  # spread the first dials instead of a burst
                await asyncio.sleep(rng.uniform(0, spec.think_ms / 1000.0))
            serial = 0
            while time.time() < w1:
                serial += 1
                session_id = f"ATUid_bench_{index}_{serial}"
                phone = phone_number(rng.randrange(spec.phones))
                name = rng.choices(names, weights)[0]
                ctx = Ctx(rng, spec.strict)
                inputs: list[str] = []
                stats.sessions += 1
                reply = await hop(client, session_id, phone, "")
                if reply is None:
                    continue
                if LANGUAGE_SCREEN in reply:
                    stats.new_callers += 1
                    await think(rng)
                    inputs.append("1")  # French; creates the caller
                    reply = await hop(client, session_id, phone, "1")
                    if reply is None:
                        continue
                journey = JOURNEYS[name][0](ctx)
                try:
                    value = next(journey)
                    while True:
                        if time.time() >= w1:
                            break
                        await think(rng)
                        inputs.append(value)
                        text = "*".join(inputs)
                        reply = await hop(client, session_id, phone, text)
                        if reply is None:
                            break
                        try:
                            value = journey.send(reply)
                        except StopIteration:
                            if w0 <= time.time() <= w1:
                                stats.journeys[name] += 1
                            break
                        if reply.startswith("END ") and spec.strict:
                            fail("unexpected END", text, reply)
                            break
                except JourneyError as exc:
                    fail(f"wrong screen ({name})", "*".join(inputs), str(exc))
                finally:
                    journey.close()

        async def meter() -> None:
            await asyncio.sleep(max(0.0, w0 - time.time()))
            cpu0 = time.process_time()
            await asyncio.sleep(max(0.0, w1 - time.time()))
            stats.cpu_seconds = time.process_time() - cpu0

        await asyncio.sleep(max(0.0, spec.t_go - time.time()))
        meter_task = asyncio.create_task(meter())
        tasks = [asyncio.create_task(user(i)) for i in spec.users]
        try:
            await meter_task
            await asyncio.wait(tasks, timeout=spec.timeout + 5)  # let the last hops finish
        finally:  # also on Ctrl-C: stop every handset before the client closes
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                stats.errors[f"load generator {outcome.__class__.__name__}"] += 1
    return stats.as_dict()


def _client_process(spec: LoadSpec, ready, go, t_go, results) -> None:
    """Entry point of a --client-procs worker (spawned)."""
    try:
        ready.put(spec.proc)
        go.wait()
        spec.t_go = t_go.value
        results.put(asyncio.run(_load(spec)))
    except KeyboardInterrupt:
        pass


def run_load(args, url: str, strict: bool, on_go) -> dict:
    """Drive one server; returns merged client results plus the window times."""
    users = list(range(args.sessions))
    procs = max(1, min(args.client_procs, args.sessions))
    specs = [
        LoadSpec(
            url=url,
            users=users[k::procs],
            proc=k,
            t_go=0.0,
            warmup=args.warmup,
            duration=args.duration,
            phones=args.phones,
            seed=args.seed,
            strict=strict,
            think_ms=args.think_ms,
            timeout=args.timeout,
            pool=args.pool,
        )
        for k in range(procs)
    ]
    if procs == 1:
        specs[0].t_go = time.time() + 0.2
        on_go(specs[0].t_go)
        return {"t_go": specs[0].t_go, "parts": [asyncio.run(_load(specs[0]))]}

    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ready, results, go, t_go = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    workers = [ctx.Process(target=_client_process, args=(s, ready, go, t_go, results)) for s in specs]
    try:
        for w in workers:
            w.start()
        for _ in workers:
            ready.get(timeout=60)
        t_go.value = time.time() + 0.5
        on_go(t_go.value)
        go.set()
        wait = args.warmup + args.duration + args.timeout + 60
        parts = [results.get(timeout=wait) for _ in workers]
        for w in workers:
            w.join(timeout=10)
        return {"t_go": t_go.value, "parts": parts}
    finally:
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


def show_journeys(url: str, seed: int) -> None:
    """Each journey once, for a new caller, every screen printed (to check the journeys by eye)."""
    import httpx

    with httpx.Client(base_url=url, timeout=30) as client:
        for number, (name, (journey_fn, _)) in enumerate(JOURNEYS.items()):
            phone = phone_number(9_000_000 + number)  # outside the pool: a new caller
            session_id = f"ATUid_show_{name}"
            inputs: list[str] = []
            print(f"\n=== journey {name} ({phone})")

            def hop() -> str:
                form = {"sessionId": session_id, "serviceCode": SERVICE_CODE, "phoneNumber": phone,
                        "networkCode": NETWORK_CODE, "text": "*".join(inputs)}  # fmt: skip
                response = client.post(PATH, data=form)
                print(f"--- text={'*'.join(inputs)!r} -> HTTP {response.status_code}")
                print(response.text)
                return response.text

            reply = hop()
            if LANGUAGE_SCREEN in reply:
                inputs.append("1")
                reply = hop()
            journey = journey_fn(Ctx(random.Random(seed), True))
            try:
                value = next(journey)
                while True:
                    inputs.append(value)
                    reply = hop()
                    value = journey.send(reply)
            except StopIteration:
                print(f"=== {name}: as expected")
            except JourneyError as exc:
                print(f"=== {name}: WRONG SCREEN: {exc}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid: int) -> int | None:
    """CPU of `pid` and its living children (uvicorn --workers: a supervisor and its workers)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None
    for child in _children(pid):
        ticks += cpu_ticks(child) or 0
    return ticks


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except (OSError, ValueError):
        pass
    return found


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, IndexError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return total - idle, total


class CpuMeter(threading.Thread):
    """CPU seconds a process used between two wall-clock instants, and how busy the machine was."""

    def __init__(self, pid: int, start: float, end: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.start_at, self.end_at = pid, start, end
        self.seconds: float | None = None
        self.machine_busy: float | None = None  # % of all cores

    def run(self) -> None:
        time.sleep(max(0.0, self.start_at - time.time()))
        a, ma = cpu_ticks(self.pid), machine_ticks()
        time.sleep(max(0.0, self.end_at - time.time()))
        b, mb = cpu_ticks(self.pid), machine_ticks()
        if a is not None and b is not None:
            self.seconds = (b - a) / os.sysconf("SC_CLK_TCK")
        if ma and mb and mb[1] > ma[1]:
            self.machine_busy = 100.0 * (mb[0] - ma[0]) / (mb[1] - ma[1])


class ServerFailed(RuntimeError):
    pass


class Server:
    def __init__(self, name: str, app: str, extra: list[str], env: dict, logdir: Path, workers: int = 1) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            sys.executable, "-m", "uvicorn", app, "--factory", *extra,
            "--host", "127.0.0.1", "--port", str(self.port), *UVICORN_OPTIONS,
        ]  # fmt: skip
        if workers > 1:
            self.cmd[self.cmd.index("--workers") + 1] = str(workers)
        self.env = env
        self.log_path = logdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def display(self) -> str:
        shown = [Path(sys.executable).relative_to(REPO) if _under(sys.executable, REPO) else sys.executable]
        for part in self.cmd[1:]:
            shown.append(Path(part).relative_to(REPO) if _under(part, REPO) else part)
        return " ".join(map(str, shown))

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            # Own session: a Ctrl-C in the terminal reaches us, and we stop the server ourselves.
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 30.0) -> None:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                status = self.proc.returncode
                raise ServerFailed(f"{self.name} exited with status {status}\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ServerFailed(f"{self.name} did not answer /healthz within {timeout:.0f} s\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown (runs the lifespan end)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _under(path: str, root: Path) -> bool:
    try:
        Path(path).relative_to(root)
        return os.path.sep in path
    except ValueError:
        return False


def gateway_command() -> list[str]:
    script = Path(sys.executable).parent / "gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


def prepare_database(env: dict) -> None:
    for step in (["migrate"], ["seed-demo"]):
        done = subprocess.run(gateway_command() + step, cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise ServerFailed(f"gateway {' '.join(step)} failed (exit {done.returncode}):\n{tail}")


class PostgresDatabase:
    """A fresh PostgreSQL database for one run, made and dropped through an admin URL."""

    TABLES = ("producer", "ussd_session", "offer", "subscription")

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.name = f"sugu_bench_{os.getpid()}"

    def _admin(self):
        import psycopg

        return psycopg.connect(self.admin.set(drivername="postgresql").render_as_string(hide_password=False),
                               autocommit=True)  # fmt: skip

    def create(self) -> str:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self.admin.set(database=self.name).render_as_string(hide_password=False)

    def counts(self) -> dict:
        import psycopg

        url = self.admin.set(drivername="postgresql", database=self.name).render_as_string(hide_password=False)
        try:
            with psycopg.connect(url) as conn:
                return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in self.TABLES}
        except psycopg.Error as exc:
            return {"error": str(exc)}

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def database_counts(db_path: Path) -> dict:
    counts = {}
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            for table in ("producer", "ussd_session", "offer", "subscription"):
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.Error as exc:
        counts["error"] = str(exc)
    return counts


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def percentile(sorted_values: list, q: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))  # nearest rank
    return sorted_values[rank - 1]


@dataclass
class Result:
    name: str
    requests: int
    errors: Counter
    samples: list
    rps: float
    p50: float
    p90: float
    p99: float
    journeys: Counter
    sessions: int
    new_callers: int
    client_cpu: float  # % of one core, all load-generator processes together
    client_cpu_max: float  # % of one core, the busiest load-generator process
    server_cpu: float | None  # % of one core
    machine_busy: float | None  # % of all cores


def merge(name: str, run: dict, duration: float, meter: CpuMeter) -> Result:
    parts = run["parts"]
    latencies = sorted(x for p in parts for x in p["latencies"])
    errors, journeys = Counter(), Counter()
    samples: list = []
    for p in parts:
        errors.update(p["errors"])
        journeys.update(p["journeys"])
        samples += p["error_samples"]
    requests = sum(p["requests"] for p in parts)
    return Result(
        name=name,
        requests=requests,
        errors=errors,
        samples=samples[:5],
        rps=requests / duration,
        p50=percentile(latencies, 50),
        p90=percentile(latencies, 90),
        p99=percentile(latencies, 99),
        journeys=journeys,
        sessions=sum(p["sessions"] for p in parts),
        new_callers=sum(p["new_callers"] for p in parts),
        client_cpu=100.0 * sum(p["cpu_seconds"] for p in parts) / duration,
        client_cpu_max=100.0 * max(p["cpu_seconds"] for p in parts) / duration,
        server_cpu=None if meter.seconds is None else 100.0 * meter.seconds / duration,
        machine_busy=meter.machine_busy,
    )


# ---------------------------------------------------------------------------------------------
# wrk: the saturated comparison (a C load generator: the server, not the client, is the limit)
# ---------------------------------------------------------------------------------------------

WRK_INPUTS = 4  # inputs after the dial: five hops a journey (six for a new caller: language first)


def ensure_wrk() -> str:
    """wrk on PATH, installed from Debian by scripts/install-wrk when missing (needs root or sudo)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("  wrk not found: running scripts/install-wrk", flush=True)
    done = subprocess.run([str(REPO / "scripts" / "install-wrk")], cwd=REPO)
    found = shutil.which("wrk")
    if done.returncode != 0 or not found:
        raise ServerFailed("wrk is missing and scripts/install-wrk could not install it (see above)")
    return found


def derive_paths(url: str, seed: int, per_weight: float = 0.4) -> list[tuple[str, ...]]:
    """Fixed input paths valid for the demo data, found by walking the journeys once and reading
    the screens (strict checks): the first WRK_INPUTS inputs of each, for a returning caller.
    wrk cannot read screens, so it replays these. Weighted like the Python client's journeys."""
    import httpx

    paths: list[tuple[str, ...]] = []
    phones = iter(range(9_500_000, 9_600_000))  # outside every pool; one per attempt (rate limit)
    with httpx.Client(base_url=url, timeout=30) as client:
        def hop(session_id: str, phone: str, inputs: list[str]) -> str:
            form = {"sessionId": session_id, "serviceCode": SERVICE_CODE, "phoneNumber": phone,
                    "networkCode": NETWORK_CODE, "text": "*".join(inputs)}  # fmt: skip
            reply = client.post(PATH, data=form).text
            if not reply.startswith(("CON ", "END ")) or any(a in reply for a in APOLOGIES):
                raise JourneyError(f"bad reply {reply[:80]!r}")
            return reply

        for name, (journey_fn, weight) in JOURNEYS.items():
            wanted, found, attempt = max(1, round(weight * per_weight)), set(), 0
            while len(found) < wanted and attempt < 10 * wanted:
                attempt += 1
                session_id = f"ATUid_paths_{name}_{attempt}"
                phone = phone_number(next(phones))
                if LANGUAGE_SCREEN in hop(session_id + "_lang", phone, []):
                    hop(session_id + "_lang", phone, ["1"])  # French: then a returning caller
                inputs: list[str] = []
                journey = journey_fn(Ctx(random.Random(seed * 7919 + attempt), True))
                try:
                    value = next(journey)
                    hop(session_id, phone, inputs)
                    while len(inputs) < WRK_INPUTS:
                        inputs.append(value)
                        value = journey.send(hop(session_id, phone, inputs))
                except StopIteration:
                    pass
                except JourneyError as exc:
                    if os.environ.get("BENCH_DEBUG"):
                        print(f"  path {name} {inputs}: {exc}")
                finally:
                    journey.close()
                if len(inputs) == WRK_INPUTS:
                    found.add(tuple(inputs))
            paths += sorted(found) * max(1, round(weight / max(1, len(found)) / 5))
    if not paths:
        raise ServerFailed("no valid journey found on the demo data")
    return paths


WRK_LUA = r"""-- Generated by bench/ussd_load.py: USSD journeys posted as Africa's Talking does.
-- Each thread keeps `slots` journeys open and sends their hops in turn (round robin), so a
-- session's next hop goes out only after `slots` - 1 other requests: with slots = 4 x its
-- connections, its previous hop has (in practice) been answered, as on a handset.
-- A journey: a new sessionId, the dial (text empty), then one of the paths below. A share of
-- the journeys are new callers (a number never seen: the language choice "1" first); the others
-- are returning callers from the pool of `nphones` numbers, registered before the runs.
local paths = {
%(paths)s
}
local counter, threads = 0, {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

-- Globals: done() reads them from each thread with thread:get.
bad, journeys = 0, 0
local nphones, nthreads, slots, new_base, new_share, serial, fresh = 1000, 1, 100, 0, 0.2, 0, 0
local queue, pos = {}, 0
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}

local function new_journey()
  serial = serial + 1
  local n, inputs = 0, {}
  if math.random() < new_share then
    fresh = fresh + 1
    n = new_base + id * 100000 + fresh
    inputs[1] = "1"
  else
    n = id + nthreads * math.random(0, math.floor(nphones / nthreads) - 1)
  end
  for _, v in ipairs(paths[math.random(#paths)]) do inputs[#inputs + 1] = v end
  local sid = string.format("ATUid_wrk_%%d_%%d_%%d", new_base, id, serial)
  return {sid = sid, phone = string.format("%%%%2B2237%%07d", n), inputs = inputs, k = 0}
end

function init(args)
  nphones, nthreads, slots = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  new_base, new_share = tonumber(args[4]), tonumber(args[5])
  math.randomseed(new_base + id)
  for i = 1, slots do queue[i] = new_journey() end
end

function request()
  pos = pos %% slots + 1
  local j = queue[pos]
  local text = table.concat(j.inputs, "%%2A", 1, j.k)
  j.k = j.k + 1
  if j.k > #j.inputs then
    queue[pos] = new_journey()
    journeys = journeys + 1
  end
  local body = "sessionId=" .. j.sid .. "&serviceCode=%%2A123%%23&phoneNumber=" .. j.phone
    .. "&networkCode=61002&text=" .. text
  return wrk.format("POST", "%(path)s", headers, body)
end

function response(status, headers, body)
  local head = string.sub(body, 1, 4)
  if status == 200 and ((head ~= "CON " and head ~= "END ") or string.find(body, "probleme", 1, true)
      or string.find(body, "Haketo", 1, true) or string.find(body, "Trop de requetes", 1, true)) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local b, j = 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    j = j + t:get("journeys")
  end
  io.write(string.format("SUGU bad_replies=%%d journeys=%%d\n", b, j))
end
"""


def register_callers(url: str, phones: int) -> None:
    """The returning callers of the wrk runs: each pool number dials once and chooses French."""
    import httpx

    print(f"  registering {phones} returning callers ...", flush=True)
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(phones):
            form = {"sessionId": f"ATUid_register_{i}", "serviceCode": SERVICE_CODE, "phoneNumber": phone_number(i),
                    "networkCode": NETWORK_CODE, "text": ""}  # fmt: skip
            if LANGUAGE_SCREEN in client.post(PATH, data=form).text:
                client.post(PATH, data={**form, "text": "1"})


# Paced like handsets: wrk asks the script how long each connection waits before its next
# request and starts the request's clock only when it is written, so the pause is not latency.
WRK_LUA_PACED = r"""
-- Paced: each connection is a handset pausing between a reply and its next input (uniform
-- 0.5x-1.5x the mean); wrk times a request from when it is written, after the pause.
local think_ms = %(think_ms)d
function delay()
  return math.random(math.floor(think_ms / 2), math.floor(think_ms * 3 / 2))
end
"""


def write_lua(paths: list[tuple[str, ...]], where: Path, think_ms: float = 0) -> Path:
    rows = ",\n".join("  {" + ", ".join(f'"{v}"' for v in p) + "}" for p in paths)
    script = where / ("journeys_paced.lua" if think_ms else "journeys.lua")
    text = WRK_LUA % {"paths": rows, "path": PATH}
    if think_ms:
        text += WRK_LUA_PACED % {"think_ms": round(think_ms)}
    script.write_text(text)
    return script


@dataclass
class WrkRun:
    name: str
    requests: int
    seconds: float
    rps: float
    p50: float  # ms
    p99: float
    p90: float
    non2xx: int
    socket_errors: int
    bad_replies: int
    server_cpu_s: float | None
    load: str

    @property
    def cpu_ms_per_hop(self) -> float:
        return math.nan if self.server_cpu_s is None or not self.requests else 1000.0 * self.server_cpu_s / self.requests


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(wrk: str, server: "Server", script: Path, args, base: int, duration: float,
            connections: int | None = None) -> WrkRun:
    """Saturated (`connections` None: --connections, each thread keeping 4 journeys a connection
    open), or paced (a script with delay(): one journey a connection, `connections` handsets)."""
    paced = connections is not None
    connections = connections or args.connections
    per_thread = max(1, connections // args.threads)
    slots = per_thread if paced else 4 * per_thread
    cmd = [
        wrk, f"-t{args.threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", f"--timeout={args.timeout:g}s",
        "-s", str(script), server.url + PATH, "--", str(args.phones), str(args.threads), str(slots), str(base),
        str(args.new_callers),
    ]  # fmt: skip
    before = cpu_ticks(server.proc.pid)
    done = subprocess.run(cmd, capture_output=True, text=True)
    after = cpu_ticks(server.proc.pid)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise ServerFailed(f"wrk failed ({done.returncode}):\n{out}\n{done.stderr}")
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    requests, seconds = int(m.group(1)), _ms(m.group(2), m.group(3)) / 1000.0
    lat = dict(re.findall(r"^\s+(50|90|99)(?:\.000)?%\s+([\d.]+\w+)", out, re.M))

    def pct(key: str) -> float:
        found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", lat.get(key, ""))
        return _ms(*found.groups()) if found else math.nan

    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = re.search(r"SUGU bad_replies=(\d+)", out)
    cpu = None if before is None or after is None else (after - before) / os.sysconf("SC_CLK_TCK")
    return WrkRun(
        name=server.name, requests=requests, seconds=seconds, rps=requests / seconds,
        p50=pct("50"), p99=pct("99"), p90=pct("90"), non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(map(int, sock.groups())) if sock else 0, bad_replies=int(bad.group(1)) if bad else 0,
        server_cpu_s=cpu, load=load_average(),
    )  # fmt: skip


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="bench/ussd_load.py",
        description=(
            "Load-test the Sugu USSD webhook (real gateway on a fresh SQLite database) against a bare "
            "FastAPI endpoint served the same way: saturated with wrk, alternating the two, then paced "
            "like handsets with the Python client. Targets: gateway >= 0.5 x bare req/s; paced p99 < 15 ms "
            "at 300 hops/s. Prints figures; exits 0 unless a server failed to start."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--rounds", type=int, default=2, help="wrk rounds; each runs the gateway then bare")
    add("--duration", type=float, default=15.0, help="seconds of each wrk run")
    add("--threads", type=int, default=2, help="wrk threads")
    add("--connections", type=int, default=50, help="wrk connections")
    add("--phones", type=int, default=1000, help="returning callers: the pool of phone numbers (registered first)")
    add("--new-callers", type=float, default=0.2, help="wrk: share of journeys dialled by a new caller")
    add("--rates", default="100,300,600", help="paced runs: hops/s offered (comma-separated; empty: skip)")
    add("--paced-think-ms", type=float, default=2000.0,
        help="paced runs: mean pause between a reply and the next input (uniform 0.5x-1.5x); "
        "sessions = rate x this pause")  # fmt: skip
    add("--paced-duration", type=float, default=15.0, help="measured seconds of each paced run")
    add("--warmup", type=float, default=3.0, help="seconds of load before measuring (paced runs; wrk warm-up)")
    add("--client-procs", type=int, default=2, help="paced runs: load-generator processes")
    add("--pool", choices=["shared", "per-session"], default="per-session", help=argparse.SUPPRESS)
    add("--timeout", type=float, default=30.0, help="HTTP timeout per request, seconds (paced runs)")
    add("--seed", type=int, default=1, help="random seed of the journeys")
    add("--show-journeys", action="store_true", help="first dial each journey once and print every screen")
    add("--keep-tmp", action="store_true", help="keep the temporary directory (database, server logs, Lua script)")
    add("--workers", type=int, default=1, help="server processes, for the gateway and bare alike (uvicorn --workers)")
    add("--postgres", metavar="ADMIN_URL", default="",
        help="run the gateway on a fresh PostgreSQL database created through this URL (e.g. "
        "postgresql://postgres@127.0.0.1:5432/test) and dropped afterwards, instead of SQLite")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates: numbers separated by commas")
    if not 0 <= args.new_callers <= 1:
        parser.error("--new-callers: a share between 0 and 1")
    if min(args.rounds, args.threads, args.connections, args.phones, args.client_procs, args.workers) < 1 or args.duration <= 0:
        parser.error("--rounds, --threads, --connections, --phones, --client-procs and --duration must be positive")
    return args


def _sigterm(_signum, _frame):
    raise KeyboardInterrupt


def interruptible() -> None:
    """SIGTERM and SIGINT end a benchmark like Ctrl-C, so that its `finally` stops the servers it
    started (SIGINT even when started with SIGINT ignored). Shared by the benchmarks."""
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def print_wrk(runs: list[WrkRun]) -> float:
    print()
    header = (f"{'round':>5} {'server':<8} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'CPU ms/hop':>10} {'non-2xx':>8} {'sock err':>8} {'bad reply':>9}  load avg")  # fmt: skip
    print(header)
    print("-" * len(header))
    for i, r in enumerate(runs):
        print(
            f"{i // 2 + 1:>5} {r.name:<8} {r.requests:>9} {r.rps:>9.1f} {r.p50:>8.1f} {r.p99:>8.1f} "
            f"{r.cpu_ms_per_hop:>10.3f} {r.non2xx:>8} {r.socket_errors:>8} {r.bad_replies:>9}  {r.load}"
        )
    gw = [r for r in runs if r.name == "gateway"]
    bare = [r for r in runs if r.name == "bare"]
    pairs = [f"{g.rps / b.rps:.2f}" for g, b in zip(gw, bare) if b.rps]
    gw_rps = sum(r.requests for r in gw) / sum(r.seconds for r in gw)
    bare_rps = sum(r.requests for r in bare) / sum(r.seconds for r in bare)
    ratio = gw_rps / bare_rps if bare_rps else math.nan
    cpu = [sum(r.server_cpu_s or 0 for r in rs) * 1000.0 / max(1, sum(r.requests for r in rs)) for rs in (gw, bare)]
    print()
    print(f"gateway / bare: {gw_rps:.0f} / {bare_rps:.0f} req/s = {ratio:.2f} (per round: {', '.join(pairs)})")
    print(f"server CPU per hop: gateway {cpu[0]:.3f} ms, bare {cpu[1]:.3f} ms ({cpu[0] / cpu[1]:.1f}x)")
    print("(bad reply: HTTP 200 whose body is not CON/END, is the apology or the rate limit; the bare server always says CON)")
    return ratio


def print_wrk_paced(rows: list[tuple[float, int, WrkRun]]) -> float | None:
    print()
    print("paced with wrk (handsets pause between inputs; a C client, so its own latency stays out of the figures):")
    header = (f"{'offered':>8} {'server':<8} {'handsets':>8} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
              f"{'CPU ms/hop':>10} {'errors':>7} {'load avg':>15}")  # fmt: skip
    print(header)
    print("-" * len(header))
    p99_300 = None
    for rate, handsets, r in rows:
        errors = r.non2xx + r.socket_errors + r.bad_replies
        print(f"{rate:>8.0f} {r.name:<8} {handsets:>8} {r.rps:>8.1f} {r.p50:>8.1f} {r.p90:>8.1f} {r.p99:>8.1f} "
              f"{r.cpu_ms_per_hop:>10.3f} {errors:>7} {r.load:>15}")  # fmt: skip
        if r.name == "gateway" and rate == 300:
            p99_300 = r.p99 if not errors else math.inf
    return p99_300


def print_paced(rows: list[tuple[float, int, Result]]) -> float | None:
    print()
    print("paced (handsets pause between inputs; Python client, closed loop per session):")
    header = f"{'offered':>8} {'server':<8} {'sessions':>8} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}"
    print(header)
    print("-" * len(header))
    p99_300 = None
    for rate, sessions, r in rows:
        errors = sum(r.errors.values())
        print(f"{rate:>8.0f} {r.name:<8} {sessions:>8} {r.rps:>8.1f} {r.p50:>8.1f} {r.p90:>8.1f} {r.p99:>8.1f} {errors:>7}")
        if r.name == "gateway" and rate == 300:
            p99_300 = r.p99 if not errors else math.inf
        for sample in r.samples[:2]:
            print(f"           e.g. {sample}")
    return p99_300


def main(argv=None) -> int:
    args = parse_args(argv)
    interruptible()
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="sugu-bench-"))
    db_path = tmp / "bench.db"
    env = dict(os.environ)
    env.update(GATEWAY_DATABASE_URL=f"sqlite:///{db_path}", GATEWAY_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               GATEWAY_DEV_MODE="true")  # hops posted without a webhook secret
    postgres = PostgresDatabase(args.postgres) if args.postgres else None
    if postgres is not None:
        env["GATEWAY_DATABASE_URL"] = postgres.create()
    # 1,000 callers at machine speed dial far more than a handset can (60 hops a minute each):
    # the per-phone limit would end their sessions and the bench would measure the refusal.
    env["GATEWAY_USSD_HOPS_PER_MINUTE"] = "1000000"
    env.pop("GATEWAY_LOG_JSON", None)
    servers: list[Server] = []
    try:
        print("Sugu USSD load benchmark")
        print(f"  {cores} CPU core(s), load average at start {load_average()}")
        wrk = ensure_wrk()
        print(f"  database: {env['GATEWAY_DATABASE_URL']} (gateway migrate + seed-demo)")
        prepare_database(env)
        gateway = Server("gateway", "gateway.app:app_factory", [], env, tmp, args.workers)
        bare = Server("bare", "bare_app:app_factory", ["--app-dir", str(BENCH_DIR)], env, tmp, args.workers)
        servers = [gateway, bare]
        print(f"  gateway: {gateway.display()}")
        print("           (uvicorn directly, not `gateway serve`: that writes an access line per request)")
        print(f"  bare:    {bare.display()}")
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        if args.show_journeys:
            show_journeys(gateway.url, args.seed)

        paths = derive_paths(gateway.url, args.seed)
        script = write_lua(paths, tmp)
        print(f"  wrk: {wrk} -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency -s {script.name}"
              f" URL -- {args.phones} {args.threads} <journeys open per thread> <new callers' first number>"
              f" {args.new_callers:g}")  # fmt: skip
        print(f"  {len(paths)} journey paths (read from the screens once; returning callers), e.g.: "
              + "; ".join("*".join(p) for p in paths[:: max(1, len(paths) // 5)][:5]))

        register_callers(gateway.url, args.phones)
        # A short run each first (imports, caches, SQLite pages), not counted.
        for n, server in enumerate(servers):
            run_wrk(wrk, server, script, args, base=5_000_000 + n * 200_000, duration=args.warmup)
        runs: list[WrkRun] = []
        for k in range(args.rounds):
            for server in servers:
                print(f"  round {k + 1}: {server.name} ...", flush=True)
                # New callers' numbers: a range of their own per run, never seen before.
                base = 5_000_000 + (2 * k + 2 + servers.index(server)) * 200_000
                runs.append(run_wrk(wrk, server, script, args, base=base, duration=args.duration))
                time.sleep(1.0)
        ratio = print_wrk(runs)

        wrk_paced: list[tuple[float, int, WrkRun]] = []
        if args.rates:
            paced_script = write_lua(paths, tmp, think_ms=args.paced_think_ms)
        for n, rate in enumerate(args.rates):
            handsets = max(1, round(rate * args.paced_think_ms / 1000.0))
            for server in servers:
                print(f"  paced {rate:g} hops/s (wrk): {server.name}, {handsets} handsets ...", flush=True)
                base = 7_000_000 + (2 * n + servers.index(server)) * 200_000
                run = run_wrk(wrk, server, paced_script, args, base=base,
                              duration=args.warmup + args.paced_duration, connections=handsets)
                wrk_paced.append((rate, handsets, run))
                time.sleep(1.0)
        p99_300 = print_wrk_paced(wrk_paced) if wrk_paced else None

        paced_rows = []
        for rate in args.rates:
            sessions = max(1, round(rate * args.paced_think_ms / 1000.0))
            for server in servers:
                print(f"  paced {rate:g} hops/s: {server.name}, {sessions} sessions ...", flush=True)
                paced_args = argparse.Namespace(
                    **{**vars(args), "think_ms": args.paced_think_ms, "sessions": sessions, "duration": args.paced_duration}
                )
                meter: list[CpuMeter] = []

                def on_go(t_go: float, pid: int = server.proc.pid) -> None:
                    meter.append(CpuMeter(pid, t_go + args.warmup, t_go + args.warmup + args.paced_duration))
                    meter[-1].start()

                run = run_load(paced_args, server.url, server is gateway, on_go)
                meter[0].join(timeout=5)
                paced_rows.append((rate, sessions, merge(server.name, run, args.paced_duration, meter[0])))
        python_p99_300 = print_paced(paced_rows) if paced_rows else None

        for server in servers:
            server.stop()
        log_errors = [
            line
            for line in gateway.log_path.read_text(errors="replace").splitlines()
            if " ERROR " in line or line.startswith("ERROR:") or "Traceback" in line
        ]
        print()
        counts = postgres.counts() if postgres is not None else database_counts(db_path)
        print("gateway database afterwards: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if log_errors:
            print(f"gateway log: {len(log_errors)} ERROR/exception lines, e.g.:")
            for line in log_errors[:3]:
                print(f"  {line[:160]}")
        print(f"load average at the end: {load_average()} ({cores} cores, shared with the load generators)")
        print()
        print("targets:")
        backend = "PostgreSQL" if postgres is not None else "SQLite"
        print(f"  gateway >= 0.5 x bare req/s (wrk, {backend}, {args.workers} worker(s), one run): {ratio:.2f}  {'PASS' if ratio >= RATIO_TARGET else 'FAIL'}")
        if p99_300 is not None:
            ok = p99_300 < P99_TARGET_MS
            print(f"  paced p99 < 15 ms at 300 hops/s (wrk): {p99_300:.1f} ms  {'PASS' if ok else 'FAIL'}"
                  + (f"  (Python client: {python_p99_300:.1f} ms)" if python_p99_300 is not None else ""))
        return 0
    except ServerFailed as exc:
        print(f"\nserver failed to start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        for server in servers:
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {server.name}: {exc}", file=sys.stderr)
        if postgres is not None:
            postgres.drop()
        if args.keep_tmp:
            print(f"temporary directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
