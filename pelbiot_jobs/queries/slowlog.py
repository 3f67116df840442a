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
from dataclasses import dataclass, field

SEPARATOR = b";\n#"
_HEADER_LINE = re.compile(
    rb"^(?:T[cC][pP]\s[pP]ort:\s+\d+|[/A-Z].*mysqld,\sVersion.*(?:started\swith:|embedded\slibrary)"
    rb"|Time\s+Id\s+Command).*\n", re.M)
_TS = re.compile(rb"^# Time: ((?:[0-9: ]{15})|(?:[-0-9: T]{19}))")
_UH = re.compile(rb"# User@Host: ([^\[]+|\[[^\[]+\]).*?@ (\S*) \[(.*)\]\s*(?:Id:\s*(\d+))?")
_ATTRS = re.compile(rb"(\w+):\s+(\S+|\Z)")
_ATTR_LINE = re.compile(rb"^# +[A-Z][A-Za-z_]+: \S+")
_SET_TS = re.compile(rb"^SET\s+(?:.*\b)?timestamp=(\d+)")
_HEADER_STARTS = (b"#", b"use ", b"SET last_insert_id", b"SET insert_id", b"SET timestamp")
#: Attributes kept as numbers, and the flags counted when "Yes".
NUMERIC = (b"Query_time", b"Lock_time", b"Rows_sent", b"Rows_examined", b"Rows_affected", b"Bytes_sent")
FLAGS = (b"Full_scan", b"Full_join", b"Filesort", b"Filesort_on_disk", b"Tmp_table", b"Tmp_table_on_disk",
         b"QC_hit")


@dataclass
class Event:
    query: bytes
    attrs: dict = field(default_factory=dict)  # name -> float (NUMERIC) or bytes
    ts: float | None = None  # seconds since the epoch, UTC
    user: bytes | None = None
    host: bytes | None = None
    db: bytes | None = None
    admin: bool = False


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
        if not record.strip(b"#\n ;"):
            continue  # nothing at all: not an event, not a skipped one
        parts = [record]
        if b"ort:" in record or b"Version" in record or b"Command" in record:
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


def parse_record(record: bytes, banners_removed: bool = False, keep_header_only: bool = False) -> Event | None:
    """One record (between separators) -> an Event, or None when it holds no query."""
    if not banners_removed and (b"ort:" in record or b"Version" in record or b"Command" in record):
        record = _HEADER_LINE.sub(b"", record)
    if not record.startswith(b"#"):
        record = b"#" + record
    if record.endswith(b";\n"):
        record = record[:-2]
    event = Event(query=b"")
    pos = 0
    length = len(record)
    got_ts = got_uh = got_db = False
    while pos < length:
        end = record.find(b"\n", pos)
        if end < 0:
            end = length
        line = record[pos:end]
        if not line.startswith(_HEADER_STARTS):
            event.query = record[pos:]
            break
        if line.startswith(b"# Time:"):
            if not got_ts:
                m = _TS.match(line)
                if m:
                    event.ts = _parse_time(m.group(1))
                    got_ts = True
        elif line.startswith(b"# User@Host:"):
            if not got_uh:
                m = _UH.match(line)
                if m:
                    event.user, host, ip = m.group(1), m.group(2), m.group(3)
                    event.host = host or ip
                    got_uh = True
        elif line.startswith(b"# administrator command:"):
            event.query = line[2:].lstrip()
            event.admin = True
            break
        elif line.startswith(b"use "):
            if not got_db:
                event.db = line[4:].split(b";", 1)[0]
                got_db = True
        elif line.startswith(b"SET "):
            m = _SET_TS.match(line)
            if m:
                event.ts = float(m.group(1))
        elif _ATTR_LINE.match(line):
            if b"Schema:" in line and re.search(rb"Schema:\s+\w+: ", line):
                line = re.sub(rb"Schema:\s+", b"", line, count=1)
            for name, value in _ATTRS.findall(line):
                if name in NUMERIC:
                    try:
                        event.attrs[name] = float(value)
                    except ValueError:
                        pass
                else:
                    event.attrs[name] = value
        pos = end + 1
    if not event.query.strip():
        return event if keep_header_only else None
    if event.db is None and b"Schema" in event.attrs:
        event.db = event.attrs[b"Schema"]
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
