"""Small server-drawn SVG charts: no JavaScript library to download on a slow connection.

Texts come translated by the caller (the console's language is the request's); numbers and
dates follow `lang` when given (else the farmers' French conventions, as before)."""

from __future__ import annotations

import datetime as dt
import math
from html import escape

from markupsafe import Markup

from messages import staff as staff_text
from messages.formatting import money, short_date

WIDTH, HEIGHT, PAD = 640, 220, 36
# Room on the left for the price labels ("150 000"), at the top for the unit, at the bottom for dates.
LEFT, TOP, BOTTOM, RIGHT = 62, 28, 30, 18
NOT_ENOUGH = "Not enough prices yet for a chart."
GRID = "#e3e7dc"
INK = "#555"


def nice_ticks(low: float, high: float, most: int = 5) -> list[float]:
    """3 to `most` round values (1, 2, 2.5 or 5 times a power of ten) covering low..high."""
    if high - low < max(2.0, abs(high) * 0.02):  # a flat line: a band around it, not 0.1 F steps
        pad = max(abs(high) * 0.1, 1.0)
        low, high = max(low - pad, 0.0) if low >= 0 else low - pad, high + pad
    for count in range(most - 1, 1, -1):
        raw = (high - low) / count
        power = 10 ** math.floor(math.log10(raw))
        for factor in (1, 2, 2.5, 5, 10):
            step = factor * power
            if step < 1:  # prices are whole francs
                continue
            start, end = math.floor(low / step) * step, math.ceil(high / step) * step
            n = round((end - start) / step)
            if n <= most - 1:
                ticks = [start + i * step for i in range(n + 1)]
                if len(ticks) >= 3:
                    return ticks
    step = (high - low) / 2
    return [low, low + step, high]


def date_ticks(first: dt.date, last: dt.date, most: int = 5) -> list[dt.date]:
    """Up to `most` dates spread evenly from the first to the last (both included)."""
    span = (last - first).days
    if span <= 0:
        return [first]
    count = min(most, span + 1)
    return sorted({first + dt.timedelta(days=round(i * span / (count - 1))) for i in range(count)})


def _formatters(lang: str | None):
    if lang in staff_text.CONSOLE_LANGUAGES:
        return (lambda v: staff_text.number(round(v), lang)), (lambda d: staff_text.date(d, lang, short=True))
    return money, short_date


def _frame(x0: int, x1: int, y0: float, y1: float, *, lang: str | None, axis_label: str):
    """The scales, and the grid with its labels: round values on the price axis, dates below."""
    ticks = nice_ticks(y0, y1)
    lo, hi = ticks[0], ticks[-1]
    number, day = _formatters(lang)

    def x(ordinal: int) -> float:
        return LEFT + (ordinal - x0) / max(x1 - x0, 1) * (WIDTH - LEFT - RIGHT)

    def y(value: float) -> float:
        return HEIGHT - BOTTOM - (value - lo) / (hi - lo) * (HEIGHT - TOP - BOTTOM)

    parts = []
    for tick in ticks:
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>')
        parts.append(f'<text class="y-label" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{escape(number(tick))}</text>')
    dates = date_ticks(dt.date.fromordinal(x0), dt.date.fromordinal(x1))
    for n, d in enumerate(dates):
        anchor = "start" if n == 0 and len(dates) > 1 else "end" if n == len(dates) - 1 and len(dates) > 1 else "middle"
        parts.append(f'<text class="x-label" x="{x(d.toordinal()):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">{escape(day(d))}</text>')
    if axis_label:
        parts.append(f'<text class="axis-unit" x="4" y="14" font-weight="600">{escape(axis_label)}</text>')
    return x, y, f'<g font-size="13" fill="{INK}">{"".join(parts)}</g>', number, day


def line_chart(points: list[tuple[dt.date, int]], *, unit: str = "", lang: str | None = None, axis_label: str = "",
               empty_text: str = NOT_ENOUGH, label: str = "price chart") -> Markup:
    """A price line over time. `unit` follows each value in the tooltips (backward compatible);
    `axis_label` names the price axis ("FCFA per kg", translated), `lang` formats numbers and dates."""
    if len(points) < 2:
        return Markup(f'<p class="muted">{escape(empty_text)}</p>')
    days = [p[0].toordinal() for p in points]
    values = [p[1] for p in points]
    x, y, frame, number, day = _frame(min(days), max(days), min(values), max(values), lang=lang, axis_label=axis_label or unit)
    line = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, values))
    dots = "".join(
        f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="2.5"><title>{escape(day(p[0]))}: '
        f"{escape(number(v))} {escape(unit)}</title></circle>"
        for d, v, p in zip(days, values, points)
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">{frame}'
        f'<polyline fill="none" stroke="#2f5d34" stroke-width="2" points="{line}"/>'
        f'<g fill="#2f5d34">{dots}</g></svg>'
    )


def forecast_chart(history: list[tuple[dt.date, int]], forecasts: list[tuple[dt.date, int, int, int]], *, unit: str = "",
                   lang: str | None = None, axis_label: str = "", empty_text: str = NOT_ENOUGH,
                   label: str = "price history and forecast") -> Markup:
    """The price line (weekly or monthly), then each forecast as a dot with its 80 % range as a bar."""
    if len(history) < 2:
        return Markup(f'<p class="muted">{escape(empty_text)}</p>')
    days = [d.toordinal() for d, _ in history] + [f[0].toordinal() for f in forecasts]
    values = [v for _, v in history] + [v for f in forecasts for v in f[1:]]
    x, y, frame, number, day = _frame(min(days), max(days), min(values), max(values), lang=lang, axis_label=axis_label or unit)
    line = " ".join(f"{x(d.toordinal()):.1f},{y(v):.1f}" for d, v in history)
    ahead = "".join(
        f'<line x1="{x(d.toordinal()):.1f}" x2="{x(d.toordinal()):.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" stroke="#b5651d" '
        f'stroke-width="6" stroke-opacity=".35"/><circle cx="{x(d.toordinal()):.1f}" cy="{y(mid):.1f}" r="3.5" fill="#b5651d">'
        f"<title>{escape(day(d))}: {escape(number(mid))} {escape(unit)} ({escape(number(lo))}–{escape(number(hi))})</title></circle>"
        for d, mid, lo, hi in forecasts
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">{frame}'
        f'<polyline fill="none" stroke="#2f5d34" stroke-width="2" points="{line}"/>{ahead}</svg>'
    )
