"""Task parameters, slow-log paths, cache invalidation and report retention, tried as an attacker
or a careless operator would, on the real worker, MariaDB and Redis."""

from __future__ import annotations

import os
import time
import uuid

import redis
from sqlalchemy import func, insert, select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import job_runs, query_digests
from pelbiot_jobs.jobs.service import wait_for_runs
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.runtime.headers import publishing
from tests.conftest import clean_environ, service_env
from tests.e2e.conftest import pj
from tests.integration.conftest import runs_of


def send(app, name, **kwargs):
    task_id = str(uuid.uuid4())
    with publishing("cli"):
        app.send_task(name, kwargs=kwargs, task_id=task_id, queue="maintenance")
    return task_id


def count_runs(settings) -> int:
    with engine_for(settings.ops_db_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(job_runs)).scalar()


def test_a_negative_retention_sent_past_the_cli_fails_once_and_deletes_nothing(app, worker, settings):
    with engine_for(settings.ops_db_url).begin() as conn:  # a year of history that must survive
        conn.execute(insert(job_runs), [{"task_id": f"old-{i}", "attempt": 0, "task": "db.table_stats",
                                         "trigger": "beat", "state": "SUCCESS", "started_at": utcnow()}
                                        for i in range(5)])
    before = count_runs(settings)
    bad = {"job_runs_days": -1}, {"samples_days": 0}, {"job_runs_days": True}, {"job_runs_days": "7"}, {"nope": 1}
    ids = [send(app, "maintenance.retention", **kwargs) for kwargs in bad]
    rows = wait_for_runs(engine_for(settings.ops_db_url), ids, 60)
    for task_id, kwargs in zip(ids, bad):
        assert rows[task_id]["state"] == "FAILURE", rows[task_id]
        assert "\n" not in rows[task_id]["error"] and "parameter" in rows[task_id]["error"]
        assert len(runs_of(settings, task_id)) == 1  # recorded once: no retry of a bad parameter
    assert count_runs(settings) == before + len(bad)


def test_the_cli_refuses_a_bad_parameter_with_exit_2(settings, tmp_path, ops_schema, redis_url):
    env = clean_environ() | service_env(ops_schema, redis_url, tmp_path)
    done = pj("run", "maintenance.retention", "--param", "job_runs_days=-1", env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "job_runs_days=-1 is not valid" in done.stderr
    assert "Traceback" not in done.stderr


def test_queries_analyze_reads_no_file_a_caller_names(app, worker, settings):
    ids = [send(app, "queries.analyze", source="file", path=p) for p in ("/etc/passwd", "/proc/self/environ")]
    rows = wait_for_runs(engine_for(settings.ops_db_url), ids, 60)
    for task_id in ids:
        assert rows[task_id]["state"] == "FAILURE" and "reads only" in rows[task_id]["error"], rows[task_id]
    with engine_for(settings.ops_db_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(query_digests)
                            .where(query_digests.c.fingerprint.like("%root%"))).scalar() == 0


def test_cache_invalidate_never_touches_the_broker_or_redbeat(settings, tmp_path, ops_schema, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("pelbiot:redbeat::lock", "beat-1")
    client.set("_kombu.binding.sampling", "x")
    client.lpush("sampling", "a message")
    client.set("route:/api/devices", "{}")
    env = clean_environ() | service_env(ops_schema, redis_url, tmp_path)
    for pattern in ("*", "?*", "[^]*", "*lock*", "pelbiot:*", "_kombu*", "sampling", "r?ute:*"):
        done = pj("cache", "invalidate", pattern, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 2, (pattern, done.stdout, done.stderr)
        assert "outside the cache's namespaces" in done.stderr
    assert client.get("pelbiot:redbeat::lock") == b"beat-1" and client.llen("sampling") == 1
    assert client.exists("_kombu.binding.sampling")
    done = pj("cache", "invalidate", "route:*", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not client.exists("route:/api/devices") and client.get("pelbiot:redbeat::lock") == b"beat-1"


def test_a_fresh_report_about_an_old_period_is_kept(settings, tmp_path):
    from dataclasses import replace

    from pelbiot_jobs.maintenance.service import prune_report_files

    own = replace(settings, reports_dir=tmp_path / "reports", retention_reports_days=30)
    fresh = own.reports_dir / "monthly" / "2020-01-01"   # a monthly report about 2020, written now
    old = own.reports_dir / "daily" / "2026-11-28"       # a report written 40 days ago
    for folder in (fresh, old):
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("<html></html>")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old / "report.html", (forty_days_ago, forty_days_ago))
    assert prune_report_files(own, utcnow()) == 1
    assert fresh.is_dir() and not old.exists()
