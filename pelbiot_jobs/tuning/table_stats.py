"""Table statistics of the app DB: rows, data, index and free bytes per table.

MySQL/MariaDB: information_schema.TABLES (InnoDB's row count is an estimate; ``exact`` says so).
SQLite: the catalog, an exact COUNT(*) and the ``dbstat`` virtual table for sizes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

_MYSQL_STATS = text("""
    SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE
    FROM information_schema.TABLES
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
    ORDER BY TABLE_NAME
""")


def hour_bucket(when: dt.datetime) -> dt.datetime:
    """The start of the hour ``when`` falls in: the key that makes a rerun overwrite, not add."""
    return when.replace(minute=0, second=0, microsecond=0)


def read_table_stats(engine: Engine) -> list[dict]:
    """One dict per base table of the database ``engine`` points at."""
    with engine.connect() as conn:
        if conn.dialect.name in ("mysql", "mariadb"):
            return [
                {"schema_name": r[0], "table_name": r[1], "engine": r[2], "row_count": r[3],
                 "data_bytes": r[4], "index_bytes": r[5], "free_bytes": r[6], "exact": 0}
                for r in conn.execute(_MYSQL_STATS)
            ]
        return _sqlite_stats(conn)


def _sqlite_stats(conn) -> list[dict]:
    quote = conn.dialect.identifier_preparer.quote
    tables = [r[0] for r in conn.execute(text(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"))]
    index_owner = dict(conn.execute(text("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")).all())
    sizes: dict[str, int] = {}
    try:
        sizes = dict(conn.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all())
    except Exception:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB: sizes unknown, not zero
        sizes = {}
    index_bytes: dict[str, int] = {}
    for index, table in index_owner.items():
        if index in sizes:
            index_bytes[table] = index_bytes.get(table, 0) + sizes[index]
    schema = "main"
    rows = []
    for table in tables:
        count = conn.execute(text(f"SELECT COUNT(*) FROM {quote(table)}")).scalar_one()
        rows.append({"schema_name": schema, "table_name": table, "engine": "sqlite", "row_count": count,
                     "data_bytes": sizes.get(table), "index_bytes": index_bytes.get(table, 0) if sizes else None,
                     "free_bytes": None, "exact": 1})
    return rows
