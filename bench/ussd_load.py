"""USSD load benchmark: the real gateway against a bare FastAPI endpoint, same uvicorn set-up.

    .venv/bin/python bench/ussd_load.py [--sessions 50] [--duration 20] [--warmup 3] ...

What it does, in one run:

1. Makes a temporary directory with a fresh SQLite database, runs `gateway migrate` and
   `gateway seed-demo` on it (GATEWAY_DATABASE_URL, GATEWAY_LOG_LEVEL=WARNING).
2. Starts two servers, each one uvicorn process with the same options and no access log:
   the gateway (gateway.app:app_factory) and bench/bare_app.py (reads the form, answers a
   constant "CON ..." screen). `gateway serve` is not used because it runs uvicorn with
   log_level="info", which writes one access line per request; the command line is printed.
3. Drives each server in turn with --sessions concurrent virtual handsets (closed loop, no think
   time unless --think-ms). Each one dials journeys one after another: browsing a price
   (sometimes the best markets first, or the market's trend and forecast), all markets with
   paging (98), a demand offer up to END, reading tips with 98, subscribing to an alert. Every journey is a new sessionId and a phone number drawn from a pool (--phones), so
   callers are new at first (language choice) and known later. Hops are sequential within a
   session and each sends the full `text` so far, as Africa's Talking does. The virtual handset
   reads each screen (options, "98.Suite") and checks that it shows what the journey expects.
4. Prints requests, errors, req/s and p50/p90/p99 latency for both, the throughput ratio, and
   PASS/FAIL for the targets. Exit status 0 unless a server failed to start.

The load generator shares the machine with the servers. The CPU used by the server process and
by the load generator during the measured window is printed, so that a client-bound figure can
be told apart from a server-bound one; --client-procs K spreads the load over K processes.
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

P99_TARGET_MS = 50.0
P99_TARGET_SESSIONS = 50
RATIO_TARGET = 40.0

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

    def new_client(connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(base_url=spec.url, limits=limits, timeout=spec.timeout)

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
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


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
    def __init__(self, name: str, app: str, extra: list[str], env: dict, logdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            sys.executable, "-m", "uvicorn", app, "--factory", *extra,
            "--host", "127.0.0.1", "--port", str(self.port), *UVICORN_OPTIONS,
        ]  # fmt: skip
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


def verdict(r: Result, cores: int) -> str:
    if r.server_cpu is not None and r.server_cpu >= 90:
        return "server-bound (its one process is using a full core)"
    if r.client_cpu_max >= 90:
        return "LOAD GENERATOR-BOUND: the server had spare CPU; its figure is a lower bound"
    if r.machine_busy is not None and r.machine_busy >= 90:
        return "machine-bound: all cores busy (server, load generator, kernel)"
    return "neither process saturated a core (waiting on I/O, locks or threads)"


def print_paced(r: Result) -> None:
    errors = sum(r.errors.values())
    print()
    print("paced run (sessions pause between inputs like people on handsets):")
    print(
        f"  gateway: {r.requests} requests, {errors} errors, {r.rps:.1f} req/s, "
        f"p50 {r.p50:.1f} ms, p90 {r.p90:.1f} ms, p99 {r.p99:.1f} ms"
    )
    ok = r.p99 < P99_TARGET_MS and not errors
    print(
        f"  target p99 < {P99_TARGET_MS:.0f} ms at {P99_TARGET_SESSIONS} concurrent sessions on SQLite "
        f"(paced): p99 = {r.p99:.1f} ms  {'PASS' if ok else 'FAIL'}"
    )


def print_report(args, bare: Result, gw: Result, cores: int, counts: dict, log_errors: list) -> None:
    print()
    header = f"{'server':<8} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
    header += f"{'p99 ms':>8}  {'server CPU':>10} {'client CPU':>10} {'machine':>8}"
    print(header)
    print("-" * len(header))
    for r in (bare, gw):
        server_cpu = "?" if r.server_cpu is None else f"{r.server_cpu:.0f}%"
        machine = "?" if r.machine_busy is None else f"{r.machine_busy:.0f}%"
        print(
            f"{r.name:<8} {r.requests:>9} {sum(r.errors.values()):>7} {r.rps:>9.1f} "
            f"{r.p50:>8.1f} {r.p90:>8.1f} {r.p99:>8.1f}  {server_cpu:>10} {r.client_cpu:>9.0f}% {machine:>8}"
        )
    print(
        "(server/client CPU: % of one core over the measured window, client = all load-generator\n"
        f" processes; machine: % of all {cores} cores busy)"
    )
    print()
    for r in (bare, gw):
        print(f"{r.name}: {verdict(r, cores)}")
        if r.machine_busy is not None and r.server_cpu is not None:
            other = r.machine_busy * cores - r.server_cpu - r.client_cpu
            if other > 15:
                print(
                    f"  other processes (and the kernel) used about {other:.0f}% of a core during this"
                    " window: the figures are disturbed"
                )
    for r in (bare, gw):
        if r.errors:
            print(f"{r.name} errors by kind:")
            for kind, n in r.errors.most_common():
                print(f"  {n:>7}  {kind}")
            for sample in r.samples:
                print(f"    e.g. {sample}")
    total = sum(gw.journeys.values())
    mix = ", ".join(f"{k} {gw.journeys[k]}" for k in JOURNEYS)
    print(f"gateway journeys completed in the window: {total} ({mix})")
    if gw.sessions:
        print(
            f"gateway sessions started: {gw.sessions}, of which new callers (language choice): "
            f"{gw.new_callers} ({100.0 * gw.new_callers / gw.sessions:.0f}%)"
        )
    if counts:
        print("gateway database afterwards: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if log_errors:
        print(f"gateway log: {len(log_errors)} ERROR/exception lines, e.g.:")
        for line in log_errors[:3]:
            print(f"  {line[:160]}")
    ratio = 100.0 * gw.rps / bare.rps if bare.rps else math.nan

    print()
    print(f"throughput gateway/bare: {gw.rps:.1f} / {bare.rps:.1f} req/s = {ratio:.1f}%")
    print()
    print("targets:")
    p99_ok = gw.p99 < P99_TARGET_MS and not gw.errors
    where = "" if args.sessions == P99_TARGET_SESSIONS else f" [measured at {args.sessions} sessions]"
    errs = "" if not gw.errors else f", but {sum(gw.errors.values())} errors"
    print(
        f"  p99 < {P99_TARGET_MS:.0f} ms at {P99_TARGET_SESSIONS} concurrent sessions on SQLite, "
        f"saturated (no pauses): p99 = {gw.p99:.1f} ms{errs}{where}  {'PASS' if p99_ok else 'FAIL'}"
    )
    print(
        f"  throughput >= {RATIO_TARGET:.0f}% of bare: {ratio:.1f}%  "
        f"{'PASS' if ratio >= RATIO_TARGET else 'FAIL'}"
    )
    print()
    print(f"notes: the machine has {cores} core(s), shared by the server under test and the load generator.")
    per_req = []
    for r in (bare, gw):
        if r.requests:
            server_ms = "?"
            if r.server_cpu is not None:
                server_ms = f"{10.0 * r.server_cpu * args.duration / r.requests:.2f}"
            client_ms = 10.0 * r.client_cpu * args.duration / r.requests
            per_req.append(f"{r.name} server {server_ms} ms, client {client_ms:.2f} ms")
    if per_req:
        print("  CPU per request: " + "; ".join(per_req))
    if bare.requests and gw.requests and bare.server_cpu and gw.server_cpu:
        bare_ms = bare.server_cpu / bare.rps
        gw_ms = gw.server_cpu / gw.rps
        print(
            f"  Server CPU per request, gateway vs bare: {gw_ms / bare_ms:.1f}x; with a load generator that\n"
            f"  kept both servers' one core busy, the ratio would be about {100.0 * bare_ms / gw_ms:.0f}%."
        )
    if bare.client_cpu_max >= 90:
        tips = []
        if args.pool == "shared":
            tips.append("--pool per-session")
        if args.client_procs < cores:
            tips.append(f"--client-procs {args.client_procs + 1}")
        print(
            "  The bare run was limited by the load generator, not by uvicorn: the bare req/s is a lower\n"
            "  bound, so the gateway/bare ratio above is flattering."
            + (f"\n  Compare with {' and/or '.join(tips)}." if tips else "")
        )
    if gw.client_cpu_max >= 90:
        print("  The gateway run was limited by the load generator: the gateway figures are lower bounds.")
    if args.think_ms == 0 and gw.rps:
        print(
            f"  Closed loop without think time: each session sends its next hop as soon as the reply\n"
            f"  arrives, so mean latency = sessions / throughput ({args.sessions} / {gw.rps:.0f} req/s = "
            f"{1000.0 * args.sessions / gw.rps:.0f} ms for the gateway).\n"
            f"  A p99 under {P99_TARGET_MS:.0f} ms at {args.sessions} such sessions needs well over "
            f"{1000.0 * args.sessions / P99_TARGET_MS:.0f} req/s. Real handsets\n"
            "  pause for seconds between inputs: see --think-ms."
        )
    if args.think_ms > 0:
        print(
            "  With think time the servers only answer the load offered, so the throughput ratio says\n"
            "  little; run without --think-ms for capacity."
        )
    if args.pool == "shared" and args.sessions > 10:
        print(
            "  httpx's shared pool costs more client CPU per request as it grows (encode/httpx#3215);\n"
            "  --pool per-session gives the same number of connections at a fraction of the client CPU."
        )


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="bench/ussd_load.py",
        description=(
            "Load-test the Sugu USSD webhook (real gateway on a fresh SQLite database) against a bare "
            "FastAPI endpoint served the same way, and check the targets: p99 < 50 ms at 50 concurrent "
            "sessions, throughput >= 40% of bare. Prints figures; exits 0 unless a server failed to start."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--sessions", type=int, default=50, help="concurrent simulated USSD sessions (virtual handsets)")
    add("--duration", type=float, default=20.0, help="measured seconds per server")
    add("--warmup", type=float, default=3.0, help="seconds of load before measuring, per server")
    add("--client-procs", type=int, default=2, help="load-generator processes (results are summed)")
    add(
        "--pool",
        choices=["shared", "per-session"],
        default="per-session",
        help="shared: one httpx.AsyncClient per load-generator process, pool limit = its sessions; "
        "per-session: one AsyncClient (one connection) per session, much cheaper in client CPU "
        "(httpx's shared pool costs more CPU per request as it grows, encode/httpx#3215)",
    )
    add("--phones", type=int, default=2000, help="size of the callers' phone number pool")
    add("--think-ms", type=float, default=0.0, help="mean pause between a reply and the next input (0: none)")
    add(
        "--paced-think-ms",
        type=float,
        default=3000.0,
        help="after the saturation runs, run the gateway again with handsets pausing this long on "
        "average between inputs (as people do) and check the p99 target there (0: skip)",
    )
    add("--timeout", type=float, default=30.0, help="HTTP timeout per request, seconds")
    add("--seed", type=int, default=1, help="random seed of the journeys")
    add("--show-journeys", action="store_true", help="first dial each journey once and print every screen")
    add("--keep-tmp", action="store_true", help="keep the temporary directory (database, server logs)")
    args = parser.parse_args(argv)
    if min(args.sessions, args.client_procs, args.phones) < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--sessions, --duration, --client-procs and --phones must be positive, --warmup >= 0")
    return args


def _sigterm(_signum, _frame):
    raise KeyboardInterrupt


def interruptible() -> None:
    """SIGTERM and SIGINT end a benchmark like Ctrl-C, so that its `finally` stops the servers it
    started (SIGINT even when started with SIGINT ignored). Shared by the benchmarks."""
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv=None) -> int:
    args = parse_args(argv)
    interruptible()
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="sugu-bench-"))
    db_path = tmp / "bench.db"
    env = dict(os.environ)
    env.update(GATEWAY_DATABASE_URL=f"sqlite:///{db_path}", GATEWAY_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               GATEWAY_DEV_MODE="true")  # hops posted without a webhook secret
    env.pop("GATEWAY_LOG_JSON", None)
    servers: list[Server] = []
    try:
        print("Sugu USSD load benchmark")
        print(
            f"  {args.sessions} concurrent sessions, warmup {args.warmup:g} s + {args.duration:g} s measured"
            f" per server, {args.client_procs} load-generator process(es), {args.phones} phone numbers, "
            f"think time {args.think_ms:g} ms, {cores} CPU core(s)"
        )
        print(f"  database: {env['GATEWAY_DATABASE_URL']} (gateway migrate + seed-demo)")
        prepare_database(env)
        gateway = Server("gateway", "gateway.app:app_factory", [], env, tmp)
        bare = Server("bare", "bare_app:app_factory", ["--app-dir", str(BENCH_DIR)], env, tmp)
        servers = [bare, gateway]
        print(f"  gateway: {gateway.display()}")
        print(
            "           (uvicorn directly, not `gateway serve`: that runs uvicorn with log_level=\"info\",\n"
            "            which writes an access line per request; otherwise the same options)"
        )
        print(f"  bare:    {bare.display()}")
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()

        if args.show_journeys:
            show_journeys(gateway.url, args.seed)

        results = {}
        for server in servers:
            strict = server is gateway
            print(f"\n{server.name}: {args.warmup:g} s warmup + {args.duration:g} s measured ...", flush=True)
            meters: list[CpuMeter] = []

            def on_go(t_go: float, pid: int = server.proc.pid) -> None:
                # The server's CPU over the same window as the requests counted.
                w0 = t_go + args.warmup
                meters.append(CpuMeter(pid, w0, w0 + args.duration))
                meters[-1].start()

            run = run_load(args, server.url, strict, on_go)
            meters[0].join(timeout=5)
            result = merge(server.name, run, args.duration, meters[0])
            results[server.name] = result
            print(
                f"  {result.requests} requests, {sum(result.errors.values())} errors, "
                f"{result.rps:.1f} req/s, p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms"
            )
            if server.proc.poll() is not None:
                print(f"  {server.name} exited during the run!\n{server.log_tail()}")
            time.sleep(1.0)

        paced = None
        if args.paced_think_ms > 0:
            paced_args = argparse.Namespace(**{**vars(args), "think_ms": args.paced_think_ms})
            print(
                f"\ngateway, paced: {args.sessions} sessions pausing ~{args.paced_think_ms / 1000:g} s between "
                f"inputs: {args.warmup:g} s warmup + {args.duration:g} s measured ...",
                flush=True,
            )
            meter: list[CpuMeter] = []

            def on_go_paced(t_go: float, pid: int = gateway.proc.pid) -> None:
                meter.append(CpuMeter(pid, t_go + args.warmup, t_go + args.warmup + args.duration))
                meter[-1].start()

            run = run_load(paced_args, gateway.url, True, on_go_paced)
            meter[0].join(timeout=5)
            paced = merge("gateway (paced)", run, args.duration, meter[0])

        for server in servers:
            server.stop()
        log_errors = [
            line
            for line in gateway.log_path.read_text(errors="replace").splitlines()
            if " ERROR " in line or line.startswith("ERROR:") or "Traceback" in line
        ]
        print_report(args, results["bare"], results["gateway"], cores, database_counts(db_path), log_errors)
        if paced is not None:
            print_paced(paced)
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
        if args.keep_tmp:
            print(f"temporary directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
