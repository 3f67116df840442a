"""The slow-query services: the scheduled digest into the ops DB, and the offline digest of files.
What the queries.analyze task, the CLI and the web view call.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from ..lib.clock import as_datetime, utcnow
from ..lib.errors import InputError, NotFound
from .slowlog import MAX_SLOWLOG_LINE


def analyze(settings, source: str | None = None, path: str | None = None, now: dt.datetime | None = None) -> dict:
    """Digest the slow-query events that are new since the last run (file, table or performance_schema)."""
    from ..db.engine import engine_for
    from ..lib.outcome import is_skipped, skipped
    from ..runtime.params import allowed_slow_log
    from .analyze import analyze as run

    source = source or settings.slowlog_source
    if source == "off":
        return skipped("PELBIOT_SLOWLOG_SOURCE=off")
    if path is not None:  # a caller may only name the configured log or a file in the configured folder
        path = allowed_slow_log(path, settings.slow_log, settings.slow_log_dir)
    path = path or (str(settings.slow_log) if settings.slow_log else None)
    if source == "auto" and path:
        source = "file"
    result = run(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), now or utcnow(), source, path,
                 mask=not settings.show_query_literals, slow_s=settings.slow_threshold_ms / 1000.0)
    if is_skipped(result):
        return skipped(result["reason"])
    return result


def slow_log_input(name: str) -> Path:
    """A file the offline digest may read, or InputError in one line saying why not."""
    path = Path(name)
    if path.is_dir():
        raise InputError(f"{name}: is a directory; name slow-log files")
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{name}: cannot read the file (permission denied)")
    if not name.endswith(".gz"):
        with path.open("rb") as fh:  # one cheap pass (memchr): a file without line breaks is not a log
            run = 0
            while chunk := fh.read(8 << 20):
                first = chunk.find(b"\n")
                if first == -1:
                    run += len(chunk)
                elif run + first > MAX_SLOWLOG_LINE:
                    run += first
                else:  # lines inside one chunk are shorter than the chunk, itself below the limit
                    run = len(chunk) - chunk.rfind(b"\n") - 1
                if run > MAX_SLOWLOG_LINE:
                    raise InputError(f"{name}: a line is longer than {MAX_SLOWLOG_LINE >> 20} MB; not a slow log")
    return path


def digest_logs(paths: list[Path], workers: int | None = None, since: float | None = None, progress=None):
    """Digest slow-log files (no database), turning a damaged file (truncated or fake .gz, a read
    error) into one line."""
    import gzip
    import zlib

    from .digest import digest_files

    try:
        return digest_files(paths, workers=workers, since=since, progress=progress)
    except (EOFError, gzip.BadGzipFile, zlib.error, UnicodeError, OSError) as exc:
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"{names}: not a readable slow log ({type(exc).__name__}: {' '.join(str(exc).split())})") from None


def render_digest(digest, limit: int | None, show_literals: bool, fmt: str, title: str = "",
                  explain_url: str | None = None) -> tuple[dict, str]:
    """The summary of a digest and its text in ``fmt`` (text, json, csv, html); with
    ``explain_url``, the EXPLAIN of the EXPLAIN_TOP classes with the most total time on that
    database (each example proven a plain read first, as queries.analyze does)."""
    from .digest import summarize
    from .report import render

    summary = summarize(digest, limit=limit, mask_example=not show_literals)
    if explain_url:
        explain_top(summary, summarize(digest, limit=EXPLAIN_TOP, mask_example=False), explain_url)
    return summary, render(summary, fmt, title, masked=not show_literals)


#: Classes the offline digest EXPLAINs when given a database.
EXPLAIN_TOP = 10


def explain_top(summary: dict, raw: dict, url: str) -> None:
    """Add ``explain``, ``explain_flags`` or ``explain_note`` to the top classes of ``summary``;
    ``raw`` is the same summary with the literals kept (what EXPLAIN needs)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from ..db.engine import engine_for
    from ..lib.errors import one_line
    from .analyze import explain

    try:
        password = make_url(url).password
    except ArgumentError:
        raise InputError("--explain: not a database URL (a SQLAlchemy URL, as PELBIOT_APP_DB_URL takes)") from None
    secrets = [str(password)] if password else []
    engine = engine_for(url)
    by_id = {c["checksum"]: c for c in summary["classes"]}
    for c in raw["classes"]:
        target = by_id.get(c["checksum"])
        if target is None:
            continue
        db = next(iter(c["databases"]), None)
        try:
            result = explain(engine, c["example"]["query"].encode(), db)
        except SQLAlchemyError as exc:
            raise InputError(f"--explain: cannot EXPLAIN on that database: {one_line(exc, secrets)}") from None
        if result is None:
            target["explain_note"] = "not a read, or of another database than the one given"
            continue
        target["explain"], target["explain_flags"] = result


#: A trend needs a fifth of the window before to be in the stored history, and the class to have
#: run this many times in it; otherwise the class is "new" to the comparison.
MIN_COVER = 0.2
MIN_CALLS_COMPARED = 10


#: How the stored digests may be sorted, and by what.
SORTS = {"total": "time_s", "p95": "p95_s", "calls": "calls"}


def stored(settings, window_s: float = 86400, sort: str = "total", limit: int = 50,
           now: dt.datetime | None = None, host: str | None = None, source: str | None = None) -> list[dict]:
    """The stored digests of the window, one row per source and query ID: calls, total time, share,
    worst p95, rows examined per row sent, EXPLAIN flags, and the trend: total time and calls in the
    window of the same length before (None when the class was not seen then, or too little of that
    window is in the stored history to compare); sorted by ``sort``
    (total, p95, calls). ``host``: only classes with events from that client host; ``source``:
    file, table or performance_schema."""
    from sqlalchemy import func, select

    from ..db.engine import engine_for
    from ..db.ops_models import query_digests

    if sort not in SORTS:
        raise InputError(f"sort {sort!r}: use one of {', '.join(SORTS)}")
    q = query_digests.c
    now = now or utcnow()
    since, before = now - dt.timedelta(seconds=window_s), now - dt.timedelta(seconds=2 * window_s)

    def summed(start, end):
        query = (select(q.source, q.query_id, func.max(q.fingerprint).label("fingerprint"),
                        func.sum(q.calls).label("calls"), func.sum(q.query_time_sum).label("time_s"),
                        func.max(q.query_time_p95).label("p95_s"), func.sum(q.rows_examined_sum).label("examined"),
                        func.sum(q.rows_sent_sum).label("sent"), func.max(q.explain_flags).label("flags"),
                        func.max(q.slow).label("slow"), func.max(q.last_seen).label("last_seen"))
                 .where(q.window_start >= start, q.window_start < end).group_by(q.source, q.query_id))
        if host:
            escaped = json.dumps(host).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(q.hosts.like(f"%{escaped}:%", escape="\\"))
        if source:
            query = query.where(q.source == source)
        return [dict(r) for r in conn.execute(query).mappings()]

    with engine_for(settings.ops_db_url).connect() as conn:
        rows = summed(since, now + dt.timedelta(hours=1))
        oldest = conn.execute(select(func.min(q.window_start))).scalar()
        # The window before is compared only when the stored history covers most of it, and a class
        # only when it ran there at all: a week against the day the history began is "new", not +21,000 %.
        covered = oldest is not None and \
            as_datetime(oldest) <= before + dt.timedelta(seconds=window_s * (1 - MIN_COVER))
        earlier = {(r["source"], r["query_id"]): r for r in summed(before, since)
                   if (r["calls"] or 0) >= MIN_CALLS_COMPARED} if covered else {}
    total = sum(r["time_s"] or 0 for r in rows) or 1.0
    for r in rows:
        r["share_percent"] = round(100.0 * (r["time_s"] or 0) / total, 1)
        r["examined_per_sent"] = round(r["examined"] / r["sent"], 1) if r["sent"] else None
        prev = earlier.get((r["source"], r["query_id"]))
        r["previous_time_s"] = prev["time_s"] if prev else None
        r["previous_calls"] = prev["calls"] if prev else None
        r["trend_percent"] = (round(100.0 * ((r["time_s"] or 0) - prev["time_s"]) / prev["time_s"], 1)
                              if prev and prev["time_s"] else None)
    rows.sort(key=lambda r: r[SORTS[sort]] or 0, reverse=True)
    return rows[:limit]


def resolve_query_id(settings, prefix: str) -> str:
    """The stored query ID that starts with ``prefix`` (a 0x prefix and case do not matter), or
    InputError naming the problem (none, or several)."""
    import re

    from sqlalchemy import select

    from ..db.engine import engine_for
    from ..db.ops_models import query_digests

    wanted = prefix.upper().removeprefix("0X")
    if not re.fullmatch(r"[0-9A-F]{4,32}", wanted):
        raise InputError(f"{prefix!r}: a query ID is hexadecimal (at least 4 digits), e.g. 55EAF920E0E331BA")
    q = query_digests.c
    with engine_for(settings.ops_db_url).connect() as conn:
        found = conn.execute(select(q.query_id).where(q.query_id.like(wanted + "%")).distinct().limit(5)).scalars().all()
    if not found:
        raise NotFound(f"no stored digest of a query whose ID starts with {wanted} (`pelbiot-jobs queries` lists them)")
    if len(found) > 1:
        raise InputError(f"{wanted} starts several query IDs ({', '.join(found)}): give more of it")
    return found[0]


def digest_history(settings, query_id: str) -> dict:
    """One query class: its hourly windows (newest first), example, EXPLAIN rows and flags."""
    import json

    from sqlalchemy import select

    from ..db.engine import engine_for
    from ..db.ops_models import query_digests

    q = query_digests.c
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = [dict(r) for r in conn.execute(select(query_digests).where(q.query_id == query_id)
                                              .order_by(q.window_start.desc()).limit(500)).mappings()]
    if not rows:
        raise NotFound(f"no stored digest of query {query_id!r}")
    latest = rows[0]
    explained = next((r for r in rows if r["explain"]), None)
    from ..db.ops_models import index_changes

    c = index_changes.c
    with engine_for(settings.ops_db_url).connect() as conn:  # the advisor names the query in its reason
        indexes = [dict(r) for r in conn.execute(
            select(c.started_at, c.outcome, c.table_name, c.index_name, c.statement, c.reason, c.explain_rows_before,
                   c.explain_rows_after, c.latency_ms_before, c.latency_ms_after)
            .where(c.reason.like(f"%(query {query_id[:16]})%")).order_by(c.started_at.desc()).limit(20)).mappings()]
    suggestions = []
    try:
        from ..indexes.service import suggestions_for

        suggestions = suggestions_for(settings, query_id)
    except Exception as exc:  # the app DB may be away: the history still shows
        from ..lib.errors import one_line

        suggestions = [{"problem": one_line(exc, settings.secrets())}]
    return {"query_id": query_id, "indexes": indexes, "suggestions": suggestions,
            "fingerprint": latest["fingerprint"], "example": latest["example"],
            "explain": json.loads(explained["explain"]) if explained else None,
            "explain_flags": explained["explain_flags"] if explained else None,
            "windows": [{k: r[k] for k in ("source", "window_start", "calls", "query_time_sum", "query_time_p95",
                                           "rows_examined_sum", "rows_sent_sum")} for r in rows]}
