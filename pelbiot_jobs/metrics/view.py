"""What ``pelbiot-jobs metrics`` shows: the latest value and a small trend per metric."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

from sqlalchemy import Engine, select

from ..db.ops_models import metric_samples, request_minutes

SPARK = "▁▂▃▄▅▆▇█"
#: Points in a trend line.
TREND_POINTS = 24


def sparkline(values: list[float]) -> str:
    """Pure: a unicode trend of ``values``, downsampled by max so that peaks survive."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    if len(values) > TREND_POINTS:
        step = len(values) / TREND_POINTS
        values = [max(values[int(i * step):max(int((i + 1) * step), int(i * step) + 1)]) for i in range(TREND_POINTS)]
    low, high = min(values), max(values)
    if high == low:
        return SPARK[3] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / (high - low) * len(SPARK)))] for v in values)


def series_summary(rows) -> list[dict]:
    """Pure: rows of (metric, host, ts, value) -> one summary per (host, metric), sorted."""
    series: dict[tuple[str, str], list[tuple[dt.datetime, float | None]]] = defaultdict(list)
    for metric, host, ts, value in rows:
        series[(host, metric)].append((ts, value))
    out = []
    for (host, metric), points in sorted(series.items()):
        points.sort()
        values = [v for _, v in points if v is not None]
        last_ts, last = points[-1]
        out.append({"host": host, "metric": metric, "latest": last,
                    "latest_at": last_ts.replace(tzinfo=dt.timezone.utc).isoformat(),
                    "min": min(values) if values else None, "max": max(values) if values else None,
                    "avg": sum(values) / len(values) if values else None, "samples": len(points),
                    "not_applicable": not values, "trend": sparkline(values)})
    return out


def read_metrics(engine: Engine, since: dt.datetime, host: str | None = None) -> dict:
    c = metric_samples.c
    query = select(c.metric, c.host, c.ts, c.value).where(c.ts >= since)
    if host:
        query = query.where(c.host == host)
    r = request_minutes.c
    with engine.connect() as conn:
        samples = conn.execute(query).all()
        minutes = conn.execute(select(r.source, r.minute, r.requests, r.c4xx, r.c5xx, r.error_rate_percent,
                                      r.p50_ms, r.p95_ms, r.p99_ms, r.slowest_routes)
                               .where(r.minute >= since).order_by(r.minute)).mappings().all()
    return {"metrics": series_summary(samples),
            "requests": [dict(m, minute=m["minute"].replace(tzinfo=dt.timezone.utc).isoformat(),
                              slowest_routes=json.loads(m["slowest_routes"] or "[]")) for m in minutes]}
