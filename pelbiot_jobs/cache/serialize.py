"""JSON exactly as the PELBIOT API (Express + mysql2, defaults) would send the same rows. Pure.

mysql2's defaults: DECIMAL columns and decimal results (AVG, SUM) are strings with their scale
("1234.50"), integers and doubles are numbers, DATETIME/TIMESTAMP/DATE are JS Dates, serialized
as ISO 8601 with milliseconds and "Z" (the API runs in UTC), NULL is null. ``res.json`` of a
``data: rows[0]`` that is undefined drops the key.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any, Iterable, Mapping


def js_value(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%dT00:00:00.000Z")
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return value


def js_row(row: Mapping[str, Any]) -> dict:
    return {k: js_value(v) for k, v in row.items()}


def response_body(rows: Iterable[Mapping[str, Any]], shape: str) -> dict:
    """``{"success": true, "data": ...}`` for ``list`` (all rows) or ``first`` (the first row)."""
    rows = [js_row(r) for r in rows]
    if shape == "list":
        return {"success": True, "data": rows}
    return {"success": True, "data": rows[0]} if rows else {"success": True}


def dumps(body: dict) -> bytes:
    # JSON.stringify: no spaces; non-ASCII kept as UTF-8.
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
