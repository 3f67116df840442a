"""Parse and validate ``schedules/beat.yaml``: what runs when.

Pure: no Celery app, no database. Every problem is reported as ``FILE:LINE: what is wrong`` so
that ``pelbiot-jobs schedules check`` and a refusing worker or beat say exactly the same thing.

    jobs:
      db.table_stats:            # the job's name; also the task unless `task:` says otherwise
        cron: "0 * * * *"        # minute hour day-of-month month day-of-week, UTC
        queue: maintenance
      metrics.sample_mysql:
        every: 15s               # or a number of seconds
        expires: 15s             # a sample not run within 15 s is dropped, not replayed
        kwargs: {}
        enabled: true
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..lib.specfile import FILE_CHECKERS, LineMap, checker, load_yaml, parse_duration

#: The schedule file that drives beat.
BEAT_FILE = "beat.yaml"
#: Keys a job may have.
JOB_KEYS = ("task", "every", "cron", "kwargs", "queue", "expires", "enabled", "description")
#: Shared queues; besides these, ``host.<name>`` targets one host's worker.
SHARED_QUEUES = ("sampling", "maintenance", "reports")
#: An interval at or below this is "frequent": it gets an expiry equal to its interval by default.
FREQUENT_SECONDS = 300
#: The shortest interval accepted; beat's loop cannot honour less.
MIN_EVERY_SECONDS = 1
#: The largest kwargs of one job, as JSON (bytes): they travel in every message beat sends.
MAX_KWARGS_BYTES = 4096


def parse_cron(expr: Any):
    """Turn a five-field cron expression into a Celery ``crontab``; raise ValueError."""
    if not isinstance(expr, str):
        raise ValueError(f"cron must be a quoted string of five fields, got {type(expr).__name__}")
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r} has {len(fields)} fields; use five: minute hour day month weekday")
    minute, hour, day_of_month, month, day_of_week = fields
    from celery.schedules import crontab  # pure: parsing only, no app

    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month, day_of_week=day_of_week)
    except Exception as exc:  # celery raises ValueError and its own ParseException
        raise ValueError(f"cron {expr!r} is invalid: {exc}") from None


@dataclass(frozen=True)
class Job:
    """One scheduled job, validated."""

    name: str
    task: str
    every: float | None = None
    cron: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    expires: float | None = None
    enabled: bool = True
    description: str = ""
    source: str = ""

    @property
    def schedule_text(self) -> str:
        return f"every {_fmt_seconds(self.every)}" if self.every is not None else f"cron {self.cron}"

    def celery_schedule(self):
        from celery.schedules import schedule

        if self.every is not None:
            return schedule(run_every=self.every)
        return parse_cron(self.cron)


def _fmt_seconds(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _check_queue(queue: Any) -> str:
    if not isinstance(queue, str):
        raise ValueError(f"queue must be a string, got {type(queue).__name__}")
    if queue in SHARED_QUEUES or re.fullmatch(r"host\.[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", queue):
        return queue
    raise ValueError(f"unknown queue {queue!r}; use one of {', '.join(SHARED_QUEUES)} or host.<hostname>")


def parse_beat(path: Path, known_tasks: Callable[[str], bool] | set[str],
               problems: list[str], task_params: Mapping[str, Mapping] | None = None) -> list[Job]:
    """Read beat.yaml; append ``FILE:LINE: problem`` lines to ``problems``; return the valid jobs.

    ``task_params`` (task name -> its declared parameters): kwargs are checked with the same rules
    the task applies when it runs, so a file that passes the check is runnable.
    """
    is_known = known_tasks if callable(known_tasks) else known_tasks.__contains__
    data = load_yaml(path, problems)
    if data is None:
        if not problems:
            problems.append(f"{path}:1: the file is empty; it needs a 'jobs:' mapping")
        return []
    if not isinstance(data, LineMap):
        problems.append(f"{path}:1: expected a mapping with a 'jobs:' key, got {type(data).__name__}")
        return []
    for key in data:
        if key != "jobs":
            problems.append(f"{path}:{data.lines[key]}: unknown key {key!r} (allowed: jobs)")
    jobs_map = data.get("jobs")
    if not isinstance(jobs_map, LineMap):
        if "jobs" in data and jobs_map is not None:
            problems.append(f"{path}:{data.lines['jobs']}: 'jobs' must be a mapping of job name to settings")
        elif "jobs" not in data:
            problems.append(f"{path}:{data.line}: missing 'jobs:' mapping")
        return []

    jobs = []
    for name, spec in jobs_map.items():
        line = jobs_map.lines[name]
        where = f"{path}:{line}"
        before = len(problems)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+", name):
            problems.append(f"{where}: job name {name!r} must look like area.verb (lower case)")
            continue
        if not isinstance(spec, LineMap):
            problems.append(f"{where}: job {name!r} must be a mapping (every: or cron:, ...), "
                            f"got {type(spec).__name__}")
            continue

        def at(key: str) -> str:
            return f"{path}:{spec.lines.get(key, line)}"

        for key in spec:
            if key not in JOB_KEYS:
                hint = difflib.get_close_matches(str(key), JOB_KEYS, n=1)
                problems.append(f"{at(key)}: unknown key {key!r} in job {name!r}"
                                + (f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(JOB_KEYS)})"))
        task = spec.get("task", name)
        if not isinstance(task, str):
            problems.append(f"{at('task')}: task must be a string, got {type(task).__name__}")
        elif not is_known(task):
            problems.append(f"{at('task') if 'task' in spec else where}: unknown task {task!r}")

        every = cron = expires = None
        if ("every" in spec) == ("cron" in spec):
            problems.append(f"{where}: job {name!r} needs exactly one of 'every' or 'cron'")
        elif "every" in spec:
            try:
                every = parse_duration(spec["every"])
                if every < MIN_EVERY_SECONDS:
                    raise ValueError(f"every must be at least {MIN_EVERY_SECONDS}s")
            except ValueError as exc:
                problems.append(f"{at('every')}: {exc}")
        else:
            try:
                parse_cron(spec["cron"])
                cron = " ".join(spec["cron"].split())
            except ValueError as exc:
                problems.append(f"{at('cron')}: {exc}")

        kwargs = spec.get("kwargs", {})
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            problems.append(f"{at('kwargs')}: kwargs must be a mapping of names to values")
            kwargs = {}
        else:
            import json

            try:
                size = len(json.dumps(kwargs, allow_nan=False, default=str))
            except ValueError:
                size = None
            if size is None:
                problems.append(f"{at('kwargs')}: kwargs must not hold NaN or infinity")
            elif size > MAX_KWARGS_BYTES:
                problems.append(f"{at('kwargs')}: kwargs are {size:,} bytes as JSON; at most {MAX_KWARGS_BYTES:,}")
            elif task_params is not None and isinstance(task, str) and task in task_params:
                from ..lib.errors import InputError
                from .params import check_params

                try:
                    check_params(task, task_params[task], (), dict(kwargs))
                except InputError as exc:
                    problems.append(f"{at('kwargs')}: {exc}")
        queue = spec.get("queue")
        if queue is not None:
            try:
                _check_queue(queue)
            except ValueError as exc:
                problems.append(f"{at('queue')}: {exc}")
        if "expires" in spec:
            try:
                expires = parse_duration(spec["expires"])
            except ValueError as exc:
                problems.append(f"{at('expires')}: {exc}")
        elif every is not None and every <= FREQUENT_SECONDS:
            # A backlog of stale samples is worse than a gap: drop what is not run in time.
            expires = every
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(f"{at('enabled')}: enabled must be true or false, got {enabled!r}")
        description = spec.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{at('description')}: description must be a string")
        if len(problems) == before:
            jobs.append(Job(name=name, task=task, every=every, cron=cron, kwargs=dict(kwargs),
                            queue=queue, expires=expires, enabled=enabled,
                            description=description, source=where))
    return jobs


def check_dir(directory: Path, known_tasks: Callable[[str], bool] | set[str],
              task_params: Mapping[str, Mapping] | None = None, deep: bool = True) -> list[str]:
    """Validate every YAML file in ``directory``; return the problems (empty when all is well).

    A file with no validator is reported, so typos do not go unseen. ``deep=False`` checks the
    structure of every file but leaves the proof that cache.yaml's SQL is a plain read to the
    worker (see specfile.FILE_CHECKERS)."""
    problems: list[str] = []
    if not directory.is_dir():
        return [f"{directory}:0: not a folder"]
    beat = directory / BEAT_FILE
    if not beat.is_file():
        problems.append(f"{beat}:0: missing; it declares what runs when")
    for path in sorted(directory.iterdir()):
        if path.suffix not in (".yaml", ".yml"):
            continue
        if path.name == BEAT_FILE:
            parse_beat(path, known_tasks, problems, task_params)
        elif path.name in FILE_CHECKERS:
            checker(path.name)(path, problems, deep)
        else:
            expected = ", ".join(sorted([BEAT_FILE, *FILE_CHECKERS]))
            problems.append(f"{path}:1: unknown schedule file (expected one of {expected})")
    return problems


def scheduled_jobs(settings) -> tuple[list[Job], list[str]]:
    """beat.yaml's jobs and its problems, read without the task registry: which tasks exist is
    for the worker, beat and ``schedules check`` to say (``status`` only reads the schedule)."""
    from ..lib.paths import schedules_dir

    problems: list[str] = []
    jobs = parse_beat(schedules_dir(settings) / BEAT_FILE, lambda _name: True, problems)
    return jobs, problems
