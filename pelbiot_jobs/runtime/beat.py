"""Beat schedulers that stamp each message with the job that sent it and when it was due.

``RedBeatScheduler`` keeps the schedule and a lock in Redis: a second beat stands by instead of
firing duplicates, and takes over when the first one's lock expires. ``FileScheduler`` is for a
non-Redis broker (RabbitMQ), where only one beat may run.
"""

from __future__ import annotations

import datetime as dt
import logging

import redis
from celery.beat import PersistentScheduler
from redbeat import RedBeatScheduler as _RedBeatScheduler
from redis.exceptions import LockError

from .headers import publishing

log = logging.getLogger(__name__)


def _due_iso(entry) -> str:
    due = getattr(entry, "due_at", None)
    if due is None:
        last = entry.last_run_at or entry.default_now()
        due = last + dt.timedelta(seconds=max(0.0, entry.schedule.remaining_estimate(last).total_seconds()))
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.timezone.utc)
    return due.astimezone(dt.timezone.utc).isoformat()


#: A slot passed by more than this when beat sends it was missed (beat or the broker was down),
#: not merely picked up at the next wake-up (beat wakes at least every BEAT_MAX_LOOP_INTERVAL).
LATE_AFTER_S = 4.0


def missed_slot(entry, now: dt.datetime | None = None) -> tuple[dt.datetime, float, int] | None:
    """(the latest slot of ``entry`` at or before now, seconds since it, slots missed) when beat
    sends the entry after it missed slots (an outage of beat or the broker), else None. For an
    interval the latest slot is on the entry's own grid; for a crontab, the one it was due at."""
    last = entry.last_run_at
    if last is None:
        return None
    delta = entry.schedule.remaining_estimate(last)  # from now to the slot after last (negative: passed)
    if delta is None:
        return None
    now = now or entry.default_now()
    slot = now + delta
    late = (now - slot).total_seconds()
    if late <= LATE_AFTER_S:
        return None
    every = getattr(entry.schedule, "run_every", None)
    missed = 1
    if every is not None and every.total_seconds() > 0:
        steps = int(late // every.total_seconds())
        slot, missed = slot + steps * every, steps + 1
    return slot, (now - slot).total_seconds(), missed


class _Stamping:
    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        expires = (self.app.conf.get("pelbiot_job_expiries") or {}).get(entry.name)
        late = missed_slot(entry)
        trigger, due = "beat", _due_iso(entry)
        if late is not None:  # sent once, for the latest slot, marked late; a backlog is not replayed
            slot, behind, missed = late
            trigger, due = "late", slot.astimezone(dt.timezone.utc).isoformat()
            expires = expires + behind if expires else None  # counted from now, not from the slot
            log.warning("beat: %s missed %d slot%s (beat or the broker was down); sending the latest, of %s, "
                        "once, marked late", entry.name, missed, "s" if missed != 1 else "", due)
        with publishing(trigger, job=entry.name, scheduled_at=due, expires_s=f"{expires:g}" if expires else None):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)


class RedBeatScheduler(_Stamping, _RedBeatScheduler):
    """RedBeat that rides out a broker outage instead of exiting.

    RedBeat extends its lock at every tick; when Redis does not answer, the extension raises and
    beat exits. Here a tick that cannot reach Redis logs one line and tries again a few seconds
    later. A beat whose lock lapsed meanwhile (another beat took over, or Redis restarted empty)
    stands by and takes the lock again when it is free; after an empty restart it writes the
    schedule back (the jobs' definitions live in beat.yaml, not only in Redis).
    """

    def tick(self, min=min, **kwargs):
        try:
            if self.lock_key and self.lock is None:
                if not self._take_lock():
                    return self.max_interval  # standing by
            interval = super().tick(min=min, **kwargs)
            if self._cut_off:
                log.warning("beat: the broker answers again; sending due jobs")
                self._cut_off = False
            return interval
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if not self._cut_off:
                log.warning("beat: the broker does not answer (%s); retrying every %ss", type(exc).__name__,
                            self.max_interval)
            self._cut_off = True
            return self.max_interval
        except LockError:
            log.warning("beat: lost the schedule lock while cut off (another beat may have taken over); "
                        "standing by")
            self.lock = None
            return self.max_interval

    _cut_off = False

    def _take_lock(self) -> bool:
        from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, get_redis

        client = get_redis(self.app)
        lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        if not lock.acquire(blocking=False):
            return False
        self.lock = lock
        if not client.exists(self.app.redbeat_conf.schedule_key):
            log.warning("beat: the schedule was gone from Redis (restarted empty?); writing it back")
            self.setup_schedule()
        log.warning("beat: took the schedule lock; sending due jobs" + (" again" if self._cut_off else ""))
        self._cut_off = False
        return True


class FileScheduler(_Stamping, PersistentScheduler):
    pass
