"""Price import benchmark: 100,000 rows of WFP/HDX market prices through `gateway import-prices`,
on SQLite and PostgreSQL, twice (the second run must import nothing).

    .venv/bin/python bench/import_prices.py [--rows 100000] [--backends sqlite,postgresql]
                                            [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

For each backend:

1. Setup (not timed): a fresh database (a SQLite file in a temporary folder, or a new PostgreSQL
   database dropped afterwards), migrated, with the reference crops and markets only; a CSV file
   in HDX's full layout with its HXL row: every day back from 2026-11-28, for the reference crops
   at the reference markets and at 20 markets the database does not know (admin1 given, so
   --create-missing creates them and a region), decimal prices, units KG / 50 KG / 100 KG, one
   row in 50 a zero placeholder.
2. Timed: `gateway import-prices FILE --create-missing --no-alerts` as a child process (the real
   command; its rich progress bar is drawn only on a terminal, so here it is off). Then the same
   command again: it must say "0 prices imported".
3. Prints rows/s for each run and PASS/FAIL against the target (100,000 rows in under 60 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
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

TARGET_S = 60.0
HEADER = ("date,admin1,admin2,market,market_id,latitude,longitude,category,commodity,commodity_id,unit,"
          "priceflag,pricetype,currency,price,usdprice")
HXL = ("#date,#adm1+name,#adm2+name,#loc+market+name,#loc+market+code,#geo+lat,#geo+lon,#item+type,#item+name,"
       "#item+code,#item+unit,#item+prices+flag,#item+price+type,#currency+code,#value,#value+usd")


def reference_only(url: str) -> None:
    from gateway.core import migrate
    from gateway.core.db import Database
    from gateway.core.settings import Settings
    from gateway.data import models, seed

    migrate.upgrade(url)
    data = seed.load_json("reference.json")
    db = Database.from_settings(Settings(database_url=url))
    with db.unit_of_work() as session:
        for order, c in enumerate(data["crops"]):
            session.add(models.Crop(code=c["code"], name_fr=c["name_fr"], name_bm=c["name_bm"],
                                    default_unit=c["unit"], sort_order=order))
        for m in data["markets"]:
            session.add(models.Market(code=m["code"], name=m["name"], region=m["region"]))
    db.dispose()


def write_file(path: Path, rows: int) -> tuple[int, int]:
    """The CSV; returns (rows with a price, zero placeholders)."""
    from gateway.data import seed

    data = seed.load_json("reference.json")
    rng = random.Random(13)
    markets = [(m["region"], m["name"]) for m in data["markets"]]
    markets += [(f"Région {n % 4}", f"Marché nouveau {n}") for n in range(20)]
    units = ["KG", "KG", "KG", "50 KG", "100 KG"]
    day = dt.date(2026, 11, 28)
    written = zeros = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n" + HXL + "\n")
        while written + zeros < rows:
            for c in data["crops"]:
                for region, market in markets:
                    if written + zeros >= rows:
                        break
                    unit = rng.choice(units)
                    kg = 1 if unit == "KG" else int(unit.split()[0])
                    price = "0" if rng.random() < 0.02 else f"{rng.uniform(100, 900) * kg:.2f}"
                    zeros += price == "0"
                    written += price != "0"
                    out.write(f"{day.isoformat()},{region},,{market},1,12.6,-8.0,vegetables and fruits,"
                              f"{c['code'].capitalize()}s,1,{unit},actual,Wholesale,XOF,{price},1.0\n")
            day -= dt.timedelta(days=1)
    return written, zeros


def run(url: str, path: Path) -> tuple[float, str]:
    env = {**os.environ, "GATEWAY_DATABASE_URL": url}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "import-prices", str(path), "--create-missing", "--no-alerts"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "SUGU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sugu-import-bench-") as folder:
        path = Path(folder) / "hdx-prices.csv"
        priced, zeros = write_file(path, args.rows)
        print(f"file: {args.rows:,} rows ({priced:,} priced, {zeros:,} zero placeholders), "
              f"{path.stat().st_size / 1e6:.1f} MB")
        failed = False
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            with scratch_database(backend, folder, args.postgres_url, prefix="sugu_import_bench") as url:
                reference_only(url)
                first, out = run(url, path)
                imported = int(re.search(r"(\d+) prices imported", out)[1])
                second, out2 = run(url, path)
                again = re.search(r"(\d+) prices imported, (\d+) already present", out2)
                ok = first < TARGET_S and imported > 0 and again[1] == "0"
                failed |= not ok
                print(f"{backend}: first run {first:.1f} s for {args.rows:,} rows = {args.rows / first:,.0f} rows/s "
                      f"({imported:,} imported); second run {second:.1f} s = {args.rows / second:,.0f} rows/s, "
                      f"{again[1]} imported, {int(again[2]):,} already present -> {'PASS' if ok else 'FAIL'} "
                      f"(target: under {TARGET_S:.0f} s, idempotent)")
                print("   " + "\n   ".join(out.strip().splitlines()[-3:]))  # the command's summary
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
