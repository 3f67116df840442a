"""Database optimization: stale statistics and tuning advice in the spirit of MySQLTuner.

``facts`` reads what the advice rests on (shell); ``advise`` turns facts into recommendations (pure).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

#: InnoDB statistics older than this are refreshed by ANALYZE TABLE.
STALE_DAYS = 7
#: Thresholds of the advice.
BUFFER_POOL_MIN_SHARE = 1.0  # the buffer pool should hold the data and indexes
CONNECTIONS_HIGH = 85.0  # % of max_connections used at peak
TMP_DISK_HIGH = 25.0  # % of temporary tables created on disk


def facts(engine: Engine) -> dict:
    """The server figures the advice rests on (MySQL/MariaDB)."""
    with engine.connect() as conn:
        status = dict(conn.execute(text("SHOW GLOBAL STATUS WHERE Variable_name IN ('Max_used_connections', "
                                        "'Created_tmp_tables', 'Created_tmp_disk_tables', 'Uptime')")).all())
        variables = dict(conn.execute(text("SHOW GLOBAL VARIABLES WHERE Variable_name IN "
                                           "('innodb_buffer_pool_size', 'max_connections')")).all())
        data_bytes = conn.execute(text(
            "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES "
            "WHERE ENGINE = 'InnoDB' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
        )).scalar()
        no_pk = [r[0] for r in conn.execute(text(
            "SELECT t.TABLE_NAME FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = DATABASE() "
            "AND t.TABLE_TYPE = 'BASE TABLE' AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c "
            "WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY') "
            "ORDER BY t.TABLE_NAME"))]
    return {"buffer_pool_bytes": int(variables.get("innodb_buffer_pool_size", 0)),
            "innodb_bytes": int(data_bytes or 0),
            "max_connections": int(variables.get("max_connections", 0)),
            "max_used_connections": int(status.get("Max_used_connections", 0)),
            "tmp_tables": int(status.get("Created_tmp_tables", 0)),
            "tmp_disk_tables": int(status.get("Created_tmp_disk_tables", 0)),
            "uptime_s": int(status.get("Uptime", 0)), "tables_without_pk": no_pk}


def advise(f: dict, duplicates: list[dict] = ()) -> list[dict]:
    """Pure: recommendations, each with its evidence."""
    out = []
    if f["buffer_pool_bytes"] and f["innodb_bytes"] > f["buffer_pool_bytes"] * BUFFER_POOL_MIN_SHARE:
        out.append({"code": "buffer_pool_small", "severity": "warning",
                    "message": (f"innodb_buffer_pool_size ({f['buffer_pool_bytes'] / 2**20:,.0f} MB) is smaller than "
                                f"the InnoDB data and indexes ({f['innodb_bytes'] / 2**20:,.0f} MB): reads go to disk; "
                                "raise it if memory allows"),
                    "evidence": {k: f[k] for k in ("buffer_pool_bytes", "innodb_bytes")}})
    if f["max_connections"]:
        used = 100.0 * f["max_used_connections"] / f["max_connections"]
        if used >= CONNECTIONS_HIGH:
            out.append({"code": "connections_high", "severity": "warning",
                        "message": f"{used:.0f} % of max_connections was used at peak; raise it or pool connections",
                        "evidence": {k: f[k] for k in ("max_used_connections", "max_connections")}})
    if f["tmp_tables"] >= 100:
        share = 100.0 * f["tmp_disk_tables"] / f["tmp_tables"]
        if share >= TMP_DISK_HIGH:
            out.append({"code": "tmp_tables_on_disk", "severity": "warning",
                        "message": (f"{share:.0f} % of temporary tables went to disk; raise tmp_table_size and "
                                    "max_heap_table_size, or avoid TEXT/BLOB in GROUP BY and ORDER BY"),
                        "evidence": {k: f[k] for k in ("tmp_tables", "tmp_disk_tables")}})
    if f["tables_without_pk"]:
        out.append({"code": "tables_without_primary_key", "severity": "warning",
                    "message": "tables without a primary key: " + ", ".join(f["tables_without_pk"]),
                    "evidence": {"tables": f["tables_without_pk"]}})
    if duplicates:
        out.append({"code": "duplicate_indexes", "severity": "info",
                    "message": f"{len(duplicates)} duplicate or redundant indexes slow every write: "
                               + " ".join(d["drop_sql"] for d in duplicates[:10]),
                    "evidence": {"duplicates": [f"{d['table']}.{d['index']}" for d in duplicates]}})
    return out


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
