"""Engines, one per URL and process.

Celery's prefork pool forks workers after start-up; a connection pool inherited across fork is
shared by two processes and corrupts both. Engines are therefore cached per process id.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

#: How long SQLite waits for another writer before "database is locked" (ms).
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Seconds before a pooled MySQL connection is replaced; below the server's wait_timeout.
MYSQL_POOL_RECYCLE = 1800
#: A statement that hangs on a dead network fails instead of holding a worker forever.
MYSQL_READ_TIMEOUT = 300

_engines: dict[tuple[int, str], Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine with the settings this project relies on (UTC, timeouts, pragmas)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=MYSQL_POOL_RECYCLE,
        connect_args={"charset": "utf8mb4", "connect_timeout": 10, "read_timeout": MYSQL_READ_TIMEOUT,
                      "init_command": "SET time_zone = '+00:00'"},
    )


def engine_for(url: str) -> Engine:
    """The engine of ``url`` for this process, created on first use."""
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = make_engine(url)
    return engine


def dispose_all() -> None:
    """Close every pool of this process (tests, shutdown)."""
    with _lock:
        for (pid, _url), engine in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
        _engines.clear()


def time_bucket(engine: Engine, column, step_s: int):
    """An SQL expression numbering ``step_s``-second buckets of a datetime ``column``, on
    MySQL/MariaDB (TO_SECONDS DIV step: a third of TIMESTAMPDIFF's cost per row) and SQLite:
    charts are bucketed in the database, not sent a day of rows to thin out."""
    from sqlalchemy import Integer, cast, func, literal

    step = literal(max(1, int(step_s)))
    if engine.dialect.name in ("mysql", "mariadb"):
        return func.to_seconds(column).op("DIV")(step).label("bucket")
    return func.floor(cast((func.julianday(column) - 2451544.5) * 86400, Integer) / step).label("bucket")


#: TO_SECONDS() of 0001-01-01 (MySQL counts from a year 0 Python has not) and the SQLite origin.
_TO_SECONDS_AT_YEAR_1, _SQLITE_ORIGIN = 31_622_400, dt.datetime(2000, 1, 1)


def bucket_start(engine: Engine, bucket: int, step_s: int) -> dt.datetime:
    """When bucket number ``bucket`` of time_bucket(engine, ..., step_s) starts: read as a number,
    a chart's bucket costs the client no datetime to parse."""
    seconds = int(bucket) * max(1, int(step_s))
    if engine.dialect.name in ("mysql", "mariadb"):
        return dt.datetime(1, 1, 1) + dt.timedelta(seconds=seconds - _TO_SECONDS_AT_YEAR_1)
    return _SQLITE_ORIGIN + dt.timedelta(seconds=seconds)


def bucket_step(window_s: float, points: int, floor_s: int = 1) -> int:
    """The bucket width (s) that cuts a window into at most ``points`` buckets wherever it starts
    (a window not aligned to the buckets touches one more than its width holds)."""
    import math

    return max(floor_s, math.ceil(window_s / max(1, points - 1)))
