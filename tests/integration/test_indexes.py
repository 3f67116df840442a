"""Index plan on MariaDB with the PELBIOT schema: duplicates as pt-duplicate-key-checker finds them,
invalid entries with their reasons, hostile identifiers refused."""

import re
import shutil
import subprocess
import textwrap

import pytest

from pelbiot_jobs.db.engine import make_engine
from pelbiot_jobs.demo.data import create_schema
from pelbiot_jobs.indexes.live import read_schema
from pelbiot_jobs.indexes.plan import plan
from pelbiot_jobs.indexes.spec import parse_spec
from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES
from tests.conftest import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER
from tests.helpers import mysql


@pytest.fixture(scope="module")
def pelbiot_db(fresh_mysql_db):
    url = fresh_mysql_db()
    engine = make_engine(url)
    create_schema(engine)
    yield url, engine
    engine.dispose()


def pt_duplicates(database: str) -> set[tuple[str, str]]:
    tool = shutil.which("pt-duplicate-key-checker")
    if tool is None:
        pytest.fail("pt-duplicate-key-checker is not installed: `make test` installs percona-toolkit", pytrace=False)
    args = [tool, "--host", MYSQL_HOST, "--port", str(MYSQL_PORT), "--user", MYSQL_USER, "--databases", database]
    if MYSQL_PASSWORD:
        args += ["--password", MYSQL_PASSWORD]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"ALTER TABLE `[^`]+`\.`([^`]+)` DROP INDEX `([^`]+)`", out))


def test_duplicates_are_exactly_pt_duplicate_key_checkers(pelbiot_db):
    url, engine = pelbiot_db
    result = plan([], read_schema(engine))
    ours = {(d["table"], d["index"]) for d in result["duplicates"]}
    assert ours == pt_duplicates(url.rsplit("/", 1)[1])
    assert len(ours) == 6  # the real schema's own duplicates: users x2, system_settings, ...
    users = {d["index"]: d for d in result["duplicates"] if d["table"] == "users"}
    assert users["idx_email"]["duplicate_of"] == "email" and users["idx_email"]["kind"] == "duplicate"
    assert users["idx_email"]["drop_sql"].endswith("`users` DROP INDEX `idx_email`;")


def test_the_shipped_spec_plans_the_per_device_history_index(pelbiot_db):
    _, engine = pelbiot_db
    problems = []
    wanted = parse_spec(SHIPPED_SCHEDULES / "indexes.yaml", problems)
    assert problems == []
    result = plan(wanted, read_schema(engine))
    create = {e["name"]: e for e in result["create"]}
    assert create["idx_load_profiles_device_created"]["sql"] == (
        "ALTER TABLE `load_profiles` ADD INDEX `idx_load_profiles_device_created` (`device_id`, `created_at`), "
        "ALGORITHM=INPLACE, LOCK=NONE")
    assert {e["index"] for e in result["exists"]} >= {"idx_sensor_timestamp", "idx_status"}
    assert result["invalid"] == []


def test_missing_tables_columns_and_hostile_identifiers_are_invalid_and_never_sent(pelbiot_db, tmp_path):
    _, engine = pelbiot_db
    spec = tmp_path / "indexes.yaml"
    spec.write_text(textwrap.dedent("""\
        indexes:
          - {table: load_profiles, columns: [device_id, created_at]}
          - {table: device_metrics, columns: [device_id]}
          - {table: load_profiles, columns: [device_id, timestamp]}
          - {table: "x; DROP TABLE users", columns: [id]}
          - {table: users, columns: ["id`) ; DROP TABLE users; --"]}
          - {table: users, columns: [username], name: idx_username}
          - {table: alerts, columns: [device_id]}
    """))
    problems = []
    result = plan(parse_spec(spec, problems), read_schema(engine))
    assert problems == []
    reasons = [e["reason"] for e in result["invalid"]]
    assert "table 'device_metrics' does not exist" in reasons
    assert "column load_profiles.timestamp does not exist" in reasons
    assert sum("invalid identifier" in r and "nothing was sent" in r for r in reasons) == 2
    assert [e["columns"] for e in result["create"]] == [["device_id", "created_at"]]
    assert [e["index"] for e in result["exists"]] == ["idx_username", "idx_device_id"]
    assert "DROP TABLE" not in str(result["create"])


def test_a_malformed_spec_gives_file_and_line(tmp_path):
    spec = tmp_path / "indexes.yaml"
    spec.write_text("indexes:\n  - table: users\n    colums: [id]\n  - table: users\n    columns: []\n")
    problems = []
    parse_spec(spec, problems)
    text = "\n".join(p.replace(str(spec), "indexes.yaml") for p in problems)
    assert "indexes.yaml:3: unknown key 'colums'" in text
    assert "indexes.yaml:5: columns must be a non-empty list" in text


def test_the_advisor_proposes_the_per_device_history_index(pelbiot_db):
    from pelbiot_jobs.indexes.advisor import proposals_from_digests, propose_for

    _, engine = pelbiot_db
    schema = read_schema(engine)
    history = "SELECT * FROM load_profiles WHERE device_id = ? ORDER BY created_at DESC LIMIT ?"
    [p] = propose_for(history, schema, "Q1")
    assert (p.table, p.columns) == ("load_profiles", ("device_id", "created_at"))
    assert p.reason == "equality on device_id; order by created_at"
    # Equality first, one range, and an index that already leads with the columns means no proposal.
    [r] = propose_for("SELECT * FROM alerts a WHERE a.severity IN (?, ?) AND a.device_id = ? "
                      "AND a.created_at > ? ORDER BY a.created_at", schema)
    assert r.columns == ("severity", "device_id", "created_at")
    assert propose_for("SELECT * FROM sensor_data WHERE sensor_id = ? ORDER BY timestamp", schema) == []
    digests = [{"query_id": "Q1", "example": history, "full_scans": 5, "rows_sent_sum": 24, "rows_examined_sum": 144000},
               {"query_id": "Q2", "example": "SELECT * FROM devices WHERE id = ?", "full_scans": 0,
                "rows_sent_sum": 100, "rows_examined_sum": 100}]
    suggestions = proposals_from_digests(digests, schema)
    assert [(s.table, s.columns) for s in suggestions] == [("load_profiles", ("device_id", "created_at"))]
    result = plan([], schema, suggestions)  # no declared spec: the advice alone
    [create] = result["create"]
    assert create["source"] == "advisor" and create["columns"] == ["device_id", "created_at"]
    assert "ADD INDEX `idx_load_profiles_device_id_created_at`" in create["sql"]
    assert result["suggested"][0]["query_id"] == "Q1"


def test_db_optimize_analyzes_stale_tables_and_stores_advice(pelbiot_db, fresh_mysql_db):
    import datetime as dt

    from sqlalchemy import select

    from pelbiot_jobs.config import load_settings
    from pelbiot_jobs.db import migrate
    from pelbiot_jobs.db.ops_models import recommendations
    from pelbiot_jobs.runtime.app import configure
    from pelbiot_jobs.tuning.advice import analyze_stale

    url, engine = pelbiot_db
    db = url.rsplit("/", 1)[1]
    conn = mysql()
    conn.cursor().execute("UPDATE mysql.innodb_table_stats SET last_update = '2020-01-01 00:00:00' "
                          "WHERE database_name = %s AND table_name = 'devices'", (db,))
    conn.close()
    assert "devices" in analyze_stale(engine, dt.datetime.utcnow())
    assert "devices" not in analyze_stale(engine, dt.datetime.utcnow())  # fresh now
    ops_url = fresh_mysql_db()
    migrate.upgrade(ops_url)
    env = {"PELBIOT_APP_DB_URL": url, "PELBIOT_OPS_DB_URL": ops_url, "PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/13"}
    app = configure(load_settings(env))
    # Without the account that may change the schema, it says what is missing and does nothing.
    refused = app.tasks["db.optimize"].apply().result
    assert refused["skipped"] and "PELBIOT_APP_DB_ADMIN_URL is not set" in refused["reason"]
    settings = load_settings(env | {"PELBIOT_APP_DB_ADMIN_URL": url})
    app = configure(settings)
    result = app.tasks["db.optimize"].apply().result
    assert result["tables"] == 25 and result["new"] == result["open"] and result["resolved"] == 0

    def duplicates():
        with make_engine(ops_url).connect() as c:
            return {r.subject: r for r in c.execute(select(recommendations).where(
                recommendations.c.code == "duplicate_indexes"))}
    found = duplicates()
    assert len(found) == 6 and all(r.resolved_at is None and r.first_seen and r.fix for r in found.values())
    # The DBA runs one finding's fix: the next run marks that finding resolved, with its date, and keeps the rest.
    fixed = sorted(found)[0]
    conn = mysql(db)
    conn.cursor().execute(found[fixed].fix)
    conn.close()
    again = app.tasks["db.optimize"].apply().result
    assert again["resolved"] == 1 and again["new"] == 0
    after = duplicates()
    assert after[fixed].resolved_at is not None and sum(r.resolved_at is None for r in after.values()) == 5
