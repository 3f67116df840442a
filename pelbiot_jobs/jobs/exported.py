"""The figures an outside monitor scrapes (Prometheus, through the web view's /metrics): read
from the ops database in a handful of queries, as plain data. What the web face renders."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select

from ..db import checkpoints
from ..db.engine import engine_for
from ..db.ops_models import cache_warm_runs, health_scores, incidents, job_runs, query_digests
from ..lib.clock import utcnow
from ..metrics.service import latest_values

#: A sample older than this is not "the latest value" any more (the host or source is gone).
FRESH = dt.timedelta(minutes=5)


def figures(settings, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    out: dict = {}
    with engine_for(settings.ops_db_url).connect() as conn:
        h = health_scores.c
        latest = conn.execute(select(func.max(h.ts))).scalar()
        out["health"] = [] if latest is None else [
            {"host": r.host, "score": r.score, "components": json.loads(r.components).get("components", [])}
            for r in conn.execute(select(h.host, h.score, h.components).where(h.ts == latest))]
        out["samples"] = [{"metric": r["metric"], "host": r["host"], "value": r["value"], "ts": r["at"]}
                          for r in latest_values(settings, FRESH.total_seconds(), now)]
        j = job_runs.c
        runs: dict[tuple[str, str], int] = {}
        for task, state, n in conn.execute(select(j.task, j.state, func.count()).group_by(j.task, j.state)):
            runs[(task, state)] = n
        # What retention deleted still counts: the counter never goes down.
        for key, n in (checkpoints.get(conn, checkpoints.PRUNED_JOB_RUNS) or {}).items():
            task, _, state = key.rpartition("|")
            runs[(task, state)] = runs.get((task, state), 0) + n
        out["runs"] = [{"task": t, "state": st, "n": n} for (t, st), n in sorted(runs.items())]
        out["last_success"] = [dict(r) for r in conn.execute(
            select(func.coalesce(j.job, j.task).label("job"), func.max(j.finished_at).label("at"))
            .where(j.state == "SUCCESS").group_by(func.coalesce(j.job, j.task))).mappings()]
        i = incidents.c
        out["incidents"] = [dict(r) for r in conn.execute(select(i.severity, func.count().label("n"))
                                                          .where(i.status != "resolved").group_by(i.severity)).mappings()]
        w = cache_warm_runs.c
        out["cache_warm"] = [dict(r) for r in conn.execute(
            select(w.warmer, func.max(w.finished_at).label("at"),
                   func.sum(func.coalesce(w["keys"], 0)).label("keys"))
            .where(w.finished_at >= now - dt.timedelta(hours=1), w.error.is_(None)).group_by(w.warmer)).mappings()]
        q = query_digests.c
        out["slow_classes"] = conn.execute(select(func.count(func.distinct(q.query_id)))
                                           .where(q.window_start >= now - dt.timedelta(hours=24), q.slow == 1)).scalar()
    return out
