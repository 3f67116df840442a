"""Slow-log rotation (with and without FLUSH SLOW LOGS) and an exclusive job's lock after its worker died."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid

import pytest

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.queries.analyze import analyze
from pelbiot_jobs.runtime.locks import KEY_PREFIX, LEASE_TTL
from tests.conftest import ROOT

from .conftest import record

SAMPLE = ROOT / "tests" / "data" / "mariadb-slow.log"


def _chunks() -> list[bytes]:
    """The sample slow log cut between events, as the server writes them (an event in one piece)."""
    data = SAMPLE.read_bytes()
    cuts = [m.start() + 2 for m in re.finditer(rb";\n#", data)]
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if data[a:b]]


def _run(fault_dbs, path) -> int:
    out = analyze(engine_for(fault_dbs["app"]), engine_for(fault_dbs["ops"]), utcnow(), source="file", path=str(path))
    return out["events"]


@pytest.mark.parametrize("flush", [True, False], ids=["mv + FLUSH SLOW LOGS", "mv without flush"])
def test_slow_log_rotation_loses_no_event(fault_dbs, tmp_path, flush):
    chunks = _chunks()
    whole = tmp_path / "whole" / "slow.log"
    whole.parent.mkdir()
    whole.write_bytes(b"".join(chunks))
    expected = _run(fault_dbs, whole)
    assert expected > 10

    folder = tmp_path / f"logs-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    log = folder / "slow.log"
    third = len(chunks) // 3
    log.write_bytes(b"".join(chunks[:third]))
    read = _run(fault_dbs, log)
    with open(log, "ab") as fh:  # written just before the rotation, not read yet
        fh.write(b"".join(chunks[third:2 * third]))
    os.rename(log, folder / "slow.log.1")
    if flush:  # the server closes the old file and starts a new one
        log.write_bytes(b"".join(chunks[2 * third:]))
        read += _run(fault_dbs, log)
    else:  # the server still writes the moved file: the job must not fail, and must follow it
        read += _run(fault_dbs, log)
        with open(folder / "slow.log.1", "ab") as fh:
            fh.write(b"".join(chunks[2 * third:-3]))
        read += _run(fault_dbs, log)
        log.write_bytes(b"".join(chunks[-3:]))  # FLUSH SLOW LOGS at last: a new file
        read += _run(fault_dbs, log)
    read += _run(fault_dbs, log)  # nothing new: nothing counted twice
    assert read == expected
    record(f"slow-log rotation, {'mv + FLUSH SLOW LOGS' if flush else 'mv without flush'} "
           f"({expected} events)", 1, expected - read, max(0, read - expected), None)


def test_a_dead_exclusive_run_frees_its_lock_within_the_lease(stack):
    worker = stack.worker("w1", concurrency=1)
    key = "x" + uuid.uuid4().hex[:8]
    task_id = stack.send("faults.exclusive", key=key, seconds=12)
    stack.wait(lambda: stack.events(key, "start"), 30, "the exclusive task to start", worker)
    lock = KEY_PREFIX + "faults.exclusive"
    assert stack.redis.get(lock).decode() == task_id
    assert stack.redis.ttl(lock) <= LEASE_TTL  # a short lease, renewed: not the time limit plus a margin
    for pid in [worker.pid, *stack.pool_children(worker)]:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    stack.wait(lambda: not stack.redis.exists(lock), LEASE_TTL + 5, "the dead run's lock to lapse")
    freed = time.monotonic() - killed
    stack.worker("w2", concurrency=1)
    stack.wait(lambda: stack.events(key, "end"), 90, "the task to run again on the second worker")
    assert len(stack.events(key, "end")) == 1
    record("kill -9 of a worker holding an exclusive job's lock (time until the lock is free)",
           len(stack.events(key, "start")), 0, 0, freed)


def test_two_logs_digested_at_once_add_up_without_a_lost_update(fault_dbs, fresh_mysql_db, tmp_path):
    """Two queries.analyze runs on two logs store into the same classes and hours at the same time."""
    import threading

    from sqlalchemy import func, select

    from pelbiot_jobs.db import migrate
    from pelbiot_jobs.db.ops_models import query_digests

    ops = fresh_mysql_db()
    migrate.upgrade(ops)
    logs = []
    for i in range(2):
        path = tmp_path / f"slow-{i}.log"
        path.write_bytes(b"".join(_chunks() * 20))
        logs.append(path)
    results, errors = [], []
    start = threading.Barrier(2)

    def run(path):
        try:
            start.wait()
            results.append(analyze(engine_for(fault_dbs["app"]), engine_for(ops), utcnow(), source="file",
                                   path=str(path)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    events = sum(r["events"] for r in results)
    with engine_for(ops).connect() as conn:
        stored = conn.execute(select(func.sum(query_digests.c.calls))).scalar()
    assert events > 1000 and stored == events  # every event of both logs counted once
