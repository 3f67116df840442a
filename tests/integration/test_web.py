"""The operator's web view, as a browser and Prometheus reach it: the real `pelbiot-jobs web` process
on the MariaDB ops database; authentication, CSRF, every page with data, an incident acknowledged
through its form (the change read back from the database), /metrics parsed by prometheus-client,
and the pages rendered by headless Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import shutil
import subprocess
import sys
import uuid
from http.cookiejar import CookieJar
from urllib import error, parse, request

import pytest
from sqlalchemy import insert, select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import (cache_warm_runs, incidents, index_changes, metric_rollups, metric_samples,
                                       query_digests, recommendations, reports)
from pelbiot_jobs.lib.clock import utcnow
from tests.conftest import ROOT, clean_environ, free_port, service_env
from tests.e2e.conftest import pj
from tests.helpers import click_in_chromium, open_incident, render_in_chromium, wait_for_port

USER, PASSWORD = "ops", "w3b-test-pässword"


@pytest.fixture(scope="module")
def web(ops_schema, tmp_path_factory):
    """A `pelbiot-jobs web` process with data to show: a host's samples and score, an open
    incident, a slow-query digest, an index change and a report with its files."""
    from pelbiot_jobs.config import load_settings
    from pelbiot_jobs.health.service import score

    tmp = tmp_path_factory.mktemp("web")
    port = free_port()
    # The web view reads the ops DB only; the broker URL is never connected to.
    env = clean_environ() | service_env(ops_schema, "redis://127.0.0.1:6379/14", tmp) | {
        "PELBIOT_WEB_USER": USER, "PELBIOT_WEB_PASSWORD": PASSWORD, "PELBIOT_WEB_PORT": str(port)}
    settings = load_settings(env, cwd=tmp)
    ops = ops_schema["ops"]
    host = f"web-{uuid.uuid4().hex[:6]}"
    now = utcnow()
    with engine_for(ops).begin() as conn:
        conn.execute(insert(metric_samples), [
            {"metric": m, "host": host, "ts": now - dt.timedelta(minutes=k), "value": v + k}
            for k in range(30) for m, v in (("host.cpu_percent", 40.0), ("host.memory_percent", 60.0))])
        conn.execute(insert(query_digests).values(
            source="file", query_id="ABCDEF0123456789", window_start=now.replace(minute=0, second=0, microsecond=0),
            fingerprint="select max(peak) from load_profiles where date(created_at) = ?",
            example="SELECT MAX(peak) FROM load_profiles WHERE DATE(created_at) = '?'", calls=1200,
            query_time_sum=842.5, query_time_p95=1.21, rows_examined_sum=57_600_000, rows_sent_sum=1200, slow=1,
            hist="{}", explain=json.dumps([{"table": "load_profiles", "type": "ALL", "rows": 48000}]),
            explain_flags="full_scan"))
        from pelbiot_jobs.db.ops_models import query_slices
        from pelbiot_jobs.queries.analyze import slice_row
        from pelbiot_jobs.queries.tags import canonical

        hour = now.replace(minute=0, second=0, microsecond=0)
        conn.execute(insert(query_slices), [  # who sent it: two routes of the API account, one of them hostile
            slice_row("file", "ABCDEF0123456789", hour, "pelbiot_api", host, "pelbiot",
                      canonical({b"route": route.encode()}).decode(), [calls, seconds, 0.0, calls * 48000, calls, 0])
            for route, calls, seconds in (("/api/reports/daily", 1100, 800.0),
                                          ("<script>alert(1)</script>", 100, 42.5))])
        conn.execute(insert(index_changes).values(
            run_id="web-test", table_name="load_profiles", index_name="idx_lp_created", outcome="created",
            statement="ALTER TABLE load_profiles ADD INDEX idx_lp_created (created_at)", started_at=now,
            duration_s=1.5, explain_rows_before=48000, explain_rows_after=120, latency_ms_before=310.0,
            latency_ms_after=4.2, reason="advisor: full scan of load_profiles by created_at (query ABCDEF0123456789)"))
        conn.execute(insert(recommendations).values(
            day=now, code="accounts_without_password", category="security", severity="critical",
            subject=f"'{host}'@'%'", message=f"'{host}'@'%' has no password", first_seen=now, evidence="{}",
            fix=f"ALTER USER '{host}'@'%' IDENTIFIED BY '<new>';"))
        warmer = f"web-test-{uuid.uuid4().hex[:6]}"
        conn.execute(insert(cache_warm_runs).values(run_id="web-test", warmer=warmer, started_at=now, finished_at=now,
                                                    duration_s=0.2, keys=42, bytes=4200))
        # A day no other test reports on (the ops DB keeps one report per kind and period).
        day = dt.date(2001, 1, 1) + dt.timedelta(days=random.randrange(5000))
        folder = tmp / "reports" / "daily" / day.isoformat()
        folder.mkdir(parents=True)
        (folder / "report.html").write_text(f"<html><body><h1>Daily report {day}</h1></body></html>")
        (folder / "kpis.csv").write_text("kpi,value\nuptime,99.9\n")
        report_id = conn.execute(insert(reports).values(
            kind="daily", period_start=dt.datetime.combine(day, dt.time()),
            period_end=dt.datetime.combine(day + dt.timedelta(days=1), dt.time()),
            created_at=now, path=str(folder), outcome="written",
            files=json.dumps([{"name": "report.html", "bytes": 1}, {"name": "kpis.csv", "bytes": 1}]))).inserted_primary_key[0]
    score(settings)
    incident_id = open_incident(ops, host)
    log = open(tmp / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "web"], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, proc, tmp / "web.log")
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "host": host, "incident": incident_id, "ops": ops,
           "report": report_id, "env": env, "tmp": tmp, "warmer": warmer,
           "day": day}
    proc.terminate()
    proc.wait(30)


def fetch(url, auth=(USER, PASSWORD), data=None, cookies=None, headers=None):
    """(status, headers, body) of one request; no redirect followed."""
    class Keep(request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    handlers = [Keep()] + ([request.HTTPCookieProcessor(cookies)] if cookies is not None else [])
    req = request.Request(url, data=parse.urlencode(data).encode() if data is not None else None,
                          headers=dict(headers or {}))
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with request.build_opener(*handlers).open(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
    except error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode("utf-8", "replace")


PAGES = ["/", "/samples", "/incidents", "/queries", "/indexes", "/reports", "/metrics"]


def test_every_page_needs_the_credentials(web):
    for path in PAGES + ["/queries/ABCDEF0123456789", f"/reports/{web['report']}/report.html"]:
        status, headers, body = fetch(web["url"] + path, auth=None)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic"), path
        assert PASSWORD not in body
        assert fetch(web["url"] + path, auth=(USER, "wrong"))[0] == 401, path
    assert fetch(web["url"] + "/healthz", auth=None)[:3:2] == (200, "ok\n")  # for health checks: nothing else


def test_every_page_shows_its_data_and_no_secret(web):
    expected = {
        "/": ["Overview", "health, all hosts", "Open incidents", web["host"], "report.html", "critical finding",
              f"&#39;{web['host']}&#39;@&#39;%&#39; has no password", "IDENTIFIED BY"],
        f"/samples?host={web['host']}&window=1h": ["host.cpu_percent", "host.memory_percent", "<svg", "<polyline"],
        "/incidents": ["Acknowledge", "cpu_high", web["host"], "Silence", 'name="_xsrf"'],
        "/queries": ["ABCDEF0123456789", "select max(peak) from load_profiles", "full_scan"],
        "/queries/ABCDEF0123456789": ["EXPLAIN", "48000", "load_profiles", "idx_lp_created", "310.00 → 4.20",
                                      "Who sends it", "pelbiot_api", "route=/api/reports/daily"],
        "/queries?by=tag:route&window=1h": ["/api/reports/daily", "800.000", "ABCDEF0123456789",
                                            "&lt;script&gt;alert(1)&lt;/script&gt;",
                                            "tag=route%3D%2Fapi%2Freports%2Fdaily"],
        "/queries?by=user&window=1h": ["pelbiot_api", "842.500", "user=pelbiot_api"],
        "/queries?tag=route%3D%2Fapi%2Freports%2Fdaily&window=1h": ["ABCDEF0123456789", "800.000", "1,100"],
        "/indexes": ["idx_lp_created", "48,000", "120", "created"],
        "/reports": ["daily", "report.html", "kpis.csv"],
    }
    for path, texts in expected.items():
        status, headers, body = fetch(web["url"] + path)
        assert status == 200, (path, body[-500:])
        for text in texts:
            assert text in body, (path, text)
        assert "script" not in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
        assert "<script" not in body.lower() and PASSWORD not in body, path


def test_an_incident_is_acknowledged_through_its_form(web):
    jar = CookieJar()
    status, _, page = fetch(web["url"] + "/incidents", cookies=jar)
    token = re.search(r'action="/incidents/%d/ack">\s*<input type="hidden" name="_xsrf" value="([^"]+)"'
                      % web["incident"], page).group(1)
    status, headers, _ = fetch(f"{web['url']}/incidents/{web['incident']}/ack", data={"_xsrf": token, "ack": "1"},
                               cookies=jar)
    assert status == 303 and headers["Location"] == "/incidents"
    with engine_for(web["ops"]).connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == web["incident"])).mappings().one()
    assert (row["status"], row["acknowledged_by"]) == ("acknowledged", f"web:{USER}")


def test_an_operator_acknowledges_an_incident_in_a_real_browser(web, tmp_path):
    """Headless Chromium opens the incidents page, an operator clicks Acknowledge: the form (with
    its token, the browser's cookie and login) lands, and the change is in the ops database."""
    incident_id = open_incident(web["ops"], f"click-{uuid.uuid4().hex[:6]}")
    base = f"http://{USER}:{parse.quote(PASSWORD)}@127.0.0.1:{web['port']}"
    landed = click_in_chromium(base + "/incidents", f'form[action="/incidents/{incident_id}/ack"] button',
                               tmp_path / "profile")
    assert landed.endswith("/incidents")
    with engine_for(web["ops"]).connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().one()
    assert (row["status"], row["acknowledged_by"], row["hold"]) == ("acknowledged", f"web:{USER}", 0)


def test_a_forged_cross_site_post_is_refused(web):
    """Another site's page can make the browser POST with its cached credentials, but it cannot
    read the XSRF token: without it (or with a made-up one) nothing changes."""
    incident_id = open_incident(web["ops"], f"forged-{uuid.uuid4().hex[:6]}")
    target = f"{web['url']}/incidents/{incident_id}/resolve"
    assert fetch(target, data={}, headers={"Origin": "https://evil.example"})[0] == 403
    jar = CookieJar()
    fetch(web["url"] + "/incidents", cookies=jar)  # the browser holds the cookie, the forger not the token
    assert fetch(target, data={"_xsrf": "2|00000000|" + "0" * 32 + "|1700000000"}, cookies=jar)[0] == 403
    with engine_for(web["ops"]).connect() as conn:
        assert conn.execute(select(incidents.c.status).where(incidents.c.id == incident_id)).scalar() == "open"


def test_prometheus_scrapes_metrics(web):
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, body = fetch(web["url"] + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    for name in ("pelbiot_health_score", "pelbiot_health_component_score", "pelbiot_metric_value", "pelbiot_job_runs",
                 "pelbiot_job_last_success_timestamp_seconds", "pelbiot_incidents_open", "pelbiot_slow_query_classes"):
        assert name in families, name
    assert families["pelbiot_job_runs"].type == "counter"
    scores = {s.labels["host"]: s.value for s in families["pelbiot_health_score"].samples}
    assert "*" in scores and 0 <= scores["*"] <= 100
    critical = [s.value for s in families["pelbiot_incidents_open"].samples if s.labels["severity"] == "critical"]
    assert critical and critical[0] >= 1
    cpu = [s for s in families["pelbiot_metric_value"].samples
           if s.labels == {"host": web["host"], "metric": "host.cpu_percent"}]
    assert cpu and cpu[0].value == 97.0  # the newest sample (the incident's)
    warmed = [s.value for s in families["pelbiot_cache_warm_keys"].samples if s.labels["warmer"] == web["warmer"]]
    assert warmed == [42.0]
    # The Grafana dashboard in docs/ asks only for series this endpoint gives.
    samples = {f.name + ("_total" if f.type == "counter" else "") for f in families.values()}
    dashboard = json.loads((ROOT / "docs" / "grafana" / "pelbiot-jobs.json").read_text())
    asked = {name for p in dashboard["panels"] for t in p["targets"] for name in re.findall(r"pelbiot_[a-z_]+", t["expr"])}
    assert asked and asked <= samples, asked - samples


def test_report_files_are_served_and_nothing_else(web):
    status, headers, body = fetch(f"{web['url']}/reports/{web['report']}/report.html")
    assert status == 200 and f"Daily report {web['day']}" in body and headers["Content-Type"].startswith("text/html")
    status, headers, body = fetch(f"{web['url']}/reports/{web['report']}/kpis.csv")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="kpis.csv"'
    for name in ("..%2f..%2f..%2fetc%2fpasswd", "secret.html", "web.log"):
        assert fetch(f"{web['url']}/reports/{web['report']}/{name}")[0] in (400, 404), name


def test_the_web_view_never_starts_open_by_accident(web, tmp_path):
    env = {k: v for k, v in web["env"].items() if not k.startswith("PELBIOT_WEB_")}
    done = pj("web", "--address", "0.0.0.0", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "will not start without authentication" in done.stderr
    done = pj("web", "--unauthenticated", "--address", "0.0.0.0", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "may only listen on 127.0.0.1" in done.stderr


def test_the_pages_render_in_headless_chromium(web, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)", pytrace=False)
    base = f"http://{USER}:{parse.quote(PASSWORD)}@127.0.0.1:{web['port']}"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp_path / 'p'}"]
    for path, text in (("/", "Open incidents"), ("/samples?window=1h&host=" + web["host"], "host.cpu_percent"),
                       ("/incidents", "Acknowledge"), ("/queries", "ABCDEF0123456789"), ("/indexes", "idx_lp_created"),
                       ("/reports", "kpis.csv")):
        done = subprocess.run(flags + ["--dump-dom", base + path], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and text in done.stdout, (path, done.stdout[-300:], done.stderr[-500:])
    shot = tmp_path / "overview.png"
    done = subprocess.run(flags + ["--window-size=1280,1600", f"--screenshot={shot}", base + "/"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-500:]


def test_flower_serves_the_web_view_from_its_own_process(web, tmp_path):
    """What `up` runs: one Tornado process for Flower and the web view (docs/benchmarks.md: memory)."""
    flower_port, web_port = free_port(), free_port()
    env = web["env"] | {"PELBIOT_FLOWER_USER": "flower", "PELBIOT_FLOWER_PASSWORD": "fl0wer-pw",
                        "PELBIOT_FLOWER_PORT": str(flower_port), "PELBIOT_WEB_PORT": str(web_port)}
    log = open(tmp_path / "flower.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "flower", "--with-web"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(flower_port, proc, tmp_path / "flower.log")
        wait_for_port(web_port, proc, tmp_path / "flower.log")
        assert fetch(f"http://127.0.0.1:{web_port}/incidents", auth=None)[0] == 401
        status, _, body = fetch(f"http://127.0.0.1:{web_port}/incidents")
        assert status == 200 and "cpu_high" in body
        assert fetch(f"http://127.0.0.1:{flower_port}/", auth=None)[0] == 401  # Flower keeps its own login
        assert fetch(f"http://127.0.0.1:{flower_port}/", auth=("flower", "fl0wer-pw"))[0] == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_what_is_not_there_is_a_404_and_a_bad_parameter_a_400(web):
    """A typed NotFound from the services is the web view's 404 (never matched by its text)."""
    for path in ("/queries/FFFFFFFFFFFFFFFF", f"/reports/{10**15}/report.html", "/no/such/page"):
        status, _, body = fetch(web["url"] + path)
        assert status == 404, (path, status)
        assert "internal error" not in body
    status, _, body = fetch(web["url"] + "/samples?window=3y")
    assert status == 400 and "window" in body
    body = fetch(web["url"] + "/queries?by=tag:route&window=1h")[2]
    assert "<script>alert(1)</script>" not in body  # a route is data: escaped, never markup
    for query, words in (("by=route", "tag:NAME"), ("by=tag:x%27y", "tag:NAME"), ("tag=route", "NAME=VALUE")):
        status, _, body = fetch(web["url"] + "/queries?" + query)
        assert status == 400 and words in body, (query, status)


def test_a_rule_is_switched_off_and_on_through_its_form(web):
    from pelbiot_jobs.db.ops_models import rule_toggles

    jar = CookieJar()
    page = fetch(web["url"] + "/incidents", cookies=jar)[2]
    token = re.search(r'action="/rules/toggle">\s*<input type="hidden" name="_xsrf" value="([^"]+)"', page).group(1)
    try:
        status, headers, _ = fetch(web["url"] + "/rules/toggle", data={"_xsrf": token, "rule": "memory_high",
                                                                       "enabled": "0", "reason": "swap test"})
        assert status == 303
        with engine_for(web["ops"]).connect() as conn:
            row = conn.execute(select(rule_toggles).where(rule_toggles.c.rule == "memory_high")).mappings().one()
        assert (row["enabled"], row["changed_by"], row["reason"]) == (0, f"web:{USER}", "swap test")
        page = fetch(web["url"] + "/incidents")[2]
        assert "off by web:ops" in page and "swap test" in page and "Switch on" in page
        assert fetch(web["url"] + "/rules/toggle", data={"_xsrf": token, "rule": "no_such_rule",
                                                         "enabled": "0"})[0] == 404
    finally:
        with engine_for(web["ops"]).begin() as conn:  # the session's other tests evaluate this rule
            conn.execute(rule_toggles.delete().where(rule_toggles.c.rule == "memory_high"))


def test_the_jobs_page_lists_the_jobs_their_runs_and_asks_before_an_effect(web, tmp_path):
    import redis

    from pelbiot_jobs.db.ops_models import job_runs

    now = utcnow()
    with engine_for(web["ops"]).begin() as conn:
        conn.execute(insert(job_runs), [
            {"task_id": f"webjob-{uuid.uuid4().hex[:8]}", "attempt": 0, "task": "db.table_stats",
             "job": "db.table_stats", "trigger": "beat", "state": state, "started_at": now - dt.timedelta(hours=k),
             "finished_at": now - dt.timedelta(hours=k) + dt.timedelta(seconds=2), "duration_s": 2.0 + k / 10,
             "error": "OperationalError: (2013) Lost connection" if state == "FAILURE" else None}
            for k, state in enumerate(["SUCCESS", "FAILURE", "SUCCESS", "SUCCESS"])])
    status, _, page = fetch(web["url"] + "/jobs")
    assert status == 200 and 'href="/jobs/db.table_stats"' in page and "Run now" in page
    assert "Lost connection" in page  # the failure, with its error
    status, _, page = fetch(web["url"] + "/jobs/db.table_stats")
    assert status == 200 and page.count("<tr>") >= 5 and "run duration, 7 days" in page
    assert fetch(web["url"] + "/jobs/no.such.job")[0] == 404
    token = re.search(r'action="/jobs/db.optimize/run">\s*<input type="hidden" name="_xsrf" value="([^"]+)"',
                      fetch(web["url"] + "/jobs")[2]).group(1)
    broker = redis.Redis.from_url("redis://127.0.0.1:6379/14")
    queued = broker.llen("maintenance")
    # db.optimize runs ANALYZE on the app DB: the first POST asks, naming it; nothing is sent
    status, _, page = fetch(web["url"] + "/jobs/db.optimize/run", data={"_xsrf": token})
    assert status == 200 and "ANALYZE TABLE on the app DB" in page and broker.llen("maintenance") == queued
    status, headers, _ = fetch(web["url"] + "/jobs/db.optimize/run",
                               data={"_xsrf": token, "confirm": "ANALYZE TABLE on the app DB"})
    assert status == 303 and headers["Location"].startswith("/jobs/db.optimize?sent=")
    assert broker.llen("maintenance") == queued + 1
    # one without an outside effect is sent at once
    status, headers, _ = fetch(web["url"] + "/jobs/db.table_stats/run", data={"_xsrf": token})
    assert status == 303 and broker.llen("maintenance") == queued + 2
    broker.delete("maintenance")
    dom = render_in_chromium(f"http://{USER}:{parse.quote(PASSWORD)}@127.0.0.1:{web['port']}/jobs",
                             tmp_path / "profile", tmp_path / "jobs.png")
    assert "db.table_stats" in dom and "Failures" in dom and "<script" not in dom.lower()


def test_a_fleet_overview_charts_the_lowest_hosts_and_lists_every_host_worst_first(fresh_mysql_db, tmp_path):
    """Twelve hosts scored every minute for a day (a dip of host h07 to 3 at one minute): the
    Overview charts the installation and the eight hosts scoring lowest now, each point the lowest
    of its minutes (the one-minute dip shows), and lists all twelve, the lowest first. The Metrics
    page offers exactly the hosts with samples in its window."""
    from pelbiot_jobs.db import migrate
    from pelbiot_jobs.db.ops_models import health_scores

    url = fresh_mysql_db()
    migrate.upgrade(url)
    now = utcnow().replace(second=0, microsecond=0)
    scores = {f"h{i:02d}": 90.0 - 5 * i for i in range(12)}  # h11 lowest, h00 highest
    components = json.dumps({"of": 1, "components": [{"name": "cpu", "value": 40.0, "score": 100,
                                                      "missing": False, "weight": 1}]})
    rows = [{"host": host, "ts": now - dt.timedelta(minutes=m), "status": "GOOD", "present": 1,
             "components": components, "score": 3.0 if (host, m) == ("h07", 600) else value}
            for host, value in list(scores.items()) + [("*", 70.0)] for m in range(1440)]
    with engine_for(url).begin() as conn:
        conn.execute(insert(health_scores), rows)
        conn.execute(insert(metric_samples), [{"metric": "host.cpu_percent", "host": h, "ts": now - dt.timedelta(minutes=m),
                                              "value": 10.0} for h, m in (("h01", 5), ("h02", 200), ("h03", 3000))])
    port = free_port()
    env = clean_environ() | {"PELBIOT_OPS_DB_URL": url, "PELBIOT_APP_DB_URL": url, "PELBIOT_WEB_USER": USER,
                             "PELBIOT_WEB_PASSWORD": PASSWORD, "PELBIOT_WEB_PORT": str(port),
                             "PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/14"}
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "web"], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, proc, tmp_path / "web.log")
        status, _, body = fetch(f"http://127.0.0.1:{port}/")
        assert status == 200
        charted = re.findall(r'aria-label="health ([^"]+)"', body)
        assert charted == ["*"] + [f"h{i:02d}" for i in range(4, 12)], charted  # dictsort: "*" first
        assert "the 8 scoring lowest now, of 12" in body
        table = body[body.index("Per host"):body.index("Last 24 hours")]
        assert [m for m in re.findall(r"<td>(h\d\d)</td>", table)] == [f"h{i:02d}" for i in range(11, -1, -1)]
        chart = body[body.index('aria-label="health h07"'):]
        chart = chart[:chart.index("</svg>")]
        points = re.search(r'points="([^"]+)"', chart).group(1).split()
        assert len(points) <= 360
        ys = [float(p.split(",")[1]) for p in points]
        assert max(ys) - min(ys) > 50  # the dip to 3 is drawn, not averaged away
        with engine_for(url).begin() as conn:  # h04 rolled up two days ago, h05 ten days ago
            conn.execute(insert(metric_rollups), [
                {"metric": "host.cpu_percent", "host": h, "hour": (now - dt.timedelta(days=d)).replace(minute=0),
                 "samples": 240, "min": 1.0, "avg": 2.0, "max": 3.0, "p95": 3.0} for h, d in (("h04", 2), ("h05", 10))])
        for window, hosts in (("1h", ["h01"]), ("24h", ["h01"]), ("7d", ["h01", "h04"])):
            status, _, body = fetch(f"http://127.0.0.1:{port}/samples?window={window}")
            offered = re.findall(r'>(h\d\d)</(?:a|strong)>', body)
            assert status == 200 and offered == hosts, (window, offered)
    finally:
        proc.terminate()
        proc.wait(30)
