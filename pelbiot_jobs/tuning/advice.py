"""Database optimization: ANALYZE TABLE of the tables whose statistics are stale (the checks are tuning/checks.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

#: InnoDB statistics older than this are refreshed by ANALYZE TABLE.
STALE_DAYS = 7


def analyze_stale(engine: Engine, now: dt.datetime) -> list[str]:
    """ANALYZE TABLE every table of the app DB whose InnoDB statistics are older than STALE_DAYS."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("ANALYZE")
            return ["(all)"]
        stale = [r[0] for r in conn.execute(text(
            "SELECT t.TABLE_NAME FROM information_schema.TABLES t LEFT JOIN mysql.innodb_table_stats s "
            "ON s.database_name = t.TABLE_SCHEMA AND s.table_name = t.TABLE_NAME "
            "WHERE t.TABLE_SCHEMA = DATABASE() AND t.ENGINE = 'InnoDB' AND t.TABLE_TYPE = 'BASE TABLE' "
            "AND (s.last_update IS NULL OR s.last_update < :cutoff) ORDER BY t.TABLE_NAME"),
            {"cutoff": now - dt.timedelta(days=STALE_DAYS)})]
        from ..db.identifiers import quote

        for table in stale:
            conn.exec_driver_sql(f"ANALYZE TABLE {quote(table)}").fetchall()
    return stale
