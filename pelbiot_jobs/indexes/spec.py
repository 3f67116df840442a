"""``schedules/indexes.yaml``: the indexes the app DB should have.

    indexes:
      - table: load_profiles
        columns: [device_id, created_at]         # or {name: message, length: 100, order: desc}
        name: idx_load_profiles_device_created   # optional: derived from table and columns
        unique: false
        reason: per-device history, newest first

Structure problems are ``FILE:LINE`` errors (the file is not used). Names are checked later, in the
plan: a hostile identifier makes its entry ``invalid``, and no statement is ever built from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..lib.specfile import LineMap, checks, load_yaml

FILE = "indexes.yaml"
ENTRY_KEYS = ("table", "columns", "name", "unique", "reason")
COLUMN_KEYS = ("name", "length", "order")


@dataclass(frozen=True)
class Wanted:
    table: object
    columns: tuple  # of (name, length, descending)
    name: object
    unique: bool
    reason: str
    line: int


def parse_spec(path: Path, problems: list[str]) -> list[Wanted]:
    data = load_yaml(path, problems)
    if data is None:
        return []
    if not isinstance(data, LineMap) or not isinstance(data.get("indexes"), list):
        problems.append(f"{path}:1: expected a mapping with an 'indexes:' list")
        return []
    for key in data:
        if key != "indexes":
            problems.append(f"{path}:{data.lines[key]}: unknown key {key!r} (allowed: indexes)")
    out = []
    for entry in data["indexes"]:
        if not isinstance(entry, LineMap):
            problems.append(f"{path}:{data.lines['indexes']}: each index must be a mapping (table, columns, ...)")
            continue
        line = entry.line
        for key in entry:
            if key not in ENTRY_KEYS:
                problems.append(f"{path}:{entry.lines[key]}: unknown key {key!r} (allowed: {', '.join(ENTRY_KEYS)})")
        if "table" not in entry or "columns" not in entry:
            problems.append(f"{path}:{line}: an index needs 'table' and 'columns'")
            continue
        raw_cols = entry["columns"]
        if not isinstance(raw_cols, list) or not raw_cols:
            problems.append(f"{path}:{entry.lines['columns']}: columns must be a non-empty list")
            continue
        cols, ok = [], True
        for c in raw_cols:
            if isinstance(c, LineMap):
                unknown = [k for k in c if k not in COLUMN_KEYS]
                length, order = c.get("length"), str(c.get("order", "asc")).lower()
                if unknown or "name" not in c or (length is not None and (isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 3072)) \
                        or order not in ("asc", "desc"):
                    problems.append(f"{path}:{c.line}: a column is a name or {{name, length (a positive number), "
                                    "order: asc|desc}}")
                    ok = False
                    continue
                cols.append((c["name"], length, order == "desc"))
            else:
                cols.append((c, None, False))
        unique = entry.get("unique", False)
        if not isinstance(unique, bool):
            problems.append(f"{path}:{entry.lines['unique']}: unique must be true or false")
            ok = False
        if ok:
            out.append(Wanted(entry["table"], tuple(cols), entry.get("name"), unique, str(entry.get("reason", "")),
                              line))
    return out


@checks("indexes.yaml")
def check(path: Path, problems: list[str], deep: bool = True) -> None:
    parse_spec(path, problems)
