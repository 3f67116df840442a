"""Metrics tasks: thin shells over metrics/service.py."""

from __future__ import annotations

import datetime as dt

from ..lib.clock import utcnow
from ..runtime.app import app
from ..runtime.headers import publishing, scheduled_at, scheduled_header

#: Samplers run every 15 s. Retries (2, 4, 8, 16, 30 s: 60 s in all) span a typical database or
#: Redis restart; a retried sample is still written under the slot it was due for (sample_slot).
SAMPLER_OPTIONS = dict(bind=True, max_retries=5, backoff_max=30.0, soft_time_limit=20, time_limit=30)
#: How long a host-local sample may wait in its host queue before it is stale.
HOST_SAMPLE_EXPIRES = 15


def sample_slot(request) -> dt.datetime:
    """The time this sample stands for: beat's due second when beat sent it, else now."""
    scheduled = scheduled_at(request)
    return scheduled.replace(microsecond=0) if scheduled else utcnow()


@app.task(name="metrics.sample_host", **SAMPLER_OPTIONS)
def sample_host(self) -> dict:
    """Sample the host this worker runs on (sent to its host queue)."""
    from . import service

    return service.sample_host(self.settings, self.request.id, sample_slot(self.request))


@app.task(name="metrics.sample_hosts", **SAMPLER_OPTIONS)
def sample_hosts(self) -> dict:
    """Send metrics.sample_host to the queue of every host whose worker was seen recently."""
    from . import service

    alive = service.live_hosts(self.settings)
    scheduled = scheduled_header(self.request)
    extra = {"scheduled_at": scheduled} if scheduled else {}
    for host in alive:
        with publishing("dispatch", job="metrics.sample_host", expires_s=str(HOST_SAMPLE_EXPIRES), **extra):
            sample_host.apply_async(queue=f"host.{host}")
    return {"hosts": alive}


@app.task(name="metrics.sample_mysql", **SAMPLER_OPTIONS)
def sample_mysql(self) -> dict:
    """Sample the app database: status rates and gauges (MySQL/MariaDB) or file and pages (SQLite)."""
    from . import service

    return service.sample_database(self.settings, self.request.id, sample_slot(self.request))


@app.task(name="metrics.sample_redis", **SAMPLER_OPTIONS)
def sample_redis(self) -> dict:
    """Sample the cache Redis: ops/s, memory, fragmentation, hit rate, evictions, clients."""
    from . import service

    return service.sample_cache(self.settings, self.request.id, sample_slot(self.request))


@app.task(name="metrics.ingest_requests", bind=True, exclusive=True, soft_time_limit=100, time_limit=120)
def ingest_requests(self) -> dict:
    """Aggregate API request telemetry per minute from the Redis stream and/or the access log."""
    from . import service

    return service.ingest_requests(self.settings)


@app.task(name="metrics.rollup", bind=True, exclusive=True, soft_time_limit=500, time_limit=600)
def rollup(self) -> dict:
    """Roll raw samples up per metric, host and hour (min, avg, max, p95)."""
    from . import service

    return service.roll_up(self.settings)
