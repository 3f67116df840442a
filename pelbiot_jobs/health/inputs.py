"""What the score and the rules read: samples and request minutes of a recent window."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

from sqlalchemy import Engine, select

from ..db.ops_models import metric_samples, request_minutes
from ..metrics.requests import MinuteAgg
from .spec import REQUEST_METRICS

#: The host label of installation-wide values (request telemetry, the overall score).
ALL = "*"


def sample_series(conn, metric: str, since: dt.datetime) -> dict[str, list[float]]:
    """Values of ``metric`` per host since ``since``, oldest first (NULLs dropped)."""
    c = metric_samples.c
    rows = conn.execute(select(c.host, c.value).where(c.metric == metric, c.ts >= since, c.value.is_not(None))
                        .order_by(c.ts)).all()
    out: dict[str, list[float]] = defaultdict(list)
    for host, value in rows:
        out[host].append(value)
    return dict(out)


def request_window(conn, since: dt.datetime) -> tuple[MinuteAgg, list[dict]]:
    """The merged aggregate of every request minute since ``since``, and the minute rows."""
    r = request_minutes.c
    rows = conn.execute(select(r.minute, r.requests, r.c5xx, r.error_rate_percent, r.p50_ms, r.p95_ms, r.p99_ms,
                               r.avg_ms, r.agg).where(r.minute >= since.replace(second=0, microsecond=0))
                        .order_by(r.minute)).mappings().all()
    merged = MinuteAgg()
    for row in rows:
        merged = merged.merge(MinuteAgg.from_json(json.loads(row["agg"])))
    return merged, [dict(row) for row in rows]


def request_value(metric: str, merged: MinuteAgg, minutes: list[dict]) -> float | None:
    """One request metric over the whole window (for the health score)."""
    if not merged.count:
        return None
    s = merged.summary()
    if metric == "requests.per_minute":
        return merged.count / max(1, len(minutes))
    if metric == "requests.errors_per_minute":
        return merged.c5xx / max(1, len(minutes))
    return s[REQUEST_METRICS[metric]]


def request_series(metric: str, minutes: list[dict]) -> list[float]:
    """Per-minute values of a request metric (for rules, aggregated by the rule)."""
    column = REQUEST_METRICS[metric]
    return [row[column] for row in minutes if row[column] is not None]


def values_by_host(engine: Engine, metric: str, since: dt.datetime) -> dict[str, list[float]]:
    """Per-host series of a sampled metric, or {"*": per-minute series} of a request metric."""
    with engine.connect() as conn:
        if metric in REQUEST_METRICS:
            _, minutes = request_window(conn, since)
            return {ALL: request_series(metric, minutes)}
        return sample_series(conn, metric, since)
