"""RabbitMQ as the broker (quorum queues, publisher confirms): a dead worker's task comes back at
once, retries go through native delayed delivery, a bad message is kept aside.

Each test gets a virtual host of its own on the machine's RabbitMQ (made and removed with
rabbitmqctl) and breaks only its own workers; leases, "done" marks and dead letters live in the
test's private Redis, given as PELBIOT_LOCK_REDIS_URL (the cache Redis would do, but may evict).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from pelbiot_jobs.runtime.heartbeats import DEAD_LETTERS

from .conftest import Stack, record, stack_env

RABBIT = ("127.0.0.1", 5672)


def _ctl(*args: str) -> None:
    out = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if out.returncode:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {out.stderr.strip()[:300]}", pytrace=False)


@pytest.fixture
def vhost():
    import socket

    if not shutil.which("rabbitmqctl"):
        pytest.fail("rabbitmqctl is missing: install rabbitmq-server (make test starts it)", pytrace=False)
    try:
        socket.create_connection(RABBIT, timeout=3).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ does not answer on {RABBIT[0]}:{RABBIT[1]} ({exc}); run `make test`, which starts it",
                    pytrace=False)
    name = f"pjt_{uuid.uuid4().hex[:8]}"
    _ctl("add_vhost", name)
    _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    _ctl("delete_vhost", name)


@pytest.fixture
def rabbit_stack(fault_dbs, broker, vhost, tmp_path):
    cache = f"redis://127.0.0.1:{broker.port}/0"
    env = stack_env(fault_dbs, broker, tmp_path, PELBIOT_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
                    PELBIOT_CACHE_REDIS_URL=cache, PELBIOT_RESULT_BACKEND_URL=cache, PELBIOT_LOCK_REDIS_URL=cache)
    s = Stack(env, tmp_path, broker)
    s.vhost = vhost
    yield s
    s.stop_all()


def test_rabbitmq_a_dead_worker_s_task_runs_again_at_once_and_once(rabbit_stack):
    stack = rabbit_stack
    first = stack.worker("w1", concurrency=1)
    key = "rk" + uuid.uuid4().hex[:8]
    task_id = stack.send("faults.work", key=key, seconds=5)
    stack.wait(lambda: stack.events(key, "start"), 30, "the task to start", first)
    for pid in [first.pid, *stack.pool_children(first)]:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    stack.worker("w2", concurrency=1)
    stack.wait(lambda: stack.events(key, "end"), 60, "the second worker to run it")
    recovered = time.monotonic() - killed
    assert len(stack.events(key, "start")) == 2 and len(stack.events(key, "end")) == 1
    assert stack.wait(lambda: stack.runs(task_id) and stack.runs(task_id)[-1]["state"] == "SUCCESS", 30, "SUCCESS")
    record("RabbitMQ (quorum queues): kill -9 of a whole worker with a task in flight", 2, 0, 0, recovered)


def test_rabbitmq_retries_with_a_countdown_and_keeps_bad_messages_aside(rabbit_stack):
    from kombu import Connection, Exchange, Producer

    stack = rabbit_stack
    worker = stack.worker("w1", concurrency=1)
    key = "rf" + uuid.uuid4().hex[:8]
    task_id = stack.send("faults.flaky", key=key)
    stack.wait(lambda: stack.events(key, "end"), 60, "the retried task to end", worker)
    # the row is final a moment after the task's last log line
    stack.wait(lambda: [r["state"] for r in stack.runs(task_id)] == ["RETRY", "SUCCESS"], 30,
               "a RETRY row then a SUCCESS row")
    listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", stack.vhost, "name", "type"],
                            capture_output=True, text=True, timeout=60).stdout
    types = dict(line.split()[:2] for line in listed.splitlines() if line.strip() and not line.startswith("name"))
    assert types.get("sampling") == "quorum" and types.get("maintenance") == "quorum", listed
    with Connection(stack.settings.broker_url) as conn:  # a message that is not a task
        Producer(conn).publish(b"\x00\xffnot json", exchange=Exchange("sampling", type="topic"),
                               routing_key="sampling", content_type="application/json", content_encoding="utf-8")
    after = "ra" + uuid.uuid4().hex[:8]
    stack.send("faults.work", key=after, seconds=0)
    stack.wait(lambda: stack.events(after, "end"), 60, "a good task after the bad one", worker)
    assert worker.poll() is None
    kept = [json.loads(x) for x in stack.redis.lrange(DEAD_LETTERS, 0, -1)]
    assert len(kept) == 1 and "does not decode" in kept[0]["reason"], kept
    record("RabbitMQ: a retry through native delayed delivery, then a non-JSON message", 2, 0, 0, None)
