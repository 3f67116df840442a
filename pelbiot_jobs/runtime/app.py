"""The Celery app: broker, queues, routes, reliability settings, beat schedule from schedules/.

``app`` exists at import so tasks can register on it; ``configure(settings)`` points it at the
configured services. The command line configures it before starting a worker, beat or Flower;
``celery -A pelbiot_jobs`` (pelbiot_jobs/celery.py) configures it from the environment.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from celery import Celery, signals
from kombu import Exchange, Queue

from ..config import Settings, load_settings
from ..lib.paths import schedules_dir
from . import broker, ledger  # noqa: F401 (ledger: connects its publish and prerun signals)
from .heartbeats import REDBEAT_KEY_PREFIX
from .liveness import Liveness
from .schedule import BEAT_FILE, SHARED_QUEUES, Job, check_dir, parse_beat

#: Modules that define tasks, imported by ``load_tasks``.
#: Each task imports its service when it runs, so the processes that only need the registry
#: (beat, Flower) load neither SQLAlchemy nor the slices' dependencies.
TASK_MODULES = tuple(f"pelbiot_jobs.{area}.tasks" for area in (
    "tuning", "maintenance", "metrics", "cache", "health", "queries", "reports", "indexes"))
#: Time limits of a task that does not set its own (seconds): soft first, then the hard kill.
DEFAULT_SOFT_TIME_LIMIT = 240
DEFAULT_TIME_LIMIT = 300
#: Seconds between two sweeps for messages past the visibility timeout (interval x throttle).
#: The timeout itself (PELBIOT_VISIBILITY_TIMEOUT, 120 s) is short, so a killed worker's tasks come
#: back within minutes: live workers refresh the messages they hold (liveness.py), so a long task
#: is not handed out again while it runs.
RESTORE_INTERVAL, RESTORE_THROTTLE = 5, 2
#: Beat wakes at least this often (s) and extends RedBeat's lock at each wake-up; the lock expires
#: after LOCK_TIMEOUT without one, and a standby beat (which looks every BEAT_MAX_LOOP_INTERVAL)
#: takes over: a killed beat's successor sends within LOCK_TIMEOUT + BEAT_MAX_LOOP_INTERVAL (8 s).
BEAT_MAX_LOOP_INTERVAL = 2
REDBEAT_LOCK_TIMEOUT = 6
#: Task results (for Flower and ``run --wait``) are kept this long in the backend (s).
RESULT_EXPIRES = 24 * 3600

#: Tasks that change something outside pelbiot-jobs' own tables and files, and how. `up --once`
#: leaves them out unless told `--all`: a smoke test must not run DDL or send mail by surprise.
EXTERNAL_EFFECTS = {
    "indexes.reconcile": "index DDL on the app DB",
    "db.optimize": "ANALYZE TABLE on the app DB",
    "cache.warm": "writes the cache the PELBIOT API serves",
    "reports.export": "sends e-mail",
    "alerts.evaluate": "may send alert e-mail",
    "alerts.notify": "sends e-mail",
    "alerts.deliver": "sends chat and webhook notifications",
    "maintenance.retention": "deletes old records and report folders",
}
#: Which queue each area's tasks go to unless a beat.yaml job says otherwise. DDL and ANALYZE go
#: to `maintenance`, meant for a worker with concurrency 1; host-local work goes to `host.<name>`.
TASK_ROUTES = {
    "db.*": "maintenance",
    "indexes.*": "maintenance",
    "queries.*": "maintenance",
    "maintenance.*": "maintenance",
    "reports.*": "reports",
    "*": "sampling",
}

app = Celery("pelbiot_jobs", task_cls="pelbiot_jobs.runtime.task:PelbiotTask")
app.pelbiot_settings = None
app.steps["consumer"].add(Liveness)


#: What the worker's main process loads before it forks its pool (``share_with_the_pool``): the
#: services every pool process runs within minutes of starting and their common dependencies
#: (SQLAlchemy, PyMySQL, psutil, redis-py). Loaded once and shared copy-on-write, instead of once
#: per pool process. pandas and matplotlib are not here: the pool process that first builds a
#: report loads them.
POOL_SHARED = tuple(f"pelbiot_jobs.{area}.service" for area in (
    "tuning", "maintenance", "metrics", "cache", "health", "queries", "indexes")) + (
    "pelbiot_jobs.metrics.host", "pelbiot_jobs.metrics.mysql", "pelbiot_jobs.metrics.redis_info",
    "pelbiot_jobs.metrics.rollup", "pelbiot_jobs.metrics.request_sources", "pelbiot_jobs.health.engine",
    "pelbiot_jobs.cache.warm", "pelbiot_jobs.queries.analyze", "pymysql")


@signals.worker_init.connect
def share_with_the_pool(**_) -> None:
    """In the worker's main process, before the pool forks: load POOL_SHARED, then move every
    object to the garbage collector's permanent generation (gc.freeze), so that collections in
    the pool processes do not write to, and so copy, the pages they share with this one."""
    import gc

    for module in POOL_SHARED:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()


def load_tasks() -> None:
    """Import every task module so the registry is complete (and every schedule file's checker)."""
    for module in TASK_MODULES:
        importlib.import_module(module)
    importlib.import_module("pelbiot_jobs.runtime.recording")  # connects the recording signals


def task_names() -> set[str]:
    load_tasks()
    return {name for name in app.tasks if not name.startswith("celery.")}


def check_schedules(settings: Settings, directory: Path | None = None, deep: bool = True) -> list[str]:
    """Every problem of a schedule folder (default: the one in use), as ``FILE:LINE: message`` lines.

    ``deep=False`` (beat, ``up``) leaves the proof that cache.yaml's SQL is a plain read to the
    worker and ``schedules check``: those processes never load a SQL parser.
    """
    names = task_names()
    return check_dir(directory or schedules_dir(settings), names,
                     {n: getattr(app.tasks[n], "params", {}) for n in names}, deep=deep)


def load_jobs(settings: Settings, deep: bool = True) -> list[Job]:
    """The jobs of beat.yaml; raise ScheduleError listing every problem of the folder."""
    from ..lib.errors import ScheduleError

    problems = check_schedules(settings, deep=deep)
    if problems:
        raise ScheduleError(problems)
    return parse_beat(schedules_dir(settings) / BEAT_FILE, task_names(), [])


def beat_schedule(jobs: list[Job]) -> dict:
    schedule = {}
    for job in jobs:
        if not job.enabled:
            continue
        options = {}
        if job.queue:
            options["queue"] = job.queue
        schedule[job.name] = {"task": job.task, "schedule": job.celery_schedule(),
                              "kwargs": dict(job.kwargs), "options": options}
    return schedule


def _redbeat_connection(url: str) -> tuple[str, dict]:
    """RedBeat's URL without its password, and the password as an option.

    Celery hides settings whose names say PASS/KEY/SECRET, and masks broker_url and the backend,
    but not ``redbeat_redis_url``: a worker's configuration (Flower's worker page) would show the
    password in clear. As an option named ``password`` it is censored, and redis-py uses it.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url, {}
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{user}@" if user else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), {"password": unquote(parts.password)}


def job_expiries(jobs: list[Job]) -> dict[str, float]:
    """Seconds after its due time a job's message is dropped if it has not started (beat stamps it).

    Not Celery's ``expires``: Celery labels a redelivered message of a run that had started
    (its worker died) as expired; pelbiot-jobs runs it again (runs.PelbiotTask).
    """
    return {job.name: job.expires for job in jobs if job.enabled and job.expires}


def celery_config(settings: Settings) -> dict:
    """The Celery settings: one place for every reliability choice, with the reason."""
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": RESTORE_INTERVAL,
        "unacked_restore_throttle": RESTORE_THROTTLE,
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "health_check_interval": 25,
    }
    redis_broker = settings.broker_is_redis
    redbeat_url, redbeat_auth = _redbeat_connection(settings.coordination_redis_url)
    # RabbitMQ: quorum queues (replicated, a dead consumer's messages come back at once) behind
    # topic exchanges (Celery's native delayed delivery, which countdowns and retries need with
    # quorum queues, does not route through direct ones), and publisher confirms.
    exchange_type = "direct" if redis_broker else "topic"
    queue_arguments = None if redis_broker else {"x-queue-type": "quorum"}
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend_url,
        "broker_transport_options": transport if redis_broker else {"confirm_publish": True},
        "result_backend_transport_options": {"socket_timeout": 30, "health_check_interval": 25},
        "broker_connection_retry_on_startup": True,
        "timezone": "UTC",
        "enable_utc": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "result_expires": RESULT_EXPIRES,
        "result_extended": True,
        # Tasks are idempotent: ack after the work, so a killed worker's task runs again.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A long task does not hold a second message hostage on a busy worker.
        "worker_prefetch_multiplier": 1,
        # A task whose worker lost the broker goes on and acks after the reconnect; if its message
        # is handed out again meanwhile, the copy waits for the run lease (runs.PelbiotTask).
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_consumer": "pelbiot_jobs.runtime.broker:Consumer",
        "task_soft_time_limit": DEFAULT_SOFT_TIME_LIMIT,
        "task_time_limit": DEFAULT_TIME_LIMIT,
        "task_track_started": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "task_default_queue": "sampling",
        "task_routes": [{pattern: {"queue": queue} for pattern, queue in TASK_ROUTES.items()}],
        # One exchange per queue, bound by its own name: a message goes to one queue only.
        "task_queues": [Queue(q, Exchange(q, type=exchange_type), routing_key=q, queue_arguments=queue_arguments)
                        for q in (*SHARED_QUEUES, settings.host_queue)],
        "task_default_exchange_type": exchange_type,
        "task_default_queue_type": "classic" if redis_broker else "quorum",
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "beat_max_loop_interval": BEAT_MAX_LOOP_INTERVAL,
        "beat_scheduler": "pelbiot_jobs.runtime.beat:RedBeatScheduler" if redis_broker else "pelbiot_jobs.runtime.beat:FileScheduler",
        "beat_schedule_filename": str(settings.var_dir / "beat-schedule"),
        "redbeat_redis_url": redbeat_url,
        "redbeat_key_prefix": REDBEAT_KEY_PREFIX,
        "redbeat_lock_timeout": REDBEAT_LOCK_TIMEOUT,
        # Retries shorter than the lock: a beat cut off longer gives the lock up (beat.py).
        "redbeat_redis_options": {"socket_timeout": 10, "retry_period": 10, **redbeat_auth},
    }


def configure(settings: Settings | None = None, *, with_schedule: bool = False, deep: bool = True) -> Celery:
    """Point ``app`` at the configured services; with ``with_schedule``, load beat.yaml too
    (refusing a folder with problems; ``deep``: see ``check_schedules``)."""
    settings = settings or load_settings()
    broker.install()  # redis:// URLs use pelbiot-jobs' transport (the bad-message filter, the QoS) from here on
    load_tasks()
    previous = app.pelbiot_settings
    app.conf.update(celery_config(settings))
    app.pelbiot_settings = settings
    if previous is not None and (previous.broker_url, previous.result_backend_url) != (
            settings.broker_url, settings.result_backend_url):
        _drop_connections()
    if with_schedule:
        jobs = load_jobs(settings, deep=deep)
        app.conf.beat_schedule = beat_schedule(jobs)
        app.conf.pelbiot_job_expiries = job_expiries(jobs)
    return app


def _drop_connections() -> None:
    """Forget the connections and declarations made for the previous broker and result backend (a
    re-configuration in the same process, as the tests do): new ones are made for the new ones."""
    try:
        app.close()
    except Exception:
        pass
    app._pool = None
    app.__dict__.pop("amqp", None)  # its queues (exchange types differ between Redis and RabbitMQ) and producers
    app._backend_cache = None
    try:
        del app._local.backend
    except AttributeError:
        pass


app.pelbiot_configure = lambda: configure()  # what a task calls when the app was never configured
