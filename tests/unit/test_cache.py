import datetime as dt
import decimal
import json
import random
import textwrap

import pytest

from pelbiot_jobs.cache.serialize import dumps, response_body
from pelbiot_jobs.cache.spec import check_select, parse_cache_file
from pelbiot_jobs.cache.writer import jittered_ttl
from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES
from pelbiot_jobs.runtime.app import task_names


def problems_of(tmp_path, text):
    path = tmp_path / "cache.yaml"
    path.write_text(textwrap.dedent(text))
    problems = []
    warmers = parse_cache_file(path, problems)
    return warmers, [p.replace(str(path), "cache.yaml") for p in problems]


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE devices SET status = 'offline'", "SQL is not a plain read: must be a SELECT, found UPDATE"),
    ("SELECT 1; DELETE FROM devices", "SQL is not a plain read: must be a single SELECT, found 2 statements"),
    ("SELECT * FROM devices; SELECT 1", "found 2 statements"),
    ("SELECT id INTO @x FROM devices", "SQL is not a plain read: SELECT ... INTO writes"),
    ("SELECT * FROM devices FOR UPDATE", "SQL is not a plain read: locking read"),
    ("DROP TABLE devices", "SQL is not a plain read: must be a SELECT, found DROP"),
    ("SELEC * FROM devices", "SQL does not parse"),
    ("SELECT * FROM devices /*!50000 INTO OUTFILE '/tmp/x' */", "executable comment"),
    ("SELECT SLEEP(1) AS s FROM devices", "function SLEEP is not on the allow-list"),
    ("SELECT GET_LOCK('x', 0) AS l", "function GET_LOCK is not on the allow-list"),
    ("SELECT LOAD_FILE('/etc/passwd') AS f", "function LOAD_FILE is not on the allow-list"),
    ("SELECT user, password FROM mysql.user", "reads the system schema mysql"),
    ("SELECT COUNT(*) FROM devices", "give COUNT(*) an alias"),
])
def test_a_warmer_that_is_not_a_single_select_is_rejected_with_file_and_line(tmp_path, sql, expected):
    warmers, problems = problems_of(tmp_path, f"""
        warmers:
          ok.one:
            key: "route:/api/devices"
            sql: SELECT * FROM devices
          bad.one:
            key: "route:/api/x"
            sql: "{sql}"
    """)
    assert [w.name for w in warmers] == ["ok.one"]  # the bad warmer never runs
    assert any(p.startswith("cache.yaml:8: warmer 'bad.one'") and expected in p for p in problems), problems


@pytest.mark.parametrize("text, expected", [
    ("warmers:\n  a.b:\n    key: k\n    sql: SELECT * FROM t WHERE id = :id\n",
     "cache.yaml:4: warmer 'a.b' uses :id, which neither params_sql nor the built-ins"),
    ("warmers:\n  a.b:\n    key: k\n    sql: SELECT 1 AS one WHERE x > :since\n", "uses :since but sets no 'window'"),
    ("warmers:\n  a.b:\n    key: \"k:{nope}\"\n    params_sql: SELECT id FROM t\n    sql: SELECT 1 AS one\n",
     "cache.yaml:3: key field {nope} is not a column of params_sql"),
    ("warmers:\n  a.b:\n    key: k\n    params_sql: SELECT * FROM t\n    sql: SELECT 1 AS one\n", "must name its columns"),
    ("warmers:\n  a.b:\n    key: k\n    sql: SELECT 1 AS one\n    shape: table\n", "cache.yaml:5: shape must be one of list, first"),
    ("warmers:\n  a.b:\n    key: k\n    sql: SELECT 1 AS one\n    ttl: 10\n    jitter: 20\n", "cache.yaml:6: jitter (20s) must be below ttl"),
    ("warmers:\n  a.b:\n    key: k\n    sql: SELECT 1 AS one\n    tll: 10\n", "cache.yaml:5: unknown key 'tll' in warmer 'a.b' (did you mean 'ttl'?)"),
    ("warmers:\n  a.b:\n    key: has space\n    sql: SELECT 1 AS one\n", "needs a 'key' of printable characters"),
])
def test_other_warmer_problems(tmp_path, text, expected):
    _, problems = problems_of(tmp_path, text)
    assert any(expected in p for p in problems), problems


def test_the_shipped_warmers_are_valid_and_cover_the_hot_endpoints():
    task_names()  # registers the cache.yaml checker
    problems = []
    warmers = parse_cache_file(SHIPPED_SCHEDULES / "cache.yaml", problems)
    assert problems == []
    keys = {w.key for w in warmers}
    for key in ("route:/api/devices", "route:/api/devices/{id}", "route:/api/alerts/active",
                "route:/api/load-profile/history", "route:/api/load-profile/peak",
                "route:/api/load-profile/average", "route:/api/load-profile/factor", "route:/api/system/health"):
        assert key in keys


def test_check_select_reads_placeholders_and_columns():
    problem, placeholders, columns = check_select("SELECT id, name AS n FROM devices WHERE a = :x AND b > :since")
    assert problem is None and placeholders == ["since", "x"] and columns == ["id", "n"]


def test_values_are_serialized_as_the_api_driver_would():
    rows = [{"id": 3, "load": decimal.Decimal("1234.50"), "avg": decimal.Decimal("2089.783000"), "ratio": 0.5,
             "created_at": dt.datetime(2026, 11, 28, 10, 0, 0, 123456), "day": dt.date(2026, 11, 27), "note": None}]
    body = json.loads(dumps(response_body(rows, "list")))
    assert body == {"success": True, "data": [{"id": 3, "load": "1234.50", "avg": "2089.783000", "ratio": 0.5,
                                               "created_at": "2026-11-28T10:00:00.123Z",
                                               "day": "2026-11-27T00:00:00.000Z", "note": None}]}
    assert response_body(rows, "first")["data"]["id"] == 3
    assert response_body([], "first") == {"success": True}  # data: rows[0] is undefined: the key is dropped
    assert dumps({"a": "é"}) == '{"a":"é"}'.encode()


def test_jittered_ttls_stay_in_bounds_and_spread():
    rnd = random.Random(1)
    ttls = [jittered_ttl(300, 30, rnd) for _ in range(2000)]
    assert min(ttls) >= 270 and max(ttls) <= 330 and len(set(ttls)) > 40
    assert jittered_ttl(300, 0, rnd) == 300
