"""`pelbiot-jobs up` on the embedded default in a temporary folder, for the benches that need a
running stack (memory.py, status.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def running_up(*up_args: str, env: dict | None = None):
    """Start `pelbiot-jobs up UP_ARGS` in a fresh folder, wait for its banner; yield (process, folder,
    environment); stop it (Ctrl-C, as a user would) after."""
    home = Path(tempfile.mkdtemp(prefix="pelbiot-bench-"))
    ports = {"PELBIOT_FLOWER_PORT": str(15555 + os.getpid() % 1000), "PELBIOT_WEB_PORT": str(18088 + os.getpid() % 1000)}
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")} | ports | (env or {})
    log_path = home / "up.log"
    with log_path.open("w") as log:
        up = subprocess.Popen([str(BIN / "pelbiot-jobs"), "up", *up_args], env=environ, cwd=home, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 180
            while "is up" not in log_path.read_text():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("pelbiot-jobs up did not come up:\n" + log_path.read_text()[-3000:])
                time.sleep(1)
            yield up, home, environ
        finally:
            os.killpg(up.pid, signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
