"""The ops DB's demo history: a labelled week on the embedded default only, written once, and what
the first report, `queries` and `health` then show."""

import datetime as dt

from sqlalchemy import func, select

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import (
    incidents,
    index_changes,
    metric_rollups,
    query_digests,
    recommendations,
    request_minutes,
)
from pelbiot_jobs.demo.history import HOSTS, seed_history
from tests.conftest import clean_environ, service_env
from tests.e2e.conftest import pj


def test_a_configured_database_never_gets_demo_rows(ops_schema, redis_url, tmp_path):
    settings = load_settings(service_env(ops_schema, redis_url, tmp_path), cwd=tmp_path)
    assert not settings.embedded_default and seed_history(settings) is None
    with engine_for(settings.ops_db_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(metric_rollups)
                            .where(metric_rollups.c.host.in_(HOSTS))).scalar() == 0


def test_the_embedded_default_gets_a_labelled_week_once_and_the_first_report_is_full(tmp_path):
    env = clean_environ() | {"COLUMNS": "200"}
    done = pj("demo-data", "--devices", "10", "--days", "2", "--sensor-days", "1", env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "demo history in the ops DB" in done.stdout
    settings = load_settings({}, cwd=tmp_path)
    assert settings.embedded_default and seed_history(settings) is None  # once
    with engine_for(settings.ops_db_url).connect() as conn:
        def count(table, *where):
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()

        assert count(metric_rollups, metric_rollups.c.host.in_(HOSTS)) >= 7 * 24 * 6
        assert count(request_minutes, request_minutes.c.source == "demo") >= 7 * 24 * 60 - 60
        assert count(incidents, incidents.c.status == "resolved", incidents.c.summary.like("(demo)%")) == 1
        assert count(index_changes, index_changes.c.run_id == "demo-history", index_changes.c.outcome == "created") == 1
        assert count(recommendations, recommendations.c.message.like("(demo)%")) == 2
        assert conn.execute(select(func.count(func.distinct(query_digests.c.query_id)))).scalar() >= 6
    yesterday = (dt.datetime.utcnow() - dt.timedelta(days=1)).date().isoformat()
    done = pj("report", "daily", env=env, cwd=tmp_path, timeout=300)  # yesterday, by default
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "reports" / "out" / "daily" / yesterday / "report.html")
    if not html.exists():
        html = next(tmp_path.rglob(f"daily/{yesterday}/report.html"))
    page = html.read_text()
    assert "idx_load_profiles_created_at_peak" in page and "47,376 → 240" in page  # section 4
    assert "cpu_high" in page and "No metrics were sampled" not in page
    listed = pj("queries", "--since", "7d", env=env, cwd=tmp_path, timeout=120)
    assert listed.returncode == 0 and "select max(peak) from load_profiles" in listed.stdout


def test_demo_telemetry_keeps_coming_while_up_runs_and_never_on_a_configured_database(ops_schema, redis_url,
                                                                                       tmp_path):
    from pelbiot_jobs.db import migrate
    from pelbiot_jobs.demo.history import feed_requests

    configured = load_settings(service_env(ops_schema, redis_url, tmp_path), cwd=tmp_path)
    assert feed_requests(configured) == 0
    settings = load_settings({}, cwd=tmp_path / "fresh")
    migrate.upgrade(settings.ops_db_url)
    now = dt.datetime(2026, 12, 4, 12, 0)
    assert feed_requests(settings, now) == 1  # the minute before
    assert feed_requests(settings, now + dt.timedelta(minutes=5)) == 5  # the minutes since, once each
    assert feed_requests(settings, now + dt.timedelta(minutes=5)) == 0
    assert feed_requests(settings, now + dt.timedelta(hours=5)) == 60  # after a long stop: the last hour
    with engine_for(settings.ops_db_url).connect() as conn:
        minutes = conn.execute(select(request_minutes.c.minute).where(request_minutes.c.source == "demo")).scalars().all()
    assert len(minutes) == len(set(minutes)) == 66


def test_a_newcomer_sees_health_queries_and_indexes_on_the_first_run(tmp_path):
    """What the README's "What you will see" lists, on the embedded default after the first seed."""
    env = clean_environ() | {"COLUMNS": "220"}
    assert pj("demo-data", "--devices", "10", "--days", "2", "--sensor-days", "1", env=env, cwd=tmp_path,
              timeout=300).returncode == 0
    plan = pj("indexes", "plan", env=env, cwd=tmp_path, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "rewrite" in plan.stdout and "created_at >= ?" in plan.stdout  # the advice for the worst query
    assert "duplicate" in plan.stdout  # PELBIOT's redundant indexes, with their DROP never run
    health = pj("health", env=env, cwd=tmp_path, timeout=120)
    assert health.returncode == 0 and "demo-web1" in health.stdout, health.stderr
    shown = pj("queries", "show", "55EAF920", env=env, cwd=tmp_path, timeout=120)
    assert shown.returncode == 0 and "47376 → 240" in shown.stdout.replace(",", ""), shown.stdout + shown.stderr


def test_the_demo_tells_what_the_real_code_does(tmp_path):
    """The demo week checked against the real advisor, task registry, alert rules and health:
    the index the story created exists in the demo app DB and is the advisor's proposal for the
    worst query; no planned index is a left prefix of another; a query still written with DATE()
    never shows a range on the index; every job run is of a real job; no demo value crosses an
    alert rule's threshold but the incident's; every demo host keeps its health score while `up`
    feeds the demo."""
    import json

    from pelbiot_jobs.db.ops_models import job_runs, metric_samples
    from pelbiot_jobs.demo.history import INDEX_NAME, feed_requests
    from pelbiot_jobs.health.service import current_health, load_alerts, score
    from pelbiot_jobs.indexes.service import current_plan
    from pelbiot_jobs.runtime.app import load_jobs

    env = clean_environ()
    assert pj("demo-data", "--devices", "10", "--days", "2", "--sensor-days", "1", env=env, cwd=tmp_path,
              timeout=300).returncode == 0
    settings = load_settings({}, cwd=tmp_path)
    plan = current_plan(settings)
    assert INDEX_NAME not in {e["name"] for e in plan["create"]}
    assert any(e["name"] == INDEX_NAME for e in plan["exists"]), plan["exists"]
    worst = [s for s in plan["suggested"] if "date(created_at)" in (s["example"] or "").lower()]
    assert worst and worst[0]["columns"] == ["created_at", "peak"], plan["suggested"]
    with engine_for(settings.ops_db_url).connect() as conn:
        change = conn.execute(select(index_changes).where(index_changes.c.outcome == "created")).mappings().one()
        assert change["index_name"] == INDEX_NAME and "(`created_at`, `peak`)" in change["statement"]
        for row in conn.execute(select(query_digests.c.fingerprint, query_digests.c.explain)).mappings():
            if "date(created_at)" in row["fingerprint"] and row["explain"]:
                assert all(step["key"] != INDEX_NAME for step in json.loads(row["explain"])), row
        tasks = {r.task: r.job for r in conn.execute(select(job_runs.c.task, job_runs.c.job).distinct())}
        values = {}
        for metric, host, value in conn.execute(select(metric_samples.c.metric, metric_samples.c.host,
                                                       func.max(metric_samples.c.value))
                                                .group_by(metric_samples.c.metric, metric_samples.c.host)):
            values[(metric, host)] = value
        rollup_max = conn.execute(select(func.max(metric_rollups.c.max)).where(
            metric_rollups.c.metric.like("host.%"))).scalar()
    jobs = {j.name: j.task for j in load_jobs(settings, deep=False)}
    assert tasks and all(jobs.get(job) == task for task, job in tasks.items()), (tasks, jobs)
    assert rollup_max <= 100
    rules, _ = load_alerts(settings)
    for rule in rules:
        for (metric, host), value in values.items():
            if rule.metric == metric and host.startswith("demo-"):
                assert value <= rule.threshold or (rule.name == "cpu_high" and host == "demo-web1"), (rule, host, value)
    # `up` feeds the demo; health.score (the real one) keeps every demo host, each its own.
    now = dt.datetime.utcnow()
    feed_requests(settings, now + dt.timedelta(minutes=10))
    score(settings, now + dt.timedelta(minutes=10))
    hosts = {h["host"]: h["score"] for h in current_health(settings)["hosts"]}
    assert set(HOSTS) <= set(hosts), hosts
    # A week against the week before the history began is "new", not +21,000 %; a day has its trend.
    from pelbiot_jobs.queries.service import stored

    assert all(r["trend_percent"] is None and r["previous_time_s"] is None for r in stored(settings, 7 * 86400))
    assert any(r["trend_percent"] is not None for r in stored(settings, 86400))
