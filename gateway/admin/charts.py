"""Small server-drawn SVG charts: no JavaScript library to download on a slow connection."""

from __future__ import annotations

import datetime as dt
from html import escape

from markupsafe import Markup

from messages.formatting import money, short_date

WIDTH, HEIGHT, PAD = 640, 220, 36


def line_chart(points: list[tuple[dt.date, int]], *, unit: str = "") -> Markup:
    if len(points) < 2:
        return Markup('<p class="muted">Not enough prices yet for a chart.</p>')
    days = [p[0].toordinal() for p in points]
    values = [p[1] for p in points]
    x0, x1 = min(days), max(days)
    y0, y1 = min(values), max(values)
    if y0 == y1:
        y0, y1 = y0 * 0.9, y1 * 1.1 + 1

    def x(day: int) -> float:
        return PAD + (day - x0) / max(x1 - x0, 1) * (WIDTH - 2 * PAD)

    def y(value: float) -> float:
        return HEIGHT - PAD - (value - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    line = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in zip(days, values))
    dots = "".join(
        f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="2.5"><title>{escape(short_date(p[0]))}: '
        f"{escape(money(v))} {escape(unit)}</title></circle>"
        for d, v, p in zip(days, values, points)
    )
    labels = (
        f'<text x="{PAD}" y="{HEIGHT - 10}">{escape(short_date(points[0][0]))}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" text-anchor="end">{escape(short_date(points[-1][0]))}</text>'
        f'<text x="4" y="{y(y1) + 4:.1f}">{escape(money(y1))}</text>'
        f'<text x="4" y="{y(y0) + 4:.1f}">{escape(money(y0))}</text>'
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="price chart">'
        f'<polyline fill="none" stroke="#2f5d34" stroke-width="2" points="{line}"/>'
        f'<g fill="#2f5d34">{dots}</g><g font-size="11" fill="#555">{labels}</g></svg>'
    )


def forecast_chart(history: list[tuple[dt.date, int]], forecasts: list[tuple[dt.date, int, int, int]], *, unit: str = "") -> Markup:
    """The price line (weekly or monthly), then each forecast as a dot with its 80 % range as a bar."""
    if len(history) < 2:
        return Markup('<p class="muted">Not enough prices yet for a chart.</p>')
    days = [d.toordinal() for d, _ in history] + [f[0].toordinal() for f in forecasts]
    values = [v for _, v in history] + [v for f in forecasts for v in f[1:]]
    x0, x1 = min(days), max(days)
    y0, y1 = min(values), max(values)
    if y0 == y1:
        y0, y1 = y0 * 0.9, y1 * 1.1 + 1

    def x(day: dt.date) -> float:
        return PAD + (day.toordinal() - x0) / max(x1 - x0, 1) * (WIDTH - 2 * PAD)

    def y(value: float) -> float:
        return HEIGHT - PAD - (value - y0) / (y1 - y0) * (HEIGHT - 2 * PAD)

    line = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in history)
    ahead = "".join(
        f'<line x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" stroke="#b5651d" stroke-width="6" '
        f'stroke-opacity=".35"/><circle cx="{x(d):.1f}" cy="{y(mid):.1f}" r="3.5" fill="#b5651d">'
        f"<title>{escape(short_date(d))}: {escape(money(mid))} {escape(unit)} ({escape(money(lo))}–{escape(money(hi))})</title></circle>"
        for d, mid, lo, hi in forecasts
    )
    last_day = forecasts[-1][0] if forecasts else history[-1][0]
    labels = (
        f'<text x="{PAD}" y="{HEIGHT - 10}">{escape(short_date(history[0][0]))}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 10}" text-anchor="end">{escape(short_date(last_day))}</text>'
        f'<text x="4" y="{y(y1) + 4:.1f}">{escape(money(y1))}</text>'
        f'<text x="4" y="{y(y0) + 4:.1f}">{escape(money(y0))}</text>'
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="price history and forecast">'
        f'<polyline fill="none" stroke="#2f5d34" stroke-width="2" points="{line}"/>{ahead}'
        f'<g font-size="11" fill="#555">{labels}</g></svg>'
    )
