"""Kill bench: a broadcaster SIGKILLed while it sends a big publication, restarted at once.

    .venv/bin/python bench/kill.py [--producers 20000] [--database-url URL] [--kills 3]
                                   [--fail-rate 0.2] [--lease-s 10] [--backoff-s 2] [--seed 14]

1. Setup: a fresh database (temporary SQLite file, or a temporary database on the PostgreSQL
   server of --database-url, dropped at the end), migrated and seeded; --producers producers
   and their subscriptions (bench/broadcast.py's population), then one publication: a new price
   for every traded (crop, market) pair, and its alerts.
2. A fake Africa's Talking server in another process (this file, --run-fake) that fails
   --fail-rate of the requests, each failure drawn among HTTP 500, 503, 429 and an answer
   --hang-s late, past the worker's client timeout (--client-timeout-s; the fake has then
   accepted the recipients, as a real aggregator would have).
3. The real `gateway worker` process (the installed command), killed with SIGKILL --kills times
   at random moments while it sends (a pause uniform in --kill-every-s once the first alerts
   are sent, then between kills), and restarted at once. Right
   after each kill, the rows still `sending` are counted: the recipients of the request in
   flight at the kill (the only ones a kill may leave ambiguous).
4. When the outbox is settled (nothing queued, claimed or sending), the worker is stopped and
   what each phone received is read from the fake.

Timing is scaled so that a backend takes under ~3 minutes: the lease (GATEWAY_WORKER_LEASE_S,
60 s in production) is --lease-s, and the first retry wait (GATEWAY_RETRY_BACKOFF_S, 30 s in
production) is --backoff-s; both are the service's own settings, the code is the same.

Prints per backend: alerts expected, delivered, duplicates, never sent, ambiguous (unconfirmed;
kills' and late answers' apart) and the recipients of the requests in flight at the kills. Bar:
duplicates 0, never sent 0, ambiguous from kills ≤ in-flight recipients. Exit 1 if it is missed.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for path in (str(REPO), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import broadcast as population_bench  # noqa: E402  (bench/broadcast.py: database, population, publication)

TZ_NAME = "Africa/Bamako"


# -- the faulty fake aggregator (its own process) --------------------------------------------------


def run_fake(port: int, fail_rate: float, hang_s: float, seed: int) -> None:
    import uvicorn

    from gateway.aggregators.fake_at import FakeAT, create_fake_at_app

    class FaultyFake(FakeAT):
        """Fails `fail_rate` of the requests: 500, 503, 429 or a late answer, drawn evenly."""

        def __init__(self) -> None:
            super().__init__()
            self.draw = random.Random(seed)

        def handle_send(self, form, api_key):
            if self.draw.random() < fail_rate:
                fault = self.draw.choice(["500", "503", "429", "late"])
                if fault == "late":
                    self.configure(hang_next=1, hang_s=hang_s)
                else:
                    self.configure(fail_next=[int(fault)])
            return super().handle_send(form, api_key)

    uvicorn.run(create_fake_at_app(FaultyFake()), host="127.0.0.1", port=port, log_level="warning")


# -- the parent ------------------------------------------------------------------------------------


def counts(db) -> dict:
    from sqlalchemy import func
    from sqlmodel import select

    from gateway.data import models

    m = models.SmsMessage
    with db.unit_of_work() as session:
        return dict(session.exec(select(m.status, func.count()).group_by(m.status)).all())


def worker_command() -> list[str]:
    installed = Path(sys.executable).parent / "gateway"
    return [str(installed), "worker"] if installed.exists() else [sys.executable, "-m", "gateway.cli", "worker"]


def run_backend(args, url: str | None, tmp: Path) -> dict:
    from sqlmodel import select

    from gateway.core import migrate
    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.data import models, seed

    rng = random.Random(args.seed)
    bench_db = population_bench.BenchDatabase(url, tmp)
    fake_proc = worker = None
    try:
        print(f"\n== {bench_db.label}")
        now = dt.datetime.now(dt.timezone.utc).astimezone(__import__("zoneinfo").ZoneInfo(TZ_NAME))
        migrate.upgrade(bench_db.url)
        db = Database.from_settings(Settings(database_url=bench_db.url))
        with db.unit_of_work() as session:
            seed.seed_demo(session, today=now.date())
        ref = population_bench.reference(db)
        population_bench.populate(db, ref, args.producers, rng, now)
        pairs = population_bench.publication_pairs(ref, "all")
        broadcast_id = population_bench.publish(db, pairs, rng, now)

        port = population_bench.free_port()
        fake_url = f"http://127.0.0.1:{port}"
        fake_log = open(tmp / f"fake-{port}.log", "w")
        fake_proc = subprocess.Popen(
            [sys.executable, __file__, "--run-fake", str(port), "--fail-rate", str(args.fail_rate),
             "--hang-s", str(args.hang_s), "--seed", str(args.seed)],
            cwd=REPO, stdout=fake_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        for _ in range(100):
            try:
                population_bench.http_json(fake_url + "/_fake/config", timeout=1.0)
                break
            except Exception:
                time.sleep(0.1)
        env = {
            **os.environ,
            "GATEWAY_DATABASE_URL": bench_db.url,
            "GATEWAY_AT_USERNAME": "sugu",
            "GATEWAY_AT_API_KEY": "bench",
            "GATEWAY_AT_BASE_URL": fake_url,
            "GATEWAY_AT_TIMEOUT_S": str(args.client_timeout_s),
            "GATEWAY_QUIET_HOURS": "",
            "GATEWAY_DAILY_SMS_BUDGET": str(10**7),
            "GATEWAY_DAILY_SEGMENT_BUDGET": str(10**7),
            "GATEWAY_MAX_SMS_PER_PRODUCER_PER_DAY": "10",
            "GATEWAY_WORKER_LEASE_S": str(args.lease_s),
            "GATEWAY_RETRY_BACKOFF_S": str(args.backoff_s),
            "GATEWAY_WORKER_BATCH_SIZE": str(args.batch_size),
            "GATEWAY_TIMEZONE": TZ_NAME,
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
        worker_log = open(tmp / f"worker-{port}.log", "w")

        def start():
            return subprocess.Popen(worker_command(), cwd=tmp, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

        t0 = time.monotonic()
        worker = start()
        kills, in_flight, in_flight_ids = [], 0, set()
        for k in range(args.kills):
            # A random moment while it sends (a kill during the expansion only restarts it).
            while not counts(db).get("sent") and time.monotonic() - t0 < args.max_s:
                time.sleep(0.2)
            time.sleep(rng.uniform(*args.kill_every_s))
            state = counts(db)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            # Rows still `sending` now: the request in flight (a row still leased from an
            # earlier kill is counted once).
            with db.unit_of_work() as session:
                now_sending = set(session.exec(select(models.SmsMessage.id).where(models.SmsMessage.status == "sending")).all())
            sending = len(now_sending - in_flight_ids)
            in_flight_ids |= now_sending
            in_flight = len(in_flight_ids)
            kills.append({"at_s": round(time.monotonic() - t0, 1), "in_flight": sending, "claimed": counts(db).get("claimed", 0),
                          "queued": state.get("queued", 0)})  # fmt: skip
            worker = start()  # at once
        while time.monotonic() - t0 < args.max_s:
            state = counts(db)
            with db.unit_of_work() as session:
                status = session.get(models.Broadcast, broadcast_id).status
            if status == "done" and not any(state.get(s) for s in ("queued", "claimed", "sending")):
                break
            time.sleep(1)
        wall = time.monotonic() - t0
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

        received = collections.Counter()
        offset = 0
        while True:
            page = population_bench.http_json(f"{fake_url}/_fake/messages?offset={offset}")
            if not page:
                break
            offset += len(page)
            received.update((m["number"], m["message"]) for m in page)
        m = models.SmsMessage
        with db.unit_of_work() as session:
            rows = session.exec(
                select(m.phone, m.text, m.status, m.failure_reason).where(m.broadcast_id == broadcast_id, m.status != "skipped")
            ).all()
        expected = len(rows)
        delivered = sum(1 for phone, text, *_ in rows if received[(phone, text)])
        duplicates = sum(n - 1 for n in received.values() if n > 1)
        unconfirmed = [r for r in rows if r[2] == "unconfirmed"]
        by_kill = sum(1 for r in unconfirmed if r[3] == "lease_expired")
        never_sent = sum(1 for phone, text, status, _ in rows if status != "unconfirmed" and not received[(phone, text)])
        statuses = collections.Counter(r[2] for r in rows)
        figures = {
            "backend": bench_db.backend, "expected": expected, "delivered": delivered, "duplicates": duplicates,
            "never_sent": never_sent, "ambiguous": len(unconfirmed), "ambiguous_kills": by_kill,
            "ambiguous_late": len(unconfirmed) - by_kill,
            "late_delivered": sum(1 for phone, text, _, reason in unconfirmed if reason != "lease_expired" and received[(phone, text)]),
            "in_flight": in_flight, "kills": kills, "wall_s": round(wall, 1), "statuses": dict(statuses),
        }  # fmt: skip
        ok = duplicates == 0 and never_sent == 0 and by_kill <= in_flight and len(kills) >= 3
        figures["ok"] = ok
        print(f"  {args.producers:,} producers, {len(pairs)} prices published; worker SIGKILLed {len(kills)} times: "
              + ", ".join(f"at {k['at_s']} s ({k['in_flight']} in flight, {k['claimed']} claimed)" for k in kills))
        print(f"  alerts expected {expected:,}, delivered {delivered:,}, duplicates {duplicates}, never sent {never_sent}")
        print(f"  ambiguous (unconfirmed) {len(unconfirmed):,}: {by_kill:,} in flight at a kill, "
              f"{len(unconfirmed) - by_kill:,} answered past the client timeout ({figures['late_delivered']:,} of them in fact received)")
        print(f"  recipients of the requests in flight at the kills: {in_flight:,}")
        print(f"  final statuses {dict(statuses)}; settled in {wall:.0f} s")
        failed = collections.Counter(reason for _, _, status, reason in rows if status in ("failed", "queued", "claimed"))
        if failed:
            print(f"  not sent, by reason: {dict(failed)}")
        print(f"  bar (duplicates 0, never sent 0, kills' ambiguous ≤ in flight, ≥ 3 kills): {'PASS' if ok else 'FAIL'}")
        db.dispose()
        return figures
    finally:
        for proc in (worker, fake_proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        bench_db.drop()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--producers", type=int, default=20_000)
    p.add_argument("--database-url", action="append", default=None,
                   help="a backend to run on (repeatable); default: a temporary SQLite file")
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--kill-every-s", type=float, nargs=2, default=(0.5, 8.0),
                   help="random pause before each kill, once sending has started")
    p.add_argument("--fail-rate", type=float, default=0.2)
    p.add_argument("--hang-s", type=float, default=1.0, help="a late answer comes this late")
    p.add_argument("--client-timeout-s", type=float, default=0.5)
    p.add_argument("--lease-s", type=int, default=10)
    p.add_argument("--backoff-s", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--max-s", type=float, default=170.0)
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--run-fake", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.run_fake:
        run_fake(args.run_fake, args.fail_rate, args.hang_s, args.seed)
        return 0
    print(f"Sugu kill bench: {args.fail_rate:.0%} of requests fail (500/503/429/answer {args.hang_s} s late, client "
          f"timeout {args.client_timeout_s} s); lease {args.lease_s} s, first retry after {args.backoff_s} s")
    results = []
    for url in args.database_url or [None]:
        tmp = Path(tempfile.mkdtemp(prefix="sugu-kill-"))
        try:
            results.append(run_backend(args, url, tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
