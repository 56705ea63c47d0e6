"""Demo content: crops, markets, three years of weekly prices, buyers' demands, tips and the
services directory.

Regions, markets, crops, units and kinds come from the production reference file through the
same loader as `gateway setup` (gateway.reference), so demo and production agree; the demo adds
its own market (Bamako) the same way and keeps its price factors to itself.
Idempotent: reference rows are matched by their code; prices, demands, tips and services are
loaded only when their table is empty, so staff edits are never overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import func
from sqlmodel import Session, select

from gateway.data import models, reference

PRICE_WEEKS = 56  # a year and a month: enough for trends against last year
# Two more years before that, so seasonal forecasts have past years to learn from and a backtest
# has forecasts to score. Drawn from their own random stream: the recent 56 weeks stay the same.
HISTORY_WEEKS = 104
# Earlier years were cheaper (inflation) and each year had its own shock: a drought, a glut.
YEAR_LEVELS = (0.88, 0.94)


@dataclass
class SeedReport:
    crops: int = 0
    markets: int = 0
    prices: int = 0
    buyers: int = 0
    demands: int = 0
    tips: int = 0
    services: int = 0

    def __str__(self) -> str:
        # Services are named only when loaded: a second run reads as it always did.
        shown = {k: v for k, v in self.__dict__.items() if k != "services" or v}
        return ", ".join(f"{k} +{v}" for k, v in shown.items())


def load_json(name: str):
    return json.loads(resources.files("gateway").joinpath("demo", name).read_text("utf-8"))


def _count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def _upsert_by_code(session: Session, model: type, code: str, values: dict) -> tuple[object, bool]:
    row = session.exec(select(model).where(model.code == code)).first()
    if row is not None:
        return row, False
    row = model(code=code, **values)
    session.add(row)
    session.flush()
    return row, True


def market_days(today: dt.date, weeks: int) -> list[dt.date]:
    """The last `weeks` Saturdays up to today (Sikasso's big market day), oldest first."""
    last = today - dt.timedelta(days=(today.weekday() - 5) % 7)
    return [last - dt.timedelta(weeks=n) for n in reversed(range(weeks))]


def seasonal_price(monthly: list[int], day: dt.date) -> float:
    """Monthly levels interpolated by day, so the series moves smoothly week to week."""
    month = day.month - 1
    frac = (day.day - 1) / 31
    return monthly[month] * (1 - frac) + monthly[(month + 1) % 12] * frac


def demo_reference(data: dict) -> dict:
    """The production reference plus the demo's markets it lacks (and their regions)."""
    document = reference.production_document()
    known = {m["code"] for m in document["markets"]}
    regions = {r["name_fr"]: r["code"] for r in document["regions"]}
    for mk in data["markets"]:
        if mk["code"] in known:
            continue
        if mk["region"] not in regions:
            code = reference_code(mk["region"])
            regions[mk["region"]] = code
            document["regions"].append({"code": code, "name_fr": mk["region"], "name_bm": mk["region"]})
        document["markets"].append({"code": mk["code"], "name": mk["name"], "region": regions[mk["region"]]})
    return document


def reference_code(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum()) or "region"


def seed_demo(session: Session, *, today: dt.date) -> SeedReport:
    report = SeedReport()
    data = load_json("reference.json")

    now = dt.datetime.combine(today, dt.time(12), dt.timezone.utc)
    # Not audited: demo content is not a staff change (as its prices and tips are not).
    loaded = reference.load(session, demo_reference(data), now=now, audited=False)
    report.crops, report.markets = loaded.added["crops"], loaded.added["markets"]
    crops = {c.code: c for c in session.exec(select(models.Crop))}
    markets = {m.code: m for m in session.exec(select(models.Market))}

    buyers: dict[str, models.Buyer] = {}
    for b in data["buyers"]:
        row, new = _upsert_by_code(
            session,
            models.Buyer,
            b["code"],
            {"name": b["name"], "phone": b["phone"], "contact_name": b["contact_name"],
             "daily_summary": b.get("daily_summary", False)},
        )
        buyers[b["code"]] = row
        report.buyers += new

    if _count(session, models.PriceObservation) == 0:
        report.prices = _seed_prices(session, data, crops, markets, today)

    if _count(session, models.Demand) == 0:
        for d in data["demands"]:
            session.add(
                models.Demand(
                    buyer_id=buyers[d["buyer"]].id,
                    crop_id=crops[d["crop"]].id,
                    quantity_kg=d["quantity_kg"],
                    price=d["price"],
                    unit=d["unit"],
                    place=d["place"],
                    valid_until=today + dt.timedelta(days=d["valid_days"]),
                    status=d.get("status", "open"),
                )
            )
            report.demands += 1

    if _count(session, models.Tip) == 0:
        for order, t in enumerate(load_json("tips.json")):
            session.add(
                models.Tip(
                    category=t["category"],
                    crop_id=crops[t["crop"]].id if t.get("crop") else None,
                    title_fr=t["title_fr"],
                    title_bm=t["title_bm"],
                    text_fr=t["text_fr"],
                    text_bm=t["text_bm"],
                    sort_order=order,
                )
            )
            report.tips += 1

    if _count(session, models.Service) == 0:
        for entry in data.get("services", []):
            session.add(models.Service(**entry))
            report.services += 1
    session.flush()
    return report


def _seed_prices(session, data, crops, markets, today) -> int:
    rng = random.Random(2231)  # fixed: the same demo everywhere
    older = random.Random(1987)
    rows, older_rows = [], []
    all_days = market_days(today, HISTORY_WEEKS + PRICE_WEEKS)
    history, days = all_days[:HISTORY_WEEKS], all_days[HISTORY_WEEKS:]
    for c in data["crops"]:
        for mk in data["markets"]:
            # Not every market trades every vegetable; the main ones do.
            if c["code"] in mk.get("skip_crops", []):
                continue
            factor = mk.get("factor", 1.0) * mk.get("crop_factor", {}).get(c["code"], 1.0)
            lag = mk.get("lag_weeks", 0)  # a market whose reports stopped coming: stale prices
            shocks = [older.uniform(0.9, 1.1) for _ in YEAR_LEVELS]
            recent = days[: len(days) - lag] if lag else days
            levels = [(day, seasonal_price(c["monthly"], day) * factor * rng.uniform(0.93, 1.07)) for day in recent]
            # The older years go after the recent weeks, so that the recent rows keep their ids.
            levels += [
                (day, seasonal_price(c["monthly"], day) * factor * YEAR_LEVELS[n // 52] * shocks[n // 52]
                 * older.uniform(0.93, 1.07))
                for n, day in enumerate(history)
            ]  # fmt: skip
            step = 500 if c["unit"] == "basket" else 5
            for day, level in levels:
                row = models.PriceObservation(
                    crop_id=crops[c["code"]].id,
                    market_id=markets[mk["code"]].id,
                    observed_on=day,
                    price=int(round(level / step) * step),
                    unit=c["unit"],
                    kind="wholesale",
                    source="demo",
                )
                (rows if day >= days[0] else older_rows).append(row)
    session.add_all(rows + older_rows)
    return len(rows) + len(older_rows)
