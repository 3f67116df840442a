"""The ops DB and the app DB restart under a working pipeline: records and samples wait, nothing is lost."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
from sqlalchemy import select

from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import dispose_all, engine_for
from pelbiot_jobs.db.ops_models import job_runs, metric_samples
from pelbiot_jobs.metrics.service import source_label
from pelbiot_jobs.runtime.headers import publishing
from pelbiot_jobs.runtime.recording import SPOOL_DIR
from tests.conftest import PrivateMariaDB

from .conftest import Stack, record, stack_env

OUTAGE_S = 15


@pytest.fixture(scope="module")
def own_mariadb():
    server = PrivateMariaDB()
    server.start()
    server.execute("CREATE DATABASE ops", "CREATE DATABASE app")
    yield server
    server.remove()


def _restart(server, outage: float) -> float:
    server.stop()
    time.sleep(outage)
    server.start()
    return time.monotonic()


def test_ops_db_restart_loses_no_job_run_and_no_task(own_mariadb, fault_dbs, broker, tmp_path):
    ops_url = own_mariadb.url("ops")
    migrate.upgrade(ops_url)
    stack = Stack(stack_env(fault_dbs, broker, tmp_path, PELBIOT_OPS_DB_URL=ops_url), tmp_path, broker)
    try:
        worker = stack.worker("w1", concurrency=2)
        sent = {}

        def send(n):
            for _ in range(n):
                key = "db" + uuid.uuid4().hex[:8]
                sent[key] = stack.send("faults.work", key=key, seconds=0)
                time.sleep(0.5)

        send(4)
        stack.wait(lambda: all(stack.events(k, "end") for k in sent), 30, "the first tasks", worker)
        own_mariadb.stop()
        send(4)  # they run while the ops DB is down: their work and their records must wait
        time.sleep(OUTAGE_S - 2)
        own_mariadb.start()
        back = time.monotonic()
        dispose_all()
        send(4)
        stack.wait(lambda: all(stack.events(k, "end") for k in sent), 120, "every task to end", worker)
        recovered = time.monotonic() - back
        ends = {k: len(stack.events(k, "end")) for k in sent}
        assert set(ends.values()) == {1}, ends

        def recorded():
            finals = {}
            for key, task_id in sent.items():
                rows = stack.runs(task_id)
                if not rows or rows[-1]["state"] != "SUCCESS":
                    return None
                finals[key] = [r["state"] for r in rows]
            return finals

        finals = stack.wait(recorded, 60, "every run recorded (spooled rows written)", worker)
        for states in finals.values():  # attempts that met the outage are RETRY rows, the last SUCCESS
            assert states[:-1] == ["RETRY"] * (len(states) - 1), finals
        spool = tmp_path / "var" / SPOOL_DIR
        stack.wait(lambda: not any(spool.glob("*.jsonl")), 30, "the spool to be written out")
        tries = max(len(s) for s in finals.values())
        record(f"ops DB restart ({OUTAGE_S} s) under 12 tasks", tries, 0, 0, recovered)
    finally:
        stack.stop_all()
        dispose_all()


def test_app_db_restart_keeps_every_sampling_slot(own_mariadb, fault_dbs, broker, tmp_path):
    app_url = own_mariadb.url("app")
    stack = Stack(stack_env(fault_dbs, broker, tmp_path, PELBIOT_APP_DB_URL=app_url,
                            PELBIOT_APP_DB_ADMIN_URL=app_url), tmp_path, broker)
    try:
        stack.worker("w1", concurrency=3)
        label = source_label(app_url)
        base = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        slots = [base + dt.timedelta(seconds=15 * i) for i in range(4)]

        def send_slot(slot):
            with publishing("beat", job="metrics.sample_mysql", scheduled_at=slot.isoformat()):
                stack.app.send_task("metrics.sample_mysql", queue="sampling", ignore_result=True)

        send_slot(slots[0])
        time.sleep(2)
        own_mariadb.stop()
        send_slot(slots[1])  # due while the app DB is down: retried for up to a minute
        time.sleep(5)
        send_slot(slots[2])
        time.sleep(OUTAGE_S - 5)
        own_mariadb.start()
        back = time.monotonic()
        send_slot(slots[3])

        def sampled():
            with engine_for(stack.settings.ops_db_url).connect() as conn:
                got = {r.ts for r in conn.execute(select(metric_samples.c.ts).where(
                    metric_samples.c.host == label, metric_samples.c.ts.in_([s.replace(tzinfo=None) for s in slots])))}
            return got if len(got) == len(slots) else None

        got = stack.wait(sampled, 120, "a sample in every slot")
        recovered = time.monotonic() - back
        assert got == {s.replace(tzinfo=None) for s in slots}
        with engine_for(stack.settings.ops_db_url).connect() as conn:
            tries = 1 + max(r.attempt for r in conn.execute(select(job_runs.c.attempt).where(
                job_runs.c.job == "metrics.sample_mysql", job_runs.c.scheduled_at.in_(
                    [s.replace(tzinfo=None) for s in slots]))))
        record(f"app DB restart ({OUTAGE_S} s) under the 15 s sampler (4 slots)", tries, 0, 0, recovered)
    finally:
        stack.stop_all()
        dispose_all()
