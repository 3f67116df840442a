"""db.table_stats and maintenance.retention on the real MariaDB, through the worker."""

import datetime as dt
import uuid

from sqlalchemy import func, insert, select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import job_runs, table_stats
from pelbiot_jobs.demo.data import DemoPlan, seed
from pelbiot_jobs.jobs.service import wait_for_runs
from pelbiot_jobs.runtime.headers import publishing

from .conftest import runs_of


def run(app, settings, name, **kwargs):
    task_id = str(uuid.uuid4())
    with publishing("cli"):
        app.tasks[name].apply_async(kwargs=kwargs, task_id=task_id)
    row = wait_for_runs(engine_for(settings.ops_db_url), [task_id], 60)[task_id]
    assert row["state"] == "SUCCESS", row
    return row


def test_table_stats_records_every_app_table_once_per_hour(app, worker, settings, demo_app_db, mariadb):
    run(app, settings, "db.table_stats")
    run(app, settings, "db.table_stats")  # same hour: upserted, not duplicated
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = conn.execute(select(table_stats).where(table_stats.c.schema_name == mariadb["names"]["app"])).mappings().all()
    by_table = {r["table_name"]: r for r in rows}
    assert len(by_table) == len(rows) == 25
    assert by_table["sensor_data"]["data_bytes"] > 0 and by_table["sensor_data"]["index_bytes"] > 0
    assert by_table["devices"]["engine"] == "InnoDB"
    # InnoDB's TABLE_ROWS is an estimate; it must be in the right range.
    assert 0.5 * demo_app_db["sensor_data"] <= by_table["sensor_data"]["row_count"] <= 1.5 * demo_app_db["sensor_data"]


def test_table_stats_on_sqlite_counts_exactly(app, settings, tmp_path):
    from dataclasses import replace

    from pelbiot_jobs.runtime.app import configure

    sqlite_settings = replace(settings, app_db_url=f"sqlite:///{tmp_path / 'app.db'}")
    written = seed(engine_for(sqlite_settings.app_db_url), DemoPlan(devices=5, days=2, sensor_days=1))
    configure(sqlite_settings)
    task_id = str(uuid.uuid4())
    app.tasks["db.table_stats"].apply(task_id=task_id)
    assert runs_of(settings, task_id)[0]["state"] == "SUCCESS"
    with engine_for(settings.ops_db_url).connect() as conn:
        row = conn.execute(select(table_stats).where(table_stats.c.schema_name == "main",
                                                     table_stats.c.table_name == "load_profiles")).mappings().one()
    # Exact: the rows written (yesterday's 24 hours and today's so far, for 5 devices).
    assert row["row_count"] == written["load_profiles"] and row["exact"] == 1 and row["data_bytes"] > 0


def test_retention_prunes_only_what_is_past_its_age(app, worker, settings):
    old = dt.datetime.utcnow() - dt.timedelta(days=45)
    marker = uuid.uuid4().hex[:8]
    with engine_for(settings.ops_db_url).begin() as conn:
        conn.execute(insert(job_runs), [
            {"task_id": f"old-{marker}-{i}", "attempt": 0, "task": "testing.ok", "trigger": "cli",
             "state": "SUCCESS", "started_at": old, "finished_at": old} for i in range(30)])
        conn.execute(insert(job_runs), [{"task_id": f"new-{marker}", "attempt": 0, "task": "testing.ok",
                                         "trigger": "cli", "state": "SUCCESS", "started_at": dt.datetime.utcnow()}])
    # query digests and their slices past PELBIOT_RETENTION_QUERIES_DAYS (90) go, younger ones stay
    from pelbiot_jobs.db.ops_models import health_scores, query_digests, query_slices, query_slices_daily
    from pelbiot_jobs.queries.analyze import day_of, roll_days, slice_row

    qid = f"FF{marker.upper()}"
    hours = {days: (dt.datetime.utcnow() - dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
             for days in (100, 80)}
    with engine_for(settings.ops_db_url).begin() as conn:
        conn.execute(insert(query_digests), [{"source": "file", "query_id": qid, "window_start": hour,
                                              "fingerprint": "select ?", "calls": 1, "query_time_sum": 1.0,
                                              "slow": 0, "hist": "{}"} for hour in hours.values()])
        conn.execute(insert(query_slices), [slice_row("file", qid, hour, "u", "h", "s", "", [1, 1.0, 0, 0, 0, 0])
                                            for hour in hours.values()])
        roll_days(conn, {("file", qid, day_of(hour)) for hour in hours.values()})
        # a host's minute scores as long as its samples (14 days), the installation's as long as the rollups (400)
        conn.execute(insert(health_scores), [
            {"host": who, "ts": (dt.datetime.utcnow() - dt.timedelta(days=days)).replace(second=0, microsecond=0),
             "score": 50.0, "status": "WARN", "present": 1, "components": "{}"}
            for who in (f"ret-{marker}", "*") for days in (500, 20, 10)])
    row = run(app, settings, "maintenance.retention", job_runs_days=30)
    assert '"ops_job_runs": 30' in row["result"]
    with engine_for(settings.ops_db_url).connect() as conn:
        left = conn.execute(select(func.count()).select_from(job_runs)
                            .where(job_runs.c.task_id.like(f"%-{marker}%"))).scalar_one()
        digests = conn.execute(select(query_digests.c.window_start).where(query_digests.c.query_id == qid)).scalars().all()
        slices = conn.execute(select(query_slices.c.window_start).where(query_slices.c.query_id == qid)).scalars().all()
        days = conn.execute(select(query_slices_daily.c.day).where(query_slices_daily.c.query_id == qid)).scalars().all()
        scores = conn.execute(select(health_scores.c.host, health_scores.c.ts).where(
            health_scores.c.host.in_((f"ret-{marker}", "*")), health_scores.c.status == "WARN",
            health_scores.c.score == 50.0)).all()
    ages = sorted((host, round((dt.datetime.utcnow() - ts.replace(tzinfo=None)).total_seconds() / 86400))
                  for host, ts in scores)
    assert ages == [("*", 10), ("*", 20), (f"ret-{marker}", 10)], ages
    assert [d.replace(tzinfo=None) for d in days] == [day_of(hours[80])]
    assert left == 1
    assert [d.replace(tzinfo=None) for d in digests] == [hours[80]] and [s.replace(tzinfo=None) for s in slices] == [hours[80]]
