"""The performance_schema source, on a second MariaDB instance started with performance_schema=ON."""

import pymysql
import pytest
from sqlalchemy import func, select

from pelbiot_jobs.db.engine import engine_for, make_engine
from pelbiot_jobs.db.ops_models import query_digests
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.queries.analyze import analyze
from pelbiot_jobs.queries.fingerprint import fingerprint, query_id
from tests.conftest import PrivateMariaDB


@pytest.fixture(scope="module")
def pfs_server():
    server = PrivateMariaDB("--performance-schema=ON")
    server.start()
    server.execute("CREATE DATABASE pelbiot", "CREATE TABLE pelbiot.devices (id INT PRIMARY KEY, name VARCHAR(50))",
                   "INSERT INTO pelbiot.devices VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    yield server.port
    server.remove()


def test_performance_schema_digests_are_stored_as_deltas(pfs_server, settings):
    app = make_engine(f"mysql+pymysql://root@127.0.0.1:{pfs_server}/pelbiot")
    ops = engine_for(settings.ops_db_url)
    first = analyze(app, ops, utcnow(), "auto")  # auto-detected: no slow log, performance_schema on
    assert first["source"] == "performance_schema" and first["baseline_only"] and first["classes"] == 0
    conn = pymysql.connect(host="127.0.0.1", port=pfs_server, user="root", database="pelbiot", autocommit=True)
    with conn.cursor() as cur:
        for i in range(50):
            cur.execute(f"SELECT * FROM devices WHERE id = {i % 3 + 1}")
            cur.fetchall()
    second = analyze(app, ops, utcnow(), "performance_schema")
    assert second["classes"] >= 1
    with ops.connect() as c:
        rows = c.execute(select(query_digests).where(query_digests.c.source == "performance_schema",
                                                     query_digests.c.fingerprint.like("select * from `devices`%"))
                         ).mappings().all()
    assert len(rows) == 1 and rows[0]["calls"] == 50  # the delta, not the total since start
    assert rows[0]["query_time_sum"] > 0 and rows[0]["query_id"] == query_id(fingerprint(rows[0]["example"].encode()))
    third = analyze(app, ops, utcnow(), "performance_schema")  # nothing new from the workload
    with ops.connect() as c:
        calls = c.execute(select(func.sum(query_digests.c.calls)).where(
            query_digests.c.source == "performance_schema",
            query_digests.c.fingerprint.like("select * from `devices`%"))).scalar()
    assert calls == 50 and third["digests"] >= 1
    conn.close()
    app.dispose()


def test_unused_indexes_come_with_the_server_uptime(pfs_server):
    from pelbiot_jobs.indexes.live import unused_indexes

    conn = pymysql.connect(host="127.0.0.1", port=pfs_server, user="root", database="pelbiot", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS readings (id INT PRIMARY KEY, a INT, b INT, KEY idx_a (a), KEY idx_b (b))")
        cur.execute("INSERT IGNORE INTO readings VALUES (1, 1, 1), (2, 2, 2)")
        cur.execute("SELECT id FROM readings FORCE INDEX (idx_a) WHERE a = 1")  # idx_a is used, idx_b never
        cur.fetchall()
    conn.close()
    app = make_engine(f"mysql+pymysql://root@127.0.0.1:{pfs_server}/pelbiot")
    rows, note = unused_indexes(app)
    app.dispose()
    unused = {(r["table"], r["index"]) for r in rows}
    assert note is None and ("readings", "idx_b") in unused and ("readings", "idx_a") not in unused
    assert all(r["server_uptime_s"] >= 0 for r in rows)


def test_the_slow_flag_follows_the_configured_threshold(pfs_server, settings):
    """performance_schema has no per-event times: a class is slow when its average is over
    PELBIOT_SLOW_THRESHOLD_MS, the same setting as the other sources (not a fixed 1 s)."""
    app = make_engine(f"mysql+pymysql://root@127.0.0.1:{pfs_server}/pelbiot")
    ops = engine_for(settings.ops_db_url)
    analyze(app, ops, utcnow(), "performance_schema")  # a baseline
    conn = pymysql.connect(host="127.0.0.1", port=pfs_server, user="root", database="pelbiot", autocommit=True)

    def run_and_flag(slow_s: float) -> int:
        with conn.cursor() as cur:
            for i in range(5):
                cur.execute(f"SELECT name FROM devices WHERE id > {i} ORDER BY name")
                cur.fetchall()
        analyze(app, ops, utcnow(), "performance_schema", slow_s=slow_s)
        with ops.connect() as c:
            return c.execute(select(query_digests.c.slow).where(
                query_digests.c.source == "performance_schema",
                query_digests.c.fingerprint.like("select name from `devices` where id > ? order by name%"))
                .order_by(query_digests.c.window_start.desc())).scalars().first()

    assert run_and_flag(1e-9) == 1
    assert run_and_flag(1000.0) == 0  # the hour's row, merged, judged again with the threshold of this run
    conn.close()
    app.dispose()
