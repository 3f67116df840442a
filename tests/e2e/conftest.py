from __future__ import annotations

import json
import subprocess
import sys

import pytest


def pj(*args, env, cwd, timeout=300):
    """Run the pelbiot-jobs command as a user would; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def status_json(env, cwd) -> dict:
    done = pj("status", "--json", env=env, cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def pj_run():
    return pj
