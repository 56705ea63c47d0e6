"""CSV files staff open in a spreadsheet: no cell is read as a formula.

A cell that starts with = + - @, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets (a farmer's name `=HYPERLINK(...)` typed by SMS, say). OWASP's remedy: prefix
such a text cell with a single quote, which spreadsheets show as text. Written here rather than
with defusedcsv, which leaves leading tabs and carriage returns alone."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would take for a formula, quoted; numbers and the rest unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return buffer.getvalue()
