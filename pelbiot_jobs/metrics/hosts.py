"""Which hosts have a worker on their host queue: a Redis hash of host -> last seen.

Each worker that consumes its host queue writes its host name when its consumer starts and
every REGISTER_EVERY seconds after (a consumer bootstep on the worker's own timer). The dispatcher sends host-local tasks to
the hosts seen recently: a host that is down gets no task, and shows as a gap.
"""

from __future__ import annotations

import time

from celery import bootsteps


KEY = "pelbiot:hosts"
#: Seconds between two registrations of the same worker.
REGISTER_EVERY = 10.0
#: A host not seen for this long (s) is considered down.
HOST_TIMEOUT = 45.0

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


def _register(app) -> None:
    from .. import redis_clients

    settings = app.pelbiot_settings
    try:
        register(redis_clients.coordination(settings), settings.hostname)
    except Exception:  # the broker is down: the worker reconnects, the next tick registers
        pass


class HostRegistry(bootsteps.StartStopStep):
    """Worker consumer step: register this host while the worker consumes its host queue."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer, **kwargs):
        super().__init__(consumer, **kwargs)
        self.tref = None

    def start(self, consumer):
        app = consumer.app
        settings = app.pelbiot_settings
        queues = {q.name for q in consumer.task_consumer.queues} if consumer.task_consumer else set()
        if settings is None or settings.host_queue not in queues:
            return  # e.g. a maintenance-only worker: it takes no host-local work
        _register(app)
        self.tref = consumer.timer.call_repeatedly(REGISTER_EVERY, _register, (app,))

    def stop(self, consumer):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop

