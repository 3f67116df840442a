"""``pelbiot-jobs up``: the whole pipeline on one machine, as child processes.

The children (worker, beat, Flower) run in their own sessions, so Ctrl-C reaches only this
process, which then stops them in order (beat first: nothing new is sent while the worker
drains) and finally the embedded Redis it started.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings, settings_environ
from .embedded import terminate

#: Seconds a child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0
FLOWER_USER = "admin"
CREDENTIALS_FILE = "flower-credentials"


def flower_credentials(settings: Settings) -> tuple[str, str, str] | None:
    """(user, password, where it comes from), or None when none is configured.

    The embedded default generates a password once and keeps it in ``var/`` (mode 600).
    """
    if settings.flower.user and settings.flower.password:
        return settings.flower.user, settings.flower.password, "PELBIOT_FLOWER_USER / PELBIOT_FLOWER_PASSWORD"
    if not settings.embedded_redis:
        return None
    path = settings.var_dir / CREDENTIALS_FILE
    if path.is_file():
        user, _, password = path.read_text().strip().partition(":")
        if user and password:
            return user, password, str(path)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{FLOWER_USER}:{password}\n")
    return FLOWER_USER, password, str(path)


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path | None = None


@dataclass
class Supervisor:
    settings: Settings
    children: list[Child] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")}
        env.update({k: v for k, v in os.environ.items() if k.startswith("PELBIOT_")})
        env.update(settings_environ(self.settings))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self, name: str, args: list[str], log: Path | None = None) -> Child:
        out = open(log, "ab") if log else None
        process = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", *args], env=self.env(),
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if out else None,
                                   start_new_session=True)
        if out:
            out.close()
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        for child in self.children:
            if child.process.poll() is not None:
                return child
        return None

    def stop_all(self) -> None:
        # Beat and Flower first, so nothing new is sent while the worker drains.
        for child in sorted(self.children, key=lambda c: c.name == "worker"):
            terminate(child.process, STOP_TIMEOUT)
        self.children.clear()


def new_task_id() -> str:
    return str(uuid.uuid4())
