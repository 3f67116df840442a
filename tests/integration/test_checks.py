"""The server and schema checks on real MariaDB servers of the test's own: each one triggered, then cleared.

Three private servers: ``good`` (a primary configured as the checks want it), ``bad`` (started with the
options no SET GLOBAL can change: doublewrite off, performance_schema off, a tiny redo log...) and
``replica`` (replicating from ``good``). The checks read through an account with exactly the grants
docs/security.md lists for them. A state a test sets is put back by the test, and where the finding's
own ``fix`` is SQL, the fix is what puts it back: the fix lines are proven, not just printed.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from urllib.parse import quote

import pymysql
import pytest
from sqlalchemy import create_engine

from pelbiot_jobs.tuning.checks import BY_CODE, CHECKS, run_checks
from pelbiot_jobs.tuning.facts import read_facts
from tests.conftest import PrivateMariaDB

#: Only MariaDB servers of its own: it runs beside the shared-services tests (tests/conftest.py).
OWN_SERVERS = True
READER, READER_PASSWORD = "pj_checks", "ch3cks-reader-pw"
#: docs/security.md: what the read-only account needs for every check.
CHECK_GRANTS = (
    "GRANT SELECT ON app.* TO {u}",
    "GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR, SHOW DATABASES ON *.* TO {u}",
    "GRANT SELECT ON performance_schema.* TO {u}",
    "GRANT SELECT ON mysql.user TO {u}",
    "GRANT SELECT ON mysql.global_priv TO {u}",
    "GRANT SELECT ON mysql.innodb_table_stats TO {u}",
)
FILES = tempfile.mkdtemp(prefix="pj-files-")
GOOD = (f"--secure-file-priv={FILES}", "--log-bin=mysql-bin", "--server-id=1", "--sync-binlog=1", "--binlog-format=ROW", "--performance-schema=ON",
        "--skip-name-resolve", "--skip-symbolic-links", "--slow-query-log=1", "--local-infile=0",
        "--binlog-expire-logs-seconds=604800", "--max-connections=151")
BAD = ("--skip-innodb-doublewrite", "--performance-schema=OFF", "--query-cache-type=1", "--query-cache-size=16M",
       "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=4M", "--innodb-log-buffer-size=256K", "--skip-name-resolve=0",
       "--slow-query-log=1", "--local-infile=0", "--skip-symbolic-links=0")
REPLICA = ("--server-id=2", "--slave-skip-errors=1062", "--performance-schema=ON", "--skip-name-resolve",
           "--skip-symbolic-links", "--slow-query-log=1", "--local-infile=0")
REPLICA_FIXED = ("--log-bin=mysql-bin", "--relay-log-recovery=ON")
STRICT = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"


def _prepare(server: PrivateMariaDB) -> None:
    conn = root(server)
    with conn.cursor() as cur:
        cur.execute("SELECT User, Host FROM mysql.user WHERE User = 'root' AND Host NOT IN "
                    "('localhost', '127.0.0.1', '::1')")
        for user, host in cur.fetchall():  # root@<this machine's name>: not a state the tests are about
            cur.execute(f"DROP USER '{user}'@'{host}'")
        cur.execute("CREATE DATABASE IF NOT EXISTS app")
        cur.execute(f"CREATE USER IF NOT EXISTS '{READER}'@'127.0.0.1' IDENTIFIED BY '{READER_PASSWORD}'")
        for grant in CHECK_GRANTS:
            cur.execute(grant.format(u=f"'{READER}'@'127.0.0.1'"))
    conn.close()


def root(server: PrivateMariaDB, database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=server.port, user="root", database=database, autocommit=True)


def sql(server: PrivateMariaDB, *statements: str) -> None:
    conn = root(server, "app")
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                cur.fetchall()
    finally:
        conn.close()


def reader_url(server: PrivateMariaDB, user: str = READER, password: str = READER_PASSWORD) -> str:
    return f"mysql+pymysql://{user}:{quote(password, safe='')}@127.0.0.1:{server.port}/app"


def check(server: PrivateMariaDB, memory_mb: int | None = None, now: dt.datetime | None = None,
          url: str | None = None) -> dict:
    engine = create_engine(url or reader_url(server), poolclass=__import__("sqlalchemy").pool.NullPool)
    try:
        result = run_checks(read_facts(engine, memory_mb, now))
    finally:
        engine.dispose()
    result["by_code"] = {}
    for x in result["findings"]:
        result["by_code"].setdefault(x["code"], []).append(x)
    return result


@pytest.fixture(scope="module")
def good():
    server = PrivateMariaDB(*GOOD)
    server.start()
    _prepare(server)
    yield server
    server.remove()


@pytest.fixture(scope="module")
def bad():
    server = PrivateMariaDB(*BAD)
    server.start()
    _prepare(server)
    sql(server, "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(100), pad CHAR(200))",
        "INSERT INTO big SELECT seq, MD5(seq), 'x' FROM seq_1_to_200000", "ANALYZE TABLE big")
    yield server
    server.remove()


@pytest.fixture(scope="module")
def replica(good):
    sql(good, "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-Pass-71'",
        "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
    server = PrivateMariaDB(*REPLICA)
    server.start()
    _prepare(server)
    conn = root(good)
    with conn.cursor() as cur:
        cur.execute("SELECT @@gtid_binlog_pos")
        position = cur.fetchone()[0]
    conn.close()
    sql(server, "DROP DATABASE app")  # it comes from the primary
    sql_root(server, f"SET GLOBAL gtid_slave_pos = '{position}'",
             f"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {good.port}, MASTER_USER = 'repl', "
             "MASTER_PASSWORD = 'repl-Pass-71', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
             "START SLAVE")
    sql(good, "DROP DATABASE IF EXISTS app", "CREATE DATABASE app", "CREATE TABLE app.lag (id INT PRIMARY KEY)")
    wait_for(lambda: replica_status(server).get("Slave_SQL_Running_State", "").startswith("Slave has read all")
             and table_exists(server, "lag"), "the replica to catch up")
    yield server
    server.remove()


def sql_root(server, *statements):
    conn = root(server)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def replica_status(server) -> dict:
    conn = root(server)
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SHOW SLAVE STATUS")
            return cur.fetchone() or {}
    finally:
        conn.close()


def table_exists(server, table) -> bool:
    conn = root(server)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = %s",
                        (table,))
            return cur.fetchone()[0] == 1
    finally:
        conn.close()


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


# -- states: what to do to trigger a check, and what puts it back (None: the finding's own fix) ---------------------

def _connections(server, n):
    held = [root(server) for _ in range(n)]
    for conn in held:
        conn.close()


def _bad_logins(server):
    """Enough refused logins to be over 3 % of every connection the server has counted."""
    conn = root(server)
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Connections'")
        made = int(cur.fetchone()[1])
    conn.close()
    for _ in range(made // 20 + 5):
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host="127.0.0.1", port=server.port, user=READER, password="wrong")


def restart(server):
    """Status counters start from zero again (FLUSH STATUS leaves most global ones as they are)."""
    server.stop()
    server.start()


SAVED: dict = {}


def _save(variable):
    def save(server):
        conn = root(server)
        with conn.cursor() as cur:
            cur.execute(f"SELECT @@GLOBAL.{variable}")
            SAVED[variable] = cur.fetchone()[0]
        conn.close()
    return save


def _restore(variable):
    return lambda server: sql_root(server, f"SET GLOBAL {variable} = {SAVED[variable]}")


STATES = {
    "anonymous_accounts": (["CREATE USER ''@'localhost'"], ["DROP USER ''@'localhost'"]),
    "accounts_without_password": (["CREATE USER 'nopw'@'localhost'"], None),
    "weak_passwords": (["CREATE USER 'meter'@'localhost' IDENTIFIED BY 'Meter'",
                        "CREATE USER 'ops'@'localhost' IDENTIFIED BY 'letmein'"],
                       ["DROP USER 'meter'@'localhost'", "DROP USER 'ops'@'localhost'"]),
    "root_from_any_host": (["CREATE USER 'root'@'%' IDENTIFIED BY 'Xq-83-long-Pass'"], ["DROP USER 'root'@'%'"]),
    "accounts_from_any_host": (["CREATE USER 'api'@'%' IDENTIFIED BY 'Xq-83-long-Pass' REQUIRE SSL"],
                               ["DROP USER 'api'@'%'"]),
    "all_privileges_besides_root": (["CREATE USER 'dba'@'localhost' IDENTIFIED BY 'Xq-83-long-Pass'",
                                     "GRANT ALL PRIVILEGES ON *.* TO 'dba'@'localhost'"], ["DROP USER 'dba'@'localhost'"]),
    "local_infile_on": (["SET GLOBAL local_infile = ON"], None),
    "old_authentication": (["CREATE USER 'legacy'@'localhost' IDENTIFIED VIA mysql_old_password USING "
                            "'7c786c222596437b'"], ["DROP USER 'legacy'@'localhost'"]),
    "remote_without_tls": (["CREATE USER 'api'@'10.0.0.%' IDENTIFIED BY 'Xq-83-long-Pass'"],
                           ["DROP USER 'api'@'10.0.0.%'"]),
    "test_database": (["CREATE DATABASE test"], None),
    "function_creators_trusted": (["SET GLOBAL log_bin_trust_function_creators = ON"], None),
    "flush_log_at_trx_commit": (["SET GLOBAL innodb_flush_log_at_trx_commit = 2"], None),
    "sync_binlog": (["SET GLOBAL sync_binlog = 0"], None),
    "sql_mode_not_strict": (["SET GLOBAL sql_mode = ''"], [f"SET GLOBAL sql_mode = '{STRICT}'"]),
    "binlog_format_not_row": (["SET GLOBAL binlog_format = 'MIXED'"], None),
    "binlog_checksum_off": (["SET GLOBAL binlog_checksum = 'NONE'"], None),
    "tmp_tables_on_disk": ([restart, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)",
                            "INSERT INTO notes SELECT seq, REPEAT('a', seq % 50) FROM seq_1_to_200",
                            *["SELECT body, COUNT(*) FROM notes GROUP BY body"] * 100], ["DROP TABLE notes", restart]),
    "joins_without_indexes": ([restart, "CREATE TABLE ja (x INT)", "CREATE TABLE jb (y INT)",
                               "INSERT INTO ja SELECT seq FROM seq_1_to_10", "INSERT INTO jb SELECT seq FROM seq_1_to_10",
                               *["SELECT COUNT(*) FROM ja JOIN jb ON ja.x = jb.y"] * 120],
                              ["DROP TABLE ja, jb", restart]),
    "sorts_on_disk": ([restart, "CREATE TABLE sorted (id INT PRIMARY KEY, v VARCHAR(40))",
                       "INSERT INTO sorted SELECT seq, MD5(seq) FROM seq_1_to_100000",
                       "SET SESSION sort_buffer_size = 32768",
                       *["SELECT * FROM sorted ORDER BY v LIMIT 99990, 1"] * 5],
                      ["DROP TABLE sorted", restart]),
    "table_cache_hit_rate": ([restart, "SET GLOBAL table_open_cache = 10",
                              *[f"CREATE TABLE c{i} (id INT PRIMARY KEY)" for i in range(30)],
                              *[f"SELECT * FROM c{i % 30}" for i in range(2400)]],
                             [*[f"DROP TABLE c{i}" for i in range(30)], restart]),
    "thread_cache_hit_rate": (["SET GLOBAL thread_cache_size = 0"], ["SET GLOBAL thread_cache_size = 151"]),
    "table_definition_cache_small": ([_save("table_definition_cache"), "SET GLOBAL table_definition_cache = 400",
                                      "CREATE DATABASE views",
                                      *[f"CREATE VIEW views.v{i} AS SELECT {i}" for i in range(420)],
                                      *[f"SELECT * FROM views.v{i}" for i in range(420)]],
                                     ["DROP DATABASE views", _restore("table_definition_cache")]),
    "stats_on_metadata": (["SET GLOBAL innodb_stats_on_metadata = ON"], None),
    "connections_near_max": (["SET GLOBAL max_connections = 10", "FLUSH STATUS", lambda s: _connections(s, 9)],
                             ["SET GLOBAL max_connections = 151", "FLUSH STATUS"]),
    "max_connections_vs_memory": (["SET GLOBAL max_connections = 100000"], ["SET GLOBAL max_connections = 151"]),
    "binlogs_kept_forever": (["SET GLOBAL binlog_expire_logs_seconds = 0"], None),
    "aborted_connections": (["FLUSH STATUS", _bad_logins], ["FLUSH STATUS"]),
    "slow_query_log_off": (["SET GLOBAL slow_query_log = OFF"], ["SET GLOBAL slow_query_log = ON"]),
    "general_log_on": (["SET GLOBAL general_log = ON"], None),
    "tables_without_primary_key": (["CREATE TABLE nopk (a INT)"], None),
    "auto_increment_near_limit": (["CREATE TABLE counters (id TINYINT AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT = 100"],
                                  None),
    "index_larger_than_data": (["CREATE TABLE wide (id INT PRIMARY KEY, a VARCHAR(64), b VARCHAR(64), KEY ka (a), "
                                "KEY kb (b), KEY kab (a, b), KEY kba (b, a))",
                                "INSERT INTO wide SELECT seq, MD5(seq), MD5(-seq) FROM seq_1_to_60000",
                                "ANALYZE TABLE wide"], ["DROP TABLE wide"]),  # cleanup: a restart (its log waits)
    "references_without_index": (["CREATE TABLE devices (id INT PRIMARY KEY, name VARCHAR(20))",
                                  "CREATE TABLE readings (id INT PRIMARY KEY, device_id INT, kwh DOUBLE)"], None),
    "duplicate_indexes": (["CREATE TABLE dup (id INT PRIMARY KEY, a INT, b INT, KEY ka (a), KEY kab (a, b))"], None),
    "unused_indexes": (["CREATE TABLE idle (id INT PRIMARY KEY, a INT, KEY ka (a))",
                        "INSERT INTO idle SELECT seq, seq FROM seq_1_to_100"],
                       ["SELECT * FROM idle FORCE INDEX (ka) WHERE a = 7"]),
    "non_innodb_tables": (["CREATE TABLE legacy (id INT PRIMARY KEY) ENGINE=MyISAM"], None),
    "mixed_collations": (["CREATE TABLE meters (id INT PRIMARY KEY, site_id VARCHAR(20) COLLATE utf8mb4_bin)",
                          "CREATE TABLE visits (id INT PRIMARY KEY, site_id VARCHAR(20) COLLATE utf8mb4_general_ci, "
                          "KEY (site_id))"], None),
    "statistics_stale": (["CREATE TABLE archive (id INT PRIMARY KEY)", "INSERT INTO archive VALUES (1)",
                          "ANALYZE TABLE archive", "UPDATE mysql.innodb_table_stats SET last_update = NOW() - "
                          "INTERVAL 40 DAY WHERE database_name = 'app' AND table_name = 'archive'"], None),
    "fragmented_tables": (["CREATE TABLE holes (id INT PRIMARY KEY, v VARCHAR(100), pad CHAR(200))",
                           "INSERT INTO holes SELECT seq, MD5(seq), 'x' FROM seq_1_to_800000",
                           "DELETE FROM holes WHERE id <= 320000", "SET GLOBAL innodb_max_purge_lag_wait = 0",
                           "ANALYZE TABLE holes"], None),
}
#: Checks whose state is a start-up option: triggered on ``bad``, cleared on ``good`` (configured as the fix says).
STARTUP = ("doublewrite_off", "performance_schema_off", "query_cache_on", "redo_log_small", "secure_file_priv_empty",
           "name_resolution_on", "symbolic_links", "buffer_pool_vs_data", "log_buffer_waits")
#: Checked on the replica (and the primary's view of its replicas).
REPLICATION = ("replica_without_binlog", "replica_not_read_only", "replication_stopped", "replica_lag",
               "replication_errors_skipped", "replica_not_crash_safe", "primary_without_binlog_retention")
#: Checks whose trigger is a fact the server does not set: the server's memory, today's date.
FACT_DRIVEN = ("buffer_pool_vs_memory", "version_end_of_life", "version_end_near")
#: No state of a real server reached it here: tested on facts (tests/unit/test_checks.py), and why.
#: What a state leaves behind once it is cleared (tables its fix repaired).
CLEANUP = {"tables_without_primary_key": ["DROP TABLE nopk"], "auto_increment_near_limit": ["DROP TABLE counters"],
           "references_without_index": ["DROP TABLE readings, devices"], "duplicate_indexes": ["DROP TABLE dup"],
           "non_innodb_tables": ["DROP TABLE legacy"], "mixed_collations": ["DROP TABLE meters, visits"],
           "statistics_stale": ["DROP TABLE archive"], "index_larger_than_data": [restart],
           "fragmented_tables": ["DROP TABLE holes", restart],  # its 220 MB of inserts waited on the redo log
           "unused_indexes": ["DROP TABLE idle"], "accounts_without_password": ["DROP USER 'nopw'@'localhost'"]}
NOT_REACHED = {"open_files_near_limit": "MariaDB raises open_files_limit to what its caches need at start-up"}


def test_every_check_is_triggered_and_cleared_by_a_test_here():
    covered = set(STATES) | set(STARTUP) | set(REPLICATION) | set(FACT_DRIVEN) | set(NOT_REACHED)
    assert covered == set(BY_CODE), sorted(covered ^ set(BY_CODE))
    assert len(CHECKS) >= 40


@pytest.fixture(scope="module")
def baseline(good):
    return check(good)


def test_the_good_server_has_only_its_root_accounts_without_password(baseline):
    assert baseline["not_checked"] == []
    assert {x["code"] for x in baseline["findings"]} == {"accounts_without_password"}
    assert {x["subject"] for x in baseline["findings"]} <= {"'root'@'localhost'", "'root'@'127.0.0.1'", "'root'@'::1'"}


def _run(server, steps):
    for step in steps:
        if callable(step):
            step(server)
        else:
            sql(server, step)


@pytest.mark.parametrize("code", sorted(STATES))
def test_a_check_finds_its_state_and_the_fix_clears_it(good, code):
    trigger, revert = STATES[code]
    before = {(x["code"], x["subject"]) for x in check(good)["findings"]}
    found = []
    _run(good, trigger)
    try:
        found = [x for x in check(good)["by_code"].get(code, []) if (code, x["subject"]) not in before]
        assert found, f"{code} found nothing after {trigger[-1] if trigger else ''!r}"
        for x in found:
            assert x["message"] and x["fix"] and x["severity"] == BY_CODE[code].severity
            assert x["category"] == BY_CODE[code].category
    finally:
        if revert is None:  # the finding's own fix line puts it back: its first statement, up to the ';'
            revert = [x["fix"][:x["fix"].index(";") + 1] for x in found]
        _run(good, revert)
    try:
        after = {(x["code"], x["subject"]) for x in check(good)["findings"]}
        assert not {(code, x["subject"]) for x in found} & after, f"{code} still found after {revert!r}"
    finally:
        _run(good, CLEANUP.get(code, []))
    # Nothing else changed; a new table's index not read yet is the one finding a state may leave.
    after = {(x["code"], x["subject"]) for x in check(good)["findings"]}
    assert before == after - {k for k in after if k[0] == "unused_indexes"}


@pytest.mark.parametrize("code", STARTUP)
def test_a_start_up_option_is_found_on_the_server_started_with_it(bad, baseline, code):
    assert check(bad)["by_code"].get(code), code
    assert code not in baseline["by_code"]


def test_the_replica_checks(good, replica):
    found = check(replica)["by_code"]
    for code in ("replica_without_binlog", "replica_not_read_only", "replication_errors_skipped",
                 "replica_not_crash_safe"):
        assert found.get(code), code
    assert not found.get("replication_stopped") and not found.get("replica_lag")
    sql_root(replica, "SET GLOBAL read_only = ON")
    assert not check(replica)["by_code"].get("replica_not_read_only")

    sql_root(replica, "STOP SLAVE SQL_THREAD")
    stopped = check(replica)["by_code"].get("replication_stopped")
    assert stopped and stopped[0]["evidence"]["sql"] == "No"
    sql_root(replica, "START SLAVE SQL_THREAD")
    wait_for(lambda: replica_status(replica).get("Slave_SQL_Running") == "Yes", "the SQL thread")
    assert not check(replica)["by_code"].get("replication_stopped")

    # Lag: the replica applies an event written 1,000 s "ago" while a lock holds its table.
    holder = root(replica, "app")
    with holder.cursor() as cur:
        cur.execute("LOCK TABLES lag WRITE")
    try:
        sql(good, "SET TIMESTAMP = UNIX_TIMESTAMP() - 1000", "INSERT INTO lag VALUES (1)")
        wait_for(lambda: (replica_status(replica).get("Seconds_Behind_Master") or 0) > 300, "the replica to lag")
        lag = check(replica)["by_code"].get("replica_lag")
        assert lag and lag[0]["evidence"]["seconds_behind_master"] > 300
    finally:
        with holder.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        holder.close()
    wait_for(lambda: replica_status(replica).get("Seconds_Behind_Master") == 0, "the replica to catch up")
    assert not check(replica)["by_code"].get("replica_lag")

    # The primary sees its replica: binlogs kept an hour are too few for it.
    sql_root(good, "SET GLOBAL binlog_expire_logs_seconds = 3600")
    try:
        assert check(good)["by_code"].get("primary_without_binlog_retention")
    finally:
        sql_root(good, "SET GLOBAL binlog_expire_logs_seconds = 604800")
    assert not check(good)["by_code"].get("primary_without_binlog_retention")

    # Restarted as the fixes say: binary log on, relay log recovery on, no errors skipped.
    replica.stop()
    replica.options = [o for o in replica.options if not o.startswith("--slave-skip-errors")] + list(REPLICA_FIXED)
    replica.start()
    sql_root(replica, "SET GLOBAL read_only = ON")
    wait_for(lambda: replica_status(replica).get("Slave_SQL_Running") == "Yes", "replication after the restart")
    found = check(replica)["by_code"]
    for code in ("replica_without_binlog", "replication_errors_skipped", "replica_not_crash_safe",
                 "replica_not_read_only", "replication_stopped", "replica_lag"):
        assert not found.get(code), (code, found.get(code))


def test_memory_and_date_driven_checks(good):
    assert check(good, memory_mb=100)["by_code"].get("buffer_pool_vs_memory")  # 128 MB of pool on a 100 MB host
    assert not check(good)["by_code"].get("buffer_pool_vs_memory")  # this host's memory
    version = check(good)
    assert not version["by_code"].get("version_end_of_life") and not version["by_code"].get("version_end_near")
    eol = check(good, now=dt.datetime(2028, 3, 1, tzinfo=dt.timezone.utc))["by_code"]["version_end_of_life"]
    assert eol[0]["evidence"]["end_of_life"] == "2028-02-16"
    assert check(good, now=dt.datetime(2027, 11, 1, tzinfo=dt.timezone.utc))["by_code"].get("version_end_near")


def test_a_check_the_account_may_not_read_says_which_grant_it_needs(good):
    sql_root(good, "CREATE USER 'pj_less'@'127.0.0.1' IDENTIFIED BY 'less-Pass-55'",
             "GRANT SELECT ON app.* TO 'pj_less'@'127.0.0.1'")
    try:
        result = check(good, url=reader_url(good, "pj_less", "less-Pass-55"))
    finally:
        sql_root(good, "DROP USER 'pj_less'@'127.0.0.1'")
    not_checked = {x["code"]: x["needs"] for x in result["not_checked"]}
    assert "GRANT SELECT ON mysql.user" in not_checked["anonymous_accounts"]
    assert "SHOW DATABASES" in not_checked["test_database"]
    assert "mysql.innodb_table_stats" in not_checked["statistics_stale"]
    assert "replica_lag" in not_checked and "primary_without_binlog_retention" in not_checked
    assert "local_infile_on" in result["checked"] and "duplicate_indexes" in result["checked"]
    assert not set(not_checked) & set(result["checked"])


# -- MySQLTuner as the oracle ----------------------------------------------------------------------------------------

#: Every [!!] line MySQLTuner 1.9.9 may print here, and the check that must have a finding for it (or why none).
TUNER = (
    (r"is an anonymous account", "anonymous_accounts"),
    (r"has no password set", "accounts_without_password"),
    (r"has user name as password|is using weak password", "weak_passwords"),
    (r"does not specify hostname restrictions", "accounts_from_any_host"),
    (r"Name resolution is active", "name_resolution_on"),
    (r"Query cache may be disabled|Query cache prunes|Query cache efficiency", "query_cache_on"),
    (r"Joins performed without indexes", "joins_without_indexes"),
    (r"Performance_schema should be activated", "performance_schema_off"),
    (r"Key buffer used|Key buffer size / total MyISAM indexes|Read Key buffer hit rate", "non_innodb_tables"),
    (r"InnoDB buffer pool / data size", "buffer_pool_vs_data"),
    (r"Ratio InnoDB log file size / InnoDB Buffer pool size", "redo_log_small"),
    (r"InnoDB log waits", "log_buffer_waits"),
    (r"Temporary tables created on disk", "tmp_tables_on_disk"),
    (r"Aborted connections", "aborted_connections"),
    (r"Highest connection usage", "connections_near_max"),
    (r"Following table\(s\) don't have primary key|has no index defined", "tables_without_primary_key"),
    (r"Assuming 0 MB of swap space", None),  # the host's swap: not the database server's
    (r"Log file .*(doesn't exist|isn't readable|contains)|log_error is set to", None),  # a file on the server's host
    # 1.9.9 knows no release after 10.6 and calls every later one end of life (10.11 is supported until
    # 2028-02-16): version_end_of_life goes by the vendors' dates (test_memory_and_date_driven_checks).
    (r"is EOL software", None),
)
#: The state put on the ``bad`` server (its start-up options add the rest), and how it is taken back.
TUNER_STATE = ["CREATE USER ''@'localhost'", "CREATE USER 'nopw'@'localhost'",
               "CREATE USER 'meter'@'localhost' IDENTIFIED BY 'meter'",
               "CREATE USER 'app'@'%' IDENTIFIED BY 'Xq-83-long-Pass'", "CREATE DATABASE test",
               "CREATE TABLE nopk (a INT)", "CREATE TABLE counters (id TINYINT AUTO_INCREMENT PRIMARY KEY) "
               "AUTO_INCREMENT = 100", "CREATE TABLE legacy (id INT PRIMARY KEY) ENGINE=MyISAM",
               "CREATE TABLE ja (x INT)", "CREATE TABLE jb (y INT)", "INSERT INTO ja SELECT seq FROM seq_1_to_10",
               "INSERT INTO jb SELECT seq FROM seq_1_to_10",
               # each different: the query cache this server has on would answer repeats without a join
               *[f"SELECT COUNT(*) FROM ja JOIN jb ON ja.x = jb.y WHERE ja.x > {-i}" for i in range(150)]]
TUNER_UNDO = ["DROP USER ''@'localhost'", "DROP USER 'nopw'@'localhost'", "DROP USER 'meter'@'localhost'",
              "DROP USER 'app'@'%'", "DROP DATABASE test", "DROP TABLE nopk, counters, legacy, ja, jb"]


def test_every_warning_mysqltuner_prints_has_a_finding(bad):
    import re
    import shutil
    import subprocess

    tuner = shutil.which("mysqltuner")
    if tuner is None:
        pytest.fail("mysqltuner is missing: `make test` installs it (apt-get install mysqltuner)", pytrace=False)
    before = {(x["code"], x["subject"]) for x in check(bad)["findings"]}
    sql(bad, *TUNER_STATE)
    memory_mb = int(open("/proc/meminfo").readline().split()[1]) // 1024
    try:
        done = subprocess.run([tuner, "--host", "127.0.0.1", "--port", str(bad.port), "--user", "root", "--pass", "",
                               "--nocolor", "--forcemem", str(memory_mb), "--forceswap", "0"],
                              capture_output=True, text=True, timeout=300)
        ours = check(bad, memory_mb=memory_mb)
    except BaseException:
        sql(bad, *TUNER_UNDO)
        raise
    warnings = [line[5:] for line in done.stdout.splitlines() if line.startswith("[!!]")]
    assert len(warnings) >= 10, done.stdout[-3000:]
    unmatched, missed = [], []
    for line in warnings:
        code = next((c for pattern, c in TUNER if re.search(pattern, line)), "?")
        if code == "?":
            unmatched.append(line)
        elif code is not None and code not in ours["by_code"]:
            missed.append((code, line))
    assert not unmatched, f"MySQLTuner warnings no row of TUNER names: {unmatched}"
    assert not missed, f"MySQLTuner warned, pelbiot-jobs found nothing: {missed}"
    # And what the state added goes away with it.
    sql(bad, *TUNER_UNDO)
    restart(bad)  # the joins counted since the start
    after = {(x["code"], x["subject"]) for x in check(bad)["findings"]}
    added = {(x["code"], x["subject"]) for x in ours["findings"]} - before
    assert added and not added & after, added & after
