"""queries.analyze on slow logs recorded from the real MariaDB: the file and the mysql.slow_log table."""

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import query_digests
from pelbiot_jobs.queries.analyze import analyze
from pelbiot_jobs.clock import utcnow
from tests.helpers import mysql, pt_query_digest

WORKLOAD = [
    "SELECT * FROM devices",
    "SELECT * FROM devices WHERE id = {i}",
    "SELECT a.*, d.name AS device_name FROM alerts a JOIN devices d ON a.device_id = d.id "
    "WHERE a.status = 'open' ORDER BY a.created_at DESC",
    "SELECT hour, AVG(`load`) AS `load`, MAX(peak) AS peak FROM load_profiles WHERE hour >= {h} GROUP BY hour",
    "SELECT id FROM devices WHERE id IN ({i}, {j}, 3) AND name LIKE 'P%'",
    "UPDATE devices SET updated_at = NOW() WHERE id = {i}",
]


def admin():
    return mysql()


def run_workload(database: str, n: int) -> int:
    conn = mysql(database)
    with conn.cursor() as cur:
        for k in range(n):
            cur.execute(WORKLOAD[k % len(WORKLOAD)].format(i=k % 19 + 1, j=k % 7 + 1, h=k % 24))
            cur.fetchall()
    conn.close()
    return n


@pytest.fixture
def slow_log(demo_app_db, mariadb):
    """The server's slow log switched to a file of this test (long_query_time=0), restored after."""
    folder = Path(f"/tmp/pelbiot-test-slowlog-{uuid.uuid4().hex[:8]}")
    folder.mkdir()
    os.chmod(folder, 0o777)  # mariadbd writes it as its own user
    path = folder / "slow.log"
    conn = admin()
    cur = conn.cursor()
    cur.execute("SELECT @@GLOBAL.slow_query_log, @@GLOBAL.slow_query_log_file, @@GLOBAL.long_query_time, "
                "@@GLOBAL.log_output, @@GLOBAL.log_slow_verbosity")
    saved = cur.fetchone()
    cur.execute(f"SET GLOBAL slow_query_log_file = '{path}'")
    cur.execute("SET GLOBAL log_slow_verbosity = 'query_plan'")
    cur.execute("SET GLOBAL log_output = 'FILE'")
    cur.execute("SET GLOBAL long_query_time = 0")
    cur.execute("SET GLOBAL slow_query_log = ON")
    yield path, cur
    cur.execute("SET GLOBAL slow_query_log = OFF")
    cur.execute(f"SET GLOBAL slow_query_log_file = '{saved[1]}'")
    cur.execute(f"SET GLOBAL long_query_time = {saved[2]}")
    cur.execute(f"SET GLOBAL log_output = '{saved[3]}'")
    cur.execute(f"SET GLOBAL log_slow_verbosity = '{saved[4]}'")
    cur.execute(f"SET GLOBAL slow_query_log = {int(saved[0])}")
    conn.close()
    shutil.rmtree(folder, ignore_errors=True)


def stored_counts(settings, source: str, ids=None) -> dict:
    qd = query_digests.c
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = conn.execute(select(qd.query_id, func.sum(qd.calls)).where(qd.source == source)
                            .group_by(qd.query_id)).all()
    return {k: int(v) for k, v in rows if ids is None or k in ids}


def test_file_source_matches_pt_query_digest_incrementally(settings, slow_log, mariadb):
    path, cur = slow_log
    app_db = mariadb["names"]["app"]
    run_workload(app_db, 300)
    first = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), utcnow(), "file", str(path))
    assert first["events"] >= 300 and first["skipped"] == 0
    run_workload(app_db, 200)  # more events: the next run reads only those
    cur.execute("SET GLOBAL slow_query_log = OFF")  # the job's own queries would follow otherwise
    second = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), utcnow(), "file", str(path))
    assert 200 <= second["events"] < first["events"] + 200
    copy = path.with_name("copy.log")
    shutil.copy(path, copy)
    os.chmod(copy, 0o644)
    expected = pt_query_digest(copy)
    ours = stored_counts(settings, "slowlog_file", set(expected))
    # Every class pt-query-digest finds, with the same count, stored across two runs.
    assert ours == expected
    qd = query_digests.c
    with engine_for(settings.ops_db_url).connect() as conn:
        scan = conn.execute(select(query_digests).where(
            qd.source == "slowlog_file", qd.fingerprint.like("select a.*, d.name as device_name%"))).mappings().first()
    assert scan["full_scans"] >= 1 and "'open'" not in scan["example"] and "?" in scan["example"]
    assert scan["query_time_p95"] >= scan["query_time_median"] > 0
    assert scan["explain"] and "full_scan" in scan["explain_flags"]  # alerts has no usable index for it


def test_slow_log_table_source(settings, slow_log, mariadb):
    path, cur = slow_log
    cur.execute("SET GLOBAL log_output = 'TABLE'")
    app_db = mariadb["names"]["app"]
    engine_app, engine_ops = engine_for(settings.app_db_url), engine_for(settings.ops_db_url)
    analyze(engine_app, engine_ops, utcnow(), "table")  # what the table held already
    from pelbiot_jobs.queries.fingerprint import query_id

    by_id = query_id(b"select * from devices where id = ?")
    before = stored_counts(settings, "slow_log_table").get(by_id, 0)
    run_workload(app_db, 120)
    result = analyze(engine_app, engine_ops, utcnow(), "table")
    assert result["events"] >= 120
    analyze(engine_app, engine_ops, utcnow(), "table")  # incremental: reads only what ran since
    after = stored_counts(settings, "slow_log_table")[by_id]
    assert after - before == 120 // len(WORKLOAD)  # every one counted once, none twice


@pytest.mark.parametrize("recorded, workers", [("mysql8-slow.log", 1), ("mariadb-slow.log", 2)])
def test_the_offline_digest_has_the_same_classes_and_counts_as_pt_query_digest(tmp_path, recorded, workers):
    from pelbiot_jobs.queries.digest import digest_files, summarize

    log = tmp_path / "slow.log"
    shutil.copy(Path(__file__).parents[1] / "data" / recorded, log)
    ours = {c["checksum"]: c["query_count"] for c in summarize(digest_files([log], workers=workers))["classes"]}
    assert ours == pt_query_digest(log)
