"""Slow log parsing (MySQL 5.7/8.0 and MariaDB 10.x), event for event as pt-query-digest reads it. Pure.

Events are separated where a line ending in ``;`` is followed by a line starting with ``#``
(pt-query-digest's record separator ``";\\n#"``). An event's leading lines that start with ``#``,
``use `` or ``SET timestamp/insert_id/last_insert_id`` are its header: ``# Time:``,
``# User@Host:`` and ``Name: value`` attributes (Query_time, Lock_time, Rows_sent, Rows_examined,
Rows_affected, Bytes_sent, Thread_id, Schema, QC_hit, Full_scan, Filesort, Tmp_table_on_disk...,
MySQL 8's log_slow_extra fields). The rest is the query. Garbage, binary bytes, truncated events
and a file that starts mid-event cost the events they touch, never the run; they are counted.
"""

from __future__ import annotations

import datetime as dt
import re

SEPARATOR = b";\n#"
#: A file whose first line is longer than this is not a slow log (no server writes such a banner).
MAX_SLOWLOG_LINE = 32 << 20
#: A record larger than this (a 50 MB INSERT on one line, a run of binary bytes) is skipped by the
#: digest of files, counted, never held whole; the rest of the file is digested.
MAX_RECORD = 32 << 20
#: A file smaller than this is read by one process.
MIN_SPLIT = 1 << 20
_HEADER_LINE = re.compile(
    rb"^(?:T[cC][pP]\s[pP]ort:\s+\d+|[/A-Z].*mysqld,\sVersion.*(?:started\swith:|embedded\slibrary)"
    rb"|Time\s+Id\s+Command).*\n", re.M)
_TS = re.compile(rb"^# Time: ((?:[0-9: ]{15})|(?:[-0-9: T]{19}))")
_UH = re.compile(rb"# User@Host: ([^\[]+|\[[^\[]+\]).*?@ (\S*) \[(.*)\]\s*(?:Id:\s*(\d+))?")
#: Attributes kept as numbers, and the flags counted when "Yes".
NUMERIC = frozenset((b"Query_time", b"Lock_time", b"Rows_sent", b"Rows_examined", b"Rows_affected", b"Bytes_sent"))
FLAGS = (b"Full_scan", b"Full_join", b"Filesort", b"Filesort_on_disk", b"Tmp_table", b"Tmp_table_on_disk",
         b"QC_hit")


class Event:
    """One slow-log event (a plain class with slots: millions are made)."""

    __slots__ = ("query", "attrs", "ts", "user", "host", "db", "admin")

    def __init__(self, query: bytes = b"", attrs: dict | None = None, ts: float | None = None,
                 user: bytes | None = None, host: bytes | None = None, db: bytes | None = None,
                 admin: bool = False):
        self.query = query
        self.attrs = {} if attrs is None else attrs
        self.ts = ts  # seconds since the epoch, UTC
        self.user = user
        self.host = host
        self.db = db
        self.admin = admin

    def __eq__(self, other):
        return isinstance(other, Event) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return f"Event(query={self.query[:60]!r}, ts={self.ts}, attrs={len(self.attrs)})"


#: The last second an event's time may be (9999-12-31 23:59:59 UTC): a SET timestamp of 10^17 or of
#: 400 digits is not a time (it would stop the digest where the hour or the report's date is made).
MAX_EPOCH = 253402300799.0


def epoch(ts: float | None) -> float | None:
    """``ts`` when it is a time from 1970 to 9999 (seconds since the epoch), else None."""
    return ts if ts is not None and 0.0 <= ts <= MAX_EPOCH else None


#: "# Time:" values parsed (events of one second share one; the cache is bounded).
_TIMES: dict[bytes, float | None] = {}


def _parse_time(raw: bytes) -> float | None:
    ts = _TIMES.get(raw, _TIMES)
    if ts is _TIMES:
        ts = epoch(_parse_time_text(raw))
        if len(_TIMES) > 100_000:
            _TIMES.clear()
        _TIMES[raw] = ts
    return ts


#: "261128  9:05:01" and "261128 10:05:01" (MySQL 5.x, MariaDB), read without strptime (hot).
_SHORT_TIME = re.compile(rb"\s*(\d\d)(\d\d)(\d\d) +(\d{1,2}):(\d\d):(\d\d)\s*$")


def _parse_time_text(raw: bytes) -> float | None:
    m = _SHORT_TIME.match(raw)
    if m:
        import calendar

        y, mo, d, h, mi, sec = map(int, m.groups())
        year = 1900 + y if y >= 69 else 2000 + y  # strptime's %y pivot
        if 1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 60:
            try:
                dt.date(year, mo, d)  # a real day (no 31 February)
            except ValueError:
                return None
            return float(calendar.timegm((year, mo, d, h, mi, sec)))
        return None
    return _parse_time_slow(raw)


def _parse_time_slow(raw: bytes) -> float | None:
    text = raw.decode("ascii", "replace").strip()
    for fmt in ("%y%m%d %H:%M:%S", "%y%m%d  %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text[:19] if "T" in text else text, fmt).replace(
                tzinfo=dt.timezone.utc).timestamp()
        except ValueError:
            continue
    try:  # MariaDB pads single-digit hours: "261128  9:05:01"
        day, clock = text.split()
        return dt.datetime.strptime(f"{day} {clock}", "%y%m%d %H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return None


#: A line that starts an event's header, once its "#" went with the separator: "Time:",
#: "Query_time:", "User@Host:"...
_HEADER_START = re.compile(rb"^\s*(?:[A-Z][a-z_]+|User@Host): ")
_LEADING_NUMBER = re.compile(rb"\d+(?:\.\d+)?")
#: The largest number an attribute may hold: no counter a server writes passes 2^64 (1.8e19; a wrapped
#: timer reads 18446744073708.79 s). A value of 400 digits is no number: it would make sums infinite
#: (or overflow them) and stop the digest; it is left out, as text that is not a number is.
MAX_NUMBER = 1e20


def number(value: bytes) -> float | None:
    """A header value as a number; a broken one (``18446744073708.796870.000036``, a timer that
    wrapped) by its leading number, as pt-query-digest reads it; None when it has none."""
    try:
        x = float(value)
    except ValueError:
        m = _LEADING_NUMBER.match(value)
        x = float(m.group()) if m else None
    return x if x is None or x <= MAX_NUMBER else None


def _may_have_banner(record: bytes) -> bool:
    """Cheap test before the banner regex ("Filesort:" must not trigger it)."""
    return (b"Version" in record or b"Command" in record
            or (b"ort:" in record and (b"Tcp" in record or b"TCP" in record or b"tcp" in record)))


#: What pt-query-digest makes of an event with no query text: a class of its own (fingerprint "").
NO_QUERY = b"/* No query */"


def _end_stripped(record: bytes) -> bytes:
    """The record without its final ``;`` line end, as Perl's ``s/;\\n#?\\Z//`` (``\\Z``: the end or
    before a final newline): ``select 1;\\n\\n`` -> ``select 1\\n``."""
    if record.endswith(b";\n"):
        return record[:-2]
    if record.endswith(b";\n\n"):
        return record[:-3] + b"\n"
    if record.endswith(b";\n#"):
        return record[:-3]
    if record.endswith(b";\n#\n"):
        return record[:-4] + b"\n"
    return record


#: Literal parts of the banner lines, found with memchr-speed searches; a line holding one is then
#: matched whole.
_BANNER_HINTS = (b", Version", b"Command", b"port:", b"Port:")


def without_banners(data: bytes) -> bytes:
    """``data`` without server start-up banner lines (a block of records at a time: cheaper than
    record by record, and the same, since removing them only ever uncovers separators)."""
    starts = set()
    for hint in _BANNER_HINTS:
        at = data.find(hint)
        while at >= 0:
            starts.add(data.rfind(b"\n", 0, at) + 1)
            at = data.find(hint, at + len(hint))
    if not starts:
        return data
    kept, pos = [], 0
    for start in sorted(starts):
        if start < pos:
            continue
        line = _HEADER_LINE.match(data, start)
        if line:
            kept.append(data[pos:start])
            pos = line.end()
    if not kept:
        return data
    kept.append(data[pos:])
    return b"".join(kept)


def parse_records(records, state: dict | None = None, banners: bool = True, resume: list | None = None):
    """Events of records (None for a record that holds no event), as pt-query-digest reads them.

    Records are what lies between separators, without them (the ``#`` that starts the next
    record is part of the separator). Server start-up banners are removed first; when that
    uncovers a separator (a banner between two events), the record is split again.

    A record of header lines only looks ahead, as pt-query-digest reads its stream: the next
    line (up to ``;\\n``) decides. A line that starts the next event's header (``Time: ...``)
    makes the record an event with no query (its own class, ``/* No query */``), and is read again
    as the start of the next event; anything else is the record's query (``administrator command:
    Quit`` after MySQL's ``SET timestamp=...;``). A header-only record with nothing after it is
    skipped. What is left of a record whose first line was taken is read as a record of its own,
    and may look ahead in turn. ``state["open"]`` tells whether the records ran out while a
    look-ahead was still wanted (reading should have gone on past them). ``banners=False``: the
    records are known to hold none (see without_banners). ``resume``: when the records run out while a
    look-ahead is still wanted, nothing is yielded for it; what must be read first with the records that
    follow is appended instead: ``("again", record)`` (read it again) or ``("join", record)`` (it and the
    next record are one, as pt reads on to the next ``;\n``). Everything yielded is final either way.

    One deliberate difference: pt-query-digest 3.x tells a following header line by
    ``^\\s*[A-Z][a-z_]+: ``, which ``User@Host:`` does not match, so it takes the next event's
    ``User@Host`` line and the rest of its header as a query, and the rest of that event looks
    ahead in turn: after MariaDB logs a ``use db`` statement (a record ending with its ``use``
    line), every following event with a one-line query becomes one bogus class. Here a
    ``User@Host:`` line starts the next event, as ``Time:`` does.
    """
    it = iter(records)
    pending: list[bytes] = []
    while True:
        if pending:
            record = pending.pop()
        else:
            record = next(it, None)
            if record is None:
                return
        if len(record) < 64 and not record.strip(b"#\n ;"):
            continue  # nothing at all: not an event, not a skipped one
        if banners and _may_have_banner(record):
            cleaned = _HEADER_LINE.sub(b"", record)
            if cleaned != record:
                record, *more = cleaned.split(SEPARATOR)
                pending.extend(reversed(more))
        event = parse_record(record, banners_removed=True, keep_header_only=True)
        if event is None or event.query.strip():
            yield event
            continue
        if _end_stripped(record).endswith(b"\n"):
            yield None  # the header ends with a line end: pt reads an empty query and drops it
            continue
        following = pending.pop() if pending else next(it, None)
        if following is None:
            if resume is not None:
                resume.append(("again", record))
                return
            if state is not None:
                state["open"] = True
            yield None
            return
        cut = following.find(b";\n")
        line = following[:cut] if cut >= 0 else following
        if _HEADER_START.match(line):
            event.query = NO_QUERY
            yield event
            if cut >= 0:
                pending.append(following)
            else:  # pt reads on to the next separator: the record after joins this one
                after = pending.pop() if pending else next(it, None)
                if after is None and resume is not None:
                    resume.append(("join", following))
                    return
                if after is None and state is not None:
                    state["open"] = True
                pending.append(following if after is None else following + SEPARATOR + after)
            continue
        event.query = line.lstrip()
        event.admin = event.query.startswith(b"administrator command:")
        yield event if event.query else None
        if cut >= 0 and following[cut + 2:]:
            pending.append(following[cut + 2:])


#: Records read again before a place a reader would start at, to find what state it is in there.
LOOK_BACK = 200


def is_safe_separator(data, at: int) -> bool:
    """Whether a reader may start just after the separator at ``at`` on its own: read from up to
    LOOK_BACK records before it, nothing still looks ahead there (see parse_records). Look-ahead
    chains end within a few records in practice: a multi-line query or a ``Time:`` line ends them."""
    window = bytes(data[max(0, at - (1 << 18)):at])
    records = window.split(SEPARATOR)
    if at > len(window):
        records = records[1:]  # the first one is cut
    state = {"open": False}
    for _ in parse_records(records[-LOOK_BACK:], state):
        pass
    return not state["open"]


def safe_separator(data, start: int, end: int) -> int:
    """The first safe separator in ``data[start:end]``, -1 if none."""
    at = start
    while True:
        at = data.find(SEPARATOR, at, end)
        if at < 0 or is_safe_separator(data, at):
            return at
        at += len(SEPARATOR)


#: Attributes read from the header; an empty value ("Schema:  QC_hit: No": the next name) is skipped.
_WANTED = re.compile(rb"\b(Query_time|Lock_time|Rows_sent|Rows_examined|Rows_affected|Bytes_sent|Schema"
                     rb"|Full_scan|Filesort|Tmp_table_on_disk|QC_hit): +([^\s:]\S*(?<!:))(?!\S)")
_SET_HEADERS = (b"SET timestamp", b"SET insert_id", b"SET last_insert_id")


# The layout MariaDB writes, matched in one pass (most records); anything else takes the
# general path below, which reads any order of header lines.
_MARIADB = re.compile(rb"""
    \#\ (?:Time:\ (?P<time>[^\n]*)\n\#\ )?
    User@Host:\ (?P<uh>[^\n]*)\n
    \#\ Thread_id:\ \d+\s+Schema:\ (?P<schema>[^\s:]*)\s+QC_hit:\ (?P<qc>\w+)\n
    \#\ Query_time:\ (?P<qt>[\d.]+)\s+Lock_time:\ (?P<lt>[\d.]+)\s+Rows_sent:\ (?P<rs>\d+)
        \s+Rows_examined:\ (?P<rx>\d+)\n
    \#\ Rows_affected:\ (?P<ra>\d+)\s+Bytes_sent:\ (?P<bs>\d+)\n
    (?:\#\ Tmp_tables:[^\n]*\n)?
    (?:\#\ Full_scan:\ (?P<fscan>\w+)\s+Full_join:\ \w+\s+Tmp_table:\ \w+\s+Tmp_table_on_disk:\ (?P<tdisk>\w+)\n
       \#\ Filesort:\ (?P<fsort>\w+)[^\n]*\n)?
    (?:\#[^\n]*\n)*
    (?:use\ (?P<db>[^;\n]*);\n)?
    (?:SET\ timestamp=(?P<ts>\d+);\n)?
    (?!\#|use\ |SET\ (?:timestamp|insert_id|last_insert_id))
    """, re.X)


# The layout MySQL 5.7 and 8.0 write (with or without log_slow_extra's fields after Rows_examined).
_MYSQL = re.compile(rb"""
    \#\ Time:\ (?P<time>[^\n]*)\n
    \#\ User@Host:\ (?P<uh>[^\n]*)\n
    \#\ Query_time:\ (?P<qt>[\d.]+)\s+Lock_time:\ (?P<lt>[\d.]+)\s+Rows_sent:\ (?P<rs>\d+)
        \s+Rows_examined:\ (?P<rx>\d+)(?P<extra>[^\n]*)\n
    (?:use\ (?P<db>[^;\n]*);\n)?
    (?:SET\ timestamp=(?P<ts>\d+);\n)?
    (?!\#|use\ |SET\ (?:timestamp|insert_id|last_insert_id))
    """, re.X)
#: Attributes read that log_slow_extra does not write: a record holding one takes the general path.
_NOT_IN_EXTRA = (b"Rows_affected:", b"Schema:", b"Full_scan:", b"Filesort:", b"Tmp_table_on_disk:", b"QC_hit:")

#: User@Host lines seen, parsed (a log has few distinct ones).
_USER_HOST: dict[bytes, tuple] = {}


def _who(uh: bytes) -> tuple:
    """(user, host) of a User@Host line's text, as pt-query-digest reads them (host, else IP)."""
    who = _USER_HOST.get(uh)
    if who is None:
        m = _UH.match(b"# User@Host: " + uh)
        who = (m.group(1), m.group(2) or m.group(3)) if m else (None, None)
        if len(_USER_HOST) < 10_000:
            _USER_HOST[uh] = who
    return who


def _time_value(value: bytes | None) -> float | None:
    """The time of a ``# Time:`` line's value (what follows ``# Time: ``), None when there is none."""
    tm = _TS.match(b"# Time: " + value) if value else None
    return _parse_time(tm.group(1)) if tm else None


def _fast_mysql(record: bytes) -> Event | None:
    m = _MYSQL.match(record)
    if m is None:
        return None
    query = record[m.end():]
    if not query.strip():
        return None
    time_, uh, qt, lt, rs, rx, extra, db, ts = m.groups()
    try:
        qt, lt = float(qt), float(lt)
    except ValueError:
        return None
    attrs = {b"Query_time": qt, b"Lock_time": lt, b"Rows_sent": float(rs), b"Rows_examined": float(rx)}
    if max(attrs.values()) > MAX_NUMBER:
        return None  # the general path leaves out what is not a number
    if extra:
        if any(name in extra for name in _NOT_IN_EXTRA):
            return None
        at = extra.find(b"Bytes_sent: ")
        words = extra[at + 12:].split(None, 1) if at >= 0 else ()
        value = number(words[0]) if words else None
        if value is not None:
            attrs[b"Bytes_sent"] = value
    user, host = _who(uh)
    return Event(query, attrs, epoch(float(ts)) if ts else _time_value(time_), user, host, db or None)


def _fast(record: bytes) -> Event | None:
    m = _MARIADB.match(record)
    if m is None:
        return None
    query = record[m.end():]
    if not query.strip():
        return None
    time_, uh, schema, qc, qt, lt, rs, rx, ra, bs, fscan, tdisk, fsort, db, ts = m.groups()
    try:
        qt, lt = float(qt), float(lt)
    except ValueError:
        qt, lt = number(qt), number(lt)
        if qt is None or lt is None:
            return None  # the general path drops what is not a number
    attrs = {b"Query_time": qt, b"Lock_time": lt, b"Rows_sent": float(rs),
             b"Rows_examined": float(rx), b"Rows_affected": float(ra), b"Bytes_sent": float(bs)}
    if max(attrs.values()) > MAX_NUMBER:
        return None  # the general path leaves out what is not a number
    attrs[b"QC_hit"] = qc
    if schema:
        attrs[b"Schema"] = schema
    if fscan is not None:
        attrs[b"Full_scan"] = fscan
        attrs[b"Tmp_table_on_disk"] = tdisk
        attrs[b"Filesort"] = fsort
    user, host = _who(uh)
    return Event(query, attrs, epoch(float(ts)) if ts else _time_value(time_), user, host, db or schema or None)


def parse_record(record: bytes, banners_removed: bool = False, keep_header_only: bool = False,
                 fast: bool = True) -> Event | None:
    """One record (between separators) -> an Event, or None when it holds no query.

    The hot loop of every digest: one split into lines, a cheap walk to the first query line,
    then every attribute of the header in one regex pass; timestamps parsed only when needed.
    """
    if not banners_removed and _may_have_banner(record):
        record = _HEADER_LINE.sub(b"", record)
    if not record.startswith(b"#"):
        record = b"#" + record
    record = _end_stripped(record)
    if fast and record[:7] in (b"# User@", b"# Time:"):
        event = _fast(record)
        if event is None and record[:7] == b"# Time:":
            event = _fast_mysql(record)
        if event is not None:
            return event
    lines = record.split(b"\n")
    event = Event(query=b"")
    time_line = uh_line = None
    i, n, pos = 0, len(lines), 0
    while i < n:
        line = lines[i]
        first = line[:1]
        if first == b"#":
            if line.startswith(b"# administrator command:"):
                event.query = line[2:].lstrip()
                event.admin = True
                break
            if time_line is None and line.startswith(b"# Time:"):
                time_line = line
            elif uh_line is None and line.startswith(b"# User@Host:"):
                uh_line = line
        elif first == b"u" and line.startswith(b"use "):
            if event.db is None:
                event.db = line[4:].split(b";", 1)[0]
        elif first == b"S" and line.startswith(_SET_HEADERS):
            if line.startswith(b"SET timestamp="):
                try:
                    event.ts = epoch(float(line[14:].split(b";", 1)[0].split(b",", 1)[0]))
                except ValueError:
                    pass
        else:
            event.query = record[pos:]
            break
        i += 1
        pos += len(line) + 1
    attrs = event.attrs
    # Only the attributes used, in one regex pass over the header (literal names: fast).
    for name, value in _WANTED.findall(record, 0, pos):
        if name in NUMERIC:
            value = number(value)
            if value is not None:
                attrs[name] = value
        else:
            attrs[name] = value
    if uh_line is not None:
        m = _UH.match(uh_line)
        if m:
            event.user, host, ip = m.group(1), m.group(2), m.group(3)
            event.host = host or ip
    if event.ts is None and time_line is not None:
        m = _TS.match(time_line)
        if m:
            event.ts = _parse_time(m.group(1))
    if not event.query.strip():
        return event if keep_header_only else None
    if event.db is None and b"Schema" in attrs:
        event.db = attrs[b"Schema"]
    return event


def split_records(data: bytes):
    """Records of a chunk of slow log (pt-query-digest's ``";\\n#"`` separator)."""
    return data.split(SEPARATOR)


def chunk_bounds(data: bytes | memoryview, parts: int) -> list[tuple[int, int]]:
    """Split ``data`` into ``parts`` byte ranges, each starting just after a separator that a reader
    may start at on its own (:func:`safe_separator`)."""
    size = len(data)
    if parts <= 1 or size < MIN_SPLIT:
        return [(0, size)]
    starts = [0]
    for i in range(1, parts):
        guess = i * size // parts
        at = safe_separator(data, guess, min(size, guess + (1 << 22)))
        if at < 0:
            continue
        start = at + len(SEPARATOR)
        if start > starts[-1]:
            starts.append(start)
    return [(s, e) for s, e in zip(starts, starts[1:] + [size])]
