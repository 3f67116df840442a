"""What an index costs the writes and saves the reads, from the stored query digests. Pure.

Every secondary index is written on each INSERT and DELETE of a row of its table, and on each
UPDATE that changes one of its columns (an entry removed, one added). What it saves is the rows
its reads no longer examine: a query served by the index reads about the rows it sends instead
of the rows it scanned. The verdict weighs the two per hour over the digests' days:

    rows saved per hour  >=  WRITE_COST x index entries written per hour

WRITE_COST (10) is the assumption to question: an index entry written is a change to a random
B-tree page (with its redo and, on a busy table, page splits), about ten rows read in a scan.
A table is *write-heavy* when it receives more write statements per hour than read statements.

The digests see what their source logs: a slow log with ``long_query_time`` above zero records
only the slow writes, so the writes are then a floor, and the verdict says which source it read.
"""

from __future__ import annotations

import re

#: An index entry written costs about this many rows examined by a scan.
WRITE_COST = 10

_NAME = r"`?(?:\w+`?\.`?)?(\w+)`?"
_INSERT = re.compile(rf"^\s*(?:insert|replace)(?:\s+(?:low_priority|delayed|high_priority|ignore))*\s+(?:into\s+)?{_NAME}",
                     re.I)
_UPDATE = re.compile(rf"^\s*update(?:\s+(?:low_priority|ignore))*\s+{_NAME}(?:\s+(?:as\s+)?\w+)?\s+set\s+(.*?)"
                     r"(?:\s+where\s|\s+order\s+by\s|\s+limit\s|$)", re.I | re.S)
_DELETE = re.compile(rf"^\s*delete(?:\s+(?:low_priority|quick|ignore))*\s+from\s+{_NAME}", re.I)
_SET_COLUMN = re.compile(r"(?:^|,)\s*(?:`?\w+`?\.)?`?(\w+)`?\s*=")
_READS = re.compile(r"^\s*(?:\(\s*)?(?:select|with)\b", re.I)
_FROM = r"(?:from|join)\s+`?(?:\w+`?\.`?)?{table}`?(?:\s|,|\)|$)"


def write_of(fingerprint: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(kind, table, columns SET) of a single-table write statement (its example or fingerprint);
    None otherwise."""
    m = _INSERT.match(fingerprint)
    if m:
        return "insert", m.group(1).lower(), ()
    m = _UPDATE.match(fingerprint)
    if m:
        return "update", m.group(1).lower(), tuple(c.lower() for c in _SET_COLUMN.findall(m.group(2)))
    m = _DELETE.match(fingerprint)
    if m:
        return "delete", m.group(1).lower(), ()
    return None


def writes_by_table(digests: list[dict]) -> dict[str, list[dict]]:
    """Per table (lower case), its write classes: kind, SET columns, calls and rows affected."""
    out: dict[str, list[dict]] = {}
    for d in digests:
        w = write_of(statement(d))
        if w is None:
            continue
        kind, table, columns = w
        calls = int(d.get("calls") or 0)
        rows = int(d.get("rows_affected_sum") or 0) or calls  # a source without Rows_affected: a row a call
        out.setdefault(table, []).append({"kind": kind, "columns": columns, "calls": calls, "rows": rows,
                                          "query_id": d.get("query_id", "")})
    return out


def reads_of_table(digests: list[dict], table: str) -> int:
    """Read statements (calls) that name ``table`` after FROM or JOIN."""
    pattern = re.compile(_FROM.format(table=re.escape(table)), re.I)
    return sum(int(d.get("calls") or 0) for d in digests if _READS.match(statement(d)) and pattern.search(statement(d)))


def statement(d: dict) -> str:
    """The text a class's tables are read from: its example (literals masked, names as written),
    else its fingerprint (which turns digits in names into ``?``, as pt's does: ``t_2024`` -> ``t_?``)."""
    return d.get("example") or d.get("fingerprint") or ""


def weigh(table: str, columns: tuple[str, ...], served: list[dict], digests: list[dict],
          writes: dict[str, list[dict]], hours: float) -> dict:
    """The workload of one suggestion: the reads it speeds (its classes: calls, time and rows
    examined per hour, the rows it would save) and the writes it slows (inserts, updates and
    deletes per hour on its table; the updates that change its columns; index entries written per
    hour), the table's reads and writes per hour, and the verdict."""
    hours = max(hours, 1.0)
    cols = {c.lower() for c in columns}
    t = table.lower()
    reads = sum(int(d.get("calls") or 0) for d in served)
    read_time = sum(float(d.get("query_time_sum") or 0.0) for d in served)
    examined = sum(int(d.get("rows_examined_sum") or 0) for d in served)
    sent = sum(int(d.get("rows_sent_sum") or 0) for d in served)
    saved = max(0, examined - sent)
    by_kind = {"insert": 0, "update": 0, "delete": 0}
    entries = changing = 0
    for w in writes.get(t, []):
        by_kind[w["kind"]] += w["calls"]
        if w["kind"] in ("insert", "delete"):
            entries += w["rows"]
        elif cols & set(w["columns"]):
            changing += w["calls"]
            entries += 2 * w["rows"]  # the old entry out, the new one in
    table_writes = sum(by_kind.values())
    table_reads = reads_of_table(digests, t)
    out = {"hours": round(hours, 1),
           "reads_per_hour": round(reads / hours, 1), "read_time_s_per_hour": round(read_time / hours, 3),
           "rows_examined_per_hour": round(examined / hours), "rows_saved_per_hour": round(saved / hours),
           "inserts_per_hour": round(by_kind["insert"] / hours, 1), "updates_per_hour": round(by_kind["update"] / hours, 1),
           "deletes_per_hour": round(by_kind["delete"] / hours, 1),
           "updates_changing_its_columns_per_hour": round(changing / hours, 1),
           "index_entries_written_per_hour": round(entries / hours),
           "table_reads_per_hour": round(table_reads / hours, 1), "table_writes_per_hour": round(table_writes / hours, 1)}
    out["write_heavy"] = table_writes > table_reads
    out["pays"] = saved >= WRITE_COST * entries
    out["verdict"] = verdict(table, out)
    return out


def verdict(table: str, w: dict) -> str:
    heavy = (f"{table} is write-heavy ({w['table_writes_per_hour']:,} writes/h against "
             f"{w['table_reads_per_hour']:,} reads/h)") if w["write_heavy"] else \
        f"{table} is read-heavy ({w['table_reads_per_hour']:,} reads/h against {w['table_writes_per_hour']:,} writes/h)"
    weighed = (f"it would save {w['rows_saved_per_hour']:,} rows read/h for {w['index_entries_written_per_hour']:,} "
               f"index entries written/h (an entry counted as {WRITE_COST} rows)")
    if w["pays"]:
        return f"pays: {heavy}; {weighed}"
    return f"does not pay: {heavy}; {weighed}; not proposed"
