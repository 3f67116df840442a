"""App database metrics: SHOW GLOBAL STATUS on MySQL/MariaDB, the file and pages on SQLite."""

from __future__ import annotations

import os
import time

from sqlalchemy import Engine

from .rates import Reading, counter_rates, delta

#: Status counters turned into per-second rates: status variable -> metric.
RATE_COUNTERS = {
    "Questions": "mysql.queries_per_s",
    "Com_select": "mysql.selects_per_s",
    "Com_insert": "mysql.inserts_per_s",
    "Com_update": "mysql.updates_per_s",
    "Com_delete": "mysql.deletes_per_s",
    "Slow_queries": "mysql.slow_queries_per_s",
    "Select_scan": "mysql.full_scans_per_s",
    "Select_full_join": "mysql.full_joins_per_s",
    "Created_tmp_disk_tables": "mysql.tmp_disk_tables_per_s",
    "Aborted_connects": "mysql.aborted_connects_per_s",
    "Aborted_clients": "mysql.aborted_clients_per_s",
    "Innodb_row_lock_waits": "mysql.row_lock_waits_per_s",
}
#: Counters read only to derive other figures.
EXTRA_COUNTERS = ("Innodb_buffer_pool_read_requests", "Innodb_buffer_pool_reads")
GAUGES = {"Threads_connected": "mysql.threads_connected", "Threads_running": "mysql.threads_running"}
#: Every metric a MySQL sample can have: on SQLite they are recorded as not applicable (NULL).
MYSQL_METRICS = (*RATE_COUNTERS.values(), *GAUGES.values(), "mysql.connection_usage_percent",
                 "mysql.buffer_pool_hit_percent", "mysql.uptime_s")
SQLITE_METRICS = ("sqlite.file_bytes", "sqlite.page_count", "sqlite.freelist_count")


def _status(conn) -> dict[str, str]:
    # The names are constants of this module, not input: safe to inline (SHOW takes no binds).
    wanted = ", ".join(f"'{n}'" for n in (*RATE_COUNTERS, *EXTRA_COUNTERS, *GAUGES, "Uptime"))
    return dict(conn.exec_driver_sql(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({wanted})").all())


def read_database(engine: Engine) -> Reading:
    """One raw reading of the app database server."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return _read_sqlite(conn, engine)
        status = _status(conn)
        max_connections = conn.exec_driver_sql("SELECT @@GLOBAL.max_connections").scalar()
    counters = {k: float(v) for k, v in status.items() if k in RATE_COUNTERS or k in EXTRA_COUNTERS}
    gauges = {k: float(v) for k, v in status.items() if k in GAUGES}
    gauges["max_connections"] = float(max_connections)
    return Reading(ts=time.time(), counters=counters, gauges=gauges, uptime=float(status.get("Uptime", 0)))


def _read_sqlite(conn, engine) -> Reading:
    path = engine.url.database
    size = None
    if path and path != ":memory:" and os.path.exists(path):
        size = float(os.path.getsize(path) + (os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0))
    gauges = {"sqlite.file_bytes": size,
              "sqlite.page_count": float(conn.exec_driver_sql("PRAGMA page_count").scalar()),
              "sqlite.freelist_count": float(conn.exec_driver_sql("PRAGMA freelist_count").scalar())}
    return Reading(ts=time.time(), gauges=gauges)


def database_metrics(prev: Reading | None, cur: Reading) -> dict[str, float | None]:
    """Metric values: gauges always; rates and the interval's hit ratio when comparable."""
    if "sqlite.page_count" in cur.gauges:
        return {**{m: None for m in MYSQL_METRICS}, **cur.gauges}
    out: dict[str, float | None] = {metric: cur.gauges.get(status) for status, metric in GAUGES.items()}
    out["mysql.uptime_s"] = cur.uptime
    max_conn = cur.gauges.get("max_connections")
    connected = cur.gauges.get("Threads_connected")
    out["mysql.connection_usage_percent"] = round(100.0 * connected / max_conn, 2) if max_conn and connected is not None else None
    rates = counter_rates(prev, cur)
    if rates is not None:
        for status, metric in RATE_COUNTERS.items():
            if status in rates:
                out[metric] = round(rates[status], 4)
    requests = delta(prev, cur, "Innodb_buffer_pool_read_requests")
    misses = delta(prev, cur, "Innodb_buffer_pool_reads")
    if requests:  # over the interval; no requests in it means no ratio, not 100 %
        out["mysql.buffer_pool_hit_percent"] = round(100.0 * (1 - (misses or 0) / requests), 3)
    return out
