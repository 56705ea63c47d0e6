"""Where a USSD hop's time goes: the saturated mix of bench/ussd_load.py, driven in-process.

    .venv/bin/python bench/ussd_profile.py [--hops 20000] [--profile] [--top 40]

The same journeys as the wrk runs (read once from the screens of a real server, then replayed:
returning callers from a pool, a share of new ones, a new sessionId every journey, many journeys
open at once and their hops interleaved) are posted straight into the ASGI applications, without
uvicorn or a socket, one request at a time: the gateway (gateway.app:app_factory, with its
lifespan) and bench/bare_app.py. It prints the CPU time per hop of each and their ratio, which
is what the wrk ratio measures minus uvicorn's and the kernel's share; with --profile, a
cProfile of the gateway's hops sorted by own time and by cumulative time.

It exists because a wrk run says how fast, not where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import ussd_load as load  # noqa: E402  (bench/ on the path first)


def journeys(paths: list[tuple[str, ...]], phones: int, new_share: float, seed: int, slots: int):
    """Endless hops as wrk's script sends them: (sessionId, phone, text), round robin over
    `slots` open journeys."""
    rng = random.Random(seed)
    serial, fresh = 0, 0

    def new_journey() -> list:
        nonlocal serial, fresh
        serial += 1
        if rng.random() < new_share:
            fresh += 1
            number, inputs = 8_000_000 + fresh, ["1"]
        else:
            number, inputs = rng.randrange(phones), []
        inputs += list(rng.choice(paths))
        return [f"ATUid_prof_{seed}_{serial}", f"+2237{number:07d}", inputs, 0]

    queue = [new_journey() for _ in range(slots)]
    pos = 0
    while True:
        pos = (pos + 1) % slots
        j = queue[pos]
        text = "*".join(j[2][: j[3]])
        j[3] += 1
        if j[3] > len(j[2]):
            queue[pos] = new_journey()
        yield j[0], j[1], text


def body_of(session_id: str, phone: str, text: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode({"sessionId": session_id, "serviceCode": load.SERVICE_CODE, "phoneNumber": phone,
                      "networkCode": load.NETWORK_CODE, "text": text}).encode()  # fmt: skip


async def post(app, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": load.PATH, "raw_path": load.PATH.encode(),
        "root_path": "", "query_string": b"", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 40000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())],
        "state": {},
    }  # fmt: skip
    sent = False
    status, chunks = 0, []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def drive(app, bodies: list[bytes], profiler: cProfile.Profile | None = None) -> tuple[float, int]:
    bad = 0
    if profiler is not None:
        profiler.enable()
    started = time.process_time()
    for body in bodies:
        status, reply = await post(app, body)
        if status != 200 or not reply.startswith((b"CON ", b"END ")) or any(a.encode() in reply for a in load.APOLOGIES):
            bad += 1
    spent = time.process_time() - started
    if profiler is not None:
        profiler.disable()
    return spent, bad


async def measure(args, paths) -> None:
    from contextlib import AsyncExitStack

    import bare_app

    from gateway.app import app_factory

    gateway, bare = app_factory(), bare_app.app_factory()
    hops = journeys(paths, args.phones, args.new_callers, args.seed, slots=200)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(gateway.router.lifespan_context(gateway))
        warm = [body_of(*next(hops)) for _ in range(args.warmup)]
        await drive(gateway, warm)
        await drive(bare, warm)
        # Alternating in short chunks, each chunk's hops posted to both: the machine's speed
        # drifts, so the ratio of neighbouring chunks is steadier than that of whole rounds.
        profiler = cProfile.Profile() if args.profile else None
        chunk = max(1, min(args.chunk, args.hops))
        g_times, b_times, ratios, bad = [], [], [], 0
        for k in range(args.rounds):
            for _ in range(max(1, args.hops // chunk)):
                bodies = [body_of(*next(hops)) for _ in range(chunk)]
                g, n_bad = await drive(gateway, bodies, profiler if k == args.rounds - 1 else None)
                b, _ = await drive(bare, bodies)
                g_times.append(g / chunk)
                b_times.append(b / chunk)
                ratios.append(b / g)
                bad += n_bad
        med = statistics.median
        print(f"  {len(ratios)} chunks of {chunk} hops: CPU a hop, median (lowest): gateway {1e3 * med(g_times):.3f}"
              f" ({1e3 * min(g_times):.3f}) ms, bare {1e3 * med(b_times):.3f} ({1e3 * min(b_times):.3f}) ms;"
              f" bare / gateway, median of the chunks: {med(ratios):.3f} (in-process, no uvicorn); bad replies {bad}")  # fmt: skip
    if profiler is not None and args.save:
        profiler.dump_stats(args.save)
    if profiler is not None:
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.top)
            print(out.getvalue())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hops", type=int, default=20_000, help="hops per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=500, help="hops a chunk, gateway and bare alternating")
    parser.add_argument("--warmup", type=int, default=3_000)
    parser.add_argument("--phones", type=int, default=1000, help="returning callers")
    parser.add_argument("--new-callers", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the last round")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", help="write the profile here too (pstats format)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="sugu-prof-"))
    env = dict(os.environ)
    env.update(GATEWAY_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}", GATEWAY_LOG_LEVEL="WARNING",
               GATEWAY_DEV_MODE="true", GATEWAY_USSD_HOPS_PER_MINUTE="1000000")  # fmt: skip
    env.pop("GATEWAY_LOG_JSON", None)
    load.prepare_database(env)
    server = load.Server("gateway", "gateway.app:app_factory", [], env, tmp)
    server.start()
    try:
        server.wait_ready()
        paths = load.derive_paths(server.url, args.seed)
        load.register_callers(server.url, args.phones)
    finally:
        server.stop()
    print(f"  {len(paths)} journey paths, {args.phones} returning callers, {args.new_callers:.0%} new")
    os.environ.update(env)
    try:
        asyncio.run(measure(args, paths))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
