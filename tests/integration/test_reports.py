"""Reports on a day of realistic data in MariaDB: HTML, CSV, KPIs against SQL, e-mail, empty period, SMTP down."""

import datetime as dt
import json
import random
import shutil
import subprocess
import time
import uuid
from html.parser import HTMLParser

import pandas as pd
import pytest
from sqlalchemy import insert, select, text

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import health_scores, incidents, job_runs, metric_samples, reports, request_minutes
from pelbiot_jobs.lib.errors import TransientError
from pelbiot_jobs.metrics.requests import MinuteAgg, Request
from pelbiot_jobs.reports.service import export
from tests.conftest import free_port, service_env
from tests.helpers import smtp_server

DAY = dt.date(2026, 11, 20)
HOSTS = ("web1", "web2", "db1")


def fill_day(engine, day: dt.date, scale: float = 1.0) -> None:
    """A day of data: 5-minute samples for 3 hosts, per-minute requests, scores, incidents, job runs."""
    rnd = random.Random(day.toordinal())
    start = dt.datetime.combine(day, dt.time())
    samples, scores, minutes, runs = [], [], [], []
    for i in range(288):
        ts = start + dt.timedelta(minutes=5 * i)
        for host in HOSTS:
            samples.append({"metric": "host.cpu_percent", "host": host, "ts": ts, "value": rnd.uniform(10, 60) * scale})
            samples.append({"metric": "host.memory_percent", "host": host, "ts": ts, "value": rnd.uniform(40, 70)})
        for metric, low, high in (("mysql.queries_per_s", 50, 400), ("mysql.threads_running", 1, 8),
                                  ("mysql.slow_queries_per_s", 0, 0.05)):
            samples.append({"metric": metric, "host": "mysql@db1:3306", "ts": ts, "value": rnd.uniform(low, high)})
        samples.append({"metric": "redis.hit_rate_percent", "host": "redis@cache:6379", "ts": ts,
                        "value": rnd.uniform(80, 99)})
        scores.append({"host": "*", "ts": ts, "score": rnd.choice([100, 93.75, 87.5, 75]), "status": "GOOD",
                       "present": 4, "components": "{}"})
    for m in range(1440):
        minute = start + dt.timedelta(minutes=m)
        agg = MinuteAgg()
        for _ in range(rnd.randint(5, 30)):
            agg.add(Request(minute.timestamp(), "GET", rnd.choice(["/api/devices", "/api/alerts/active"]),
                            rnd.choice([200] * 30 + [500, 404]), rnd.lognormvariate(4, 0.7)))
        s = agg.summary()
        minutes.append({"source": "stream", "minute": minute, "requests": s["requests"], "c4xx": s["c4xx"],
                        "c5xx": s["c5xx"], "error_rate_percent": s["error_rate_percent"], "p50_ms": s["p50_ms"],
                        "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"], "avg_ms": s["avg_ms"], "max_ms": s["max_ms"],
                        "slowest_routes": json.dumps(s["slowest_routes"]), "agg": json.dumps(agg.to_json())})
    for k in range(60):
        at = start + dt.timedelta(minutes=24 * k)
        state = "FAILURE" if k % 20 == 0 else "SUCCESS"
        runs.append({"task_id": f"{day}-{k}-{uuid.uuid4().hex[:6]}", "attempt": 0, "task": ("db.table_stats", "cache.warm")[k % 2],
                     "trigger": "beat", "state": state, "started_at": at, "finished_at": at + dt.timedelta(seconds=2),
                     "duration_s": 2.0, "error": "OperationalError: boom" if state == "FAILURE" else None})
    with engine.begin() as conn:
        conn.execute(insert(metric_samples), samples)
        conn.execute(insert(health_scores), scores)
        conn.execute(insert(request_minutes), minutes)
        conn.execute(insert(job_runs), runs)
        conn.execute(insert(incidents), [
            {"rule": "cpu_high", "host": "web1", "severity": "critical", "status": "resolved", "hold": 0,
             "opened_at": start + dt.timedelta(hours=9), "resolved_at": start + dt.timedelta(hours=9, minutes=20),
             "acknowledged_by": "alice", "resolved_by": "auto"},
            {"rule": "response_time_high", "host": "*", "severity": "warning", "status": "open", "hold": 0,
             "opened_at": start + dt.timedelta(hours=22), "resolved_at": None, "acknowledged_by": None,
             "resolved_by": None}])


@pytest.fixture(scope="module")
def report_data(ops_schema):
    engine = engine_for(ops_schema["ops"])
    fill_day(engine, DAY)
    fill_day(engine, DAY - dt.timedelta(days=1), scale=0.5)  # the previous day: for the change column
    return ops_schema


@pytest.fixture
def report_settings(report_data, redis_url, tmp_path):
    def make(smtp_port=None):
        env = service_env(report_data, redis_url, tmp_path) | {"PELBIOT_REPORTS_DIR": str(tmp_path / "reports")}
        if smtp_port:
            env |= {"PELBIOT_SMTP_HOST": "127.0.0.1", "PELBIOT_SMTP_PORT": str(smtp_port),
                    "PELBIOT_SMTP_STARTTLS": "false", "PELBIOT_MAIL_TO": "ops@example.com"}
        return load_settings(env, cwd=tmp_path)
    return make


class Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.svgs, self.imgs = [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.ids.append(attrs.get("id"))
        if tag == "svg":
            self.svgs += 1
        if tag == "img":
            self.imgs.append(attrs)


def test_daily_report_renders_every_section_and_the_kpis_equal_sql(report_settings):
    settings = report_settings()
    result = export(settings, "daily", DAY, email=False)
    folder = settings.reports_dir / "daily" / DAY.isoformat()
    html = (folder / "report.html").read_text()
    parsed = Sections()
    parsed.feed(html)
    assert parsed.ids == ["kpis", "charts", "queries", "indexes", "alerts", "jobs"]
    assert parsed.svgs == 9  # health, cpu, memory, database, api rate, error rate, errors per minute, p95, cache
    # Standalone: no JavaScript, nothing fetched from the network (namespace URIs are not fetches).
    assert "<script" not in html
    assert not any(f'{attr}="http' in html for attr in ("src", "href", "xlink:href")) and "url(http" not in html
    kpis = pd.read_csv(folder / "kpis.csv")
    assert list(kpis.columns) == ["kpi", "label", "value", "previous", "change_percent"]
    assert len(kpis) == 13 + len(HOSTS)
    value = dict(zip(kpis.kpi, kpis.value))
    start, end = dt.datetime.combine(DAY, dt.time()), dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time())
    with engine_for(settings.ops_db_url).connect() as conn:
        sql = lambda q: float(conn.execute(text(q), {"s": start, "e": end}).scalar())  # noqa: E731
        assert value["health_avg"] == pytest.approx(sql(
            "SELECT AVG(score) FROM ops_health_scores WHERE host = '*' AND ts >= :s AND ts < :e"))
        assert value["api_requests"] == sql("SELECT SUM(requests) FROM ops_request_minutes WHERE minute >= :s AND minute < :e")
        assert value["error_rate_percent"] == pytest.approx(sql(
            "SELECT 100.0 * SUM(c5xx) / SUM(requests) FROM ops_request_minutes WHERE minute >= :s AND minute < :e"))
        assert value["qps_avg"] == pytest.approx(sql(
            "SELECT AVG(value) FROM ops_metric_samples WHERE metric = 'mysql.queries_per_s' AND ts >= :s AND ts < :e"))
        assert value["jobs_failed"] == sql(
            "SELECT COUNT(*) FROM ops_job_runs WHERE state = 'FAILURE' AND started_at >= :s AND started_at < :e")
    # The previous day's incident that is still open counts as open in this day too.
    assert value["incidents_opened"] == 2 and value["incidents_open"] == 2
    assert value["availability:web1"] == pytest.approx(100 * 288 / 5760)
    assert pd.read_csv(folder / "incidents.csv").shape[0] == 3
    jobs = pd.read_csv(folder / "job_runs.csv")
    assert set(jobs.columns) >= {"task", "runs", "failures", "p95_duration_s"} and jobs.runs.sum() == 60
    with engine_for(settings.ops_db_url).connect() as conn:
        row = conn.execute(select(reports).where(reports.c.kind == "daily", reports.c.period_start ==
                                                 dt.datetime.combine(DAY, dt.time()))).mappings().one()
    assert row["outcome"] == "written" and len(json.loads(row["files"])) == result["files"]
    assert all(len(f["sha256"]) == 64 for f in json.loads(row["files"]))


def test_weekly_and_monthly_and_summary_render(report_settings, demo_app_db):
    settings = report_settings()
    for kind in ("weekly", "monthly"):
        export(settings, kind, DAY, email=False)
        html = next((settings.reports_dir / kind).glob("*/report.html")).read_text()
        parsed = Sections()
        parsed.feed(html)
        assert parsed.svgs == 9 and "kpis" in parsed.ids
    summary = export(settings, "summary", dt.datetime.utcnow().date() - dt.timedelta(days=1), email=False)
    folder = settings.reports_dir / "summary"
    by_type = pd.read_csv(next(folder.glob("*/by_device_type.csv")))
    assert {"device_type", "average_power_kw", "energy_kwh", "load_factor_percent"} <= set(by_type.columns)
    assert summary["files"] == 3


def test_an_empty_period_says_so_in_each_section(report_settings):
    settings = report_settings()
    export(settings, "daily", dt.date(2020, 1, 1), email=False)
    html = (settings.reports_dir / "daily" / "2020-01-01" / "report.html").read_text()
    assert "<svg" not in html
    for phrase in ("No metrics were sampled", "No slow-query digests", "No incidents", "No job ran"):
        assert phrase in html
    assert pd.read_csv(settings.reports_dir / "daily" / "2020-01-01" / "kpis.csv").value.isna().sum() >= 9


def test_the_email_carries_charts_by_content_id_and_the_csvs(report_settings):
    port = free_port()
    controller, inbox = smtp_server(port)
    try:
        settings = report_settings(port)
        result = export(settings, "daily", DAY, email=True)
        assert result["email"] == "sent"
        deadline = time.monotonic() + 10
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        msg = inbox.messages[0]
    finally:
        controller.stop()
    assert msg.get_content_type() == "multipart/mixed"
    alternative = msg.get_payload()[0]
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, related = alternative.get_payload()
    assert text_part.get_content_type() == "text/plain" and "API requests" in text_part.get_content()
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    html = html_part.get_content()
    assert len(html.encode()) < 100_000
    parsed = Sections()
    parsed.feed(html)
    cids = {img["src"][4:] for img in parsed.imgs}
    assert len(cids) == 9 and all(img.get("alt") for img in parsed.imgs)
    assert {i["Content-ID"].strip("<>") for i in images} == cids
    assert all(i.get_content_type() == "image/png" for i in images)
    attachments = [p.get_filename() for p in msg.get_payload()[1:]]
    assert "kpis.csv" in attachments and "incidents.csv" in attachments


def test_smtp_down_keeps_the_report_and_records_the_failure(report_settings):
    settings = report_settings(free_port())  # nothing listens there
    with pytest.raises(TransientError):
        export(settings, "daily", DAY, email=True)
    folder = settings.reports_dir / "daily" / DAY.isoformat()
    assert (folder / "report.html").is_file() and (folder / "kpis.csv").is_file()
    with engine_for(settings.ops_db_url).connect() as conn:
        row = conn.execute(select(reports).where(reports.c.kind == "daily", reports.c.period_start ==
                                                 dt.datetime.combine(DAY, dt.time()))).mappings().one()
    assert row["outcome"] == "mail_failed" and "cannot send mail through 127.0.0.1" in row["error"]


def test_the_report_renders_in_a_real_browser(report_settings, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)", pytrace=False)
    settings = report_settings()
    export(settings, "daily", DAY, email=False)
    page = settings.reports_dir / "daily" / DAY.isoformat() / "report.html"
    shot = tmp_path / "report.png"
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,3000",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 20_000


SPARSE_DAY = dt.date(2026, 10, 7)


def test_a_day_with_a_known_history_renders_in_chromium_as_a_dba_reads_it(report_data, redis_url, tmp_path):
    """One CPU sample on a host, a gap in another's, a query digest and an index created for it
    with its before/after: in headless Chromium every chart's axis is the whole day, a lone sample is
    a marker, a gap stays a gap, counts are integers, and section 4 lists the index change."""
    from pelbiot_jobs.db.ops_models import index_changes, recommendations
    from tests.helpers import render_in_chromium

    start = dt.datetime.combine(SPARSE_DAY, dt.time())
    engine = engine_for(report_data["ops"])
    with engine.begin() as conn:
        conn.execute(insert(metric_samples), [
            {"metric": "host.cpu_percent", "host": "lone1", "ts": start + dt.timedelta(hours=10), "value": 42.0}] + [
            {"metric": "host.cpu_percent", "host": "gappy1", "ts": start + dt.timedelta(minutes=5 * i), "value": 30.0}
            for i in list(range(0, 36)) + list(range(200, 288))])  # nothing from 03:00 to 16:40
        conn.execute(insert(job_runs), [{"task_id": f"sparse-{k}", "attempt": 0, "task": "cache.warm",
                                         "trigger": "beat", "state": "SUCCESS", "started_at": start + dt.timedelta(hours=k),
                                         "finished_at": start + dt.timedelta(hours=k, seconds=1), "duration_s": 1.0,
                                         "error": None} for k in range(3)])
        conn.execute(insert(index_changes), [{
            "run_id": "sparse-day", "table_name": "load_profiles", "index_name": "idx_load_profiles_created_at_peak",
            "statement": "ALTER TABLE `load_profiles` ADD INDEX `idx_load_profiles_created_at_peak` (`created_at`, "
                         "`peak`), ALGORITHM=INPLACE, LOCK=NONE",
            "started_at": start + dt.timedelta(hours=3), "finished_at": start + dt.timedelta(hours=3, seconds=2),
            "duration_s": 2.0, "outcome": "created",
            "reason": "advisor: range on created_at; sargable rewrite (query 55EAF920E0E331BA)",
            "target_query": "SELECT MAX(peak) FROM load_profiles WHERE created_at >= '2026-10-06' AND created_at < "
                            "'2026-10-06' + INTERVAL '1' DAY",
            "explain_rows_before": 47376, "explain_rows_after": 240, "latency_ms_before": 31.5,
            "latency_ms_after": 0.4}])
        conn.execute(insert(recommendations), [{
            "day": start + dt.timedelta(hours=4), "code": "buffer_pool_small", "severity": "warning",
            "message": "innodb_buffer_pool_size (128 MB) is smaller than the InnoDB data (2.1 GB)",
            "evidence": "{}"}])
    env = service_env(report_data, redis_url, tmp_path) | {"PELBIOT_REPORTS_DIR": str(tmp_path / "reports")}
    settings = load_settings(env, cwd=tmp_path)
    export(settings, "daily", SPARSE_DAY, email=False)
    page = settings.reports_dir / "daily" / SPARSE_DAY.isoformat() / "report.html"
    dom = render_in_chromium(page.as_uri(), tmp_path / "profile", screenshot=tmp_path / "report.png",
                             size="1000,3200")
    import re

    [cpu] = [svg for svg in re.findall(r"<svg.*?</svg>", dom, re.S) if "CPU per host" in svg]
    ticks = re.findall(r">([A-Z][a-z]{2}-\d\d|\d\d:\d\d)<", cpu)
    # The axis is the whole day, labelled with that day alone (no tick or offset of the next one).
    assert ticks[0] == "Oct-07" and ticks[-1] == "20:00" and len(ticks) >= 6 and "Oct-08" not in cpu
    assert f">{SPARSE_DAY.isoformat()} (UTC)<" in cpu
    assert "<use" in cpu  # the lone sample of lone1 is a marker
    section = re.search(r'<section id="indexes">(.*?)</section>', dom, re.S).group(1)
    assert "load_profiles.idx_load_profiles_created_at_peak" in section and "47,376 → 240" in section
    assert "31.5 ms → 0.4 ms" in section and "buffer_pool_small" in section
    kpis = re.search(r'<section id="kpis">(.*?)</section>', dom, re.S).group(1)
    assert re.search(r"<td>Jobs run</td><td class=\"num\">3</td>", kpis)  # a count, not 3.00
    assert "within 1 %" in kpis  # the legend of the arrows
