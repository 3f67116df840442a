"""What the server checks rest on, read once per run with the read-only account (shell; tuning/checks.py is pure).

Every group is one or two plain reads. A group the account may not read is left out and named in
``missing`` with the grant it needs: the checks resting on it report "not checked: needs GRANT ...",
the run goes on. Nothing here changes the server.
"""

from __future__ import annotations

import datetime as dt
import os
from urllib.parse import urlsplit

from sqlalchemy import Engine, exc, text

#: MySQL/MariaDB error numbers meaning "this account may not": the group is missing, not the run failed.
DENIED = {1044, 1045, 1142, 1143, 1227, 1370, 1449, 4151}
#: The grant each group needs, as docs/security.md lists it.
GRANTS = {
    "accounts": "GRANT SELECT ON mysql.user TO <reader> (MariaDB: and SELECT ON mysql.global_priv)",
    "schemas": "GRANT SHOW DATABASES ON *.* TO <reader>",
    "replica": "GRANT SLAVE MONITOR ON *.* TO <reader> (MySQL: REPLICATION CLIENT)",
    "replicas": "GRANT PROCESS ON *.* TO <reader>",
    "statistics_updated": "GRANT SELECT ON mysql.innodb_table_stats TO <reader>",
    "index_usage": "GRANT SELECT ON performance_schema.* TO <reader> (and performance_schema=ON)",
    "memory": "PELBIOT_APP_DB_MEMORY_MB (the app DB server is not on this host, so its memory is not read here)",
}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}

_TABLES = text(
    "SELECT TABLE_NAME, ENGINE, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE, AUTO_INCREMENT, TABLE_COLLATION "
    "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")
_COLUMNS = text(
    "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA "
    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION")
_SIZES = text(
    "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0), COUNT(*) FROM information_schema.TABLES "
    "WHERE ENGINE = 'InnoDB' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')")
_INDEX_USAGE = text(
    "SELECT OBJECT_NAME, INDEX_NAME, COUNT_STAR FROM performance_schema.table_io_waits_summary_by_index_usage "
    "WHERE OBJECT_SCHEMA = DATABASE() AND INDEX_NAME IS NOT NULL")


class NotGranted(Exception):
    """The account lacks a privilege without which a read would answer less than the truth (not an error)."""


def _denied(error: exc.DBAPIError) -> bool:
    args = getattr(error.orig, "args", ())
    return bool(args) and args[0] in DENIED


def read_facts(engine: Engine, memory_mb: int | None = None, now: dt.datetime | None = None) -> dict:
    """The facts of the server ``engine`` points at and of its database (the app DB)."""
    from ..indexes.live import read_schema
    from ..lib.clock import utcnow

    f: dict = {"now": now or utcnow(), "missing": {}}
    with engine.connect() as conn:
        f["variables"] = {k.lower(): v for k, v in conn.execute(text("SHOW GLOBAL VARIABLES"))}
        f["status"] = {k.lower(): v for k, v in conn.execute(text("SHOW GLOBAL STATUS"))}
        f["schema"] = conn.execute(text("SELECT DATABASE()")).scalar()
        f["granted"] = {r[0] for r in conn.execute(text(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES"))}  # the account's global privileges
        # SHOW VARIABLES prints NULL as '', and the two differ (MySQL: NULL disables file import and export;
        # MariaDB: NULL, like '', allows any path): ask for the value itself.
        f["variables"]["secure_file_priv"] = conn.execute(text("SELECT @@GLOBAL.secure_file_priv")).scalar()
        f["tables"] = [dict(r) for r in conn.execute(_TABLES).mappings()]
        f["columns"] = [dict(r) for r in conn.execute(_COLUMNS).mappings()]
        f["innodb_bytes"], f["innodb_tables"] = (int(v or 0) for v in conn.execute(_SIZES).one())
        # Every table and view the server knows, information_schema's own included, as MySQLTuner counts them.
        f["table_count"] = conn.execute(text("SELECT COUNT(*) FROM information_schema.TABLES")).scalar()
        for name, read in (("accounts", _accounts), ("schemas", _schemas), ("replica", _replica),
                           ("replicas", _replicas), ("statistics_updated", _statistics_updated),
                           ("index_usage", _index_usage)):
            try:
                f[name] = read(conn, f)
            except (exc.DBAPIError, NotGranted) as error:
                if isinstance(error, exc.DBAPIError) and not _denied(error):
                    raise
                conn.rollback()
                f["missing"][name] = GRANTS[name]
    f["schema_model"] = read_schema(engine)
    f["memory_bytes"] = _memory(engine, memory_mb)
    if f["memory_bytes"] is None:
        f["missing"]["memory"] = GRANTS["memory"]
    return f


def _accounts(conn, f) -> list[dict]:
    """Every account: user, host, plugin, hash, TLS requirement, and whether it holds every global privilege."""
    rows = [dict(r) for r in conn.execute(text("SELECT * FROM mysql.user")).mappings()]
    out = []
    for r in rows:
        if str(r.get("is_role", "N")).upper() == "Y":
            continue
        privileges = [k for k in r if k.endswith("_priv") and k != "Grant_priv"]  # ALL leaves GRANT OPTION out
        auth = r.get("authentication_string") or ""
        if not auth and r.get("Password"):
            auth = r["Password"]
        out.append({"user": r.get("User") or "", "host": r.get("Host") or "", "plugin": r.get("plugin") or "",
                    "hash": auth, "ssl_type": r.get("ssl_type") or "",
                    "locked": str(r.get("account_locked", "N")).upper() == "Y",
                    "all_privileges": bool(privileges) and all(str(r[k]).upper() == "Y" for k in privileges),
                    "super": str(r.get("Super_priv", "N")).upper() == "Y"})
    if "mariadb" in str(f["variables"].get("version", "")).lower():
        # MariaDB 10.4+: mysql.user is a view without account_locked; the account's JSON has it.
        locked = {(u, h) for u, h, flag in conn.execute(text(
            "SELECT User, Host, JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv")) if flag in ("true", "1")}
        for a in out:
            a["locked"] = a["locked"] or (a["user"], a["host"]) in locked
    return out


def _schemas(conn, f) -> list[str]:
    if "SHOW DATABASES" not in f["granted"]:
        raise NotGranted("SHOW DATABASES")
    return [r[0] for r in conn.execute(text("SHOW DATABASES"))]


def _replica(conn, f) -> dict | None:
    row = conn.execute(text("SHOW SLAVE STATUS")).mappings().first()
    return {k.lower(): v for k, v in row.items()} if row else None


def _replicas(conn, f) -> int:
    """Replicas connected now: the binlog dump threads (PROCESS shows them; SHOW SLAVE HOSTS needs more)."""
    if "PROCESS" not in f["granted"]:
        raise NotGranted("PROCESS")
    return int(conn.execute(text(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")).scalar())


def _statistics_updated(conn, f) -> dict:
    return {r[0]: r[1] for r in conn.execute(text(
        "SELECT table_name, last_update FROM mysql.innodb_table_stats WHERE database_name = DATABASE()"))}


def _index_usage(conn, f) -> dict | None:
    """Reads per index since the server started (performance_schema); None when performance_schema is off."""
    if str(f["variables"].get("performance_schema", "OFF")).upper() != "ON":
        return None
    return {(t, i): int(n) for t, i, n in conn.execute(_INDEX_USAGE)}


def _memory(engine: Engine, memory_mb: int | None) -> int | None:
    """The app DB server's memory: the setting, else this host's when the server is on it."""
    if memory_mb:
        return memory_mb * 2**20
    host = (urlsplit(engine.url.render_as_string(hide_password=True)).hostname or "").lower()
    if host not in LOCAL_HOSTS or not os.path.exists("/proc/meminfo"):
        return None
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None
