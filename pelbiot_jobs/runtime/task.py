"""Job-run recording and the base class of every task.

Every run of every task lands in ``ops_job_runs`` through Celery signals, one mechanism for all
tasks: a row per task id and attempt, written when the run starts and when it ends, upserted so
a redelivered message updates its row instead of adding one.

The base class adds what Celery leaves to each task: retry with backoff for transient errors
only, ``exclusive`` tasks that record a second concurrent run as SKIPPED instead of running, and
the guards that make redelivery safe (docs/reliability.md):

- a run holds a lease on its task id (locks.py), renewed while it lives: a copy of the same
  message delivered while the first run is alive (a broker blip, a visibility timeout) waits
  and comes back later instead of running twice; a copy of a run that finished is dropped;
- a message's expiry (``pelbiot_expires_s``, from beat.yaml) drops a run that never started in
  time; a run that had started (its worker died) is run again, never labelled "expired";
- a row that cannot be written (the ops DB restarts) is spooled under var/ and written later;
  every write carries its event time, so a late write never overwrites a newer state.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

from celery import Task, signals
from celery.exceptions import Ignore, Retry

from ..lib import redis_clients
from ..lib.clock import utcnow
from ..lib.errors import MAX_TEXT, is_transient, one_line
from ..lib.outcome import is_skipped, skipped
from ..lib.redact import scrub
from . import keys, locks
from .params import check_params

log = logging.getLogger(__name__)

#: Retry backoff: base ** attempt seconds, capped, with jitter (see ``compute_backoff``).
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
#: Header names this project stamps on the messages it sends.
H_TRIGGER, H_JOB, H_SCHEDULED = "pelbiot_trigger", "pelbiot_job", "pelbiot_scheduled_at"
H_SENT, H_EXPIRES = "pelbiot_sent_at", "pelbiot_expires_s"
#: Keys of a task id's history: it started once (so it never "expires"), and how it ended.
STARTED_PREFIX, DONE_PREFIX = keys.STARTED, keys.DONE
#: How long a task id's history is kept: longer than any message may wait for a retry or redelivery.
HISTORY_TTL = 3 * 24 * 3600

def compute_backoff(attempt: int, *, base: float = BACKOFF_BASE_SECONDS,
                    maximum: float = BACKOFF_MAX_SECONDS, jitter: float = 0.0) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential, capped, plus jitter."""
    return min(maximum, base ** (attempt + 1)) + jitter


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


# --- who sent the message: stamped into headers at publish time ------------------------------

_publish_headers: contextvars.ContextVar[dict | None] = contextvars.ContextVar("pelbiot_publish", default=None)


@contextlib.contextmanager
def publishing(trigger: str, **extra: str):
    """Stamp every message sent inside the block with its trigger (beat, cli, once...)."""
    token = _publish_headers.set({H_TRIGGER: trigger, **{f"pelbiot_{k}": v for k, v in extra.items() if v}})
    try:
        yield
    finally:
        _publish_headers.reset(token)


@signals.before_task_publish.connect
def _stamp_headers(headers=None, **_):
    stamp = _publish_headers.get()
    if headers is not None:
        headers.setdefault(H_SENT, dt.datetime.now(dt.timezone.utc).isoformat())
        if stamp:
            headers.update(stamp)


def _header(request, name: str) -> Any:
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


# --- the base task ----------------------------------------------------------------------------

class PelbiotTask(Task):
    """Base of every pelbiot-jobs task."""

    #: True: at most one run at a time, cluster-wide; a second is recorded as SKIPPED.
    exclusive = False
    #: Parameters whose values are part of the exclusive lock's name: runs on different inputs
    #: (two slow logs) may run side by side, two on the same input may not.
    exclusive_by: tuple[str, ...] = ()
    #: The parameters this task accepts (name -> ``params.Param``), checked on every run whoever
    #: sent the message; a task that declares none accepts none.
    params: dict = {}
    max_retries = 5
    #: Retry backoff of this task (see ``compute_backoff``).
    backoff_base = BACKOFF_BASE_SECONDS
    backoff_max = BACKOFF_MAX_SECONDS

    @property
    def settings(self):
        """The settings this process was configured with (runtime.app.configure): what a task
        passes to the service it calls. Services never read a global. An app not configured yet
        (a worker started by ``celery -A``) configures itself from the environment first."""
        if self.app.pelbiot_settings is None:
            self.app.pelbiot_configure()
        return self.app.pelbiot_settings

    def __call__(self, *args, **kwargs):
        """A run through its guard, one step at a time (as dramatiq's middleware): its parameters,
        the done check, the expiry, the run lease, then the run itself under the exclusive lock,
        its leases kept alive, a transient failure retried."""
        # Whoever sent the message (beat, CLI, Flower, another client): a bad parameter fails
        # here, once, with one line, before any lock is taken or anything is touched.
        kwargs = check_params(self.name, self.params, args, kwargs)
        request = self.request
        if request.called_directly or request.is_eager:
            return super().__call__(**kwargs)
        run = _Run(self.app.pelbiot_settings, request, kwargs)
        self._drop_if_ended(run)
        expired = self._skip_if_expired(run)
        if expired is not None:
            return expired
        self._take_run_lease(run)
        return self._run_leased(run)

    def _drop_if_ended(self, run: _Run) -> None:
        """A copy of a message whose run already ended (its ack was lost): nothing to do, nothing
        to record; the first run's row stands."""
        if run.client.get(DONE_PREFIX + run.task_id) is not None:
            _forget(run.task_id, run.request)
            log.warning("task %s[%s] already ended; a redelivered copy is dropped", self.name, run.task_id)
            raise Ignore()

    def _skip_if_expired(self, run: _Run) -> dict | None:
        """A message past its expiry that never started: a backlog is dropped, not replayed."""
        expired = _expired(run.request)
        if expired and not run.client.exists(STARTED_PREFIX + run.task_id):
            run.client.set(DONE_PREFIX + run.task_id, "SKIPPED", ex=HISTORY_TTL)
            return skipped(f"expired: not started within {expired} (a backlog is dropped, not replayed)")
        return None

    def _take_run_lease(self, run: _Run) -> None:
        """The run lease: one live run per message. A holder that died on this host is taken over;
        one alive elsewhere sends this copy back for when its lease may have lapsed (then the copy
        finds it ended, or runs it because its holder died), as the same attempt, so the job-run
        row stays one row."""
        taken, holder = locks.acquire(run.client, run.task_id, run.token, prefix=locks.RUN_PREFIX)
        if not taken and locks.dead_on_this_host(holder, _HOST):
            taken = locks.take_over(run.client, run.task_id, run.token, holder, prefix=locks.RUN_PREFIX)
        if taken:
            run.leases.append((locks.RUN_PREFIX, run.task_id, run.token))
            return
        request = run.request
        _forget(run.task_id, request)
        log.warning("task %s[%s] is running (%s); this copy comes back in %ss", self.name, run.task_id, holder,
                    locks.LEASE_TTL)
        queue = (request.delivery_info or {}).get("routing_key")
        self.apply_async(args=(), kwargs=run.kwargs, countdown=locks.LEASE_TTL,
                         **{**request.as_execution_options(), "retries": request.retries or 0},
                         **({"queue": queue} if queue else {}))
        raise Ignore()

    def _take_exclusive_lock(self, run: _Run) -> dict | None:
        """An exclusive task's lock; skipped while another run holds it. Its token is the task id:
        a run of the same message after its first run died (its run lease lapsed) takes over the
        dead run's lock at once."""
        if not self.exclusive:
            return None
        lock_name = exclusive_name(self.name, self.exclusive_by, run.kwargs)
        held, other = locks.acquire(run.client, lock_name, run.task_id)
        if not held:
            return skipped(f"another {self.name} run is in progress (task {other})")
        run.leases.append((locks.KEY_PREFIX, lock_name, run.task_id))
        return None

    def _run_leased(self, run: _Run):
        """Record the start, take the exclusive lock, run with every lease kept alive; a transient
        failure is retried with backoff; the end is recorded and the leases given back whatever
        happens (``final``: the run will not come back)."""
        final = False
        try:
            run.client.set(STARTED_PREFIX + run.task_id, run.token, ex=HISTORY_TTL)
            _record_start(self, run.task_id, run.request)
            busy = self._take_exclusive_lock(run)
            if busy is not None:
                final = True
                return busy
            keeper = locks.Keeper(run.client, run.leases).start()
            try:
                result = super().__call__(**run.kwargs)
            finally:
                keeper.stop()
            final = True
            return result
        except Retry:
            raise
        except Exception as exc:
            if is_transient(exc):
                countdown = compute_backoff(run.request.retries or 0, base=self.backoff_base,
                                            maximum=self.backoff_max)
                raise self.retry(exc=exc, countdown=countdown)
            final = True
            raise
        finally:
            _end_run(run.client, run.settings, run.task_id, run.leases, final)


class _Run:
    """One run as its guard sees it: the message, its parameters, this run's token and leases."""

    __slots__ = ("settings", "request", "kwargs", "client", "task_id", "token", "leases")

    def __init__(self, settings, request, kwargs: dict):
        self.settings, self.request, self.kwargs = settings, request, kwargs
        self.client = redis_clients.coordination(settings)
        self.task_id = request.id
        self.token = locks.run_token(_HOST)
        self.leases: list[tuple[str, str, str]] = []


def exclusive_name(task: str, by: tuple[str, ...], kwargs: dict) -> str:
    """The exclusive lock of a run: the task's name, and a digest of the ``by`` parameters' values."""
    if not by:
        return task
    import hashlib

    values = json.dumps([kwargs.get(name) for name in by], default=str)
    return f"{task}:{hashlib.sha256(values.encode()).hexdigest()[:16]}"


def _expired(request) -> str | None:
    """``"15s"`` when the message carries an expiry that has passed, else None."""
    seconds = _header(request, H_EXPIRES)
    base = _parse_time(_header(request, H_SCHEDULED)) or _parse_time(_header(request, H_SENT))
    try:
        seconds = float(seconds) if seconds is not None else None
    except ValueError:
        return None
    if not seconds or base is None:
        return None
    return f"{seconds:g}s" if utcnow() > base + dt.timedelta(seconds=seconds) else None


def _end_run(client, settings, task_id: str, leases: list, final: bool) -> None:
    """Mark a run that ended for good, then free its leases (best effort: they lapse by themselves)."""
    try:
        if final:
            client.set(DONE_PREFIX + task_id, "ended", ex=HISTORY_TTL)
        for prefix, name, token in reversed(leases):
            locks.release(client, name, token, prefix=prefix)
    except Exception as exc:
        log.warning("could not free the leases of task %s: %s", task_id, one_line(exc, settings.secrets()))


# --- recording --------------------------------------------------------------------------------

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
        with _ops(settings).begin() as conn:
            for row, update in items:
                upsert_run(conn, row, update)
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
            row = {k: (_parse_time(v) if k in _DATE_COLUMNS else v) for k, v in item["row"].items()}
            items.append((row, tuple(item["update"]) if item.get("update") else None))
        try:
            with _ops(settings).begin() as conn:
                for row, update in items:
                    upsert_run(conn, row, update)
        except Exception:
            _spool(path, items)
            taken.unlink()
            raise
        taken.unlink()
        written += len(items)
    return written


def _forget(task_id: str, request) -> None:
    """Drop what prerun prepared for a copy that does not run (its row is not ours to write)."""
    with _guard:
        _inflight.pop((task_id, request.retries or 0), None)
        _errors.pop((task_id, request.retries or 0), None)


def _record_start(task, task_id: str, request) -> None:
    with _guard:
        row = _inflight.get((task_id, request.retries or 0))
    if row is not None:
        _write(task, dict(row))


def _args_text(args, kwargs, secrets) -> str | None:
    if not args and not kwargs:
        return None
    text = json.dumps({"args": list(args or ()), "kwargs": dict(kwargs or {})}, default=str, sort_keys=True)
    return scrub(text, secrets)[:MAX_TEXT]


def scheduled_header(request) -> str | None:
    """When beat meant a run to happen (its due time, as sent), or None for a run sent by hand."""
    return _header(request, H_SCHEDULED)


def scheduled_at(request) -> dt.datetime | None:
    """``scheduled_header`` as a naive UTC time."""
    return _parse_time(_header(request, H_SCHEDULED))


def _parse_time(value) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


@signals.task_prerun.connect
def _on_prerun(task_id=None, task=None, args=None, kwargs=None, **_):
    settings = _settings_of(task)
    if settings is None:
        return
    request = task.request
    attempt = request.retries or 0
    delivery = request.delivery_info or {}
    row = {
        "task_id": task_id,
        "attempt": attempt,
        "task": task.name,
        "job": _header(request, H_JOB),
        "trigger": "local" if request.is_eager else (_header(request, H_TRIGGER) or "manual"),
        "args": _args_text(args, kwargs, settings.secrets()),
        "queue": delivery.get("routing_key"),
        "scheduled_at": _parse_time(_header(request, H_SCHEDULED)),
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
        _errors[(request.id, request.retries or 0)] = one_line(cause, settings.secrets())


@signals.task_failure.connect
def _on_failure(task_id=None, exception=None, sender=None, **_):
    settings = _settings_of(sender)
    if settings is None:
        return
    attempt = (sender.request.retries or 0) if sender.request.id == task_id else 0
    error = one_line(exception, settings.secrets())
    with _guard:
        known = (task_id, attempt) in _inflight
        if known:
            _errors[(task_id, attempt)] = error
    if not known:
        # Failures seen by the parent process only (hard time limit, worker lost): no postrun follows.
        # Update only what the parent knows; the child's row keeps its trigger, start and args.
        _write(sender, {"task_id": task_id, "attempt": attempt, "task": sender.name,
                        "trigger": "manual", "state": "FAILURE", "error": error,
                        "finished_at": utcnow(), "host": _HOST},
               update=("state", "error", "finished_at"))


@signals.task_postrun.connect
def _on_postrun(task_id=None, task=None, retval=None, state=None, **_):
    settings = _settings_of(task)
    if settings is None:
        return
    attempt = task.request.retries or 0
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
    row = {"task_id": request.id, "attempt": getattr(request, "retries", 0) or 0, "task": sender.name,
           "job": _header(request, H_JOB), "trigger": _header(request, H_TRIGGER) or "manual",
           "scheduled_at": _parse_time(_header(request, H_SCHEDULED)),
           "state": state, "finished_at": now, "host": _HOST}
    row["result" if state == "SKIPPED" else "error"] = text
    _write(sender, row)
