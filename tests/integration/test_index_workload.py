"""The index advisor on a workload the real MariaDB ran and logged: a write-heavy table whose index would
not pay, a read-heavy one where one index serves two classes, an index extended, an index that serves a
rewritten query. The digests come from queries.analyze on the server's own slow log."""

import uuid

import pytest

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.indexes.service import current_plan
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.queries.analyze import analyze
from tests.conftest import clean_environ, service_env
from tests.e2e.conftest import pj
from tests.helpers import mysql
from tests.integration.test_slow_queries import slow_log  # noqa: F401  (the fixture)


@pytest.fixture
def tables(demo_app_db, mariadb):
    tag = uuid.uuid4().hex[:6]
    names = {k: f"pj_{k}_{tag}" for k in ("w", "r", "e", "d")}
    conn = mysql(mariadb["names"]["app"])
    cur = conn.cursor()
    yield names, cur
    for t in names.values():
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    conn.close()


def test_the_advisor_weighs_writes_against_reads(settings, slow_log, tables, mariadb, tmp_path):  # noqa: F811
    path, admin = slow_log
    (names, cur) = tables
    w, r, e, d = names["w"], names["r"], names["e"], names["d"]
    admin.execute("SET GLOBAL slow_query_log = OFF")  # the tables' first load is not the workload weighed
    cur.execute(f"CREATE TABLE {w} (id INT AUTO_INCREMENT PRIMARY KEY, kind INT NOT NULL, payload VARCHAR(50))")
    cur.execute(f"INSERT INTO {w} (kind, payload) SELECT seq % 50, 'x' FROM seq_1_to_3000")
    for t, devices, extra in ((r, 60, ""), (e, 10, ", KEY idx_dev (device)"), (d, 60, ", KEY idx_at (at)")):
        cur.execute(f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, device INT NOT NULL, at DATETIME NOT NULL, "
                    f"value DOUBLE{extra})")
        cur.execute(f"INSERT INTO {t} (device, at, value) SELECT seq % {devices}, "
                    f"'2026-12-01' + INTERVAL seq MINUTE, seq FROM seq_1_to_3000")
    admin.execute("SET GLOBAL slow_query_log = ON")
    # write-heavy: 1,500 inserts and 500 updates of the column an index would hold, 3 reads by it
    for k in range(1500):
        cur.execute(f"INSERT INTO {w} (kind, payload) VALUES ({k % 50}, 'y')")
    for k in range(500):
        cur.execute(f"UPDATE {w} SET kind = {k % 50} WHERE id = {k + 1}")
    for k in range(3):
        cur.execute(f"SELECT * FROM {w} WHERE kind = {k}")
        cur.fetchall()
    # read-heavy: two classes that one index (device, at) serves
    for k in range(200):
        cur.execute(f"SELECT * FROM {r} WHERE device = {k % 60}")
        cur.fetchall()
    for k in range(100):
        cur.execute(f"SELECT * FROM {r} WHERE device = {k % 60} AND at >= '2026-12-03 01:00:00'")
        cur.fetchall()
    # an index on (device) that (device, at) extends; an index on (at) that serves DATE(at) once rewritten
    for k in range(100):
        cur.execute(f"SELECT * FROM {e} WHERE device = {k % 10} AND at >= '2026-12-03 01:40:00'")
        cur.fetchall()
    for k in range(50):
        cur.execute(f"SELECT * FROM {d} WHERE DATE(at) = '2026-12-02'")
        cur.fetchall()
    admin.execute("SET GLOBAL slow_query_log = OFF")
    done = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), utcnow(), "file", str(path))
    assert done["events"] > 2400

    plan = current_plan(settings)
    suggested = {s["table"]: s for s in plan["suggested"] if s["table"] in names.values()}
    refused = {s["table"]: s for s in plan["not_helpful"] if s["table"] in names.values()}
    creates = {c["table"]: c for c in plan["create"] if c["table"] in names.values()}

    heavy = refused[w]
    assert heavy["columns"] == ["kind"] and heavy["verdict"].startswith(f"does not pay: {w} is write-heavy")
    assert heavy["workload"]["write_heavy"] and heavy["workload"]["updates_changing_its_columns_per_hour"] > 0
    assert w not in creates and w not in suggested

    light = suggested[r]
    assert light["columns"] == ["device", "at"] and len(light["query_ids"]) == 2
    assert light["verdict"].startswith(f"pays: {r} is read-heavy") and not light["workload"]["write_heavy"]
    assert light["workload"]["rows_saved_per_hour"] > 10 * light["workload"]["index_entries_written_per_hour"]
    assert all(f"(query {q[:16]})" in creates[r]["reason"] for q in light["query_ids"])  # named once, for both

    assert suggested[e]["columns"] == ["device", "at"] and suggested[e]["extends"] == "idx_dev"
    assert "extends idx_dev (device)" in creates[e]["reason"]
    assert suggested[d]["served_by"] == "idx_at" and suggested[d]["rewrite"] and d not in creates

    env = clean_environ() | service_env(mariadb, settings.broker_url, tmp_path) | {"COLUMNS": "400"}
    shown = pj("indexes", "plan", env=env, cwd=tmp_path, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert f"does not pay: {w} is write-heavy" in shown.stdout and "weighed" in shown.stdout
    assert "already served by idx_at" in shown.stdout
    query = pj("queries", "show", light["query_ids"][0], env=env, cwd=tmp_path, timeout=120)
    assert query.returncode == 0 and "weighed: pays" in query.stdout and "one index for 2 query classes" in query.stdout
