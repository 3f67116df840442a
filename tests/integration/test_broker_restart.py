"""The broker restarts under a running worker: nothing sent after it is back is lost."""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import clean_environ, service_env
from tests.e2e.conftest import pj


def test_worker_survives_a_broker_restart(mariadb, private_redis, tmp_path):
    """A real worker process; the task is sent by `pelbiot-jobs run --wait` as an operator would."""
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    env = clean_environ() | service_env(mariadb, url, tmp_path)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "worker", "-c", "1"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        before = pj("run", "db.table_stats", "--wait", "--timeout", "60", env=env, cwd=tmp_path, timeout=120)
        assert before.returncode == 0, before.stdout + before.stderr

        private_redis.stop()
        time.sleep(2)
        private_redis.start()  # an empty broker: what a restart without persistence looks like

        after = pj("run", "db.table_stats", "--wait", "--timeout", "90", env=env, cwd=tmp_path, timeout=150)
        assert after.returncode == 0, after.stdout + after.stderr + (tmp_path / "worker.log").read_text()
        assert worker.poll() is None  # the worker rode it out
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
