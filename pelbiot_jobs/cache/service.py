"""The cache services: load the warmers, warm, invalidate. What tasks, the CLI and the web view call."""

from __future__ import annotations

import datetime as dt

from ..db.engine import engine_for
from ..lib import redis_clients
from ..lib.clock import utcnow
from ..lib.errors import InputError, ScheduleError
from ..lib.paths import schedules_dir
from .spec import FILE, parse_cache_file


def load_warmers(settings, prove_sql: bool = True) -> list:
    """The warmers of cache.yaml; raise ScheduleError listing every problem (nothing runs then).

    ``prove_sql=False`` (reading the key namespaces only) skips the SQL parser; warmers read that
    way must not be run.
    """
    path = schedules_dir(settings) / FILE
    if not path.is_file():
        return []
    problems: list[str] = []
    warmers = parse_cache_file(path, problems, prove_sql=prove_sql)
    if problems:
        raise ScheduleError(problems)
    return warmers


def warm(settings, warmer: str | None, run_id: str, now: dt.datetime | None = None) -> dict:
    """Precompute the API's hot responses into the Redis keys it reads (the enabled warmers, or one)."""
    from .warm import warm as run

    warmers = [w for w in load_warmers(settings) if w.enabled or w.name == warmer]
    if warmer is not None:
        warmers = [w for w in warmers if w.name == warmer]
        if not warmers:
            raise InputError(f"unknown warmer {warmer!r}")
    return run(engine_for(settings.app_db_url), redis_clients.cache(settings), warmers, run_id,
               engine_for(settings.ops_db_url), now or utcnow())


def invalidation_namespaces(settings, pattern: str) -> set[str]:
    """The warmers' key namespaces, after checking that ``pattern`` stays inside one (InputError)."""
    from .writer import invalidation_problem

    namespaces = {w.namespace for w in load_warmers(settings, prove_sql=False)}
    problem = invalidation_problem(pattern, namespaces)
    if problem:
        raise InputError(problem)
    return namespaces


def invalidate(settings, pattern: str, dry_run: bool = False) -> int:
    """Unlink the cache keys matching ``pattern`` (SCAN + UNLINK) inside the warmers' namespaces."""
    from .writer import invalidate as run

    namespaces = invalidation_namespaces(settings, pattern)
    return run(redis_clients.cache(settings), pattern, namespaces, dry_run=dry_run)


def warm_stats(settings, window_s: float = 86400, now: dt.datetime | None = None) -> list[dict]:
    """Per warmer over the window: runs, failed runs, keys and bytes written by the last run, when."""
    from sqlalchemy import func, select

    from ..db.ops_models import cache_warm_runs

    c = cache_warm_runs.c
    since = (now or utcnow()) - dt.timedelta(seconds=window_s)
    with engine_for(settings.ops_db_url).connect() as conn:
        totals = conn.execute(select(c.warmer, func.count(), func.sum(func.coalesce(c.error, "") != ""),
                                     func.max(c.started_at)).where(c.started_at >= since)
                              .group_by(c.warmer).order_by(c.warmer)).all()
        out = []
        for warmer, runs, failed, last in totals:
            row = conn.execute(select(c["keys"], c.bytes, c.duration_s, c.error).where(
                c.warmer == warmer, c.started_at == last)).mappings().first()
            out.append({"warmer": warmer, "runs": runs, "failed": int(failed or 0), "last_run": last,
                        "last_keys": row["keys"], "last_bytes": row["bytes"], "last_duration_s": row["duration_s"],
                        "last_error": row["error"]})
    return out
