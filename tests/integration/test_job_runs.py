"""Tasks sent through the real Redis broker to a real worker land in ops_job_runs."""

import datetime as dt
import uuid

from sqlalchemy import func, select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import job_runs
from pelbiot_jobs.jobs.service import wait_for_runs
from pelbiot_jobs.runtime.headers import publishing

from .conftest import runs_of
from .testing_tasks import LEAKED_SECRET

WAIT = 60


def send(app, name, **kwargs):
    task_id = str(uuid.uuid4())
    with publishing("cli"):
        app.tasks[name].apply_async(kwargs=kwargs, task_id=task_id)
    return task_id


def wait(settings, *task_ids):
    rows = wait_for_runs(engine_for(settings.ops_db_url), list(task_ids), WAIT)
    assert set(rows) == set(task_ids), f"no final run recorded for {set(task_ids) - set(rows)}"
    return rows


def test_a_successful_run_is_recorded_with_what_an_operator_needs(app, worker, settings):
    before = dt.datetime.utcnow()
    task_id = send(app, "testing.ok", x=7)
    wait(settings, task_id)
    [row] = runs_of(settings, task_id)
    assert row["state"] == "SUCCESS"
    assert row["task"] == "testing.ok" and row["attempt"] == 0
    assert row["trigger"] == "cli"
    assert row["queue"] == "sampling"
    assert row["result"] == '{"x": 7}'
    assert '"x": 7' in row["args"]
    assert before - dt.timedelta(seconds=1) <= row["started_at"] <= row["finished_at"]
    assert row["duration_s"] is not None and row["duration_s"] >= 0
    assert row["host"] and row["worker"] and row["error"] is None


def test_a_failing_run_is_recorded_with_a_one_line_error_without_secrets(app, worker, settings):
    task_id = send(app, "testing.fail")
    wait(settings, task_id)
    [row] = runs_of(settings, task_id)
    assert row["state"] == "FAILURE"
    assert row["error"] == "ValueError: boom: login with *** refused"
    assert LEAKED_SECRET not in (row["error"] + (row["result"] or ""))


def test_a_transient_error_is_retried_and_each_attempt_recorded(app, worker, settings):
    task_id = send(app, "testing.flaky", failures=2)
    wait(settings, task_id)
    rows = runs_of(settings, task_id)
    assert [r["state"] for r in rows] == ["RETRY", "RETRY", "SUCCESS"]
    assert [r["attempt"] for r in rows] == [0, 1, 2]
    assert rows[0]["error"].startswith("ConnectionError: Error 111 connecting to cache")
    assert rows[-1]["result"] == '{"attempts": 3}'


def test_a_non_transient_error_is_not_retried(app, worker, settings):
    task_id = send(app, "testing.fail")
    wait(settings, task_id)
    assert len(runs_of(settings, task_id)) == 1


def test_an_exclusive_task_sent_twice_runs_once_and_is_skipped_once(app, worker, settings):
    first = send(app, "testing.slow_exclusive", seconds=3)
    second = send(app, "testing.slow_exclusive", seconds=3)
    rows = wait(settings, first, second)
    states = sorted(r["state"] for r in rows.values())
    assert states == ["SKIPPED", "SUCCESS"]
    skipped = next(r for r in rows.values() if r["state"] == "SKIPPED")
    ran = next(r for r in rows.values() if r["state"] == "SUCCESS")
    assert skipped["result"] == f"another testing.slow_exclusive run is in progress (task {ran['task_id']})"
    # The lock is released afterwards: a third run goes ahead.
    third = send(app, "testing.slow_exclusive", seconds=0)
    assert wait(settings, third)[third]["state"] == "SUCCESS"


def test_a_redelivered_message_updates_its_row_instead_of_adding_one(app, worker, settings):
    task_id = str(uuid.uuid4())
    for _ in range(2):  # the same task id twice: what a redelivery after a lost ack looks like
        app.tasks["testing.ok"].apply_async(kwargs={"x": 1}, task_id=task_id)
        wait(settings, task_id)
    with engine_for(settings.ops_db_url).connect() as conn:
        count = conn.execute(select(func.count()).select_from(job_runs)
                             .where(job_runs.c.task_id == task_id)).scalar_one()
    assert count == 1


def test_a_message_without_our_headers_is_recorded_as_manual(app, worker, settings):
    # What Flower's "apply" sends: a plain message.
    result = app.send_task("testing.ok", kwargs={"x": 2})
    wait(settings, result.id)
    assert runs_of(settings, result.id)[0]["trigger"] == "manual"


def test_local_runs_are_recorded_too(app, settings):
    task_id = str(uuid.uuid4())
    app.tasks["testing.ok"].apply(kwargs={"x": 3}, task_id=task_id)
    [row] = runs_of(settings, task_id)
    assert row["trigger"] == "local" and row["state"] == "SUCCESS"


def test_a_job_that_expired_in_the_queue_is_skipped_not_run(app, settings):
    """A backlog of frequent jobs is dropped, and the drop is recorded with its reason."""
    import time

    from celery.contrib.testing.worker import start_worker

    task_id = str(uuid.uuid4())
    with publishing("beat", job="testing.ok"):
        app.tasks["testing.ok"].apply_async(task_id=task_id, expires=0.5)
    time.sleep(1.5)  # no worker yet: the message expires in the queue
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      queues=["sampling"]):
        row = wait(settings, task_id)[task_id]
    assert row["state"] == "SKIPPED"
    assert row["result"].startswith("expired")
    assert row["trigger"] == "beat" and row["job"] == "testing.ok"
    assert row["started_at"] is None  # it never ran
