"""Retention: prune job runs, table statistics, samples, rollups, health scores, query digests and report folders
past their age."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func

from ..db.engine import engine_for
from ..db.ops_models import (health_scores, job_runs, metric_rollups, metric_samples, query_digests, query_slices,
                             query_slices_daily, request_minutes, table_stats)
from ..lib.clock import utcnow
from .retention import cutoffs, prune


def retention(settings, job_runs_days: int | None = None, table_stats_days: int | None = None,
              samples_days: int | None = None, rollups_days: int | None = None, now: dt.datetime | None = None) -> dict:
    """Delete what is older than its retention (the settings', or the days given)."""
    now = now or utcnow()
    plan = cutoffs(now, [
        (job_runs, func.coalesce(job_runs.c.finished_at, job_runs.c.started_at),
         job_runs_days or settings.retention_job_runs_days),
        (table_stats, table_stats.c.captured_at, table_stats_days or settings.retention_table_stats_days),
        (metric_samples, metric_samples.c.ts, samples_days or settings.retention_samples_days),
        (request_minutes, request_minutes.c.minute, samples_days or settings.retention_samples_days),
        (metric_rollups, metric_rollups.c.hour, rollups_days or settings.retention_rollups_days),
        # a host's score every minute as long as its samples; the installation's (host "*", what
        # the monthly and summary reports chart) as long as the rollups
        (health_scores, health_scores.c.ts, samples_days or settings.retention_samples_days,
         health_scores.c.host != "*"),
        (health_scores, health_scores.c.ts, rollups_days or settings.retention_rollups_days,
         health_scores.c.host == "*"),
        (query_digests, query_digests.c.window_start, settings.retention_queries_days),
        (query_slices, query_slices.c.window_start, settings.retention_queries_days),
        (query_slices_daily, query_slices_daily.c.day, settings.retention_queries_days),
    ])
    deleted = prune(engine_for(settings.ops_db_url), plan, {job_runs.name: count_pruned_runs})
    deleted["report_folders"] = prune_report_files(settings, now)
    return {"deleted": deleted}


def count_pruned_runs(conn, ids: list) -> None:
    """Add the runs about to be deleted to the count of pruned runs (checkpoints.PRUNED_JOB_RUNS),
    in the transaction that deletes them."""
    from sqlalchemy import select

    from ..db import checkpoints

    c = job_runs.c
    counts = checkpoints.get(conn, checkpoints.PRUNED_JOB_RUNS, lock=True) or {}
    for task, state, n in conn.execute(select(c.task, c.state, func.count()).where(c.id.in_(ids))
                                       .group_by(c.task, c.state)):
        key = f"{task}|{state}"
        counts[key] = counts.get(key, 0) + n
    checkpoints.put(conn, checkpoints.PRUNED_JOB_RUNS, counts, utcnow())


def prune_report_files(settings, now: dt.datetime) -> int:
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
