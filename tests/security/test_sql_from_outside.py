"""Statements found in slow logs and cache.yaml never run unless proven a plain read (real MariaDB)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid

import pytest
from sqlalchemy import select, text

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import query_digests
from pelbiot_jobs.indexes.apply import measure
from pelbiot_jobs.queries.analyze import analyze, explain
from tests.security.conftest import writing_function

OUTFILE = f"/tmp/pjt-outfile-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def side_effects(demo_app_db, ops_schema):
    """A stored function that writes a row each time it runs; the count of rows it wrote."""
    with writing_function(ops_schema["names"]["app"], "pjt_touch", "", "1") as count:
        yield count


HOSTILE = [
    f"SELECT * FROM devices /*!50000 INTO OUTFILE '{OUTFILE}' */",
    f"SELECT * FROM devices /*M!100000 INTO OUTFILE '{OUTFILE}' */",
    "SELECT * FROM devices WHERE id = pjt_touch()",
    "SELECT * FROM (SELECT pjt_touch() AS t FROM devices) AS d",
    "SELECT SLEEP(3) FROM devices",
    "SELECT GET_LOCK('pjt-held', 0)",
    "SELECT * FROM devices FOR UPDATE",
    "SELECT user, password FROM mysql.user",
]


def test_the_stored_function_really_has_a_side_effect(settings, side_effects):
    # The oracle works: run by hand (as root), the function writes a row. The tests below are meaningful.
    with engine_for(settings.app_db_admin_url).begin() as conn:
        conn.execute(text("SELECT pjt_touch()"))
    assert side_effects() == 1


@pytest.mark.parametrize("sql", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_explain_refuses_and_records_why_and_runs_nothing(settings, side_effects, sql):
    rows, flags = explain(engine_for(settings.app_db_url), sql.encode(), None)
    assert flags == ["refused"] and rows[0]["refused"]
    assert side_effects() == 0
    assert not os.path.exists(OUTFILE)


@pytest.mark.parametrize("sql", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_index_measurement_refuses_a_hostile_target_query(settings, side_effects, sql):
    rows, latency, note = measure(engine_for(settings.app_db_admin_url), sql)
    assert rows is None and latency is None and note.startswith("target query refused, not run")
    assert side_effects() == 0
    assert not os.path.exists(OUTFILE)


def test_queries_analyze_on_a_hostile_slow_log_stores_refusals(settings, side_effects, tmp_path):
    lines = ["# Time: 2026-11-29T10:00:00.000000Z", "# User@Host: api[api] @ localhost []", "# Query_time: 9.5  "
             "Lock_time: 0.0 Rows_sent: 1  Rows_examined: 1"]
    log = tmp_path / "slow.log"
    with log.open("w") as fh:
        fh.write("/usr/sbin/mariadbd, Version: 10.11.6-MariaDB-0+deb12u1-log (Debian 12). started with:\n"
                 "Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock\nTime\t\tId Command\tArgument\n")
        for i, sql in enumerate(HOSTILE):
            fh.write("\n".join(lines) + f"\nSET timestamp={1795428000 + i};\n{sql};\n")
    now = dt.datetime(2026, 11, 29, 11, 0)
    result = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), now, "file", str(log))
    assert result["events"] == len(HOSTILE) and result["refused"] >= 5 and result["explained"] == 0
    with engine_for(settings.ops_db_url).connect() as conn:
        stored = conn.execute(select(query_digests.c.explain, query_digests.c.explain_flags)
                              .where(query_digests.c.explain_flags == "refused")).all()
    reasons = " ".join(json.loads(r.explain)[0]["refused"] for r in stored)
    assert "executable comment" in reasons and "PJT_TOUCH" in reasons
    assert side_effects() == 0
    assert not os.path.exists(OUTFILE)


def test_no_named_lock_is_left_on_a_pooled_connection(settings, demo_app_db):
    explain(engine_for(settings.app_db_url), b"SELECT GET_LOCK('pjt-held', 0)", None)
    with engine_for(settings.app_db_admin_url).connect() as conn:
        assert conn.execute(text("SELECT IS_FREE_LOCK('pjt-held')")).scalar() == 1


def test_a_warmer_that_writes_a_file_is_refused_at_check_time(tmp_path):
    from pelbiot_jobs.cache.spec import parse_cache_file

    path = tmp_path / "cache.yaml"
    path.write_text(f'warmers:\n  evil.one:\n    key: "route:/api/x"\n'
                    f'    sql: "SELECT * FROM devices /*!50000 INTO OUTFILE \'{OUTFILE}\' */"\n'
                    '  evil.two:\n    key: "route:/api/y"\n    sql: SELECT user AS u FROM mysql.user\n'
                    '  evil.three:\n    key: "route:/api/z"\n    sql: SELECT LOAD_FILE(\'/etc/passwd\') AS f\n')
    problems: list[str] = []
    assert parse_cache_file(path, problems) == []
    assert [p.split(":")[1] for p in problems] == ["4", "7", "10"], problems
    assert "executable comment" in problems[0] and "system schema mysql" in problems[1] and "LOAD_FILE" in problems[2]


def test_a_warmer_runs_under_a_statement_time_limit(settings, demo_app_db):
    from pelbiot_jobs.cache.spec import Warmer
    from pelbiot_jobs.cache.warm import compute
    import pelbiot_jobs.cache.warm as warm

    endless = Warmer(name="slow", key="route:/slow", shape="first",
                     sql="SELECT COUNT(*) AS n FROM devices a, devices b, devices c, devices d, load_profiles e")
    old, warm.WARMER_TIME_LIMIT_S = warm.WARMER_TIME_LIMIT_S, 1
    try:
        with pytest.raises(Exception, match="max_statement_time|interrupted"):
            compute(engine_for(settings.app_db_url), endless, dt.datetime(2026, 11, 29))
    finally:
        warm.WARMER_TIME_LIMIT_S = old
