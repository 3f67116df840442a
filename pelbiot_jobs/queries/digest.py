"""Group slow-log events into query classes and compute their statistics, on every core.

A file is cut into byte ranges at record separators; each range is read in blocks (memory stays
flat whatever the file's size) by a process of its own, which returns its classes; the parent
merges them. ``.gz`` files are read by one process each, streaming.
"""

from __future__ import annotations

import gzip
import math
import os
from array import array
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .fingerprint import fingerprint, mask_literals, query_id
from .slowlog import FLAGS, NUMERIC, SEPARATOR, chunk_bounds, parse_records

#: Bytes read at a time by each process.
BLOCK = 8 << 20
NUMERIC_NAMES = tuple(sorted(NUMERIC))
FLAG_NAMES = FLAGS
#: Parts a file is cut into per worker process.
PARTS_PER_WORKER = 4
#: Distinct query texts whose fingerprint is remembered (many logs repeat the same text).
FP_CACHE = 200_000
#: A query longer than this is cut before fingerprinting (a multi-megabyte INSERT stays cheap).
MAX_QUERY = 1 << 20


@dataclass
class QueryClass:
    fingerprint: bytes
    count: int = 0
    values: dict = field(default_factory=dict)  # attribute -> array('d')
    flags: Counter = field(default_factory=Counter)
    ts_min: float | None = None
    ts_max: float | None = None
    dbs: Counter = field(default_factory=Counter)
    users: Counter = field(default_factory=Counter)
    hosts: Counter = field(default_factory=Counter)
    example: bytes = b""
    example_time: float = -1.0
    example_ts: float | None = None

    def add(self, e) -> None:
        self.count += 1
        attrs = e.attrs
        values = self.values
        for name in NUMERIC_NAMES:
            value = attrs.get(name)
            if value is not None:
                arr = values.get(name)
                if arr is None:
                    arr = values[name] = array("d")
                arr.append(value)
        for name in FLAG_NAMES:
            if attrs.get(name) == b"Yes":
                self.flags[name] += 1
        ts = e.ts
        if ts is not None:
            if self.ts_min is None or ts < self.ts_min:
                self.ts_min = ts
            if self.ts_max is None or ts > self.ts_max:
                self.ts_max = ts
        if e.db:
            self.dbs[e.db] += 1
        if e.user:
            self.users[e.user] += 1
        if e.host:
            self.hosts[e.host] += 1
        qt = attrs.get(b"Query_time", 0.0)
        if qt > self.example_time:
            self.example, self.example_time, self.example_ts = e.query[:MAX_QUERY], qt, ts

    def merge(self, other: "QueryClass") -> None:
        self.count += other.count
        for name, arr in other.values.items():
            self.values.setdefault(name, array("d")).extend(arr)
        self.flags.update(other.flags)
        if other.ts_min is not None and (self.ts_min is None or other.ts_min < self.ts_min):
            self.ts_min = other.ts_min
        if other.ts_max is not None and (self.ts_max is None or other.ts_max > self.ts_max):
            self.ts_max = other.ts_max
        self.dbs.update(other.dbs)
        self.users.update(other.users)
        self.hosts.update(other.hosts)
        if other.example_time > self.example_time:
            self.example, self.example_time, self.example_ts = other.example, other.example_time, other.example_ts


@dataclass
class Digest:
    classes: dict = field(default_factory=dict)  # fingerprint -> QueryClass
    events: int = 0
    skipped: int = 0  # records that held no query (garbage, truncated, header only)
    filtered: int = 0  # events before --since
    bytes: int = 0

    def merge(self, other: "Digest") -> None:
        for fp, qc in other.classes.items():
            mine = self.classes.get(fp)
            if mine is None:
                self.classes[fp] = qc
            else:
                mine.merge(qc)
        self.events += other.events
        self.skipped += other.skipped
        self.filtered += other.filtered
        self.bytes += other.bytes


#: Every digit becomes one marker byte: queries that differ only in digit values share a key.
_DIGITS_TO_MARK = bytes.maketrans(b"0123456789", b"\x00" * 10)


def cache_key(query: bytes) -> bytes:
    """A key under which queries share one fingerprint: each digit replaced by one marker byte.

    Every step of the fingerprint treats a digit like any other digit, so two queries that
    differ only in which digits they hold have the same fingerprint. The exceptions keep digits
    in the result (CALL names, administrator commands) or test single digits (pt-table-checksum's
    comment): those are keyed by their exact text.
    """
    head = query[:32].lstrip().lower()
    if head.startswith((b"call", b"administrator")) or b"/*" in query:
        return query
    return query.translate(_DIGITS_TO_MARK)


def digest_records(records, digest: Digest, since: float | None = None, cache: dict | None = None) -> None:
    """Add records (bytes between separators) to ``digest``."""
    cache = {} if cache is None else cache
    classes = digest.classes
    for event in parse_records(records):
        if event is None:
            digest.skipped += 1
            continue
        if since is not None and event.ts is not None and event.ts < since:
            digest.filtered += 1
            continue
        query = event.query if len(event.query) <= MAX_QUERY else event.query[:MAX_QUERY]
        key = cache_key(query)
        fp = cache.get(key)
        if fp is None:
            fp = fingerprint(query)
            if len(cache) < FP_CACHE:
                cache[key] = fp
        qc = classes.get(fp)
        if qc is None:
            qc = classes[fp] = QueryClass(fp)
        qc.add(event)
        digest.events += 1


def _records_of_blocks(read):
    """Records of a stream read in blocks by ``read(size)``: each block is cut at its last separator,
    the rest waits for the next block (records never hold their separators, wherever a block ends)."""
    tail = b""
    while True:
        block = read(BLOCK)
        if not block:
            break
        data = tail + block
        cut = data.rfind(SEPARATOR)
        if cut < 0:
            tail = data
            continue
        yield from data[:cut].split(SEPARATOR)
        tail = data[cut + len(SEPARATOR):]
    if tail:
        yield from tail.split(SEPARATOR)


def _records_of_range(path: str, start: int, end: int):
    """Records between ``start`` and ``end`` of a plain file."""
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = [end - start]

        def read(size: int) -> bytes:
            block = fh.read(min(size, remaining[0])) if remaining[0] > 0 else b""
            remaining[0] -= len(block)
            return block

        yield from _records_of_blocks(read)


def _records_of_gzip(path: str):
    with gzip.open(path, "rb") as fh:
        yield from _records_of_blocks(fh.read)


def _digest_part(args) -> Digest:
    path, start, end, since = args
    digest = Digest()
    records = _records_of_gzip(path) if end is None else _records_of_range(path, start, end)
    digest_records(records, digest, since)
    digest.bytes = (os.path.getsize(path) if end is None else end - start)
    return digest


def plan_parts(paths: list[str], workers: int) -> list[tuple]:
    """Byte ranges (or whole .gz files) to digest, about ``workers`` per plain file."""
    parts = []
    for path in paths:
        if path.endswith(".gz"):
            parts.append((path, 0, None))
            continue
        with open(path, "rb") as fh:
            import mmap

            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                continue
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                # Several parts per worker: a part that runs slower does not leave a core idle.
                for start, end in chunk_bounds(mm, workers * PARTS_PER_WORKER):
                    parts.append((path, start, end))
    return parts


def digest_files(paths: list[str | Path], workers: int | None = None, since: float | None = None,
                 progress=None) -> Digest:
    """Digest slow-log files (plain or .gz) on ``workers`` processes (default: every core)."""
    paths = [str(p) for p in paths]
    workers = workers or os.cpu_count() or 1
    parts = [(p, s, e, since) for p, s, e in plan_parts(paths, workers)]
    total = Digest()
    if workers == 1 or len(parts) <= 1:  # an empty file has no part: 0 events
        for part in parts:
            total.merge(_digest_part(part))
            if progress:
                progress(total.bytes)
        return total
    with ProcessPoolExecutor(max_workers=min(workers, len(parts))) as pool:
        for part_digest in pool.map(_digest_part, parts):
            total.merge(part_digest)
            if progress:
                progress(total.bytes)
    return total


# --- statistics -------------------------------------------------------------------------------

def stats(values) -> dict:
    """sum, min, max, avg, median and pct_95 (nearest rank) of a list of numbers."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return {}
    total = math.fsum(ordered)
    return {"sum": total, "min": ordered[0], "max": ordered[-1], "avg": total / n,
            "median": ordered[(n - 1) // 2], "pct_95": ordered[max(0, math.ceil(0.95 * n) - 1)]}


def class_summary(qc: QueryClass, mask_example: bool = True) -> dict:
    import datetime as dt

    def iso(ts):
        return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") if ts else None

    example = mask_literals(qc.example) if mask_example else qc.example
    metrics = {name.decode(): stats(arr) for name, arr in qc.values.items()}
    return {
        "checksum": query_id(qc.fingerprint),
        "fingerprint": qc.fingerprint.decode("utf-8", "replace"),
        "query_count": qc.count,
        "ts_min": iso(qc.ts_min),
        "ts_max": iso(qc.ts_max),
        "example": {"query": example.decode("utf-8", "replace"), "Query_time": qc.example_time,
                    "ts": iso(qc.example_ts)},
        "metrics": metrics,
        "flags": {k.decode(): v for k, v in qc.flags.items()},
        "databases": {k.decode("utf-8", "replace"): v for k, v in qc.dbs.most_common(10)},
        "users": {k.decode("utf-8", "replace"): v for k, v in qc.users.most_common(10)},
        "hosts": {k.decode("utf-8", "replace"): v for k, v in qc.hosts.most_common(10)},
    }


def summarize(digest: Digest, limit: int | None = None, mask_example: bool = True) -> dict:
    """The digest as pt-query-digest's JSON shape: ``classes`` by total time, and ``global``.

    As pt-query-digest ranks classes by their total Query_time, a class none of whose events has a
    Query_time (a general log or a session dump read as a slow log) is left out; its events are
    counted as ``untimed_events``. ``query_count`` counts the events with a Query_time, as pt's.
    """
    timed = [qc for qc in digest.classes.values() if b"Query_time" in qc.values]
    classes = sorted(timed, key=lambda qc: -math.fsum(qc.values[b"Query_time"]))
    total_time = math.fsum(math.fsum(qc.values[b"Query_time"]) for qc in classes)
    out = [class_summary(qc, mask_example) for qc in (classes[:limit] if limit else classes)]
    for item in out:
        qt = item["metrics"].get("Query_time", {}).get("sum", 0.0)
        item["time_share_percent"] = 100.0 * qt / total_time if total_time else 0.0
    counted = sum(len(qc.values[b"Query_time"]) for qc in classes)
    return {"classes": out,
            "global": {"query_count": counted, "unique_query_count": len(classes),
                       "query_time_sum": total_time, "skipped_events": digest.skipped,
                       "untimed_events": digest.events - counted,
                       "filtered_events": digest.filtered, "bytes": digest.bytes}}
