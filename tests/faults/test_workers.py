"""Workers killed, stopped and restarted under tasks in flight: every task ends once, none runs twice at once."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import psutil
import pytest

from .conftest import VISIBILITY, record


def _key() -> str:
    return "k" + uuid.uuid4().hex[:10]


def _final(stack, task_id):
    rows = stack.runs(task_id)
    return rows[-1]["state"] if rows else None


def _kill_the_pool_child_at(stack, worker, task: str, event: str, seconds: float) -> tuple[str, str, float]:
    """Send ``task``, kill -9 the pool process running it once it logged ``event``, wait for its
    run again to end; return (key, task id, seconds from the kill to the end)."""
    key = _key()
    task_id = stack.send(task, key=key, seconds=seconds)
    first = stack.wait(lambda: stack.events(key, event), 30, f"the task's {event}", worker)[0]
    os.kill(first["pid"], signal.SIGKILL)
    killed = time.monotonic()
    stack.wait(lambda: stack.events(key, "end"), 60, "the task to run again and end", worker)
    return key, task_id, time.monotonic() - killed


def test_kill_9_of_a_pool_child_runs_the_task_again_at_once(stack):
    """The OOM killer takes the pool process running a task, three times in a row."""
    worker = stack.worker(concurrency=2)
    for _ in range(3):
        key, task_id, recovered = _kill_the_pool_child_at(stack, worker, "faults.work", "start", 4)
        starts, ends = stack.events(key, "start"), stack.events(key, "end")
        assert len(ends) == 1 and len(starts) == 2, stack.log_rows(key)
        assert stack.wait(lambda: _final(stack, task_id) == "SUCCESS", 20, "the run's row to say SUCCESS")
        # one row per attempt: the killed attempt is the same row, now SUCCESS; no "expired", no second row
        assert [r["state"] for r in stack.runs(task_id)] == ["SUCCESS"], stack.runs(task_id)
        record("kill -9 of a pool child (task in flight)", len(starts), 0, len(ends) - 1, recovered)
    assert worker.poll() is None


def test_a_lost_node_s_tasks_run_again_on_another_worker_within_the_visibility_timeout(stack):
    """kill -9 of the whole worker (main process and pool: a lost node, `docker kill`), second worker up.

    The message carries a 5 s expiry (as beat stamps a frequent job): the run had started, so it
    runs again instead of being dropped as "expired".
    """
    first = stack.worker("w1", concurrency=1)
    key = _key()
    task_id = stack.send("faults.work", key=key, seconds=6, expires_s="5")
    started = stack.wait(lambda: stack.events(key, "start"), 30, "the task to start", first)[0]
    tree = [first.pid, *stack.pool_children(first)]
    assert started["pid"] in tree, (started, tree)
    for pid in tree:  # the pool processes may have left the worker's process group
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    stack.worker("w2", concurrency=1)
    stack.wait(lambda: stack.events(key, "end"), VISIBILITY + 60, "another worker to run it", None)
    recovered = time.monotonic() - killed
    starts, ends = stack.events(key, "start"), stack.events(key, "end")
    assert len(starts) == 2 and len(ends) == 1, [(r["event"], r["pid"], str(r["at"])) for r in stack.log_rows(key)] + [tree] + [
        (r["state"], r["worker"], str(r["started_at"]), r["result"]) for r in stack.runs(task_id)]
    assert stack.wait(lambda: _final(stack, task_id) == "SUCCESS", 30, "SUCCESS recorded")
    assert not any("expired" in (r["result"] or "") for r in stack.runs(task_id))
    assert recovered < 5 * 60
    record("kill -9 of a whole worker (lost node), 5 s expiry", len(starts), 0, len(ends) - 1, recovered)


def test_kill_9_of_the_worker_main_process_never_runs_a_task_twice_at_once(stack):
    """The main process dies; its pool child goes on with the task. The copy handed to the
    second worker after the visibility timeout must wait for that run instead of starting beside it."""
    first = stack.worker("w1", concurrency=1)
    key = _key()
    task_id = stack.send("faults.work", key=key, seconds=VISIBILITY + 5)
    start = stack.wait(lambda: stack.events(key, "start"), 30, "the task to start", first)[0]
    os.kill(first.pid, signal.SIGKILL)  # the main process only
    killed = time.monotonic()
    stack.worker("w2", concurrency=1)
    orphan_gone = None
    deadline = time.monotonic() + VISIBILITY + 120
    while time.monotonic() < deadline and not stack.events(key, "end"):
        if orphan_gone is None and not psutil.pid_exists(start["pid"]):
            orphan_gone = time.monotonic()
        time.sleep(0.2)
    ends = stack.events(key, "end")
    assert ends, stack.log_rows(key)
    recovered = time.monotonic() - killed
    time.sleep(3)  # a copy that would start late would show here
    starts, ends = stack.events(key, "start"), stack.events(key, "end")
    assert len(ends) == 1, stack.log_rows(key)
    if len(starts) == 2:  # the orphan died with its parent: the second run started after it was gone
        assert orphan_gone is not None, stack.log_rows(key)
    assert stack.wait(lambda: _final(stack, task_id) in ("SUCCESS", "FAILURE"), 60, "a final row")
    record("kill -9 of the worker's main process (pool child goes on)", len(starts), 0, len(ends) - 1, recovered)


def test_sigterm_lets_the_running_task_finish_and_nothing_runs_again(stack):
    """`docker stop` (and systemd with KillMode=mixed): SIGTERM to the worker's main process only."""
    worker = stack.worker("w1", concurrency=1)
    key = _key()
    task_id = stack.send("faults.work", key=key, seconds=4)
    stack.wait(lambda: stack.events(key, "start"), 30, "the task to start", worker)
    os.kill(worker.pid, signal.SIGTERM)
    stopped = time.monotonic()
    assert worker.wait(60) == 0
    stopped_in = time.monotonic() - stopped  # the task finished first
    assert not stack.held([task_id])  # acked before the worker exited: nothing can come back
    assert not stack.redis.keys("pelbiot:worker:w1@*")  # `workers` no longer lists it
    stack.worker("w2", concurrency=1)
    time.sleep(3)
    starts, ends = stack.events(key, "start"), stack.events(key, "end")
    assert len(starts) == 1 and len(ends) == 1, [(r["event"], r["pid"], str(r["at"])) for r in stack.log_rows(key)]
    assert [r["state"] for r in stack.runs(task_id)] == ["SUCCESS"]
    record("SIGTERM (docker stop) with a task in flight", 1, 0, 0, stopped_in)


def test_two_workers_on_two_hosts_sample_their_own_host_and_are_listed(stack):
    """Scale-out: each worker takes its host's own work, under its own name; `workers` lists both."""
    import json
    import subprocess
    import sys

    from sqlalchemy import select

    from pelbiot_jobs.db.engine import engine_for
    from pelbiot_jobs.db.ops_models import job_runs, metric_samples
    from tests.conftest import ROOT

    hosts = {"w1": "pjt-host-a", "w2": "pjt-host-b"}
    for node, host in hosts.items():
        stack.worker(node, concurrency=1, env={"PELBIOT_HOSTNAME": host})
    from pelbiot_jobs.runtime.heartbeats import live_hosts

    # Their heartbeats say they are alive and which host queue each consumes (no second registry).
    stack.wait(lambda: set(hosts.values()) <= set(live_hosts(stack.redis)), 30, "both hosts' heartbeats")
    stack.send("metrics.sample_hosts")

    def sampled():
        with engine_for(stack.settings.ops_db_url).connect() as conn:
            got = {r.host for r in conn.execute(select(metric_samples.c.host).where(
                metric_samples.c.host.in_(list(hosts.values()))).distinct())}
        return got if got == set(hosts.values()) else None

    stack.wait(sampled, 60, "a host sample from each host")
    with engine_for(stack.settings.ops_db_url).connect() as conn:
        runs = conn.execute(select(job_runs.c.queue, job_runs.c.worker).where(
            job_runs.c.task == "metrics.sample_host", job_runs.c.queue.in_([f"host.{h}" for h in hosts.values()]))).all()
    # the sample of host A was taken by the worker on host A, and so for B
    assert {(q, w.split("@")[0]) for q, w in runs} == {(f"host.{h}", n) for n, h in hosts.items()}, runs
    out = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "workers", "--json"], env=stack.env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    listed = json.loads(out.stdout)["workers"]
    assert {w["host"] for w in listed} == set(hosts.values()), out.stdout + out.stderr
    for w in listed:
        assert f"host.{w['host']}" in w["queues"] and w["concurrency"] == 1 and w["heartbeat_age_s"] < 30


def test_an_effect_done_before_the_worker_died_is_not_done_again(stack):
    """The pool process dies after the task's e-mail-like effect was recorded done, before the ack:
    the task runs again (nothing lost) and skips the effect (nothing done twice)."""
    from sqlalchemy import select

    from pelbiot_jobs.db.engine import engine_for
    from pelbiot_jobs.db.ops_models import effects

    worker = stack.worker(concurrency=1)
    key, task_id, recovered = _kill_the_pool_child_at(stack, worker, "faults.effect", "effect", 5)
    assert len(stack.events(key, "start")) == 2 and len(stack.events(key, "effect")) == 1, stack.log_rows(key)
    with engine_for(stack.settings.ops_db_url).connect() as conn:
        row = conn.execute(select(effects).where(effects.c.effect_key == f"fault-effect:{task_id}")).mappings().one()
    assert row["state"] == "done" and row["attempts"] == 1
    record("kill -9 of a pool child after its task's effect (e-mail) was done", 2, 0, 0, recovered)


@pytest.mark.timeout(420)
def test_a_task_of_150_s_on_a_live_worker_is_never_handed_to_a_second_worker(stack):
    """The visibility timeout is 20 s; the task runs 150 s on a live worker while a second, idle
    worker consumes the same queue. The live worker refreshes the message it holds (liveness.py),
    so the restore sweep never hands it out again: one start, one end, one job-run row."""
    busy = stack.worker("w1", concurrency=1)
    idle = stack.worker("w2", concurrency=1)
    key = _key()
    started_at = time.monotonic()
    task_id = stack.send("faults.work", key=key, seconds=150)
    stack.wait(lambda: stack.events(key, "start"), 30, "the task to start", busy)
    stack.wait(lambda: stack.events(key, "end"), 150 + 60, "the long task to end", busy)
    took = time.monotonic() - started_at
    time.sleep(VISIBILITY / 2)  # a copy handed out late would start here
    starts, ends = stack.events(key, "start"), stack.events(key, "end")
    assert len(starts) == 1 and len(ends) == 1, stack.log_rows(key)
    assert stack.wait(lambda: _final(stack, task_id) == "SUCCESS", 30, "SUCCESS recorded")
    assert len(stack.runs(task_id)) == 1, stack.runs(task_id)
    assert busy.poll() is None and idle.poll() is None
    record(f"a 150 s task, visibility timeout {VISIBILITY} s, a second worker idle", len(starts), 0,
           len(ends) - 1, took)


def test_a_message_a_frozen_worker_took_comes_back_when_it_is_killed(stack):
    """A worker frozen (SIGSTOP) with its BRPOP pending takes the next message into its socket: it
    is on no queue and in no unacked set. Killed so, the worker takes the message with it; the
    sent-message ledger sees it is nowhere and sends it again, and it runs once on another worker."""
    from pelbiot_jobs.runtime import ledger

    frozen = stack.worker("w1", concurrency=1)
    time.sleep(2)  # idle: its consumer waits in BRPOP
    os.killpg(frozen.pid, signal.SIGSTOP)
    key = "hostage" + uuid.uuid4().hex[:6]
    sent = time.monotonic()
    task_id = stack.send("faults.work", key=key, seconds=0)
    time.sleep(1.5)
    assert stack.held([task_id]) == [], "the frozen worker did not take the message (its BRPOP had ended)"
    assert stack.redis.exists(ledger.ENTRY + task_id)  # only the ledger knows of it
    other = stack.worker("w2", concurrency=1)
    os.killpg(frozen.pid, signal.SIGKILL)
    frozen.wait(10)
    stack.wait(lambda: stack.events(key, "end"), VISIBILITY + ledger.MARGIN_S + 3 * ledger.SWEEP_EVERY + 30,
               "the lost message to be sent again and run", other)
    recovered = time.monotonic() - sent
    time.sleep(3)
    assert len(stack.events(key, "start")) == 1 and len(stack.events(key, "end")) == 1
    runs = stack.runs(task_id)
    assert [r["state"] for r in runs] == ["SUCCESS"], runs
    assert "never read it" in stack.tail(other)
    assert not stack.redis.exists(ledger.ENTRY + task_id) and stack.redis.zscore(ledger.INDEX, task_id) is None
    record("worker frozen (SIGSTOP) with a BRPOP pending takes a message, then kill -9 (sent again from the ledger)",
           1, 0, 0, recovered)


def test_a_run_that_ended_while_redis_was_down_is_not_sent_again(stack):
    """The state a Redis crash leaves behind a run that ended meanwhile: its ledger entry still
    there, no done mark, the message on no queue. The ledger does not send it again (the ops DB
    has its SUCCESS), and a copy sent anyway is dropped by the run guard, from the same row."""
    from pelbiot_jobs.runtime import keys, ledger

    worker = stack.worker("w1", concurrency=1)
    key = "ended" + uuid.uuid4().hex[:6]
    task_id = stack.send("faults.work", key=key, seconds=0)
    stack.wait(lambda: [r for r in stack.runs(task_id) if r["state"] == "SUCCESS"], 30, "the run", worker)
    entry = {"task": "faults.work", "args": [], "kwargs": {"key": key, "seconds": 0}, "queue": "sampling",
             "retries": 0, "eta": None, "headers": {"pelbiot_trigger": "cli"}}
    stack.redis.set(ledger.ENTRY + task_id, json.dumps(entry))
    stack.redis.zadd(ledger.INDEX, {task_id: time.time() - 3600})
    stack.redis.delete(keys.DONE + task_id, keys.STARTED + task_id)
    stack.wait(lambda: stack.redis.zscore(ledger.INDEX, task_id) is None, 3 * ledger.SWEEP_EVERY + 10,
               "the sweep to settle the entry", worker)
    # A copy sent all the same (as by a sweep that ran before the row was written) is dropped.
    with stack.app.connection_for_write() as conn:
        stack.app.send_task("faults.work", kwargs={"key": key, "seconds": 0}, task_id=task_id, queue="sampling",
                            headers={"pelbiot_resent": "1"}, connection=conn)
    time.sleep(8)
    assert len(stack.events(key, "end")) == 1, stack.log_rows(key)
    assert "never read it" not in stack.tail(worker) and "already ended" in stack.tail(worker)
    record("a run that ended while Redis was down: neither the ledger nor a copy runs it again", 1, 0, 0, None)
