"""The server and schema checks: one small pure function each over the facts (tuning/facts.py) of one run.

A check returns its findings (an empty list: it passed). A finding names what it is about
(``subject``: an account, a table, a variable), the values it read (``evidence``), and one line
that fixes it (``fix``: SQL or a my.cnf line). ``CHECKS`` at the bottom is the list, a row per check;
docs/checks.md explains each. Thresholds that MySQLTuner uses are MySQLTuner's, named where they are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Callable

SECURITY, DURABILITY, PERFORMANCE, RESOURCES = "security", "durability", "performance", "resources"
REPLICATION, VERSIONS, LOGGING, SCHEMA, CONNECTIONS = "replication", "versions", "logging", "schema", "connections"
CATEGORIES = (SECURITY, DURABILITY, PERFORMANCE, RESOURCES, REPLICATION, VERSIONS, LOGGING, SCHEMA, CONNECTIONS)
CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITIES = (CRITICAL, WARNING, INFO)

LOCAL = {"localhost", "127.0.0.1", "::1"}
#: Common passwords tried against each account's hash (with the user name, as is, upper-case and capitalised).
WEAK_PASSWORDS = ("", "123456", "password", "12345678", "1234", "12345", "123456789", "qwerty", "abc123",
                  "111111", "1234567", "letmein", "admin", "welcome", "monkey", "dragon", "master", "root",
                  "mysql", "changeme", "secret", "test", "pass", "passw0rd", "p@ssw0rd", "toor", "default",
                  "iloveyou", "sunshine", "princess", "football", "baseball", "trustno1", "superman", "654321",
                  "000000", "guest", "oracle", "mariadb", "pelbiot")
AUTO_INCREMENT_FULL = 0.75
STATS_STALE_DAYS = 30
REPLICA_LAG_S = 300
JOINS_MIN = 100
TABLE_LOOKUPS_MIN = 2000
#: Supported until (the vendors' published end of life). Short-term MariaDB releases end a year after GA.
END_OF_LIFE = {
    ("mariadb", 10, 3): dt.date(2023, 5, 25), ("mariadb", 10, 4): dt.date(2024, 6, 18),
    ("mariadb", 10, 5): dt.date(2025, 6, 24), ("mariadb", 10, 6): dt.date(2026, 7, 6),
    ("mariadb", 10, 7): dt.date(2023, 2, 9), ("mariadb", 10, 8): dt.date(2023, 5, 20),
    ("mariadb", 10, 9): dt.date(2023, 8, 22), ("mariadb", 10, 10): dt.date(2023, 11, 17),
    ("mariadb", 10, 11): dt.date(2028, 2, 16), ("mariadb", 11, 0): dt.date(2024, 6, 6),
    ("mariadb", 11, 1): dt.date(2024, 8, 21), ("mariadb", 11, 2): dt.date(2024, 11, 21),
    ("mariadb", 11, 3): dt.date(2025, 5, 29), ("mariadb", 11, 4): dt.date(2029, 5, 29),
    ("mariadb", 11, 5): dt.date(2025, 6, 24), ("mariadb", 11, 6): dt.date(2025, 8, 14),
    ("mariadb", 11, 7): dt.date(2025, 11, 12), ("mariadb", 11, 8): dt.date(2030, 6, 4),
    ("mysql", 5, 6): dt.date(2021, 2, 5), ("mysql", 5, 7): dt.date(2023, 10, 21),
    ("mysql", 8, 0): dt.date(2026, 4, 30), ("mysql", 8, 4): dt.date(2032, 4, 30),
}
EOL_SOON_DAYS = 180


@dataclass(frozen=True)
class Check:
    code: str
    category: str
    severity: str
    needs: tuple[str, ...]  # the fact groups it reads beyond variables and status
    run: Callable[[dict], list[dict]]

    @property
    def about(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]


def finding(subject: str, message: str, fix: str, **evidence) -> dict:
    return {"subject": str(subject)[:255], "message": message, "fix": fix, "evidence": evidence}


# -- reading the facts ---------------------------------------------------------------------------------------------

def var(f: dict, name: str, default: str = "") -> str:
    value = f["variables"].get(name)
    return default if value is None else str(value)


def on(f: dict, name: str) -> bool:
    return var(f, name).upper() in ("ON", "1", "YES", "TRUE")


def number(f: dict, group: str, name: str) -> float:
    try:
        return float(f[group].get(name) or 0)
    except (TypeError, ValueError):
        return 0.0


def status(f: dict, name: str) -> float:
    return number(f, "status", name)


def setting(f: dict, name: str) -> float:
    return number(f, "variables", name)


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


BY_HAND = "(by hand: the name is not a plain identifier)"


def literal(value: str) -> str | None:
    """A SQL string literal of ``value`` (quotes and backslashes doubled); None for a value with control characters."""
    if not value.isprintable():
        return None
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def account(a: dict) -> str:
    """'user'@'host' as a statement takes it; a name with control characters is shown escaped, never raw."""
    user, host = literal(a["user"]), literal(a["host"])
    if user is None or host is None:
        return repr(a["user"]) + "@" + repr(a["host"])
    return f"{user}@{host}"


def sql_name(name: str) -> str:
    """A table, column or index name for a fix line: quoted when it is a plain identifier, else a placeholder."""
    from ..db.identifiers import quote, valid_identifier

    return quote(name) if valid_identifier(name) else "<" + BY_HAND.strip("()") + ">"


def native_hash(password: str) -> str:
    """mysql_native_password's stored form: '*' + SHA1(SHA1(password)), upper-case hex."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _can_log_in(a: dict) -> bool:
    return not a["locked"]


def _mariadb(f: dict) -> bool:
    return "mariadb" in var(f, "version").lower()


def _is_replica(f: dict) -> bool:
    return bool(f.get("replica"))


def uptime_days(f: dict) -> float:
    return max(status(f, "uptime"), 1.0) / 86400


# -- security -------------------------------------------------------------------------------------------------------

def anonymous_accounts(f):
    """An account with an empty user name: anyone may connect as it."""
    return [finding(account(a), f"anonymous account {account(a)}: anyone can connect as it",
                    f"DROP USER {account(a)};") for a in f["accounts"] if a["user"] == ""]


def accounts_without_password(f):
    """An account that logs in with an empty password."""
    return [finding(account(a), f"{account(a)} has no password", f"ALTER USER {account(a)} IDENTIFIED BY '<new>';",
                    plugin=a["plugin"])
            for a in f["accounts"] if _can_log_in(a) and a["plugin"] in ("mysql_native_password", "", "mysql_old_password")
            and a["hash"] == "" and a["user"] != ""]


def weak_passwords(f):
    """A password equal to the user name (as is, upper-case, capitalised) or among the common passwords."""
    out = []
    for a in f["accounts"]:
        if not a["hash"].startswith("*") or not _can_log_in(a):
            continue
        user = a["user"]
        guesses = {user, user.upper(), user[:1].upper() + user[1:]}
        guesses |= {g for p in WEAK_PASSWORDS if p for g in (p, p.upper(), p[:1].upper() + p[1:])}
        hit = next((g for g in sorted(guesses) if native_hash(g) == a["hash"].upper()), None)
        if hit is not None:
            what = "the user name" if hit.lower() == user.lower() else "a common password"
            out.append(finding(account(a), f"{account(a)} has {what} as its password",
                               f"ALTER USER {account(a)} IDENTIFIED BY '<strong>';", guessed=what))
    return out


def root_from_any_host(f):
    """root may connect from any host ('%')."""
    return [finding(account(a), f"{account(a)}: root may connect from any host",
                    f"RENAME USER {account(a)} TO 'root'@'localhost'; (or DROP USER {account(a)};)")
            for a in f["accounts"] if a["user"] == "root" and a["host"] == "%" and _can_log_in(a)]


def accounts_from_any_host(f):
    """An account (not root) that may connect from any host ('%'): no host restriction (MySQLTuner's check)."""
    return [finding(account(a), f"{account(a)} may connect from any host",
                    f"RENAME USER {account(a)} TO {literal(a['user']) or '<user>'}@'<app-hosts>';")
            for a in f["accounts"] if a["host"] == "%" and a["user"] not in ("root", "") and _can_log_in(a)]


def all_privileges_besides_root(f):
    """An account besides root that holds every global privilege (ALL ON *.*)."""
    return [finding(account(a), f"{account(a)} holds ALL PRIVILEGES ON *.*",
                    f"REVOKE ALL PRIVILEGES ON *.* FROM {account(a)}; then GRANT what it needs on its database")
            for a in f["accounts"] if a["all_privileges"] and a["user"] not in ("root", "mariadb.sys", "mysql")
            and _can_log_in(a)]


def local_infile_on(f):
    """local_infile lets a client make the server read files of the client's host (LOAD DATA LOCAL)."""
    if on(f, "local_infile"):
        return [finding("local_infile", "local_infile is ON", "SET GLOBAL local_infile = OFF; my.cnf: local_infile = 0",
                        local_infile=var(f, "local_infile"))]
    return []


def secure_file_priv_empty(f):
    """secure_file_priv allows any path (MySQL: ''; MariaDB: '' or unset): FILE accounts read and write any file the
    server can (SELECT INTO OUTFILE, LOAD_FILE)."""
    value = f["variables"].get("secure_file_priv")
    if value == "" or (value is None and _mariadb(f)):
        return [finding("secure_file_priv", "secure_file_priv allows any path: SELECT INTO OUTFILE and LOAD_FILE "
                        "reach any file the server can", "my.cnf: secure_file_priv = /var/lib/mysql-files (restart)",
                        secure_file_priv=value)]
    return []


def old_authentication(f):
    """An account with the pre-4.1 password hash (mysql_old_password), broken by design."""
    return [finding(account(a), f"{account(a)} uses the old (pre-4.1) password hash",
                    f"ALTER USER {account(a)} IDENTIFIED VIA mysql_native_password USING PASSWORD('<new>');",
                    plugin=a["plugin"])
            for a in f["accounts"] if _can_log_in(a) and (a["plugin"] == "mysql_old_password"
                                                          or (len(a["hash"]) == 16 and not a["hash"].startswith("*")))]


def remote_without_tls(f):
    """An account that may connect from other hosts without TLS (no REQUIRE SSL, require_secure_transport off)."""
    if on(f, "require_secure_transport"):
        return []
    return [finding(account(a), f"{account(a)} may connect from other hosts without TLS",
                    f"ALTER USER {account(a)} REQUIRE SSL; (or require_secure_transport = ON)", ssl_type=a["ssl_type"])
            for a in f["accounts"] if a["host"] not in LOCAL and a["ssl_type"] == "" and _can_log_in(a)
            and not a["user"] == ""]


def test_database(f):
    """The test database (or test_*) exists: by default any account may use it."""
    return [finding(s, f"database {s} exists", f"DROP DATABASE {sql_name(s)};")
            for s in f["schemas"] if s == "test" or s.startswith("test_")]


def function_creators_trusted(f):
    """log_bin_trust_function_creators is ON: accounts without SUPER may create functions that are unsafe to log."""
    if on(f, "log_bin_trust_function_creators"):
        return [finding("log_bin_trust_function_creators", "log_bin_trust_function_creators is ON",
                        "SET GLOBAL log_bin_trust_function_creators = OFF;")]
    return []


def symbolic_links(f):
    """have_symlink is YES: tables may be made links to files outside the data directory."""
    if var(f, "have_symlink").upper() == "YES":
        return [finding("have_symlink", "symbolic links are enabled (have_symlink = YES)",
                        "my.cnf: skip-symbolic-links (restart)")]
    return []


# -- durability -----------------------------------------------------------------------------------------------------

def flush_log_at_trx_commit(f):
    """innodb_flush_log_at_trx_commit is not 1: a crash loses the last second of commits."""
    value = var(f, "innodb_flush_log_at_trx_commit")
    if value and value != "1":
        return [finding("innodb_flush_log_at_trx_commit", f"innodb_flush_log_at_trx_commit = {value}: commits of the "
                        "last second are lost in a crash", "SET GLOBAL innodb_flush_log_at_trx_commit = 1;",
                        innodb_flush_log_at_trx_commit=value)]
    return []


def sync_binlog(f):
    """Binary logging on and sync_binlog is not 1: a crash loses binlog events a replica may already have."""
    if on(f, "log_bin") and var(f, "sync_binlog") != "1":
        return [finding("sync_binlog", f"sync_binlog = {var(f, 'sync_binlog')} with binary logging on",
                        "SET GLOBAL sync_binlog = 1;", sync_binlog=var(f, "sync_binlog"))]
    return []


def sql_mode_not_strict(f):
    """sql_mode without STRICT_TRANS_TABLES or STRICT_ALL_TABLES: bad values are truncated with a warning, not refused."""
    modes = set(var(f, "sql_mode").upper().split(","))
    if not modes & {"STRICT_TRANS_TABLES", "STRICT_ALL_TABLES"}:
        return [finding("sql_mode", "sql_mode is not strict: out-of-range and truncated values are stored",
                        "SET GLOBAL sql_mode = CONCAT(@@sql_mode, ',STRICT_TRANS_TABLES');",
                        sql_mode=var(f, "sql_mode"))]
    return []


def doublewrite_off(f):
    """innodb_doublewrite is OFF: a torn page write in a crash corrupts the table."""
    if "innodb_doublewrite" in f["variables"] and not on(f, "innodb_doublewrite"):
        return [finding("innodb_doublewrite", "innodb_doublewrite is OFF", "my.cnf: innodb_doublewrite = 1 (restart)")]
    return []


def replica_without_binlog(f):
    """A replica with binary logging off: promoted after a failover, it has no binlog for the others to follow."""
    if _is_replica(f) and not on(f, "log_bin"):
        return [finding("log_bin", "this replica has binary logging off",
                        "my.cnf: log_bin, log_slave_updates = ON (restart)")]
    return []


def binlog_format_not_row(f):
    """Binary logging in STATEMENT or MIXED format: non-deterministic statements can differ on a replica."""
    if on(f, "log_bin") and var(f, "binlog_format").upper() not in ("ROW", ""):
        return [finding("binlog_format", f"binlog_format = {var(f, 'binlog_format')}",
                        "SET GLOBAL binlog_format = 'ROW';", binlog_format=var(f, "binlog_format"))]
    return []


def binlog_checksum_off(f):
    """binlog_checksum is NONE: a corrupted binlog event is replicated without notice."""
    if on(f, "log_bin") and var(f, "binlog_checksum").upper() == "NONE":
        return [finding("binlog_checksum", "binlog_checksum = NONE", "SET GLOBAL binlog_checksum = 'CRC32';")]
    return []


# -- performance ----------------------------------------------------------------------------------------------------

def buffer_pool_vs_data(f):
    """The buffer pool is smaller than the InnoDB data and indexes: reads go to disk."""
    pool = setting(f, "innodb_buffer_pool_size")
    if pool and f["innodb_bytes"] > pool:
        return [finding("innodb_buffer_pool_size", f"innodb_buffer_pool_size ({mb(pool)}) is smaller than the InnoDB "
                        f"data and indexes ({mb(f['innodb_bytes'])})",
                        f"SET GLOBAL innodb_buffer_pool_size = {int(f['innodb_bytes'] * 1.25) // 2**20 * 2**20};",
                        buffer_pool_bytes=int(pool), innodb_bytes=f["innodb_bytes"])]
    return []


def redo_log_small(f):
    """The redo log is small: under 25 % of the buffer pool (MySQLTuner) or under an hour of writes."""
    size = setting(f, "innodb_log_file_size") * max(setting(f, "innodb_log_files_in_group"), 1)
    pool = setting(f, "innodb_buffer_pool_size")
    hour = status(f, "innodb_os_log_written") / max(status(f, "uptime"), 1) * 3600
    reasons = []
    if pool and size < 0.25 * pool:
        reasons.append(f"{100 * size / pool:.0f} % of the buffer pool")
    if status(f, "uptime") >= 3600 and size < hour:
        reasons.append(f"less than an hour of redo writes ({mb(hour)} an hour)")
    if not reasons or not size:
        return []
    target = max(int(0.25 * pool), int(hour))
    return [finding("innodb_log_file_size", f"the redo log ({mb(size)}) is small: " + ", ".join(reasons),
                    f"my.cnf: innodb_log_file_size = {max(target // 2**20, 48)}M",
                    redo_bytes=int(size), buffer_pool_bytes=int(pool), redo_written_per_hour=int(hour))]


def log_buffer_waits(f):
    """Writes waited for room in the log buffer (Innodb_log_waits) (MySQLTuner)."""
    waits, size = status(f, "innodb_log_waits"), setting(f, "innodb_log_buffer_size")
    if waits:
        return [finding("innodb_log_buffer_size", f"{waits:,.0f} writes waited for the log buffer ({mb(size)})",
                        f"my.cnf: innodb_log_buffer_size = {max(int(size * 4) // 2**20, 16)}M (restart)",
                        log_waits=int(waits), log_buffer_bytes=int(size))]
    return []


def tmp_tables_on_disk(f):
    """Over 25 % of temporary tables went to disk (MySQLTuner's threshold)."""
    made, disk = status(f, "created_tmp_tables"), status(f, "created_tmp_disk_tables")
    if made and 100 * disk / made > 25:
        return [finding("tmp_table_size", f"{100 * disk / made:.0f} % of temporary tables went to disk",
                        "SET GLOBAL tmp_table_size = 67108864; SET GLOBAL max_heap_table_size = 67108864; "
                        "or avoid TEXT/BLOB in GROUP BY and ORDER BY", tmp_tables=int(made), tmp_disk_tables=int(disk))]
    return []


def joins_without_indexes(f):
    """Joins that read a whole table for each row (Select_full_join, Select_range_check): over 250 a day (MySQLTuner),
    and at least 100 since the server started (a few are any client's information_schema reads)."""
    joins = status(f, "select_full_join") + status(f, "select_range_check")
    if joins >= JOINS_MIN and joins / uptime_days(f) > 250:
        return [finding("Select_full_join", f"{joins:,.0f} joins without indexes ({joins / uptime_days(f):,.0f} a day)",
                        "index the join columns (pelbiot-jobs indexes advise); join_buffer_size only hides it",
                        select_full_join=int(status(f, "select_full_join")),
                        select_range_check=int(status(f, "select_range_check")))]
    return []


def sorts_on_disk(f):
    """Over 10 % of sorts needed merge passes (temporary files) (MySQLTuner)."""
    sorts = status(f, "sort_scan") + status(f, "sort_range")
    passes = status(f, "sort_merge_passes")
    if sorts and 100 * passes / sorts > 10:
        return [finding("sort_buffer_size", f"{100 * passes / sorts:.0f} % of sorts needed merge passes",
                        "index the ORDER BY columns; or raise sort_buffer_size per session",
                        sort_merge_passes=int(passes), sorts=int(sorts))]
    return []


def table_cache_hit_rate(f):
    """The table open cache hit rate is under 20 % (MySQLTuner), over 2,000 lookups at least (right after a start
    every lookup misses)."""
    hits, misses = status(f, "table_open_cache_hits"), status(f, "table_open_cache_misses")
    if status(f, "open_tables") and hits + misses >= TABLE_LOOKUPS_MIN and 100 * hits / (hits + misses) < 20:
        return [finding("table_open_cache", f"table open cache hit rate {100 * hits / (hits + misses):.0f} %",
                        f"SET GLOBAL table_open_cache = {int(setting(f, 'table_open_cache') * 2)};",
                        hits=int(hits), misses=int(misses), table_open_cache=int(setting(f, "table_open_cache")))]
    return []


def thread_cache_hit_rate(f):
    """The thread cache is off, or its hit rate is 50 % or less (MySQLTuner)."""
    connections, created = status(f, "connections"), status(f, "threads_created")
    if setting(f, "thread_cache_size") == 0:
        return [finding("thread_cache_size", "the thread cache is off", "SET GLOBAL thread_cache_size = 16;")]
    if connections and 100 - 100 * created / connections <= 50:
        return [finding("thread_cache_size", f"thread cache hit rate {100 - 100 * created / connections:.0f} %",
                        f"SET GLOBAL thread_cache_size = {int(setting(f, 'thread_cache_size') * 2)};",
                        threads_created=int(created), connections=int(connections))]
    return []


def table_definition_cache_small(f):
    """table_definition_cache is full, or holds fewer definitions than the tables the account sees (MySQLTuner)."""
    size, held = setting(f, "table_definition_cache"), status(f, "open_table_definitions")
    if size > 0 and (size < f["table_count"] or held >= size):
        return [finding("table_definition_cache", f"table_definition_cache ({size:.0f}) is "
                        + ("full" if held >= size else f"under the number of tables ({f['table_count']})"),
                        f"SET GLOBAL table_definition_cache = {int(max(f['table_count'], size) * 1.5)};",
                        table_definition_cache=int(size), open_table_definitions=int(held), tables=f["table_count"])]
    return []


def query_cache_on(f):
    """The query cache is on: one mutex serialises every SELECT on a multi-core server."""
    if var(f, "query_cache_type").upper() not in ("OFF", "0", "") and setting(f, "query_cache_size") > 0:
        return [finding("query_cache_type", f"the query cache is on ({mb(setting(f, 'query_cache_size'))})",
                        "SET GLOBAL query_cache_type = OFF; SET GLOBAL query_cache_size = 0;",
                        query_cache_type=var(f, "query_cache_type"),
                        query_cache_size=int(setting(f, "query_cache_size")))]
    return []


def performance_schema_off(f):
    """performance_schema is OFF: no statement digests, no index usage, no waits."""
    if not on(f, "performance_schema"):
        return [finding("performance_schema", "performance_schema is OFF", "my.cnf: performance_schema = ON (restart)")]
    return []


def name_resolution_on(f):
    """skip_name_resolve is OFF: each new connection waits for a reverse DNS lookup (MySQLTuner)."""
    if "skip_name_resolve" in f["variables"] and not on(f, "skip_name_resolve"):
        return [finding("skip_name_resolve", "name resolution is on for every new connection",
                        "my.cnf: skip_name_resolve = ON (restart; accounts by IP then)")]
    return []


def stats_on_metadata(f):
    """innodb_stats_on_metadata is ON: each information_schema read recomputes statistics."""
    if on(f, "innodb_stats_on_metadata"):
        return [finding("innodb_stats_on_metadata", "innodb_stats_on_metadata is ON",
                        "SET GLOBAL innodb_stats_on_metadata = OFF;")]
    return []


# -- resources ------------------------------------------------------------------------------------------------------

def _memory_use(f, connections: float) -> float:
    """MySQLTuner's estimate: server buffers + per-thread buffers x connections."""
    tmp = min(setting(f, "tmp_table_size"), setting(f, "max_heap_table_size"))
    server = sum(setting(f, n) for n in ("key_buffer_size", "innodb_buffer_pool_size", "innodb_log_buffer_size",
                                         "query_cache_size", "aria_pagecache_buffer_size")) + tmp
    thread = sum(setting(f, n) for n in ("read_buffer_size", "read_rnd_buffer_size", "sort_buffer_size",
                                         "thread_stack", "join_buffer_size", "binlog_cache_size"))
    return server + thread * connections


def buffer_pool_vs_memory(f):
    """The buffer pool is over 80 % of the server's memory: the OS and the connections are left too little."""
    pool, memory = setting(f, "innodb_buffer_pool_size"), f["memory_bytes"]
    if pool > 0.8 * memory:
        return [finding("innodb_buffer_pool_size", f"innodb_buffer_pool_size ({mb(pool)}) is "
                        f"{100 * pool / memory:.0f} % of the server's memory ({mb(memory)})",
                        f"SET GLOBAL innodb_buffer_pool_size = {int(memory * 0.7) // 2**27 * 2**27};",
                        buffer_pool_bytes=int(pool), memory_bytes=memory)]
    return []


def connections_near_max(f):
    """Over 85 % of max_connections was used at peak (MySQLTuner)."""
    peak, limit = status(f, "max_used_connections"), setting(f, "max_connections")
    if limit and 100 * peak / limit > 85:
        return [finding("max_connections", f"{100 * peak / limit:.0f} % of max_connections was used at peak",
                        f"SET GLOBAL max_connections = {int(limit * 1.5)}; or pool connections in the API",
                        max_used_connections=int(peak), max_connections=int(limit))]
    return []


def max_connections_vs_memory(f):
    """All max_connections at once would need over 85 % of the server's memory (MySQLTuner's maximum possible use)."""
    need, memory = _memory_use(f, setting(f, "max_connections")), f["memory_bytes"]
    if need > 0.85 * memory:
        return [finding("max_connections", f"max_connections ({setting(f, 'max_connections'):.0f}) could use "
                        f"{mb(need)}, {100 * need / memory:.0f} % of the server's memory",
                        "lower max_connections or the per-thread buffers (sort, join, read)",
                        possible_bytes=int(need), memory_bytes=memory)]
    return []


def open_files_near_limit(f):
    """Over 85 % of open_files_limit is in use (MySQLTuner)."""
    used, limit = status(f, "open_files"), setting(f, "open_files_limit")
    if limit and 100 * used / limit > 85:
        return [finding("open_files_limit", f"{100 * used / limit:.0f} % of open_files_limit is in use",
                        f"my.cnf: open_files_limit = {int(limit * 2)} (and LimitNOFILE in systemd)",
                        open_files=int(used), open_files_limit=int(limit))]
    return []


def binlogs_kept_forever(f):
    """Binary logging on with no expiry: binlogs grow until the disk is full."""
    if on(f, "log_bin") and setting(f, "expire_logs_days") == 0 and setting(f, "binlog_expire_logs_seconds") == 0:
        return [finding("binlog_expire_logs_seconds", "binary logs are never purged",
                        "SET GLOBAL binlog_expire_logs_seconds = 604800;")]
    return []


# -- connections ----------------------------------------------------------------------------------------------------

def aborted_connections(f):
    """Over 3 % of connection attempts were aborted: bad credentials, timeouts or a client killed (MySQLTuner)."""
    aborted, made = status(f, "aborted_connects"), status(f, "connections")
    if made and 100 * aborted / made > 3:
        return [finding("Aborted_connects", f"{100 * aborted / made:.0f} % of connection attempts were aborted",
                        "look for 'Access denied' and timeouts in the error log; check connect_timeout and the "
                        "clients' credentials", aborted_connects=int(aborted), connections=int(made))]
    return []


# -- logging --------------------------------------------------------------------------------------------------------

def slow_query_log_off(f):
    """The slow query log is off: queries.analyze has nothing to read from a file or table."""
    if not on(f, "slow_query_log"):
        return [finding("slow_query_log", "the slow query log is off",
                        "SET GLOBAL slow_query_log = ON; SET GLOBAL long_query_time = 1;")]
    return []


def general_log_on(f):
    """The general log is on: every statement is written, a cost and a disk filler on a production server."""
    if on(f, "general_log"):
        return [finding("general_log", "the general log is on", "SET GLOBAL general_log = OFF;")]
    return []


# -- schema ---------------------------------------------------------------------------------------------------------

def _base_tables(f):
    return [t for t in f["tables"] if t["ENGINE"] is not None]


def tables_without_primary_key(f):
    """A table without a primary key: InnoDB clusters on a hidden key, row-based replicas scan per row."""
    keyed = {t for t, idx in f["schema_model"].indexes.items() if any(i.primary for i in idx)}
    return [finding(t["TABLE_NAME"], f"table {t['TABLE_NAME']} has no primary key",
                    f"ALTER TABLE {sql_name(t['TABLE_NAME'])} ADD COLUMN id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY;")
            for t in _base_tables(f) if t["TABLE_NAME"] not in keyed]


_RANGES = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}


def auto_increment_near_limit(f):
    """An auto-increment column past 75 % of its type's range: inserts fail when it is reached."""
    out = []
    auto = {t["TABLE_NAME"]: t["AUTO_INCREMENT"] for t in f["tables"] if t["AUTO_INCREMENT"]}
    for c in f["columns"]:
        if "auto_increment" not in (c["EXTRA"] or "") or c["TABLE_NAME"] not in auto:
            continue
        bits = _RANGES.get(str(c["DATA_TYPE"]).lower())
        if bits is None:
            continue
        top = 2**bits - 1 if "unsigned" in str(c["COLUMN_TYPE"]).lower() else 2 ** (bits - 1) - 1
        used = (int(auto[c["TABLE_NAME"]]) - 1) / top
        if used > AUTO_INCREMENT_FULL:
            out.append(finding(f"{c['TABLE_NAME']}.{c['COLUMN_NAME']}",
                               f"{c['TABLE_NAME']}.{c['COLUMN_NAME']} ({c['COLUMN_TYPE']}) has used {100 * used:.0f} % "
                               "of its range", f"ALTER TABLE {sql_name(c['TABLE_NAME'])} MODIFY {sql_name(c['COLUMN_NAME'])} BIGINT "
                               "UNSIGNED NOT NULL AUTO_INCREMENT;", next_value=int(auto[c["TABLE_NAME"]]), maximum=top))
    return out


def index_larger_than_data(f):
    """A table of over 10 MB whose indexes are larger than its data: too many or too wide indexes."""
    return [finding(t["TABLE_NAME"], f"{t['TABLE_NAME']}: indexes {mb(t['INDEX_LENGTH'])} > data "
                    f"{mb(t['DATA_LENGTH'])}", "drop duplicate and unused indexes (db advise lists them)",
                    index_bytes=int(t["INDEX_LENGTH"]), data_bytes=int(t["DATA_LENGTH"]))
            for t in _base_tables(f) if (t["DATA_LENGTH"] or 0) + (t["INDEX_LENGTH"] or 0) > 10 * 2**20
            and (t["INDEX_LENGTH"] or 0) > (t["DATA_LENGTH"] or 0)]


def _references(f) -> list[tuple]:
    """(table, columns, parent, parent columns, how): declared foreign keys, and ``x_id`` columns named after a table ``x``/``xs``
    with a one-column primary key (PELBIOT's tables, like most ORMs', declare none)."""
    model = f["schema_model"]
    out = [(t, fk.columns, fk.parent.split(".")[-1].strip("`"), fk.parent_columns, f"foreign key {fk.name}")
           for t, fks in model.foreign_keys.items() for fk in fks]
    declared = {(t, cols) for t, cols, *_ in out}
    keys = {t: [c.name for c in i.columns] for t, idx in model.indexes.items() for i in idx if i.primary}
    for c in f["columns"]:
        table, name = c["TABLE_NAME"], c["COLUMN_NAME"]
        if not name.endswith("_id") or (table, (name,)) in declared:
            continue
        stem = name[:-3]
        parent = next((p for p in (stem, stem + "s", stem + "es", stem[:-1] + "ies" if stem.endswith("y") else "")
                       if p and p != table and len(keys.get(p, ())) == 1), None)
        if parent:
            out.append((table, (name,), parent, (keys[parent][0],), f"by its name, {parent}.{keys[parent][0]}"))
    return out


def references_without_index(f):
    """A reference to another table (a foreign key, or an ``x_id`` column) that leads no index: joins on it and
    the parent's deletes scan the table."""
    model = f["schema_model"]
    out = []
    for table, columns, parent, _, how in _references(f):
        led = any([c.name for c in i.columns[:len(columns)]] == list(columns) for i in model.indexes.get(table, []))
        if not led:
            cols = ", ".join(sql_name(c) for c in columns)
            out.append(finding(f"{table}.{'+'.join(columns)}", f"{table}.{', '.join(columns)} refers to {parent} "
                               f"({how}) and leads no index", f"ALTER TABLE {sql_name(table)} ADD INDEX ({cols});",
                               parent=parent))
    return out


def duplicate_indexes(f):
    """A duplicate or redundant index (pt-duplicate-key-checker's rules): it slows every write for nothing."""
    from ..indexes.plan import plan

    return [finding(f"{d['table']}.{d['index']}", f"{d['table']}.{d['index']} duplicates {d.get('duplicate_of', '')}".strip(),
                    d["drop_sql"], reason=d.get("reason", ""))
            for d in plan([], f["schema_model"])["duplicates"]]


def unused_indexes(f):
    """A secondary index not read once since the server started (performance_schema)."""
    usage = f["index_usage"]
    if usage is None:
        return []
    days = uptime_days(f)
    out = []
    for table, idx in f["schema_model"].indexes.items():
        for i in idx:
            if i.primary or i.unique or usage.get((table, i.name), 0):
                continue
            if (table, i.name) not in usage:
                continue
            out.append(finding(f"{table}.{i.name}", f"{table}.{i.name} was not read in {days:.1f} days of uptime",
                               f"ALTER TABLE {sql_name(table)} DROP INDEX {sql_name(i.name)}; (after a full business cycle)",
                               uptime_days=round(days, 2)))
    return out


def non_innodb_tables(f):
    """A MyISAM or Aria table: no transactions, table locks, no crash recovery of its data."""
    return [finding(t["TABLE_NAME"], f"{t['TABLE_NAME']} is {t['ENGINE']}", f"ALTER TABLE {sql_name(t['TABLE_NAME'])} ENGINE=InnoDB;",
                    engine=t["ENGINE"])
            for t in _base_tables(f) if str(t["ENGINE"]).upper() in ("MYISAM", "ARIA")]


def mixed_collations(f):
    """Joined columns of different collations: the join cannot use the index (references, same-named x_id columns)."""
    by_column = {(c["TABLE_NAME"], c["COLUMN_NAME"]): c for c in f["columns"] if c["COLLATION_NAME"]}
    pairs = {tuple(sorted(((table, mine), (parent, theirs))))
             for table, columns, parent, parent_columns, _ in _references(f)
             for mine, theirs in zip(columns, parent_columns)}
    names: dict[str, list] = {}
    for key in by_column:
        if key[1].endswith("_id"):
            names.setdefault(key[1], []).append(key)
    for keys in names.values():
        pairs.update((a, b) for a in keys for b in keys if a < b)
    out = []
    for a, b in sorted(pairs):
        ca, cb = by_column.get(a), by_column.get(b)
        if ca and cb and ca["COLLATION_NAME"] != cb["COLLATION_NAME"]:
            out.append(finding(f"{a[0]}.{a[1]} = {b[0]}.{b[1]}", f"{a[0]}.{a[1]} ({ca['COLLATION_NAME']}) and "
                               f"{b[0]}.{b[1]} ({cb['COLLATION_NAME']}) are joined but collate differently",
                               f"ALTER TABLE {sql_name(a[0])} MODIFY {sql_name(a[1])} {ca['COLUMN_TYPE']} CHARACTER SET "
                               f"{cb['CHARACTER_SET_NAME']} COLLATE {cb['COLLATION_NAME']};",
                               left=ca["COLLATION_NAME"], right=cb["COLLATION_NAME"]))
    return out


def statistics_stale(f):
    """An InnoDB table whose statistics were not updated for 30 days: the optimizer plans with old figures."""
    updated = f["statistics_updated"]
    cutoff = f["now"].replace(tzinfo=None) - dt.timedelta(days=STATS_STALE_DAYS)
    return [finding(t["TABLE_NAME"], f"{t['TABLE_NAME']}: statistics last updated {updated[t['TABLE_NAME']]:%Y-%m-%d}",
                    f"ANALYZE TABLE {sql_name(t['TABLE_NAME'])}; (db.optimize does it weekly with the admin account)",
                    last_update=str(updated[t["TABLE_NAME"]]))
            for t in _base_tables(f) if str(t["ENGINE"]).upper() == "INNODB" and t["TABLE_NAME"] in updated
            and updated[t["TABLE_NAME"]] < cutoff]


def fragmented_tables(f):
    """A table of over 100 MB of data with over 10 % free space (MySQLTuner): OPTIMIZE TABLE gives it back."""
    out = []
    for t in _base_tables(f):
        data, index, free = (int(t[k] or 0) for k in ("DATA_LENGTH", "INDEX_LENGTH", "DATA_FREE"))
        if data > 100 * 2**20 and 100 * free / (data + index + free) > 10:
            out.append(finding(t["TABLE_NAME"], f"{t['TABLE_NAME']}: {mb(free)} free of {mb(data + index + free)}",
                               f"OPTIMIZE TABLE {sql_name(t['TABLE_NAME'])}; (rebuilds it: off-peak)", data_free=free))
    return out


# -- replication ----------------------------------------------------------------------------------------------------

def replica_lag(f):
    """The replica is over 5 minutes behind its primary."""
    lag = (f["replica"] or {}).get("seconds_behind_master")
    if _is_replica(f) and lag is not None and int(lag) > REPLICA_LAG_S:
        return [finding("Seconds_Behind_Master", f"the replica is {int(lag)} s behind",
                        "look for long transactions on the primary; slave_parallel_threads = 4",
                        seconds_behind_master=int(lag))]
    return []


def replica_not_read_only(f):
    """A replica that accepts writes (read_only OFF): a stray write breaks replication or splits the data."""
    if _is_replica(f) and not on(f, "read_only"):
        return [finding("read_only", "this replica has read_only OFF", "SET GLOBAL read_only = ON;")]
    return []


def replication_stopped(f):
    """A replication thread is not running (Slave_IO_Running or Slave_SQL_Running is not Yes)."""
    r = f["replica"]
    if _is_replica(f) and (r.get("slave_io_running") != "Yes" or r.get("slave_sql_running") != "Yes"):
        return [finding(r.get("connection_name") or "replication",
                        f"replication is stopped (IO {r.get('slave_io_running')}, SQL {r.get('slave_sql_running')}"
                        + (f": {r.get('last_error')}" if r.get("last_error") else "") + ")",
                        "SHOW SLAVE STATUS\\G; fix Last_Error, then START SLAVE;",
                        io=r.get("slave_io_running"), sql=r.get("slave_sql_running"),
                        last_errno=r.get("last_errno"))]
    return []


def replication_errors_skipped(f):
    """slave_skip_errors is set: errors are skipped and the replica drifts from its primary."""
    value = var(f, "slave_skip_errors", "OFF")
    if value.upper() not in ("OFF", ""):
        return [finding("slave_skip_errors", f"slave_skip_errors = {value}",
                        "remove slave_skip_errors from my.cnf (restart); re-sync the replica (pt-table-checksum)")]
    return []


def replica_not_crash_safe(f):
    """relay_log_recovery is OFF on a replica: after a crash it may apply relay log events twice or miss some."""
    if _is_replica(f) and not on(f, "relay_log_recovery"):
        return [finding("relay_log_recovery", "relay_log_recovery is OFF on this replica",
                        "my.cnf: relay_log_recovery = ON (restart)")]
    return []


def primary_without_binlog_retention(f):
    """A primary with replicas whose binlogs are never purged or purged within a day."""
    keep = setting(f, "binlog_expire_logs_seconds") or setting(f, "expire_logs_days") * 86400
    if f["replicas"] and on(f, "log_bin") and 0 < keep < 86400:
        return [finding("binlog_expire_logs_seconds", f"binlogs are kept {keep / 3600:.0f} h with {f['replicas']} "
                        "replicas: a replica stopped longer cannot catch up",
                        "SET GLOBAL binlog_expire_logs_seconds = 604800;", replicas=f["replicas"])]
    return []


# -- versions -------------------------------------------------------------------------------------------------------

def _release(f) -> tuple | None:
    import re

    version = var(f, "version")
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        return None
    return ("mariadb" if _mariadb(f) else "mysql", int(m.group(1)), int(m.group(2)))


def version_end_of_life(f):
    """The server's release is past its end of life: no security fixes."""
    release = _release(f)
    end = END_OF_LIFE.get(release)
    if end and f["now"].date() > end:
        return [finding(var(f, "version"), f"{var(f, 'version')} reached its end of life on {end}",
                        "upgrade to a supported LTS release (MariaDB 10.11 or 11.4/11.8, MySQL 8.4)", end_of_life=str(end))]
    return []


def version_end_near(f):
    """The server's release reaches its end of life within 180 days."""
    release = _release(f)
    end = END_OF_LIFE.get(release)
    if end and f["now"].date() <= end < f["now"].date() + dt.timedelta(days=EOL_SOON_DAYS):
        return [finding(var(f, "version"), f"{var(f, 'version')} reaches its end of life on {end}",
                        "plan the upgrade to a supported LTS release", end_of_life=str(end))]
    return []


ACCOUNTS, SCHEMAS, MEMORY, REPLICA, REPLICAS = ("accounts",), ("schemas",), ("memory",), ("replica",), ("replicas",)

#: code, category, severity, the fact groups it needs (beyond variables and status), the check.
CHECKS: tuple[Check, ...] = tuple(Check(*row) for row in (
    ("anonymous_accounts", SECURITY, CRITICAL, ACCOUNTS, anonymous_accounts),
    ("accounts_without_password", SECURITY, CRITICAL, ACCOUNTS, accounts_without_password),
    ("weak_passwords", SECURITY, CRITICAL, ACCOUNTS, weak_passwords),
    ("root_from_any_host", SECURITY, CRITICAL, ACCOUNTS, root_from_any_host),
    ("accounts_from_any_host", SECURITY, INFO, ACCOUNTS, accounts_from_any_host),
    ("all_privileges_besides_root", SECURITY, WARNING, ACCOUNTS, all_privileges_besides_root),
    ("local_infile_on", SECURITY, WARNING, (), local_infile_on),
    ("secure_file_priv_empty", SECURITY, WARNING, (), secure_file_priv_empty),
    ("old_authentication", SECURITY, CRITICAL, ACCOUNTS, old_authentication),
    ("remote_without_tls", SECURITY, WARNING, ACCOUNTS, remote_without_tls),
    ("test_database", SECURITY, WARNING, SCHEMAS, test_database),
    ("function_creators_trusted", SECURITY, INFO, (), function_creators_trusted),
    ("symbolic_links", SECURITY, INFO, (), symbolic_links),
    ("flush_log_at_trx_commit", DURABILITY, WARNING, (), flush_log_at_trx_commit),
    ("sync_binlog", DURABILITY, WARNING, (), sync_binlog),
    ("sql_mode_not_strict", DURABILITY, WARNING, (), sql_mode_not_strict),
    ("doublewrite_off", DURABILITY, CRITICAL, (), doublewrite_off),
    ("replica_without_binlog", DURABILITY, WARNING, REPLICA, replica_without_binlog),
    ("binlog_format_not_row", DURABILITY, INFO, (), binlog_format_not_row),
    ("binlog_checksum_off", DURABILITY, WARNING, (), binlog_checksum_off),
    ("buffer_pool_vs_data", PERFORMANCE, WARNING, (), buffer_pool_vs_data),
    ("redo_log_small", PERFORMANCE, WARNING, (), redo_log_small),
    ("log_buffer_waits", PERFORMANCE, INFO, (), log_buffer_waits),
    ("tmp_tables_on_disk", PERFORMANCE, WARNING, (), tmp_tables_on_disk),
    ("joins_without_indexes", PERFORMANCE, WARNING, (), joins_without_indexes),
    ("sorts_on_disk", PERFORMANCE, INFO, (), sorts_on_disk),
    ("table_cache_hit_rate", PERFORMANCE, INFO, (), table_cache_hit_rate),
    ("thread_cache_hit_rate", PERFORMANCE, INFO, (), thread_cache_hit_rate),
    ("table_definition_cache_small", PERFORMANCE, INFO, (), table_definition_cache_small),
    ("query_cache_on", PERFORMANCE, WARNING, (), query_cache_on),
    ("performance_schema_off", PERFORMANCE, INFO, (), performance_schema_off),
    ("name_resolution_on", PERFORMANCE, INFO, (), name_resolution_on),
    ("stats_on_metadata", PERFORMANCE, INFO, (), stats_on_metadata),
    ("buffer_pool_vs_memory", RESOURCES, CRITICAL, MEMORY, buffer_pool_vs_memory),
    ("connections_near_max", RESOURCES, WARNING, (), connections_near_max),
    ("max_connections_vs_memory", RESOURCES, WARNING, MEMORY, max_connections_vs_memory),
    ("open_files_near_limit", RESOURCES, WARNING, (), open_files_near_limit),
    ("binlogs_kept_forever", RESOURCES, WARNING, (), binlogs_kept_forever),
    ("aborted_connections", CONNECTIONS, INFO, (), aborted_connections),
    ("slow_query_log_off", LOGGING, INFO, (), slow_query_log_off),
    ("general_log_on", LOGGING, WARNING, (), general_log_on),
    ("tables_without_primary_key", SCHEMA, WARNING, (), tables_without_primary_key),
    ("auto_increment_near_limit", SCHEMA, CRITICAL, (), auto_increment_near_limit),
    ("index_larger_than_data", SCHEMA, INFO, (), index_larger_than_data),
    ("references_without_index", SCHEMA, WARNING, (), references_without_index),
    ("duplicate_indexes", SCHEMA, INFO, (), duplicate_indexes),
    ("unused_indexes", SCHEMA, INFO, ("index_usage",), unused_indexes),
    ("non_innodb_tables", SCHEMA, WARNING, (), non_innodb_tables),
    ("mixed_collations", SCHEMA, WARNING, (), mixed_collations),
    ("statistics_stale", SCHEMA, INFO, ("statistics_updated",), statistics_stale),
    ("fragmented_tables", SCHEMA, INFO, (), fragmented_tables),
    ("replica_lag", REPLICATION, WARNING, REPLICA, replica_lag),
    ("replica_not_read_only", REPLICATION, WARNING, REPLICA, replica_not_read_only),
    ("replication_stopped", REPLICATION, CRITICAL, REPLICA, replication_stopped),
    ("replication_errors_skipped", REPLICATION, WARNING, (), replication_errors_skipped),
    ("replica_not_crash_safe", REPLICATION, WARNING, REPLICA, replica_not_crash_safe),
    ("primary_without_binlog_retention", REPLICATION, WARNING, REPLICAS, primary_without_binlog_retention),
    ("version_end_of_life", VERSIONS, CRITICAL, (), version_end_of_life),
    ("version_end_near", VERSIONS, INFO, (), version_end_near),
))
BY_CODE = {c.code: c for c in CHECKS}


def run_checks(f: dict, category: str | None = None) -> dict:
    """Pure: every check (of one category) over the facts: findings, and the checks that could not run and why."""
    findings, not_checked, ran = [], [], []
    for check in CHECKS:
        if category and check.category != category:
            continue
        missing = [f["missing"][need] for need in check.needs if need in f["missing"]]
        if missing:
            not_checked.append({"code": check.code, "category": check.category, "needs": missing[0]})
            continue
        ran.append(check.code)
        for found in check.run(f):
            findings.append({"code": check.code, "category": check.category, "severity": check.severity, **found})
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda x: (order[x["severity"]], CATEGORIES.index(x["category"]), x["code"], x["subject"]))
    return {"findings": findings, "not_checked": not_checked, "checked": ran}
