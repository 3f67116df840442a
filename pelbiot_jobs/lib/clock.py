"""The one clock: naive UTC datetimes, as every ops table stores them.

Services take ``now`` as an argument; tasks and commands read it here once per run, so a test
gives a service the time it wants instead of sleeping.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, in UTC, without tzinfo (the ops tables' convention)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def as_datetime(value) -> dt.datetime:
    """A time read from an ops table: SQLite hands aggregates (MIN, MAX) back as text."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
