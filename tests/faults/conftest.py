"""The fault suite's harness: a private Redis per test, real worker and beat processes, the outcome table.

Each test breaks only what it started (its own Redis, its own MariaDB where it restarts one) and
asserts from the database: every run recorded once, nothing lost, nothing done twice. Each test
adds a line to the table printed at the end of the run (fault, tries, lost, duplicated, time to
recover), which docs/reliability.md quotes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import select

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import dispose_all, engine_for
from pelbiot_jobs.db.ops_models import job_runs
from pelbiot_jobs.runtime.app import configure
from pelbiot_jobs.runtime.headers import publishing
from tests.conftest import ROOT, PrivateRedis, clean_environ, service_env

from .fault_tasks import fault_log, metadata

#: The visibility timeout the fault tests run with (the default is 120 s; 20 s keeps the suite short).
VISIBILITY = 20
RESULTS: list[tuple[str, int, int, int, str]] = []


def record(fault: str, tries: int, lost: int, duplicated: int, recover_s: float | None) -> None:
    """A line of the table printed at the end of the run (tests/conftest.pytest_terminal_summary)."""
    RESULTS.append((fault, tries, lost, duplicated, "-" if recover_s is None else f"{recover_s:.1f} s"))


@pytest.fixture(autouse=True)
def _report_rows(request):
    """Hand this test's rows to the report, which carries them from an xdist worker to the table."""
    before = len(RESULTS)
    yield
    for row in RESULTS[before:]:
        request.node.user_properties.append(("fault", row))


@dataclass
class Stack:
    """Worker and beat processes on a private broker; the test process sends and reads the DB."""

    env: dict
    tmp: Path
    broker: PrivateRedis
    procs: list = field(default_factory=list)

    def __post_init__(self):
        self.settings = load_settings(self.env, cwd=self.tmp)
        self.app = configure(self.settings)  # points the app's connections at this test's broker
        self.redis = redis.Redis(port=self.broker.port, socket_timeout=5)
        metadata.create_all(engine_for(self.settings.ops_db_url))

    def start(self, command: str, *args: str, name: str | None = None, env: dict | None = None):
        name = name or command
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "tests.faults.main", command, *args],
                                env=self.env | {"PYTHONPATH": str(ROOT)} | (env or {}), cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log = self.tmp / f"{name}.log"
        self.procs.append(proc)
        return proc

    def worker(self, node: str = "w1", concurrency: int = 2, env: dict | None = None):
        proc = self.start("worker", "-c", str(concurrency), "-n", f"{node}@%h", name=node, env=env)
        self.wait(lambda: self.redis.keys(f"pelbiot:worker:{node}@*"), 60, f"worker {node} to start", proc)
        return proc

    def send(self, task: str, task_id: str | None = None, trigger: str = "cli", queue: str = "sampling",
             expires_s: str | None = None, **kwargs) -> str:
        task_id = task_id or str(uuid.uuid4())
        with publishing(trigger, expires_s=expires_s):
            # No result subscription: a pending result of a broker that is gone blocks this process
            # when it is collected (the backend retries its reconnect); the ops DB has the outcome.
            self.app.send_task(task, kwargs=kwargs, task_id=task_id, queue=queue, ignore_result=True)
        return task_id

    def held(self, task_ids) -> list[str]:
        """Which of ``task_ids`` the broker still has (queued, or delivered and not acknowledged)."""
        import json

        raw = list(self.redis.hvals("unacked"))
        for queue in ("sampling", "maintenance", "reports", self.settings.host_queue):
            raw += self.redis.lrange(queue, 0, -1)
        found = set()
        for item in raw:
            try:
                payload = json.loads(item)
                payload = payload[0] if isinstance(payload, list) else payload
                found.add(payload["headers"]["id"])
            except (ValueError, KeyError, TypeError, IndexError):
                continue
        return sorted(found & set(task_ids))

    def log_rows(self, key: str) -> list[dict]:
        with engine_for(self.settings.ops_db_url).connect() as conn:
            rows = conn.execute(select(fault_log).where(fault_log.c.key == key).order_by(fault_log.c.id))
            return [dict(r._mapping) for r in rows]

    def events(self, key: str, event: str) -> list[dict]:
        return [r for r in self.log_rows(key) if r["event"] == event]

    def runs(self, task_id: str) -> list[dict]:
        with engine_for(self.settings.ops_db_url).connect() as conn:
            rows = conn.execute(select(job_runs).where(job_runs.c.task_id == task_id).order_by(job_runs.c.attempt))
            return [dict(r._mapping) for r in rows]

    def wait(self, predicate, timeout: float, what: str, proc=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = predicate()
            except Exception:
                value = None
            if value:
                return value
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"waiting for {what}: the process exited ({proc.returncode}): {self.tail(proc)}")
            time.sleep(0.2)
        pytest.fail(f"gave up waiting for {what} after {timeout:.0f}s; " + " | ".join(self.tail(p) for p in self.procs))

    @staticmethod
    def tail(proc, n: int = 1500) -> str:
        try:
            return f"{proc.log.name}: ..." + proc.log.read_text(errors="replace")[-n:]
        except Exception:
            return ""

    @staticmethod
    def pool_children(proc) -> list[int]:
        return [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]

    def stop_all(self):
        for proc in self.procs:
            try:
                for pid in self.pool_children(proc):
                    os.kill(pid, signal.SIGKILL)
            except (psutil.Error, ProcessLookupError):
                pass
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(30)
        # orphans of a killed worker's process group
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def stack_env(mariadb: dict, broker: PrivateRedis, tmp_path: Path, **extra: str) -> dict:
    url = f"redis://127.0.0.1:{broker.port}/0"
    return clean_environ() | service_env(mariadb, url, tmp_path) | {
        "PELBIOT_VISIBILITY_TIMEOUT": str(VISIBILITY), "PELBIOT_LOG_LEVEL": "INFO"} | extra


@pytest.fixture(scope="session")
def fault_dbs(mariadb):
    migrate.upgrade(mariadb["ops"])
    return mariadb


@pytest.fixture
def broker(tmp_path):
    server = PrivateRedis(tmp_path)
    server.aof = True
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def stack(fault_dbs, broker, tmp_path):
    s = Stack(stack_env(fault_dbs, broker, tmp_path), tmp_path, broker)
    yield s
    s.stop_all()
    dispose_all()


def overlapping(starts_ends: list[tuple[float, float]]) -> int:
    """How many pairs of runs were alive at the same time."""
    spans = sorted(starts_ends)
    return sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
