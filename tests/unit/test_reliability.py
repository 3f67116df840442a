"""The pure parts of fault tolerance: restart backoff, dead holders, bad messages, expiry, event-time writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from types import SimpleNamespace

from sqlalchemy import create_engine, select

from pelbiot_jobs.db.ops_models import job_runs, metadata
from pelbiot_jobs.runtime import locks
from pelbiot_jobs.runtime.broker import problem_of
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.runtime.headers import H_EXPIRES, H_SCHEDULED, H_SENT
from pelbiot_jobs.runtime.recording import flush_spool, upsert_run, write_runs
from pelbiot_jobs.runtime.task import _expired, exclusive_name
from pelbiot_jobs.stack.supervisor import RESTART_MAX_DELAY, Supervisor


class FakeProcess:
    def __init__(self, code=None):
        self.returncode = code
        self.pid = 4242

    def poll(self):
        return self.returncode


def test_a_dead_child_is_started_again_with_growing_backoff(tmp_path):
    sup = Supervisor(settings=None)
    started = []

    def start(name, args, log=None, echo=None):
        from pelbiot_jobs.stack.supervisor import Child

        child = Child(name, FakeProcess(), log, list(args), echo)
        sup.children.append(child)
        started.append(name)
        return child

    sup.start = start
    said = []
    sup.start("beat", ["beat"])
    delays = []
    now = 1000.0
    for _ in range(8):
        sup.children[0].process.returncode = 1  # it dies at once, again and again
        sup.children[0].started = now
        sup.supervise(said.append, now=now)
        delays.append(sup.children[0].restart_at - now)
        now = sup.children[0].restart_at
        sup.supervise(said.append, now=now)  # due: started again
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60] and RESTART_MAX_DELAY == 60
    assert started.count("beat") == 9 and "died 8 times in a row" in said[-2]
    # A child that ran a long time before dying starts again at once (the count resets).
    sup.children[0].started = now - 3600
    sup.children[0].process.returncode = 1
    sup.supervise(said.append, now=now)
    assert sup.children[0].restart_at - now == 1


def test_a_lease_of_a_dead_process_of_this_host_is_known_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert locks.dead_on_this_host(f"h1:{child.pid}:abcd1234", "h1")
    assert not locks.dead_on_this_host(f"h1:{os.getpid()}:abcd1234", "h1")  # alive
    assert not locks.dead_on_this_host(f"h2:{child.pid}:abcd1234", "h1")  # another host: cannot tell
    assert not locks.dead_on_this_host("6f1c-task-id", "h1") and not locks.dead_on_this_host(None, "h1")


def test_what_is_not_a_kombu_message_is_named():
    good = {"body": "W10=", "properties": {"delivery_tag": "t", "delivery_info": {}, "body_encoding": "base64"}}
    assert problem_of(json.dumps(good).encode()) is None
    assert problem_of(b"\x00\xff garbage").startswith("not JSON")
    assert "not an object" in problem_of(b"[1, 2]")
    assert "no properties" in problem_of(json.dumps({"body": "x"}).encode())
    bad_body = dict(good, body="%%%")
    assert "base64" in problem_of(json.dumps(bad_body).encode())


def _request(**headers):
    return SimpleNamespace(headers=headers)


def test_expiry_counts_from_the_due_time_or_the_send_time():
    now = dt.datetime.now(dt.timezone.utc)
    old = (now - dt.timedelta(seconds=30)).isoformat()
    fresh = (now - dt.timedelta(seconds=2)).isoformat()
    assert _expired(_request(**{H_EXPIRES: "15", H_SCHEDULED: old})) == "15s"
    assert _expired(_request(**{H_EXPIRES: "15", H_SCHEDULED: fresh})) is None
    assert _expired(_request(**{H_EXPIRES: "15", H_SENT: old})) == "15s"
    assert _expired(_request(**{H_SCHEDULED: old})) is None  # no expiry: never dropped
    assert _expired(_request(**{H_EXPIRES: "soon", H_SCHEDULED: old})) is None


def test_exclusive_lock_names_follow_the_chosen_parameters():
    a = exclusive_name("queries.analyze", ("source", "path"), {"source": "file", "path": "/a"})
    b = exclusive_name("queries.analyze", ("source", "path"), {"source": "file", "path": "/b"})
    assert a != b and a.startswith("queries.analyze:")
    assert exclusive_name("metrics.rollup", (), {"x": 1}) == "metrics.rollup"


def _ops(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'ops.db'}")
    metadata.create_all(engine)
    return engine


def _row(state, started=None, finished=None, **extra):
    return {"task_id": "t1", "attempt": 0, "task": "x.y", "trigger": "cli", "state": state,
            "started_at": started, "finished_at": finished, **extra}


def test_a_late_write_never_overwrites_a_newer_state(tmp_path):
    engine = _ops(tmp_path)
    t0 = dt.datetime(2026, 11, 29, 10, 0, 0)
    with engine.begin() as conn:
        upsert_run(conn, _row("SUCCESS", t0, t0 + dt.timedelta(seconds=5), result="ok"))
        upsert_run(conn, _row("STARTED", t0))  # the start, spooled during an outage, written late
    with engine.connect() as conn:
        row = conn.execute(select(job_runs)).mappings().one()
    assert row["state"] == "SUCCESS" and row["result"] == "ok"
    with engine.begin() as conn:  # a new run of the same attempt after a recorded death does overwrite
        upsert_run(conn, _row("STARTED", t0 + dt.timedelta(seconds=60)))
    with engine.connect() as conn:
        assert conn.execute(select(job_runs.c.state)).scalar() == "STARTED"


def test_rows_that_cannot_be_written_are_spooled_then_written_in_any_order(tmp_path):
    good = _ops(tmp_path)
    settings = SimpleNamespace(ops_db_url=f"sqlite:///{tmp_path / 'missing' / 'ops.db'}", var_dir=tmp_path / "var",
                               secrets=lambda: [])
    t0 = utcnow()
    assert not write_runs(settings, [(_row("STARTED", t0), None)])
    assert not write_runs(settings, [(_row("SUCCESS", t0, t0 + dt.timedelta(seconds=1)), None)])
    spooled = list((tmp_path / "var" / "job-runs-spool").glob("*.jsonl"))
    assert len(spooled) == 1 and len(spooled[0].read_text().splitlines()) == 2
    settings.ops_db_url = str(good.url)
    assert flush_spool(settings) == 2
    assert not list((tmp_path / "var" / "job-runs-spool").glob("*.jsonl"))
    with good.connect() as conn:
        assert conn.execute(select(job_runs.c.state)).scalar() == "SUCCESS"
