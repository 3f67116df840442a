"""The ledger of messages sent and not yet taken by a task: what brings back a message that a
worker took off its queue and never read.

With Redis as the broker a worker waits for work with ``BRPOP``. Redis removes the message from
the list when it answers, and kombu records it as unacknowledged only once the worker reads that
answer. A worker frozen with a ``BRPOP`` pending (SIGSTOP, a paused VM or container, a swap storm)
takes the next message into its socket and holds it there: it is in no list and in no unacked
set, so neither another worker nor the visibility timeout can see it, and if the frozen worker is
then killed the message is gone.

So every task message pelbiot-jobs publishes is also written to this ledger (the coordination
Redis, which is the broker's when the broker is Redis): its id, name, arguments, queue and
headers. A run that starts takes its entry off (``task_prerun``). A live worker's liveness thread
sweeps, at most one at a time: an entry older than the visibility timeout and a margin, whose run
has neither started nor ended, and whose message is neither on its queue nor unacknowledged (read
in one MULTI, so a message moving between the two is seen in one of them), was lost in a socket;
it is sent again with the same id and headers, and ``pelbiot_resent``. If the frozen worker wakes
after all, the run guard lets one copy run and drops the other.
"""

from __future__ import annotations

import json
import logging
import time

from celery import signals

from .keys import DONE, QUEUE_PRIORITY_SUFFIXES, SENT, SENT_INDEX, SENT_SWEEP_LOCK, STARTED

log = logging.getLogger(__name__)

#: Each entry, the index of entries by when they are due (sent, or their eta), the sweep's lock
#: (one worker at a time), and how often a worker looks (s).
ENTRY, INDEX, SWEEP_LOCK, SWEEP_EVERY = SENT, SENT_INDEX, SENT_SWEEP_LOCK, 10.0
#: An entry is looked at once it is this much older than the visibility timeout (s).
MARGIN_S = 10.0
#: Entries kept at most this long (s); larger messages are not kept (no task takes them).
ENTRY_TTL, MAX_BODY = 86400, 64 * 1024


def _settings():
    from celery import current_app

    settings = getattr(current_app, "pelbiot_settings", None)
    return settings if settings is not None and settings.broker_is_redis else None


@signals.before_task_publish.connect
def _keep(body=None, routing_key=None, headers=None, **_):
    settings = _settings()
    if settings is None or not headers or not headers.get("id"):
        return
    try:
        args, kwargs, _embed = body
        text = json.dumps({"task": headers.get("task"), "args": list(args), "kwargs": dict(kwargs),
                           "queue": routing_key, "retries": headers.get("retries") or 0,
                           "eta": headers.get("eta"),
                           "headers": {k: v for k, v in headers.items() if k.startswith("pelbiot_")}}, default=str)
    except (TypeError, ValueError):
        return  # not a message of the shape pelbiot-jobs sends
    if len(text) > MAX_BODY:
        return
    due = _due(headers.get("eta"))
    try:
        from ..lib import redis_clients

        with redis_clients.coordination(settings).pipeline(transaction=False) as pipe:
            pipe.set(ENTRY + headers["id"], text, ex=ENTRY_TTL)
            pipe.zadd(INDEX, {headers["id"]: due})
            pipe.execute()
    except Exception as exc:  # the message is sent all the same; only the lost-in-a-socket case is uncovered
        log.warning("could not write the sent-message ledger: %s", type(exc).__name__)


def _due(eta) -> float:
    if eta:
        import datetime as dt

        try:
            return max(time.time(), dt.datetime.fromisoformat(str(eta)).timestamp())
        except ValueError:
            pass
    return time.time()


@signals.task_prerun.connect
def _taken(task_id=None, task=None, **_):
    """The run's message reached its task: the ledger lets go of it."""
    settings = getattr(getattr(task, "app", None), "pelbiot_settings", None)
    if settings is None or not settings.broker_is_redis or not task_id:
        return
    forget(settings, [task_id])


@signals.task_revoked.connect
def _revoked(request=None, sender=None, **_):
    """A revoked message is not lost: the ledger lets go of it (it is never sent again)."""
    settings = getattr(getattr(sender, "app", None), "pelbiot_settings", None)
    if settings is not None and settings.broker_is_redis and request is not None and request.id:
        forget(settings, [request.id])


def forget(settings, task_ids) -> None:
    from ..lib import redis_clients

    try:
        with redis_clients.coordination(settings).pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.delete(ENTRY + task_id)
                pipe.zrem(INDEX, task_id)
            pipe.execute()
    except Exception:
        pass  # an entry left behind is found started or ended by the next sweep


def _ids_in(raw_items) -> set[str]:
    ids = set()
    for raw in raw_items:
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        message = item[0] if isinstance(item, list) and item else item  # unacked holds [message, exchange, key]
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except ValueError:
                continue
        task_id = (message.get("headers") or {}).get("id") if isinstance(message, dict) else None
        if task_id:
            ids.add(task_id)
    return ids


def lost(client, visibility_timeout: float, now: float | None = None, limit: int = 200) -> list[tuple[str, dict]]:
    """The entries whose message is in no queue and in no unacked set and whose run never started
    or ended, due more than ``visibility_timeout`` + MARGIN_S ago: (task id, entry)."""
    now = time.time() if now is None else now
    old = [m.decode() if isinstance(m, bytes) else m
           for m in client.zrangebyscore(INDEX, 0, now - visibility_timeout - MARGIN_S, start=0, num=limit)]
    if not old:
        return []
    with client.pipeline(transaction=False) as pipe:
        for task_id in old:
            pipe.get(ENTRY + task_id)
            pipe.exists(STARTED + task_id, DONE + task_id)
        replies = pipe.execute()
    entries, settled = {}, []
    for task_id, raw, seen in zip(old, replies[0::2], replies[1::2]):
        entry = None
        if raw is not None and not seen:
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
        if isinstance(entry, dict) and entry.get("task") and entry.get("queue"):
            entries[task_id] = entry
        else:
            settled.append(task_id)  # ran, ended, expired from the ledger, or not ours to resend
    if settled:
        client.zrem(INDEX, *settled)
    if not entries:
        return []
    queues = sorted({e["queue"] for e in entries.values()})
    with client.pipeline(transaction=True) as pipe:  # one MULTI: a message is on a list or unacked, not neither
        for queue in queues:
            for suffix in QUEUE_PRIORITY_SUFFIXES:
                pipe.lrange(queue + suffix, 0, -1)
        pipe.hvals("unacked")
        replies = pipe.execute()
    present = _ids_in(item for reply in replies for item in reply)
    return [(task_id, entry) for task_id, entry in entries.items() if task_id not in present]


def _ended(settings, task_ids: list[str]) -> set[str]:
    """Which of ``task_ids`` the ops DB records as ended (SUCCESS, SKIPPED, or FAILURE: a revoked
    one too): a message whose run ended while Redis was down (no done mark, no ledger delete)
    reached a worker and is not lost."""
    from sqlalchemy import select

    from ..db.engine import engine_for
    from ..db.ops_models import job_runs
    from .headers import run_id

    if not task_ids:
        return set()
    by_recorded = {run_id(t): t for t in task_ids}
    c = job_runs.c
    with engine_for(settings.ops_db_url).connect() as conn:
        return {by_recorded[r] for r in conn.execute(select(c.task_id).where(
            c.task_id.in_(list(by_recorded)), c.state.in_(("SUCCESS", "SKIPPED", "FAILURE")))).scalars()}


def sweep(app, client, visibility_timeout: float) -> int:
    """Send again every message lost in a socket (``lost``), once; one worker at a time. How many."""
    if not client.set(SWEEP_LOCK, "1", nx=True, ex=int(SWEEP_EVERY * 2)):
        return 0
    found = lost(client, visibility_timeout)
    ended = _ended(app.pelbiot_settings, [task_id for task_id, _ in found]) if found else set()
    if ended:
        forget(app.pelbiot_settings, sorted(ended))
        found = [(task_id, entry) for task_id, entry in found if task_id not in ended]
    for task_id, entry in found:
        headers = dict(entry.get("headers") or {}) | {"pelbiot_resent": "1"}
        log.error("message %s[%s] was taken off queue %s by a worker that never read it (frozen, then gone?); "
                  "sending it again", entry["task"], task_id, entry["queue"])
        client.zrem(INDEX, task_id)  # the new send writes its own entry
        app.send_task(entry["task"], args=entry.get("args") or (), kwargs=entry.get("kwargs") or {},
                      task_id=task_id, queue=entry["queue"], headers=headers, retries=int(entry.get("retries") or 0))
    return len(found)
