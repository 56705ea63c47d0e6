"""Importing prices and producers from CSV files (`gateway import-prices`, `import-producers`).

Two steps, so that a file is either imported whole or not at all:

1. `parse_prices_csv` / `parse_producers_csv` (pure: text in, rows and errors out) validate every
   row and report each problem with its line number (the header is line 1) and a clear reason,
   with suggestions for names that are nearly right (`market "Sikaso" unknown (did you mean
   Sikasso?)`). Problems with the file itself (empty, required columns missing) raise
   `FileFormatError`.
2. `import_prices` / `import_producers` write the valid rows in the caller's unit of work (they
   never commit). Both are idempotent: an exact duplicate price is reported as already present,
   producers are upserted by phone and subscriptions only ever added.

Files are UTF-8 (a BOM is accepted) with `;` or `,` between values (told apart on the header).
Names of crops and markets are matched forgivingly: case, accents and punctuation do not matter
("Sévaré", "sevare", "SEVARE"), and a crop may be given by its code, French or Bambara name.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway import models
from gateway.broadcast import publish_alerts
from gateway.effects import insert_ignore, producer_by_phone
from gateway.phones import InvalidPhone, parse_phone
from messages.ussd import to_ussd

MAX_PRICE = 10_000_000  # FCFA per unit: far above any vegetable, well below a typo's zeroes
MAX_AGE_YEARS = 2

UNITS = ("kg", "sack50", "sack100", "basket", "crate", "pile")
# Folded and without spaces: "Sac 50 kg" → "sac50kg".
UNIT_WORDS = {
    **{u: u for u in UNITS},
    "kilo": "kg", "kilos": "kg", "kgs": "kg",
    "sac": "sack50", "sacs": "sack50", "sac50": "sack50", "sac50kg": "sack50", "sack": "sack50",
    "sac100": "sack100", "sac100kg": "sack100", "sacs100kg": "sack100",
    "panier": "basket", "paniers": "basket",
    "caisse": "crate", "caisses": "crate",
    "tas": "pile",
}
KIND_WORDS = {"wholesale": "wholesale", "gros": "wholesale", "retail": "retail", "detail": "retail"}
LANGUAGE_WORDS = {
    "fr": "fr", "francais": "fr", "french": "fr",
    "bm": "bm", "bambara": "bm", "bamanankan": "bm", "bamana": "bm",
}

# Column name (folded) → canonical column; French headers are accepted too.
PRICE_COLUMNS = {
    "date": "date",
    "market": "market", "marche": "market",
    "crop": "crop", "culture": "crop", "produit": "crop",
    "price": "price", "prix": "price",
    "unit": "unit", "unite": "unit",
    "kind": "kind", "type": "kind",
}
PRICE_REQUIRED = ("date", "market", "crop", "price")
PRODUCER_COLUMNS = {
    "phone": "phone", "telephone": "phone", "tel": "phone",
    "name": "name", "nom": "name",
    "language": "language", "langue": "language",
    "village": "village",
    "region": "region",
    "cluster": "cluster", "groupement": "cluster",
    "subscriptions": "subscriptions", "abonnements": "subscriptions",
}
PRODUCER_REQUIRED = ("phone",)
# Producer text fields and their column widths (models.Producer).
PRODUCER_TEXT = {"name": 80, "village": 80, "cluster": 80}

_WORDS = re.compile(r"[a-z0-9]+")
_SPACES_IN_NUMBERS = re.compile(r"[\s\u00a0\u202f\u2009]+")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})")


class FileFormatError(ValueError):
    """The file as a whole cannot be read: empty, or required columns missing."""


@dataclass(frozen=True)
class RowError:
    line: int  # in the file, the header being line 1
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class PriceRow:
    line: int
    observed_on: dt.date
    crop_id: int
    market_id: int
    price: int
    unit: str
    kind: str

    @property
    def pair(self) -> tuple[int, int]:
        return (self.crop_id, self.market_id)

    @property
    def key(self) -> tuple:
        """What makes two observations the same one."""
        return (self.crop_id, self.market_id, self.observed_on, self.unit, self.kind, self.price)


@dataclass(frozen=True)
class ProducerRow:
    line: int
    phone: str  # E.164
    name: str = ""
    language: str | None = None  # None: leave as it is
    village: str = ""
    region: str = ""
    cluster: str = ""
    subscriptions: tuple[tuple[int, int], ...] = ()  # (crop_id, market_id)


@dataclass
class PriceImportReport:
    rows: int = 0  # valid rows given
    imported: int = 0  # observations created
    already_present: int = 0  # exact duplicates of a stored observation (or of an earlier row)
    pairs: int = 0  # (crop, market) pairs that got a new price
    alert_pairs: int = 0  # pairs whose newest price is news: alerts queued for them
    broadcast_id: int | None = None


@dataclass
class ProducerImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0  # existing producers with at least one field changed
    unchanged: int = 0
    subscriptions_added: int = 0
    subscriptions_present: int = 0


# -- names ------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower-case ASCII words joined by one space: "Pomme-de-Terre" → "pomme de terre"."""
    return " ".join(_WORDS.findall(to_ussd(text or "").lower()))


def _choices(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


class Names:
    """Forgiving look-up of a crop or market by any of its names; suggestions when none fits."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.ids: dict[str, set[int]] = defaultdict(set)
        self.spelling: dict[str, str] = {}  # folded → as written in the database

    def add(self, item_id: int, name: str, *, weak: bool = False, shown: str = "") -> None:
        """`weak`: only if no other name folds the same; `shown`: what suggestions say instead."""
        key = fold(name)
        if not key or (weak and key in self.ids):
            return
        self.ids[key].add(item_id)
        self.spelling.setdefault(key, shown or name)

    def find(self, raw: str) -> tuple[int | None, str | None]:
        """(id, None), or (None, the reason it was not found)."""
        text = raw.strip()
        if not text:
            return None, f"{self.what} is missing"
        key = fold(text)
        ids = self.ids.get(key)
        if ids and len(ids) == 1:
            return next(iter(ids)), None
        if ids:
            return None, f'{self.what} "{text}" is ambiguous'
        suggestions: list[str] = []
        suggested: set[int] = set()
        for hit in difflib.get_close_matches(key, list(self.ids), n=10, cutoff=0.6):
            if self.ids[hit] & suggested or self.spelling[hit] in suggestions:
                continue  # one suggestion per crop or market: its closest name
            suggested |= self.ids[hit]
            suggestions.append(self.spelling[hit])
        suggestions = suggestions[:3]
        hint = f" (did you mean {_choices(suggestions)}?)" if suggestions else ""
        return None, f'{self.what} "{text}" unknown{hint}'


def crop_names(crops: Iterable[Any]) -> Names:
    names = Names("crop")
    crops = list(crops)
    for crop in crops:  # names first: a suggestion shows the name, not the code
        for name in (crop.name_fr, crop.name_bm, getattr(crop, "code", "")):
            names.add(crop.id, name)
    for crop in crops:  # plurals, never hiding a real name: "tomates", "oignons"
        names.add(crop.id, crop.name_fr + "s", weak=True, shown=crop.name_fr)
    return names


def market_names(markets: Iterable[Any]) -> Names:
    names = Names("market")
    for market in markets:
        for name in (market.name, getattr(market, "code", "")):
            names.add(market.id, name)
    return names


# -- cells ------------------------------------------------------------------------------------------


def years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def parse_date(raw: str, today: dt.date) -> tuple[dt.date | None, str | None]:
    text = raw.strip()
    if not text:
        return None, "date is missing"
    iso, dmy = _ISO_DATE.fullmatch(text), _DMY_DATE.fullmatch(text)
    if not iso and not dmy:
        return None, f'date "{text}" not understood (write 2026-11-28 or 28/11/2026)'
    year, month, day = (
        (int(iso[1]), int(iso[2]), int(iso[3])) if iso else (int(dmy[4]), int(dmy[3]), int(dmy[1]))
    )
    try:
        value = dt.date(year, month, day)
    except ValueError:
        return None, f'date "{text}" does not exist'
    if value > today:
        return None, f'date "{text}" is in the future'
    if value < years_before(today, MAX_AGE_YEARS):
        return None, f'date "{text}" is more than {MAX_AGE_YEARS} years old'
    return value, None


def parse_price(raw: str) -> tuple[int | None, str | None]:
    text = raw.strip()
    if not text:
        return None, "price is missing"
    digits = _SPACES_IN_NUMBERS.sub("", text)
    if re.fullmatch(r"-\d+([.,]\d+)?", digits):
        return None, f'price "{text}" must be positive'
    if re.fullmatch(r"\d*[.,]\d+", digits):
        return None, f'price "{text}" is not a whole number of FCFA (write 1250 or 1 250)'
    if not re.fullmatch(r"\d+", digits):
        return None, f'price "{text}" is not a number'
    value = int(digits)
    if value == 0:
        return None, "price must be positive, not 0"
    if value > MAX_PRICE:
        return None, f'price "{text}" is over the limit of 10 000 000 FCFA'
    return value, None


def parse_unit(raw: str) -> tuple[str | None, str | None]:
    unit = UNIT_WORDS.get(fold(raw).replace(" ", ""))
    if unit is None:
        return None, (
            f'unit "{raw.strip()}" unknown (use kg, sack50, sack100, basket, crate, pile, '
            "or sac, sac 100kg, panier, caisse, tas)"
        )
    return unit, None


def parse_kind(raw: str) -> tuple[str | None, str | None]:
    kind = KIND_WORDS.get(fold(raw))
    if kind is None:
        return None, f'kind "{raw.strip()}" unknown (use wholesale or retail, gros or détail)'
    return kind, None


def parse_language(raw: str) -> tuple[str | None, str | None]:
    language = LANGUAGE_WORDS.get(fold(raw))
    if language is None:
        return None, f'language "{raw.strip()}" unknown (use fr or bm)'
    return language, None


# -- reading the file -------------------------------------------------------------------------------


def sniff_delimiter(header: str) -> str:
    """`;` or `,`: whichever separates the header's column names (which contain neither)."""
    return ";" if header.count(";") > header.count(",") else ","


def _records(
    text: str, columns: dict[str, str], required: Sequence[str]
) -> Iterator[tuple[int, dict[str, str], RowError | None]]:
    """(line, {column: value}, a shape problem or None) for every non-blank row after the header."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise FileFormatError("the file is empty")
    delimiter = sniff_delimiter(lines[first])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    header: list[str | None] = []
    for cells in reader:
        if any(cell.strip() for cell in cells):
            header = [columns.get(fold(cell)) for cell in cells]
            header_line = reader.line_num
            break
    seen = [name for name in header if name]
    for name in dict.fromkeys(seen):
        if seen.count(name) > 1:
            raise FileFormatError(f'line {header_line}: column "{name}" appears twice')
    missing = [name for name in required if name not in seen]
    if missing:
        raise FileFormatError(
            f"line {header_line}: required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} missing (the header must name: {', '.join(required)}; "
            f"values separated by '{delimiter}')"
        )
    rows = 0
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        rows += 1
        problem = None
        extra = cells[len(header):]
        if any(cell.strip() for cell in extra):
            problem = RowError(
                reader.line_num,
                f"{len(cells)} values but the header has {len(header)} columns "
                f"(a '{delimiter}' inside a value must be quoted)",
            )
        values = {name: cell.strip() for name, cell in zip(header, cells) if name}
        yield reader.line_num, values, problem
    if rows == 0:
        raise FileFormatError("the file has no rows after the header")


# -- prices -----------------------------------------------------------------------------------------


def parse_prices_csv(
    text: str, *, crops: Sequence[Any], markets: Sequence[Any], today: dt.date
) -> tuple[list[PriceRow], list[RowError]]:
    """Columns date, market, crop, price, and optionally unit (default: the crop's usual unit)
    and kind (default: wholesale). Raises FileFormatError when the file cannot be read at all."""
    crop_lookup, market_lookup = crop_names(crops), market_names(markets)
    default_unit = {c.id: c.default_unit for c in crops}
    rows: list[PriceRow] = []
    errors: list[RowError] = []
    first_seen: dict[tuple, PriceRow] = {}  # (crop, market, date, unit, kind) → first row
    for line, values, problem in _records(text, PRICE_COLUMNS, PRICE_REQUIRED):
        found: list[str] = []
        if problem:
            errors.append(problem)
            continue
        day, reason = parse_date(values.get("date", ""), today)
        found += [reason] if reason else []
        market_id, reason = market_lookup.find(values.get("market", ""))
        found += [reason] if reason else []
        crop_id, reason = crop_lookup.find(values.get("crop", ""))
        found += [reason] if reason else []
        price, reason = parse_price(values.get("price", ""))
        found += [reason] if reason else []
        unit = None
        if values.get("unit"):
            unit, reason = parse_unit(values["unit"])
            found += [reason] if reason else []
        elif crop_id is not None:
            unit = default_unit[crop_id]
        kind = "wholesale"
        if values.get("kind"):
            kind, reason = parse_kind(values["kind"])
            found += [reason] if reason else []
        if found:
            errors += [RowError(line, reason) for reason in found]
            continue
        row = PriceRow(line, day, crop_id, market_id, price, unit, kind)
        earlier = first_seen.setdefault(row.key[:5], row)
        if earlier is not row and earlier.price != row.price:
            errors.append(
                RowError(line, f"line {earlier.line} gives another price ({earlier.price}) for the same "
                               "crop, market, date, unit and kind")
            )
            continue
        rows.append(row)
    return rows, errors


def import_prices(
    session: Session,
    rows: Sequence[PriceRow],
    *,
    now: dt.datetime,
    source: str,
    alerts: bool = True,
) -> PriceImportReport:
    """Publish the rows (status "published"); an exact duplicate of a stored observation, whatever
    its status, is counted as already present. Alerts go out for each (crop, market) whose newest
    row in the file was imported and is at least as recent as the latest price already published
    (back-filled history is not news)."""
    report = PriceImportReport(rows=len(rows))
    if not rows:
        return report
    obs = models.PriceObservation
    crop_ids = sorted({r.crop_id for r in rows})
    market_ids = sorted({r.market_id for r in rows})
    in_file = (col(obs.crop_id).in_(crop_ids), col(obs.market_id).in_(market_ids))
    stored = {
        tuple(found)
        for found in session.exec(
            select(obs.crop_id, obs.market_id, obs.observed_on, obs.unit, obs.kind, obs.price).where(
                *in_file,
                obs.observed_on >= min(r.observed_on for r in rows),
                obs.observed_on <= max(r.observed_on for r in rows),
            )
        ).all()
    }
    latest_published = {
        (c, m): day
        for c, m, day in session.exec(
            select(obs.crop_id, obs.market_id, func.max(obs.observed_on))
            .where(*in_file, obs.status == "published")
            .group_by(obs.crop_id, obs.market_id)
        ).all()
    }
    newest: dict[tuple[int, int], dt.date] = {}
    for row in rows:
        newest[row.pair] = max(newest.get(row.pair, row.observed_on), row.observed_on)

    source = source[:64]
    new_pairs: set[tuple[int, int]] = set()
    news: set[tuple[int, int]] = set()
    for row in rows:
        if row.key in stored:
            report.already_present += 1
            continue
        stored.add(row.key)
        session.add(
            obs(
                crop_id=row.crop_id,
                market_id=row.market_id,
                observed_on=row.observed_on,
                price=row.price,
                unit=row.unit,
                kind=row.kind,
                source=source,
                status="published",
                created_at=now,
            )
        )
        report.imported += 1
        new_pairs.add(row.pair)
        previous = latest_published.get(row.pair)
        if row.observed_on == newest[row.pair] and (previous is None or row.observed_on >= previous):
            news.add(row.pair)
    session.flush()
    report.pairs = len(new_pairs)
    report.alert_pairs = len(news)
    if alerts and news:
        broadcast = publish_alerts(session, pairs=news, now=now, title=f"Prices from {source}"[:120])
        report.broadcast_id = broadcast.id if broadcast else None
    return report


# -- producers --------------------------------------------------------------------------------------


def parse_subscriptions(
    raw: str, crops: Names, markets: Names
) -> tuple[tuple[tuple[int, int], ...], list[str]]:
    pairs: list[tuple[int, int]] = []
    problems: list[str] = []
    for item in re.split(r"[;|]", raw):
        item = item.strip()
        if not item:
            continue
        if item.count("@") != 1:
            problems.append(f'subscription "{item}" is not crop@market (e.g. tomate@sikasso)')
            continue
        crop_text, market_text = item.split("@")
        crop_id, crop_problem = crops.find(crop_text)
        market_id, market_problem = markets.find(market_text)
        problems += [f'subscription "{item}": {p}' for p in (crop_problem, market_problem) if p]
        if crop_id is not None and market_id is not None and (crop_id, market_id) not in pairs:
            pairs.append((crop_id, market_id))
    return tuple(pairs), problems


def parse_producers_csv(
    text: str, *, crops: Sequence[Any], markets: Sequence[Any]
) -> tuple[list[ProducerRow], list[RowError]]:
    """Columns phone, and optionally name, language, village, region, cluster, subscriptions
    (`crop@market` separated by `;` or `|`). Empty values leave what is stored unchanged.
    Raises FileFormatError when the file cannot be read at all."""
    crop_lookup, market_lookup = crop_names(crops), market_names(markets)
    # A producer's region is one of the markets' (as the USSD profile offers), spelt as they are.
    region_list = list(dict.fromkeys(m.region for m in markets if m.region))
    regions = Names("region")
    for n, region in enumerate(region_list):
        regions.add(n, region)
    rows: list[ProducerRow] = []
    errors: list[RowError] = []
    phones: dict[str, int] = {}  # E.164 → line
    for line, values, problem in _records(text, PRODUCER_COLUMNS, PRODUCER_REQUIRED):
        if problem:
            errors.append(problem)
            continue
        found: list[str] = []
        raw_phone = values.get("phone", "")
        phone = None
        try:
            phone = parse_phone(raw_phone)
        except InvalidPhone as exc:
            found.append(f'phone "{raw_phone}": {exc}' if raw_phone else "phone is missing")
        if phone is not None:
            if phone in phones:
                found.append(f"phone {phone} is already on line {phones[phone]}")
            else:
                phones[phone] = line
        language = None
        if values.get("language"):
            language, reason = parse_language(values["language"])
            found += [reason] if reason else []
        region = ""
        if values.get("region"):
            region_id, reason = regions.find(values["region"])
            if reason:
                found.append(reason)
            else:
                region = region_list[region_id]
        text_fields = {}
        for name, width in PRODUCER_TEXT.items():
            value = " ".join(values.get(name, "").split())
            if len(value) > width:
                found.append(f"{name} is longer than {width} characters")
            text_fields[name] = value
        subscriptions, problems = parse_subscriptions(values.get("subscriptions", ""), crop_lookup, market_lookup)
        found += problems
        if found:
            errors += [RowError(line, reason) for reason in found]
            continue
        rows.append(
            ProducerRow(line, phone, language=language, region=region, subscriptions=subscriptions, **text_fields)
        )
    return rows, errors


def import_producers(session: Session, rows: Sequence[ProducerRow], *, now: dt.datetime) -> ProducerImportReport:
    """Create or update producers by phone (only non-empty fields are written) and add their
    subscriptions (never removing any; an opted-out producer stays opted out)."""
    report = ProducerImportReport(rows=len(rows))
    for row in rows:
        producer = producer_by_phone(session, row.phone)
        created = False
        if producer is None:
            created = insert_ignore(
                session, models.Producer, {"phone": row.phone, "created_at": now, "updated_at": now}, ["phone"]
            ) is not None
            producer = producer_by_phone(session, row.phone)
        assert producer is not None
        changed = False
        for name in ("name", "village", "region", "cluster", "language"):
            value = getattr(row, name)
            if value and getattr(producer, name) != value:
                setattr(producer, name, value)
                changed = True
        if changed:
            producer.updated_at = now
            session.add(producer)
        if created:
            report.created += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
        for crop_id, market_id in row.subscriptions:
            new = insert_ignore(
                session,
                models.Subscription,
                {"producer_id": producer.id, "crop_id": crop_id, "market_id": market_id, "created_at": now},
                ["producer_id", "crop_id", "market_id"],
            )
            if new is None:
                report.subscriptions_present += 1
            else:
                report.subscriptions_added += 1
    session.flush()
    return report
