"""Metrics tasks: sample, ingest, roll up. Thin: read, call the pure core, store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import redis

from ..celery_app import app
from ..db.engine import engine_for
from ..runs import H_SCHEDULED, _header, _parse_time, coordination_redis, publishing, utcnow
from . import hosts
from .host import host_metrics, read_host
from .mysql import database_metrics, read_database
from .rates import Reading
from .redis_info import read_redis, redis_metrics
from .request_sources import ingest_access_log, ingest_stream
from .rollup import roll_up
from .store import get_state, put_state, sample_rows, write_samples

#: Samplers run every 15 s. Retries (2, 4, 8, 16, 30 s: 60 s in all) span a typical database or
#: Redis restart; a retried sample is still written under the slot it was due for (sample_slot).
SAMPLER_OPTIONS = dict(max_retries=5, backoff_max=30.0, soft_time_limit=20, time_limit=30)
#: How long a host-local sample may wait in its host queue before it is stale.
HOST_SAMPLE_EXPIRES = 15


def sample_slot(request) -> dt.datetime:
    """The time this sample stands for: beat's due second when beat sent it, else now."""
    scheduled = _parse_time(_header(request, H_SCHEDULED))
    return scheduled.replace(microsecond=0) if scheduled else utcnow()


def source_label(url: str) -> str:
    """mysql@host:port, redis@host:port, sqlite or redis@embedded: what was sampled, no secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme in ("sqlite",):
        return "sqlite"
    if scheme in ("unix", "redis+socket") or not parts.hostname:
        return f"{'redis' if scheme in ('unix', 'redis') else scheme}@embedded"
    return f"{'mysql' if scheme == 'mysql' else scheme}@{parts.hostname}:{parts.port or ''}".rstrip(":")


def _record(request, state_name: str, host: str, cur: Reading, compute) -> dict:
    """Compute metrics against the stored baseline, write them and the new baseline atomically.

    A redelivered message (same task id as the last sample) rewrites that sample's rows, at
    that sample's time, against that sample's baseline: nothing is written twice.
    """
    settings = app.pelbiot_settings
    with engine_for(settings.ops_db_url).begin() as conn:
        state = get_state(conn, state_name, lock=True) or {}
        redelivered = request.id is not None and state.get("task_id") == request.id
        if redelivered:
            slot = dt.datetime.fromisoformat(state["slot"])
            prev = Reading.from_json(state.get("previous"))
        else:
            slot = sample_slot(request)
            prev = Reading.from_json(state.get("reading"))
        values = compute(prev, cur)
        rows = sample_rows(host, slot, values)
        write_samples(conn, rows)
        put_state(conn, state_name, {"task_id": request.id, "slot": slot.isoformat(), "reading": cur.to_json(),
                                     "previous": prev.to_json() if prev else None}, utcnow())
    return {"host": host, "metrics": len(rows), "with_rates": prev is not None}


@app.task(name="metrics.sample_host", bind=True, **SAMPLER_OPTIONS)
def sample_host(self) -> dict:
    """Sample the host this worker runs on (sent to its host queue)."""
    host = app.pelbiot_settings.hostname
    return _record(self.request, f"host:{host}", host, read_host(), host_metrics)


@app.task(name="metrics.sample_hosts", bind=True, **SAMPLER_OPTIONS)
def sample_hosts(self) -> dict:
    """Send metrics.sample_host to the queue of every host whose worker was seen recently."""
    settings = app.pelbiot_settings
    alive = hosts.live_hosts(coordination_redis(settings))
    scheduled = _header(self.request, H_SCHEDULED)
    extra = {"scheduled_at": scheduled} if scheduled else {}
    for host in alive:
        with publishing("dispatch", job="metrics.sample_host", expires_s=str(HOST_SAMPLE_EXPIRES), **extra):
            sample_host.apply_async(queue=f"host.{host}")
    return {"hosts": alive}


@app.task(name="metrics.sample_mysql", bind=True, **SAMPLER_OPTIONS)
def sample_mysql(self) -> dict:
    """Sample the app database: status rates and gauges (MySQL/MariaDB) or file and pages (SQLite)."""
    settings = app.pelbiot_settings
    label = source_label(settings.app_db_url)
    cur = read_database(engine_for(settings.app_db_url))
    return _record(self.request, f"db:{label}", label, cur, database_metrics)


_cache_clients: dict[str, redis.Redis] = {}


def cache_redis(url: str) -> redis.Redis:
    client = _cache_clients.get(url)
    if client is None:
        client = _cache_clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
    return client


@app.task(name="metrics.sample_redis", bind=True, **SAMPLER_OPTIONS)
def sample_redis(self) -> dict:
    """Sample the cache Redis: ops/s, memory, fragmentation, hit rate, evictions, clients."""
    settings = app.pelbiot_settings
    label = source_label(settings.cache_redis_url)
    cur = read_redis(cache_redis(settings.cache_redis_url))
    return _record(self.request, f"redis:{label}", label, cur, redis_metrics)


@app.task(name="metrics.ingest_requests", exclusive=True, soft_time_limit=100, time_limit=120)
def ingest_requests() -> dict:
    """Aggregate API request telemetry per minute from the Redis stream and/or the access log."""
    settings = app.pelbiot_settings
    engine = engine_for(settings.ops_db_url)
    out = {}
    if settings.requests_stream:
        out["stream"] = ingest_stream(cache_redis(settings.requests_redis_url), engine,
                                      settings.requests_stream, utcnow())
    if settings.access_log:
        out["access_log"] = ingest_access_log(Path(settings.access_log), engine, utcnow())
    return out


@app.task(name="metrics.rollup", exclusive=True, soft_time_limit=500, time_limit=600)
def rollup() -> dict:
    """Roll raw samples up per metric, host and hour (min, avg, max, p95)."""
    return roll_up(engine_for(app.pelbiot_settings.ops_db_url), utcnow())
