"""`pelbiot-jobs up` starts a child that died again, with backoff, instead of stopping everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from tests.conftest import ROOT, free_port

from .conftest import record, stack_env


def _children(proc, word: str) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(proc.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and word in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # gone, or a zombie `up` has not reaped yet
            continue
    return found


def test_up_starts_a_killed_beat_again_and_stops_cleanly(fault_dbs, fresh_mysql_db, broker, tmp_path):
    dbs = {"app": fresh_mysql_db(), "ops": fault_dbs["ops"]}
    env = stack_env(dbs, broker, tmp_path, PELBIOT_WEB_USER="ops", PELBIOT_WEB_PASSWORD="web-test-pw",
                    PELBIOT_WEB_PORT=str(free_port()))
    out = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "up", "--no-flower"], env=env, cwd=ROOT,
                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    log = tmp_path / "up.log"

    def wait(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            assert up.poll() is None, f"up exited while waiting for {what}: {log.read_text()[-1500:]}"
            time.sleep(0.2)
        raise AssertionError(f"gave up waiting for {what}: {log.read_text()[-1500:]}")

    try:
        wait(lambda: "pelbiot-jobs is up" in log.read_text(), 90, "the banner")
        # The banner comes once the worker answers: its heartbeat is there.
        listed = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "workers", "--json"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and '"node": "pelbiot@' in listed.stdout, listed.stdout + listed.stderr
        # Celery's banners and INFO lines go to var/log/up.log; the terminal keeps the banner.
        terminal, processes = log.read_text(), (tmp_path / "var" / "log" / "up.log").read_text()
        assert "[tasks]" in processes and "[tasks]" not in terminal and "INFO" not in terminal
        assert f"the processes' output: {tmp_path / 'var' / 'log' / 'up.log'} (-v shows it here)" in terminal
        beat = wait(lambda: _children(up, " beat"), 30, "the beat child")[0]
        worker = _children(up, " worker")[0]
        web = wait(lambda: _children(up, " web"), 30, "the web child")[0]
        beat.kill()
        killed = time.monotonic()
        fresh = wait(lambda: [c for c in _children(up, " beat") if c.pid != beat.pid], 30, "a new beat")[0]
        recovered = time.monotonic() - killed
        text = log.read_text()
        assert "beat exited with code -9; starting it again in 1s" in text and "beat started again" in text
        assert worker.is_running() and fresh.is_running() and web.is_running()  # the others were left alone
        os.killpg(up.pid, signal.SIGTERM)
        assert up.wait(90) == 0, log.read_text()[-1500:]
        assert not fresh.is_running() and not worker.is_running() and not web.is_running()
        record("`up`: kill -9 of its beat child (started again, nothing else stopped)", 1, 0, 0, recovered)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
