"""Which hosts have a worker on their host queue: a Redis hash of host -> last seen.

Each worker that consumes its host queue writes its host name when it is ready and with its
heartbeats (at most every REGISTER_EVERY seconds). The dispatcher sends host-local tasks to
the hosts seen recently: a host that is down gets no task, and shows as a gap.
"""

from __future__ import annotations

import time

from celery import signals

KEY = "pelbiot:hosts"
#: Seconds between two registrations of the same worker.
REGISTER_EVERY = 10.0
#: A host not seen for this long (s) is considered down.
HOST_TIMEOUT = 45.0

_state = {"consumes_host_queue": False, "last": 0.0}


def register(client, hostname: str, now: float | None = None) -> None:
    client.hset(KEY, hostname, f"{now if now is not None else time.time():.3f}")


def live_hosts(client, now: float | None = None, timeout: float = HOST_TIMEOUT) -> list[str]:
    now = now if now is not None else time.time()
    seen = client.hgetall(KEY)
    alive = []
    for host, when in seen.items():
        host = host.decode() if isinstance(host, bytes) else host
        if now - float(when) <= timeout:
            alive.append(host)
    return sorted(alive)


def _register_now() -> None:
    from ..celery_app import app
    from ..runs import coordination_redis

    settings = app.pelbiot_settings
    if settings is None:
        return
    try:
        register(coordination_redis(settings), settings.hostname)
        _state["last"] = time.time()
    except Exception:  # the broker is down: the worker reconnects, we register with the next beat
        pass


@signals.worker_ready.connect
def _on_worker_ready(sender=None, **_):
    from ..celery_app import app

    settings = app.pelbiot_settings
    queues = set()
    try:
        queues = {q.name for q in sender.task_consumer.queues}
    except Exception:
        pass
    _state["consumes_host_queue"] = settings is not None and settings.host_queue in queues
    if _state["consumes_host_queue"]:
        _register_now()


@signals.heartbeat_sent.connect
def _on_heartbeat(**_):
    if _state["consumes_host_queue"] and time.time() - _state["last"] >= REGISTER_EVERY:
        _register_now()
