"""Line and bar charts as inline SVG, drawn from the points themselves. Pure: no matplotlib, no JavaScript.

The web view answers in a few milliseconds per chart; a series is downsampled to at most
MAX_POINTS buckets keeping each bucket's maximum (a one-sample peak still shows), gaps longer
than three times the usual step are drawn as gaps, and a threshold is a dashed line.
"""

from __future__ import annotations

import datetime as dt
from html import escape

MAX_POINTS = 300
WIDTH, HEIGHT, PAD = 640, 140, 28


def downsample(points: list[tuple[dt.datetime, float | None]], limit: int = MAX_POINTS) -> list:
    points = [(t, v) for t, v in points if v is not None]
    if len(points) <= limit:
        return points
    start, end = points[0][0], points[-1][0]
    span = (end - start).total_seconds() / limit or 1.0
    buckets: dict[int, tuple[dt.datetime, float]] = {}
    for t, v in points:
        b = min(limit - 1, int((t - start).total_seconds() / span))
        if b not in buckets or v > buckets[b][1]:
            buckets[b] = (t, v)
    return [buckets[b] for b in sorted(buckets)]


def _segments(points: list, gap_s: float) -> list[list]:
    out: list[list] = []
    for p in points:
        if out and (p[0] - out[-1][-1][0]).total_seconds() <= gap_s:
            out[-1].append(p)
        else:
            out.append([p])
    return out


def _frame(title: str, start: dt.datetime, end: dt.datetime) -> list[str]:
    """The opening of a chart: the SVG element, its title, the time axis and its two ends."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}" class="chart">',
            f'<text x="{PAD}" y="14" class="chart-title">{escape(title)}</text>',
            f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>',
            f'<text x="{PAD}" y="{HEIGHT - 8}" class="tick">{start:%Y-%m-%d %H:%M}</text>',
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end" class="tick">{end:%Y-%m-%d %H:%M} UTC</text>']


def _closed(parts: list[str], has_data: bool) -> str:
    if not has_data:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="tick">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: list[tuple[dt.datetime, float | None]], start: dt.datetime, end: dt.datetime,
               title: str, threshold: float | None = None, unit: str = "") -> str:
    """An SVG line chart of ``points`` on the time axis [start, end]; escaped text, no script."""
    pts = downsample(points)
    values = [v for _, v in pts] + ([threshold] if threshold is not None else [])
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high == low:
        low, high = low - 1.0, high + 1.0
    span = max((end - start).total_seconds(), 1.0)

    def x(t: dt.datetime) -> float:
        return PAD + (WIDTH - 2 * PAD) * min(max((t - start).total_seconds() / span, 0.0), 1.0)

    def y(v: float) -> float:
        return HEIGHT - PAD + (2 * PAD - HEIGHT) * (v - low) / (high - low)

    steps = sorted((b[0] - a[0]).total_seconds() for a, b in zip(pts, pts[1:]))
    gap = 3 * steps[len(steps) // 2] if steps else span
    parts = _frame(title, start, end) + [
        f'<text x="4" y="{PAD}" class="tick">{high:,.4g}{escape(unit)}</text>',
        f'<text x="4" y="{HEIGHT - PAD}" class="tick">{low:,.4g}{escape(unit)}</text>']
    if threshold is not None:
        parts.append(f'<line x1="{PAD}" y1="{y(threshold):.1f}" x2="{WIDTH - PAD}" y2="{y(threshold):.1f}" '
                     f'class="threshold"><title>threshold {threshold:g}</title></line>')
    for seg in _segments(pts, gap):
        if len(seg) == 1:
            parts.append(f'<circle cx="{x(seg[0][0]):.1f}" cy="{y(seg[0][1]):.1f}" r="2.5" class="point"/>')
        else:
            coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in seg)
            parts.append(f'<polyline points="{coords}" class="line"/>')
    return _closed(parts, bool(pts))


def bar_chart(points: list[tuple[dt.datetime, float]], start: dt.datetime, end: dt.datetime, step_s: float,
              title: str, unit: str = "", fmt=None) -> str:
    """An SVG bar chart: one bar per ``step_s`` bucket starting at each point's time, on [start, end]."""
    fmt = fmt or (lambda v: f"{v:,.4g}{unit}")
    high = max((v for _, v in points), default=0.0) or 1.0
    span = max((end - start).total_seconds(), step_s)
    inner = WIDTH - 2 * PAD
    width = max(1.0, inner * step_s / span - 1)

    def x(t: dt.datetime) -> float:
        return PAD + inner * min(max((t - start).total_seconds() / span, 0.0), 1.0)

    parts = _frame(title, start, end) + [f'<text x="4" y="{PAD}" class="tick">{escape(fmt(high))}</text>']
    for t, v in points:
        h = (HEIGHT - 2 * PAD) * v / high
        parts.append(f'<rect x="{x(t):.1f}" y="{HEIGHT - PAD - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                     f'class="bar"><title>{t:%Y-%m-%d %H:%M} {escape(fmt(v))}</title></rect>')
    return _closed(parts, bool(points))
