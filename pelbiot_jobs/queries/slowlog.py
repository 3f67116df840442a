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


def _parse_time(raw: bytes) -> float | None:
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


_ATTR_START = re.compile(rb"^\s*[A-Z][a-z_]+: ")


def _may_have_banner(record: bytes) -> bool:
    """Cheap test before the banner regex ("Filesort:" must not trigger it)."""
    return (b"Version" in record or b"Command" in record
            or (b"ort:" in record and (b"Tcp" in record or b"TCP" in record or b"tcp" in record)))


def parse_records(records):
    """Events of records (None for a record that holds no event), as pt-query-digest reads them.

    Server start-up banners are removed first; when that uncovers a separator (a banner between
    two events), the record is split again. A record of header lines only (MySQL logs
    ``SET timestamp=...;`` then ``# administrator command: Quit;``) takes the first line of the
    next record as its query, as pt-query-digest does.
    """
    header_only = None
    for record in records:
        if header_only is not None:
            first, _, rest = record.partition(b";\n")
            if not _ATTR_START.match(first):
                header_only.query = first.strip().lstrip(b"#").strip()
                header_only.admin = header_only.query.startswith(b"administrator command:")
                yield header_only if header_only.query else None
                record = rest
            else:
                yield None
            header_only = None
        if len(record) < 64 and not record.strip(b"#\n ;"):
            continue  # nothing at all: not an event, not a skipped one
        parts = [record]
        if _may_have_banner(record):
            cleaned = _HEADER_LINE.sub(b"", record)
            parts = cleaned.split(SEPARATOR) if cleaned != record else [cleaned]
        for part in parts:
            event = parse_record(part, banners_removed=True, keep_header_only=True)
            if event is not None and not event.query.strip():
                if event.attrs or event.ts:
                    header_only = event
                continue
            yield event
    if header_only is not None:
        yield None


#: Attributes read from the header; an empty value ("Schema:  QC_hit: No") is skipped.
_WANTED = re.compile(rb"\b(Query_time|Lock_time|Rows_sent|Rows_examined|Rows_affected|Bytes_sent|Schema"
                     rb"|Full_scan|Filesort|Tmp_table_on_disk|QC_hit): +([^\s:]\S*)")
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


def _fast(record: bytes) -> Event | None:
    m = _MARIADB.match(record)
    if m is None:
        return None
    query = record[m.end():]
    if not query.strip():
        return None
    time_, uh, schema, qc, qt, lt, rs, rx, ra, bs, fscan, tdisk, fsort, db, ts = m.groups()
    attrs = {b"Query_time": float(qt), b"Lock_time": float(lt), b"Rows_sent": float(rs),
             b"Rows_examined": float(rx), b"Rows_affected": float(ra), b"Bytes_sent": float(bs), b"QC_hit": qc}
    if schema:
        attrs[b"Schema"] = schema
    if fscan is not None:
        attrs[b"Full_scan"] = fscan
        attrs[b"Tmp_table_on_disk"] = tdisk
        attrs[b"Filesort"] = fsort
    # "root[root] @  [127.0.0.1]": user before "[", host after "@ ", IP in the last brackets.
    user = uh.split(b"[", 1)[0] or None
    rest = uh.partition(b"@ ")[2]
    host, _, ip = rest.partition(b" [")
    event = Event(query, attrs, float(ts) if ts else None, user, host.strip() or ip.rstrip(b"] ") or None,
                  db or schema or None)
    if event.ts is None and time_:
        tm = _TS.match(b"# Time: " + time_)
        event.ts = _parse_time(tm.group(1)) if tm else None
    return event


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
    if record.endswith(b";\n"):
        record = record[:-2]
    if fast and record[:7] in (b"# User@", b"# Time:"):
        event = _fast(record)
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
                    event.ts = float(line[14:].split(b";", 1)[0].split(b",", 1)[0])
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
            try:
                attrs[name] = float(value)
            except ValueError:
                pass
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
    """Split ``data`` into ``parts`` byte ranges that start at a record separator."""
    size = len(data)
    if parts <= 1 or size < 1 << 20:
        return [(0, size)]
    starts = [0]
    for i in range(1, parts):
        at = bytes(data[i * size // parts: min(size, i * size // parts + (1 << 22))]).find(SEPARATOR)
        if at < 0:
            continue
        start = i * size // parts + at + len(SEPARATOR) - 1  # keep the "#" with the next record
        if start > starts[-1]:
            starts.append(start)
    return [(s, e) for s, e in zip(starts, starts[1:] + [size])]
