"""The live schema: tables, columns and indexes, from information_schema or SQLite's catalog."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from .duplicates import ForeignKey
from .model import Column, Index


@dataclass
class Schema:
    name: str | None
    dialect: str
    columns: dict = field(default_factory=dict)  # table -> [column names]
    indexes: dict = field(default_factory=dict)  # table -> [Index]
    engines: dict = field(default_factory=dict)  # table -> storage engine
    foreign_keys: dict = field(default_factory=dict)  # table -> [duplicates.ForeignKey]


_STATS = text("""
    SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE
    FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
    ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
""")
_COLS = text("""
    SELECT c.TABLE_NAME, c.COLUMN_NAME, t.ENGINE FROM information_schema.COLUMNS c
    JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
    WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
""")


_FKS = text("""
    SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME,
           REFERENCED_COLUMN_NAME
    FROM information_schema.KEY_COLUMN_USAGE
    WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL
    ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION
""")


def read_schema(engine: Engine) -> Schema:
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return _sqlite(conn)
        schema = Schema(conn.execute(text("SELECT DATABASE()")).scalar(), "mysql")
        for table, column, eng in conn.execute(_COLS):
            schema.columns.setdefault(table, []).append(column)
            schema.engines[table] = eng
        parts = defaultdict(list)
        meta = {}
        for table, name, non_unique, _seq, column, sub_part, index_type in conn.execute(_STATS):
            parts[(table, name)].append(Column(column, int(sub_part) if sub_part else None))
            meta[(table, name)] = (not int(non_unique), index_type)
        fks: dict[tuple, list] = defaultdict(list)
        for table, name, column, ref_schema, ref_table, ref_column in conn.execute(_FKS):
            fks[(table, name, f"`{ref_schema}`.`{ref_table}`")].append((column, ref_column))
        for (table, name, parent), pairs in sorted(fks.items()):
            schema.foreign_keys.setdefault(table, []).append(ForeignKey(
                table, name, tuple(c for c, _ in pairs), parent, tuple(r for _, r in pairs)))
        for (table, name), cols in parts.items():
            unique, index_type = meta[(table, name)]
            schema.indexes.setdefault(table, []).append(Index(
                table, name, tuple(cols), unique=unique, primary=name == "PRIMARY",
                fulltext=str(index_type).upper() == "FULLTEXT"))
        return schema


def _sqlite(conn) -> Schema:
    schema = Schema("main", "sqlite")
    tables = [r[0] for r in conn.execute(text(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))]
    for table in tables:
        q = table.replace('"', '""')
        info = conn.execute(text(f'PRAGMA table_info("{q}")')).all()
        schema.columns[table] = [r[1] for r in info]
        schema.engines[table] = "sqlite"
        pk = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
        indexes = []
        if pk:
            indexes.append(Index(table, "PRIMARY", tuple(Column(c) for c in pk), unique=True, primary=True))
        for _seq, name, unique, origin, _partial in conn.execute(text(f'PRAGMA index_list("{q}")')).all():
            if origin == "pk":
                continue
            n = name.replace('"', '""')
            cols = [r[2] for r in conn.execute(text(f'PRAGMA index_info("{n}")')).all()]
            indexes.append(Index(table, name, tuple(Column(c) for c in cols), unique=bool(unique)))
        schema.indexes[table] = indexes
    return schema


_UNUSED = text("""
    SELECT OBJECT_NAME, INDEX_NAME FROM performance_schema.table_io_waits_summary_by_index_usage
    WHERE OBJECT_SCHEMA = DATABASE() AND INDEX_NAME IS NOT NULL AND INDEX_NAME <> 'PRIMARY' AND COUNT_STAR = 0
    ORDER BY OBJECT_NAME, INDEX_NAME
""")


def unused_indexes(engine: Engine) -> tuple[list[dict], str | None]:
    """Indexes performance_schema saw no use of since the server started, and why there may be none."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return [], "SQLite keeps no index usage statistics"
        if not int(conn.execute(text("SELECT @@GLOBAL.performance_schema")).scalar() or 0):
            return [], "performance_schema is off: no index usage data"
        uptime = int(conn.execute(text("SHOW GLOBAL STATUS LIKE 'Uptime'")).one()[1])
        rows = [{"table": t, "index": i, "server_uptime_s": uptime,
                 "note": "no use recorded since the server started; usage needs time to tell"}
                for t, i in conn.execute(_UNUSED)]
        return rows, None


#: Rows sampled to estimate how many distinct values a column has.
SELECTIVITY_SAMPLE = 100_000


def selectivity(engine: Engine, table: str, column: str) -> tuple[int, int] | None:
    """(distinct values, rows) of a column in a sample of its table's first SELECTIVITY_SAMPLE rows,
    read-only under a statement time limit; None when it cannot tell (SQLite, a timeout, a name
    that is not a plain identifier). The statement is written here from names read from the
    server's own catalog, and still proven a plain read before it runs."""
    from ..db.identifiers import quote, valid_identifier
    from ..db.readonly import flavor, read_only, run_read
    from ..lib.sqlguard import UnsafeSQL, check_read

    if not (valid_identifier(table) and valid_identifier(column)):
        return None
    sql = (f"SELECT COUNT(DISTINCT s.c) AS d, COUNT(*) AS n FROM "
           f"(SELECT {quote(column)} AS c FROM {quote(table)} LIMIT {SELECTIVITY_SAMPLE}) AS s")
    try:
        checked = check_read(sql)
        with engine.connect() as conn:
            if flavor(conn) == "sqlite":
                return None
            with read_only(conn):
                row = run_read(conn, checked, time_limit_s=5)[0]
    except UnsafeSQL:
        return None
    except Exception:  # a timeout, a table gone meanwhile: an estimate, so no verdict
        return None
    return int(row["d"] or 0), int(row["n"] or 0)
