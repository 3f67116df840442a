"""Where samples land: batched idempotent writes, request minutes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Mapping

from sqlalchemy import Connection, select

from ..db.ops_models import metric_samples, request_minutes
from ..db.upsert import upsert
from .requests import MinuteAgg


def sample_rows(host: str, ts: dt.datetime, values: Mapping[str, float | None]) -> list[dict]:
    return [{"metric": metric, "host": host, "ts": ts, "value": value} for metric, value in sorted(values.items())]


def write_samples(conn: Connection, rows: list[dict]) -> int:
    """Upsert sample rows keyed by (metric, host, ts): a redelivered sample overwrites itself."""
    return upsert(conn, metric_samples, rows, key=("metric", "host", "ts"))


def merge_request_minutes(conn: Connection, source: str, aggs: Mapping[dt.datetime, MinuteAgg]) -> int:
    """Add the aggregates to what is stored for each minute (read, merge, write in one transaction)."""
    if not aggs:
        return 0
    c = request_minutes.c
    query = select(c.minute, c.agg).where(c.source == source, c.minute.in_(list(aggs)))
    if conn.dialect.name in ("mysql", "mariadb"):
        query = query.with_for_update()
    stored = {row.minute: MinuteAgg.from_json(json.loads(row.agg)) for row in conn.execute(query)}
    rows = []
    for minute, agg in sorted(aggs.items()):
        merged = stored[minute].merge(agg) if minute in stored else agg
        s = merged.summary()
        rows.append({"source": source, "minute": minute, "requests": s["requests"], "c4xx": s["c4xx"],
                     "c5xx": s["c5xx"], "error_rate_percent": s["error_rate_percent"], "p50_ms": s["p50_ms"],
                     "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"], "avg_ms": s["avg_ms"], "max_ms": s["max_ms"],
                     "slowest_routes": json.dumps(s["slowest_routes"]), "agg": json.dumps(merged.to_json())})
    return upsert(conn, request_minutes, rows, key=("source", "minute"))
