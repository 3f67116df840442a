"""What pelbiot-jobs stamps into the headers of the messages it sends (who sent a run and why:
beat, the CLI, `up --once`, a dispatcher; when it was due; when it expires), and how a run reads them."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
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


def scheduled_header(request) -> str | None:
    """When beat meant a run to happen (its due time, as sent), or None for a run sent by hand."""
    return header(request, H_SCHEDULED)


def scheduled_at(request) -> dt.datetime | None:
    """``scheduled_header`` as a naive UTC time."""
    return parse_time(header(request, H_SCHEDULED))


def parse_time(value) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed
