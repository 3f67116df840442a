"""What workers leave in the coordination Redis for everyone else to read, without Celery:
their heartbeats (liveness.py writes them every 5 s; they also say which hosts take host-local
work) and the messages they moved aside as dead
letters (broker.py); and beat's (RedBeat's) entries. ``status`` and ``workers`` read them in one
round trip each.
"""

from __future__ import annotations

import json

from . import keys

#: A live worker's record: pelbiot:worker:<node name>, refreshed every 5 s, gone after the TTL.
WORKER_KEY = keys.WORKER
HEARTBEAT_TTL = 60
#: The dead-letter list, newest first, at most MAX_DEAD_LETTERS long.
DEAD_LETTERS = keys.DEAD_LETTERS
MAX_DEAD_LETTERS = 1000
#: RedBeat's entries (one hash per job, with when it last sent it) and its lock.
REDBEAT_KEY_PREFIX = keys.REDBEAT


def workers(client) -> list[dict]:
    """The heartbeats of live workers, by node name."""
    out = []
    for key in client.scan_iter(WORKER_KEY + "*", count=200):
        raw = client.get(key)
        if raw:
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
    return sorted(out, key=lambda w: w.get("node", ""))


#: A host whose worker has not written a heartbeat for this long (s) is down: it gets no host sample.
HOST_TIMEOUT = 45.0


def live_hosts(client, now: float | None = None, timeout: float = HOST_TIMEOUT) -> list[str]:
    """The hosts whose worker consumes its host queue (``host.<name>``) and wrote its heartbeat
    within ``timeout``: where host-local work (metrics.sample_host) may be sent. One record per
    worker says both that it is alive and where it takes work; there is no second registry."""
    import time

    now = time.time() if now is None else now
    return sorted({w["host"] for w in workers(client)
                   if isinstance(w.get("host"), str) and f"host.{w['host']}" in (w.get("queues") or [])
                   and now - float(w.get("heartbeat") or 0) <= timeout})


def dead_letters(client, limit: int = 20) -> tuple[int, list[dict]]:
    """(how many are kept, the newest ``limit``)."""
    count = client.llen(DEAD_LETTERS)
    return count, [_dead_record(raw) for raw in client.lrange(DEAD_LETTERS, 0, limit - 1)]


def _dead_record(raw) -> dict:
    """A kept dead letter as the faces show it, whatever another client pushed on the list: the
    fields pelbiot-jobs writes, each of its own type, "?" where it is missing or not of that type."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict):
        return {"at": None, "queue": "?", "reason": "not a record pelbiot-jobs wrote", "size": len(raw),
                "message": ""}
    at, size = record.get("at"), record.get("size")
    return {"at": at if isinstance(at, (int, float)) and not isinstance(at, bool) else None,
            "queue": _text(record.get("queue"), 200), "reason": _text(record.get("reason"), 500),
            "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
            "message": _text(record.get("message"), 4096, missing="")}


def _text(value, limit: int, missing: str = "?") -> str:
    return value[:limit] if isinstance(value, str) else missing
