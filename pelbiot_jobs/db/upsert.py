"""Idempotent batched writes: INSERT ... ON DUPLICATE KEY UPDATE / ON CONFLICT DO UPDATE."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from sqlalchemy import Connection, Table

#: Rows per statement: large enough to amortise round trips, small enough for max_allowed_packet.
BATCH_ROWS = 1000


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping], key: Iterable[str],
           update: Iterable[str] | None = None) -> int:
    """Insert ``rows``, or update the row with the same ``key`` columns; return the rows sent.

    On conflict, the ``update`` columns are overwritten (default: every non-key column present
    in the rows), so a partial row updates what it knows and leaves the rest.
    """
    if not rows:
        return 0
    key = list(key)
    columns = list(update) if update is not None else [c for c in rows[0] if c not in key]
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert

        stmt = insert(table)
        stmt = stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in columns} or {key[0]: stmt.inserted[key[0]]})
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        stmt = insert(table)
        if columns:
            stmt = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in columns})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=key)
    else:  # pragma: no cover - only MySQL/MariaDB and SQLite are supported
        raise NotImplementedError(f"upsert is not implemented for {dialect}")
    for start in range(0, len(rows), BATCH_ROWS):
        conn.execute(stmt, list(rows[start:start + BATCH_ROWS]))
    return len(rows)
