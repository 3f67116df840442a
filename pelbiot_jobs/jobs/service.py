"""The jobs service: what ran, what is due, which workers live, what was set aside.

Read from ops_job_runs, beat.yaml, RedBeat's entries and the workers' heartbeats, without
loading Celery's task registry, so ``pelbiot-jobs status`` answers in a fraction of a second.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Iterable

from sqlalchemy import Engine, and_, select

from ..db.ops_models import FINAL_STATES, job_runs
from ..lib.clock import utcnow
from ..runtime.schedule import Job, scheduled_jobs

#: How often ``wait_for_runs`` looks at the ops DB (s).
POLL_SECONDS = 0.25


def latest_run(engine: Engine, job: Job) -> dict | None:
    """The most recent run of ``job``: sent by its beat entry, or its task sent another way.

    Four small reads down the indexes (job, started_at) and (task, started_at) instead of one that
    sorts every run: the newest started run of each kind, and the newest of those that never
    started (a parent's record of a worker lost before the start)."""
    c = job_runs.c
    kinds = (c.job == job.name, and_(c.job.is_(None), c.task == job.task))
    found = []
    with engine.connect() as conn:
        for kind in kinds:
            for query in (select(job_runs).where(kind, c.started_at.isnot(None))
                          .order_by(c.started_at.desc(), c.id.desc()).limit(1),
                          select(job_runs).where(kind, c.started_at.is_(None))
                          .order_by(c.finished_at.desc(), c.id.desc()).limit(1)):
                row = conn.execute(query).mappings().first()
                if row is not None:
                    found.append(dict(row))
    when = [r for r in found if (r["started_at"] or r["finished_at"]) is not None]
    if not when:
        return found[0] if found else None
    return max(when, key=lambda r: (r["started_at"] or r["finished_at"], r["id"]))


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
        if last_sent is None and last and last.get("trigger") in ("beat", "late"):
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


# --- the overview ``status`` shows --------------------------------------------------------------

def _redbeat_time(value) -> dt.datetime | None:
    """A datetime as RedBeat stores it in an entry's meta (its JSON encoder's layout), naive UTC."""
    if not isinstance(value, dict) or value.get("__type__") != "datetime":
        return None
    fields = {k: value[k] for k in ("year", "month", "day", "hour", "minute", "second", "microsecond") if k in value}
    zone = value.get("timezone", "UTC")
    offset = dt.timedelta(minutes=zone / 60) if isinstance(zone, (int, float)) else dt.timedelta(0)
    try:
        return dt.datetime(**fields) - offset
    except (TypeError, ValueError):
        return None


def beat_last_run(client, jobs: Iterable[Job]) -> dict[str, dt.datetime]:
    """When RedBeat last sent each job (naive UTC), read from its entries in one round trip.

    (Not its schedule's scores: RedBeat scores an entry by when to wake up for it, which may be
    earlier than when it is due; the next due time is computed from this and the schedule.)"""
    from ..runtime.heartbeats import REDBEAT_KEY_PREFIX

    jobs = list(jobs)
    with client.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.hget(REDBEAT_KEY_PREFIX + job.name, "meta")
        metas = pipe.execute()
    out = {}
    for job, meta in zip(jobs, metas):
        try:
            when = _redbeat_time(json.loads(meta).get("last_run_at")) if meta else None
        except ValueError:
            when = None
        if when and when.year > 1:
            out[job.name] = when
    return out


def dead_letter_summary(client) -> dict:
    """How many messages were moved aside as dead letters, and the newest ten."""
    from ..runtime.heartbeats import dead_letters

    count, newest = dead_letters(client, limit=10)
    return {"count": count, "newest": newest}


def dead_letters_of(settings) -> dict | None:
    """``dead_letter_summary`` of the broker's Redis; None with another broker or the embedded one down."""
    from ..lib import redis_clients

    if not settings.broker_is_redis or (settings.embedded_redis and not _embedded_answers(settings)):
        return None
    return dead_letter_summary(redis_clients.coordination(settings))


def overview(settings, ping: bool = False, offline: bool = False, now: dt.datetime | None = None) -> dict:
    """Every job's last run and next due time; workers online; dead letters; the broker's trouble.

    Workers come from their heartbeats (one Redis read) unless ``ping`` asks them through the
    broker (waits a second). ``offline`` reads the ops DB only.
    """
    from ..lib import redis_clients
    from ..lib.errors import ConfigError, auth_failure, one_line
    from ..runtime.heartbeats import workers as heartbeats
    from ..runtime.recording import rejected_count

    jobs, problems = scheduled_jobs(settings)
    beat_last, workers, dead, broker_error, rejected = {}, [], None, None, None
    broker_up = not settings.embedded_redis or _embedded_answers(settings)
    if broker_up and not offline:
        try:
            if settings.broker_is_redis:
                client = redis_clients.coordination(settings)
                beat_last = beat_last_run(client, jobs)
                dead = dead_letter_summary(client)
                rejected = rejected_count(client)
            if settings.broker_is_redis and not ping:
                workers = sorted(w.get("node", "?") for w in heartbeats(client))
            else:
                from ..runtime.app import configure

                app = configure(settings)
                workers = sorted(name for reply in app.control.ping(timeout=1.0) for name in reply)
        except Exception as exc:
            if auth_failure(exc):
                raise ConfigError(f"the broker refused the configured account (PELBIOT_BROKER_URL): "
                                  f"{one_line(exc, settings.secrets())}") from None
            broker_error = f"the broker does not answer: {one_line(exc, settings.secrets())}"
    from ..db.engine import engine_for

    rows = job_status(engine_for(settings.ops_db_url), jobs, now or utcnow(), beat_last)
    return {"jobs": rows, "workers": workers, "dead_letters": dead, "broker_error": broker_error,
            "schedule_problems": problems, "rejected_runs": rejected}


def live_workers(settings, now: float | None = None) -> list[dict]:
    """The workers alive now, from their heartbeats, with what each is running and for how long."""
    from ..lib import redis_clients
    from ..lib.errors import InputError
    from ..runtime.heartbeats import workers

    if not settings.broker_is_redis:
        raise InputError("`workers` reads the heartbeats workers write in the broker's Redis; with another broker, "
                         "use `celery inspect active` or Flower")
    if settings.embedded_redis and not _embedded_answers(settings):
        return []
    rows = workers(redis_clients.coordination(settings))
    now = now if now is not None else time.time()
    for w in rows:
        w["heartbeat_age_s"] = round(now - float(w.get("heartbeat") or 0), 1)
        for task in w.get("active") or []:
            started = task.get("started")
            task["running_s"] = round(now - float(started), 1) if started else None
    return rows


def _embedded_answers(settings) -> bool:
    from ..lib.redis_clients import answers

    return answers(settings.embedded_socket)


def queue_depths(settings) -> dict[str, int]:
    """Messages waiting on each queue: the shared ones and each live worker's host queue (a Redis
    broker: its lists, priorities included); {} with another broker."""
    from ..lib import redis_clients
    from ..runtime.heartbeats import workers
    from ..runtime.keys import QUEUE_PRIORITY_SUFFIXES
    from ..runtime.schedule import SHARED_QUEUES

    if not settings.broker_is_redis or (settings.embedded_redis and not _embedded_answers(settings)):
        return {}
    client = redis_clients.coordination(settings)
    names = sorted(set(SHARED_QUEUES) | {q for w in workers(client) for q in (w.get("queues") or [])})
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            for suffix in QUEUE_PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        counts = pipe.execute()
    n = len(QUEUE_PRIORITY_SUFFIXES)
    return {name: sum(counts[i * n:i * n + n]) for i, name in enumerate(names)}


def beat_lock(settings) -> dict:
    """Whether a beat holds RedBeat's lock (one beat sends, the others stand by) and for how long yet."""
    from ..lib import redis_clients
    from ..runtime.heartbeats import REDBEAT_KEY_PREFIX

    if not settings.broker_is_redis:
        return {"held": None, "note": "with this broker beat keeps its schedule in a file: run one beat"}
    if settings.embedded_redis and not _embedded_answers(settings):
        return {"held": False, "expires_in_s": None}
    ttl = redis_clients.coordination(settings).pttl(REDBEAT_KEY_PREFIX + ":lock")
    return {"held": ttl is not None and ttl > 0, "expires_in_s": round(ttl / 1000, 1) if ttl and ttl > 0 else None}


def runs_of(settings, task_id: str) -> list[dict]:
    """Every attempt of one run, oldest first; NotFound when the ops DB has none."""
    from ..db.engine import engine_for
    from ..lib.errors import NotFound

    c = job_runs.c
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = [dict(r) for r in conn.execute(select(job_runs).where(c.task_id == task_id)
                                              .order_by(c.attempt)).mappings()]
    if not rows:
        raise NotFound(f"no run {task_id!r:.80} in ops_job_runs (sent, not started yet, or not sent)")
    return rows


def recent_runs(settings, job: str | None = None, limit: int = 100, before: int | None = None,
                task: str | None = None) -> list[dict]:
    """Runs newest first (of one job, or of all); ``task``: with the job's, the runs of its task sent
    by name (`run db.optimize`, the API), as `status` counts them; ``before``: only those with a
    smaller id (the next page)."""
    from sqlalchemy import or_

    from ..db.engine import engine_for

    c = job_runs.c
    query = select(job_runs).order_by(c.id.desc()).limit(limit)
    if job is not None:
        query = query.where(or_(c.job == job, and_(c.job.is_(None), c.task == task)) if task else c.job == job)
    if before is not None:
        query = query.where(c.id < before)
    with engine_for(settings.ops_db_url).connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def start(settings, name: str, params: dict | None = None, trigger: str = "api") -> dict:
    """Send a task, or a job of beat.yaml by its name, through the broker, as `run` does; its
    parameters are checked here first (InputError naming the bad one). The task id, to follow it."""
    import uuid

    from ..runtime.app import configure, load_jobs
    from ..runtime.headers import publishing
    from ..runtime.params import check_params

    app = configure(settings)
    params = dict(params or {})
    jobs = {j.name: j for j in load_jobs(settings, deep=False)}
    job = jobs.get(name)
    if name in app.tasks and not name.startswith("celery."):
        task, queue, job_name = app.tasks[name], None, None
    elif job is not None and job.task in app.tasks:
        task, queue, job_name = app.tasks[job.task], job.queue, job.name
        params = dict(job.kwargs) | params
    else:
        from ..lib.errors import NotFound

        raise NotFound(f"no task or job {name!r:.80}")
    check_params(task.name, task.params, (), params)
    task_id = str(uuid.uuid4())
    with publishing(trigger, job=job_name):
        task.apply_async(kwargs=params, task_id=task_id, **({"queue": queue} if queue else {}))
    return {"task_id": task_id, "task": task.name, "job": job_name}
