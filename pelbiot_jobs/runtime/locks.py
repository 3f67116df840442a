"""Leases in Redis bound to their holder's liveness: a short expiry, renewed while the holder lives.

A lease is a key holding its holder's token with an expiry of ``LEASE_TTL`` seconds. While the
holder runs, a ``Keeper`` thread renews it every ``RENEW_EVERY`` seconds; a holder killed with
SIGKILL (OOM killer, lost node) stops renewing and its lease is free within ``LEASE_TTL``. Only
the holder may renew or free a lease. If Redis restarts empty under a live holder, the next
renewal takes the key again, unless someone else took it meanwhile.

Two kinds live in the coordination Redis (the broker's, which must not evict keys):
- ``run:<task id>``: a task run is alive (see runs.PelbiotTask): a redelivered copy of a message
  whose first run is still alive waits instead of running twice;
- ``lock:<name>``: an exclusive job (one run cluster-wide at a time).
"""

from __future__ import annotations

import logging
import threading

import redis

from . import keys

KEY_PREFIX = keys.LOCK
RUN_PREFIX = keys.RUN
#: Seconds a lease outlives its holder's last renewal.
LEASE_TTL = 30
#: Seconds between renewals: three chances before the lease lapses.
RENEW_EVERY = 10

log = logging.getLogger(__name__)

# Delete the key only if it still holds our token: never free someone else's lease.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
# Renew our own lease; take it again if it vanished (an empty Redis restart); 0 if another holds it.
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] or not holder then
    redis.call('set', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
    return 1
end
return 0
"""


# Take a lease from a holder known to be dead: only if that holder still has it.
_TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[2] then
    redis.call('set', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
    return 1
end
return 0
"""


def run_token(host: str) -> str:
    """A run's token: its host, its process id and a random part (``host:pid:random``)."""
    import os
    import uuid

    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dead_on_this_host(token: str | None, host: str) -> bool:
    """True when ``token`` is a run token of a process of this host that no longer exists.

    A pool process killed by the OOM killer leaves its lease behind; the next run of its task on
    the same host need not wait for the lease to lapse.
    """
    import os

    if not token or token.count(":") < 2:
        return False
    holder_host, pid, _ = token.rsplit(":", 2)
    if holder_host != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take_over(client: redis.Redis, name: str, token: str, dead: str, ttl_seconds: int = LEASE_TTL,
              prefix: str = KEY_PREFIX) -> bool:
    return bool(client.eval(_TAKE_OVER, 1, prefix + name, token, dead, int(ttl_seconds)))


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def acquire(client: redis.Redis, name: str, token: str, ttl_seconds: int = LEASE_TTL,
            prefix: str = KEY_PREFIX) -> tuple[bool, str | None]:
    """Take lease ``name`` for ``token``; return (taken, holder's token when not taken).

    A holder finding its own token (a redelivered message of the same task) goes on.
    """
    if renew(client, name, token, ttl_seconds, prefix):
        return True, None
    return False, _text(client.get(prefix + name))


def renew(client: redis.Redis, name: str, token: str, ttl_seconds: int = LEASE_TTL,
          prefix: str = KEY_PREFIX) -> bool:
    return bool(client.eval(_RENEW, 1, prefix + name, token, int(ttl_seconds)))


def release(client: redis.Redis, name: str, token: str, prefix: str = KEY_PREFIX) -> bool:
    """Free lease ``name`` if ``token`` holds it."""
    return bool(client.eval(_RELEASE, 1, prefix + name, token))


class Keeper:
    """A daemon thread renewing a set of leases until ``stop()``.

    A renewal that fails (Redis down) is tried again at the next turn; a lease another holder took
    is reported once in the log and no longer renewed.
    """

    def __init__(self, client: redis.Redis, leases: list[tuple[str, str, str]],
                 every: float = RENEW_EVERY, ttl: int = LEASE_TTL):
        self.client, self.leases, self.every, self.ttl = client, list(leases), every, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pelbiot-lease-keeper", daemon=True)

    def start(self) -> "Keeper":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for prefix, name, token in list(self.leases):
                try:
                    if not renew(self.client, name, token, self.ttl, prefix):
                        self.leases.remove((prefix, name, token))
                        log.error("lease %s%s was taken by another holder while this run was alive", prefix, name)
                except redis.RedisError as exc:
                    log.warning("could not renew lease %s%s (will try again): %s", prefix, name,
                                type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
