"""Producer import benchmark: 100,000 producers with subscriptions through `gateway
import-producers`, on SQLite and PostgreSQL, twice (the second run must change nothing).

    .venv/bin/python bench/import_producers.py [--rows 100000] [--backends sqlite,postgresql]
                                               [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each backend:

1. Setup (not timed): a fresh database (a SQLite file in a temporary folder, or a new PostgreSQL
   database dropped afterwards), migrated, with the reference crops and markets only (the same
   setup as bench/import_prices.py); a CSV file `phone,name,language,village,region,cluster,
   subscriptions,role` with Malian numbers written as people write them (spaces, with and
   without +223), one to three `crop@market` subscriptions each, one producer in 200 an
   enumerator.
2. Timed: `gateway import-producers FILE` as a child process (the real command). Then the same
   command again: it must say "0 new, 0 updated".
3. Prints rows/s for each run and PASS/FAIL against the target (100,000 rows in under 30 s).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.databases import scratch_database  # noqa: E402
from bench.import_prices import reference_only  # noqa: E402  (same setup)

TARGET_S = 30.0
NAMES = ("Awa", "Fatoumata", "Moussa", "Mariam", "Oumar", "Kadiatou", "Seydou", "Aminata", "Bakary", "Hawa")
VILLAGES = ("Kignan", "Zangaradougou", "Finkolo", "Kaniko", "Sévaré", "Fatoma", "Niafunké", "Goundam")


def write_file(path: Path, rows: int) -> None:
    from gateway.data import seed

    data = seed.load_json("reference.json")
    rng = random.Random(7)
    crops = [c["name_fr"] for c in data["crops"]]
    markets = [(m["name"], m["region"]) for m in data["markets"]]
    numbers = rng.sample(range(0, 10_000_000), rows)
    with path.open("w", encoding="utf-8") as out:
        out.write("phone,name,language,village,region,cluster,subscriptions,role\n")
        for n, number in enumerate(numbers):
            digits = f"7{number:07d}"
            phone = f"+223 {digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}" if n % 2 else digits
            market, region = rng.choice(markets)
            subs = "; ".join(f"{crop}@{market}" for crop in rng.sample(crops, rng.randint(1, 3)))
            role = "enumerator" if n % 200 == 0 else ""
            out.write(f"{phone},{rng.choice(NAMES)} {n},{rng.choice(('fr', 'bm', 'bm'))},{rng.choice(VILLAGES)},"
                      f"{region},Groupement {n % 300},{subs},{role}\n")


def run(url: str, path: Path) -> tuple[float, str]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "import-producers", str(path)],
                          cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "SUGU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sugu-producers-bench-") as folder:
        path = Path(folder) / "producers.csv"
        write_file(path, args.rows)
        print(f"file: {args.rows:,} producers, {path.stat().st_size / 1e6:.1f} MB")
        failed = False
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            with scratch_database(backend, folder, args.postgres_url, prefix="sugu_producers_bench") as url:
                reference_only(url)
                first, out = run(url, path)
                counts = re.search(r"\((\d+) new, (\d+) updated", out)
                second, out2 = run(url, path)
                again = re.search(r"\((\d+) new, (\d+) updated", out2)
                ok = first < TARGET_S and int(counts[1]) == args.rows and again[1] == again[2] == "0"
                failed |= not ok
                print(f"{backend}: first run {first:.1f} s = {args.rows / first:,.0f} rows/s ({counts[1]} new); "
                      f"second run {second:.1f} s = {args.rows / second:,.0f} rows/s ({again[1]} new, {again[2]} updated) "
                      f"-> {'PASS' if ok else 'FAIL'} (target: under {TARGET_S:.0f} s, nothing changed the second time)")
                print("   " + out.strip().splitlines()[-1])
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
