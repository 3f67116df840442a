"""Group slow-log events into query classes and compute their statistics, on every core.

A file is cut into byte ranges at record separators; each range is read in blocks by a process
of its own, which returns its classes; the parent merges them. ``.gz`` files are read by one
process each, streaming.

Memory stays flat whatever the file's size: each class keeps its attributes' values as they
come (exact statistics) until the digest holds RAW_BUDGET of them; then the biggest are folded
into counts of 5 %-wide buckets (pt-query-digest's own buckets) with exact count, sum, min and
max: median and 95th percentile are then read from buckets (at most 5 % off), as pt reads them.
Memory then grows with the number of classes, not of events.
"""

from __future__ import annotations

import gc
import gzip
import math
import os
from array import array
from collections import Counter
from pathlib import Path

from .fingerprint import FingerprintCache, fingerprint, mask_literals, query_id
from .slowlog import FLAGS, MAX_RECORD, SEPARATOR, _time_value, _who, chunk_bounds, parse_records, without_banners
from .tags import tags_of

try:  # the C reader of the usual layouts (_scan.c), built when the package was installed with a C compiler
    from ._scan import Scanner, banner_hint, bucket_counts
except ImportError:  # pragma: no cover - a build without a compiler: the Python reader alone, same results
    Scanner = banner_hint = bucket_counts = None

#: Bytes read at a time by each process.
BLOCK = 4 << 20
FLAG_SET = frozenset(FLAGS)
#: Plain logs smaller than this (in all) are digested in the calling process, without a pool:
#: measured with bench/slowlog.py --crossover on the recorded log (C reader), one process is faster
#: up to 16 MB (0.169 s against 0.188 s) and two pay at 34 MB (0.248 s against 0.269 s).
SINGLE_BELOW = 24 << 20
#: Parts a file is cut into per worker process: one (with the C reader parts take alike, and each part
#: pays again for the fingerprints of its classes: 2,000 classes of 34 MB took 0.93 s with two parts
#: per worker against 0.60 s with one).
PARTS_PER_WORKER = 1
#: A query longer than this is cut before fingerprinting (a multi-megabyte INSERT stays cheap).
MAX_QUERY = 1 << 20
#: Raw attribute values a digest keeps (8 bytes each) before folding the biggest into buckets; with
#: 4 MB blocks, two processes digest a 1 GB log in 141-144 MB of PSS (bench/slowlog_big.py; 245 MB
#: with 2 million and 8 MB).
RAW_BUDGET = 1_000_000
#: Events between two looks at the raw values held.
FOLD_CHECK = 50_000


class Folded:
    """Values of one attribute folded into buckets: exact count, sum, min and max."""

    __slots__ = ("count", "sum", "min", "max", "buckets")
    #: pt-query-digest's buckets: 5 % wide from 1e-6 up.
    GROWTH = 1.05
    FLOOR = 1e-6

    def __init__(self):
        self.count, self.sum, self.min, self.max = 0, 0.0, math.inf, -math.inf
        self.buckets: Counter = Counter()

    def add(self, values) -> None:
        if not values:
            return
        self.count += len(values)
        self.sum = math.fsum((self.sum, math.fsum(values)))
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))
        log, floor, scale = math.log, self.FLOOR, 1.0 / math.log(self.GROWTH)
        if bucket_counts is not None and isinstance(values, array):  # the same rule, in C (folding a million values)
            self.buckets.update(bucket_counts(values, floor, scale))
        else:
            self.buckets.update(0 if v <= floor else 1 + int(log(v / floor) * scale) for v in values)

    def merge(self, other: "Folded") -> None:
        self.count += other.count
        self.sum = math.fsum((self.sum, other.sum))
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.buckets.update(other.buckets)

    def rank(self, rank: int) -> float:
        """The value of the rank-th smallest (1-based), as its bucket's upper bound within [min, max]."""
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return max(self.min, min(self.max, self.FLOOR * self.GROWTH ** b))
        return self.max


class _Slotted:
    """Pickled as a tuple of its slots (classes travel between processes by the thousand)."""

    __slots__ = ()

    def __getstate__(self):
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, state):
        for k, v in zip(self.__slots__, state):
            setattr(self, k, v)


class QueryClass(_Slotted):
    """One class of queries (one fingerprint) and what its events add up to (slots: classes are
    made and pickled between processes by the thousand)."""

    __slots__ = ("fingerprint", "count", "values", "folded", "flags", "ts_min", "ts_max", "dbs", "users", "hosts",
                 "example", "example_time", "example_ts")

    def __init__(self, fingerprint: bytes):
        self.fingerprint = fingerprint
        self.count = 0
        self.values: dict = {}  # attribute -> array('d') of values not folded yet
        self.folded: dict = {}  # attribute -> Folded
        self.flags: Counter = Counter()
        self.ts_min: float | None = None
        self.ts_max: float | None = None
        self.dbs: Counter = Counter()
        self.users: Counter = Counter()
        self.hosts: Counter = Counter()
        self.example = b""
        self.example_time = -1.0
        self.example_ts: float | None = None

    def add(self, e) -> None:
        self.count += 1
        values = self.values
        attrs = e.attrs
        # Numeric attributes are floats; the rest are bytes: flags count when "Yes".
        for name, value in attrs.items():
            if value.__class__ is float:
                arr = values.get(name)
                if arr is None:
                    arr = values[name] = array("d")
                arr.append(value)
            elif value == b"Yes" and name in FLAG_SET:
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

    def fold(self) -> int:
        """Fold every attribute's raw values into buckets; the number of values folded."""
        n = 0
        for name, arr in self.values.items():
            if arr:
                self.folded.setdefault(name, Folded()).add(arr)
                n += len(arr)
        self.values = {name: array("d") for name in self.values}
        return n

    def raw(self) -> int:
        return sum(len(arr) for arr in self.values.values())

    def has(self, name: bytes) -> bool:
        return name in self.values or name in self.folded

    def n(self, name: bytes) -> int:
        """How many events had the attribute."""
        f = self.folded.get(name)
        return len(self.values.get(name, ())) + (f.count if f else 0)

    def total(self, name: bytes) -> float:
        f = self.folded.get(name)
        return math.fsum((math.fsum(self.values.get(name, ())), f.sum if f else 0.0))

    def stat(self, name: bytes) -> dict:
        """sum, min, max, avg, median and pct_95 (nearest rank) of the attribute: exact while its
        values are raw, from buckets (at most 5 % high) once folded."""
        f = self.folded.get(name)
        if f is None or not f.count:
            return stats(self.values.get(name, ()))
        whole = Folded()
        whole.merge(f)
        whole.add(self.values.get(name, ()))
        n = whole.count
        return {"sum": whole.sum, "min": whole.min, "max": whole.max, "avg": whole.sum / n,
                "median": whole.rank((n - 1) // 2 + 1), "pct_95": whole.rank(max(1, math.ceil(0.95 * n)))}

    def attributes(self):
        return sorted(set(self.values) | set(self.folded))

    def merge(self, other: "QueryClass") -> None:
        self.count += other.count
        for name, arr in other.values.items():
            self.values.setdefault(name, array("d")).extend(arr)
        for name, f in other.folded.items():
            mine = self.folded.get(name)
            if mine is None:
                self.folded[name] = f
            else:
                mine.merge(f)
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


class Digest(_Slotted):
    """Classes by fingerprint, and what was read."""

    __slots__ = ("classes", "events", "skipped", "oversized", "filtered", "bytes", "raw", "hour_calls", "hour_time",
                 "python_records")

    def __init__(self):
        self.classes: dict = {}  # fingerprint -> QueryClass
        self.hour_calls: Counter = Counter()  # hour (seconds since the epoch // 3600) -> events
        self.hour_time: Counter = Counter()  # hour -> Query_time summed
        self.events = 0
        self.skipped = 0  # records that held no query (garbage, truncated, header only)
        self.oversized = 0  # records over MAX_RECORD, skipped without being held
        self.filtered = 0  # events before --since
        self.bytes = 0
        self.raw = 0  # raw attribute values held by the classes (see RAW_BUDGET)
        self.python_records = 0  # records the Python parser read (all of them without the C reader)

    def count_raw(self) -> None:
        self.raw = sum(qc.raw() for qc in self.classes.values())

    def fold_if_needed(self) -> None:
        """Fold the classes holding the most raw values until half of RAW_BUDGET is left."""
        if self.raw <= RAW_BUDGET:
            return
        for qc in sorted(self.classes.values(), key=lambda qc: -qc.raw()):
            self.raw -= qc.fold()
            if self.raw <= RAW_BUDGET // 2:
                break

    def merge(self, other: "Digest") -> None:
        for fp, qc in other.classes.items():
            mine = self.classes.get(fp)
            if mine is None:
                self.classes[fp] = qc
            else:
                mine.merge(qc)
        self.events += other.events
        self.skipped += other.skipped
        self.oversized += other.oversized
        self.filtered += other.filtered
        self.bytes += other.bytes
        self.raw += other.raw
        self.python_records += other.python_records
        self.hour_calls.update(other.hour_calls)
        self.hour_time.update(other.hour_time)
        self.fold_if_needed()


#: The readers: "c" (_scan.c for the usual layouts, the Python parser for the rest; the default when
#: built) and "python" (the Python parser alone: `pelbiot-jobs slowlog --reader python`).
READERS = ("c", "python")


def reader(asked: str | None = None) -> str:
    """The reader to use: ``asked``, else "c" when the extension was built, else "python"."""
    if asked not in (None, *READERS):
        raise ValueError(f"reader {asked!r}: one of {', '.join(READERS)}")
    if asked == "c" and Scanner is None:
        from ..lib.errors import InputError

        raise InputError("the C reader was not built (no C compiler at install time): use --reader python")
    return asked or ("c" if Scanner is not None else "python")


def digest_records(records, digest: Digest, since: float | None = None, cache: FingerprintCache | None = None,
                   banners: bool = True, use: str | None = None) -> None:
    """Add records (bytes between separators) to ``digest`` (``banners``: whether records may hold
    server start-up banners still; they are read by the Python parser; ``use``: the reader)."""
    if banners:
        _digest_events(records, digest, since, cache, banners=True)
    else:
        _digest_batches(_in_batches(records), digest, since, cache, reader(use))


def _in_batches(records, size: int = 4096):
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _digest_batches(batches, digest: Digest, since: float | None, cache: FingerprintCache | None,
                    use: str) -> None:
    """Add records holding no banners to ``digest``, by the C reader when there is one: ``batches`` are
    lists of records or, for the C reader only, ``(buffer, start, end)`` (see _blocks)."""
    if use == "python":
        from itertools import chain

        _digest_events(chain.from_iterable(batches), digest, since, cache, banners=False)
        return
    fingerprint_of = FingerprintCache() if cache is None else cache

    def fp_of(query: bytes) -> bytes:  # the queries the C reader leaves to Python: as _digest_events reads them
        query = query if len(query) <= MAX_QUERY else query[:MAX_QUERY]
        return fingerprint_of(query, tags_of(query)[1]) if b"/*" in query else fingerprint_of(query)

    carry: list = []  # what the Python parser must read first with the next records (see parse_records)

    def general(run: list, final: bool) -> tuple[list, bool]:
        """Records of other layouts, read by the Python parser: their events (fingerprint, event) or None
        (skipped), and whether the last of them still looks ahead (then the scanner hands the records
        that follow here too, until it does not)."""
        if carry:
            (kind, record), = carry
            carry.clear()
            if kind == "join" and run:
                run = [record + SEPARATOR + run[0], *run[1:]]
            else:
                run = [record, *run]
        resume = None if final else carry
        out = [None if e is None else (fp_of(e.query), e) for e in parse_records(run, banners=False, resume=resume)]
        return out, bool(carry)

    scanner = Scanner(since=since, fp_of=fp_of, fingerprint=fingerprint, time_of=_time_value, who_of=_who,
                      general=general, cache_size=fingerprint_of.size, cache_bytes=fingerprint_of.max_bytes,
                      max_query=MAX_QUERY)
    for batch in batches:
        if batch.__class__ is list:
            scanner.feed(batch)
        else:
            scanner.feed_block(*batch)
        if scanner.counts()["since_take"] >= FOLD_CHECK:
            _take(scanner, digest)
    scanner.finish()
    _take(scanner, digest)
    counts = scanner.counts()
    digest.events += counts["events"]
    digest.skipped += counts["skipped"]
    digest.filtered += counts["filtered"]
    digest.python_records += counts["python_records"]
    for hour, (calls, seconds) in scanner.hours().items():
        digest.hour_calls[hour] += calls
        digest.hour_time[hour] += seconds


def _counted(records, digest: Digest):
    for record in records:
        digest.python_records += 1
        yield record


def _take(scanner, digest: Digest) -> None:
    """Merge the classes the scanner read since its last take into ``digest``, then fold if needed."""
    classes = digest.classes
    for fp, count, values, flags, ts_min, ts_max, dbs, users, hosts, example, example_time, example_ts in scanner.take():
        qc = QueryClass(fp)
        qc.count = count
        for name, raw in values.items():
            arr = qc.values[name] = array("d")
            arr.frombytes(raw)
        qc.flags.update(flags)
        qc.ts_min, qc.ts_max = ts_min, ts_max
        qc.dbs.update(dbs)
        qc.users.update(users)
        qc.hosts.update(hosts)
        qc.example, qc.example_time, qc.example_ts = example, example_time, example_ts
        mine = classes.get(fp)
        if mine is None:
            classes[fp] = qc
        else:
            mine.merge(qc)
    digest.count_raw()
    digest.fold_if_needed()


def _digest_events(records, digest: Digest, since: float | None, cache: FingerprintCache | None,
                   banners: bool) -> None:
    """The Python reader: every record through slowlog.parse_records."""
    fingerprint_of = FingerprintCache() if cache is None else cache
    records = _counted(records, digest)
    classes = digest.classes
    hour_calls, hour_time = digest.hour_calls, digest.hour_time
    for event in parse_records(records, banners=banners):
        if event is None:
            digest.skipped += 1
            continue
        if since is not None and event.ts is not None and event.ts < since:
            digest.filtered += 1
            continue
        query = event.query if len(event.query) <= MAX_QUERY else event.query[:MAX_QUERY]
        # tagged queries (sqlcommenter, key=value comments) share a cache entry whatever their tags
        fp = fingerprint_of(query, tags_of(query)[1]) if b"/*" in query else fingerprint_of(query)
        qc = classes.get(fp)
        if qc is None:
            qc = classes[fp] = QueryClass(fp)
        qc.add(event)
        digest.events += 1
        if event.ts is not None:
            hour = int(event.ts) // 3600
            hour_calls[hour] += 1
            hour_time[hour] += event.attrs.get(b"Query_time", 0.0)
        if not digest.events % FOLD_CHECK:
            digest.count_raw()
            digest.fold_if_needed()
    digest.count_raw()


def _blocks(readinto, dropped, use: str, size: int | None = None):
    """What a stream read by ``readinto(view)`` holds, a block at a time: each item is a list of records
    or ``(buffer, start, end)``, whose records are ``buffer[start:end].split(SEPARATOR)``, read in place
    by the C reader (the buffer is reused once the next item is asked for). Each block is cut at its last
    separator, the rest waits for the next block (records never hold their separators, wherever a block
    ends). Banner lines are removed block by block. A record larger than MAX_RECORD is never held
    whole: ``dropped()`` is called for each one. ``size``: what the stream holds, when known."""
    want = BLOCK if size is None else max(1, min(size, BLOCK))  # a small file in a buffer of its size
    buf = bytearray(want)
    filled, dropping = 0, False
    while True:
        if len(buf) < filled + want:
            buf.extend(bytes(filled + want - len(buf)))
        with memoryview(buf) as view:
            n = readinto(view[filled:filled + want])
        if not n:
            break
        if size is not None:
            size -= n
            want = max(1, min(size, BLOCK))
        searched = max(0, filled - len(SEPARATOR) + 1)  # what was there holds no separator (but at its end)
        filled += n
        cut = buf.rfind(SEPARATOR, searched, filled)
        if cut < 0:
            if filled > MAX_RECORD:  # never held whole: dropped up to its end (a separator may straddle)
                keep = len(SEPARATOR) - 1
                buf[:keep] = buf[filled - keep:filled]
                filled, dropping = keep, True
            continue
        start = 0
        if dropping:  # the rest of a record larger than MAX_RECORD
            dropped()
            start, dropping = buf.find(SEPARATOR, 0, cut + len(SEPARATOR)) + len(SEPARATOR), False
        if start <= cut:
            yield _records_in(buf, start, cut, use)
        rest = filled - cut - len(SEPARATOR)
        buf[:rest] = buf[cut + len(SEPARATOR):filled]
        filled = rest
    if dropping:
        dropped()
    elif filled:
        yield _records_in(buf, 0, filled, use)


def _records_in(buf: bytearray, start: int, end: int, use: str):
    """The records of ``buf[start:end]``, banner lines removed: in place for the C reader (a copy without
    them when a banner line may be there), a list for the Python reader."""
    c = use == "c"
    if c and not banner_hint(buf, start, end):
        return buf, start, end
    with memoryview(buf) as view:
        data = without_banners(view[start:end].tobytes())
    return (data, 0, len(data)) if c else data.split(SEPARATOR)


def _records_of_range(path: str, start: int, end: int, dropped, use: str):
    """The records between ``start`` and ``end`` of a plain file (see _blocks)."""
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        remaining = end - start

        def readinto(view) -> int:
            nonlocal remaining
            if remaining <= 0:
                return 0
            n = fh.readinto(view[:remaining])
            remaining -= n
            return n

        yield from _blocks(readinto, dropped, use, end - start)


#: A .gz slow log may hold at most this many times its own size (deflate reaches about 1000 on
#: one repeated byte; slow logs compress 10-50 times): more is a decompression bomb, not a log.
MAX_GZIP_RATIO = 200


def _records_of_gzip(path: str, dropped, use: str):
    """The records of a .gz slow log (see _blocks), under the rule of plain files (a record over MAX_RECORD is
    skipped, never held whole), and no more than MAX_GZIP_RATIO times the file's size in all: more
    is an InputError as soon as it is read past, not after the whole bomb is inflated."""
    from ..lib.errors import InputError

    limit = max(os.path.getsize(path), 1 << 20) * MAX_GZIP_RATIO
    seen = 0

    def readinto(view) -> int:
        nonlocal seen
        n = fh.readinto(view)
        seen += n
        if seen > limit:
            raise InputError(f"{path}: inflates to more than {MAX_GZIP_RATIO} times its size; not a slow log")
        return n

    with gzip.open(path, "rb") as fh:
        yield from _blocks(readinto, dropped, use)


def _digest_part(args) -> Digest:
    path, start, end, since, use = args
    digest = Digest()

    def dropped():
        digest.oversized += 1

    records = (_records_of_gzip(path, dropped, use) if end is None
               else _records_of_range(path, start, end, dropped, use))
    # Events, their attributes and the classes hold no reference cycles: refcounting frees them,
    # and the cycle collector's passes over millions of young objects are only cost (5-15 %).
    collecting = gc.isenabled()
    gc.disable()
    try:
        _digest_batches(records, digest, since, None, use)  # banners removed block by block
    finally:
        if collecting:
            gc.enable()
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
                for start, end in chunk_bounds(mm, workers * PARTS_PER_WORKER):
                    parts.append((path, start, end))
    return parts


def digest_files(paths: list[str | Path], workers: int | None = None, since: float | None = None,
                 progress=None, use: str | None = None) -> Digest:
    """Digest slow-log files (plain or .gz) on ``workers`` processes (default: one below SINGLE_BELOW,
    else every core), by the reader ``use`` (see READERS; default: the C reader when built)."""
    paths = [str(p) for p in paths]
    if workers is None:
        # Below SINGLE_BELOW a second process costs more (its start, the parts' pickling, the merge)
        # than it saves: bench/slowlog.py --crossover measures where.
        small = not any(p.endswith(".gz") for p in paths) and sum(os.path.getsize(p) for p in paths) < SINGLE_BELOW
        workers = 1 if small else (os.cpu_count() or 1)
    use = reader(use)
    parts = [(p, s, e, since, use) for p, s, e in plan_parts(paths, workers)]
    total = Digest()
    if workers == 1 or len(parts) <= 1:  # an empty file has no part: 0 events
        for part in parts:
            total.merge(_digest_part(part))
            if progress:
                progress(total.bytes)
        return total
    from concurrent.futures import ProcessPoolExecutor

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
    def iso(ts):
        return _iso(ts) if ts else None

    example = mask_literals(qc.example) if mask_example else qc.example
    metrics = {name.decode(): qc.stat(name) for name in qc.attributes()}
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
    timed = [qc for qc in digest.classes.values() if qc.has(b"Query_time")]
    totals = {id(qc): qc.total(b"Query_time") for qc in timed}
    classes = sorted(timed, key=lambda qc: -totals[id(qc)])
    total_time = math.fsum(totals.values())
    out = [class_summary(qc, mask_example) for qc in (classes[:limit] if limit else classes)]
    for item in out:
        qt = item["metrics"].get("Query_time", {}).get("sum", 0.0)
        item["time_share_percent"] = 100.0 * qt / total_time if total_time else 0.0
    counted = sum(qc.n(b"Query_time") for qc in classes)
    starts = [qc.ts_min for qc in classes if qc.ts_min is not None]
    ends = [qc.ts_max for qc in classes if qc.ts_max is not None]
    return {"classes": out,
            "global": {"query_count": counted, "unique_query_count": len(classes),
                       "query_time_sum": total_time, "skipped_events": digest.skipped,
                       "oversized_events": digest.oversized,
                       # records the Python parser read: those of layouts the C reader does not know
                       "python_records": digest.python_records,
                       "untimed_events": digest.events - counted,
                       "filtered_events": digest.filtered, "bytes": digest.bytes,
                       "ts_min": _iso(min(starts)) if starts else None, "ts_max": _iso(max(ends)) if ends else None,
                       # [hour start, events, Query_time summed] for every hour with events
                       "hours": [[_iso(h * 3600), digest.hour_calls[h], digest.hour_time[h]]
                                 for h in sorted(digest.hour_calls)]}}


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
