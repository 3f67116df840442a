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

import datetime as dt
import json
import logging

from celery import Task
from celery.exceptions import Ignore, Retry

from ..lib import redis_clients
from ..lib.clock import utcnow
from ..lib.errors import is_transient, one_line
from ..lib.outcome import skipped
from . import keys, locks
from .headers import H_EXPIRES, H_SCHEDULED, H_SENT, header, parse_time
from .params import check_params
from .recording import _HOST, _forget, _record_start, ended_in_ops_db

log = logging.getLogger(__name__)


#: Retry backoff: base ** attempt seconds, capped, with jitter (see ``compute_backoff``).
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
#: Keys of a task id's history: it started once (so it never "expires"), and how it ended.
STARTED_PREFIX, DONE_PREFIX = keys.STARTED, keys.DONE
#: How long a task id's history is kept: longer than any message may wait for a retry or redelivery.
HISTORY_TTL = 3 * 24 * 3600


def compute_backoff(attempt: int, *, base: float = BACKOFF_BASE_SECONDS,
                    maximum: float = BACKOFF_MAX_SECONDS, jitter: float = 0.0) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential, capped, plus jitter."""
    return min(maximum, base ** (attempt + 1)) + jitter


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
        to record; the first run's row stands. The done mark lives in Redis; when Redis was down
        as the run ended (no mark, and no ack either: the message comes back), the ops DB's row
        of this attempt, SUCCESS or SKIPPED, says it all the same."""
        if run.client.get(DONE_PREFIX + run.task_id) is not None or \
                (_a_copy(run.request) and ended_in_ops_db(run.settings, run.task_id, run.request)):
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


def _a_copy(request) -> bool:
    """A message the broker handed out again (restored after the visibility timeout, redelivered
    by RabbitMQ) or the ledger sent again: only such a copy may find its run ended already."""
    info = request.delivery_info or {}
    return bool(info.get("redelivered") or header(request, "redelivered") or header(request, "pelbiot_resent"))


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
    seconds = header(request, H_EXPIRES)
    base = parse_time(header(request, H_SCHEDULED)) or parse_time(header(request, H_SENT))
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
