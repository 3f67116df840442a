"""The tasks: thin shells that fetch, call the pure core, store.

Names are ``<area>.<verb>``, the same in schedules/beat.yaml, Flower and ``pelbiot-jobs run``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func

from .celery_app import app
from .db.engine import engine_for
from .db.ops_models import job_runs, metric_rollups, metric_samples, request_minutes, table_stats
from .db.table_stats import hour_bucket, read_table_stats
from .db.upsert import upsert
from .maintenance.retention import cutoffs, prune
from .params import Days
from .runs import utcnow


@app.task(name="db.table_stats", exclusive=True,
          soft_time_limit=240, time_limit=300)
def db_table_stats() -> dict:
    """Record rows, data, index and free bytes of every app DB table (one row per table and hour)."""
    settings = app.pelbiot_settings
    rows = read_table_stats(engine_for(settings.app_db_url))
    captured = hour_bucket(utcnow())
    for row in rows:
        row["captured_at"] = captured
    with engine_for(settings.ops_db_url).begin() as conn:
        upsert(conn, table_stats, rows, key=("schema_name", "table_name", "captured_at"))
    return {"tables": len(rows), "rows": sum(r["row_count"] or 0 for r in rows),
            "bytes": sum((r["data_bytes"] or 0) + (r["index_bytes"] or 0) for r in rows)}


@app.task(name="maintenance.retention", exclusive=True, soft_time_limit=1700, time_limit=1800,
          params={"job_runs_days": Days(), "table_stats_days": Days(), "samples_days": Days(), "rollups_days": Days()})
def maintenance_retention(job_runs_days: int | None = None, table_stats_days: int | None = None,
                          samples_days: int | None = None, rollups_days: int | None = None) -> dict:
    """Prune job runs, table statistics, raw samples and rollups past their configured age."""
    settings = app.pelbiot_settings
    plan = cutoffs(utcnow(), [
        (job_runs, func.coalesce(job_runs.c.finished_at, job_runs.c.started_at), job_runs_days or settings.retention_job_runs_days),
        (table_stats, table_stats.c.captured_at, table_stats_days or settings.retention_table_stats_days),
        (metric_samples, metric_samples.c.ts, samples_days or settings.retention_samples_days),
        (request_minutes, request_minutes.c.minute, samples_days or settings.retention_samples_days),
        (metric_rollups, metric_rollups.c.hour, rollups_days or settings.retention_rollups_days),
    ])
    deleted = prune(engine_for(settings.ops_db_url), plan)
    deleted["report_folders"] = prune_report_files(settings, utcnow())
    return {"deleted": deleted}


def prune_report_files(settings, now) -> int:
    """Delete report folders (reports/<kind>/<YYYY-MM-DD>/) written longer ago than the retention.

    A folder is aged by when its newest file was written, not by the period it covers: a monthly
    report written today about last month is fresh.
    """
    import shutil

    cutoff = (now - dt.timedelta(days=settings.retention_reports_days)).replace(tzinfo=dt.timezone.utc).timestamp()
    removed = 0
    for kind_dir in (settings.reports_dir.iterdir() if settings.reports_dir.is_dir() else []):
        if kind_dir.is_symlink() or not kind_dir.is_dir():
            continue
        for folder in kind_dir.iterdir():
            try:
                dt.date.fromisoformat(folder.name)
            except ValueError:
                continue  # not one of ours
            if folder.is_symlink() or not folder.is_dir():
                continue
            written = max([f.lstat().st_mtime for f in folder.iterdir()] or [folder.lstat().st_mtime])
            if written < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed


@app.task(name="db.optimize", exclusive=True, soft_time_limit=3500, time_limit=3600)
def db_optimize() -> dict:
    """ANALYZE stale tables, record table statistics, store tuning recommendations with their evidence."""
    import json

    from .db.ops_models import recommendations
    from .db.tuning import advise, analyze_stale, facts
    from .indexes.live import read_schema
    from .indexes.plan import plan

    from .errors import ConfigError
    from .runs import skipped

    settings = app.pelbiot_settings
    try:
        admin = settings.admin_url("db.optimize (ANALYZE TABLE)")
    except ConfigError as exc:
        return skipped(str(exc))
    app_engine = engine_for(settings.app_db_url)
    now = utcnow()
    analyzed = analyze_stale(engine_for(admin), now)
    stats = db_table_stats.run()
    if app_engine.dialect.name == "sqlite":
        return {"analyzed": analyzed, "tables": stats["tables"], "recommendations": 0}
    advice = advise(facts(app_engine), plan([], read_schema(app_engine))["duplicates"])
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with engine_for(settings.ops_db_url).begin() as conn:
        upsert(conn, recommendations, [{"day": day, "code": a["code"], "severity": a["severity"],
                                        "message": a["message"][:1000], "evidence": json.dumps(a["evidence"])}
                                       for a in advice], key=("day", "code"))
    return {"analyzed": len(analyzed), "tables": stats["tables"], "recommendations": [a["code"] for a in advice]}
