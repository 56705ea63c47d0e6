"""Soak test: a bounded run of mixed USSD, inbound SMS, delivery reports and price broadcasts.

    .venv/bin/python bench/soak.py [--minutes 10] [--ussd-sessions 20] [--sms-per-second 2]
                                   [--producers 5000] [--broadcast-every 3] [--keep-tmp]
                                   [--no-memory-probe] [--tracemalloc FRAMES]

A benchmark that prints figures, not a test (CI does not run it). Everything stays on 127.0.0.1.

What it does, in one run:

1. Setup (not measured): a temporary directory with a fresh SQLite database, `gateway migrate` and
   `gateway seed-demo` (as bench/ussd_load.py does); then --producers subscribed producers (the
   population of bench/broadcast.py: ~60 % French / 40 % Bambara, 1-3 crops at their home
   market) and a few enumerators (role `enumerator`). The fake Africa's Talking server is started
   as a separate process (`python -m gateway.aggregators.fake_at`), then the real gateway with
   uvicorn (same options as bench/ussd_load.py: one process, no access log), its broadcaster
   running in-process, sending to the fake: GATEWAY_AT_API_KEY=soak, GATEWAY_AT_BASE_URL=<fake>,
   GATEWAY_QUIET_HOURS="" (alerts go out whatever the hour), GATEWAY_LOG_LEVEL=WARNING. The daily
   budgets and the per-producer cap are raised so that every publication reaches everyone: the
   soak is about load, not about cost controls.
2. For --minutes, all at once:
   - --ussd-sessions virtual handsets walking the journeys of bench/ussd_load.py (prices, all
     markets with paging, a demand offer, tips, subscribing), pausing 1-4 s between inputs as
     people do; every screen is checked; an end-of-session event is posted after each session;
   - --sms-per-second inbound keyword SMS (PRIX TOMATE SIKASSO, songo tamati, ALERTE OIGNON
     MOPTI, STOP, START, AIDE, ...) from producers and unknown numbers, and every
     --report-every seconds a price report from an enumerator (P TOMATE SIKASSO <price>, mostly
     within the usual range, so published with its own alert, sometimes an outlier, so held);
   - every --broadcast-every minutes a price publication: a new price today for every traded
     crop and market, and `publish_alerts` for them, through the gateway's own code from this
     process against the same SQLite file (as staff publishing would), which alerts every
     subscribed producer;
   - delivery reports posted back for a sample (--dlr-share) of the messages the fake accepted
     (ids read from GET <fake>/_fake/messages), 2-15 s after they were sent;
   - /metrics scraped every 15 s, the gateway's RSS (VmRSS), threads, file descriptors and CPU
     sampled every 5 s.
   Every 30 s a line: requests by kind, errors, p50/p99 of USSD hops and SMS webhooks in that
   window, RSS, outbox (queued / sent so far), CPU.
3. Drain (bounded): traffic stops; the outbox must empty and the delivery reports go out.
4. Summary: the table over time, errors (target: none), p99 trend (first vs last third; the verdict
   leaves out the 30 s after each price batch, whose spike would otherwise decide every third's
   p99), memory growth from the end of the first minute to the end (target "flat": < 10 % or
   < 20 MB; the growth after the first price batch is printed too),
   broadcast completion (every alert sent, none twice: the fake's log against the outbox), and
   the consistency of SMS, reports and delivery reports with the database.
5. What the gateway's memory is made of, at minute 1, 30 s after each price batch and at the end:
   bench/memprobe/sitecustomize.py is loaded into the gateway (PYTHONPATH) and samples from
   inside every 5 s: resident anonymous / file-backed memory, Python's allocator (pymalloc arenas
   and what its objects use), glibc's heap (mallinfo2: used, free but kept, mmapped) and SQLite's
   own allocations (sqlite3_memory_used). With --tracemalloc FRAMES also the Python allocation
   sites that grew most from minute 1 to the end (slow: the gateway runs several times slower,
   so its latencies and errors then say nothing).

Ctrl-C (or SIGTERM) stops the servers and removes the temporary directory. Exit status 0 unless
the setup failed (2) or the run was interrupted (130).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _p in (str(REPO), str(BENCH_DIR)):  # bench/ first: its helpers are imported by module name
    if _p not in sys.path:
        sys.path.insert(0, _p)

import broadcast as bench_broadcast  # noqa: E402  bench/broadcast.py: population, publication, fake
import ussd_load  # noqa: E402  bench/ussd_load.py: journeys, uvicorn server, database preparation
from ussd_load import APOLOGIES, JOURNEYS, LANGUAGE_SCREEN, Ctx, JourneyError  # noqa: E402

TZ_NAME = "Africa/Bamako"
WINDOW_S = 30.0
SAMPLE_S = 5.0
METRICS_S = 15.0
FAKE_POLL_S = 10.0
DRAIN_TIMEOUT_S = 180.0
HTTP_TIMEOUT_S = 30.0
MEMORY_PCT_TARGET = 10.0
MEMORY_MB_TARGET = 20.0
ENUMERATORS = 10
BUSY_TEXT = "Trop de requetes"  # error.busy, folded: the per-phone hop limit answered

# Inbound SMS: (text, expected intent, weight).
SMS_MIX = [
    ("PRIX TOMATE SIKASSO", "price", 20),
    ("songo tamati", "price", 10),
    ("prix oignon mopti", "price", 8),
    ("Prix pomme de terre Bamako", "price", 5),
    ("TOMATE", "price", 5),
    ("prix tomat sikaso", "price", 5),
    ("ALERTE OIGNON MOPTI", "subscribe", 8),
    ("alerte tomate sikasso", "subscribe", 5),
    ("STOP", "stop", 4),
    ("START", "start", 4),
    ("AIDE", "help", 6),
    ("DƐMƐ", "help", 2),
]
# Enumerators' reports: (crop code, market code, how they write it).
REPORT_PAIRS = [
    ("tomato", "sikasso", "TOMATE SIKASSO"),
    ("onion", "mopti", "OIGNON MOPTI"),
    ("potato", "sikasso", "POMME DE TERRE SIKASSO"),
    ("cabbage", "bamako", "CHOU BAMAKO"),
    ("shallot", "koutiala", "ECHALOTE KOUTIALA"),
]
REPORT_OUTLIER_SHARE = 0.25
# Delivery reports: AT status, failure reason, share.
DLR_MIX = [("Success", "", 92), ("Buffered", "", 4), ("Failed", "DeliveryFailure", 4)]
SENT_STATES = ("sent", "delivered", "undeliverable")


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def fmt_t(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def pct(values: list, q: float) -> float:
    return ussd_load.percentile(sorted(values), q) if values else math.nan


def ms(value: float) -> str:
    return "-" if value is None or math.isnan(value) else (f"{value:.0f}" if value >= 100 else f"{value:.1f}")


def proc_status(pid: int) -> dict:
    """VmRSS (kB) and Threads of a process, and its open file descriptors."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                out[key] = int(value.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        pass
    return out


def file_mb(path: Path) -> float:
    try:
        return path.stat().st_size / 1e6
    except OSError:
        return 0.0


_METRIC_LINE = re.compile(r'^(sugu_[a-z_]+)(?:\{([^}]*)\})?\s+([-+0-9.eEinfNa]+)$')


def parse_metrics(text: str) -> dict:
    out: dict = {"sms": {}, "errors": {}}
    for line in text.splitlines():
        match = _METRIC_LINE.match(line.strip())
        if not match:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        label = labels.split('"')[1] if '"' in labels else ""
        if name == "sugu_sms_messages":
            out["sms"][label] = int(value)
        elif name == "sugu_webhook_errors_total":
            out["errors"][label] = int(value)
        elif name == "sugu_outbox_depth":
            out["depth"] = int(value)
        elif name == "sugu_worker_lag_seconds":
            out["lag"] = value
    return out


def ro_connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


# ---------------------------------------------------------------------------------------------
# Setup: database, population, enumerators, phone pools
# ---------------------------------------------------------------------------------------------


def setup_population(db, args, rng: random.Random, now: dt.datetime) -> dict:
    """Producers (bench/broadcast.py's population), enumerators, and the phone pools of the run."""
    from sqlalchemy import insert
    from sqlmodel import select

    from gateway.core.phones import InvalidPhone, parse_phone
    from gateway.data import models

    ref = bench_broadcast.reference(db)
    population = bench_broadcast.populate(db, ref, args.producers, rng, now)
    with db.unit_of_work() as session:
        taken = set(session.exec(select(models.Producer.phone)).all())

    def fresh(candidates, k: int) -> list[str]:
        chosen = []
        for phone in candidates:
            if len(chosen) >= k:
                break
            try:
                phone = parse_phone(phone)
            except InvalidPhone:
                continue
            if phone not in taken:
                taken.add(phone)
                chosen.append(phone)
        return chosen

    # USSD callers: the numbers of bench/ussd_load.py (French or new callers: the journeys check
    # French screens), minus any number the population happened to draw (it may be Bambara).
    ussd_phones = fresh((ussd_load.phone_number(i) for i in range(10 * args.ussd_phones)), args.ussd_phones)
    enumerators = fresh((f"+22365{i:06d}" for i in range(1000)), ENUMERATORS)
    sms_new = fresh((f"+22366{i:06d}" for i in range(10_000)), 500)
    stamp = now.astimezone(dt.timezone.utc)
    rows = [
        {"phone": p, "language": "fr", "name": f"Enqueteur {i + 1}", "village": "", "region": "Sikasso",
         "cluster": "", "role": "enumerator", "opted_out": False, "created_at": stamp, "updated_at": stamp}
        for i, p in enumerate(enumerators)
    ]  # fmt: skip
    with db.unit_of_work() as session:
        session.connection().execute(insert(models.Producer.__table__), rows)
    others = set(ussd_phones) | set(enumerators) | set(sms_new)
    producer_phones = sorted(p for p in taken if p.startswith("+2237") and p not in others)
    return {
        "ref": ref,
        "population": population,
        "ussd_phones": ussd_phones,
        "enumerators": enumerators,
        "sms_producers": producer_phones,
        "sms_new": sms_new,
        "pairs": bench_broadcast.publication_pairs(ref, "all"),
    }


def report_specs(db_path: Path, ref: dict, today: dt.date) -> list[dict]:
    """Enumerator report pairs with the median of their last 8 weeks (what the gateway checks)."""
    specs = []
    since = (today - dt.timedelta(days=56)).isoformat()
    with ro_connect(db_path) as conn:
        for crop_code, market_code, label in REPORT_PAIRS:
            crop, market = ref["crops"].get(crop_code), ref["markets"].get(market_code)
            if crop is None or market is None or (crop.id, market.id) not in ref["traded"]:
                continue
            prices = [
                row[0]
                for row in conn.execute(
                    "SELECT price FROM price_observation WHERE crop_id=? AND market_id=? AND unit=? "
                    "AND status='published' AND observed_on >= ?",
                    (crop.id, market.id, crop.default_unit, since),
                )
            ]
            if len(prices) >= 2:
                step = 50 if crop.default_unit == "basket" else 5
                specs.append({"label": label, "pair": (crop.id, market.id), "median": statistics.median(prices),
                              "step": step})  # fmt: skip
    return specs


def broadcast_times(minutes: float, every: float) -> list[float]:
    """Publication times (seconds): every `every` minutes, the last at least a minute before the
    end so that it is sent within the run; one in the middle when the run is shorter."""
    if every <= 0:
        return []
    times, k = [], 1
    while every * k <= minutes - 1.0 + 1e-9:
        times.append(every * k * 60.0)
        k += 1
    return times or [minutes * 30.0]


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args, *, gateway, fake, db, db_path: Path, world: dict, reports: list[dict]):
        self.args = args
        self.gateway, self.fake, self.db, self.db_path = gateway, fake, db, db_path
        self.world, self.report_specs = world, reports
        self.duration = args.minutes * 60.0
        self.t0 = 0.0
        self.records: list[tuple[float, str, float, str | None]] = []  # (t, kind, ms, error)
        self.errors: Counter = Counter()
        self.samples: dict[str, list[str]] = defaultdict(list)
        self.procs: list[tuple] = []  # (t, gateway status dict, fake status dict, cpu ticks, wal MB)
        self.metrics: list[tuple[float, dict]] = []
        self.publications: list[dict] = []  # the bench's price batches
        self.sms_sent: dict[str, tuple[str, str, str]] = {}  # provider id: (phone, text, intent)
        self.reports: list[dict] = []
        self.sessions = Counter()
        self.journeys = Counter()
        self.dlr_posted: Counter = Counter()
        self.dlr_ids: dict[str, str] = {}  # message id: AT status posted
        self.fake_offset = 0
        self.fake_seen = 0
        self.window_rows: list[dict] = []
        self.traffic_over = False
        self.end_sample = None  # the last sample before the drain
        self.drain_outbox: float | None = None  # seconds after the traffic until the outbox was empty
        self.drain_s = 0.0
        self.fake_total = 0
        self.probe_path: Path | None = None  # bench/memprobe's output, when loaded
        self.probe_marked = False

    # -- bookkeeping ---------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def running(self) -> bool:
        return not self.traffic_over and self.now() < self.duration

    def add(self, kind: str, elapsed_ms: float, error: str | None, detail: str = "") -> None:
        self.records.append((self.now(), kind, elapsed_ms, error))
        if error:
            self.errors[error] += 1
            if len(self.samples[error]) < 3:
                self.samples[error].append(f"at {fmt_t(self.now())}: {detail}"[:220])

    async def send(self, kind: str, path: str, form: dict, *, check=None) -> str | None:
        """POST a form to the gateway; record latency and the error, if any. `check(reply)` may
        name an error in a 200 answer. Returns the reply, or None on error."""
        import httpx

        started = time.monotonic()
        error, reply = None, ""
        try:
            response = await self.client.post(path, data=form)
            reply = response.text
            if response.status_code != 200:
                error = f"{kind}: HTTP {response.status_code}"
            elif check is not None:
                error = check(reply)
        except httpx.HTTPError as exc:
            error = f"{kind}: transport {exc.__class__.__name__}"
        elapsed = (time.monotonic() - started) * 1000.0
        brief = {k: v for k, v in form.items() if k in ("text", "status", "sessionId")}
        self.add(kind, elapsed, error, f"{brief} -> {reply[:120]!r}")
        return None if error else reply

    # -- USSD handsets -------------------------------------------------------------------------

    @staticmethod
    def ussd_check(reply: str) -> str | None:
        if not reply.startswith(("CON ", "END ")):
            return "ussd: reply not CON/END"
        if reply.startswith("END ") and any(a in reply for a in APOLOGIES):
            return "ussd: apology END (Desole, server-side failure)"
        if reply.startswith("END ") and BUSY_TEXT in reply:
            return "ussd: rate limited (busy END)"
        return None

    async def hop(self, session_id: str, phone: str, text: str) -> str | None:
        form = {"sessionId": session_id, "serviceCode": ussd_load.SERVICE_CODE, "phoneNumber": phone,
                "networkCode": ussd_load.NETWORK_CODE, "text": text}  # fmt: skip
        return await self.send("ussd", ussd_load.PATH, form, check=self.ussd_check)

    async def handset(self, index: int) -> None:
        rng = random.Random(self.args.seed * 1_000_003 + index)
        names = list(JOURNEYS)
        weights = [JOURNEYS[n][1] for n in names]
        phones = self.world["ussd_phones"]
        await asyncio.sleep(rng.uniform(0, 4))
        serial = 0
        while self.running():
            serial += 1
            session_id = f"ATUid_soak_{index}_{serial}"
            phone = rng.choice(phones)
            name = rng.choices(names, weights)[0]
            inputs: list[str] = []
            hops, began, status = 0, time.monotonic(), "Incomplete"
            self.sessions["started"] += 1
            reply = await self.hop(session_id, phone, "")
            hops += 1
            ok = reply is not None
            if ok and LANGUAGE_SCREEN in reply:
                self.sessions["new callers"] += 1
                await asyncio.sleep(rng.uniform(1, 4))
                inputs.append("1")  # French; creates the caller
                reply = await self.hop(session_id, phone, "1")
                hops += 1
                ok = reply is not None
            if ok:
                journey = JOURNEYS[name][0](Ctx(rng, True))
                try:
                    value = next(journey)
                    while self.running():
                        await asyncio.sleep(rng.uniform(1, 4))
                        inputs.append(value)
                        text = "*".join(inputs)
                        reply = await self.hop(session_id, phone, text)
                        hops += 1
                        if reply is None:
                            break
                        try:
                            value = journey.send(reply)
                        except StopIteration:
                            self.journeys[name] += 1
                            status = "Success"
                            break
                        if reply.startswith("END "):
                            self.add("ussd-check", 0.0, "ussd: unexpected END", f"{name} {text!r} -> {reply[:100]!r}")
                            break
                except JourneyError as exc:
                    self.add("ussd-check", 0.0, f"ussd: wrong screen ({name})", f"{'*'.join(inputs)!r}: {exc}")
                finally:
                    journey.close()
            if status != "Success":
                status = "Failed" if not ok or reply is None else "Incomplete"
            self.sessions[status.lower()] += 1
            # Africa's Talking's end-of-session notification.
            event = {
                "sessionId": session_id, "phoneNumber": phone, "serviceCode": ussd_load.SERVICE_CODE,
                "networkCode": ussd_load.NETWORK_CODE, "status": status, "cost": "XOF 0.0000",
                "durationInMillis": str(int((time.monotonic() - began) * 1000)), "hopsCount": str(hops),
                "input": "*".join(inputs), "lastAppResponse": (reply or "")[:100], "errorMessage": "",
                "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            }  # fmt: skip
            await self.send("ussd-end", "/webhooks/at/ussd/events", event)
            await asyncio.sleep(rng.uniform(1, 4))  # the line is free; the next caller dials

    # -- inbound SMS -----------------------------------------------------------------------------

    async def sms_one(self, serial: int, phone: str, text: str, intent: str) -> None:
        provider_id = f"ATXid_soak_in_{serial:07d}"
        self.sms_sent[provider_id] = (phone, text, intent)
        form = {"id": provider_id, "from": phone, "to": "36123", "text": text, "networkCode": "61002",
                "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        await self.send("sms", "/webhooks/at/sms", form)

    async def sms_traffic(self) -> None:
        rng = random.Random(self.args.seed * 7 + 1)
        texts = [(t, i) for t, i, _ in SMS_MIX]
        weights = [w for *_, w in SMS_MIX]
        producers, new = self.world["sms_producers"], self.world["sms_new"]
        interval = 1.0 / self.args.sms_per_second if self.args.sms_per_second > 0 else None
        report_interval = self.args.report_every if self.report_specs else 0
        next_report = report_interval / 2 if report_interval else math.inf
        in_flight: set[asyncio.Task] = set()
        serial = 0
        next_at = rng.uniform(0, interval or 1)
        while self.running():
            due = min(next_at if interval else math.inf, next_report)
            if due == math.inf:
                break
            await asyncio.sleep(max(0.0, due - self.now()))
            if not self.running():
                break
            serial += 1
            if next_report <= due:
                next_report += report_interval
                task = asyncio.create_task(self.report_one(serial, rng))
            else:
                next_at += rng.expovariate(1.0 / interval)  # Poisson arrivals at the given rate
                text, intent = rng.choices(texts, weights)[0]
                phone = rng.choice(producers) if rng.random() < 0.7 or not new else rng.choice(new)
                task = asyncio.create_task(self.sms_one(serial, phone, text, intent))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if len(in_flight) > 200:  # the gateway is stuck: do not pile up requests
                await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        if in_flight:
            await asyncio.wait(in_flight, timeout=HTTP_TIMEOUT_S + 5)

    async def report_one(self, serial: int, rng: random.Random) -> None:
        spec = self.report_specs[len(self.reports) % len(self.report_specs)]
        outlier = rng.random() < REPORT_OUTLIER_SHARE
        factor = 4.0 if outlier else rng.uniform(0.85, 1.15)
        price = max(spec["step"], int(round(spec["median"] * factor / spec["step"])) * spec["step"])
        phone = self.world["enumerators"][len(self.reports) % len(self.world["enumerators"])]
        self.reports.append({"phone": phone, "pair": spec["pair"], "price": price,
                             "expect": "held" if outlier else "published", "t": self.now()})  # fmt: skip
        await self.sms_one(serial, phone, f"P {spec['label']} {price}", "report")

    # -- price publications --------------------------------------------------------------------

    async def publisher(self) -> None:
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(TZ_NAME)
        rng = random.Random(self.args.seed * 31 + 7)
        for at in broadcast_times(self.args.minutes, self.args.broadcast_every):
            await asyncio.sleep(max(0.0, at - self.now()))
            if not self.running():
                return
            started = time.monotonic()
            t = self.now()
            try:
                now = dt.datetime.now(tz)
                broadcast_id = await asyncio.to_thread(
                    bench_broadcast.publish, self.db, self.world["pairs"], rng, now
                )
                error = None
            except Exception as exc:  # database locked for too long, ...
                broadcast_id, error = None, f"publish: {exc.__class__.__name__}"
            elapsed = (time.monotonic() - started) * 1000.0
            self.add("publish", elapsed, error, "price batch")
            self.publications.append({"t": t, "id": broadcast_id, "ms": elapsed})
            print(f"  [{fmt_t(t)}] price batch published: {len(self.world['pairs'])} prices, "
                  f"broadcast #{broadcast_id} ({elapsed:.0f} ms)", flush=True)  # fmt: skip

    # -- delivery reports ----------------------------------------------------------------------

    async def fake_poller(self) -> None:
        """New messages accepted by the fake; a sample of them gets a delivery report later."""
        rng = random.Random(self.args.seed * 13 + 5)
        statuses = [(s, r) for s, r, _ in DLR_MIX]
        weights = [w for *_, w in DLR_MIX]
        seq = 0
        while True:
            await asyncio.sleep(FAKE_POLL_S)
            try:
                # Only what is new: the whole log (tens of thousands of messages) every 10 s
                # cost the machine more and more CPU, and the gateway's latencies rose with it.
                response = await self.fake_client.get("/_fake/messages", params={"offset": self.fake_offset})
                new = response.json()
            except Exception as exc:
                self.add("fake", 0.0, f"bench: fake log unreadable ({exc.__class__.__name__})")
                continue
            self.fake_offset += len(new)
            self.fake_seen = self.fake_offset
            for m in new:
                if rng.random() >= self.args.dlr_share:
                    continue
                status, reason = rng.choices(statuses, weights)[0]
                seq += 1
                due = self.now() + rng.uniform(2.0, 15.0)
                self.dlr_queue.put_nowait((due, seq, m["messageId"], m["number"], status, reason))

    async def dlr_poster(self) -> None:
        while True:
            due, _, message_id, phone, status, reason = await self.dlr_queue.get()
            try:
                await asyncio.sleep(max(0.0, due - self.now()))
                form = {"id": message_id, "status": status, "phoneNumber": phone, "networkCode": "61002",
                        "failureReason": reason, "retryCount": "0"}  # fmt: skip
                self.dlr_posted[status] += 1
                self.dlr_ids[message_id] = status
                await self.send("dlr", "/webhooks/at/sms/delivery", form)
            finally:
                self.dlr_queue.task_done()

    # -- sampling and the live table ------------------------------------------------------------

    def sample_procs(self) -> None:
        self.procs.append((
            self.now(), proc_status(self.gateway.proc.pid), proc_status(self.fake.proc.pid),
            ussd_load.cpu_ticks(self.gateway.proc.pid), file_mb(Path(str(self.db_path) + "-wal")),
        ))  # fmt: skip

    async def sampler(self) -> None:
        while True:
            self.sample_procs()
            if self.probe_path and self.now() >= 60.0 and not self.probe_marked:
                self.probe_marked = True
                Path(str(self.probe_path) + ".base").touch()  # bench/memprobe: the base snapshot
            await asyncio.sleep(SAMPLE_S)

    async def scrape(self) -> None:
        import httpx

        started = time.monotonic()
        try:
            response = await self.client.get("/metrics")
            error = None if response.status_code == 200 else f"metrics: HTTP {response.status_code}"
            if not error:
                self.metrics.append((self.now(), parse_metrics(response.text)))
        except httpx.HTTPError as exc:
            error = f"metrics: transport {exc.__class__.__name__}"
        self.add("metrics", (time.monotonic() - started) * 1000.0, error, "/metrics")

    async def scraper(self) -> None:
        while True:
            await self.scrape()
            await asyncio.sleep(METRICS_S)

    def window(self, k: int, start: float, end: float) -> dict:
        recs = [r for r in self.records if start <= r[0] < end]
        by_kind = Counter(r[1] for r in recs if r[1] != "ussd-check")
        lat = defaultdict(list)
        for _, kind, elapsed, _ in recs:
            lat[kind].append(elapsed)
        procs = [p for p in self.procs if p[0] < end + 1.0]
        last = procs[-1] if procs else None
        before = [p for p in self.procs if p[0] <= start + 1.0]
        cpu = None
        if last and before and last[3] is not None and before[-1][3] is not None and last[0] > before[-1][0]:
            cpu = 100.0 * (last[3] - before[-1][3]) / os.sysconf("SC_CLK_TCK") / (last[0] - before[-1][0])
        metrics = [m for t, m in self.metrics if t < end + 2.0]
        m = metrics[-1] if metrics else {}
        sms = m.get("sms", {})
        notes = [f"batch #{p['id']}" for p in self.publications if start <= p["t"] < end]
        reports = sum(1 for r in self.reports if start <= r["t"] < end)
        return {
            "k": k, "end": end, "kinds": by_kind, "errors": sum(1 for r in recs if r[3]),
            "ussd50": pct(lat["ussd"], 50), "ussd99": pct(lat["ussd"], 99),
            "sms50": pct(lat["sms"], 50), "sms99": pct(lat["sms"], 99), "dlr99": pct(lat["dlr"], 99),
            "rss": last[1].get("VmRSS", 0) / 1024 if last else math.nan,
            "threads": last[1].get("Threads") if last else None, "fds": last[1].get("fds") if last else None,
            "wal": last[4] if last else 0.0, "cpu": cpu,
            "queued": m.get("depth"), "sent": sum(sms.get(s, 0) for s in SENT_STATES) if sms else None,
            "notes": ", ".join(notes + ([f"{reports} report(s)"] if reports else [])),
        }  # fmt: skip

    HEADER = (
        f"{'time':>5} {'ussd':>5} {'sms':>4} {'dlr':>4} {'other':>5} {'err':>4} | {'ussd p50':>8} {'p99':>6} | "
        f"{'sms p50':>7} {'p99':>6} | {'dlr p99':>7} | {'RSS MB':>6} {'thr':>3} {'fds':>3} | {'queued':>6} "
        f"{'sent':>6} | {'CPU':>4} | notes"
    )

    @staticmethod
    def line(w: dict) -> str:
        kinds = w["kinds"]
        other = sum(n for kind, n in kinds.items() if kind not in ("ussd", "sms", "dlr"))
        queued = "-" if w["queued"] is None else str(w["queued"])
        sent = "-" if w["sent"] is None else str(w["sent"])
        cpu = "-" if w["cpu"] is None else f"{w['cpu']:.0f}%"
        return (
            f"{fmt_t(w['end']):>5} {kinds['ussd']:>5} {kinds['sms']:>4} {kinds['dlr']:>4} {other:>5} "
            f"{w['errors']:>4} | {ms(w['ussd50']):>8} {ms(w['ussd99']):>6} | {ms(w['sms50']):>7} "
            f"{ms(w['sms99']):>6} | {ms(w['dlr99']):>7} | {w['rss']:>6.1f} {w['threads'] or 0:>3} "
            f"{w['fds'] or 0:>3} | {queued:>6} {sent:>6} | {cpu:>4} | {w['notes']}"
        )

    async def reporter(self) -> None:
        k = 0
        n = math.ceil(self.duration / WINDOW_S - 1e-9)
        while k < n:
            end = min((k + 1) * WINDOW_S, self.duration)
            await asyncio.sleep(max(0.0, end - self.now() + 0.3))
            await self.scrape()  # the outbox as of the end of the window
            self.sample_procs()
            w = self.window(k, k * WINDOW_S, end)
            self.window_rows.append(w)
            print(self.line(w), flush=True)
            k += 1

    # -- main ------------------------------------------------------------------------------------

    async def run(self) -> None:
        import httpx

        # Idle connections are dropped after 2 s, before uvicorn closes them (its keep-alive timeout is
        # 5 s, httpx's default expiry too): reusing one as the server closes it fails the request
        # with a ReadError that says nothing about the gateway.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=2.0)
        self.client = httpx.AsyncClient(base_url=self.gateway.url, timeout=HTTP_TIMEOUT_S, limits=limits)
        self.fake_client = httpx.AsyncClient(base_url=self.fake.url, timeout=120.0)
        self.dlr_queue: asyncio.PriorityQueue = asyncio.PriorityQueue()
        background: list[asyncio.Task] = []
        traffic: list[asyncio.Task] = []
        try:
            self.t0 = time.monotonic()
            background = [asyncio.create_task(c) for c in (self.sampler(), self.scraper(), self.fake_poller())]
            background += [asyncio.create_task(self.dlr_poster()) for _ in range(4)]
            traffic = [asyncio.create_task(self.handset(i)) for i in range(self.args.ussd_sessions)]
            traffic += [asyncio.create_task(self.sms_traffic()), asyncio.create_task(self.publisher())]
            print(self.HEADER)
            print("-" * len(self.HEADER), flush=True)
            await self.reporter()
            self.traffic_over = True
            done, pending = await asyncio.wait(traffic, timeout=HTTP_TIMEOUT_S + 10)
            for task in done:
                if task.exception() is not None:
                    exc = task.exception()
                    self.add("bench", 0.0, f"bench: {exc.__class__.__name__}", "".join(
                        traceback.format_exception(exc))[-200:])  # fmt: skip
            for task in pending:
                task.cancel()
            self.end_sample = self.procs[-1] if self.procs else None
            if self.probe_marked:
                Path(str(self.probe_path) + ".diff").touch()  # bench/memprobe: compare with the base
            await self.drain()
        finally:
            for task in traffic + background:
                task.cancel()
            await asyncio.gather(*traffic, *background, return_exceptions=True)
            await self.client.aclose()
            await self.fake_client.aclose()

    def outbox_active(self) -> tuple[int, int]:
        with ro_connect(self.db_path) as conn:
            active = conn.execute("SELECT count(*) FROM sms_message WHERE status IN ('queued','sending')").fetchone()[0]
            pending = conn.execute(
                "SELECT count(*) FROM broadcast WHERE status IN ('pending','expanding','sending')"
            ).fetchone()[0]
        return active, pending

    async def drain(self) -> None:
        print(f"\ntraffic stopped at {fmt_t(self.now())}; draining the outbox and the delivery reports ...",
              flush=True)  # fmt: skip
        started = time.monotonic()
        self.drain_outbox = None
        while time.monotonic() - started < DRAIN_TIMEOUT_S:
            active, pending = await asyncio.to_thread(self.outbox_active)
            if not active and not pending:
                self.drain_outbox = time.monotonic() - started
                break
            await asyncio.sleep(1.0)
        # The last messages sent get their delivery reports too: one more look at the fake, then
        # wait for the reports queued (each is due at most 15 s after it was seen).
        await asyncio.sleep(FAKE_POLL_S + 1.0)
        try:
            await asyncio.wait_for(self.dlr_queue.join(), timeout=60.0)
        except asyncio.TimeoutError:
            self.add("bench", 0.0, "bench: delivery reports not all posted in time")
        await asyncio.sleep(1.0)
        self.drain_s = time.monotonic() - started
        print(f"  outbox {'empty after %.0f s' % self.drain_outbox if self.drain_outbox is not None else 'NOT EMPTY'}; "
              f"{sum(self.dlr_posted.values())} delivery reports posted; drain took {self.drain_s:.0f} s", flush=True)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# After the run: consistency with the database and the fake's log
# ---------------------------------------------------------------------------------------------


def final_checks(soak: Soak, fake_messages: list[dict]) -> dict:
    with ro_connect(soak.db_path) as conn:
        rows = conn.execute(
            "SELECT id, broadcast_id, kind, phone, part, text, status, provider_message_id, failure_reason "
            "FROM sms_message"
        ).fetchall()
        broadcasts = conn.execute(
            "SELECT id, kind, status, title, recipients, skipped, created_at, expanded_at, finished_at FROM broadcast"
        ).fetchall()
        inbound = {r[0]: r[1:] for r in conn.execute("SELECT provider_id, intent, note, id FROM sms_inbound")}
        reports = conn.execute(
            "SELECT status, count(*) FROM price_observation WHERE source LIKE 'sms:%' GROUP BY status"
        ).fetchall()
        last_sent = dict(conn.execute(
            "SELECT broadcast_id, max(sent_at) FROM sms_message WHERE broadcast_id IS NOT NULL GROUP BY broadcast_id"
        ).fetchall())  # fmt: skip
        sessions = conn.execute("SELECT count(*), sum(errors), sum(end_status IS NOT NULL) FROM ussd_session").fetchone()
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("producer", "subscription", "ussd_session", "offer", "sms_inbound", "sms_message")}  # fmt: skip
    by_pid = {r[7]: r for r in rows if r[7]}
    fake_by_pair = Counter((m["number"], m["message"]) for m in fake_messages)
    db_by_pair = Counter((r[3], r[5]) for r in rows if r[7])
    extras = {pair: n - db_by_pair.get(pair, 0) for pair, n in fake_by_pair.items() if n > db_by_pair.get(pair, 0)}
    fake_ids = {m["messageId"] for m in fake_messages}
    orphans = [m for m in fake_messages if m["messageId"] not in by_pid]
    missing = [r for r in rows if r[7] and r[7] not in fake_ids]
    per_broadcast: dict[int, Counter] = defaultdict(Counter)
    reasons: dict[int, Counter] = defaultdict(Counter)
    for r in rows:
        if r[1] is not None:
            per_broadcast[r[1]][r[6]] += 1
            if r[6] == "skipped":
                reasons[r[1]][r[8]] += 1
    dup_phones: dict[int, set] = defaultdict(set)
    rows_by_pair = defaultdict(list)
    for r in rows:
        rows_by_pair[(r[3], r[5])].append(r)
    for pair in extras:
        for r in rows_by_pair.get(pair, []):
            dup_phones[r[1] if r[1] is not None else 0].add(r[3])
    replies = Counter(r[6] for r in rows if r[2] == "reply")
    # Several rows recorded with one aggregator id: the other ids of that request were lost.
    shared_ids = sum(1 for r in rows if r[7]) - len(by_pid)
    # What a farmer would notice: the same alert text received more than once (across broadcasts).
    alert_pairs = {(r[3], r[5]) for r in rows if r[2] == "alert"}
    repeated = {pair: n for pair, n in fake_by_pair.items() if n > 1 and pair in alert_pairs}
    repeated_in = {pair: sorted({r[1] for r in rows if (r[3], r[5]) == pair and r[1]}) for pair in list(repeated)[:3]}
    return {
        "rows": rows, "broadcasts": broadcasts, "per_broadcast": per_broadcast, "reasons": reasons,
        "extras": extras, "orphans": orphans, "missing": missing, "dup_phones": dup_phones,
        "inbound": inbound, "replies": replies, "reports": dict(reports), "sessions": sessions,
        "counts": counts, "by_pid": by_pid, "last_sent": last_sent, "shared_ids": shared_ids,
        "repeated": repeated, "repeated_in": repeated_in,
    }  # fmt: skip


def parse_ts(value) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def print_summary(soak: Soak, checks: dict, log_lines: dict) -> None:
    args = soak.args
    print("\n" + "=" * 100)
    print(f"SOAK SUMMARY: {args.minutes:g} min, {args.ussd_sessions} USSD handsets, {args.sms_per_second:g} SMS/s, "
          f"{args.producers:,} producers, price batch every {args.broadcast_every:g} min")  # fmt: skip
    print("=" * 100)
    print("\nOver time (30 s windows; latencies in ms; RSS of the gateway process; queued/sent from /metrics):")
    print(Soak.HEADER)
    print("-" * len(Soak.HEADER))
    for w in soak.window_rows:
        print(Soak.line(w))

    # -- requests and errors
    recs = [r for r in soak.records if r[0] <= soak.duration + HTTP_TIMEOUT_S]
    kinds = Counter(r[1] for r in soak.records if r[1] != "ussd-check")
    print("\nRequests: " + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common()))
    print(f"USSD sessions: {soak.sessions['started']:,} started ({soak.sessions['new callers']:,} new callers), "
          f"{soak.sessions['success']:,} journeys completed, {soak.sessions['incomplete']:,} incomplete (cut by the "
          f"end of the run, or a wrong screen), {soak.sessions['failed']:,} failed; by journey: "
          + ", ".join(f"{k} {soak.journeys[k]}" for k in JOURNEYS))  # fmt: skip
    total_errors = sum(soak.errors.values())
    print(f"\nErrors: {total_errors}  (target: none)  {'PASS' if not total_errors else 'FAIL'}")
    for kind, n in soak.errors.most_common():
        print(f"  {n:>6}  {kind}")
        for sample in soak.samples[kind]:
            print(f"            e.g. {sample}")
    log_errors, log_warnings = log_lines["errors"], log_lines["warnings"]
    print(f"Gateway log: {len(log_errors)} ERROR/traceback lines, {len(log_warnings)} WARNING lines"
          f"  {'PASS' if not log_errors else 'FAIL'}")  # fmt: skip
    for line in log_errors[:5]:
        print(f"    {line[:200]}")
    if log_warnings:
        common = Counter(re.sub(r"^\S+ \S+ WARNING \S+ ", "", w)[:90] for w in log_warnings).most_common(5)
        for text, n in common:
            print(f"    {n:>5} x {text}")

    # -- latency trend
    third = soak.duration / 3
    # Each third holds a price batch, whose 30 s dominate its p99: the verdict compares the rest.
    batches = [p["t"] for p in soak.publications]

    def outside_batches(t: float) -> bool:
        return not any(b <= t < b + WINDOW_S for b in batches)

    print("\nLatency trend, p99 (p50) in ms by third of the run; 'quiet': outside the 30 s after each price batch:")
    trend_ok = True
    for kind in ("ussd", "sms", "dlr", "ussd-end", "metrics"):
        for scope in ("all", "quiet") if kind in ("ussd", "sms") and batches else ("all",):
            parts = []
            for i in range(3):
                end = (i + 1) * third if i < 2 else soak.duration + 5.0
                values = [r[2] for r in recs if r[1] == kind and i * third <= r[0] < end
                          and (scope == "all" or outside_batches(r[0]))]  # fmt: skip
                parts.append((pct(values, 99), pct(values, 50), len(values)))
            first, last = parts[0][0], parts[2][0]
            if math.isnan(first) or math.isnan(last) or min(parts[0][2], parts[2][2]) < 30:
                verdict = "(too few to compare)"
            else:
                rising = last > 1.5 * first and last - first > 5.0
                if kind in ("ussd", "sms") and (scope == "quiet" or not batches):
                    trend_ok &= not rising
                verdict = f"last/first {last / first if first else math.inf:.2f}  {'RISING' if rising else 'flat'}"
            shown = "   ".join(f"{ms(p99):>6} ({ms(p50):>5}, n={n:,})" for p99, p50, n in parts)
            print(f"  {kind:<8} {scope:<5} {shown}   {verdict}")
    print(f"  p99 trend of USSD hops and SMS webhooks, quiet (last third vs first, RISING if > 1.5x and > 5 ms): "
          f"{'PASS' if trend_ok else 'FAIL'}")  # fmt: skip
    hops = sorted(r[2] for r in recs if r[1] == "ussd")
    if hops:
        print(f"  USSD hops: p99.9 {ms(pct(hops, 99.9))} ms, slowest {ms(hops[-1])} ms; over 500 ms: "
              f"{sum(h > 500 for h in hops)}, over 1 s: {sum(h > 1000 for h in hops)}, over 5 s: "
              f"{sum(h > 5000 for h in hops)} (Africa's Talking waits about 10 s)")  # fmt: skip
    quiet = [w for w in soak.window_rows if not w["notes"].startswith("batch")]
    busy = [w for w in soak.window_rows if w["notes"].startswith("batch")]
    if quiet and busy:
        print(f"  windows with a price batch: USSD p99 max {max(w['ussd99'] for w in busy):.1f} ms; "
              f"without: median of window p99s {statistics.median(w['ussd99'] for w in quiet):.1f} ms")  # fmt: skip

    # -- memory
    samples = [p for p in soak.procs if p[1].get("VmRSS")]
    end_sample = soak.end_sample if soak.end_sample and soak.end_sample[1].get("VmRSS") else (samples[-1] if samples else None)
    first_min = min(samples, key=lambda p: abs(p[0] - 60.0)) if samples else None
    print("\nMemory of the gateway process (VmRSS):")
    if first_min and end_sample:
        a, b = first_min[1]["VmRSS"] / 1024, end_sample[1]["VmRSS"] / 1024
        growth, growth_pct = b - a, 100.0 * (b - a) / a
        ok = growth_pct < MEMORY_PCT_TARGET or growth < MEMORY_MB_TARGET
        start = samples[0][1]["VmRSS"] / 1024
        peak = max(p[1]["VmRSS"] for p in samples) / 1024
        hwm = samples[-1][1].get("VmHWM", 0) / 1024
        print(f"  at start {start:.1f} MB; at {fmt_t(first_min[0])} {a:.1f} MB; at the end of traffic ({fmt_t(end_sample[0])}) "
              f"{b:.1f} MB; after the drain {samples[-1][1]['VmRSS'] / 1024:.1f} MB; peak sampled {peak:.1f} MB "
              f"(VmHWM {hwm:.1f} MB)")  # fmt: skip
        print(f"  growth from the end of the first minute to the end: {growth:+.1f} MB ({growth_pct:+.1f} %)  "
              f"(target flat: < {MEMORY_PCT_TARGET:.0f} % or < {MEMORY_MB_TARGET:.0f} MB)  {'PASS' if ok else 'FAIL'}")  # fmt: skip
        later = [p for p in samples if first_min[0] <= p[0] <= end_sample[0]]
        if len(later) >= 3:
            xs = [p[0] / 60.0 for p in later]
            ys = [p[1]["VmRSS"] / 1024 for p in later]
            mx, my = statistics.fmean(xs), statistics.fmean(ys)
            den = sum((x - mx) ** 2 for x in xs)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0
            print(f"  least-squares slope over that span: {slope:+.2f} MB/min "
                  f"({len(later)} samples every {SAMPLE_S:.0f} s)")  # fmt: skip
        if soak.publications:
            # The first price batch allocates once (5,000-row expansion, a claimed batch, caches):
            # growth after it, not before, is what a leak would look like.
            after = soak.publications[0]["t"] + 30.0
            base = min(samples, key=lambda p: abs(p[0] - after))
            if base[0] < end_sample[0]:
                c = base[1]["VmRSS"] / 1024
                print(f"  for comparison, from 30 s after the first price batch ({fmt_t(base[0])}, {c:.1f} MB) to the "
                      f"end: {b - c:+.1f} MB ({100.0 * (b - c) / c:+.1f} %)")  # fmt: skip
        t0, t1 = samples[0][1], samples[-1][1]
        print(f"  threads {t0.get('Threads')} -> {t1.get('Threads')}, open file descriptors {t0.get('fds')} -> "
              f"{t1.get('fds')}; SQLite WAL {soak.procs[-1][4]:.1f} MB, database {file_mb(soak.db_path):.1f} MB")  # fmt: skip
        fake_rss = [p[2].get("VmRSS", 0) / 1024 for p in soak.procs if p[2].get("VmRSS")]
        if fake_rss:
            print(f"  (the fake aggregator, which keeps every request it received: {fake_rss[0]:.1f} -> "
                  f"{fake_rss[-1]:.1f} MB)")  # fmt: skip
    else:
        print("  no samples (is /proc readable?)")

    # -- broadcasts
    print("\nBroadcasts (alerts), from the outbox; 'sent' counts sent + delivered + undeliverable:")
    head = f"  {'id':>4} {'origin':<16} {'status':<8} {'rows':>6} {'sent':>6} {'deliv':>6} {'undel':>5} " \
           f"{'skipped':>7} {'other':>6} {'dup':>4} {'all sent in':>11}"
    print(head)
    batch_ids = {p["id"] for p in soak.publications}
    complete, total_rows, total_sent = True, 0, 0
    for b in checks["broadcasts"]:
        bid, kind, status, title = b[0], b[1], b[2], b[3]
        c = checks["per_broadcast"].get(bid, Counter())
        sent = sum(c[s] for s in SENT_STATES)
        skipped = c["skipped"]
        other = sum(n for s, n in c.items() if s not in SENT_STATES and s != "skipped")
        dup = len(checks["dup_phones"].get(bid, ()))
        # From the publication to the last message accepted (the broadcast's finished_at is the start
        # of the worker step that found it done, so it is earlier than the last send).
        created, last = parse_ts(b[6]), parse_ts(checks["last_sent"].get(bid))
        took = f"{(last - created).total_seconds():.1f} s" if created and last else "-"
        origin = "price batch" if bid in batch_ids else (title or kind)[:16]
        # Expected skips: an opt-out, or the same alert already sent today (a price published again).
        bad_skips = {r: n for r, n in checks["reasons"].get(bid, {}).items() if r not in ("opted_out", "already_sent")}
        complete &= status == "done" and other == 0 and dup == 0 and not bad_skips
        total_rows += sum(c.values())
        total_sent += sent
        print(f"  {bid:>4} {origin:<16} {status:<8} {sum(c.values()):>6} {sent:>6} {c['delivered']:>6} "
              f"{c['undeliverable']:>5} {skipped:>7} {other:>6} {dup:>4} {took:>11}"
              + (f"  skipped: {dict(checks['reasons'][bid])}" if skipped else ""))  # fmt: skip
    extras = sum(checks["extras"].values())
    drained = "never (within %.0f s)" % DRAIN_TIMEOUT_S if soak.drain_outbox is None else f"{soak.drain_outbox:.0f} s"
    print(f"  {len(checks['broadcasts'])} broadcasts, {total_rows:,} outbox rows, {total_sent:,} sent; outbox empty "
          f"{drained} after the traffic stopped")
    print(f"  fake's log: {soak.fake_total:,} messages accepted; outbox rows with an aggregator id: "
          f"{len(checks['by_pid']):,}")  # fmt: skip
    print(f"  ids in the fake but in no row: {len(checks['orphans'])}; rows whose id the fake never gave: "
          f"{len(checks['missing'])}; rows sharing an id with another row: {checks['shared_ids']}; copies beyond "
          f"one per row (phone, text): {extras}")  # fmt: skip
    repeated = checks["repeated"]
    print(f"  phones that received an identical alert more than once (across broadcasts): {len(repeated)}"
          + (f" ({sum(repeated.values()) - len(repeated)} extra SMS)" if repeated else ""))  # fmt: skip
    for (phone, text), ids in checks["repeated_in"].items():
        print(f"    e.g. {phone[:6]}****{phone[-2:]} got {text!r} from broadcasts {ids}")
    complete &= not checks["orphans"] and not checks["missing"] and not extras and not checks["shared_ids"]
    print(f"  broadcast completion (every alert sent, or skipped for an opt-out or as already sent today; none twice): "
          f"{'PASS' if complete and checks['broadcasts'] else 'FAIL'}")  # fmt: skip

    # -- SMS, reports, delivery reports
    inbound = checks["inbound"]
    stored = sum(1 for pid in soak.sms_sent if pid in inbound)
    wrong = Counter()
    for pid, (_, text, intent) in soak.sms_sent.items():
        got = inbound.get(pid)
        if got is not None and got[0] != intent:
            wrong[(text, intent, got[0])] += 1
    notes = Counter(v[1] for v in inbound.values() if v[1])
    print(f"\nInbound SMS: {len(soak.sms_sent):,} posted, {stored:,} stored, intents as expected "
          f"{stored - sum(wrong.values()):,}/{stored:,}" + (f"; notes {dict(notes)}" if notes else ""))  # fmt: skip
    for (text, intent, got), n in wrong.most_common(5):
        print(f"    {n:>5} x {text!r}: expected {intent}, got {got!r}")
    print(f"  replies in the outbox: {dict(checks['replies'])}")
    expected = Counter(r["expect"] for r in soak.reports)
    print(f"Enumerator reports: {len(soak.reports)} sent (expected published {expected['published']}, held "
          f"{expected['held']}); in the database: {checks['reports']}")  # fmt: skip
    by_status = Counter()
    for message_id, status in soak.dlr_ids.items():
        row = checks["by_pid"].get(message_id)
        by_status[(status, row[6] if row else "no row")] += 1
    print(f"Delivery reports: {sum(soak.dlr_posted.values()):,} posted ({dict(soak.dlr_posted)}); the rows now: "
          + ", ".join(f"{s} -> {st} {n:,}" for (s, st), n in sorted(by_status.items())))  # fmt: skip
    sessions = checks["sessions"]
    print(f"Database afterwards: " + ", ".join(f"{k} {v:,}" for k, v in checks["counts"].items())
          + f"; USSD sessions with errors counted: {sessions[1] or 0}, with an end event: {sessions[2] or 0}")  # fmt: skip


def read_log(path: Path) -> dict:
    errors, warnings = [], []
    try:
        for line in path.read_text(errors="replace").splitlines():
            if " ERROR " in line or line.startswith("ERROR") or "Traceback" in line or " CRITICAL " in line:
                errors.append(line)
            elif " WARNING " in line or line.startswith("WARNING"):
                warnings.append(line)
    except OSError:
        pass
    return {"errors": errors, "warnings": warnings}


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def read_probe(path: Path) -> list[dict]:
    import json

    rows = []
    try:
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass  # the last line, cut by the process's end
    except OSError:
        pass
    return rows


PROBE_COLUMNS = [
    ("VmRSS", "RSS"), ("RssAnon", "anon"), ("RssFile", "file"), ("RssShmem", "shmem"),
    ("py_arenas", "pymalloc"), ("py_used", "pym. used"),
    ("heap_used", "malloc used"), ("heap_free", "malloc free"), ("mmapped", "mmapped"),
    ("sqlite_used", "SQLite"), ("traced", "Python traced"),
]


def print_memory_probe(soak: "Soak", path: Path) -> None:
    """What the gateway's resident size is made of at a few moments (bench/memprobe), and what
    grew from the end of minute 1 to the end of the traffic."""
    rows = read_probe(path)
    print("\nWhat the gateway's memory is made of (bench/memprobe, sampled inside the process; MB):")
    if len(rows) < 3:
        print("  no probe samples (glibc and libsqlite3 found? see the gateway log)")
        return
    for r in rows:  # onto the soak's time line (both read the machine's monotonic clock)
        r["t"] = r["mono"] - soak.t0

    def at(t: float) -> dict:
        return min(rows, key=lambda r: abs(r["t"] - t))

    end_t = soak.end_sample[0] if soak.end_sample else rows[-1]["t"]
    moments = [("start", rows[0]), ("1:00", at(60.0))]
    for k, pub in enumerate(soak.publications):
        moments.append((f"batch {k + 1} +30 s", at(pub["t"] + 30.0)))
    moments.append(("end", at(end_t)))
    columns = [(key, label) for key, label in PROBE_COLUMNS if any(key in r for r in rows)]
    print("  " + f"{'':>16} " + " ".join(f"{label:>13}" for _, label in columns))
    for name, row in moments:
        print("  " + f"{name:>16} " + " ".join(f"{row.get(key, math.nan) / 1e6:>13.1f}" for key, _ in columns))
    a, b = at(60.0), at(end_t)
    print("  " + f"{'1:00 -> end':>16} " + " ".join(f"{(b.get(key, math.nan) - a.get(key, math.nan)) / 1e6:>+13.1f}" for key, _ in columns))
    print("  (pymalloc: Python's arenas for objects up to 512 bytes, 'used' what its objects take; malloc "
          "used/free/mmapped: glibc's mallinfo2 over all arenas, larger Python objects and C libraries; SQLite: "
          "sqlite3_memory_used (within malloc used), its page caches and statements; file/shmem: mapped files)")  # fmt: skip
    traced = Path(str(path) + ".tracemalloc.txt")
    if traced.exists():
        print("\nPython allocation sites that grew most after minute 1 (tracemalloc):")
        print("  " + "\n  ".join(traced.read_text().splitlines()[:60]))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="bench/soak.py",
        description="Soak the Sugu gateway on loopback: mixed USSD, inbound SMS, delivery reports and price "
        "broadcasts for a bounded time; report errors, p99 latency over time and memory growth.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--minutes", type=float, default=10.0, help="duration of the traffic")
    add("--ussd-sessions", type=int, default=20, help="concurrent USSD handsets (1-4 s between inputs)")
    add("--ussd-phones", type=int, default=2000, help="size of the USSD callers' phone pool")
    add("--sms-per-second", type=float, default=2.0, help="inbound keyword SMS per second (Poisson arrivals)")
    add("--report-every", type=float, default=30.0, help="seconds between enumerators' price reports (0: none)")
    add("--producers", type=int, default=5000, help="subscribed producers inserted before the start")
    add("--broadcast-every", type=float, default=3.0, help="minutes between price batches (0: none)")
    add("--dlr-share", type=float, default=0.2, help="share of sent messages that get a delivery report")
    add("--seed", type=int, default=1, help="random seed")
    add("--keep-tmp", action="store_true", help="keep the temporary directory (database, server logs)")
    add("--separate-worker", action="store_true",
        help="run the broadcaster as its own `gateway worker` process (GATEWAY_WORKER_IN_PROCESS=false "
             "for the server), as an operator with several processes would; its memory is printed too")
    add("--malloc-arenas", type=int, default=2, help="MALLOC_ARENA_MAX for the gateway, as deployed (0: glibc default)")
    add("--no-memory-probe", dest="memory_probe", action="store_false",
        help="do not load bench/memprobe into the gateway (what its resident size is made of, every 5 s)")
    add("--tracemalloc", type=int, default=0, metavar="FRAMES",
        help="also trace Python allocations in the gateway (slower) and print the sites that grew after minute 1")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.ussd_sessions < 0 or args.sms_per_second < 0 or args.producers < 1:
        parser.error("--minutes and --producers must be positive, --ussd-sessions and --sms-per-second >= 0")
    if not 0 <= args.dlr_share <= 1 or args.report_every < 0 or args.broadcast_every < 0 or args.ussd_phones < 1:
        parser.error("--dlr-share in [0, 1]; --report-every, --broadcast-every >= 0; --ussd-phones >= 1")
    if args.minutes > 24 * 60:
        parser.error("--minutes: at most a day (the run is meant to be bounded)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    ussd_load.interruptible()
    tmp = Path(tempfile.mkdtemp(prefix="sugu-soak-"))
    db_path = tmp / "soak.db"
    url = f"sqlite:///{db_path}"
    fake = gateway = db = worker = None
    try:
        from zoneinfo import ZoneInfo

        from gateway.core.db import Database
        from gateway.core.settings import Settings

        tz = ZoneInfo(TZ_NAME)
        now = dt.datetime.now(tz)
        print("Sugu soak test")
        print(f"  {args.minutes:g} min: {args.ussd_sessions} USSD handsets (1-4 s between inputs), "
              f"{args.sms_per_second:g} SMS/s, an enumerator report every {args.report_every:g} s, a price batch "
              f"at {', '.join(fmt_t(t) for t in broadcast_times(args.minutes, args.broadcast_every)) or 'never'}, "
              f"delivery reports for {100 * args.dlr_share:.0f} % of sent messages; {os.cpu_count()} CPU core(s), "
              f"Python {sys.version.split()[0]}")  # fmt: skip
        # The gateway's environment: ours, without any GATEWAY_* of the caller's shell.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        # As the Dockerfile and `make run` start it; MALLOC_ARENA_MAX=8 (or unset it in the shell
        # with --malloc-arenas 0) to see glibc's default.
        if args.malloc_arenas:
            env["MALLOC_ARENA_MAX"] = str(args.malloc_arenas)
        else:
            env.pop("MALLOC_ARENA_MAX", None)
        print(f"  gateway MALLOC_ARENA_MAX: {env.get('MALLOC_ARENA_MAX', 'unset (glibc default)')}")
        env.update(
            GATEWAY_DATABASE_URL=url, GATEWAY_LOG_LEVEL="WARNING", GATEWAY_SECRET_KEY="soak",
            GATEWAY_SECRET_KEY_FILE=str(tmp / "secret.key"), PYTHONUNBUFFERED="1",
            GATEWAY_DEV_MODE="true",  # callbacks posted without a webhook secret
        )  # fmt: skip
        print(f"  database: {url} (gateway migrate + seed-demo)")
        try:
            t = time.perf_counter()
            ussd_load.prepare_database(env)
            db = Database.from_settings(Settings(database_url=url))
            world = setup_population(db, args, random.Random(args.seed), now)
            reports = report_specs(db_path, world["ref"], now.date())
            pop = world["population"]
            print(f"  setup: {pop['producers']:,} producers (fr {pop['languages']['fr']:,}, bm "
                  f"{pop['languages']['bm']:,}), {pop['subscriptions']:,} subscriptions, {len(world['enumerators'])} "
                  f"enumerators, {len(world['pairs'])} traded (crop, market) pairs; {time.perf_counter() - t:.1f} s")  # fmt: skip
            fake = bench_broadcast.FakeServer(tmp)
            fake.start()
        except bench_broadcast.SetupFailed:
            raise
        except ussd_load.ServerFailed:
            raise
        except Exception as exc:
            traceback.print_exc()
            raise bench_broadcast.SetupFailed(f"{exc.__class__.__name__}: {exc}") from None
        env.update(
            GATEWAY_AT_API_KEY="soak", GATEWAY_AT_BASE_URL=fake.url, GATEWAY_QUIET_HOURS="",
            GATEWAY_DAILY_SMS_BUDGET="10000000", GATEWAY_DAILY_SEGMENT_BUDGET="10000000",
            GATEWAY_MAX_SMS_PER_PRODUCER_PER_DAY="1000",
            GATEWAY_WORKER_IN_PROCESS="false" if args.separate_worker else "true",
        )  # fmt: skip
        worker_env = dict(env)  # without the memory probe
        probe_path = tmp / "memprobe.jsonl"
        if args.memory_probe:
            # bench/memprobe/sitecustomize.py samples the gateway from inside (see its docstring).
            env.update(SUGU_MEMPROBE=str(probe_path), SUGU_MEMPROBE_EVERY_S=str(SAMPLE_S),
                       PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH_DIR / "memprobe"), env.get("PYTHONPATH")])))
            if args.tracemalloc:
                env["PYTHONTRACEMALLOC"] = str(args.tracemalloc)
        gateway = ussd_load.Server("gateway", "gateway.app:app_factory", [], env, tmp)
        print(f"  fake aggregator: {fake.url} (python -m gateway.aggregators.fake_at)")
        print(f"  gateway: {gateway.display()}")
        print("    with GATEWAY_AT_API_KEY=soak GATEWAY_AT_BASE_URL=<fake> GATEWAY_QUIET_HOURS='' "
              "GATEWAY_LOG_LEVEL=WARNING,\n    budgets 10,000,000 a day, 1,000 SMS per producer a day, "
              "broadcaster in-process")  # fmt: skip
        gateway.start()
        gateway.wait_ready(timeout=180.0 if args.tracemalloc else 30.0)  # tracing slows the imports
        if args.separate_worker:
            worker_log = (tmp / "worker.log").open("w")
            worker = subprocess.Popen([*ussd_load.gateway_command(), "worker"], env=worker_env, cwd=tmp,
                                      stdout=worker_log, stderr=subprocess.STDOUT)
            time.sleep(5)
            worker_start = proc_status(worker.pid)
            print(f"  worker: gateway worker, pid {worker.pid}, {worker_start.get('VmRSS', 0) / 1024:.1f} MB at start")
        print()

        soak = Soak(args, gateway=gateway, fake=fake, db=db, db_path=db_path, world=world, reports=reports)
        soak.probe_path = probe_path if args.memory_probe else None
        asyncio.run(soak.run())
        try:
            fake_messages = bench_broadcast.http_json(fake.url + "/_fake/messages")
        except Exception as exc:
            print(f"could not read the fake's log: {exc}", file=sys.stderr)
            fake_messages = []
        soak.fake_total = len(fake_messages)
        if args.tracemalloc:  # let the probe write its comparison (a snapshot takes a while)
            deadline = time.monotonic() + 120
            while not Path(str(probe_path) + ".tracemalloc.txt").exists() and time.monotonic() < deadline:
                time.sleep(1)
        gateway.stop()
        if worker is not None:
            end = proc_status(worker.pid)
            worker.terminate()
            worker.wait(timeout=30)
            print(f"\nMemory of the worker process (gateway worker): {worker_start.get('VmRSS', 0) / 1024:.1f} MB at "
                  f"start, {end.get('VmRSS', 0) / 1024:.1f} MB at the end, peak {end.get('VmHWM', 0) / 1024:.1f} MB "
                  "(VmHWM)")  # fmt: skip
        checks = final_checks(soak, fake_messages)
        print_summary(soak, checks, read_log(gateway.log_path))
        if args.memory_probe:
            print_memory_probe(soak, probe_path)
        return 0
    except (bench_broadcast.SetupFailed, ussd_load.ServerFailed) as exc:
        print(f"\nsetup failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        for name, server in (("gateway", gateway), ("fake aggregator", fake)):
            if server is not None:
                try:
                    server.stop()
                except Exception as exc:  # keep cleaning up
                    print(f"could not stop the {name}: {exc}", file=sys.stderr)
        if db is not None:
            db.dispose()
        if args.keep_tmp:
            print(f"temporary directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
