"""The slow-query services: the scheduled digest into the ops DB, and the offline digest of files.
What the queries.analyze task, the CLI and the web view call.
"""

from __future__ import annotations

import datetime as dt
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
        with path.open("rb") as fh:  # one cheap read (memchr): a file that does not start with a line is not a log
            head = fh.read(MAX_SLOWLOG_LINE + 1)
        if len(head) > MAX_SLOWLOG_LINE and b"\n" not in head:
            raise InputError(f"{name}: its first line is longer than {MAX_SLOWLOG_LINE >> 20} MB; not a slow log")
    return path


def digest_logs(paths: list[Path], workers: int | None = None, since: float | None = None, progress=None,
                use: str | None = None):
    """Digest slow-log files (no database), turning a damaged file (truncated or fake .gz, a read
    error) into one line."""
    import gzip
    import zlib

    from .digest import digest_files

    try:
        return digest_files(paths, workers=workers, since=since, progress=progress, use=use)
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


#: What the stored digests may be grouped by (``tag:NAME`` too) and filtered on.
BY = ("user", "host", "schema")
_DIMENSION = {"user": "user_name", "host": "client_host", "schema": "schema_name"}
#: The label of a slice that does not say (performance_schema has no user or host; a query
#: without the tag).
UNKNOWN = "(unknown)"
UNTAGGED = "(untagged)"


def check_by(by: str) -> str | None:
    """``by`` as given when it is user, host, schema or tag:NAME; InputError in one line if not."""
    from .tags import valid_name

    if by in BY:
        return None
    name = by.removeprefix("tag:")
    if not by.startswith("tag:") or not valid_name(name):
        raise InputError(f"by {by[:80]!r}: use user, host, schema or tag:NAME (e.g. tag:route)")
    return name


def slice_filters(user: str | None = None, host: str | None = None, schema: str | None = None,
                  tags: list[tuple[str, str]] | tuple = (), table=None) -> list:
    """WHERE clauses on ops_query_slices (or ``table``: ops_query_slices_daily) for the filters
    given (tags: (name, value) pairs, all must hold)."""
    from ..db.ops_models import query_slices
    from .tags import filter_pattern

    qs = (query_slices if table is None else table).c
    out = []
    for column, value in ((qs.user_name, user), (qs.client_host, host), (qs.schema_name, schema)):
        if value is not None:
            out.append(column == value)
    for name, value in tags:
        out.append(qs.tags.like(filter_pattern(name, value), escape="\\"))
    return out


def slices_between(start: dt.datetime, end: dt.datetime, source: str | None = None, **filters):
    """The slices of hours in [start, end) that match ``filters`` (slice_filters'), as one
    subquery of a row per slice and part: the whole UTC days inside from ops_query_slices_daily,
    only the hours at either edge from ops_query_slices. A week of a fleet's attribution is then
    a day of hourly rows and six daily ones, not a week of hourly rows."""
    from sqlalchemy import func, select, union_all

    from ..db.ops_models import query_slices, query_slices_daily
    from .analyze import day_of

    first = day_of(start) if start == day_of(start) else day_of(start) + dt.timedelta(days=1)
    last = day_of(end)
    pieces = [(query_slices, query_slices.c.window_start, start, end)] if first >= last else [
        (query_slices, query_slices.c.window_start, start, first),
        (query_slices_daily, query_slices_daily.c.day, first, last),
        (query_slices, query_slices.c.window_start, last, end)]
    parts = []
    for table, when, lo, hi in pieces:
        if lo >= hi:
            continue
        c = table.c
        # each part grouped by slice before the union: the union holds a row per slice and part,
        # not every hour's row with its 1000-character tags
        part = (select(c.source, c.query_id, c.slice_key, func.max(c.user_name).label("user_name"),
                       func.max(c.client_host).label("client_host"), func.max(c.schema_name).label("schema_name"),
                       func.max(c.tags).label("tags"), func.sum(c.calls).label("calls"),
                       func.sum(c.query_time_sum).label("query_time_sum"),
                       func.sum(c.rows_examined_sum).label("rows_examined_sum"),
                       func.sum(c.rows_sent_sum).label("rows_sent_sum"))
                .where(when >= lo, when < hi, *slice_filters(table=table, **filters))
                .group_by(c.source, c.query_id, c.slice_key))
        parts.append(part.where(c.source == source) if source else part)
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("slices")


def parse_tag_filters(values) -> list[tuple[str, str]]:
    """``--tag NAME=VALUE`` options as pairs; InputError in one line naming a malformed one."""
    from .tags import parse_filter

    out = []
    for v in values or ():
        try:
            out.append(parse_filter(v))
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return out


#: ops_query_digests' unique key (source, query_id, window_start), as migrations name it.
DIGESTS_UNIQUE = "uq_ops_query_digests_source_query_id_window_start"


def stored(settings, window_s: float = 86400, sort: str = "total", limit: int = 50,
           now: dt.datetime | None = None, host: str | None = None, source: str | None = None,
           user: str | None = None, schema: str | None = None, tags=()) -> list[dict]:
    """The stored digests of the window, one row per source and query ID: calls, total time, share,
    worst p95, rows examined per row sent, EXPLAIN flags, and the trend: total time and calls in the
    window of the same length before (None when the class was not seen then, or too little of that
    window is in the stored history to compare); sorted by ``sort``
    (total, p95, calls). ``source``: file, table or performance_schema. ``user``, ``host``,
    ``schema``, ``tags`` ((name, value) pairs): only what those clients sent: calls, time and rows
    are then the matching slices' (the p95 and flags stay the whole class's)."""
    from sqlalchemy import func, select

    from ..db.engine import engine_for
    from ..db.ops_models import query_digests

    if sort not in SORTS:
        raise InputError(f"sort {sort!r}: use one of {', '.join(SORTS)}")
    q = query_digests.c
    now = now or utcnow()
    since, before = now - dt.timedelta(seconds=window_s), now - dt.timedelta(seconds=2 * window_s)
    filtered = bool(slice_filters(user, host, schema, tags))

    def summed(start, end, whole: bool):
        """Per class: its sums in [start, end) (``whole``: with p95, flags and rows; else calls and
        time only, what the window before is compared by). Fingerprints are read afterwards for
        the classes shown: a TEXT column in the GROUP BY's temporary table costs more than the sums."""
        extra = [func.max(q.query_time_p95).label("p95_s"), func.sum(q.rows_examined_sum).label("examined"),
                 func.sum(q.rows_sent_sum).label("sent"), func.max(q.explain_flags).label("flags"),
                 func.max(q.slow).label("slow"), func.max(q.last_seen).label("last_seen")] if whole else []
        rows = []
        if whole or not filtered:
            query = (select(q.source, q.query_id, func.sum(q.calls).label("calls"),
                            func.sum(q.query_time_sum).label("time_s"), func.max(q.window_start).label("latest"),
                            *extra)
                     .where(q.window_start >= start, q.window_start < end).group_by(q.source, q.query_id))
            for dialect in ("mysql", "mariadb"):
                # Left alone, MariaDB reads the whole unique index to group in its order: a month of
                # rows for a week's window; the window's range and a temporary table cost half.
                query = query.with_hint(query_digests, f"IGNORE INDEX FOR GROUP BY ({DIGESTS_UNIQUE})", dialect)
            if source:
                query = query.where(q.source == source)
            rows = [dict(r) for r in conn.execute(query).mappings()]
        if not filtered:
            return rows
        u = slices_between(start, end, source, user=user, host=host, schema=schema, tags=tags).c
        sliced = select(u.source, u.query_id, func.sum(u.calls), func.sum(u.query_time_sum),
                        func.sum(u.rows_examined_sum), func.sum(u.rows_sent_sum)).group_by(u.source, u.query_id)
        sums = {(r[0], r[1]): r[2:] for r in conn.execute(sliced)}
        if not whole:
            return [{"source": k[0], "query_id": k[1], "calls": v[0], "time_s": v[1]} for k, v in sums.items()]
        kept = []
        for r in rows:
            part = sums.get((r["source"], r["query_id"]))
            if part is not None:
                r["calls"], r["time_s"], r["examined"], r["sent"] = part
                kept.append(r)
        return kept

    with engine_for(settings.ops_db_url).connect() as conn:
        end = now + dt.timedelta(hours=1)
        rows = summed(since, end, True)
        oldest = conn.execute(select(func.min(q.window_start))).scalar()
        # The window before is compared only when the stored history covers most of it, and a class
        # only when it ran there at all: a week against the day the history began is "new", not +21,000 %.
        covered = oldest is not None and \
            as_datetime(oldest) <= before + dt.timedelta(seconds=window_s * (1 - MIN_COVER))
        earlier = {(r["source"], r["query_id"]): r for r in summed(before, since, False)
                   if (r["calls"] or 0) >= MIN_CALLS_COMPARED} if covered else {}
        for r in rows:  # SUM() of integers is DECIMAL on MariaDB: numbers, as JSON shows them
            for k, kind in (("calls", int), ("examined", int), ("sent", int), ("time_s", float)):
                if r[k] is not None:
                    r[k] = kind(r[k])
        total = sum(r["time_s"] or 0 for r in rows) or 1.0
        rows.sort(key=lambda r: r[SORTS[sort]] or 0, reverse=True)
        rows = rows[:limit]
        prints = fingerprints_at(conn, [(r["source"], r["query_id"], r["latest"]) for r in rows])
    for r in rows:
        r["fingerprint"] = prints.get((r["source"], r["query_id"]))
        del r["latest"]
        r["share_percent"] = round(100.0 * (r["time_s"] or 0) / total, 1)
        r["examined_per_sent"] = round(r["examined"] / r["sent"], 1) if r["sent"] else None
        prev = earlier.get((r["source"], r["query_id"]))
        r["previous_time_s"] = float(prev["time_s"]) if prev and prev["time_s"] is not None else None
        r["previous_calls"] = int(prev["calls"]) if prev and prev["calls"] is not None else None
        r["trend_percent"] = (round(100.0 * ((r["time_s"] or 0) - r["previous_time_s"]) / r["previous_time_s"], 1)
                              if r["previous_time_s"] else None)
    return rows


def attributed(settings, by: str, window_s: float = 86400, sort: str = "total", limit: int = 50,
               now: dt.datetime | None = None, source: str | None = None, user: str | None = None,
               host: str | None = None, schema: str | None = None, tags=()) -> list[dict]:
    """The stored query time of the window grouped by client ``by`` (user, host, schema or
    tag:NAME), as PMM's Query Analytics slices it: per value its calls, total time, share, rows
    examined per row sent, how many query classes it sent, and the class that cost it most.
    The filters narrow the slices first (``--user app --by tag:route``: that user's routes)."""

    from sqlalchemy import func, select

    from ..db.engine import engine_for
    from .tags import decode

    tag = check_by(by)
    if sort not in SORTS or sort == "p95":
        raise InputError(f"sort {sort!r}: grouped, use total or calls (a p95 is a class's, not a group's)")
    now = now or utcnow()
    since = now - dt.timedelta(seconds=window_s)
    u = slices_between(since, now + dt.timedelta(hours=1), source, user=user, host=host, schema=schema, tags=tags).c
    column = u.tags if tag else getattr(u, _DIMENSION[by])
    # Grouped by slice (its key names one user, host, schema and tags), merged by value here: the
    # temporary table is keyed by a 40-character key, not a 1000-character tags column.
    query = (select(func.max(column).label("value"), u.source, u.query_id, func.sum(u.calls).label("calls"),
                    func.sum(u.query_time_sum).label("time_s"), func.sum(u.rows_examined_sum).label("examined"),
                    func.sum(u.rows_sent_sum).label("sent"))
             .group_by(u.source, u.query_id, u.slice_key))
    groups: dict[str, dict] = {}
    with engine_for(settings.ops_db_url).connect() as conn:
        for p in conn.execute(query).mappings():
            value = decode(p["value"]).get(tag) if tag else p["value"]
            label = value if value is not None else (UNTAGGED if tag else UNKNOWN)
            g = groups.setdefault(label, {"value": label, "calls": 0, "time_s": 0.0, "examined": 0, "sent": 0,
                                          "classes": {}})
            g["calls"] += p["calls"] or 0
            g["time_s"] += p["time_s"] or 0.0
            g["examined"] += p["examined"] or 0
            g["sent"] += p["sent"] or 0
            cls = g["classes"].setdefault((p["source"], p["query_id"]), [0.0, 0])
            cls[0] += p["time_s"] or 0.0
            cls[1] += p["calls"] or 0
        for g in groups.values():  # the class that cost the group most (by time, then calls)
            g["worst"] = max(g["classes"].items(), key=lambda kv: kv[1])
        prints = fingerprints(conn, {g["worst"][0] for g in groups.values()})
    total = sum(g["time_s"] for g in groups.values()) or 1.0
    out = []
    for g in groups.values():
        (src, qid), (t, calls) = g["worst"]
        out.append({"value": g["value"], "calls": int(g["calls"]), "time_s": g["time_s"],
                    "share_percent": round(100.0 * g["time_s"] / total, 1), "classes": len(g["classes"]),
                    "examined_per_sent": round(g["examined"] / g["sent"], 1) if g["sent"] else None,
                    "worst": {"source": src, "query_id": qid, "time_s": t, "calls": calls,
                              "fingerprint": prints.get((src, qid))}})
    out.sort(key=lambda r: r[SORTS[sort]] or 0, reverse=True)
    return out[:limit]


def fingerprints(conn, classes) -> dict:
    """{(source, query_id): fingerprint} of ``classes``, from each one's latest stored hour (the
    unique key's last hour per class, then a point read each)."""
    from sqlalchemy import func, select, tuple_

    from ..db.ops_models import query_digests

    q = query_digests.c
    classes = list(classes)
    latest = conn.execute(select(q.source, q.query_id, func.max(q.window_start)).where(
        tuple_(q.source, q.query_id).in_(classes)).group_by(q.source, q.query_id)).all() if classes else []
    return fingerprints_at(conn, [tuple(r) for r in latest])


def fingerprints_at(conn, hours) -> dict:
    """{(source, query_id): fingerprint} read from the digest row of each (source, query_id, hour)."""
    from sqlalchemy import select, tuple_

    from ..db.ops_models import query_digests

    q = query_digests.c
    if not hours:
        return {}
    return {(src, qid): fp for src, qid, fp in conn.execute(select(q.source, q.query_id, q.fingerprint).where(
        tuple_(q.source, q.query_id, q.window_start).in_(hours)))}


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
    return {"query_id": query_id, "indexes": indexes, "suggestions": suggestions, "senders": senders(settings, query_id),
            "fingerprint": latest["fingerprint"], "example": latest["example"],
            "explain": json.loads(explained["explain"]) if explained else None,
            "explain_flags": explained["explain_flags"] if explained else None,
            "windows": [{k: r[k] for k in ("source", "window_start", "calls", "query_time_sum", "query_time_p95",
                                           "rows_examined_sum", "rows_sent_sum")} for r in rows]}


def senders(settings, query_id: str, limit: int = 20) -> list[dict]:
    """Who sends one query class, over its stored hours: per client user, host, schema and tags
    (decoded), calls and total time, the costliest first."""
    from sqlalchemy import func, select

    from ..db.engine import engine_for
    from ..db.ops_models import query_slices
    from .tags import decode

    qs = query_slices.c
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = conn.execute(select(qs.user_name, qs.client_host, qs.schema_name, qs.tags,
                                   func.sum(qs.calls).label("calls"), func.sum(qs.query_time_sum).label("time_s"))
                            .where(qs.query_id == query_id)
                            .group_by(qs.user_name, qs.client_host, qs.schema_name, qs.tags)
                            .order_by(func.sum(qs.query_time_sum).desc()).limit(limit)).mappings().all()
    return [{"user": r["user_name"] or UNKNOWN, "host": r["client_host"] or UNKNOWN,
             "schema": r["schema_name"] or UNKNOWN, "tags": decode(r["tags"]), "calls": int(r["calls"] or 0),
             "time_s": r["time_s"] or 0.0} for r in rows]
