"""Job-run recording and the base class of every task.

Every run of every task lands in ``ops_job_runs`` through Celery signals, one mechanism for all
tasks: a row per task id and attempt, written when the run starts and when it ends, upserted so
a redelivered message updates its row instead of adding one.

The base class adds what Celery leaves to each task: retry with backoff for transient errors
only, and ``exclusive`` tasks that record a second concurrent run as SKIPPED instead of running.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import socket
import threading
from typing import Any

from celery import Task, signals

from . import locks
from .config import scrub
from .db.engine import engine_for
from .db.ops_models import job_runs
from .db.upsert import upsert
from .errors import is_transient
from .params import check_params

log = logging.getLogger(__name__)

#: Longest error and result text kept in a job run.
MAX_TEXT = 1000
#: Retry backoff: base ** attempt seconds, capped, with jitter (see ``compute_backoff``).
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
#: Seconds a task's lock outlives its hard time limit, for a worker killed while holding it.
LOCK_MARGIN_SECONDS = 60
#: Header names this project stamps on the messages it sends.
H_TRIGGER, H_JOB, H_SCHEDULED = "pelbiot_trigger", "pelbiot_job", "pelbiot_scheduled_at"

SKIPPED_KEY = "skipped"


def skipped(reason: str) -> dict:
    """The return value of a run that chose not to do its work; recorded as SKIPPED."""
    return {SKIPPED_KEY: True, "reason": reason}


def is_skipped(retval: Any) -> bool:
    return isinstance(retval, dict) and retval.get(SKIPPED_KEY) is True


def compute_backoff(attempt: int, *, base: float = BACKOFF_BASE_SECONDS,
                    maximum: float = BACKOFF_MAX_SECONDS, jitter: float = 0.0) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential, capped, plus jitter."""
    return min(maximum, base ** (attempt + 1)) + jitter


def one_line(exc: BaseException, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``Type: message`` on one line, scrubbed of secrets, at most MAX_TEXT characters."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return scrub(text, secrets)[:MAX_TEXT]


def summarize(retval: Any, secrets: list[str] | tuple[str, ...] = ()) -> str | None:
    """A short, scrubbed text of a task's return value."""
    if retval is None:
        return None
    text = retval if isinstance(retval, str) else json.dumps(retval, default=str, sort_keys=True)
    return scrub(text, secrets)[:MAX_TEXT]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# --- who sent the message: stamped into headers at publish time ------------------------------

_publish_headers: contextvars.ContextVar[dict | None] = contextvars.ContextVar("pelbiot_publish", default=None)


@contextlib.contextmanager
def publishing(trigger: str, **extra: str):
    """Stamp every message sent inside the block with its trigger (beat, cli, once...)."""
    token = _publish_headers.set({H_TRIGGER: trigger, **{f"pelbiot_{k}": v for k, v in extra.items()}})
    try:
        yield
    finally:
        _publish_headers.reset(token)


@signals.before_task_publish.connect
def _stamp_headers(headers=None, **_):
    stamp = _publish_headers.get()
    if stamp and headers is not None:
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
    #: The parameters this task accepts (name -> ``params.Param``), checked on every run whoever
    #: sent the message; a task that declares none accepts none.
    params: dict = {}
    max_retries = 5
    #: Retry backoff of this task (see ``compute_backoff``).
    backoff_base = BACKOFF_BASE_SECONDS
    backoff_max = BACKOFF_MAX_SECONDS

    def __call__(self, *args, **kwargs):
        # Whoever sent the message (beat, CLI, Flower, another client): a bad parameter fails
        # here, once, with one line, before any lock is taken or anything is touched.
        kwargs = check_params(self.name, self.params, args, kwargs)
        args = ()
        settings = self.app.pelbiot_settings
        token = self.request.id or "local"
        lock_name = self.name
        held = False
        if self.exclusive:
            ttl = int(self.time_limit or self.app.conf.task_time_limit or 3600) + LOCK_MARGIN_SECONDS
            client = coordination_redis(settings)
            held, holder = locks.acquire(client, lock_name, token, ttl)
            if not held:
                return skipped(f"another {self.name} run is in progress (task {holder})")
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if is_transient(exc) and not self.request.called_directly:
                countdown = compute_backoff(self.request.retries or 0, base=self.backoff_base,
                                            maximum=self.backoff_max)
                raise self.retry(exc=exc, countdown=countdown)
            raise
        finally:
            if held:
                try:
                    locks.release(coordination_redis(settings), lock_name, token)
                except Exception as exc:  # the lock expires by itself
                    log.warning("could not release lock %s: %s", lock_name, one_line(exc, settings.secrets()))


_redis_clients: dict[str, Any] = {}


def coordination_redis(settings):
    """The Redis client for locks (the broker's Redis when it is one), per process."""
    import os

    import redis

    key = f"{os.getpid()}:{settings.coordination_redis_url}"
    client = _redis_clients.get(key)
    if client is None:
        client = _redis_clients[key] = redis.Redis.from_url(
            settings.coordination_redis_url, socket_timeout=10, socket_connect_timeout=5,
            health_check_interval=30)
    return client


# --- recording --------------------------------------------------------------------------------

_inflight: dict[tuple[str, int], dict] = {}
_errors: dict[tuple[str, int], str] = {}
_guard = threading.Lock()
_HOST = socket.gethostname()


def _settings_of(task):
    return getattr(task.app, "pelbiot_settings", None)


def _write(task, row: dict, update: tuple[str, ...] | None = None) -> None:
    """Upsert one job-run row; a failure to record never fails the task itself."""
    settings = _settings_of(task)
    if settings is None:
        return
    try:
        with engine_for(settings.ops_db_url).begin() as conn:
            upsert(conn, job_runs, [row], key=("task_id", "attempt"), update=update)
    except Exception as exc:
        log.error("could not record job run %s[%s]: %s", row.get("task"), row.get("task_id"),
                  one_line(exc, settings.secrets()))


def _args_text(args, kwargs, secrets) -> str | None:
    if not args and not kwargs:
        return None
    text = json.dumps({"args": list(args or ()), "kwargs": dict(kwargs or {})}, default=str, sort_keys=True)
    return scrub(text, secrets)[:MAX_TEXT]


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
        _inflight[(task_id, attempt)] = row
    _write(task, row)


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
