"""Metrics on the real MariaDB and Redis, through a real worker where a task is involved."""

import datetime as dt
import json
import os
import time
import uuid
from dataclasses import replace

import pytest
import redis
from sqlalchemy import func, insert, select

from pelbiot_jobs.db import checkpoints
from pelbiot_jobs.db.engine import engine_for, make_engine
from pelbiot_jobs.db.ops_models import metric_rollups, metric_samples, request_minutes
from pelbiot_jobs.jobs.service import wait_for_runs
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.lib.redis_clients import coordination as coordination_redis
from pelbiot_jobs.metrics.rates import MIN_INTERVAL
from pelbiot_jobs.metrics.request_sources import ingest_access_log, ingest_stream
from pelbiot_jobs.metrics.rollup import roll_up
from pelbiot_jobs.metrics.service import source_label
from pelbiot_jobs.metrics.tasks import SAMPLER_OPTIONS
from pelbiot_jobs.runtime import heartbeats as hosts
from pelbiot_jobs.runtime.app import configure
from pelbiot_jobs.runtime.headers import publishing

from .conftest import runs_of


def run(app, settings, name, expect="SUCCESS", timeout=60, **kwargs):
    task_id = str(uuid.uuid4())
    with publishing("cli"):
        app.tasks[name].apply_async(kwargs=kwargs, task_id=task_id)
    row = wait_for_runs(engine_for(settings.ops_db_url), [task_id], timeout)[task_id]
    assert row["state"] == expect, row
    return task_id


def latest(settings, host, metric):
    with engine_for(settings.ops_db_url).connect() as conn:
        return conn.execute(select(metric_samples.c.value).where(
            metric_samples.c.host == host, metric_samples.c.metric == metric)
            .order_by(metric_samples.c.ts.desc()).limit(1)).scalar()


def test_mysql_sample_rates_follow_the_queries_issued(app, worker, settings):
    label = source_label(settings.app_db_url)
    run(app, settings, "metrics.sample_mysql")
    first = time.monotonic()
    assert latest(settings, label, "mysql.threads_connected") >= 1  # first sample: gauges only
    assert latest(settings, label, "mysql.queries_per_s") is None
    issued = 3000
    engine = make_engine(settings.app_db_url)
    with engine.connect() as conn:
        for _ in range(issued):
            conn.exec_driver_sql("SELECT 1")
    engine.dispose()
    # Readings closer than rates.MIN_INTERVAL give no rate by design; the queries may run faster.
    time.sleep(max(0.0, MIN_INTERVAL + 0.1 - (time.monotonic() - first)))
    run(app, settings, "metrics.sample_mysql")
    with engine_for(settings.ops_db_url).connect() as conn:
        state = checkpoints.get(conn, f"db:{label}")
    elapsed = state["reading"]["ts"] - state["previous"]["ts"]
    expected = issued / elapsed
    selects = latest(settings, label, "mysql.selects_per_s")
    # Other clients (the worker recording its runs) add a little; nothing takes any away.
    assert expected <= selects <= expected * 1.1 + 50 / elapsed, (selects, expected)
    assert latest(settings, label, "mysql.queries_per_s") >= selects
    assert 0 < latest(settings, label, "mysql.buffer_pool_hit_percent") <= 100


def test_redis_hit_rate_reflects_real_hits_and_misses(app, settings, private_redis):
    """A cache Redis of its own: INFO is server-wide, so no other client may touch it."""
    cache_url = f"redis://127.0.0.1:{private_redis.port}/0"
    own = replace(settings, cache_redis_url=cache_url)
    configure(own)
    label = source_label(cache_url)
    app.tasks["metrics.sample_redis"].apply(task_id=str(uuid.uuid4()))
    client = redis.Redis.from_url(cache_url)
    client.set("route:/api/devices", "{}")
    for _ in range(30):
        client.get("route:/api/devices")
    for i in range(10):
        client.get(f"route:/api/missing/{i}")
    time.sleep(0.6)  # two readings closer than 0.5 s give no rate
    app.tasks["metrics.sample_redis"].apply(task_id=str(uuid.uuid4()))
    assert latest(own, label, "redis.hit_rate_percent") == 75.0
    assert latest(own, label, "redis.connected_clients") >= 1


def test_host_samples_go_through_each_live_hosts_queue(app, worker, settings):
    live = hosts.live_hosts(coordination_redis(settings))
    assert settings.hostname in live  # the worker registered when it was ready
    run(app, settings, "metrics.sample_hosts")
    time.sleep(0.6)  # two readings closer than 0.5 s give no rate
    run(app, settings, "metrics.sample_hosts")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and latest(settings, settings.hostname, "host.cpu_percent") is None:
        time.sleep(0.2)
    cpu = latest(settings, settings.hostname, "host.cpu_percent")
    assert cpu is not None and 0 <= cpu <= 100
    assert latest(settings, settings.hostname, "host.memory_percent") > 0
    assert latest(settings, settings.hostname, "host.disk_used_percent{/}") > 0


def test_a_dead_host_gets_no_sample(settings):
    import json

    from pelbiot_jobs.runtime.heartbeats import WORKER_KEY

    client = coordination_redis(settings)
    record = {"node": "pelbiot@gone-host", "host": "gone-host", "queues": ["sampling", "host.gone-host"]}
    client.set(WORKER_KEY + "pelbiot@gone-host", json.dumps(record | {"heartbeat": time.time() - 3600}), ex=60)
    client.set(WORKER_KEY + "pelbiot@here-host", json.dumps(record | {"host": "here-host", "queues": ["host.here-host"],
                                                                    "heartbeat": time.time()}), ex=60)
    client.set(WORKER_KEY + "pelbiot@busy-host", json.dumps(record | {"host": "busy-host", "queues": ["maintenance"],
                                                                    "heartbeat": time.time()}), ex=60)
    live = hosts.live_hosts(client)
    assert "gone-host" not in live and "here-host" in live and "busy-host" not in live


def test_cache_redis_down_retries_that_sampler_only(app, worker, settings, tmp_path):
    from tests.conftest import free_port

    dead = replace(settings, cache_redis_url=f"redis://127.0.0.1:{free_port()}/0")
    configure(dead)
    redis_id = str(uuid.uuid4())
    with publishing("cli"):
        app.tasks["metrics.sample_redis"].apply_async(task_id=redis_id)
    run(app, dead, "metrics.sample_mysql")
    run(app, dead, "metrics.sample_hosts")
    row = wait_for_runs(engine_for(dead.ops_db_url), [redis_id], 150)[redis_id]
    rows = runs_of(dead, redis_id)
    # The retries span about a minute (a typical restart), then the sample is given up.
    assert [r["state"] for r in rows] == ["RETRY"] * SAMPLER_OPTIONS["max_retries"] + ["FAILURE"], rows
    assert (rows[-1]["started_at"] - rows[0]["started_at"]).total_seconds() >= 50
    assert row["error"].startswith("ConnectionError: Error 111 connecting to 127.0.0.1")


@pytest.fixture
def stream(settings):
    name = f"pelbiot:requests:test:{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(settings.cache_redis_url)
    yield client, name
    client.delete(name)


def add_requests(client, name, n, status=200, start=None):
    ts = (start or utcnow().replace(tzinfo=dt.timezone.utc).timestamp()) * 1000
    pipe = client.pipeline()
    for i in range(n):
        pipe.xadd(name, {"method": "GET", "route": "/api/devices", "status": status,
                         "duration_ms": 10 + i % 50, "ts": int(ts + i)})
    pipe.execute()


def counted(settings, since):
    with engine_for(settings.ops_db_url).connect() as conn:
        return conn.execute(select(func.sum(request_minutes.c.requests), func.sum(request_minutes.c.c5xx))
                            .where(request_minutes.c.source == "stream",
                                   request_minutes.c.minute >= since)).one()


class Killed(Exception):
    """What a worker killed at that point looks like to the code that ran."""


def test_stream_telemetry_survives_a_crash_before_and_after_commit(settings, stream):
    client, name = stream
    engine = engine_for(settings.ops_db_url)
    since = utcnow().replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    base = counted(settings, since)[0] or 0
    add_requests(client, name, 1000)
    add_requests(client, name, 200, status=503)

    def crash_at(point):
        def hook(where):
            if where == point:
                raise Killed(point)
        return hook

    with pytest.raises(Killed):
        ingest_stream(client, engine, name, utcnow(), crash=crash_at("before_commit"))
    assert (counted(settings, since)[0] or 0) == base  # rolled back: nothing counted
    with pytest.raises(Killed):
        ingest_stream(client, engine, name, utcnow(), crash=crash_at("after_commit"))
    assert counted(settings, since)[0] - base == 1200  # committed, but not acknowledged
    again = ingest_stream(client, engine, name, utcnow())
    assert again["already_counted"] == 1200 and again["counted"] == 0  # redelivered, not recounted
    add_requests(client, name, 300)
    last = ingest_stream(client, engine, name, utcnow())
    assert last["counted"] == 300
    total, errors = counted(settings, since)
    assert total - base == 1500 and errors >= 200
    assert client.xpending(name, "pelbiot-jobs")["pending"] == 0


LOG_LINE = '10.0.0.{i} - - [{when}] "GET /api/devices/{i} HTTP/1.1" {status} 10 "-" "curl" 0.{ms:03d}\n'


def log_lines(n, status=200):
    when = utcnow().strftime("%d/%b/%Y:%H:%M:%S +0000")
    return "".join(LOG_LINE.format(i=i % 250, when=when, status=status, ms=5 + i % 90) for i in range(n))


def access_total(settings):
    with engine_for(settings.ops_db_url).connect() as conn:
        return conn.execute(select(func.coalesce(func.sum(request_minutes.c.requests), 0))
                            .where(request_minutes.c.source == "access_log")).scalar()


def test_access_log_is_read_incrementally_through_rotation_and_truncation(settings, tmp_path):
    engine = engine_for(settings.ops_db_url)
    base = access_total(settings)
    log = tmp_path / "access.log"
    log.write_text(log_lines(100) + "not a log line\n")
    first = ingest_access_log(log, engine, utcnow())
    assert (first["counted"], first["malformed"]) == (100, 1)
    partial = LOG_LINE.format(i=1, when=utcnow().strftime("%d/%b/%Y:%H:%M:%S +0000"), status=200, ms=1)
    with open(log, "a") as fh:  # 50 more lines and half of one still being written
        fh.write(log_lines(50, status=500) + partial[:30])
    second = ingest_access_log(log, engine, utcnow())
    assert second["counted"] == 50 and second["malformed"] == 0
    with open(log, "a") as fh:  # the rest of that line, then logrotate renames the file
        fh.write(partial[30:])
        fh.write(log_lines(20))
    os.rename(log, tmp_path / "access.log.1")
    log.write_text(log_lines(30))
    third = ingest_access_log(log, engine, utcnow())
    assert third["rotated"] and third["counted"] == 1 + 20 + 30
    log.write_text(log_lines(5))  # copytruncate: same file, shorter than the offset
    fourth = ingest_access_log(log, engine, utcnow())
    assert fourth["truncated"] and fourth["counted"] == 5
    assert ingest_access_log(log, engine, utcnow())["counted"] == 0  # nothing new: nothing counted
    assert access_total(settings) - base == 100 + 50 + 51 + 5


def test_rollups_after_an_hour_of_data_with_a_pinned_clock(settings):
    engine = engine_for(settings.ops_db_url)
    host = f"rollup-{uuid.uuid4().hex[:6]}"
    start = dt.datetime(2026, 1, 5, 10, 0)
    rows = [{"metric": "host.cpu_percent", "host": host, "ts": start + dt.timedelta(seconds=15 * i),
             "value": float(i % 100)} for i in range(240 * 2)]  # two hours of 15 s samples
    rows.append({"metric": "host.swap_percent", "host": host, "ts": start, "value": None})
    with engine.begin() as conn:
        conn.execute(insert(metric_samples), rows)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ops_checkpoints WHERE name = 'rollup:hourly'")
    assert roll_up(engine, dt.datetime(2026, 1, 5, 10, 59))["hours"] == 0  # the hour is not over
    result = roll_up(engine, dt.datetime(2026, 1, 5, 12, 1))
    assert result["hours"] == 2
    assert roll_up(engine, dt.datetime(2026, 1, 5, 12, 30))["hours"] == 0  # nothing left to do
    with engine.connect() as conn:
        got = conn.execute(select(metric_rollups).where(metric_rollups.c.host == host)
                           .order_by(metric_rollups.c.hour)).mappings().all()
    assert [r["hour"] for r in got] == [start, start + dt.timedelta(hours=1)]
    first = got[0]
    assert (first["samples"], first["min"], first["max"]) == (240, 0.0, 99.0)
    assert first["p95"] == 93.0 and abs(first["avg"] - sum(i % 100 for i in range(240)) / 240) < 1e-9


def test_metrics_command_shows_live_values(app, worker, settings, tmp_path):
    from tests.conftest import clean_environ, service_env
    from tests.e2e.conftest import pj

    run(app, settings, "metrics.sample_mysql")
    run(app, settings, "metrics.sample_mysql")
    env = clean_environ() | {k: v for k, v in service_env(
        {"app": settings.app_db_url, "ops": settings.ops_db_url}, settings.broker_url, tmp_path).items()}
    done = pj("metrics", "--since", "10m", "--json", "--host", source_label(settings.app_db_url),
              env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    names = {m["metric"] for m in data["metrics"]}
    assert {"mysql.queries_per_s", "mysql.threads_connected"} <= names
    bad = pj("metrics", "--since", "soon", env=env, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "--since 'soon'" in bad.stderr


def test_job_runs_counter_never_goes_down_when_retention_prunes_and_every_severity_has_a_sample(settings):
    """pelbiot_job_runs_total counts the runs kept plus those retention pruned; no open incident
    is a 0 sample per severity, not a missing series."""
    import datetime as dt

    from prometheus_client.parser import text_string_to_metric_families
    from sqlalchemy import delete, insert

    from pelbiot_jobs.db.engine import engine_for
    from pelbiot_jobs.db.ops_models import incidents, job_runs
    from pelbiot_jobs.jobs.exported import figures
    from pelbiot_jobs.maintenance.service import retention
    from pelbiot_jobs.web.prometheus import exposition

    engine = engine_for(settings.ops_db_url)
    now = dt.datetime(2000, 3, 1, 12, 0)  # long before any other test's rows: retention prunes only these
    task = "test.counted"
    with engine.begin() as conn:
        conn.execute(delete(incidents))
        conn.execute(insert(job_runs), [
            {"task_id": f"counted-{i}", "attempt": 0, "task": task, "trigger": "beat", "state": "SUCCESS",
             "started_at": now - dt.timedelta(days=days), "finished_at": now - dt.timedelta(days=days)}
            for i, days in enumerate([40, 40, 35, 1, 0])])

    def scrape():
        families = {f.name: f for f in text_string_to_metric_families(exposition(figures(settings, now)).decode())}
        runs = [s.value for s in families["pelbiot_job_runs"].samples
                if s.name == "pelbiot_job_runs_total" and s.labels == {"task": task, "state": "SUCCESS"}]
        return runs, {s.labels["severity"]: s.value for s in families["pelbiot_incidents_open"].samples}

    before, open_ = scrape()
    assert before == [5.0] and open_ == {"info": 0.0, "warning": 0.0, "critical": 0.0}
    done = retention(settings, job_runs_days=30, now=now)
    assert done["deleted"]["ops_job_runs"] >= 3
    after, _ = scrape()
    assert after == [5.0]  # 2 kept + 3 pruned
    with engine.begin() as conn:
        conn.execute(insert(job_runs).values(task_id="counted-new", attempt=0, task=task, trigger="beat",
                                             state="SUCCESS", started_at=now, finished_at=now))
    assert scrape()[0] == [6.0]
