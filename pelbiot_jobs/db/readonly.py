"""Run a checked read on the app DB: read-only transaction, statement time limit, rolled back.

The text must have passed ``sqlguard.check_read``; this module adds what the server enforces and
what only the server can tell:

- the text goes to the driver as it was checked, with no parameter interpolation (a ``%`` in a
  literal stays a ``%``: ``LIKE 'abc%'`` is explained, ``'100%%'`` stays two signs);
- no function it calls may be a stored function of the schema or a loadable function (UDF): a
  name the allow-list holds that this server lacks as a built-in (``ANY_VALUE``, ``CBRT`` on
  MariaDB 10.11) would otherwise resolve to a routine of that name, and EXPLAIN evaluates some
  (``refuse_shadowed``, checked in the read's own transaction right before it runs);

- MySQL/MariaDB: ``START TRANSACTION READ ONLY`` (a write fails in the server, whatever slipped
  through), a statement time limit (MariaDB ``SET STATEMENT max_statement_time=N FOR``, MySQL the
  ``MAX_EXECUTION_TIME`` optimizer hint), and a rollback afterwards, so nothing outlives the call
  on the pooled connection;
- SQLite: ``PRAGMA query_only`` for the duration (no time limit: SQLite runs in-process).
"""

from __future__ import annotations

from sqlalchemy import text

from ..lib.sqlguard import CheckedRead

#: Default statement time limit for reads that pelbiot-jobs did not write (s).
DEFAULT_TIME_LIMIT_S = 5


def flavor(conn) -> str:
    """``mariadb``, ``mysql`` or ``sqlite``."""
    if conn.dialect.name == "sqlite":
        return "sqlite"
    return "mariadb" if getattr(conn.dialect, "is_mariadb", False) else "mysql"


def limited(sql: str, kind: str, seconds: float) -> str:
    """``sql`` with the server's statement time limit applied (MySQL family)."""
    if kind == "mariadb":
        return f"SET STATEMENT max_statement_time={float(seconds):g} FOR {sql}"
    if kind == "mysql":
        head, _, rest = sql.partition(" ")
        if head.upper() != "SELECT":
            raise ValueError("MySQL bounds the time of a statement that starts with SELECT only")
        return f"SELECT /*+ MAX_EXECUTION_TIME({int(seconds * 1000)}) */ {rest}"
    return sql


class _ReadOnly:
    def __init__(self, conn):
        self.conn, self.kind = conn, flavor(conn)

    def __enter__(self):
        if self.conn.in_transaction():
            self.conn.rollback()
        if self.kind == "sqlite":
            self.conn.exec_driver_sql("PRAGMA query_only = ON")
        else:
            self.conn.exec_driver_sql("START TRANSACTION READ ONLY")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        if self.kind == "sqlite":
            self.conn.exec_driver_sql("PRAGMA query_only = OFF")
            self.conn.rollback()
        return False


def _driver_rows(conn, sql: str) -> list[dict]:
    """Run ``sql`` on the connection's DB-API cursor with no parameters: the driver sends the text
    as it is (SQLAlchemy and the MySQL drivers would %-format it)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        names = [d[0] for d in cursor.description] if cursor.description else []
        return [dict(zip(names, row)) for row in cursor.fetchall()] if names else []
    finally:
        cursor.close()


def shadowing_routines(conn, names) -> list[str]:
    """The stored functions of the current schema, and the loadable functions (UDFs) where the
    account may read ``mysql.func``, that bear one of ``names`` (compared without case)."""
    wanted = {n.lower() for n in names}
    if not wanted or flavor(conn) == "sqlite":
        return []
    found = [r["ROUTINE_NAME"] for r in _driver_rows(
        conn, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES "
              "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE = 'FUNCTION'")]
    try:
        found += [r["name"].decode() if isinstance(r["name"], bytes) else r["name"]
                  for r in _driver_rows(conn, "SELECT name FROM mysql.func")]
    except Exception:  # pragma: no cover - depends on the account: a read account may not see mysql.func
        pass  # loading a UDF takes a file in the server's plugin_dir and INSERT on mysql.*: an administrator
    return sorted({name for name in found if name.lower() in wanted})


def refuse_shadowed(conn, checked: CheckedRead) -> None:
    """Raise UnsafeSQL when a function ``checked`` calls is a stored function or UDF here."""
    from ..lib.sqlguard import UnsafeSQL

    shadowed = shadowing_routines(conn, checked.called)
    if shadowed:
        raise UnsafeSQL(f"calls {', '.join(n.upper() for n in shadowed)}, which this server resolves to a stored "
                        "or loadable function, not a built-in")


def read_only(conn):
    """Context: the statements inside run in a read-only transaction that is rolled back."""
    return _ReadOnly(conn)


def run_read(conn, checked: CheckedRead, params: dict | None = None, *, original: str | None = None,
             time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> list:
    """Rows (mappings) of a checked read, inside ``read_only(conn)`` (the caller's block).

    On SQLite ``original`` (the text as written, already checked) runs instead of sqlglot's MySQL
    rendering, which SQLite may not understand.
    """
    kind = flavor(conn)
    sql = original if (kind == "sqlite" and original) else limited(checked.sql, kind, time_limit_s)
    refuse_shadowed(conn, checked)
    if not checked.placeholders:  # as checked, not %-formatted
        return _driver_rows(conn, sql)
    return conn.execute(text(sql), params or {}).mappings().all()


def explain_read(conn, checked: CheckedRead, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> list[dict]:
    """EXPLAIN's rows for a checked read (MySQL family only), in its own read-only transaction."""
    kind = flavor(conn)
    if kind == "sqlite":
        raise ValueError("EXPLAIN is only read on MySQL/MariaDB")
    statement = f"EXPLAIN {checked.sql}"
    if kind == "mariadb":  # MariaDB may evaluate derived tables while explaining: bound it too
        statement = limited(statement, kind, time_limit_s)
    with read_only(conn):
        refuse_shadowed(conn, checked)
        return _driver_rows(conn, statement)


def time_read(conn, checked: CheckedRead, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> float:
    """Run a checked read once in a read-only transaction; its latency in ms."""
    import time

    kind = flavor(conn)
    statement = limited(checked.sql, kind, time_limit_s)
    with read_only(conn):
        refuse_shadowed(conn, checked)
        started = time.perf_counter()
        _driver_rows(conn, statement)
        return (time.perf_counter() - started) * 1000.0
