"""What ran, what is due: read from ops_job_runs and the beat schedule."""

from __future__ import annotations

import datetime as dt
import time
from typing import Iterable

from sqlalchemy import Engine, and_, func, or_, select

from .db.ops_models import FINAL_STATES, job_runs
from .scheduling import Job

#: How often ``wait_for_runs`` looks at the ops DB (s).
POLL_SECONDS = 0.25


def latest_run(engine: Engine, job: Job) -> dict | None:
    """The most recent run of ``job``: sent by its beat entry, or its task sent another way."""
    c = job_runs.c
    query = (select(job_runs)
             .where(or_(c.job == job.name, and_(c.job.is_(None), c.task == job.task)))
             .order_by(func.coalesce(c.started_at, c.finished_at).desc(), c.id.desc())
             .limit(1))
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def next_due(job: Job, last_run_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When beat will next send ``job``, from its schedule and its last run (naive UTC).

    Celery's ``remaining_estimate`` is the time from *now* to the next run after ``last_run_at``.
    """
    schedule = job.celery_schedule()
    aware_now = now.replace(tzinfo=dt.timezone.utc)
    schedule.nowfun = lambda: aware_now
    last = (last_run_at or now).replace(tzinfo=dt.timezone.utc)
    remaining = max(schedule.remaining_estimate(last), dt.timedelta(0))
    return (aware_now + remaining).replace(tzinfo=None)


def job_status(engine: Engine, jobs: Iterable[Job], now: dt.datetime,
               beat_last_run: dict[str, dt.datetime] | None = None) -> list[dict]:
    """One dict per job: schedule, last run and next due time (ISO 8601 UTC strings)."""
    out = []
    for job in jobs:
        last = latest_run(engine, job)
        finished = last["finished_at"] if last else None
        # Beat's own record of its last send wins; else the last run beat sent, by its due time.
        last_sent = (beat_last_run or {}).get(job.name)
        if last_sent is None and last and last.get("trigger") == "beat":
            last_sent = last.get("scheduled_at") or last.get("started_at")
        due = next_due(job, last_sent, now)
        out.append({
            "name": job.name,
            "task": job.task,
            "schedule": job.schedule_text,
            "enabled": job.enabled,
            "queue": job.queue,
            "last_state": last["state"] if last else None,
            "last_started": _iso(last["started_at"]) if last else None,
            "last_finished": _iso(finished),
            "last_duration_s": last["duration_s"] if last else None,
            "last_error": last["error"] if last else None,
            "last_result": last["result"] if last else None,
            "next_due": _iso(due) if job.enabled else None,
        })
    return out


def _iso(value: dt.datetime | None) -> str | None:
    return value.replace(tzinfo=dt.timezone.utc).isoformat() if value else None


def wait_for_runs(engine: Engine, task_ids: list[str], timeout: float,
                  on_progress=None) -> dict[str, dict]:
    """Wait until every task id has a final row (SUCCESS, FAILURE, SKIPPED); return the rows.

    Runs still unfinished at the timeout are returned with their latest row, or absent.
    """
    deadline = time.monotonic() + timeout
    final: dict[str, dict] = {}
    latest: dict[str, dict] = {}
    while True:
        pending = [t for t in task_ids if t not in final]
        if not pending:
            break
        with engine.connect() as conn:
            rows = conn.execute(select(job_runs).where(job_runs.c.task_id.in_(pending))
                                .order_by(job_runs.c.attempt)).mappings().all()
        for row in rows:
            latest[row["task_id"]] = dict(row)
            if row["state"] in FINAL_STATES:
                final[row["task_id"]] = dict(row)
        if on_progress:
            on_progress(len(final), len(task_ids))
        if len(final) == len(task_ids) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    return {t: final.get(t) or latest.get(t) for t in task_ids if t in final or t in latest}
