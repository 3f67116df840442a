"""What pelbiot-jobs stamps into the headers of the messages it sends (who sent a run and why:
beat, the CLI, `up --once`, a dispatcher; when it was due; when it expires), and how a run reads them."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import re
from typing import Any

from celery import signals

#: Header names this project stamps on the messages it sends.
H_TRIGGER, H_JOB, H_SCHEDULED = "pelbiot_trigger", "pelbiot_job", "pelbiot_scheduled_at"
H_SENT, H_EXPIRES = "pelbiot_sent_at", "pelbiot_expires_s"
_publish_headers: contextvars.ContextVar[dict | None] = contextvars.ContextVar("pelbiot_publish", default=None)


@contextlib.contextmanager
def publishing(trigger: str, **extra: str):
    """Stamp every message sent inside the block with its trigger (beat, cli, once...)."""
    token = _publish_headers.set({H_TRIGGER: trigger, **{f"pelbiot_{k}": v for k, v in extra.items() if v}})
    try:
        yield
    finally:
        _publish_headers.reset(token)


@signals.before_task_publish.connect
def _stamp_headers(headers=None, **_):
    stamp = _publish_headers.get()
    if headers is not None:
        headers.setdefault(H_SENT, dt.datetime.now(dt.timezone.utc).isoformat())
        if stamp:
            headers.update(stamp)


def header(request, name: str) -> Any:
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


#: The triggers a run is recorded with; a header naming another came from outside (Flower's API, any
#: broker client) and is recorded as "manual".
TRIGGERS = frozenset({"beat", "late", "cli", "once", "dispatch", "manual", "local", "api", "web"})
#: What a task id, a job or a queue name recorded from a message may look like (the job-run columns
#: hold 64 and 100 characters).
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}")
#: A due time further than this from now is not one beat sent.
_SCHEDULED_SPAN = dt.timedelta(days=366)


def run_id(task_id) -> str:
    """The id a run is recorded under: the message's own when it is a plain id of at most 64
    characters (every id Celery, beat and the CLI make), else ``x-`` and a digest of it, the same
    for every event of that run. A message from outside never makes its row unwritable."""
    text = "" if task_id is None else str(task_id)
    if _PLAIN_ID.fullmatch(text):
        return text
    return "x-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def plain_name(value) -> str | None:
    """A job or queue name from a message as recorded: None unless it is a plain name of at most 100."""
    return value if isinstance(value, str) and _PLAIN_NAME.fullmatch(value) else None


def trigger_of(request, default: str = "manual") -> str:
    """Who sent a run, from its header; anything but a known trigger is ``default``."""
    value = header(request, H_TRIGGER)
    return value if isinstance(value, str) and value in TRIGGERS else default


def job_of(request) -> str | None:
    return plain_name(header(request, H_JOB))


def scheduled_of(request, now: dt.datetime | None = None) -> dt.datetime | None:
    """``scheduled_at`` as recorded: None when it is not a time within a year of now."""
    when = parse_time(header(request, H_SCHEDULED))
    if when is None:
        return None
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return when if abs(when - now) <= _SCHEDULED_SPAN else None


def scheduled_header(request) -> str | None:
    """When beat meant a run to happen (its due time, as sent), or None for a run sent by hand."""
    return header(request, H_SCHEDULED)


def scheduled_at(request) -> dt.datetime | None:
    """``scheduled_header`` as a naive UTC time."""
    return parse_time(header(request, H_SCHEDULED))


def parse_time(value) -> dt.datetime | None:
    if not value or not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed
