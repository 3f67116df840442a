"""Beat schedulers that stamp each message with the job that sent it and when it was due.

``RedBeatScheduler`` keeps the schedule and a lock in Redis: a second beat stands by instead of
firing duplicates, and takes over when the first one's lock expires. ``FileScheduler`` is for a
non-Redis broker (RabbitMQ), where only one beat may run.
"""

from __future__ import annotations

import datetime as dt

from celery.beat import PersistentScheduler
from redbeat import RedBeatScheduler as _RedBeatScheduler

from .runs import publishing


def _due_iso(entry) -> str:
    due = getattr(entry, "due_at", None)
    if due is None:
        last = entry.last_run_at or entry.default_now()
        due = last + dt.timedelta(seconds=max(0.0, entry.schedule.remaining_estimate(last).total_seconds()))
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.timezone.utc)
    return due.astimezone(dt.timezone.utc).isoformat()


class _Stamping:
    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        with publishing("beat", job=entry.name, scheduled_at=_due_iso(entry)):
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)


class RedBeatScheduler(_Stamping, _RedBeatScheduler):
    pass


class FileScheduler(_Stamping, PersistentScheduler):
    pass
