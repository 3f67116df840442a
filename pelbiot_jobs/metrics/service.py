"""The metrics services: sample, ingest, roll up, read. What tasks, the CLI and the web view call.

A sample is computed against the stored baseline (the previous reading, for rates) and written
with the new baseline in one transaction: a redelivered sample (same task id as the last one)
rewrites that sample's rows, at that sample's time, against that sample's baseline.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

from ..db import checkpoints
from ..db.engine import engine_for
from ..lib import redis_clients
from ..lib.clock import as_datetime, utcnow
from .rates import Reading
from .store import sample_rows, write_samples


def source_label(url: str) -> str:
    """mysql@host:port, redis@host:port, sqlite or redis@embedded: what was sampled, no secret."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme in ("sqlite",):
        return "sqlite"
    if scheme in ("unix", "redis+socket") or not parts.hostname:
        return f"{'redis' if scheme in ('unix', 'redis') else scheme}@embedded"
    return f"{'mysql' if scheme == 'mysql' else scheme}@{parts.hostname}:{parts.port or ''}".rstrip(":")


def record_sample(settings, checkpoint: str, host: str, cur: Reading, compute, task_id: str | None,
                  slot: dt.datetime) -> dict:
    """Compute metrics against the stored baseline, write them and the new baseline atomically."""
    with engine_for(settings.ops_db_url).begin() as conn:
        state = checkpoints.get(conn, checkpoint, lock=True) or {}
        redelivered = task_id is not None and state.get("task_id") == task_id
        if redelivered:
            slot = dt.datetime.fromisoformat(state["slot"])
            prev = Reading.from_json(state.get("previous"))
        else:
            prev = Reading.from_json(state.get("reading"))
        values = compute(prev, cur)
        rows = sample_rows(host, slot, values)
        write_samples(conn, rows)
        checkpoints.put(conn, checkpoint, {"task_id": task_id, "slot": slot.isoformat(), "reading": cur.to_json(),
                                           "previous": prev.to_json() if prev else None}, utcnow())
    return {"host": host, "metrics": len(rows), "with_rates": prev is not None}


def sample_host(settings, task_id: str | None, slot: dt.datetime) -> dict:
    """The host this process runs on: CPU, memory, disk, network."""
    from .host import host_metrics, read_host

    host = settings.hostname
    return record_sample(settings, f"host:{host}", host, read_host(), host_metrics, task_id, slot)


def sample_database(settings, task_id: str | None, slot: dt.datetime) -> dict:
    """The app database: status rates and gauges (MySQL/MariaDB) or file and pages (SQLite)."""
    from .mysql import database_metrics, read_database

    label = source_label(settings.app_db_url)
    return record_sample(settings, f"db:{label}", label, read_database(engine_for(settings.app_db_url)),
                         database_metrics, task_id, slot)


def sample_cache(settings, task_id: str | None, slot: dt.datetime) -> dict:
    """The cache Redis: ops/s, memory, fragmentation, hit rate, evictions, clients."""
    from .redis_info import read_redis, redis_metrics

    label = source_label(settings.cache_redis_url)
    return record_sample(settings, f"redis:{label}", label, read_redis(redis_clients.cache(settings)),
                         redis_metrics, task_id, slot)


def live_hosts(settings) -> list[str]:
    """Hosts whose worker consumes its host queue and wrote its heartbeat recently."""
    from ..runtime.heartbeats import live_hosts as seen

    return seen(redis_clients.coordination(settings))


def ingest_requests(settings, now: dt.datetime | None = None) -> dict:
    """Aggregate API request telemetry per minute from the Redis stream and/or the access log."""
    from .request_sources import ingest_access_log, ingest_stream

    now = now or utcnow()
    engine = engine_for(settings.ops_db_url)
    out = {}
    if settings.requests_stream:
        out["stream"] = ingest_stream(redis_clients.cache(settings, settings.requests_redis_url), engine,
                                      settings.requests_stream, now)
    if settings.access_log:
        out["access_log"] = ingest_access_log(Path(settings.access_log), engine, now)
    return out


def roll_up(settings, now: dt.datetime | None = None) -> dict:
    """Roll raw samples up per metric, host and hour (min, avg, max, p95)."""
    from .rollup import roll_up as run

    return run(engine_for(settings.ops_db_url), now or utcnow())


def read(settings, window_s: float, host: str | None = None, now: dt.datetime | None = None) -> dict:
    """The latest value, range and trend of every metric in the window; API requests per minute."""
    from .view import read_metrics

    return read_metrics(engine_for(settings.ops_db_url), (now or utcnow()) - dt.timedelta(seconds=window_s), host)


#: Windows up to this long read raw samples; longer ones read the hourly rollups (their averages).
RAW_WINDOW_S = 24 * 3600


def hosts_seen(settings, window_s: float, now: dt.datetime | None = None) -> list[str]:
    """The hosts (and sources: mysql@..., redis@...) with data in the window: samples of the last
    hour, and the hourly rollups beyond it. Each host's latest row is read from the (host, time)
    index, one seek per host (a loose index scan), not the window's rows: a fleet's hour of
    samples is hundreds of thousands."""
    from ..db.ops_models import metric_rollups, metric_samples

    now = now or utcnow()
    with engine_for(settings.ops_db_url).connect() as conn:
        hosts = set(_newest_since(conn, metric_samples.c.ts, now - dt.timedelta(seconds=min(window_s, 3600))))
        if window_s > 3600:
            hosts.update(_newest_since(conn, metric_rollups.c.hour, now - dt.timedelta(seconds=window_s)))
    return sorted(hosts)


def _newest_since(conn, when, since: dt.datetime) -> list[str]:
    """The hosts of ``when``'s table (samples or rollups) whose newest row is at or after ``since``:
    each host's newest read from the (host, time) index, one seek per host (a loose index scan)."""
    from sqlalchemy import func, select

    host = when.table.c.host
    return [h for h, last in conn.execute(select(host, func.max(when)).group_by(host)) if as_datetime(last) >= since]


#: A raw-sample chart has at most this many points per metric: the database keeps each bucket's
#: maximum (a one-sample peak still shows) instead of sending a day of 15 s samples to be drawn.
CHART_POINTS = 360


def series(settings, host: str, window_s: float, now: dt.datetime | None = None) -> dict[str, list]:
    """Every metric of ``host`` over the window as [(time, value)], oldest first: raw samples up to a
    day (bucketed in the database to CHART_POINTS per metric, each bucket's maximum), the hourly
    rollups' averages beyond (a year of hourly points, not millions of samples)."""
    from sqlalchemy import func, select

    from ..db.engine import bucket_step, time_bucket
    from ..db.ops_models import metric_rollups, metric_samples

    since = (now or utcnow()) - dt.timedelta(seconds=window_s)
    engine = engine_for(settings.ops_db_url)
    if window_s <= RAW_WINDOW_S:
        c = metric_samples.c
        bucket = time_bucket(engine, c.ts, bucket_step(window_s, CHART_POINTS))
        query = (select(c.metric, func.min(c.ts), func.max(c.value)).where(c.host == host, c.ts >= since)
                 .group_by(c.metric, bucket).order_by(c.metric, func.min(c.ts)))
    else:
        c = metric_rollups.c
        query = select(c.metric, c.hour, c.avg).where(c.host == host, c.hour >= since).order_by(c.metric, c.hour)
    out: dict[str, list] = {}
    with engine.connect() as conn:
        for metric, ts, value in conn.execute(query):
            out.setdefault(metric, []).append((as_datetime(ts), value))
    return out


def latest(settings, window_s: float, host: str | None = None, prefix: str | None = None,
           now: dt.datetime | None = None) -> list[dict]:
    """Per host and metric over the window, computed in the database: the latest value and when,
    min, max, avg and how many samples (``prefix``: only metrics that start so, e.g. ``mysql.``).
    What the API answers: a summary of a fleet's window without carrying its samples over."""
    from sqlalchemy import and_, func, select

    from ..db.ops_models import metric_samples

    c = metric_samples.c
    since = (now or utcnow()) - dt.timedelta(seconds=window_s)
    with engine_for(settings.ops_db_url).connect() as conn:
        # The hosts of the window first (one seek each), then each host's range of the (host, ts,
        # metric, value) index: the window's rows read from the index alone, not row by row.
        hosts = [host] if host else _newest_since(conn, c.ts, since)
        if not hosts:
            return []
        where = [c.host.in_(hosts), c.ts >= since] + ([c.metric.like(prefix + "%")] if prefix else [])
        stats = (select(c.host, c.metric, func.max(c.ts).label("last_ts"), func.min(c.value).label("min"),
                        func.max(c.value).label("max"), func.avg(c.value).label("avg"),
                        func.count().label("samples"))
                 .where(*where).group_by(c.host, c.metric).subquery())
        query = (select(stats, c.value.label("latest")).join(
            metric_samples, and_(c.host == stats.c.host, c.metric == stats.c.metric, c.ts == stats.c.last_ts))
            .order_by(stats.c.host, stats.c.metric))
        return [{"host": r.host, "metric": r.metric, "latest": r.latest, "latest_at": as_datetime(r.last_ts),
                 "min": r.min, "max": r.max, "avg": float(r.avg) if r.avg is not None else None,
                 "samples": r.samples} for r in conn.execute(query)]


def latest_values(settings, window_s: float, now: dt.datetime | None = None) -> list[dict]:
    """Per host and metric with a sample in the window: its latest value and when, each series'
    newest slot read from the (metric, host, ts) index, one seek per series (a loose index scan),
    not the window's rows of a whole fleet."""
    from sqlalchemy import and_, func, select

    from ..db.ops_models import metric_samples

    c = metric_samples.c
    since = (now or utcnow()) - dt.timedelta(seconds=window_s)
    newest = (select(c.metric, c.host, func.max(c.ts).label("ts")).group_by(c.metric, c.host)
              .having(func.max(c.ts) >= since).subquery())
    query = (select(c.host, c.metric, c.value, c.ts).join(
        newest, and_(c.metric == newest.c.metric, c.host == newest.c.host, c.ts == newest.c.ts))
        .order_by(c.host, c.metric))
    with engine_for(settings.ops_db_url).connect() as conn:
        return [{"host": r.host, "metric": r.metric, "value": r.value, "at": as_datetime(r.ts)}
                for r in conn.execute(query)]


def request_summary(settings, window_s: float, now: dt.datetime | None = None) -> dict:
    """API requests over the window, from the per-minute rows: minutes, requests, 5xx, worst p95."""
    from sqlalchemy import func, select

    from ..db.ops_models import request_minutes

    r = request_minutes.c
    since = (now or utcnow()) - dt.timedelta(seconds=window_s)
    with engine_for(settings.ops_db_url).connect() as conn:
        row = conn.execute(select(func.count(), func.sum(r.requests), func.sum(r.c5xx), func.max(r.p95_ms))
                           .where(r.minute >= since)).one()
    minutes, requests, errors, p95 = row
    return {"minutes": minutes, "requests": int(requests or 0), "c5xx": int(errors or 0), "worst_p95_ms": p95,
            "requests_per_minute": (int(requests or 0) / minutes) if minutes else None}
