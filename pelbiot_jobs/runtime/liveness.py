"""What a live worker does in the background so that a dead one's work comes back fast.

The Redis transport hands a message back when it has been unacknowledged for longer than the
visibility timeout. A timeout above the longest task (hours) means a killed worker's tasks wait
hours; a short one alone means a long task is handed to a second worker while the first still
runs it. pelbiot-jobs keeps the timeout short (PELBIOT_VISIBILITY_TIMEOUT, 120 s) and has every live
worker refresh the delivery time of each message it holds, every ``REFRESH_EVERY`` seconds: only
a worker that stopped refreshing (killed, frozen, cut off) loses its messages, and they come back
within the visibility timeout plus one restore sweep. The run lease (locks.py) covers the rest:
a copy that arrives while the first run lives waits, a copy of a finished run is dropped.

The same thread writes this worker's heartbeat (``pelbiot-jobs workers``) and writes job-run
rows spooled during an ops-DB outage (runtime/recording.py: flush_spool).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

from celery import bootsteps

from . import ledger
from .heartbeats import HEARTBEAT_TTL, WORKER_KEY

log = logging.getLogger(__name__)

#: Seconds between two refreshes of the messages this worker holds (under the shortest visibility
#: timeout allowed, 20 s).
REFRESH_EVERY = 5.0


def held_tags() -> list[str]:
    """Delivery tags of the messages this worker process holds (reserved, prefetched or running)."""
    from celery.worker import state

    tags = []
    for request in list(state.reserved_requests) + list(state.active_requests):
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag:
            tags.append(tag)
    return tags


def refresh(client, index_key: str, tags: list[str], now: float | None = None) -> int:
    """Move the delivery time of ``tags`` to now, for those still unacknowledged; return how many."""
    if not tags:
        return 0
    now = time.time() if now is None else now
    return client.zadd(index_key, {tag: now for tag in set(tags)}, xx=True, ch=True) or 0


def heartbeat(client, consumer, node: str) -> None:
    from celery.worker import state

    active = []
    for request in list(state.active_requests):
        active.append({"id": request.id, "task": request.name,
                       "started": getattr(request, "time_start", None)})
    queues = sorted(q.name for q in consumer.task_consumer.queues) if consumer.task_consumer else []
    record = {"node": node, "host": consumer.app.pelbiot_settings.hostname, "machine": socket.gethostname(),
              "pid": os.getpid(), "queues": queues, "concurrency": consumer.pool.num_processes
              if hasattr(consumer.pool, "num_processes") else getattr(consumer.controller, "concurrency", None),
              "active": active, "reserved": len(state.reserved_requests), "heartbeat": time.time()}
    client.set(WORKER_KEY + node, json.dumps(record, default=str), ex=HEARTBEAT_TTL)


class Liveness(bootsteps.StartStopStep):
    """Worker consumer step: refresh held messages, write the heartbeat, flush spooled job runs."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer, **kwargs):
        super().__init__(consumer, **kwargs)
        self._stop = None

    def start(self, consumer):
        if consumer.app.pelbiot_settings is None or self._stop is not None:
            return
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(consumer, self._stop), name="pelbiot-liveness",
                         daemon=True).start()

    def _run(self, consumer, stop: threading.Event) -> None:
        from ..lib import redis_clients
        from .recording import flush_spool

        settings = consumer.app.pelbiot_settings
        client = redis_clients.coordination(settings)
        node = consumer.hostname
        index_key = None
        swept = 0.0
        while not stop.is_set():
            try:
                if settings.broker_is_redis:
                    if index_key is None:
                        channel = consumer.task_consumer.channel if consumer.task_consumer else None
                        index_key = getattr(getattr(channel, "qos", None), "unacked_index_key", None)
                    if index_key:
                        refresh(client, index_key, held_tags())
                heartbeat(client, consumer, node)
                if settings.broker_is_redis and time.monotonic() - swept >= ledger.SWEEP_EVERY:
                    swept = time.monotonic()
                    ledger.sweep(consumer.app, client, settings.visibility_timeout)
            except Exception as exc:  # the broker is down: the consumer reconnects; try again next turn
                log.warning("liveness: %s", type(exc).__name__)
            try:
                flush_spool(settings)
            except Exception:
                pass  # the ops DB is still down; the rows stay spooled
            stop.wait(REFRESH_EVERY)

    def stop(self, consumer):
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    def shutdown(self, consumer):
        """The worker stops for good: take its heartbeat away at once (a killed one's lapses in 60 s)."""
        self.stop(consumer)
        if consumer.app.pelbiot_settings is None:
            return
        from ..lib import redis_clients

        try:
            redis_clients.coordination(consumer.app.pelbiot_settings).delete(WORKER_KEY + consumer.hostname)
        except Exception:
            pass
