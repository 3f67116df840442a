"""The hourly slow-query job: read new events from a source, digest per hour window, store, EXPLAIN.

Each source commits its read position (file inode and offset, or the slow_log table's last
start time) in the same transaction as the merged digests, so a redelivered or retried run
neither loses nor double-counts an event. Windows read in two runs merge exactly: sums, counts,
min and max add up, and percentiles come from a mergeable histogram.
"""

from __future__ import annotations

import contextlib
import hashlib
import datetime as dt
import json
import os
import re
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, select, text, update

from ..db import checkpoints
from ..db.ops_models import query_digests, query_slices
from ..db.upsert import upsert
from ..lib import histogram
from ..lib.filetail import find_by_inode
from .digest import QueryClass
from .fingerprint import FingerprintCache, fingerprint, mask_literals, query_id
from .slowlog import SEPARATOR, Event, is_safe_separator, parse_records
from .tags import tags_of

#: Classes whose p95 query time is above this are flagged slow (s); PELBIOT_SLOW_THRESHOLD_MS.
#: Bytes of slow log read per run; the rest waits for the next run.
MAX_READ = 256 << 20
#: Rows of mysql.slow_log read per run.
MAX_ROWS = 200_000
#: Classes EXPLAINed per run: the worst by total time, then the slow ones, at most EXPLAIN_MAX.
EXPLAIN_TOP = 5
EXPLAIN_MAX = 10
#: EXPLAIN never runs the statement; still, a statement time limit (s) guards the server.
EXPLAIN_TIME_LIMIT = 5


def hour_of(ts: float | None, fallback: dt.datetime) -> dt.datetime:
    when = dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None) if ts else fallback
    return when.replace(minute=0, second=0, microsecond=0)


#: Slices (user, host, schema, tags) kept per class and hour; the rest add up in OTHER.
MAX_SLICES = 100
OTHER = (b"(other)", b"(other)", b"(other)", b"")


def group(events, now: dt.datetime) -> dict[tuple[dt.datetime, bytes], list]:
    """Pure: events -> {(hour, fingerprint): [class, Query_time histogram in ms buckets, raw
    example, slices]}; slices: {(user, host, schema, tags): [calls, time, lock time, rows
    examined, rows sent, rows affected]}, at most MAX_SLICES (then OTHER)."""
    out: dict = {}
    fingerprint_of = FingerprintCache()
    for e in events:
        query = e.query
        tags, keyed = tags_of(query) if b"/*" in query else (b"", None)
        key = (hour_of(e.ts, now), fingerprint_of(query, keyed))
        entry = out.get(key)
        if entry is None:
            entry = out[key] = [QueryClass(key[1]), Counter(), b"", {}]
        qc, hist, _, slices = entry
        before = qc.example_time
        qc.add(e)
        attrs = e.attrs
        qt = attrs.get(b"Query_time", 0.0)
        hist[histogram.bucket_of(qt * 1000)] += 1
        if qc.example_time != before:
            entry[2] = query
        where = (e.user, e.host, e.db, tags)
        counts = slices.get(where)
        if counts is None:
            if len(slices) >= MAX_SLICES:
                where = OTHER
                counts = slices.get(OTHER)
            if counts is None:
                counts = slices[where] = [0, 0.0, 0.0, 0, 0, 0]
        counts[0] += 1
        counts[1] += qt
        counts[2] += attrs.get(b"Lock_time", 0.0)
        counts[3] += int(attrs.get(b"Rows_examined", 0))
        counts[4] += int(attrs.get(b"Rows_sent", 0))
        counts[5] += int(attrs.get(b"Rows_affected", 0))
    return out


def _percentile(hist: Counter, q: float, maximum: float) -> float:
    """In seconds, from the histogram of milliseconds."""
    count = sum(hist.values())
    return histogram.percentile(hist, count, q, maximum * 1000.0) / 1000.0 if count else maximum


def _row(source, hour, qc: QueryClass, hist: Counter, mask: bool) -> dict:
    """A fresh ops_query_digests row of one class and hour (percentiles and the slow flag are set
    by ``finish``, once merged with what is stored)."""
    s = {name.decode(): qc.stat(name) for name in qc.attributes()}
    qt = s.get("Query_time", {})

    def total(name):
        return s.get(name, {}).get("sum", 0.0)

    return {
        "source": source, "query_id": query_id(qc.fingerprint), "window_start": hour,
        "fingerprint": qc.fingerprint.decode("utf-8", "replace"),
        "example": (mask_literals(qc.example) if mask else qc.example).decode("utf-8", "replace")[:65000],
        "calls": qc.count, "query_time_sum": qt.get("sum", 0.0), "query_time_min": qt.get("min"),
        "query_time_max": qt.get("max"), "lock_time_sum": total("Lock_time"),
        "rows_sent_sum": int(total("Rows_sent")), "rows_examined_sum": int(total("Rows_examined")),
        "rows_affected_sum": int(total("Rows_affected")), "bytes_sent_sum": int(total("Bytes_sent")),
        "full_scans": qc.flags.get(b"Full_scan", 0), "filesorts": qc.flags.get(b"Filesort", 0),
        "tmp_disk_tables": qc.flags.get(b"Tmp_table_on_disk", 0),
        "first_seen": _dt(qc.ts_min), "last_seen": _dt(qc.ts_max),
        "databases": json.dumps({k.decode("utf-8", "replace"): v for k, v in qc.dbs.most_common(10)})[:1000],
        "users": json.dumps({k.decode("utf-8", "replace"): v for k, v in qc.users.most_common(10)})[:1000],
        "hosts": json.dumps({k.decode("utf-8", "replace"): v for k, v in qc.hosts.most_common(10)})[:1000],
        "hist": json.dumps({str(k): v for k, v in sorted(hist.items())}),
    }


#: Counters that add up when a window is read twice.
_SUMMED = ("calls", "query_time_sum", "lock_time_sum", "rows_sent_sum", "rows_examined_sum", "rows_affected_sum",
           "bytes_sent_sum", "full_scans", "filesorts", "tmp_disk_tables")


def merged(row: dict, stored: dict) -> dict:
    """``row`` added to what an earlier run stored for the same source, class and hour (the one
    merge of every source: sums add, extremes and first/last seen widen, histograms add, the
    example of the slowest event stays)."""
    def pick(f, a, b):
        values = [x for x in (a, b) if x is not None]
        return f(values) if values else None

    out = dict(row)
    for col in _SUMMED:
        out[col] = None if row.get(col) is None and stored.get(col) is None else (row.get(col) or 0) + (stored.get(col) or 0)
    out["query_time_min"] = pick(min, row["query_time_min"], stored["query_time_min"])
    out["query_time_max"] = pick(max, row["query_time_max"], stored["query_time_max"])
    out["first_seen"] = pick(min, row["first_seen"], stored["first_seen"])
    out["last_seen"] = pick(max, row["last_seen"], stored["last_seen"])
    if (stored["query_time_max"] or 0) > (row["query_time_max"] or 0):
        out["example"] = stored["example"]
    hist = _hist(row) + _hist(stored)
    out["hist"] = json.dumps({str(k): v for k, v in sorted(hist.items())})
    return out


def _hist(row: dict) -> Counter:
    return Counter({int(k): v for k, v in json.loads(row.get("hist") or "{}").items()})


def finish(row: dict, slow_s: float) -> dict:
    """Average, median and p95 (from the histogram; none when the source has no per-event times)
    and the slow flag: p95 over the threshold, or the average where there is no p95."""
    hist = _hist(row)
    maximum = row["query_time_max"] or 0.0
    row["query_time_avg"] = row["query_time_sum"] / row["calls"] if row["calls"] else None
    row["query_time_median"] = _percentile(hist, 50, maximum) if hist else None
    row["query_time_p95"] = _percentile(hist, 95, maximum) if hist else None
    worst = row["query_time_p95"] if row["query_time_p95"] is not None else row["query_time_avg"]
    row["slow"] = int((worst or 0.0) > slow_s)
    return row


def _dt(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).replace(tzinfo=None) if ts else None


@contextlib.contextmanager
def storing(conn, source: str):
    """One run at a time merges into a source's digests (MySQL/MariaDB: a named lock on the ops
    connection, held for the short store only): two runs on two logs adding to the same class and
    hour would otherwise lose one's counts or deadlock on the insert. SQLite serializes writers."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        yield
        return
    name = f"pelbiot.digests.{source}"[:64]
    got = conn.execute(text("SELECT GET_LOCK(:n, 60)"), {"n": name}).scalar()
    conn.commit()  # the lock belongs to the session, not to this (auto-begun) transaction
    if got != 1:
        from ..lib.errors import TransientError

        raise TransientError(f"another run held the {source} digests for 60 s; trying again")
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        conn.commit()


def store(conn, rows: list[dict], slow_s: float) -> list[dict]:
    """Merge fresh rows of any source into ops_query_digests (inside the caller's transaction,
    under ``storing``): the one store path."""
    out: dict[tuple, dict] = {}
    qd = query_digests.c
    for row in rows:
        key = (row["source"], row["query_id"], row["window_start"])
        old = out.get(key)  # a class twice in one batch (performance_schema: one digest per schema)
        if old is None:
            old = conn.execute(select(query_digests).where(qd.source == row["source"], qd.query_id == row["query_id"],
                                                           qd.window_start == row["window_start"])).mappings().first()
        out[key] = finish(merged(row, dict(old)) if old else row, slow_s)
    for row in out.values():
        row.pop("id", None)
    upsert(conn, query_digests, list(out.values()), key=("source", "query_id", "window_start"))
    return list(out.values())


def grouped_rows(source: str, grouped: dict, mask: bool) -> list[dict]:
    return [_row(source, hour, qc, hist, mask) for (hour, _fp), (qc, hist, _raw, _slices) in grouped.items()]


def _text(value: bytes | str | None, size: int) -> str | None:
    if value is None:
        return None
    value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return value[:size] or None


def slice_key(user: str | None, host: str | None, schema: str | None, tags: str) -> str:
    return hashlib.sha1("\0".join(v or "" for v in (user, host, schema, tags)).encode()).hexdigest()


def slice_row(source: str, qid: str, hour: dt.datetime, user, host, schema, tags, counts) -> dict:
    """An ops_query_slices row (names cut to their columns, as stored)."""
    if isinstance(schema, bytes):  # a `use `db`` line names it quoted, the Schema: field plain: one schema
        schema = schema.strip(b"`")
    user, host, schema = _text(user, 80), _text(host, 255), _text(schema, 64)
    tags = _text(tags, 1000) or ""
    calls, time_s, lock_s, examined, sent, affected = counts
    return {"source": source, "query_id": qid, "window_start": hour, "user_name": user, "client_host": host,
            "schema_name": schema, "tags": tags, "slice_key": slice_key(user, host, schema, tags), "calls": calls,
            "query_time_sum": time_s, "lock_time_sum": lock_s, "rows_examined_sum": examined,
            "rows_sent_sum": sent, "rows_affected_sum": affected}


def grouped_slices(source: str, grouped: dict) -> list[dict]:
    return [slice_row(source, query_id(fp), hour, *where, counts)
            for (hour, fp), (_qc, _hist, _raw, slices) in grouped.items() for where, counts in slices.items()]


_SLICE_SUMS = ("calls", "query_time_sum", "lock_time_sum", "rows_examined_sum", "rows_sent_sum", "rows_affected_sum")


def store_slices(conn, rows: list[dict]) -> int:
    """Add fresh slices to what is stored for their class and hour (inside the caller's
    transaction, under ``storing``); a class-hour holds at most MAX_SLICES, the rest go to the
    "(other)" slice. Returns the rows written."""
    qs = query_slices.c
    by_class: dict[tuple, list[dict]] = {}
    for r in rows:
        by_class.setdefault((r["source"], r["query_id"], r["window_start"]), []).append(r)
    out = []
    for (source, qid, hour), fresh in by_class.items():
        held = {r["slice_key"]: dict(r) for r in conn.execute(select(query_slices).where(
            qs.source == source, qs.query_id == qid, qs.window_start == hour)).mappings()}
        changed = {}
        for r in fresh:
            mine = held.get(r["slice_key"])
            if mine is None and len(held) >= MAX_SLICES:
                r = slice_row(source, qid, hour, *OTHER, [r[k] for k in _SLICE_SUMS])
                mine = held.get(r["slice_key"])
            if mine is None:
                mine = held[r["slice_key"]] = dict(r)
            else:
                for k in _SLICE_SUMS:
                    mine[k] = (mine[k] or 0) + (r[k] or 0)
            changed[r["slice_key"]] = mine
        for r in changed.values():
            r.pop("id", None)
        out += changed.values()
    if out:
        upsert(conn, query_slices, out, key=("source", "query_id", "window_start", "slice_key"))
        roll_days(conn, {(r["source"], r["query_id"], day_of(r["window_start"])) for r in out})
    return len(out)


def day_of(when: dt.datetime) -> dt.datetime:
    return when.replace(hour=0, minute=0, second=0, microsecond=0)


#: Classes rebuilt per statement by roll_days (an IN list that stays short).
ROLL_CHUNK = 200


def roll_days(conn, keys) -> None:
    """Rebuild ops_query_slices_daily for each (source, query_id, day) of ``keys`` from the hourly
    slices of that day (inside the caller's transaction): the daily rows are always the sums of the
    hourly ones, however often an hour was added to."""
    from sqlalchemy import delete, func, insert, literal

    from ..db.ops_models import query_slices_daily
    from ..db.types import UtcDateTime

    qs, d = query_slices.c, query_slices_daily.c
    by_day: dict[tuple, set] = {}
    for source, qid, day in keys:
        by_day.setdefault((source, day), set()).add(qid)
    names = ["source", "query_id", "day", "user_name", "client_host", "schema_name", "tags", "slice_key",
             *_SLICE_SUMS]
    for (source, day), qids in sorted(by_day.items()):
        ordered = sorted(qids)
        for i in range(0, len(ordered), ROLL_CHUNK):
            chunk = ordered[i:i + ROLL_CHUNK]
            conn.execute(delete(query_slices_daily).where(d.source == source, d.day == day, d.query_id.in_(chunk)))
            summed = (select(qs.source, qs.query_id, literal(day, UtcDateTime), func.max(qs.user_name),
                             func.max(qs.client_host), func.max(qs.schema_name), func.max(qs.tags), qs.slice_key,
                             *[func.sum(getattr(qs, k)) for k in _SLICE_SUMS])
                      .where(qs.source == source, qs.query_id.in_(chunk), qs.window_start >= day,
                             qs.window_start < day + dt.timedelta(days=1))
                      .group_by(qs.source, qs.query_id, qs.slice_key))
            conn.execute(insert(query_slices_daily).from_select(names, summed))


# --- sources ----------------------------------------------------------------------------------

def read_file_events(path: Path, state: dict) -> tuple[list[Event], dict, int]:
    """Events added to a slow log since ``state``; the new state; records skipped.

    Rotation is followed as logrotate does it: when the file at ``path`` is no longer the one
    read last time, the old one (found by its inode in the same folder) is read to its end first,
    then the new one from its start. Moved without ``FLUSH SLOW LOGS``, the server still writes
    the old file under its new name: it is followed there until the server reopens ``path``.
    A truncated file starts again at 0.
    """
    inode, offset = state.get("inode"), int(state.get("offset", 0))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    events: list[Event] = []
    skipped = 0
    if inode is not None and (st is None or st.st_ino != inode):
        old = find_by_inode(path.parent, inode)
        if old is not None:
            final = st is not None  # a new file exists: the server has left the old one
            old_events, old_offset, old_skipped = _read_events(old, offset, final=final)
            events += old_events
            skipped += old_skipped
            if not final or old_offset < os.stat(old).st_size:
                # still being written (no flush yet), or more than one read's worth left
                return events, {"inode": inode, "offset": old_offset, "following": str(old)}, skipped
        offset = 0
    if st is None:
        raise FileNotFoundError(f"the slow log {path} does not exist (and no rotated file with the inode "
                                f"read last time is beside it)")
    if offset > st.st_size:
        offset = 0  # truncated: start again at the top
    new_events, offset, new_skipped = _read_events(path, offset, final=False)
    return events + new_events, {"inode": st.st_ino, "offset": offset}, skipped + new_skipped


def _read_events(path: Path, offset: int, final: bool) -> tuple[list[Event], int, int]:
    """Complete events of ``path`` from ``offset`` (at most MAX_READ bytes); the offset after them."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(MAX_READ)
    # Complete events only: up to the last separator, or to the end when the file ends an event
    # (";\n"): the server writes an event in one piece, so a half-written one does not end so.
    # A file the server has left (final) is complete up to its end.
    if data.endswith(b";\n") or (final and len(data) < MAX_READ):
        usable = data
    else:  # the last separator after which reading may start again on its own
        cut = data.rfind(SEPARATOR)
        while cut >= 0 and not is_safe_separator(data, cut):
            cut = data.rfind(SEPARATOR, 0, cut)
        usable = data[:cut + 2] if cut >= 0 else b""
    if not usable and len(data) == MAX_READ:  # one record larger than a read: it would stall every run
        return [], _past_oversized(path, offset, final), 1
    events, skipped = [], 0
    for event in parse_records(usable.split(SEPARATOR)):
        if event is None:
            skipped += 1
        else:
            events.append(event)
    return events, offset + len(usable), skipped


def _past_oversized(path: Path, offset: int, final: bool) -> int:
    """Where to read on after a record at ``offset`` larger than MAX_READ: just after the next
    separator, found by a forward scan (8 MB at a time); the end of the file if the server has
    left it; else ``offset`` (the record is still being written). The record is logged, counted as
    skipped, and never read whole."""
    import logging

    block, at = 8 << 20, offset + MAX_READ
    with open(path, "rb") as fh:
        while True:
            fh.seek(at)
            chunk = fh.read(block)
            found = chunk.find(SEPARATOR)
            if found >= 0:
                new = at + found + 2
                break
            if len(chunk) < block:
                new = at + len(chunk) if final else offset
                break
            at += len(chunk) - (len(SEPARATOR) - 1)
    if new != offset:
        logging.getLogger(__name__).error("%s: a record at byte %d is larger than %d MB; skipped (%d bytes), "
                                          "the digest goes on after it", path, offset, MAX_READ >> 20, new - offset)
    return new


_SLOW_LOG = text("""
    SELECT start_time, user_host, query_time, lock_time, rows_sent, rows_examined, db, sql_text, rows_affected
    FROM mysql.slow_log WHERE start_time > :last ORDER BY start_time LIMIT :n
""")


def read_table_events(app_engine: Engine, state: dict) -> tuple[list[Event], dict]:
    """Rows of mysql.slow_log newer than the last start time read."""
    last = dt.datetime.fromisoformat(state["last"]) if state.get("last") else dt.datetime(1970, 1, 2)
    events = []
    newest = last
    with app_engine.connect() as conn:
        for r in conn.execute(_SLOW_LOG, {"last": last, "n": MAX_ROWS}):
            def seconds(v):
                return v.total_seconds() if isinstance(v, dt.timedelta) else float(v or 0)

            sql = r.sql_text if isinstance(r.sql_text, bytes) else (r.sql_text or "").encode()
            user_host = (r.user_host or "").encode() if isinstance(r.user_host, str) else (r.user_host or b"")
            user = user_host.split(b"[", 1)[0].strip() or None
            host = user_host.rsplit(b"@", 1)[-1].strip(b" []") or None if b"@" in user_host else None
            events.append(Event(query=sql, ts=r.start_time.replace(tzinfo=dt.timezone.utc).timestamp(),
                                user=user, host=host, db=(r.db or "").encode() or None,
                                attrs={b"Query_time": seconds(r.query_time), b"Lock_time": seconds(r.lock_time),
                                       b"Rows_sent": float(r.rows_sent or 0),
                                       b"Rows_examined": float(r.rows_examined or 0),
                                       b"Rows_affected": float(r.rows_affected or 0)}))
            newest = max(newest, r.start_time)
    return events, {"last": newest.isoformat()}


_DIGESTS = text("""
    SELECT SCHEMA_NAME, DIGEST, DIGEST_TEXT, COUNT_STAR, SUM_TIMER_WAIT, MIN_TIMER_WAIT, MAX_TIMER_WAIT,
           SUM_LOCK_TIME, SUM_ROWS_SENT, SUM_ROWS_EXAMINED, SUM_ROWS_AFFECTED, SUM_NO_INDEX_USED,
           SUM_SORT_ROWS, SUM_CREATED_TMP_DISK_TABLES, FIRST_SEEN, LAST_SEEN
    FROM performance_schema.events_statements_summary_by_digest
    WHERE DIGEST_TEXT IS NOT NULL
""")
#: performance_schema timers are in picoseconds.
PICO = 1e12
_COUNTERS = ("COUNT_STAR", "SUM_TIMER_WAIT", "SUM_LOCK_TIME", "SUM_ROWS_SENT", "SUM_ROWS_EXAMINED",
             "SUM_ROWS_AFFECTED", "SUM_NO_INDEX_USED", "SUM_SORT_ROWS", "SUM_CREATED_TMP_DISK_TABLES")


def digest_deltas(prev: dict, rows: list[dict]) -> tuple[list[dict], dict]:
    """Pure: per digest, what its cumulative counters gained since ``prev``; and the new state.

    A digest whose count went down was reset (server restart, TRUNCATE): its counters count
    from zero again, so the current values are the delta.
    """
    deltas, state = [], {}
    for r in rows:
        key = f"{r['SCHEMA_NAME'] or ''}/{r['DIGEST']}"
        cur = {c: float(r[c] or 0) for c in _COUNTERS}
        state[key] = cur
        before = prev.get(key)
        if before is None or cur["COUNT_STAR"] < before["COUNT_STAR"]:
            delta = cur  # new digest, or reset
            if before is None and prev.get("__baseline__") is None:
                continue  # the first run only takes a baseline: totals since server start are not an hour
        else:
            delta = {c: cur[c] - before[c] for c in _COUNTERS}
        if delta["COUNT_STAR"] > 0:
            deltas.append({**r, **delta})
    state["__baseline__"] = True
    return deltas, state


def digest_rows(deltas: list[dict], hour: dt.datetime, mask: bool) -> list[dict]:
    """Pure: fresh ops_query_digests rows of performance_schema deltas (no histogram: the source has
    no per-event times, so no percentiles; the slow flag then uses the average)."""
    out = []
    for d in deltas:
        text_ = (d["DIGEST_TEXT"] or "").encode()
        fp = fingerprint(text_)
        calls = int(d["COUNT_STAR"])
        total = d["SUM_TIMER_WAIT"] / PICO
        out.append({
            "source": "performance_schema", "query_id": query_id(fp), "window_start": hour,
            "fingerprint": fp.decode("utf-8", "replace"), "example": text_.decode("utf-8", "replace")[:65000],
            "calls": calls, "query_time_sum": total, "query_time_min": (d["MIN_TIMER_WAIT"] or 0) / PICO,
            "query_time_max": (d["MAX_TIMER_WAIT"] or 0) / PICO, "lock_time_sum": d["SUM_LOCK_TIME"] / PICO,
            "rows_sent_sum": int(d["SUM_ROWS_SENT"]), "rows_examined_sum": int(d["SUM_ROWS_EXAMINED"]),
            "rows_affected_sum": int(d["SUM_ROWS_AFFECTED"]), "bytes_sent_sum": None,
            "full_scans": int(d["SUM_NO_INDEX_USED"]), "filesorts": None,
            "tmp_disk_tables": int(d["SUM_CREATED_TMP_DISK_TABLES"]),
            "first_seen": d["FIRST_SEEN"], "last_seen": d["LAST_SEEN"],
            "databases": json.dumps({d["SCHEMA_NAME"] or "": calls}), "users": "{}", "hosts": "{}", "hist": "{}"})
    return out


def detect_source(app_engine: Engine) -> tuple[str | None, str | None]:
    """What the app DB server offers: ("table", None), ("file", path) or (None, reason)."""
    if app_engine.dialect.name == "sqlite":
        return None, "the app DB is SQLite: it has no slow log"
    with app_engine.connect() as conn:
        enabled, output, path = conn.execute(text(
            "SELECT @@GLOBAL.slow_query_log, @@GLOBAL.log_output, @@GLOBAL.slow_query_log_file")).one()
    if int(enabled) and "TABLE" in str(output).upper():
        return "table", None
    if int(enabled) and path and os.access(path, os.R_OK):
        return "file", path
    if _performance_schema_on(app_engine):
        return "performance_schema", None
    if not int(enabled):
        return None, "slow_query_log is OFF and performance_schema is off on the app DB server"
    return None, f"the slow log {path} is not readable on this host (route queries.analyze to the DB host's queue)"


def _performance_schema_on(app_engine: Engine) -> bool:
    with app_engine.connect() as conn:
        try:
            return bool(int(conn.execute(text("SELECT @@GLOBAL.performance_schema")).scalar()))
        except Exception:
            return False


# --- EXPLAIN ----------------------------------------------------------------------------------

#: Texts that may be reads (everything else is not a candidate for EXPLAIN at all).
_READ_LIKE = re.compile(r"\s*(\(|select\b|with\b|/\*|#|--)", re.IGNORECASE)


def explain(app_engine: Engine, query: bytes, db: str | None) -> tuple[list[dict], list[str]] | None:
    """The plan of a query proven to be a plain read, and its flags; None when it cannot be explained.

    A text that is not proven a plain read (``sqlguard``) is never run: its plan is
    ``[{"refused": reason}]`` with the flag ``refused``, so the refusal is on record.
    """
    from ..db.readonly import explain_read, flavor
    from ..lib.sqlguard import UnsafeSQL, check_read

    sql = query.decode("utf-8", "replace").strip().rstrip(";")
    if not _READ_LIKE.match(sql):
        return None  # DML, DDL, administrator commands: not candidates for EXPLAIN
    try:
        checked = check_read(sql)
    except UnsafeSQL as exc:
        return [{"refused": str(exc)}], ["refused"]
    with app_engine.connect() as conn:
        if flavor(conn) == "sqlite":
            return None
        current = conn.execute(text("SELECT DATABASE()")).scalar()
        conn.rollback()
        if db and db.strip("`") != current:
            return None  # another schema: not ours to explain
        try:
            rows = explain_read(conn, checked, time_limit_s=EXPLAIN_TIME_LIMIT)
        except UnsafeSQL as exc:  # a function this server resolves to a stored one: refused, on record
            return [{"refused": str(exc)}], ["refused"]
        except Exception:
            return None
    flags = set()
    for r in rows:
        extra = str(r.get("Extra") or "")
        if str(r.get("type")).upper() == "ALL":
            flags.add("full_scan")
        if "filesort" in extra:
            flags.add("filesort")
        if "temporary" in extra:
            flags.add("temporary")
        if r.get("key") is None and r.get("table"):
            flags.add("no_key")
    return rows, sorted(flags)


def explain_worst(ops_conn, app_engine: Engine, source: str, grouped: dict, rows: list[dict] = ()) -> tuple[int, int]:
    """EXPLAIN the examples of this run's classes that matter most: the EXPLAIN_TOP reads of the app
    DB with the most total time, then the slow ones (``rows``: as stored), at most EXPLAIN_MAX in
    all. What is not a candidate (not a read, another schema, pelbiot-jobs' own statements) is
    passed over, not counted; only plain reads are ever sent.

    Returns (explained, refused): a refused example is stored with its reason and never run.
    """
    by_time = sorted(grouped.items(), key=lambda kv: -kv[1][0].total(b"Query_time"))
    slow = {(r["window_start"], r["query_id"]) for r in rows if r.get("slow")}
    done = refused = tried = 0
    for (hour, fp), (qc, _hist, raw, _slices) in by_time:
        if done + refused >= EXPLAIN_MAX or tried >= 4 * EXPLAIN_MAX:
            break
        if done + refused >= EXPLAIN_TOP and (hour, query_id(fp)) not in slow:
            continue  # past the top ones, only the slow
        db = next(iter(qc.dbs), b"").decode("utf-8", "replace") or None
        tried += 1
        result = explain(app_engine, raw, db)
        if result is None:
            continue
        plan, flags = result
        qd = query_digests.c
        ops_conn.execute(update(query_digests).where(qd.source == source, qd.query_id == query_id(fp),
                                                     qd.window_start == hour)
                         .values(explain=json.dumps(plan, default=str)[:65000], explain_flags=",".join(flags)))
        if "refused" in flags:
            refused += 1
        else:
            done += 1
    return done, refused


def analyze(app_engine: Engine, ops_engine: Engine, now: dt.datetime, source: str | None = None,
            path: str | None = None, mask: bool = True, slow_s: float | None = None) -> dict:
    """One run of queries.analyze: the new events of the source, digested and stored (every source
    through ``store``, with the one slow threshold ``slow_s``: PELBIOT_SLOW_THRESHOLD_MS)."""
    if slow_s is None:
        from ..config import Settings

        slow_s = Settings.slow_threshold_ms / 1000.0
    if source in (None, "auto"):
        source, detail = detect_source(app_engine)
        if source is None:
            return {"skipped": True, "reason": detail}
        path = path or detail
    if source == "file":
        # Read and digest outside any transaction (the CPU-bound part), then store and move the
        # read position in one short transaction: runs on other logs are not held up by row locks.
        state_name = f"slowlog:{path}"
        with ops_engine.connect() as conn:
            state = checkpoints.get(conn, state_name) or {}
        events, new_state, skipped = read_file_events(Path(path), state)
        grouped = group(events, now)
        with ops_engine.connect() as conn, storing(conn, "file"):
            with conn.begin():
                if (checkpoints.get(conn, state_name, lock=True) or {}) != state:
                    return {"skipped": True, "reason": f"another run read {path} meanwhile; its events are counted once"}
                rows = store(conn, grouped_rows("file", grouped, mask), slow_s)
                store_slices(conn, grouped_slices("file", grouped))
                checkpoints.put(conn, state_name, new_state, now)
        with ops_engine.begin() as conn:
            explained, refused = explain_worst(conn, app_engine, "file", grouped, rows)
        return {"source": "file", "events": len(events), "classes": len(rows), "skipped_records": skipped,
                "explained": explained, "refused": refused}
    if source == "table":
        with ops_engine.connect() as conn, storing(conn, "table"):
            with conn.begin():
                state = checkpoints.get(conn, "slowlog:table", lock=True) or {}
                events, new_state = read_table_events(app_engine, state)
                grouped = group(events, now)
                rows = store(conn, grouped_rows("table", grouped, mask), slow_s)
                store_slices(conn, grouped_slices("table", grouped))
                checkpoints.put(conn, "slowlog:table", new_state, now)
                explained, refused = explain_worst(conn, app_engine, "table", grouped, rows)
        return {"source": "table", "events": len(events), "classes": len(rows), "explained": explained,
                "refused": refused}
    if source == "performance_schema":
        with ops_engine.connect() as conn, storing(conn, "performance_schema"), conn.begin():
            state = checkpoints.get(conn, "slowlog:performance_schema", lock=True) or {}
            with app_engine.connect() as app:
                rows = [dict(r) for r in app.execute(_DIGESTS).mappings()]
            deltas, new_state = digest_deltas(state, rows)
            fresh = digest_rows(deltas, now.replace(minute=0, second=0, microsecond=0), mask)
            stored = store(conn, fresh, slow_s)
            # performance_schema keeps a digest per schema, not per user or client host
            store_slices(conn, [slice_row(r["source"], r["query_id"], r["window_start"], None, None, d["SCHEMA_NAME"],
                                          "", [r["calls"], r["query_time_sum"], r["lock_time_sum"],
                                               r["rows_examined_sum"], r["rows_sent_sum"], r["rows_affected_sum"]])
                                for r, d in zip(fresh, deltas)])
            checkpoints.put(conn, "slowlog:performance_schema", new_state, now)
        return {"source": "performance_schema", "digests": len(rows), "classes": len(stored),
                "baseline_only": not state}
    from ..lib.errors import ConfigError

    raise ConfigError(f"PELBIOT_SLOWLOG_SOURCE={source!r} is not valid: use auto, file, table or performance_schema")
