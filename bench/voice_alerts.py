"""Voice alert campaign bench (issue 16's bar): 10,000 voice alerts placed by worker processes,
one of them SIGKILLed mid-campaign; nobody called twice, never more calls at once than the cap.

    .venv/bin/python bench/voice_alerts.py [--alerts 10000] [--workers 3] [--cap 50] [--call-s 0.3]
        [--kill-at 0.3] [--lease-s 5] [--backend sqlite|postgresql] [--postgres-url URL] [--max-s 600]

1. Setup (not timed): a fresh database (a SQLite file in a temporary folder, or a new PostgreSQL
   database dropped afterwards), migrated, with the demo content; --alerts producers who chose
   calls, subscribed to tomatoes at Sikasso; one price alert for that pair, pending.
2. A fake voice platform in its own process (this file, --run-platform): Africa's Talking's call
   API (gateway/aggregators/fake_at_voice.py) that records every dial and, --call-s later, ends
   the call as its final callback would (`calls.settle`: answered, 40 s, XOF 40). It counts the
   calls ringing at once (from the dial to the settlement's commit).
3. --workers real `gateway worker` processes: one expands the alert into a call per producer, all
   place calls (`calls.step`) through the Africa's Talking adapter pointed at the fake. When
   --kill-at of the alerts have been dialled, one worker is SIGKILLed and not restarted: its claims
   come back to the others after its lease (GATEWAY_WORKER_LEASE_S, --lease-s).
4. When every call is settled, prints the calls placed, the duplicates, the most calls at once (at
   the platform, and in the database: claimed, dialling or in progress), the campaign's duration
   and calls/s, with PASS/FAIL: duplicates 0, every producer called, at most --cap at once. A call
   the killed worker had marked `dialing` without reaching the platform waits for the 30-minute
   give-up (calls.CALL_GIVE_UP) and is then tried again: it is counted apart, never as called.
   Exit 1 when the bar is missed.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import heapq
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.databases import scratch_database

TZ_NAME = "Africa/Bamako"
SERVICE_NUMBER = "+22320221234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 10.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def worker_env(args, url: str, platform_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_VOICE_BASE_URL": platform_url,
        "GATEWAY_VOICE_CONCURRENT_CALLS": str(args.cap),
        "GATEWAY_VOICE_MINUTES_PER_DAY": str(10**7),
        "GATEWAY_VOICE_FRANCS_PER_DAY": str(10**9),
        "GATEWAY_VOICE_CALL_MINUTES_ESTIMATE": "1",
        "GATEWAY_VOICE_ALERTS_PER_PHONE_PER_DAY": "1",
        "GATEWAY_AT_TIMEOUT_S": "5",
        "GATEWAY_QUIET_HOURS": "",
        "GATEWAY_WORKER_LEASE_S": str(args.lease_s),
        "GATEWAY_WORKER_POLL_S": "0.05",
        "GATEWAY_TIMEZONE": TZ_NAME,
        "GATEWAY_LOG_LEVEL": "WARNING",
    }


# -- the fake platform (its own process) -------------------------------------------------------------


def run_platform(port: int, url: str, call_s: float, settlers: int) -> None:
    import uvicorn
    from fastapi.responses import JSONResponse

    from gateway.aggregators.calling import OUTBOUND, VoiceCallback
    from gateway.aggregators.fake_at_voice import FakeATVoice, create_fake_at_voice_app
    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.outbound import calls

    settings = Settings(database_url=url, timezone=TZ_NAME)
    db = Database.from_settings(settings)

    class Platform(FakeATVoice):
        """Records every dial; --call-s later, the call's final callback settles it."""

        def __init__(self) -> None:
            super().__init__()
            self.stats = threading.Condition()
            self.dials: list[tuple[str, str]] = []  # (phone, clientRequestId)
            self.due: list[tuple[float, str, str, str]] = []  # heap of (when, phone, session id, request id)
            self.ringing = self.most_ringing = self.settled = 0
            self.first_dial = self.last_settle = 0.0  # wall clock: the campaign, dial to settlement
            self.lag = 0.0  # seconds settlements came after their time, in all
            # Final callbacks reach the gateway side by side, as the web server takes them.
            for _ in range(settlers):
                threading.Thread(target=self.settle_due, daemon=True).start()

        def handle_call(self, form, api_key):
            response, delay = super().handle_call(form, api_key)
            if response.status_code == 201:
                for entry in json.loads(response.body)["entries"]:
                    if entry["status"] == "Queued":
                        with self.stats:
                            self.first_dial = self.first_dial or time.time()
                            self.dials.append((entry["phoneNumber"], form.get("clientRequestId", "")))
                            self.ringing += 1
                            self.most_ringing = max(self.most_ringing, self.ringing)
                            heapq.heappush(self.due, (time.monotonic() + call_s, entry["phoneNumber"],
                                                      entry["sessionId"], form.get("clientRequestId", "")))
                            self.stats.notify()
            return response, delay

        def settle_due(self) -> None:
            while True:
                with self.stats:
                    while not self.due or self.due[0][0] > time.monotonic():
                        self.stats.wait(0.02)
                    due_at, phone, session_id, request_id = heapq.heappop(self.due)
                call = VoiceCallback(
                    session_id=session_id, direction=OUTBOUND, phone=phone, service_number=SERVICE_NUMBER,
                    is_active=False, digits=None, recording_url=None, duration_s=40, currency="XOF",
                    amount=Decimal(40), call_state="Completed", hangup_cause="NORMAL_CLEARING",
                    client_request_id=request_id, answered=True,
                )
                while True:
                    try:
                        with db.unit_of_work() as session:
                            calls.settle(session, call=call, now=dt.datetime.now(dt.timezone.utc), settings=settings)
                        break
                    except Exception as exc:  # SQLite's one writer: try again
                        if not Database.is_busy(exc):
                            raise
                        time.sleep(0.02)
                with self.stats:
                    self.ringing -= 1
                    self.settled += 1
                    self.last_settle = time.time()
                    self.lag += time.monotonic() - due_at

    platform = Platform()
    app = create_fake_at_voice_app(platform)

    @app.get("/_bench/stats")
    async def stats() -> JSONResponse:
        with platform.stats:
            return JSONResponse({"dialled": len(platform.dials), "settled": platform.settled,
                                 "ringing": platform.ringing, "most_ringing": platform.most_ringing,
                                 "first_dial": platform.first_dial, "last_settle": platform.last_settle,
                                 "mean_lag_s": platform.lag / max(platform.settled, 1)})

    @app.get("/_bench/dials")
    async def dials() -> JSONResponse:
        with platform.stats:
            return JSONResponse(list(platform.dials))

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- the parent --------------------------------------------------------------------------------------


def setup(url: str, alerts: int) -> tuple[int, list[str]]:
    """The database, the producers who chose calls, and one pending alert: (its id, the phones)."""
    from sqlalchemy import insert
    from sqlmodel import col, select

    from gateway.core import migrate
    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.data import models, seed
    from gateway.outbound import broadcast

    now = dt.datetime.now(dt.timezone.utc)
    migrate.upgrade(url)
    db = Database.from_settings(Settings(database_url=url))
    phones = [f"+2237{k:07d}" for k in range(alerts)]
    with db.unit_of_work() as session:
        seed.seed_demo(session, today=now.date())
    with db.unit_of_work() as session:
        crop = session.exec(select(models.Crop.id).where(models.Crop.code == "tomato")).one()
        market = session.exec(select(models.Market.id).where(models.Market.code == "sikasso")).one()
        for start in range(0, alerts, 5000):
            chunk = phones[start : start + 5000]
            session.execute(insert(models.Producer.__table__), [
                {"phone": p, "language": "bm" if k % 3 else "fr", "alert_channel": "voice", "role": "producer",
                 "opted_out": False, "name": "", "village": "", "region": "", "cluster": "", "created_at": now,
                 "updated_at": now} for k, p in enumerate(chunk)])  # fmt: skip
            ids = session.exec(select(models.Producer.id).where(col(models.Producer.phone).in_(chunk))).all()
            session.execute(insert(models.Subscription.__table__), [
                {"producer_id": i, "crop_id": crop, "market_id": market, "created_at": now} for i in ids])
        alert = broadcast.publish_alerts(session, pairs=[(crop, market)], now=now, title="bench: voice alerts")
        alert_id = alert.id
    db.dispose()
    return alert_id, phones


def db_counts(db, broadcast_id: int) -> dict[str, int]:
    from sqlalchemy import func
    from sqlmodel import select

    from gateway.data import models

    v = models.VoiceCall
    with db.unit_of_work() as session:
        return dict(session.exec(select(v.status, func.count()).where(v.broadcast_id == broadcast_id)
                                 .group_by(v.status)).all())


def run(args, url: str, tmp: Path) -> dict:
    from sqlmodel import col, select

    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.data import models
    from gateway.outbound import calls

    t_setup = time.monotonic()
    broadcast_id, phones = setup(url, args.alerts)
    print(f"  setup: {args.alerts:,} producers who chose calls, one alert pending ({time.monotonic() - t_setup:.1f} s)")
    db = Database.from_settings(Settings(database_url=url))
    port = free_port()
    platform_url = f"http://127.0.0.1:{port}"
    logs = open(tmp / "processes.log", "w")  # noqa: SIM115  (closed in the finally below, after the processes)
    platform = subprocess.Popen(
        [sys.executable, __file__, "--run-platform", str(port), "--platform-db", url, "--call-s", str(args.call_s),
         "--settlers", str(args.settlers)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=logs, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    workers: list[subprocess.Popen] = []
    try:
        for _ in range(200):
            try:
                http_json(platform_url + "/_bench/stats", timeout=1.0)
                break
            except OSError:
                time.sleep(0.1)
        env = worker_env(args, url, platform_url)
        t0 = time.monotonic()
        workers = [subprocess.Popen([sys.executable, "-m", "gateway.cli", "worker"], cwd=tmp, env=env, stdout=logs,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
                   for _ in range(args.workers)]  # fmt: skip
        killed: dict = {}
        most_db_live, stranded, last = 0, 0, {}
        live_statuses = list(calls.LIVE)
        while time.monotonic() - t0 < args.max_s:
            with db.unit_of_work() as session:
                live = session.exec(select(models.VoiceCall.id).where(col(models.VoiceCall.status).in_(live_statuses))).all()
            most_db_live = max(most_db_live, len(live))
            last = http_json(platform_url + "/_bench/stats")
            if not killed and last["dialled"] >= args.kill_at * args.alerts:
                victim = workers[0]
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                state = db_counts(db, broadcast_id)
                killed = {"at_s": round(time.monotonic() - t0, 1), "dialled": last["dialled"],
                          "claimed": state.get(calls.CLAIMED, 0), "dialing": state.get(calls.DIALING, 0)}
            state = db_counts(db, broadcast_id)
            if sum(state.values()) == args.alerts and last["ringing"] == 0 and not state.get(calls.CLAIMED) \
                    and not state.get(calls.QUEUED) and not state.get(calls.CALLING):
                stranded = state.get(calls.DIALING, 0)  # marked by the killed worker, never dialled
                break
            time.sleep(0.1)
        wall = time.monotonic() - t0
        last = http_json(platform_url + "/_bench/stats")
        dials = http_json(platform_url + "/_bench/dials")
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        platform.kill()
        platform.wait()
        logs.close()
    per_phone = collections.Counter(phone for phone, _ in dials)
    duplicates = sum(n - 1 for n in per_phone.values() if n > 1)
    state = db_counts(db, broadcast_id)
    db.dispose()
    placed = len(dials)
    duration = max(last["last_settle"] - last["first_dial"], 1e-9)  # first dial to last settlement
    everyone = set(per_phone) <= set(phones) and len(per_phone) + stranded == args.alerts
    most_at_once = max(last.get("most_ringing", 0), most_db_live)
    ok = duplicates == 0 and everyone and most_at_once <= args.cap and bool(killed)
    figures = {
        "alerts": args.alerts, "workers": args.workers, "cap": args.cap, "placed": placed, "duplicates": duplicates,
        "stranded": stranded, "most_ringing": last.get("most_ringing", 0), "most_db_live": most_db_live,
        "duration_s": round(duration, 1), "wall_s": round(wall, 1), "calls_per_s": round(placed / duration, 1),
        "settle_lag_ms": round(last["mean_lag_s"] * 1000), "killed": killed,
        "statuses": state, "ok": ok,
    }  # fmt: skip
    print(f"  {args.workers} worker processes, cap {args.cap} calls at once, each call answered {args.call_s} s after its dial")
    if killed:
        print(f"  worker SIGKILLed at {killed['at_s']} s, {killed['dialled']:,} calls dialled; "
              f"then {killed['claimed']} claimed and {killed['dialing']} dialling in the database")
    print(f"  calls placed {placed:,} of {args.alerts:,}; duplicates {duplicates}; "
          f"marked dialling by the killed worker, never dialled (wait for the give-up): {stranded}")
    print(f"  most calls at once: {last.get('most_ringing', 0)} at the platform, {most_db_live} live in the database "
          f"(cap {args.cap})")
    print(f"  final callbacks came {last['mean_lag_s'] * 1000:.0f} ms late on average ({args.settlers} at once)")
    print(f"  campaign {duration:.1f} s from the first dial to the last settlement ({wall:.1f} s with the workers' "
          f"start), {placed / duration:,.1f} calls/s; final statuses {state}")
    print(f"  bar (duplicates 0, everyone called, at most the cap at once, a worker killed): {'PASS' if ok else 'FAIL'}")
    return figures


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--alerts", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=3, choices=(2, 3))
    p.add_argument("--cap", type=int, default=50, help="GATEWAY_VOICE_CONCURRENT_CALLS")
    p.add_argument("--call-s", type=float, default=0.3, help="a call is answered and ends this long after its dial")
    p.add_argument("--settlers", type=int, default=4, help="final callbacks the platform delivers at once")
    p.add_argument("--kill-at", type=float, default=0.3, help="share of the alerts dialled when a worker is killed")
    p.add_argument("--lease-s", type=int, default=5, help="GATEWAY_WORKER_LEASE_S (60 in production)")
    p.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    p.add_argument("--postgres-url", default=os.environ.get(
        "SUGU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--max-s", type=float, default=600.0)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--run-platform", type=int, help=argparse.SUPPRESS)
    p.add_argument("--platform-db", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.run_platform:
        run_platform(args.run_platform, args.platform_db, args.call_s, args.settlers)
        return 0
    print(f"Sugu voice alert bench ({args.backend}): {args.alerts:,} alerts, {args.workers} workers, one SIGKILLed "
          f"at {args.kill_at:.0%} dialled; lease {args.lease_s} s")
    with (tempfile.TemporaryDirectory(prefix="sugu-voice-bench-") as folder,
          scratch_database(args.backend, folder, args.postgres_url, prefix="sugu_voice_bench") as url):
        figures = run(args, url, Path(folder))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
