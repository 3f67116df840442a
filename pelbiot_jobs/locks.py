"""Per-task locks in Redis: SET NX with expiry, released only by their holder.

The lock lives in the coordination Redis (the broker's, which must not evict keys). Its expiry
is above the task's hard time limit, so a worker killed with the lock held frees it in time.
"""

from __future__ import annotations

import redis

KEY_PREFIX = "pelbiot:lock:"

# Delete the key only if it still holds our token: never free someone else's lock.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def acquire(client: redis.Redis, name: str, token: str, ttl_seconds: int) -> tuple[bool, str | None]:
    """Take lock ``name`` for ``token``; return (taken, holder's token when not taken).

    A redelivered task (same id) finds its own token and goes on: the lock was its own.
    """
    key = KEY_PREFIX + name
    if client.set(key, token, nx=True, ex=ttl_seconds):
        return True, None
    holder = client.get(key)
    holder = holder.decode() if isinstance(holder, bytes) else holder
    if holder == token:
        client.expire(key, ttl_seconds)
        return True, None
    if holder is None:  # expired between SET and GET: try once more
        if client.set(key, token, nx=True, ex=ttl_seconds):
            return True, None
        holder = client.get(key)
        holder = holder.decode() if isinstance(holder, bytes) else holder
    return False, holder


def release(client: redis.Redis, name: str, token: str) -> bool:
    """Free lock ``name`` if ``token`` holds it."""
    return bool(client.eval(_RELEASE, 1, KEY_PREFIX + name, token))
