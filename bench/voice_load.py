"""Voice callback benchmark: how long the gateway takes to answer a key press, with its audio
already made and when a prompt is new.

    .venv/bin/python bench/voice_load.py [--calls 60] [--seed 7]

What it does, in one run:

1. A fresh SQLite database in a temporary directory (`gateway migrate`, `gateway seed-demo`),
   then one uvicorn process of the gateway (the same options as bench/ussd_load.py), with
   GATEWAY_VOICE_INBOUND=answer (an inbound call is picked up: the callbacks under test).
2. Round "new": --calls calls, each walking a journey of key presses (prices of a crop at a
   market, its trend, where to sell, buyers' demands, tips, the language menu) with the fake
   platform's driver (gateway/aggregators/fake_at_voice.py), which fetches every prompt's audio
   and checks it is a WAV. The first time a prompt is said, its clips are synthesized (once per
   clip, ever) and joined: these callbacks measure a new playlist.
3. Round "cached": the same calls again. Every prompt's audio exists: these callbacks measure a
   voice hop with its audio cached (the bar of issue 16: p99 < 50 ms).
4. Prints p50/p90/p99/max of the callback's server round trip per round (the HTTP POST, as the
   platform waits for it), the audio fetches apart, and the time to join a new playlist from
   stored clips, measured in-process over the same prompts (bar: < 100 ms).

The client is sequential (one call at a time): the figure is a callback's own cost, not the
server's throughput. The client shares the machine with the server.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

import httpx  # noqa: E402
from ussd_load import Server, percentile, prepare_database  # noqa: E402

from gateway.aggregators.fake_at_voice import FakeVoiceCall  # noqa: E402

SERVICE = "+22320221234"
# Journeys as keys (a "#" ends a quantity): main menu 1 prices, 2 demands, 3 tips.
JOURNEYS = [
    ["1", "1", "2"],  # prices, tomato, where to sell
    ["1", "2", "9", "9", "2"],  # prices, onion, the 12th market
    ["1", "2", "9", "9", "2", "2"],  # ... and its trend
    ["1", "3", "1"],  # prices, a crop, all markets
    ["2", "1"],  # buyers' demands, the first
    ["3", "1", "1"],  # tips
    ["1", "1", "9", "3"],  # prices, tomato, a market on the second prompt
]


class Timed(httpx.Client):
    """Times each callback POST (the platform's wait) apart from the audio GETs."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.posts: list[float] = []
        self.gets: list[float] = []

    def request(self, method, url, *args, **kwargs):
        started = time.perf_counter()
        response = super().request(method, url, *args, **kwargs)
        (self.posts if method == "POST" else self.gets).append(time.perf_counter() - started)
        return response


def one_round(url: str, calls: int, seed: int, round_: int) -> tuple[list[float], list[float]]:
    """`calls` new callers (so each is asked the language first), the same journeys every round."""
    rng = random.Random(seed)
    with Timed(timeout=30) as client:
        for n in range(calls):
            phone = f"+22376{round_}{n % 100000:05d}"
            call = FakeVoiceCall(client, f"{url}/webhooks/at/voice", phone, SERVICE,
                                 session_id=f"bench-{round_}-{n}")
            call.start()
            call.press(rng.choice(["1", "2"]))  # the language, asked of a new caller
            for key in rng.choice(JOURNEYS):
                if call.state == "ended":
                    break
                # A quantity prompt (an offer) takes digits ended by #.
                call.press("500#" if call.waiting_for.finish_on_key == "#" else key)
            if call.state != "ended":
                call.hang_up(30)
            assert call.played and all(p.kind == "wav" for p in call.played), "a prompt was not audio"
        return client.posts, client.gets


def show(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return (f"{name:<28} n={len(ms):>5}  p50 {percentile(ms, 50):7.1f} ms  p90 {percentile(ms, 90):7.1f} ms  "
            f"p99 {percentile(ms, 99):7.1f} ms  max {ms[-1]:7.1f} ms")


def join_times(db_url: str, seed: int) -> list[float]:
    """Joining a new playlist from stored clips, in-process: the prompts' clips, shuffled into
    playlists never joined before."""
    from sqlmodel import select

    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.data import models
    from gateway.voice.prompts import PromptAudio
    from menus.voice import Clip

    db = Database.from_settings(Settings(database_url=db_url))
    rng = random.Random(seed)
    prompts = PromptAudio(cache_s=0)
    times = []
    try:
        with db.unit_of_work() as session:
            rows = session.exec(select(models.AudioPrompt.clip, models.AudioPrompt.text)).all()
        clips = [Clip(c, t) for c, t in rows if c.startswith("fr.")]
        for _ in range(200):
            playlist = rng.sample(clips, min(len(clips), rng.randint(8, 15)))
            with db.unit_of_work() as session:
                started = time.perf_counter()
                prompts.playlist(session, playlist)
                times.append(time.perf_counter() - started)
    finally:
        db.dispose()
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sugu-voice-bench-") as tmp:
        db_path = Path(tmp) / "bench.db"
        env = {
            **os.environ,
            "GATEWAY_DATABASE_URL": f"sqlite:///{db_path}",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_DEV_MODE": "true",
            "GATEWAY_VOICE_INBOUND": "answer",
            "GATEWAY_WORKER_IN_PROCESS": "false",
            "GATEWAY_USSD_HOPS_PER_MINUTE": "100000",
        }
        prepare_database(env)
        server = Server("gateway", "gateway.app:app_factory", [], env, Path(tmp))
        env["GATEWAY_PUBLIC_URL"] = server.url
        server.env = env
        server.start()
        try:
            server.wait_ready()
            print(f"server: {server.display()}")
            new_posts, new_gets = one_round(server.url, args.calls, args.seed, 0)
            cached_posts, cached_gets = one_round(server.url, args.calls, args.seed, 1)
        finally:
            server.stop()
        joins = join_times(env["GATEWAY_DATABASE_URL"], args.seed)
    print(show("callback, new prompts", new_posts))
    print(show("callback, audio cached", cached_posts))
    print(show("audio fetch (GET .wav)", cached_gets + new_gets))
    print(show("join a new playlist", joins))
    p99_cached = percentile(sorted(cached_posts), 99) * 1000
    p99_join = percentile(sorted(joins), 99) * 1000
    print(f"{'PASS' if p99_cached < 50 else 'FAIL'}: voice hop p99 with audio cached {p99_cached:.1f} ms (< 50 ms)")
    print(f"{'PASS' if p99_join < 100 else 'FAIL'}: new playlist joined p99 {p99_join:.1f} ms (< 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
