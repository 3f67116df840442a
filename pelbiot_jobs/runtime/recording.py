"""The recording of every run: a job-run row per attempt, written from the task signals (started,
retried, failed, ended, revoked), spooled to ``var/job-runs-spool/`` while the ops DB does not
answer and written later (``flush_spool``), never failing the task itself."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

from celery import signals

from ..lib.clock import utcnow
from ..lib.errors import MAX_TEXT, one_line
from ..lib.outcome import is_skipped
from ..lib.redact import scrub
from .headers import job_of, parse_time, plain_name, run_id, scheduled_of, trigger_of
from .keys import REJECTED_RUNS

log = logging.getLogger(__name__)


def summarize(retval: Any, secrets: list[str] | tuple[str, ...] = ()) -> str | None:
    """A short, scrubbed text of a task's return value."""
    if retval is None:
        return None
    text = retval if isinstance(retval, str) else json.dumps(retval, default=str, sort_keys=True)
    if len(text) > MAX_TEXT and isinstance(retval, dict):
        text = _compact(retval)  # whole keys and values, never cut in the middle of one
    return scrub(text, secrets)[:MAX_TEXT]


def _compact(value: dict) -> str:
    """A dict's summary within MAX_TEXT: its keys in order with scalar values, a list or dict
    shown by its size, long strings shortened; the keys that do not fit are counted, not cut."""
    parts: list[str] = []
    used = 2
    for i, (key, item) in enumerate(value.items()):  # in the order the task put them
        if isinstance(item, (list, tuple)):
            shown = f'"[{len(item)} items]"'
        elif isinstance(item, dict):
            shown = f'"{{{len(item)} keys}}"'
        else:
            shown = json.dumps(item if not isinstance(item, str) or len(item) <= 80 else item[:77] + "...",
                               default=str)
        part = f"{json.dumps(str(key))}: {shown}"
        rest = f', "...": "{len(value) - i} more keys"'
        if used + len(part) + 2 + len(rest) > MAX_TEXT:
            parts.append(rest[2:])
            break
        parts.append(part)
        used += len(part) + 2
    return "{" + ", ".join(parts) + "}"


#: The longest arguments text recorded (scrubbed, then cut to MAX_TEXT); longer is only sized.
MAX_ARGS_SCRUBBED = 16 * 1024

_inflight: dict[tuple[str, int], dict] = {}
_errors: dict[tuple[str, int], str] = {}
_guard = threading.Lock()
_HOST = socket.gethostname()


def _settings_of(task):
    return getattr(task.app, "pelbiot_settings", None)


def _write(task, row: dict, update: tuple[str, ...] | None = None) -> None:
    """Upsert one job-run row; when the ops DB does not answer, spool it to be written later.

    A failure to record never fails the task itself, and is never only logged: the row waits in
    ``var/job-runs-spool/`` and is written by the next write of this process or by the worker's
    periodic flush (``flush_spool``).
    """
    settings = _settings_of(task)
    if settings is None:
        return
    write_runs(settings, [(row, update)])


def _ops(settings):
    """The ops DB engine; SQLAlchemy loads in the processes that record runs (workers), not in those
    that only need the task classes (beat, Flower)."""
    from ..db.engine import engine_for

    return engine_for(settings.ops_db_url)


def write_runs(settings, items: list[tuple[dict, tuple[str, ...] | None]]) -> bool:
    """Write rows (spooled ones of this process first); spool what cannot be written. True: all written."""
    spool = _spool_file(settings, os.getpid())
    try:
        flush_spool(settings, only=spool)
        _write_or_set_aside(settings, items)
        return True
    except Exception as exc:
        log.error("could not record job run %s (spooled to %s, written when the ops DB answers): %s",
                  ", ".join(f"{r.get('task')}[{r.get('task_id')}]" for r, _ in items), spool.parent,
                  one_line(exc, settings.secrets()))
        _spool(spool, items)
        return False


def upsert_run(conn, row: dict, update: tuple[str, ...] | None = None) -> None:
    """Insert a job-run row or update it, unless the stored row is newer than this event.

    The event time is when the row says it finished, else when it started. A row written late
    (spooled during an outage, or the child's start written after the parent recorded the worker's
    death) never overwrites a later state; a new attempt's start after a recorded death does.
    """
    from sqlalchemy import func, literal

    from ..db.ops_models import job_runs

    columns = list(update) if update is not None else [c for c in row if c not in ("task_id", "attempt")]
    # finished_at and started_at last: MySQL applies the assignments in order, and the condition reads them.
    columns.sort(key=lambda c: {"started_at": 1, "finished_at": 2}.get(c, 0))
    event = row.get("finished_at") or row.get("started_at")
    c = job_runs.c
    stored_event = func.coalesce(c.finished_at, c.started_at)
    newer = (literal(event, job_runs.c.finished_at.type) >= stored_event) | stored_event.is_(None)
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert

        stmt = insert(job_runs).values(row)
        values = {col: func.if_(newer, stmt.inserted[col], c[col]) for col in columns}
        stmt = stmt.on_duplicate_key_update(**values) if values else stmt.prefix_with("IGNORE")
    else:
        from sqlalchemy import case
        from sqlalchemy.dialects.sqlite import insert

        stmt = insert(job_runs).values(row)
        values = {col: case((newer, stmt.excluded[col]), else_=c[col]) for col in columns}
        stmt = stmt.on_conflict_do_update(index_elements=["task_id", "attempt"], set_=values) if values \
            else stmt.on_conflict_do_nothing(index_elements=["task_id", "attempt"])
    conn.execute(stmt)


SPOOL_DIR = "job-runs-spool"
#: Rows the ops DB refuses while it answers (a value it cannot hold): kept here, never retried, so
#: that they never block the rows behind them; counted in Redis (keys.REJECTED_RUNS) for `status`.
REJECTED_DIR = "job-runs-rejected"


def _write_or_set_aside(settings, items) -> int:
    """Write the rows in one transaction; when the ops DB answers but refuses it, write them one by
    one and set aside each row it refuses. The rows written; raises when the ops DB does not
    answer (the caller spools them)."""
    engine = _ops(settings)
    try:
        with engine.begin() as conn:
            for row, update in items:
                upsert_run(conn, row, update)
        return len(items)
    except Exception as exc:
        if not _refused(engine, exc):
            raise
    written = 0
    for row, update in items:  # rows already written are written again harmlessly (an upsert of the same event)
        try:
            with engine.begin() as conn:
                upsert_run(conn, row, update)
            written += 1
        except Exception as exc:
            if not _refused(engine, exc):
                raise
            _set_aside(settings, row, update, exc)
    return written


def _refused(engine, exc: BaseException) -> bool:
    """True when the ops DB answers and the failure is the rows' own (too long, out of range, a
    value it cannot bind), not the connection's, a lock's or a deadlock's."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import text

    from ..lib.errors import TRANSIENT_MYSQL_CODES

    if not isinstance(exc, sa_exc.StatementError) or getattr(exc, "connection_invalidated", False):
        return False
    orig = getattr(exc, "orig", None)
    code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
    if code in TRANSIENT_MYSQL_CODES or (code is None and isinstance(exc, sa_exc.OperationalError)):
        return False  # SQLite's "database is locked" and the like have no code: they pass
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def _set_aside(settings, row: dict, update, exc: BaseException) -> None:
    error = one_line(exc, settings.secrets())
    path = Path(settings.var_dir) / REJECTED_DIR / f"{_HOST}-{os.getpid()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"at": utcnow().isoformat(), "error": error, "update": update,
              "row": {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
    log.error("the ops DB refuses the job-run row of %s[%.64s] (kept in %s, not retried): %s",
              row.get("task"), row.get("task_id"), path, error)
    try:
        from ..lib import redis_clients

        redis_clients.coordination(settings).incr(REJECTED_RUNS)
    except Exception:
        pass  # the file keeps it; the count is only what `status` shows


def rejected_count(client) -> int:
    """How many job-run rows the ops DB refused, on every worker (`status`)."""
    return int(client.get(REJECTED_RUNS) or 0)


def _spool_file(settings, pid: int) -> Path:
    return Path(settings.var_dir) / SPOOL_DIR / f"{_HOST}-{pid}.jsonl"


def _spool(path: Path, items) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"row": {k: v.isoformat() if isinstance(v, dt.datetime) else v
                                        for k, v in row.items()}, "update": update}) + "\n"
                    for row, update in items)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(lines)
        fh.flush()
        os.fsync(fh.fileno())


_DATE_COLUMNS = ("scheduled_at", "started_at", "finished_at")


def flush_spool(settings, only: Path | None = None) -> int:
    """Write spooled rows (this process's file, or every file of this host); return the rows written.

    A file is taken by renaming it, so two flushers never write it twice; rows that still cannot
    be written go back to the spool. Raises when the ops DB does not answer.
    """
    folder = Path(settings.var_dir) / SPOOL_DIR
    files = [only] if only is not None else sorted(folder.glob(f"{_HOST}-*.jsonl")) if folder.is_dir() else []
    written = 0
    for path in files:
        if not path.exists():
            continue
        taken = path.with_suffix(f".flushing-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        try:
            os.rename(path, taken)
        except FileNotFoundError:
            continue
        items = []
        for line in taken.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash mid-write: its row is rewritten by the run's next event
            row = {k: (parse_time(v) if k in _DATE_COLUMNS else v) for k, v in item["row"].items()}
            items.append((row, tuple(item["update"]) if item.get("update") else None))
        try:
            written += _write_or_set_aside(settings, items)
        except Exception:
            _spool(path, items)
            taken.unlink()
            raise
        taken.unlink()
    return written


def _attempt(request) -> int:
    """The attempt a run is recorded as: Celery's retry count, bounded to what the column holds."""
    value = getattr(request, "retries", 0)
    return min(max(value, 0), 2**31 - 1) if isinstance(value, int) else 0


def ended_in_ops_db(settings, task_id: str, request) -> bool:
    """Whether the ops DB records this attempt of the run as ended well (SUCCESS or SKIPPED). A
    FAILURE does not count: a worker lost mid-run is recorded so by its parent, and runs again.
    False when the ops DB does not answer (the run goes on, as it did before this check)."""
    from sqlalchemy import select

    from ..db.ops_models import job_runs

    c = job_runs.c
    try:
        with _ops(settings).connect() as conn:
            return conn.execute(select(c.id).where(c.task_id == run_id(task_id), c.attempt == _attempt(request),
                                                   c.state.in_(("SUCCESS", "SKIPPED")))).first() is not None
    except Exception:
        return False


def _forget(task_id: str, request) -> None:
    """Drop what prerun prepared for a copy that does not run (its row is not ours to write)."""
    with _guard:
        _inflight.pop((task_id, _attempt(request)), None)
        _errors.pop((task_id, _attempt(request)), None)


def _record_start(task, task_id: str, request) -> None:
    with _guard:
        row = _inflight.get((task_id, _attempt(request)))
    if row is not None:
        _write(task, dict(row))


def _args_text(args, kwargs, secrets) -> str | None:
    if not args and not kwargs:
        return None
    text = json.dumps({"args": list(args or ()), "kwargs": dict(kwargs or {})}, default=str, sort_keys=True)
    if len(text) > MAX_ARGS_SCRUBBED:  # sized before anything reads it: no task takes arguments this long
        return f"[{len(text)} characters of arguments, not recorded]"
    return scrub(text, secrets)[:MAX_TEXT]


@signals.task_prerun.connect
def _on_prerun(task_id=None, task=None, args=None, kwargs=None, **_):
    settings = _settings_of(task)
    if settings is None:
        return
    request = task.request
    attempt = _attempt(request)
    delivery = request.delivery_info or {}
    row = {  # what comes from the message is bounded: a row that cannot be written must not exist
        "task_id": run_id(task_id),
        "attempt": attempt,
        "task": task.name,
        "job": job_of(request),
        "trigger": "local" if request.is_eager else trigger_of(request),
        "args": _args_text(args, kwargs, settings.secrets()),
        "queue": plain_name(delivery.get("routing_key")),
        "scheduled_at": scheduled_of(request),
        "started_at": utcnow(),
        "finished_at": None,
        "state": "STARTED",
        "duration_s": None,
        "error": None,
        "result": None,
        "host": _HOST,
        "worker": request.hostname or _HOST,
    }
    with _guard:
        _inflight[(task_id, attempt)] = row  # written by the task once it is sure to run (PelbiotTask)


@signals.task_retry.connect
def _on_retry(request=None, reason=None, sender=None, **_):
    settings = _settings_of(sender)
    if settings is None or request is None:
        return
    with _guard:
        # `reason` is Celery's Retry wrapper; the operator wants the error that caused it.
        cause = getattr(reason, "exc", None) or reason
        _errors[(request.id, _attempt(request))] = one_line(cause, settings.secrets())


@signals.task_failure.connect
def _on_failure(task_id=None, exception=None, sender=None, **_):
    settings = _settings_of(sender)
    if settings is None:
        return
    attempt = _attempt(sender.request) if sender.request.id == task_id else 0
    error = one_line(exception, settings.secrets())
    with _guard:
        known = (task_id, attempt) in _inflight
        if known:
            _errors[(task_id, attempt)] = error
    if not known:
        # Failures seen by the parent process only (hard time limit, worker lost): no postrun follows.
        # Update only what the parent knows; the child's row keeps its trigger, start and args.
        _write(sender, {"task_id": run_id(task_id), "attempt": attempt, "task": sender.name,
                        "trigger": "manual", "state": "FAILURE", "error": error,
                        "finished_at": utcnow(), "host": _HOST},
               update=("state", "error", "finished_at"))


@signals.task_postrun.connect
def _on_postrun(task_id=None, task=None, retval=None, state=None, **_):
    settings = _settings_of(task)
    if settings is None:
        return
    attempt = _attempt(task.request)
    with _guard:
        row = _inflight.pop((task_id, attempt), None)
        error = _errors.pop((task_id, attempt), None)
    if row is None:
        return
    finished = utcnow()
    row["finished_at"] = finished
    row["duration_s"] = (finished - row["started_at"]).total_seconds()
    if state == "SUCCESS" and is_skipped(retval):
        row["state"] = "SKIPPED"
        row["result"] = scrub(str(retval.get("reason", "")), settings.secrets())[:MAX_TEXT]
    else:
        row["state"] = state or "FAILURE"
        if state == "SUCCESS":
            row["result"] = summarize(retval, settings.secrets())
        else:
            row["error"] = error or (one_line(retval, settings.secrets())
                                     if isinstance(retval, BaseException) else None)
    _write(task, row)


@signals.task_revoked.connect
def _on_revoked(request=None, terminated=None, expired=None, sender=None, **_):
    settings = _settings_of(sender)
    if settings is None or request is None:
        return
    now = utcnow()
    if expired:
        state, text = "SKIPPED", "expired: not started before its expiry (a backlog is dropped, not replayed)"
    else:
        state, text = "FAILURE", "revoked" + (" and terminated" if terminated else "")
    row = {"task_id": run_id(request.id), "attempt": _attempt(request), "task": sender.name,
           "job": job_of(request), "trigger": trigger_of(request),
           "scheduled_at": scheduled_of(request),
           "state": state, "finished_at": now, "host": _HOST}
    row["result" if state == "SKIPPED" else "error"] = text
    _write(sender, row)
