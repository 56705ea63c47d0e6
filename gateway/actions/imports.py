"""Importing prices and producers from CSV files (`gateway import-prices`, `import-producers`).

Two steps, so that a file is either imported whole or not at all:

1. `read_price_file` / `parse_producers_csv` (pure: text in, rows and errors out) validate every
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

Prices are read in two layouts: the simple one (`date, market, crop, price[, unit, kind]`) and
WFP/VAM's as published on HDX (`date, admin1, ..., market, ..., commodity, unit, pricetype,
currency, price, ...`, with or without its second row of HXL hashtags, which is skipped). Columns
are found by name; others are ignored.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import func, insert
from sqlalchemy import update as sqlalchemy_update
from sqlmodel import Session, col, select

from gateway.core.phones import InvalidPhone, parse_phone
from gateway.data import auth, models
from gateway.data.languages import listed as listed_languages
from gateway.data.producers import set_role
from gateway.outbound.broadcast import publish_alerts
from menus.languages import DEFAULT_LANGUAGES
from messages.ussd import to_ussd

MAX_PRICE = 10_000_000  # FCFA per unit: far above any vegetable, well below a typo's zeroes
STORED_CURRENCY = "XOF"  # prices are stored in whole francs CFA
# Spellings of the stored currency a spreadsheet may carry (folded).
XOF_WORDS = {"xof", "fcfa", "f cfa", "cfa", "franc cfa", "francs cfa"}
MAPPING_KINDS = ("market", "crop", "unit", "pricetype")
SHOWN_LINES = 5  # line numbers shown for an unknown name

# Other spellings of the shipped languages (folded); every configured language is also known by its
# code, its own name and its French name (console → Languages).
LANGUAGE_WORDS = {"french": "fr", "bamana": "bm"}

# Column name (folded) → canonical column; French headers and HDX/WFP's names are accepted too.
PRICE_COLUMNS = {
    "date": "date",
    "market": "market", "marche": "market",
    "crop": "crop", "culture": "crop", "produit": "crop", "commodity": "crop",
    "price": "price", "prix": "price",
    "unit": "unit", "unite": "unit",
    "kind": "kind", "type": "kind", "pricetype": "kind",
    "currency": "currency", "devise": "currency", "monnaie": "currency",
    "admin1": "region", "region": "region",
    "latitude": "latitude", "longitude": "longitude",
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
    "role": "role",
    "alert channel": "alert_channel", "alerts by": "alert_channel", "canal": "alert_channel",
    "canal alertes": "alert_channel", "alertes par": "alert_channel", "recevoir par": "alert_channel",
}
PRODUCER_REQUIRED = ("phone",)
# How alerts reach a producer (models.ALERT_CHANNELS), as a spreadsheet may say it (folded).
ALERT_CHANNEL_WORDS = {
    "sms": "sms", "voice": "voice", "call": "voice", "appel": "voice", "voix": "voice", "wele": "voice",
    "both": "both", "les deux": "both", "deux": "both", "sms et appel": "both", "appel et sms": "both",
    "sms appel": "both", "sms ni wele": "both",
}
# Producer text fields and their column widths (models.Producer).
PRODUCER_TEXT = {"name": 80, "village": 80, "cluster": 80}

_WORDS = re.compile(r"[a-z0-9]+")
_SPACES_IN_NUMBERS = re.compile(r"[\s\u00a0\u202f\u2009]+")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY_DATE = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})")
_WEIGHT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(kg|kgs|kilos?|g|gr|grammes?)")


class FileFormatError(ValueError):
    """The file as a whole cannot be read: empty, or required columns missing."""


@dataclass(frozen=True)
class RowError:
    line: int  # in the file, the header being line 1
    reason: str
    # (what, folded name) when the reason is a name that matches nothing: listed once per name.
    held_by: tuple[str, str] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class PriceRow:
    line: int
    observed_on: dt.date
    crop_id: int  # negative: a crop to be created (PriceFile.new_crops)
    market_id: int  # negative: a market to be created (PriceFile.new_markets)
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
    role: str | None = None  # producer | enumerator; None: leave as it is
    alert_channel: str | None = None  # sms | voice | both; None: leave as it is


@dataclass
class PriceImportReport:
    rows: int = 0  # valid rows given
    imported: int = 0  # observations created (dry run: that would be)
    already_present: int = 0  # exact duplicates of a stored observation (or of an earlier row)
    pairs: int = 0  # (crop, market) pairs that got a new price
    alert_pairs: int = 0  # pairs whose newest price is news: alerts queued for them
    broadcast_id: int | None = None
    created: dict[str, int] = field(default_factory=dict)  # regions, markets, crops, units
    dry_run: bool = False


@dataclass
class ProducerImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0  # existing producers with at least one field changed
    unchanged: int = 0
    subscriptions_added: int = 0
    subscriptions_present: int = 0
    roles_changed: int = 0  # made or unmade enumerators (each audited)


# -- names ------------------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower-case ASCII words joined by one space: "Pomme-de-Terre" → "pomme de terre"."""
    return " ".join(_WORDS.findall(to_ussd(text or "").lower()))


def code_for(name: str, taken: set[str], width: int = 32) -> str:
    """A new code from a name ("Okra (fresh)" → "okra-fresh"), unique among `taken` (updated)."""
    base = fold(name).replace(" ", "-")[:width] or "item"
    code, n = base, 2
    while code in taken:
        suffix = f"-{n}"
        code, n = base[: width - len(suffix)] + suffix, n + 1
    taken.add(code)
    return code


def _choices(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _aliases(row: Any) -> list[str]:
    return [a for a in (getattr(row, "aliases", "") or "").split(",") if a.strip()]


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

    def exact(self, raw: str) -> int | None:
        ids = self.ids.get(fold(raw))
        return next(iter(ids)) if ids and len(ids) == 1 else None

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
        for name in (crop.name_fr, crop.name_bm, getattr(crop, "code", ""), *_aliases(crop)):
            names.add(crop.id, name)
    for crop in crops:  # plurals, never hiding a real name: "tomates", "oignons"; WFP's "Onions"
        names.add(crop.id, crop.name_fr + "s", weak=True, shown=crop.name_fr)
        code = getattr(crop, "code", "")
        if code:
            for plural in (code + "s", code + "es"):
                names.add(crop.id, plural, weak=True, shown=crop.name_fr)
    return names


def market_names(markets: Iterable[Any]) -> Names:
    names = Names("market")
    for market in markets:
        for name in (market.name, getattr(market, "name_bm", ""), getattr(market, "code", ""), *_aliases(market)):
            names.add(market.id, name)
    return names


def _coded_names(what: str, rows: Iterable[Any]) -> Names:
    """Units and price kinds: by code, names and aliases; the id is the code."""
    names = Names(what)
    for row in rows:
        for name in (row.code, row.name_fr, getattr(row, "name_bm", ""), *_aliases(row)):
            names.add(row.code, name)
            names.add(row.code, fold(name).replace(" ", ""), weak=True)  # "sac 50kg" = "sac50kg"
    return names


# -- cells ------------------------------------------------------------------------------------------


def date_problem(day: dt.date, today: dt.date) -> str | None:
    """The one rule on a price's date, for imports and the staff API alike: any past day (history
    is welcome, and alerts only go out for recent prices), never a future one."""
    if day > today:
        return f"date {day.isoformat()} is in the future"
    return None


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
    if date_problem(value, today):
        return None, f'date "{text}" is in the future'
    return value, None


def parse_amount(raw: str) -> tuple[Decimal | None, str | None]:
    """A price as written: "1 250", "853.75", "12,5". The point is a decimal point (as HDX and
    spreadsheets export); a comma is a decimal comma, except before exactly three digits
    ("1,250"), which could be a thousands separator and is refused as ambiguous."""
    text = raw.strip()
    if not text:
        return None, "price is missing"
    digits = _SPACES_IN_NUMBERS.sub("", text)
    if re.fullmatch(r"\d+,\d{3}", digits):
        return None, f'price "{text}" is ambiguous (write 1250, or 1.25 for a decimal)'
    if re.fullmatch(r"-\d+([.,]\d+)?", digits):
        return None, f'price "{text}" must be positive'
    if not re.fullmatch(r"\d+([.,]\d+)?|\d*[.,]\d+", digits):
        return None, f'price "{text}" is not a number'
    return Decimal(digits.replace(",", ".")), None


def round_fcfa(amount: Decimal) -> int:
    """Prices are stored in whole francs: rounded to the nearest, halves up (853.5 → 854). The
    same rule on every run, so importing a file again finds its prices already present."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_price(raw: str) -> tuple[int | None, str | None]:
    amount, reason = parse_amount(raw)
    if reason:
        return None, reason
    return checked_price(raw, round_fcfa(amount))


def checked_price(raw: str, value: int) -> tuple[int | None, str | None]:
    if value <= 0:
        return None, f'price "{raw.strip()}" rounds to 0 FCFA'
    if value > MAX_PRICE:
        return None, f'price "{raw.strip()}" is over the limit of 10 000 000 FCFA'
    return value, None


def parse_weight(raw: str) -> float | None:
    """"100 KG" → 100.0, "500 g" → 0.5; None when the unit is not a weight."""
    found = _WEIGHT.fullmatch(raw.strip().lower())
    if not found:
        return None
    value = float(found[1].replace(",", "."))
    return value if found[2].startswith("k") else value / 1000


def parse_rates(items: Iterable[str]) -> dict[str, Decimal]:
    """["GHS=98.5"] → {"GHS": Decimal("98.5")}: XOF per unit of the other currency."""
    rates: dict[str, Decimal] = {}
    for item in items:
        code, sep, value = item.partition("=")
        code = code.strip().upper()
        try:
            rate = Decimal(value.strip().replace(",", "."))
        except InvalidOperation:
            rate = Decimal(0)
        if not sep or not re.fullmatch(r"[A-Z]{3}", code) or not rate.is_finite() or rate <= 0:
            raise ValueError(f'rate "{item}" is not CUR=XOF (e.g. GHS=98.5: one GHS is 98.5 XOF)')
        rates[code] = rate
    return rates


def language_words(languages: Sequence[Any]) -> dict[str, str]:
    """Folded word -> code for every configured language (code, own name, French name: "peul",
    "Fulfulde", "ff"), read once for a whole file."""
    words = {word: code for word, code in LANGUAGE_WORDS.items() if any(lang.code == code for lang in languages)}
    for lang in reversed(languages):  # the first in the menus' order wins a name two would share
        words.update({fold(word): lang.code for word in (lang.name_fr, lang.name, lang.code) if fold(word)})
    return words


def parse_language(raw: str, words: dict[str, str], known: str) -> tuple[str | None, str | None]:
    language = words.get(fold(raw))
    if language is None:
        return None, f'language "{raw.strip()}" unknown (use one of: {known})'
    return language, None


def parse_alert_channel(raw: str) -> tuple[str | None, str | None]:
    channel = ALERT_CHANNEL_WORDS.get(fold(raw))
    if channel is None:
        return None, f'alert_channel "{raw.strip()}" unknown (use sms, voice or both; appel, voix, les deux)'
    return channel, None


# -- reading the file -------------------------------------------------------------------------------


def sniff_delimiter(header: str) -> str:
    """`;` or `,`: whichever separates the header's column names (which contain neither)."""
    return ";" if header.count(";") > header.count(",") else ","


def _is_hxl(cells: list[str]) -> bool:
    """HDX's second row of hashtags (`#date,#adm1+name,...`): tags, not data."""
    filled = [cell.strip() for cell in cells if cell.strip()]
    return bool(filled) and all(cell.startswith("#") for cell in filled)


def _records(
    text: str, columns: dict[str, str], required: Sequence[str]
) -> Iterator[tuple[int, dict[str, str], RowError | None]]:
    """(line, {column: value}, a shape problem or None) for every non-blank row after the header
    (and after HDX's HXL row, when there is one)."""
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
        if rows == 0 and _is_hxl(cells):
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


@dataclass(frozen=True)
class _Ref:
    """A unit or price kind, as the parser needs it."""

    code: str
    name_fr: str
    name_bm: str = ""
    kg: float | None = None
    aliases: str = ""
    active: bool = True


# What migration 0007 installs: the reference when a caller gives no unit or kind rows.
DEFAULT_UNITS = (
    _Ref("kg", "kg", "kg", 1.0, "kilo, kilos, kgs"),
    _Ref("sack50", "sac 50kg", "bɔrɔ 50kg", 50.0, "sac, sacs, sac50, sac 50 kg, 50 kg, boro"),
    _Ref("sack100", "sac 100kg", "bɔrɔ 100kg", 100.0, "sac100, sac 100 kg, 100 kg"),
    _Ref("basket", "panier", "panye", None, "paniers"),
    _Ref("crate", "caisse", "kɛsu", None, "caisses, kesu"),
    _Ref("pile", "tas", "tas", None, ""),
)
DEFAULT_KINDS = (_Ref("wholesale", "gros", "gros", None, "gros, wholesale"), _Ref("retail", "détail", "détail", None, "detail, retail"))


@dataclass
class Unmatched:
    """A name of the file that matches no active row: listed once, with the rows it holds back."""

    what: str  # market | crop | unit | pricetype
    name: str  # as first written in the file
    status: str  # unknown | retired | created (to be created with --create-missing)
    reason: str = ""
    rows: int = 0
    lines: list[int] = field(default_factory=list)  # the first few

    def __str__(self) -> str:
        shown = ", ".join(str(n) for n in self.lines) + (", …" if self.rows > len(self.lines) else "")
        rows = f"{self.rows} row{'s' if self.rows != 1 else ''}"
        if self.status != "created" and self.rows == 1:
            return f"line {self.lines[0]}: {self.reason}"  # as any other refused row
        if self.status == "created":
            return f'new {self.what} "{self.name}": {rows} (line {shown}), created by --create-missing'
        return f"{self.reason}: {rows} held back (line {shown})"


@dataclass
class NewRegion:
    name: str
    code: str


@dataclass
class NewMarket:
    placeholder: int
    name: str
    code: str
    region: str
    latitude: float | None = None
    longitude: float | None = None


@dataclass
class NewCrop:
    placeholder: int
    name: str
    code: str
    default_unit: str


@dataclass
class NewUnit:
    name: str
    code: str
    kg: float | None


@dataclass
class PriceOptions:
    create_missing: bool = False  # create unknown markets (and regions), crops and units
    mapping: dict[tuple[str, str], str] = field(default_factory=dict)  # (what, folded name) → code
    rates: dict[str, Decimal] = field(default_factory=dict)  # currency → XOF per unit
    region: str = ""  # the region of created markets when the file has no admin1 column


@dataclass
class PriceFile:
    """What reading a price file found: the good rows, every problem, the names that match
    nothing (once each) and what --create-missing would create."""

    rows: list[PriceRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    read: int = 0  # data rows in the file
    zero: int = 0  # rows with a price of 0: placeholders, skipped
    converted: dict[str, int] = field(default_factory=dict)  # currency → rows converted to XOF
    new_regions: list[NewRegion] = field(default_factory=list)
    new_markets: list[NewMarket] = field(default_factory=list)
    new_crops: list[NewCrop] = field(default_factory=list)
    new_units: list[NewUnit] = field(default_factory=list)

    @property
    def bad_lines(self) -> int:
        return len({e.line for e in self.errors})

    @property
    def line_errors(self) -> list[RowError]:
        """The errors not already told by the list of unmatched names."""
        return [e for e in self.errors if e.held_by is None]

    @property
    def to_create(self) -> dict[str, int]:
        return {"regions": len(self.new_regions), "markets": len(self.new_markets),
                "crops": len(self.new_crops), "units": len(self.new_units)}


def parse_mapping(text: str) -> dict[tuple[str, str], str]:
    """A mapping file: CSV `kind,name,code`, kind one of market, crop, unit, pricetype; `name` as
    the price file writes it, `code` that of an existing row ("crop,Okra (fresh),okra")."""
    mapping: dict[tuple[str, str], str] = {}
    text = text.lstrip("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise FileFormatError("mapping: the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(lines[0]), skipinitialspace=True)
    for cells in reader:
        cells = [c.strip() for c in cells]
        if not any(cells) or [fold(c) for c in cells] == ["kind", "name", "code"]:
            continue
        if len(cells) != 3 or fold(cells[0]) not in MAPPING_KINDS or not fold(cells[1]) or not cells[2]:
            raise FileFormatError(
                f"mapping line {reader.line_num}: expected kind,name,code with kind one of {', '.join(MAPPING_KINDS)}"
            )
        mapping[(fold(cells[0]), fold(cells[1]))] = cells[2]
    return mapping


class _Lookup:
    """One kind of name (market, crop, unit, price kind): mapping first, then active rows by any
    of their names, then retired ones (refused as retired). Results are cached per spelling:
    a large file names the same few markets thousands of times."""

    def __init__(self, what: str, active: Names, retired: Names, mapped: dict[str, Any]) -> None:
        self.what, self.active, self.retired, self.mapped = what, active, retired, mapped
        self.cache: dict[str, tuple[Any, str | None, str]] = {}

    def find(self, raw: str) -> tuple[Any, str | None, str]:
        """(id, None, "") when found; (None, reason, status) with status "unknown", "retired",
        "missing" or "ambiguous"."""
        if raw in self.cache:
            return self.cache[raw]
        key = fold(raw)
        if key in self.mapped:
            found = (self.mapped[key], None, "")
        else:
            item, reason = self.active.find(raw)
            if item is not None:
                found = (item, None, "")
            elif not key:
                found = (None, reason, "missing")
            elif key in self.active.ids:
                found = (None, reason, "ambiguous")
            elif self.retired.exact(raw) is not None:
                found = (None, f'{self.what} "{raw.strip()}" is retired', "retired")
            else:
                found = (None, reason, "unknown")
        self.cache[raw] = found
        return found


def _split(rows: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    rows = list(rows)
    return [r for r in rows if getattr(r, "active", True)], [r for r in rows if not getattr(r, "active", True)]


def _mapped(
    mapping: dict[tuple[str, str], str], what: str, rows: Sequence[Any], ident: Callable[[Any], Any]
) -> dict[str, Any]:
    by_code = {r.code: r for r in rows}
    found = {}
    for (kind, name), code in mapping.items():
        if kind != what:
            continue
        row = by_code.get(code)
        if row is None or not getattr(row, "active", True):
            state = "retired" if row is not None else "no"
            raise FileFormatError(f'mapping: {what} "{name}" → "{code}": {state} {what} has that code')
        found[name] = ident(row)
    return found


def read_price_file(
    text: str,
    *,
    crops: Sequence[Any],
    markets: Sequence[Any],
    today: dt.date,
    units: Sequence[Any] = DEFAULT_UNITS,
    kinds: Sequence[Any] = DEFAULT_KINDS,
    regions: Sequence[Any] = (),
    options: PriceOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> PriceFile:
    """Check every row of a price file against the reference data (pure: nothing is written).
    Unit defaults to the crop's usual one, kind to wholesale, currency to XOF. Raises
    FileFormatError when the file (or the mapping) cannot be read at all."""
    options = options or PriceOptions()
    active_crops, retired_crops = _split(crops)
    active_markets, retired_markets = _split(markets)
    active_units, _ = _split(units)
    active_kinds, _ = _split(kinds)
    mapping = options.mapping
    crop_lookup = _Lookup("crop", crop_names(active_crops), crop_names(retired_crops),
                          _mapped(mapping, "crop", crops, lambda r: r.id))
    market_lookup = _Lookup("market", market_names(active_markets), market_names(retired_markets),
                            _mapped(mapping, "market", markets, lambda r: r.id))
    unit_lookup = _Lookup("unit", _coded_names("unit", active_units), _coded_names("unit", _split(units)[1]),
                          _mapped(mapping, "unit", units, lambda r: r.code))
    kind_lookup = _Lookup("kind", _coded_names("kind", active_kinds), Names("kind"),
                          _mapped(mapping, "pricetype", kinds, lambda r: r.code))
    by_weight: dict[float, str] = {}
    for unit in active_units:
        if unit.kg is not None:
            by_weight.setdefault(float(unit.kg), unit.code)
    unit_list = ", ".join(u.code for u in active_units)
    kind_words = f"use {_choices([k.code for k in active_kinds])}, {_choices([k.name_fr for k in active_kinds])}"
    default_unit = {c.id: c.default_unit for c in crops}

    result = PriceFile()
    unmatched: dict[tuple[str, str], Unmatched] = {}
    region_names = {fold(r.name_fr): r.name_fr for r in regions}
    region_names.update({fold(m.region): m.region for m in markets if m.region})
    taken = {"crop": {c.code for c in crops}, "market": {m.code for m in markets},
             "unit": {u.code for u in units}, "region": {getattr(r, "code", "") for r in regions}}
    new_by_key: dict[tuple[str, str], Any] = {}
    first_seen: dict[tuple, PriceRow] = {}  # (crop, market, date, unit, kind) → first row

    def hold(what: str, raw: str, reason: str, status: str, line: int) -> RowError:
        key = (what, fold(raw))
        entry = unmatched.setdefault(key, Unmatched(what, raw.strip(), status, reason))
        entry.rows += 1
        if len(entry.lines) < SHOWN_LINES:
            entry.lines.append(line)
        return RowError(line, reason, held_by=key)

    def create(what: str, raw: str, line: int, values: dict[str, str], unit: str | None) -> Any:
        """The placeholder id (or code) of a row to create, planned on its first mention."""
        key = (what, fold(raw))
        if key in new_by_key:
            hold(what, raw, "", "created", line)
            return new_by_key[key]
        name = " ".join(raw.split())
        if what == "market":
            region = values.get("region") or options.region
            if not region:
                return None
            region_key = fold(region)
            if region_key not in region_names:
                region_names[region_key] = " ".join(region.split())[:64]
                result.new_regions.append(NewRegion(region_names[region_key], code_for(region, taken["region"])))
            new = NewMarket(-(len(result.new_markets) + 1), name[:64], code_for(name, taken["market"]),
                            region_names[region_key], _float(values.get("latitude")), _float(values.get("longitude")))
            result.new_markets.append(new)
            ident = new.placeholder
        elif what == "crop":
            new = NewCrop(-(len(result.new_crops) + 1), name[:64], code_for(name, taken["crop"]), unit or "kg")
            result.new_crops.append(new)
            ident = new.placeholder
            default_unit[ident] = new.default_unit
        else:  # unit
            new = NewUnit(name[:32], code_for(name, taken["unit"], 16), parse_weight(raw))
            result.new_units.append(new)
            ident = new.code
        new_by_key[key] = ident
        hold(what, raw, "", "created", line)
        return ident

    for line, values, problem in _records(text, PRICE_COLUMNS, PRICE_REQUIRED):
        result.read += 1
        if progress and result.read % 5000 == 0:
            progress(5000)
        if problem:
            result.errors.append(problem)
            continue
        raw_price = values.get("price", "")
        amount, price_reason = parse_amount(raw_price)
        if amount is not None and amount == 0:
            result.zero += 1  # WFP's placeholder for "not collected"
            continue
        problems: dict[str, RowError] = {}  # by column, reported in the columns' usual order
        day, reason = parse_date(values.get("date", ""), today)
        if reason:
            problems["date"] = RowError(line, reason)

        # Unit before crop: a crop created from this row takes the row's unit as its usual one.
        unit = None
        raw_unit = values.get("unit", "")
        if raw_unit:
            unit, reason, status = unit_lookup.find(raw_unit)
            if unit is None and status == "unknown":
                weight = parse_weight(raw_unit)
                unit = by_weight.get(weight) if weight is not None else None
            if unit is None and status == "unknown" and options.create_missing:
                unit = create("unit", raw_unit, line, values, None)
            elif unit is None:
                problems["unit"] = hold("unit", raw_unit, f'unit "{raw_unit}" unknown (use {unit_list})', status, line)

        raw_crop = values.get("crop", "")
        crop_id, reason, status = crop_lookup.find(raw_crop)
        if crop_id is None and status == "unknown" and options.create_missing:
            crop_id = create("crop", raw_crop, line, values, unit)
        elif crop_id is None:
            problems["crop"] = (hold("crop", raw_crop, reason, status, line) if status in ("unknown", "retired")
                                else RowError(line, reason))

        raw_market = values.get("market", "")
        market_id, reason, status = market_lookup.find(raw_market)
        if market_id is None and status == "unknown" and options.create_missing:
            market_id = create("market", raw_market, line, values, None)
            if market_id is None:
                reason = f'market "{raw_market}" unknown: no region to create it in (an admin1 column, or --region)'
        if market_id is None:
            problems["market"] = (hold("market", raw_market, reason, status, line) if status in ("unknown", "retired")
                                  else RowError(line, reason))

        if unit is None and not raw_unit and crop_id is not None:
            unit = default_unit[crop_id]

        kind = "wholesale"
        raw_kind = values.get("kind", "")
        if raw_kind:
            kind, reason, status = kind_lookup.find(raw_kind)
            if kind is None:
                problems["kind"] = hold("pricetype", raw_kind, f'kind "{raw_kind}" unknown ({kind_words})', "unknown", line)

        price = None
        currency = values.get("currency", "").strip()
        if price_reason:
            problems["price"] = RowError(line, price_reason)
        elif currency and fold(currency) not in XOF_WORDS and currency.upper() not in options.rates:
            problems["price"] = RowError(
                line, f'currency "{currency}" refused: prices are stored in XOF '
                      f"(give a rate to convert, e.g. --rate {currency.upper()}=98.5)")
        else:
            if currency and fold(currency) not in XOF_WORDS:
                amount = amount * options.rates[currency.upper()]
            price, reason = checked_price(raw_price, round_fcfa(amount))
            if reason:
                problems["price"] = RowError(line, reason)
            elif currency and fold(currency) not in XOF_WORDS and not problems:
                result.converted[currency.upper()] = result.converted.get(currency.upper(), 0) + 1

        found = [problems[name] for name in ("date", "market", "crop", "price", "unit", "kind") if name in problems]
        if found:
            result.errors += found
            continue
        row = PriceRow(line, day, crop_id, market_id, price, unit, kind)
        earlier = first_seen.setdefault(row.key[:5], row)
        if earlier is not row and earlier.price != row.price:
            result.errors.append(
                RowError(line, f"line {earlier.line} gives another price ({earlier.price}) for the same "
                               "crop, market, date, unit and kind")
            )
            continue
        result.rows.append(row)
    if progress:
        progress(result.read % 5000)
    result.unmatched = list(unmatched.values())
    return result


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def parse_prices_csv(
    text: str, *, crops: Sequence[Any], markets: Sequence[Any], today: dt.date, **kwargs: Any
) -> tuple[list[PriceRow], list[RowError]]:
    """`read_price_file`, for callers that only want the rows and the errors."""
    found = read_price_file(text, crops=crops, markets=markets, today=today, **kwargs)
    return found.rows, found.errors


def read_price_file_from(session: Session, text: str, *, today: dt.date, options: PriceOptions | None = None,
                         progress: Callable[[int], None] | None = None) -> PriceFile:
    """`read_price_file` against the reference data of the database."""
    return read_price_file(
        text,
        crops=session.exec(select(models.Crop)).all(),
        markets=session.exec(select(models.Market)).all(),
        units=session.exec(select(models.Unit).order_by(models.Unit.sort_order)).all(),
        kinds=session.exec(select(models.PriceKind).order_by(models.PriceKind.sort_order)).all(),
        regions=session.exec(select(models.Region)).all(),
        today=today,
        options=options,
        progress=progress,
    )


def _create_missing(session: Session, found: PriceFile) -> tuple[dict[int, int], dict[int, int]]:
    """Create the planned regions, units, crops and markets; placeholder → real ids of the crops
    and of the markets."""
    existing_regions = {fold(r): r for r in session.exec(select(models.Region.name_fr)).all()}
    order = session.exec(select(func.count()).select_from(models.Region)).one()
    for region in found.new_regions:
        if fold(region.name) not in existing_regions:
            session.add(models.Region(code=region.code, name_fr=region.name, name_bm=region.name, sort_order=order))
            order += 1
    order = session.exec(select(func.count()).select_from(models.Unit)).one()
    for unit in found.new_units:
        session.add(models.Unit(code=unit.code, name_fr=unit.name, name_bm=unit.name, kg=unit.kg, sort_order=order))
        order += 1
    order = session.exec(select(func.count()).select_from(models.Crop)).one()
    crops = []
    for crop in found.new_crops:
        row = models.Crop(code=crop.code, name_fr=crop.name, name_bm=crop.name, default_unit=crop.default_unit,
                          sort_order=order)
        order += 1
        session.add(row)
        crops.append((crop.placeholder, row))
    markets = []
    for market in found.new_markets:
        row = models.Market(code=market.code, name=market.name, region=market.region,
                            latitude=market.latitude, longitude=market.longitude)
        session.add(row)
        markets.append((market.placeholder, row))
    session.flush()
    return {p: row.id for p, row in crops}, {p: row.id for p, row in markets}


def import_prices(
    session: Session,
    rows: Sequence[PriceRow],
    *,
    now: dt.datetime,
    source: str,
    alerts: bool = True,
    stale_days: int = 10,
    found: PriceFile | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PriceImportReport:
    """Publish the rows (status "published"); an exact duplicate of a stored observation, whatever
    its status, is counted as already present. Alerts go out for each (crop, market) whose newest
    row in the file was imported, is at least as recent as the latest price already published
    (back-filled history is not news) and is at most `stale_days` old (settings.price_stale_days:
    older history is stored without alerting anyone).

    `found`: the file the rows come from, whose planned regions, markets, crops and units are
    created first. `dry_run`: count what would happen, write nothing."""
    report = PriceImportReport(rows=len(rows), dry_run=dry_run)
    if found is not None:
        report.created = found.to_create
        if not dry_run and any(report.created.values()):
            crop_ids, market_ids = _create_missing(session, found)
            rows = [r if r.crop_id > 0 and r.market_id > 0 else
                    PriceRow(r.line, r.observed_on, crop_ids.get(r.crop_id, r.crop_id),
                             market_ids.get(r.market_id, r.market_id), r.price, r.unit, r.kind) for r in rows]
    if not rows:
        return report
    obs = models.PriceObservation
    crop_ids = sorted({r.crop_id for r in rows if r.crop_id > 0})
    market_ids = sorted({r.market_id for r in rows if r.market_id > 0})
    in_file = (col(obs.crop_id).in_(crop_ids), col(obs.market_id).in_(market_ids))
    stored = {
        tuple(key)
        for key in session.exec(
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
    recent = now.date() - dt.timedelta(days=stale_days)

    source = source[:64]
    created_at = now.astimezone(dt.timezone.utc)
    new_pairs: set[tuple[int, int]] = set()
    news: set[tuple[int, int]] = set()
    batch: list[dict] = []
    for row in rows:
        if row.key in stored:
            report.already_present += 1
            continue
        stored.add(row.key)
        batch.append({
            "crop_id": row.crop_id, "market_id": row.market_id, "observed_on": row.observed_on,
            "price": row.price, "unit": row.unit, "kind": row.kind, "source": source, "status": "published",
            "review_reason": "", "changed_by": "", "created_at": created_at,
        })
        report.imported += 1
        new_pairs.add(row.pair)
        previous = latest_published.get(row.pair)
        if (row.observed_on == newest[row.pair] and row.observed_on >= recent
                and (previous is None or row.observed_on >= previous)):
            news.add(row.pair)
        if len(batch) >= 2000:
            _write(session, batch, dry_run, progress)
    _write(session, batch, dry_run, progress)
    if progress and report.already_present:
        progress(report.already_present)
    report.pairs = len(new_pairs)
    report.alert_pairs = len(news)
    if alerts and news and not dry_run:
        broadcast = publish_alerts(session, pairs=news, now=now, title=f"Prices from {source}"[:120])
        report.broadcast_id = broadcast.id if broadcast else None
    return report


def _write(session: Session, batch: list[dict], dry_run: bool, progress: Callable[[int], None] | None) -> None:
    """One multi-row INSERT per batch: a hundred thousand ORM objects took minutes."""
    if batch and not dry_run:
        session.execute(insert(models.PriceObservation.__table__), batch)
    if progress and batch:
        progress(len(batch))
    batch.clear()


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
    text: str, *, crops: Sequence[Any], markets: Sequence[Any], languages: Sequence[Any] = DEFAULT_LANGUAGES
) -> tuple[list[ProducerRow], list[RowError]]:
    """Columns phone, and optionally name, language, village, region, cluster, subscriptions
    (`crop@market` separated by `;` or `|`), role (producer or enumerator), alert_channel (sms,
    voice or both; appel, voix, les deux). Empty values leave what is stored unchanged.
    Raises FileFormatError when the file cannot be read at all."""
    crop_lookup, market_lookup = crop_names(crops), market_names(markets)
    # Any configured language, enabled or not (its farmers are told); written or voice-only.
    language_lookup, known_languages = language_words(languages), listed_languages(languages)
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
        language = channel = None
        if values.get("language"):
            language, reason = parse_language(values["language"], language_lookup, known_languages)
            found += [reason] if reason else []
        if values.get("alert_channel"):
            channel, reason = parse_alert_channel(values["alert_channel"])
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
        role = values.get("role", "").strip().lower() or None
        if role is not None and role not in models.PRODUCER_ROLES:
            found.append(f'role "{values["role"].strip()}": use {" or ".join(models.PRODUCER_ROLES)}')
        if found:
            errors += [RowError(line, reason) for reason in found]
            continue
        rows.append(
            ProducerRow(line, phone, language=language, region=region, subscriptions=subscriptions, role=role,
                        alert_channel=channel, **text_fields)
        )
    return rows, errors


PRODUCER_FIELDS = ("name", "village", "region", "cluster", "language", "alert_channel")
# What a new producer gets for a field the file leaves empty (the others: "").
PRODUCER_DEFAULTS = {"language": None, "alert_channel": "sms"}
# Rows per statement: under SQLite's 32,766 bound parameters for the widest insert, and small
# enough that PostgreSQL plans stay cheap.
IMPORT_CHUNK = 2000


def _chunks(items: Sequence[Any], size: int = IMPORT_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _insert_ignore_many(session: Session, model: type, rows: list[dict], keys: list[str],
                        returning: Sequence[Any] = ()) -> list[Any]:
    """INSERT ... ON CONFLICT DO NOTHING, many rows per statement (safe when processes race);
    the `returning` columns of the rows inserted (not of those that were already there)."""
    if not rows:
        return []
    from sqlalchemy.dialects import sqlite

    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert_ignore(session, model, rows, keys, returning)
    module = sqlite
    # executemany of one compiled statement (SQLAlchemy batches it into multi-row INSERTs):
    # .values([...]) compiled a statement per chunk, and compiling was 80% of the time.
    statement = module.insert(model.__table__).on_conflict_do_nothing(index_elements=keys)
    if returning:
        statement = statement.returning(*returning)
    connection = session.connection()
    inserted: list[Any] = []
    for chunk in _chunks(rows):
        result = connection.execute(statement, list(chunk))
        if returning:
            inserted += result.all()
    return inserted


def _copy_insert_ignore(session: Session, model: type, rows: list[dict], keys: list[str],
                        returning: Sequence[Any]) -> list[Any]:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT ... SELECT ... ON
    CONFLICT DO NOTHING. An executemany spent most of its time in the driver parsing the long
    multi-row statements (38 s for 100,000 producers; bench/import_producers.py)."""
    from sqlalchemy import text

    table = model.__table__
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    scratch = f"import_{table.name}"
    session.execute(text(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{scratch}" ON COMMIT DROP AS '
                         f'SELECT {names} FROM "{table.name}" WITH NO DATA'))
    session.execute(text(f'TRUNCATE "{scratch}"'))
    driver = session.connection().connection.driver_connection  # psycopg, in the session's transaction
    with driver.cursor() as cursor:
        with cursor.copy(f'COPY "{scratch}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    back = ", ".join(f'"{c.name}"' for c in returning)
    inserted = session.execute(text(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{scratch}" '
        f'ON CONFLICT ({", ".join(keys)}) DO NOTHING' + (f" RETURNING {back}" if returning else "")))
    return list(inserted.all()) if returning else []


def _stored_producers(session: Session, phones: Sequence[str]) -> dict[str, Any]:
    """phone -> (id, phone, name, village, region, cluster, language, alert_channel, role) of those
    stored: plain rows, not ORM objects (a hundred thousand of those cost seconds)."""
    p = models.Producer
    found: dict[str, Any] = {}
    for chunk in _chunks(phones):
        for row in session.exec(select(p.id, p.phone, p.name, p.village, p.region, p.cluster, p.language,
                                       p.alert_channel, p.role)
                                .where(col(p.phone).in_(chunk))).all():
            found[row.phone] = row
    return found


def import_producers(session: Session, rows: Sequence[ProducerRow], *, now: dt.datetime,
                     staff: auth.Staff | None = None, source: str = "import",
                     progress: Callable[[int], None] | None = None) -> ProducerImportReport:
    """Create or update producers by phone (only non-empty fields are written) and add their
    subscriptions (never removing any; an opted-out producer stays opted out). A role makes or
    unmakes an enumerator, each change audited in the name of `staff` (None: the command line).

    Set-based, a few statements per 2,000 rows (it was four queries a row: 20,000 rows took
    35-50 s on SQLite and two minutes on PostgreSQL; bench/import_producers.py). Phones are
    unique in `rows` (parse_producers_csv refuses a repeated one)."""
    report = ProducerImportReport(rows=len(rows))
    if not rows:
        return report
    stamp = now.astimezone(dt.timezone.utc)
    phones = [row.phone for row in rows]
    existing = _stored_producers(session, phones)
    fresh = [row for row in rows if row.phone not in existing]
    table = models.Producer.__table__
    # The new rows' ids from RETURNING: read back with IN (...) instead, PostgreSQL planned a
    # sequential scan (its statistics still saw an empty table) and took 7 s a chunk.
    inserted = _insert_ignore_many(session, models.Producer, [
        {"phone": row.phone, "created_at": stamp, "updated_at": stamp, "role": "producer", "opted_out": False,
         **{name: getattr(row, name) or PRODUCER_DEFAULTS.get(name, "") for name in PRODUCER_FIELDS}}
        for row in fresh
    ], ["phone"], returning=(table.c.id, table.c.phone, table.c.role))
    created = {row.phone: row for row in inserted}
    report.created = len(created)
    raced = [row.phone for row in fresh if row.phone not in created]  # inserted meanwhile by another process
    existing.update(_stored_producers(session, raced) if raced else {})

    changes: list[dict] = []
    for row in rows:
        producer = existing.get(row.phone)
        if producer is None:
            continue
        values = {name: getattr(row, name) for name in PRODUCER_FIELDS
                  if getattr(row, name) and getattr(producer, name) != getattr(row, name)}
        if values:
            changes.append({"id": producer.id, **values})
    changed_ids = {change["id"] for change in changes}
    # One executemany per set of changed columns (the ORM groups them): by primary key.
    for chunk in _chunks(changes):
        session.execute(sqlalchemy_update(models.Producer), [{**c, "updated_at": stamp} for c in chunk])

    # Roles: rare, and each change audited one by one.
    by_phone = {**existing, **created}
    for row in rows:
        stored = by_phone.get(row.phone)
        if row.role is None or stored is None or stored.role == row.role:
            continue
        producer = session.get(models.Producer, stored.id)
        if producer is not None and set_role(session, producer, row.role, staff=staff, now=now, via=source):
            report.roles_changed += 1
            if row.phone in existing:
                changed_ids.add(producer.id)
    report.updated = len(changed_ids)
    report.unchanged = len(existing) - report.updated

    wanted = {(by_phone[row.phone].id, crop_id, market_id)
              for row in rows if row.phone in by_phone for crop_id, market_id in row.subscriptions}
    present: set[tuple[int, int, int]] = set()
    sub = models.Subscription
    ids_with_subs = sorted({producer_id for producer_id, _, _ in wanted})
    for chunk in _chunks(ids_with_subs):
        present.update(tuple(r) for r in session.exec(
            select(sub.producer_id, sub.crop_id, sub.market_id).where(col(sub.producer_id).in_(chunk))).all())
    new_subs = sorted(wanted - present)
    _insert_ignore_many(session, sub, [
        {"producer_id": p, "crop_id": c, "market_id": m, "created_at": stamp} for p, c, m in new_subs
    ], ["producer_id", "crop_id", "market_id"])
    report.subscriptions_added = len(new_subs)
    report.subscriptions_present = len(wanted & present)
    if progress:
        progress(len(rows))
    session.flush()
    return report
