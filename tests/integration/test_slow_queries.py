"""queries.analyze on slow logs recorded from the real MariaDB: the file and the mysql.slow_log table."""

import os
import random
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import query_digests
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.queries.analyze import analyze
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
    before = stored_counts(settings, "file")  # what other tests of the session stored (their classes may be ours)
    run_workload(app_db, 300)
    first = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), utcnow(), "file", str(path))
    assert first["events"] >= 300 and first["skipped_records"] == 0
    run_workload(app_db, 200)  # more events: the next run reads only those
    cur.execute("SET GLOBAL slow_query_log = OFF")  # the job's own queries would follow otherwise
    second = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), utcnow(), "file", str(path))
    assert 200 <= second["events"] < first["events"] + 200
    copy = path.with_name("copy.log")
    shutil.copy(path, copy)
    os.chmod(copy, 0o644)
    expected = pt_query_digest(copy)
    ours = {k: v - before.get(k, 0) for k, v in stored_counts(settings, "file", set(expected)).items()}
    # Every class pt-query-digest finds, with the same count, stored across two runs.
    assert ours == expected
    qd = query_digests.c
    with engine_for(settings.ops_db_url).connect() as conn:
        scan = conn.execute(select(query_digests).where(
            qd.source == "file", qd.fingerprint.like("select a.*, d.name as device_name%"))).mappings().first()
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
    before = stored_counts(settings, "table").get(by_id, 0)
    run_workload(app_db, 120)
    result = analyze(engine_app, engine_ops, utcnow(), "table")
    assert result["events"] >= 120
    analyze(engine_app, engine_ops, utcnow(), "table")  # incremental: reads only what ran since
    after = stored_counts(settings, "table")[by_id]
    assert after - before == 120 // len(WORKLOAD)  # every one counted once, none twice


@pytest.mark.parametrize("source", ["file", "table"])
def test_the_slow_flag_follows_the_configured_threshold(settings, slow_log, mariadb, source):
    """A class is slow when its p95 is over PELBIOT_SLOW_THRESHOLD_MS, whatever the source; the
    hour's row is judged again, merged, by the threshold of the run that stores it."""
    path, cur = slow_log
    if source == "table":
        cur.execute("SET GLOBAL log_output = 'TABLE'")
    app_db = mariadb["names"]["app"]
    engine_app, engine_ops = engine_for(settings.app_db_url), engine_for(settings.ops_db_url)
    analyze(engine_app, engine_ops, utcnow(), source, str(path) if source == "file" else None)  # what was there
    from pelbiot_jobs.queries.fingerprint import query_id

    wanted = query_id(b"select * from devices where id = ?")

    def run_and_flag(slow_s: float) -> int:
        run_workload(app_db, 60)
        analyze(engine_app, engine_ops, utcnow(), source, str(path) if source == "file" else None, slow_s=slow_s)
        qd = query_digests.c
        with engine_ops.connect() as conn:
            return conn.execute(select(qd.slow).where(qd.source == source, qd.query_id == wanted)
                                .order_by(qd.window_start.desc())).scalars().first()

    assert run_and_flag(1e-9) == 1
    assert run_and_flag(1000.0) == 0


@pytest.mark.parametrize("recorded, workers", [("mysql8-slow.log", 1), ("mariadb-slow.log", 2)])
def test_the_offline_digest_has_the_same_classes_and_counts_as_pt_query_digest(tmp_path, recorded, workers):
    from pelbiot_jobs.queries.digest import digest_files, summarize

    log = tmp_path / "slow.log"
    shutil.copy(Path(__file__).parents[1] / "data" / recorded, log)
    ours = {c["checksum"]: c["query_count"] for c in summarize(digest_files([log], workers=workers))["classes"]}
    assert ours == pt_query_digest(log)


# --- parity with pt-query-digest on every shape of log --------------------------------------

from tests.slowlog_shapes import shapes, with_time_lines  # noqa: E402

SHAPES = shapes()


def oracle(log: Path, whole: bool = False) -> dict:
    """pt-query-digest on the log with a ``# Time:`` line starting every event (see
    with_time_lines: the one place where we read a log differently from pt's own reading)."""
    timed = log.with_name(log.name + ".timed")
    timed.write_bytes(with_time_lines(log.read_bytes()))
    return pt_query_digest(timed, whole)


def digest_counts(log: Path, workers: int) -> tuple[dict, dict]:
    from pelbiot_jobs.queries.digest import digest_files, summarize

    summary = summarize(digest_files([log], workers=workers))
    return {c["checksum"]: c["query_count"] for c in summary["classes"]}, summary["global"]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_of_log_gives_pt_query_digests_classes_and_counts(tmp_path, monkeypatch, name):
    """Whole, cut into parts for three processes at any size, and read in blocks of 4 KB: the same
    query IDs with the same counts as pt-query-digest; where it finds none, none."""
    from pelbiot_jobs.queries import digest, slowlog

    log = tmp_path / f"{name}.log"
    log.write_bytes(SHAPES[name])
    theirs = oracle(log)
    ours, overall = digest_counts(log, 1)
    assert ours == theirs
    if theirs:  # the events with a Query_time, as pt counts them
        assert overall["query_count"] == int(oracle(log, whole=True)["global"]["query_count"])
    monkeypatch.setattr(slowlog, "MIN_SPLIT", 1000)  # parts and blocks whatever the size
    monkeypatch.setattr(digest, "BLOCK", 4096)
    assert digest_counts(log, 3)[0] == theirs


def test_text_that_is_not_a_slow_log_has_no_classes(tmp_path):
    for name in ("general-log", "session-dump", "only-a-banner", "empty"):
        log = tmp_path / f"{name}.log"
        log.write_bytes(SHAPES[name])
        assert digest_counts(log, 2)[0] == {} == pt_query_digest(log), name


def test_events_with_no_query_are_their_own_class_as_in_pt_query_digest(tmp_path):
    from pelbiot_jobs.queries.fingerprint import query_id
    from tests.slowlog_shapes import mariadb_event, no_query

    r = random.Random(5)
    log = tmp_path / "holes.log"  # a header with no statement, then an event that starts with "# Time:"
    log.write_bytes(mariadb_event(r, 1) + no_query(r, 2) + b"# Time: 261128 10:00:03\n" + mariadb_event(r, 3))
    ours, overall = digest_counts(log, 1)
    assert ours[query_id(b"")] == 1 == pt_query_digest(log)[query_id(b"")]  # "/* No query */"
    assert overall["skipped_events"] == 0


def test_a_wrapped_query_time_counts_the_event_by_its_leading_number(tmp_path):
    from pelbiot_jobs.queries.digest import digest_files, summarize
    from pelbiot_jobs.queries.fingerprint import query_id

    log = tmp_path / "wrapped.log"
    log.write_bytes(SHAPES["wrapped-query-time"])
    by_id = {c["checksum"]: c for c in summarize(digest_files([log], workers=1))["classes"]}
    scan = by_id[query_id(b"select * from devices where id = ?")]
    assert scan["metrics"]["Query_time"]["max"] == pytest.approx(18446744073708.796870)
    assert {k: v["query_count"] for k, v in by_id.items()} == pt_query_digest(log)


def test_an_empty_file_among_others_on_several_processes(tmp_path):
    (tmp_path / "empty.log").write_bytes(b"")
    (tmp_path / "one.log").write_bytes(SHAPES["mariadb"])
    from pelbiot_jobs.queries.digest import digest_files, summarize

    for paths in ([tmp_path / "empty.log"], [tmp_path / "empty.log", tmp_path / "empty.log"],
                  [tmp_path / "empty.log", tmp_path / "one.log"]):
        got = summarize(digest_files(paths, workers=4))["global"]["query_count"]
        assert got == (400 if len(paths) == 2 and paths[1].name == "one.log" else 0)


@pytest.fixture
def recorded_shapes(slow_log, demo_app_db, mariadb):
    """A slow log the real MariaDB writes for what PELBIOT and its operators send: multi-statement
    packets (logged statement by statement), stored-procedure calls, administrative statements,
    ``use db``, binary literals, a 1 MB query, EXPLAIN in the log (log_slow_verbosity=query_plan,
    explain). MySQL's ``# administrator command:`` lines are in the made-up shapes: MariaDB does
    not write them."""
    import pymysql
    from pymysql.constants import CLIENT

    from tests.conftest import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER

    path, cur = slow_log
    app_db = mariadb["names"]["app"]
    cur.execute("SELECT @@GLOBAL.log_slow_admin_statements, @@GLOBAL.log_slow_verbosity")
    saved_admin, saved_verbosity = cur.fetchone()
    cur.execute("SET GLOBAL log_slow_admin_statements = ON")
    cur.execute("SET GLOBAL log_slow_verbosity = 'query_plan,explain'")
    try:
        conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD,
                               database=app_db, autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS)
        c = conn.cursor()
        c.execute("DROP PROCEDURE IF EXISTS pj_peak")
        c.execute("CREATE PROCEDURE pj_peak(IN d INT) BEGIN SELECT MAX(peak) FROM load_profiles WHERE device_id = d; END")
        for i in range(30):
            c.execute(f"SELECT {i}; SELECT * FROM devices WHERE id = {i % 5 + 1}")
            while c.nextset():
                pass
            c.execute(f"CALL pj_peak({i % 7 + 1})")
            while c.nextset():
                pass
            c.execute("SELECT id FROM devices WHERE id = 1 AND LENGTH(%s) > 0", (bytes([i, 0, 255, 39, 92, 10, 59]),))
            c.execute(f"use `{app_db}`")
            c.execute(f"SELECT max(peak) FROM load_profiles WHERE date(created_at) = '2026-11-{i % 28 + 1:02d}'")
        c.execute("SELECT id FROM devices WHERE id IN (" + ",".join(str(k) for k in range(150000)) + ")")
        c.execute("ANALYZE TABLE devices")  # an administrative statement
        conn.close()  # Quit
        mysql(app_db).cursor().execute("DROP PROCEDURE pj_peak")
    finally:
        cur.execute("SET GLOBAL log_slow_admin_statements = %s", (saved_admin,))
        cur.execute("SET GLOBAL log_slow_verbosity = %s", (saved_verbosity,))
    cur.execute("FLUSH SLOW LOGS")
    return path


def test_a_log_the_real_mariadb_writes_for_every_kind_of_statement(recorded_shapes, tmp_path, monkeypatch):
    from pelbiot_jobs.queries import digest, slowlog
    from pelbiot_jobs.queries.fingerprint import query_id

    log = tmp_path / "recorded.log"
    shutil.copy(recorded_shapes, log)
    data = log.read_bytes()
    for shape in (b"# explain:", b"CALL pj_peak", b"SELECT 0;", b"use `", b"LENGTH(",
                  b"ANALYZE TABLE", b"IN (0,1,2"):
        assert shape in data, shape
    theirs = oracle(log)
    assert sum(theirs.values()) >= 150
    ours = digest_counts(log, 1)[0]
    assert ours == theirs
    # Every statement counted as often as it ran.
    assert ours[query_id(b"select max(peak) from load_profiles where date(created_at) = ?")] == 30
    assert ours[query_id(b"call pj_peak")] == 30
    # pt-query-digest's own reading of the same file: after the first `use db` event, the next
    # event's header is taken for a query, and the events after it with it.
    as_pt_reads_it = pt_query_digest(log)
    bogus = sum(n for i, n in as_pt_reads_it.items() if i not in ours)
    assert bogus > 100 and as_pt_reads_it.get(query_id(b"call pj_peak"), 0) < 30
    monkeypatch.setattr(slowlog, "MIN_SPLIT", 1000)
    monkeypatch.setattr(digest, "BLOCK", 8192)
    assert digest_counts(log, 3)[0] == theirs


def test_the_html_report_is_what_a_dba_reads_in_a_browser(settings, demo_app_db, mariadb, tmp_path):
    """`slowlog --format html --explain`: rendered by headless Chromium, checked element by element
    (overview, a bar per hour in both charts, the profile, examples without literals, EXPLAIN
    of the worst SELECTs), and a screenshot kept."""
    import json
    import re
    import subprocess
    import sys

    from tests.helpers import render_in_chromium
    from tests.slowlog_shapes import mariadb_event

    r = random.Random(8)
    log = tmp_path / "slow.log"  # three hours of events from 2026-11-18 12:00 UTC (1795003200 s)
    log.write_bytes(b"".join(re.sub(rb"SET timestamp=\d+", b"SET timestamp=%d" % (1795003200 + h * 3600 + i * 50),
                                    mariadb_event(r, i)) for h in range(3) for i in range(60))
                    .replace(b"Schema: pelbiot", b"Schema: " + mariadb["names"]["app"].encode()))
    out = tmp_path / "digest.html"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "slowlog", str(log), "--format", "html",
                           "--output", str(out), "--explain", settings.app_db_url], capture_output=True, text=True,
                          cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr
    as_json = json.loads(subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "slowlog", str(log), "--format",
                                         "json"], capture_output=True, check=True, cwd=root).stdout)
    shot = tmp_path / "digest.png"
    dom = render_in_chromium(out.as_uri(), tmp_path / "profile", screenshot=shot)
    g = as_json["global"]
    assert f'<div class="v">{g["query_count"]:,}</div><div class="k">events</div>' in dom
    assert f'<div class="v">{g["unique_query_count"]}</div><div class="k">query classes</div>' in dom
    charts = re.findall(r'<svg[^>]*aria-label="([^"]+)"[^>]*>(.*?)</svg>', dom, re.S)
    assert [title for title, _ in charts] == ["Queries per hour", "Query time per hour"]
    assert all(body.count('class="bar"') == 3 for _, body in charts)  # one bar per hour of the log
    assert "2026-11-18 12:00" in charts[0][1] and "2026-11-18 15:00" in charts[0][1]  # the axis: the log's hours
    profile = re.search(r'<table class="profile">(.*?)</table>', dom, re.S).group(1)
    assert profile.count("<tr>") == 1 + len(as_json["classes"])
    assert "max(peak)" in profile and "ms" in profile  # fingerprints, human units
    assert "2026-11-" not in re.sub(r"(first|last) 2026-11-\S+", "", "".join(
        re.findall(r'<pre class="example">(.*?)</pre>', dom, re.S)))  # examples without their literals
    assert '<table class="explain">' in dom and "load_profiles" in dom


def test_an_operator_browses_the_stored_digests_from_the_command_line(settings, ops_schema, redis_url, tmp_path):
    """`pelbiot-jobs queries` (every source, sorted, filtered by host, with the trend against the
    window before) and `queries show ID` (hours, example, EXPLAIN, index advice), from the ops DB."""
    import datetime as dt
    import json

    from pelbiot_jobs.db.upsert import upsert
    from tests.conftest import clean_environ, service_env
    from tests.e2e.conftest import pj

    now = utcnow().replace(minute=0, second=0, microsecond=0)
    tag = uuid.uuid4().hex[:12].upper()

    def digest(source, qid, hours_ago, calls, total, p95, host, explain=None):
        return {"source": source, "query_id": qid, "window_start": now - dt.timedelta(hours=hours_ago),
                "fingerprint": f"select * from t_{qid.lower()} where a = ?", "example": "SELECT * FROM t WHERE a = ?",
                "calls": calls, "query_time_sum": total, "query_time_p95": p95, "rows_examined_sum": calls * 500,
                "rows_sent_sum": calls, "slow": 0, "hist": "{}", "hosts": json.dumps({host: calls}),
                "explain": json.dumps(explain) if explain else None, "explain_flags": "full_scan" if explain else None}

    grew, steady, other = f"AA{tag}0001", f"BB{tag}0002", f"CC{tag}0003"
    rows = [digest("file", grew, 1, 100, 900.0, 2.0, "10.9.8.7", [{"id": 1, "table": "t", "type": "ALL", "rows": 5000}]),
            digest("file", grew, 30, 50, 300.0, 1.0, "10.9.8.7"),  # the day before: 300 s -> 900 s, +200 %
            digest("table", steady, 2, 7000, 500.0, 0.2, "10.9.8.6"),
            digest("performance_schema", other, 3, 3, 800.0, None, "10.9.8.7")]
    from pelbiot_jobs.db.ops_models import query_slices
    from pelbiot_jobs.queries.analyze import slice_row

    # who sent each, as queries.analyze stores it beside the digest (the host filter reads these)
    slices = [slice_row(r["source"], r["query_id"], r["window_start"], "app", next(iter(json.loads(r["hosts"]))),
                        "pelbiot", "", [r["calls"], r["query_time_sum"], 0.0, r["rows_examined_sum"],
                                        r["rows_sent_sum"], 0]) for r in rows]
    with engine_for(settings.ops_db_url).begin() as conn:
        upsert(conn, query_digests, rows, key=("source", "query_id", "window_start"))
        upsert(conn, query_slices, slices, key=("source", "query_id", "window_start", "slice_key"))
    env = clean_environ() | service_env(ops_schema, redis_url, tmp_path) | {"COLUMNS": "220"}

    def run(*args):
        done = pj(*args, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    listed = [r for r in json.loads(run("queries", "--json", "--limit", "500")) if tag in r["query_id"]]
    assert [r["query_id"] for r in listed] == [grew, other, steady]  # by total time, all three sources
    first = listed[0]
    assert first["previous_time_s"] == 300.0 and first["trend_percent"] == 200.0 and listed[2]["previous_time_s"] is None
    by_calls = [r["query_id"] for r in json.loads(run("queries", "--json", "--sort", "calls", "--limit", "500"))
                if tag in r["query_id"]]
    assert by_calls == [steady, grew, other]
    on_host = [r["query_id"] for r in json.loads(run("queries", "--json", "--host", "10.9.8.6", "--limit", "500"))
               if tag in r["query_id"]]
    assert on_host == [steady]
    text_ = run("queries", "--limit", "500")
    assert grew[:16] in text_ and "↑ +200 %" in text_ and "15 min 00 s" in text_ and "new" in text_
    shown = run("queries", "show", grew[:10])  # a prefix is enough
    assert f"query {grew}" in shown and "EXPLAIN (flags: full_scan)" in shown and "5000" in shown
    assert json.loads(run("queries", "show", grew, "--json"))["windows"][0]["calls"] == 100
    done = pj("queries", "show", "ZZZZ", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "hexadecimal" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = pj("queries", "show", "FFFFFFF0", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "no stored digest" in done.stderr


def test_explain_covers_the_slow_classes_beyond_the_top_five_up_to_ten(settings, slow_log, mariadb):
    """EXPLAIN goes to the classes with the most time and then to the slow ones, at most ten a run."""
    from pelbiot_jobs.queries.analyze import EXPLAIN_MAX

    path, _ = slow_log
    app_db = mariadb["names"]["app"]
    engine_app, engine_ops = engine_for(settings.app_db_url), engine_for(settings.ops_db_url)
    analyze(engine_app, engine_ops, utcnow(), "file", str(path))  # what the log held already
    shapes = [f"SELECT {cols} FROM {table} WHERE id = 1" for table in ("devices", "alerts", "load_profiles")
              for cols in ("id", "created_at", "id, created_at", "created_at, id")]
    conn = mysql(app_db)
    with conn.cursor() as cur:
        for sql in shapes:
            cur.execute(sql)
            cur.fetchall()
    conn.close()
    result = analyze(engine_app, engine_ops, utcnow(), "file", str(path), slow_s=1e-9)  # every class is slow
    assert len(shapes) > EXPLAIN_MAX and result["explained"] + result["refused"] == EXPLAIN_MAX, result
