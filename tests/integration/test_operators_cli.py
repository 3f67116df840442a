"""What an operator does from the command line, end to end through the real command on the
MariaDB ops database: incidents list|show|ack|resolve and silence add|list|expire, checked in the
database; and read commands that never change the ops schema."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import select

from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import engine_for, make_engine
from pelbiot_jobs.db.ops_models import incident_events, incidents, silences
from pelbiot_jobs.lib.clock import utcnow
from tests.conftest import clean_environ, service_env
from tests.e2e.conftest import pj
from tests.helpers import open_incident


@pytest.fixture
def cli(ops_schema, redis_url, tmp_path):
    env = clean_environ() | service_env(ops_schema, redis_url, tmp_path)

    def run(*args, expect=0):
        done = pj(*args, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == expect, (args, done.stdout, done.stderr)
        return done
    return run


def row(ops_url: str, table, key: int) -> dict:
    with engine_for(ops_url).connect() as conn:
        return dict(conn.execute(select(table).where(table.c.id == key)).mappings().one())


def test_incidents_list_show_ack_resolve(cli, ops_schema):
    ops = ops_schema["ops"]
    host = f"web-{uuid.uuid4().hex[:6]}"
    incident_id = open_incident(ops, host)

    listed = json.loads(cli("incidents", "--json").stdout)  # no action: the list
    assert any(i["id"] == incident_id and i["status"] == "open" for i in listed)
    assert json.loads(cli("incidents", "list", "--json").stdout) == listed
    shown = json.loads(cli("incidents", "show", str(incident_id), "--json").stdout)
    assert shown["host"] == host and [e["kind"] for e in shown["events"]][:1] == ["opened"]

    cli("incidents", "ack", str(incident_id), "--by", "alice", "--hold")
    acked = row(ops, incidents, incident_id)
    assert (acked["status"], acked["acknowledged_by"], acked["hold"]) == ("acknowledged", "alice", 1)

    out = cli("incidents", "resolve", str(incident_id), "--by", "bob").stdout
    assert f"incident #{incident_id} resolved by bob" in out
    resolved = row(ops, incidents, incident_id)
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "bob")
    with engine_for(ops).connect() as conn:
        events = conn.execute(select(incident_events.c.kind, incident_events.c.actor)
                              .where(incident_events.c.incident_id == incident_id)
                              .order_by(incident_events.c.id)).all()
    assert [tuple(e) for e in events][-2:] == [("acknowledged", "alice"), ("resolved", "bob")]

    again = cli("incidents", "resolve", str(incident_id), expect=2)
    assert again.stderr.strip() == f"pelbiot-jobs: error: incident #{incident_id} is already resolved"
    assert incident_id not in [i["id"] for i in json.loads(cli("incidents", "--json").stdout)]
    assert incident_id in [i["id"] for i in json.loads(cli("incidents", "list", "--all", "--json").stdout)]
    assert "no incident #999999999" in cli("incidents", "show", "999999999", expect=2).stderr


def test_silence_add_list_expire(cli, ops_schema):
    ops = ops_schema["ops"]
    host = f"db-{uuid.uuid4().hex[:6]}"
    added = json.loads(cli("silence", "add", "cpu_high", "--host", host, "--for", "2h", "--reason", "reindexing",
                           "--by", "alice", "--json").stdout)
    stored = row(ops, silences, added["id"])
    assert (stored["rule"], stored["host"], stored["created_by"], stored["reason"]) == \
        ("cpu_high", host, "alice", "reindexing")
    assert dt.timedelta(minutes=119) < stored["until"] - utcnow() <= dt.timedelta(hours=2)

    in_force = json.loads(cli("silence", "list", "--json").stdout)
    assert [s["active"] for s in in_force if s["id"] == added["id"]] == [True]
    assert "reindexing" in cli("silence", "list").stdout

    cli("silence", "expire", str(added["id"]), "--by", "bob")
    ended = row(ops, silences, added["id"])
    assert ended["until"] <= utcnow() and "expired by bob" in ended["reason"] and "reindexing" in ended["reason"]
    assert added["id"] not in [s["id"] for s in json.loads(cli("silence", "list", "--json").stdout)]
    every = json.loads(cli("silence", "list", "--all", "--json").stdout)
    assert [s["active"] for s in every if s["id"] == added["id"]] == [False]
    assert "already ended" in cli("silence", "expire", str(added["id"]), expect=2).stderr
    assert "unknown rule 'cpu_hgh'" in cli("silence", "add", "cpu_hgh", "--for", "1h", expect=2).stderr


def test_reading_never_migrates_the_ops_database_and_writing_does(tmp_path):
    env = clean_environ()
    ops_url = f"sqlite:///{tmp_path / 'var' / 'ops.db'}"
    make_engine(ops_url).connect().close()  # an ops DB of no version yet (a read never creates one)
    for command in (["status", "--offline"], ["incidents"], ["silence", "list"], ["health"], ["metrics"]):
        done = pj(*command, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and "run `pelbiot-jobs db upgrade`" in done.stderr, done.stderr
    assert migrate.current(ops_url) is None
    engine = make_engine(ops_url)
    from sqlalchemy import inspect

    assert inspect(engine).get_table_names() == []
    engine.dispose()
    done = pj("silence", "add", "cpu_high", "--for", "1h", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert migrate.current(ops_url) == migrate.head()


def test_db_advise_shows_each_finding_with_its_fix(cli, demo_app_db):
    done = cli("db", "advise", "--category", "schema")
    assert done.stdout.count("duplicate_indexes:") == 6, done.stdout  # PELBIOT's six, one line each
    assert "fix: ALTER TABLE" in done.stdout and "security" not in done.stdout.split("findings", 1)[1]
    as_json = json.loads(cli("db", "advise", "--json").stdout)
    assert len(as_json["checked"]) >= 40 and all("evidence" in r and r["fix"] for r in as_json["findings"])
    assert {r["category"] for r in as_json["findings"]} >= {"schema"}
    refused = cli("db", "advise", "--category", "nonsense", expect=2)
    assert "invalid choice" in refused.stderr
