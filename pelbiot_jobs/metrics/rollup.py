"""Hourly rollups of raw samples: min, avg, max and p95 per metric, host and hour."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Iterable

from sqlalchemy import Engine, and_, func, select

from ..db.ops_models import metric_rollups, metric_samples
from ..db.upsert import upsert
from ..db import checkpoints

#: How far back a first rollup (or one after a long outage) reaches.
MAX_CATCH_UP_HOURS = 48
STATE = "rollup:hourly"


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def rollup_rows(samples: Iterable[tuple[str, str, float]], hour: dt.datetime) -> list[dict]:
    """Pure: one row per (metric, host) of the samples of one hour; NULL values are skipped."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for metric, host, value in samples:
        if value is not None:
            groups[(metric, host)].append(float(value))
    return [{"metric": metric, "host": host, "hour": hour, "samples": len(values), "min": min(values),
             "avg": sum(values) / len(values), "max": max(values), "p95": p95(values)}
            for (metric, host), values in sorted(groups.items())]


def hours_to_roll(last_rolled: dt.datetime | None, first_sample: dt.datetime | None,
                  now: dt.datetime) -> list[dt.datetime]:
    """Pure: the complete hours after ``last_rolled`` (or the first sample), oldest first."""
    current = now.replace(minute=0, second=0, microsecond=0)
    earliest = current - dt.timedelta(hours=MAX_CATCH_UP_HOURS)
    if last_rolled is not None:
        start = last_rolled + dt.timedelta(hours=1)
    elif first_sample is not None:
        start = first_sample.replace(minute=0, second=0, microsecond=0)
    else:
        return []
    start = max(start, earliest)
    hours = []
    while start < current:
        hours.append(start)
        start += dt.timedelta(hours=1)
    return hours


def roll_up(engine: Engine, now: dt.datetime) -> dict:
    """Roll up every complete hour not rolled yet; rerunning an hour overwrites its rows."""
    c = metric_samples.c
    with engine.connect() as conn:
        state = checkpoints.get(conn, STATE) or {}
        first = conn.execute(select(func.min(c.ts))).scalar()
    last = dt.datetime.fromisoformat(state["last_hour"]) if state.get("last_hour") else None
    done = rows_written = 0
    for hour in hours_to_roll(last, first, now):
        with engine.begin() as conn:
            samples = conn.execute(select(c.metric, c.host, c.value).where(
                and_(c.ts >= hour, c.ts < hour + dt.timedelta(hours=1)))).all()
            rows = rollup_rows(samples, hour)
            upsert(conn, metric_rollups, rows, key=("metric", "host", "hour"))
            checkpoints.put(conn, STATE, {"last_hour": hour.isoformat()}, now)
        done += 1
        rows_written += len(rows)
    return {"hours": done, "rows": rows_written}
