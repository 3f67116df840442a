"""indexes apply on MariaDB: online on a million-row table under a concurrent writer, the load guard,
and one DDL at a time."""

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import make_engine
from pelbiot_jobs.db.ops_models import index_changes
from pelbiot_jobs.indexes.apply import Guard, apply_plan, in_window
from pelbiot_jobs.indexes.model import Column, Index
from pelbiot_jobs.indexes.plan import ddl
from tests.helpers import mysql

ROWS = 1_000_000


def connect(db=None):
    return mysql(db)


@pytest.fixture(scope="module")
def big(fresh_mysql_db):
    url = fresh_mysql_db()
    db = url.rsplit("/", 1)[1]
    conn = connect(db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE readings (id BIGINT AUTO_INCREMENT PRIMARY KEY, sensor_id INT NOT NULL, "
                    "ts DATETIME NOT NULL, value DOUBLE NOT NULL, note VARCHAR(40)) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO readings (sensor_id, ts, value, note) SELECT seq % 500, "
                    f"'2026-11-01' + INTERVAL seq SECOND, seq * 0.5, CONCAT('r', seq) FROM seq_1_to_{ROWS}")
    conn.close()
    ops_url = fresh_mysql_db()
    migrate.upgrade(ops_url)
    app, ops = make_engine(url), make_engine(ops_url)
    yield db, app, ops
    app.dispose()
    ops.dispose()


def entry(name, columns, table="readings"):
    index = Index(table, name, tuple(Column(c) for c in columns))
    return {"table": table, "name": name, "columns": list(columns), "sql": ddl(index, "mysql")}


def index_exists(db, name):
    conn = connect(db)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND INDEX_NAME = %s",
                    (db, name))
        found = cur.fetchone()[0] > 0
    conn.close()
    return found


def test_online_build_on_a_million_rows_while_a_writer_keeps_inserting(big, capsys):
    db, app, ops = big
    stalls, stop = [], threading.Event()

    def writer():
        conn = connect(db)
        with conn.cursor() as cur:
            while not stop.is_set():
                t = time.perf_counter()
                cur.execute("INSERT INTO readings (sensor_id, ts, value) VALUES (7, NOW(), 1.5)")
                stalls.append(time.perf_counter() - t)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)
    before = len(stalls)
    try:
        results = apply_plan(app, ops, [entry("idx_readings_sensor_ts", ["sensor_id", "ts"])], Guard(), "t-online")
    finally:
        stop.set()
        thread.join(30)
    assert results[0]["outcome"] == "created", results
    assert index_exists(db, "idx_readings_sensor_ts")
    during = len(stalls) - before
    build = results[0]["duration_s"]
    longest = max(stalls)
    with capsys.disabled():
        print(f"\n[index apply] {ROWS:,} rows: online build {build:.2f} s; {during} inserts meanwhile; "
              f"longest insert stall {longest * 1000:.0f} ms")
    assert during > 10  # the table stayed writable during the build
    assert longest < max(1.0, build / 2)  # no insert waited for the whole build
    with ops.connect() as conn:
        row = conn.execute(select(index_changes).where(index_changes.c.run_id == "t-online")).mappings().one()
    assert row["outcome"] == "created" and "ALGORITHM=INPLACE, LOCK=NONE" in row["statement"]


def sleepers(n, seconds):
    threads = []
    for _ in range(n):
        def run():
            c = connect()
            c.cursor().execute(f"SELECT SLEEP({seconds})")
            c.close()
        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
    time.sleep(0.5)
    return threads


def test_the_load_guard_pauses_then_goes_on(big):
    db, app, ops = big
    threads = sleepers(6, 2)
    guard = Guard(max_load=4, critical_load=40, pause_seconds=0.5, max_pauses=20)
    results = apply_plan(app, ops, [entry("idx_readings_value", ["value"])], guard, "t-pause")
    for t in threads:
        t.join()
    assert results[0]["outcome"] == "created"
    assert results[0]["duration_s"] >= 1.0  # it waited for the sleepers to finish


def test_the_load_guard_aborts_above_the_critical_load(big):
    db, app, ops = big
    threads = sleepers(10, 3)
    guard = Guard(max_load=2, critical_load=6)
    results = apply_plan(app, ops, [entry("idx_readings_note", ["note"]), entry("idx_readings_ts", ["ts"])],
                         guard, "t-abort")
    for t in threads:
        t.join()
    assert [r["outcome"] for r in results] == ["aborted"]  # and the run stops there
    assert "above the critical load 6" in results[0]["reason"]
    assert not index_exists(db, "idx_readings_note")


def test_two_applies_at_once_never_run_two_ddls(big):
    db, app, ops = big
    out = {}

    def run(name, columns, key):
        out[key] = apply_plan(app, ops, [entry(name, columns)], Guard(), f"t-two-{key}")[0]

    first = threading.Thread(target=run, args=("idx_readings_sensor_value", ["sensor_id", "value"], "a"))
    first.start()
    time.sleep(0.2)  # the first build is under way
    run("idx_readings_ts_value", ["ts", "value"], "b")
    first.join()
    assert out["a"]["outcome"] == "created"
    assert out["b"]["outcome"] == "skipped" and out["b"]["reason"] == "another index change is running on this server"


def test_the_maintenance_window():
    window = (dt.time(2), dt.time(5))
    assert in_window(window, dt.datetime(2026, 11, 29, 3, 0)) and not in_window(window, dt.datetime(2026, 11, 29, 6))
    assert in_window((dt.time(23), dt.time(1)), dt.datetime(2026, 11, 29, 0, 30))  # across midnight


def test_an_index_for_a_slow_query_is_measured_before_and_after(big):
    db, app, ops = big
    target = "SELECT id, value FROM readings WHERE note = ?"  # a full scan before
    e = entry("idx_readings_note_only", ["note"]) | {"target": target}
    [r] = apply_plan(app, ops, [e], Guard(), "t-measure")
    assert r["outcome"] == "created"
    assert r["explain_rows_before"] > 500_000 and r["explain_rows_after"] < 10
    assert r["latency_ms_after"] < r["latency_ms_before"]
    with ops.connect() as conn:
        row = conn.execute(select(index_changes).where(index_changes.c.run_id == "t-measure")).mappings().one()
    assert row["target_query"] == target and row["latency_ms_before"] > row["latency_ms_after"]


def test_from_the_worst_query_to_a_measured_index(fresh_mysql_db):
    """PELBIOT's worst query, `select max(peak) from load_profiles where date(created_at) = ?`, a
    full scan: the advisor proposes the sargable rewrite and the index it uses; created, EXPLAIN's
    rows for the rewritten query drop by two orders of magnitude, and the before/after lands in
    ops_index_changes with the query it was for."""
    import datetime as dt
    import json

    from pelbiot_jobs.config import load_settings
    from pelbiot_jobs.db.ops_models import query_digests
    from pelbiot_jobs.db.upsert import upsert
    from pelbiot_jobs.demo.data import DemoPlan, seed
    from pelbiot_jobs.indexes import service
    from pelbiot_jobs.queries.fingerprint import query_id

    url = fresh_mysql_db()
    app = make_engine(url)
    seed(app, DemoPlan(devices=40, days=1, sensor_days=1))
    conn = connect(url.rsplit("/", 1)[1])
    with conn.cursor() as cur:  # 200 days of readings, 240 a day
        cur.execute("INSERT INTO load_profiles (device_id, hour, `load`, peak, average, created_at) "
                    "SELECT 1 + seq % 40, seq % 24, seq % 97, seq % 101, seq % 89, "
                    "'2026-08-01' + INTERVAL seq * 360 SECOND FROM seq_1_to_48000")
        cur.execute("INSERT INTO alerts (device_id, severity, message, status) SELECT 1 + seq % 40, 'warning', "
                    "ELT(1 + seq % 3, 'overload', 'offline', 'voltage'), 'open' FROM seq_1_to_5000")
        cur.execute("UPDATE alerts SET message = ELT(1 + id % 3, 'overload', 'offline', 'voltage')")
        cur.execute("ANALYZE TABLE load_profiles")
    conn.close()
    ops_url = fresh_mysql_db()
    migrate.upgrade(ops_url)
    fp = b"select max(peak) from load_profiles where date(created_at) = ?"
    example = "SELECT MAX(peak) FROM load_profiles WHERE DATE(created_at) = ?"
    now = dt.datetime.utcnow().replace(minute=0, second=0, microsecond=0)
    with make_engine(ops_url).begin() as c:
        upsert(c, query_digests, [{
            "source": "file", "query_id": query_id(fp), "window_start": now, "fingerprint": fp.decode(),
            "example": example, "calls": 500, "query_time_sum": 71.0, "rows_examined_sum": 500 * 48_000,
            "rows_sent_sum": 500, "full_scans": 500, "slow": 0, "hist": "{}",
            "last_seen": dt.datetime(2026, 9, 15, 10, 0),
            "explain": json.dumps([{"id": 1, "table": "load_profiles", "type": "ALL", "rows": 48000}])},
            {"source": "file", "query_id": "FEW0VALUES0000001", "window_start": now, "example":
             "SELECT * FROM alerts WHERE message = ?", "fingerprint": "select * from alerts where message = ?",
             "calls": 50, "query_time_sum": 9.0, "rows_examined_sum": 50 * 5000, "rows_sent_sum": 50 * 1700,
             "full_scans": 50, "slow": 0, "hist": "{}", "last_seen": None, "explain": None}],
            key=("source", "query_id", "window_start"))
    settings = load_settings({"PELBIOT_APP_DB_URL": url, "PELBIOT_APP_DB_ADMIN_URL": url, "PELBIOT_OPS_DB_URL": ops_url,
                              "PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/13"})
    result = service.current_plan(settings)
    [advice] = [s for s in result["suggested"] if s["query_id"] == query_id(fp)]
    assert advice["rewrite"] == ("SELECT MAX(peak) FROM load_profiles WHERE created_at >= ? "
                                 "AND created_at < ? + INTERVAL '1' DAY")
    assert "MariaDB: ALTER TABLE `load_profiles` ADD COLUMN `created_at_date` DATE AS (DATE(`created_at`)) VIRTUAL" \
        in advice["alternative"] and \
        "CREATE INDEX `idx_created_at_date` ON `load_profiles` ((DATE(`created_at`)))" in advice["alternative"]
    assert advice["explain_rows_before"] == 48000
    # Three messages in 5,000 alerts: an index on message would not narrow the scan; it says so.
    [few] = result["not_helpful"]
    assert few["query_id"] == "FEW0VALUES0000001" and "alerts.message has 3 distinct values" in few["reason"]
    assert not [e for e in result["create"] if e["table"] == "alerts" and e["source"] == "advisor"]
    [create] = [e for e in result["create"] if e["source"] == "advisor" and e["table"] == "load_profiles"]
    assert create["columns"] == ["created_at", "peak"] and "'2026-09-15'" in create["target"]
    [done] = service.apply(settings, service.to_create(settings, result, only=create["name"], include_advice=True),
                           "t-sargable")
    assert done["outcome"] == "created"
    assert done["explain_rows_before"] >= 40_000 and done["explain_rows_after"] * 100 <= done["explain_rows_before"]
    with make_engine(ops_url).connect() as c:
        row = c.execute(select(index_changes).where(index_changes.c.run_id == "t-sargable")).mappings().one()
    assert row["target_query"] == create["target"] and row["explain_rows_after"] == done["explain_rows_after"]
    assert f"(query {query_id(fp)[:16]})" in row["reason"] and "sargable rewrite" in row["reason"]
    app.dispose()
