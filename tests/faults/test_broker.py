"""The broker restarts, beats fail over, bad messages arrive: beat and worker go on, nothing runs twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import func, select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import job_runs
from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES
from pelbiot_jobs.runtime.heartbeats import DEAD_LETTERS
from tests.conftest import ROOT

from .conftest import VISIBILITY, Stack, record, stack_env


def _schedules(tmp_path, key: str) -> str:
    """The shipped schedule folder with one job only: faults.work every 2 s."""
    folder = tmp_path / "schedules"
    shutil.copytree(SHIPPED_SCHEDULES, folder)
    (folder / "beat.yaml").write_text(
        "jobs:\n  faults.tick:\n    task: faults.work\n    every: 2s\n"
        f"    kwargs: {{key: {key}, seconds: 0}}\n")
    return str(folder)


def _slots(stack, job: str = "faults.tick") -> list[tuple]:
    """(scheduled_at, how many runs) of a beat job."""
    with engine_for(stack.settings.ops_db_url).connect() as conn:
        return list(conn.execute(select(job_runs.c.scheduled_at, func.count()).where(job_runs.c.job == job)
                                 .group_by(job_runs.c.scheduled_at)))


@pytest.fixture
def beat_stack(fault_dbs, broker, tmp_path):
    tick = "tick" + uuid.uuid4().hex[:8]
    s = Stack(stack_env(fault_dbs, broker, tmp_path, PELBIOT_SCHEDULES_DIR=_schedules(tmp_path, tick)),
              tmp_path, broker)
    s.tick = tick
    yield s
    s.stop_all()


@pytest.mark.parametrize("aof", [True, False], ids=["with AOF", "without persistence"])
def test_broker_restart_across_a_beat_tick_with_tasks_in_flight(beat_stack, broker, aof):
    stack = beat_stack
    broker.aof = aof
    if not aof:  # start it again without persistence, as a cache-style Redis runs
        broker.stop()
        broker.start()
    worker = stack.worker("w1", concurrency=3)
    beat = stack.start("beat", name="beat")
    stack.wait(lambda: len(stack.events(stack.tick, "end")) >= 3, 60, "beat's ticks to run", beat)
    keys = [f"long{uuid.uuid4().hex[:8]}" for _ in range(2)]
    ids = [stack.send("faults.work", key=key, seconds=8) for key in keys]
    stack.wait(lambda: all(stack.events(k, "start") for k in keys), 30, "the long tasks to start", worker)
    broker.kill()  # kill -9: with appendfsync always nothing acknowledged is lost
    time.sleep(5)  # covers two beat ticks
    broker.start()
    back = time.monotonic()
    before = len(stack.events(stack.tick, "end"))
    stack.wait(lambda: len(stack.events(stack.tick, "end")) > before + 2, 90, "beat's ticks to run again", beat)
    recovered = time.monotonic() - back
    stack.wait(lambda: all(stack.events(k, "end") for k in keys), 60, "the long tasks to end")
    # A message whose ack was lost with the connection comes back after the visibility timeout and
    # is dropped as already done; the broker then holds neither.
    stack.wait(lambda: not stack.held(ids), VISIBILITY + 30, "the broker to let go of the long tasks")
    time.sleep(2)
    assert beat.poll() is None and worker.poll() is None, stack.tail(beat)
    starts = [len(stack.events(k, "start")) for k in keys]
    ends = [len(stack.events(k, "end")) for k in keys]
    assert ends == [1, 1], [stack.log_rows(k) for k in keys]
    if aof:  # the tasks went on through the blip and acked after it: nothing ran again
        assert starts == [1, 1], [stack.log_rows(k) for k in keys]
    doubled = [slot for slot in _slots(stack) if slot[1] > 1]
    assert not doubled, doubled
    record(f"broker kill -9 and restart {'with AOF' if aof else 'empty (no persistence)'}, beat tick and "
           "2 tasks in flight (the outage's slots not replayed)", max(starts), 0, len(doubled), recovered)


def test_two_beats_one_sends_the_other_takes_over(beat_stack):
    stack = beat_stack
    stack.worker("w1", concurrency=2)
    first = stack.start("beat", name="beat1")
    stack.wait(lambda: len(stack.events(stack.tick, "end")) >= 2, 60, "the first beat's ticks", first)
    second = stack.start("beat", name="beat2")
    time.sleep(6)
    os.killpg(first.pid, signal.SIGKILL)
    killed = time.monotonic()
    before = len(stack.events(stack.tick, "end"))
    stack.wait(lambda: len(stack.events(stack.tick, "end")) > before + 1, 90, "the second beat to take over", second)
    recovered = time.monotonic() - killed
    time.sleep(4)
    doubled = [slot for slot in _slots(stack) if slot[1] > 1]
    assert not doubled, doubled
    assert second.poll() is None
    # The lock (6 s) lapses, the standby (looking every 2 s) takes it and sends the slot due: the
    # first run after the kill ends within 10 s (it was 30-31 s with RedBeat's default lock).
    assert recovered < 10, recovered
    record("two beats, kill -9 of the one sending", 1, 0, len(doubled), recovered)


def _late_runs(stack, job: str = "faults.tick") -> list[dict]:
    """This stack's runs of ``job`` sent late (the ops DB is the session's: other tests' runs are there)."""
    with engine_for(stack.settings.ops_db_url).connect() as conn:
        return [dict(r) for r in conn.execute(select(job_runs).where(
            job_runs.c.job == job, job_runs.c.trigger == "late", job_runs.c.args.contains(stack.tick))).mappings()]


def test_a_slot_missed_in_a_short_broker_outage_runs_once_marked_late(beat_stack, broker):
    """Beat cannot send while the broker is down; when it is back, the latest slot it missed is
    sent once, marked late, and runs (not dropped as expired); the others are not replayed."""
    stack = beat_stack
    worker = stack.worker("w1", concurrency=2)
    beat = stack.start("beat", name="beat")
    stack.wait(lambda: len(stack.events(stack.tick, "end")) >= 3, 60, "beat's ticks to run", beat)
    broker.kill()
    down = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    time.sleep(10)  # five 2 s slots
    broker.start()
    back = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    late = stack.wait(lambda: [r for r in _late_runs(stack) if r["state"] == "SUCCESS"], 60,
                      "the missed slot to run, marked late", beat)
    time.sleep(6)  # regular ticks after it
    assert len(_late_runs(stack)) == 1, _late_runs(stack)
    slot = late[0]["scheduled_at"]  # the latest slot when beat could send again (it reconnects within seconds)
    assert down - dt.timedelta(seconds=2) <= slot <= late[0]["started_at"], (down, slot, back)
    assert (late[0]["started_at"] - back).total_seconds() < 15
    assert "missed" in stack.tail(beat) and "marked late" in stack.tail(beat)
    doubled = [s for s in _slots(stack) if s[1] > 1]
    assert not doubled, doubled
    assert beat.poll() is None and worker.poll() is None
    record("broker kill -9 for 10 s under beat (the latest missed slot sent once, late)", 1, 0, 0,
           (late[0]["started_at"] - back).total_seconds())


def test_bad_messages_go_to_the_dead_letter_list_and_the_worker_goes_on(stack):
    worker = stack.worker("w1", concurrency=1)
    stack.redis.lpush("sampling", b"\x00\xffnot json at all")
    stack.redis.lpush("sampling", json.dumps({"hello": "world"}))
    bad_kwargs = stack.send("faults.work", key="x", seconds="soon")  # a real task message, a wrong parameter
    key = "after" + uuid.uuid4().hex[:6]
    sent = time.monotonic()
    stack.send("faults.work", key=key, seconds=0)
    stack.wait(lambda: stack.events(key, "end"), 60, "a good task after the bad ones", worker)
    recovered = time.monotonic() - sent
    assert worker.poll() is None
    assert stack.redis.llen(DEAD_LETTERS) == 2
    kept = [json.loads(x) for x in stack.redis.lrange(DEAD_LETTERS, 0, -1)]
    assert {k["queue"] for k in kept} == {"sampling"}
    assert any("not JSON" in k["reason"] for k in kept)
    runs = stack.wait(lambda: stack.runs(bad_kwargs), 30, "the bad-kwargs run's row")
    assert [r["state"] for r in runs] == ["FAILURE"] and "seconds" in runs[0]["error"]
    # `status` shows them to the operator
    out = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "status", "--json"], env=stack.env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    status = json.loads(out.stdout)
    assert status["dead_letters"]["count"] == 2, out.stdout + out.stderr
    assert [w for w in status["workers"] if w.startswith("w1@")], status["workers"]  # from its heartbeat
    record("a non-JSON message, a non-message JSON and a bad-kwargs message", 1, 0, 0, recovered)


def test_a_task_that_ends_while_the_broker_is_down_does_not_run_again(stack, broker):
    """The run ends in the outage: no done mark in Redis, no ack. The message comes back after the
    visibility timeout; the ops DB's SUCCESS row of that attempt drops the copy (the chaos run
    found this doing work twice)."""
    worker = stack.worker("w1", concurrency=1)
    key = "ends-in-outage" + uuid.uuid4().hex[:6]
    task_id = stack.send("faults.work", key=key, seconds=3)
    stack.wait(lambda: stack.events(key, "start"), 30, "the task to start", worker)
    broker.kill()
    killed = time.monotonic()
    stack.wait(lambda: stack.events(key, "end"), 30, "the task to end with the broker down", worker)
    time.sleep(max(0.0, 8 - (time.monotonic() - killed)))
    broker.start()
    back = time.monotonic()
    stack.wait(lambda: not stack.held([task_id]), VISIBILITY + 60, "the broker to let go of the message", worker)
    time.sleep(5)
    assert len(stack.events(key, "start")) == 1 and len(stack.events(key, "end")) == 1, stack.log_rows(key)
    assert [r["state"] for r in stack.runs(task_id)] == ["SUCCESS"]
    assert worker.poll() is None
    record("broker kill -9 while a task ends (no done mark, no ack; the copy is dropped)", 1, 0, 0,
           time.monotonic() - back)
