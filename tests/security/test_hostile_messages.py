"""What a message sent from outside (Flower's API, any broker client) can do to a worker, and what
another client can push on the dead-letter list: the hostile review's items 1, 2 and 7, on the real
worker, MariaDB and Redis."""

from __future__ import annotations

import json
import threading
import uuid

import redis
from sqlalchemy import select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import job_runs
from pelbiot_jobs.jobs.service import wait_for_runs
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.runtime.headers import publishing, run_id
from pelbiot_jobs.runtime.keys import DEAD_LETTERS, REJECTED_RUNS
from pelbiot_jobs.runtime.recording import REJECTED_DIR, SPOOL_DIR, _spool_file, flush_spool, write_runs
from tests.conftest import clean_environ, service_env
from tests.e2e.conftest import pj


def send(app, kwargs=None, **options) -> str:
    task_id = options.pop("task_id", None) or str(uuid.uuid4())
    with publishing("cli"):
        app.send_task("maintenance.retention", kwargs=kwargs or {"nope": 1}, task_id=task_id, queue="maintenance",
                      **options)
    return task_id


def test_a_message_with_a_long_id_or_trigger_is_recorded_and_the_runs_after_it_too(app, worker, settings):
    """Before: "Data too long" on the hostile row, which stayed at the head of the spool, so every
    later run of the worker went unrecorded (0 of 3)."""
    sent = "h" * 100 + uuid.uuid4().hex
    app.send_task("maintenance.retention", kwargs={"nope": 1}, task_id=sent, queue="maintenance",  # as Flower's API
                  headers={"pelbiot_trigger": "t" * 40, "pelbiot_job": "j" * 300,
                           "pelbiot_scheduled_at": "0001-01-01T00:00:00"})
    later = [send(app) for _ in range(3)]
    rows = wait_for_runs(engine_for(settings.ops_db_url), [run_id(sent)] + later, 60)
    assert set(rows) == {run_id(sent), *later}, f"recorded: {sorted(rows)}"
    row = rows[run_id(sent)]
    assert row["task_id"].startswith("x-") and len(row["task_id"]) <= 64
    assert (row["trigger"], row["job"], row["scheduled_at"]) == ("manual", None, None)
    assert all(rows[t]["state"] == "FAILURE" and rows[t]["trigger"] == "cli" for t in later)
    assert run_id(sent) == run_id(sent) and run_id(later[0]) == later[0]  # every event of a run lands on one row


def test_a_row_the_ops_db_refuses_is_set_aside_and_the_rows_behind_it_are_written(settings, tmp_path, ops_schema,
                                                                                redis_url):
    client = redis.Redis.from_url(settings.coordination_redis_url)
    counted = int(client.get(REJECTED_RUNS) or 0)
    now = utcnow()

    def row(task_id, task="maintenance.retention"):
        return {"task_id": task_id, "attempt": 0, "task": task, "job": None, "trigger": "cli", "args": None,
                "queue": "maintenance", "scheduled_at": None, "started_at": now, "finished_at": now,
                "state": "SUCCESS", "duration_s": 0.0, "error": None, "result": None, "host": "h", "worker": "w"}

    # A spooled row no bound catches (a task name longer than the column) at the head of the spool.
    bad, good = f"bad-{uuid.uuid4().hex[:8]}", [f"good-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    spool = _spool_file(settings, 4242)
    spool.parent.mkdir(parents=True, exist_ok=True)
    spool.write_text("".join(json.dumps({"row": {k: v.isoformat() if hasattr(v, "isoformat") else v
                                                 for k, v in r.items()}, "update": None}) + "\n"
                             for r in [row(bad, "x" * 200), row(good[0])]))
    assert flush_spool(settings, only=spool) == 1
    assert write_runs(settings, [(row(good[1]), None), (row(bad + "-2", "y" * 200), None), (row(good[2]), None)])
    with engine_for(settings.ops_db_url).connect() as conn:
        written = set(conn.execute(select(job_runs.c.task_id).where(job_runs.c.task_id.in_(good + [bad]))).scalars())
    assert written == set(good)
    kept = [json.loads(line) for f in (settings.var_dir / REJECTED_DIR).glob("*.jsonl")
            for line in f.read_text().splitlines()]
    assert {k["row"]["task_id"] for k in kept} == {bad, bad + "-2"}
    assert all("Data too long" in k["error"] for k in kept)
    assert not list((settings.var_dir / SPOOL_DIR).glob("*.jsonl"))  # nothing left to block the next write
    assert int(client.get(REJECTED_RUNS)) == counted + 2
    env = clean_environ() | service_env(ops_schema, redis_url, tmp_path)
    status = pj("status", "--json", env=env, cwd=tmp_path, timeout=120)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["rejected_runs"] == counted + 2


def test_a_megabyte_argument_is_sized_not_masked(app, worker, settings):
    """Before: masking was quadratic on runs of letters; a 100 KB argument held the worker 18-23 s
    at task_prerun, so this one (10 times longer: about 100 times the work) would not end within the wait."""
    sent = send(app, kwargs={"job_runs_days": "a" * 1_000_000})
    rows = wait_for_runs(engine_for(settings.ops_db_url), [sent], 60)
    assert sent in rows, "the run was not recorded within 60 s"
    assert rows[sent]["state"] == "FAILURE" and "parameter job_runs_days" in rows[sent]["error"]
    assert rows[sent]["args"] == "[1000045 characters of arguments, not recorded]"


def test_masking_is_linear_on_every_shape_that_was_quadratic():
    """Each shape, 1 MB long, is scrubbed on a thread that must end (the old patterns needed hours
    on some of them); the result still masks what it must."""
    from pelbiot_jobs.lib.redact import scrub

    shapes = ["a" * 1_000_000, "x " + "a://u:" * 200_000, "x a://u:" + "@" * 1_000_000,
              "x " + "a://u:x@ " * 120_000, "x " + "ab" * 500_000 + "://u:pw@h"]
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.extend(scrub(s) for s in shapes), daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "scrubbing 5 MB of text did not end in 120 s"
    assert results[4].endswith("://u:***@h") and "pw" not in results[4][-20:]
    assert results[3].count("***@") == 120_000


def test_a_query_parameter_of_60_kb_is_a_400_naming_it(tmp_path, ops_schema):
    from tests.integration.test_web import fetch
    from tests.security.conftest import WEB_PASSWORD, WEB_USER, web_view

    with web_view(ops_schema, tmp_path) as url:
        status, _, body = fetch(url + "/queries?sort=" + "x" * 60_000, auth=(WEB_USER, WEB_PASSWORD))
        assert status == 400 and "query parameter sort is longer than 200 characters" in body
        assert fetch(url + "/queries?sort=calls", auth=(WEB_USER, WEB_PASSWORD))[0] == 200


def test_status_survives_a_dead_letter_another_client_wrote(settings, tmp_path, ops_schema, redis_url):
    """Before: `{"at": 1}` on the list made `status` fail with an internal error."""
    client = redis.Redis.from_url(settings.coordination_redis_url)
    for record in (json.dumps({"at": 1}), json.dumps([1, 2]), b"\xff\xfe", json.dumps({"queue": 7, "reason": None})):
        client.lpush(DEAD_LETTERS, record)
    try:
        env = clean_environ() | service_env(ops_schema, redis_url, tmp_path)
        for args in (("status",), ("status", "--json")):
            done = pj(*args, env=env, cwd=tmp_path, timeout=120)
            assert done.returncode == 0 and "Traceback" not in done.stderr and "internal" not in done.stderr, \
                done.stderr
        newest = json.loads(done.stdout)["dead_letters"]["newest"]
        assert newest[0]["queue"] == "?" and newest[0]["reason"] == "?"
        assert newest[1]["reason"] == "not a record pelbiot-jobs wrote"
    finally:
        client.lrem(DEAD_LETTERS, 0, json.dumps({"at": 1}))
        client.lrem(DEAD_LETTERS, 0, json.dumps([1, 2]))
        client.lrem(DEAD_LETTERS, 0, b"\xff\xfe")
        client.lrem(DEAD_LETTERS, 0, json.dumps({"queue": 7, "reason": None}))
