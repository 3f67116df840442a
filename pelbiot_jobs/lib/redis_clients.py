"""Redis clients, one per URL and process (a forked pool process makes its own).

The coordination Redis holds leases, heartbeats and dead letters (the broker's Redis, or
PELBIOT_LOCK_REDIS_URL); the cache Redis is the one the PELBIOT API reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_clients: dict[tuple[int, str, str], Any] = {}

#: Options per role: locks may wait longer than a cache read.
_OPTIONS = {
    "coordination": {"socket_timeout": 10, "socket_connect_timeout": 5, "health_check_interval": 30},
    "cache": {"socket_timeout": 5, "socket_connect_timeout": 3},
}


def client(url: str, role: str = "cache"):
    """The client of ``url`` for this process (created on first use)."""
    import redis

    key = (os.getpid(), role, url)
    found = _clients.get(key)
    if found is None:
        found = _clients[key] = redis.Redis.from_url(url, **_OPTIONS[role])
    return found


def coordination(settings):
    """Leases, heartbeats, run history and dead letters."""
    return client(settings.coordination_redis_url, "coordination")


def cache(settings, url: str | None = None):
    """The cache Redis the API reads (or another Redis of the same kind, e.g. the request stream's)."""
    return client(url or settings.cache_redis_url, "cache")


def answers(socket_path: Path) -> bool:
    """Tell whether a Redis server answers PING on ``socket_path`` (one round trip, no client library)."""
    import socket

    if not socket_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
