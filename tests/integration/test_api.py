"""The REST API as a script, PELBIOT's admin panel or curl reach it: a real `pelbiot-jobs web` on a
MariaDB ops DB holding the demo week, a real worker on Redis, tokens made with the CLI."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from urllib import error, request

import pytest
from sqlalchemy import func, insert, select

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import alert_states, job_runs, metric_samples
from pelbiot_jobs.demo.history import write_history
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.web.api import BASE, ROUTES
from tests.conftest import ROOT, clean_environ, free_port, service_env
from tests.e2e.conftest import pj
from tests.helpers import wait_for_port

#: A Redis database of this module's own: the broker of its web process and worker.
BROKER = "redis://127.0.0.1:6379/12"
USER, PASSWORD = "ops", "api-t3st-pw"


@pytest.fixture(scope="module")
def api(ops_schema, demo_app_db, fresh_mysql_db, tmp_path_factory):
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    tmp = tmp_path_factory.mktemp("api")
    ops = fresh_mysql_db()
    migrate.upgrade(ops)
    write_history(engine_for(ops), utcnow())
    port = free_port()
    env = clean_environ() | service_env(ops_schema, BROKER, tmp) | {
        "PELBIOT_OPS_DB_URL": ops, "PELBIOT_WEB_USER": USER, "PELBIOT_WEB_PASSWORD": PASSWORD,
        "PELBIOT_WEB_PORT": str(port)}
    from pelbiot_jobs.tuning.service import record_table_stats

    record_table_stats(load_settings(env, cwd=tmp))  # what db.table_stats records hourly
    tokens = {}
    for name, scope, extra in (("reader", "read", ()), ("writer", "write", ()), ("gone", "write", ()),
                               ("brief", "read", ("--days", "0.00001"))):
        done = pj("api", "token", "create", name, "--scope", scope, *extra, env=env, cwd=tmp, timeout=60)
        assert done.returncode == 0, done.stderr
        tokens[name] = done.stdout.strip()
    assert pj("api", "token", "revoke", "gone", env=env, cwd=tmp, timeout=60).returncode == 0
    log = open(tmp / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "web"], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, proc, tmp / "web.log")
    workers = [start_worker(env, tmp)]
    yield {"url": f"http://127.0.0.1:{port}", "tokens": tokens, "env": env, "tmp": tmp, "ops": ops,
           "settings": load_settings(env, cwd=tmp), "log": tmp / "web.log", "workers": workers}
    for p in [proc] + workers:
        if p.poll() is None:
            p.terminate()
    for p in [proc] + workers:
        p.wait(60)


def start_worker(env, tmp):
    log = open(tmp / "worker.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "worker", "-c", "2"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def call(api, method, path, token="reader", body=None, headers=None, raw: bytes | None = None):
    """(status, answer) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = request.Request(api["url"] + path, data=data, method=method, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"Bearer {api['tokens'].get(token, token)}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


GETS = [r.path for r in ROUTES if r.method == "GET" and "{" not in r.path]
#: What the demo week leaves empty (its one incident resolved); each is filled before it is read.
FILLED_HERE = {"/monitoring/alerts/active", "/monitoring/incidents/open"}


@pytest.mark.parametrize("path", GETS)
def test_every_get_answers_the_envelope_with_real_data(api, path):
    if path in FILLED_HERE:
        from tests.helpers import open_incident

        open_incident(api["ops"], f"api-{uuid.uuid4().hex[:6]}")
        with engine_for(api["ops"]).begin() as conn:
            conn.execute(insert(alert_states).values(rule="cpu_high", host=f"api-{uuid.uuid4().hex[:6]}",
                                                     state="firing", since=utcnow(), evaluated_at=utcnow(),
                                                     value=97.0))
    status, answer = call(api, "GET", BASE + path)
    assert status == 200 and answer["success"] is True, (path, answer)
    assert answer["data"] not in (None, [], {}), path


def test_the_answers_hold_the_demo_week(api):
    data = {p: call(api, "GET", BASE + p)[1]["data"] for p in
            ("/performance/metrics", "/database/slow-queries", "/monitoring/dashboard", "/jobs/runs",
             "/monitoring/rules", "/performance/trend?minutes=10080")}
    assert {m["host"] for m in data["/performance/metrics"]["metrics"]} >= {"demo-web1", "demo-db1"}
    assert data["/database/slow-queries"] and all("query_id" in q for q in data["/database/slow-queries"])
    assert data["/monitoring/dashboard"]["health"]["overall"]["score"] is not None
    assert len(data["/jobs/runs"]["items"]) == 100 and data["/jobs/runs"]["next_cursor"]
    assert {r["name"] for r in data["/monitoring/rules"]} >= {"cpu_high", "memory_high"}
    trend = data["/performance/trend?minutes=10080"]["scores"]
    assert trend["*"] and {"demo-web1", "demo-db1"} <= set(trend)
    assert max(len(points) for points in trend.values()) <= 96  # a day in 15-minute steps unless asked
    one = call(api, "GET", BASE + "/performance/trend?minutes=10080&host=demo-web1&points=7")[1]["data"]["scores"]
    assert set(one) == {"demo-web1", "*"} and 1 < len(one["demo-web1"]) <= 7
    summary = call(api, "GET", BASE + "/monitoring/metrics/summary?minutes=10080")[1]["data"]["hosts"]
    latest = {(m["host"], m["metric"]): m["latest"] for m in
              call(api, "GET", BASE + "/performance/metrics?minutes=10080")[1]["data"]["metrics"]}
    assert latest and {(h, k): v for h, ms in summary.items() for k, v in ms.items()} == latest
    # the demo's query time by the API route PELBIOT tagged its queries with; one route's classes; a bad grouping
    by_route = call(api, "GET", BASE + "/database/slow-queries?minutes=10080&by=tag:route")[1]["data"]
    routes = {r["value"]: r for r in by_route}
    from pelbiot_jobs.demo.history import ROUTES

    assert set(routes) == set(ROUTES) and by_route[0]["value"] == "/api/reports/daily"
    assert all(r["calls"] > 0 and r["worst"]["fingerprint"] for r in by_route)
    one = call(api, "GET", BASE + "/database/slow-queries?minutes=10080&tag=route%3D%2Fapi%2Falerts")[1]["data"]
    assert [r["fingerprint"][:22] for r in one] == ["select a.*, d.name as "]
    assert one[0]["calls"] == routes["/api/alerts"]["calls"]
    status, answer = call(api, "GET", BASE + "/database/slow-queries?by=route")
    assert status == 400 and "tag:NAME" in answer["error"]
    # paging: the next page goes on where the first ended, without repeating it
    first = data["/jobs/runs"]
    second = call(api, "GET", f"{BASE}/jobs/runs?limit=100&cursor={first['next_cursor']}")[1]["data"]
    assert second["items"] and second["items"][0]["id"] < first["items"][-1]["id"]


def test_who_may_call_what(api):
    assert call(api, "GET", BASE + "/jobs", token=None)[0] == 401
    assert call(api, "GET", BASE + "/jobs", token="pj_" + "x" * 43)[0] == 401
    assert call(api, "GET", BASE + "/jobs", token="gone")[0] == 401  # revoked
    time.sleep(1.5)
    assert call(api, "GET", BASE + "/jobs", token="brief")[0] == 401  # expired after 0.86 s
    status, answer = call(api, "POST", BASE + "/database/optimize")
    assert status == 403 and "needs a write token" in answer["error"]
    status, answer = call(api, "GET", BASE + "/jobs?token=" + api["tokens"]["reader"], token=None)
    assert status == 400 and "only in the Authorization header" in answer["error"]
    basic = "Basic " + __import__("base64").b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert call(api, "GET", BASE + "/jobs", token=None, headers={"Authorization": basic})[0] == 200
    listed = json.loads(pj("api", "token", "list", "--json", env=api["env"], cwd=api["tmp"], timeout=60).stdout)
    used = {t["name"]: t for t in listed}
    assert used["reader"]["last_used_at"] and used["gone"]["revoked_at"]
    assert "token_hash" not in used["reader"] and api["tokens"]["reader"] not in api["log"].read_text()


def _wait_success(api, task_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer = call(api, "GET", f"{BASE}/jobs/{task_id}")
        if status == 200 and answer["data"]["state"] in ("SUCCESS", "FAILURE", "SKIPPED"):
            return answer["data"]
        time.sleep(0.5)
    pytest.fail(f"run {task_id} did not end in {timeout:.0f} s; " + (api["tmp"] / "worker.log").read_text()[-2000:])


def test_each_post_that_starts_a_job_runs_it_on_the_worker(api):
    for path, body in (("/database/optimize", None), ("/performance/export-report", {"kind": "daily"}),
                       ("/cache/warmup", None)):
        status, answer = call(api, "POST", BASE + path, token="writer", body=body)
        assert status == 202 and answer["data"]["status_url"] == f"{BASE}/jobs/{answer['data']['task_id']}", answer
        run = _wait_success(api, answer["data"]["task_id"])
        assert run["state"] in ("SUCCESS", "SKIPPED"), run
        assert run["attempts"][0]["trigger"] == "api"


def test_an_idempotency_key_sent_twice_starts_one_job(api):
    key = uuid.uuid4().hex
    answers = [call(api, "POST", BASE + "/database/optimize", token="writer", headers={"Idempotency-Key": key})
               for _ in range(3)]
    assert {a[0] for a in answers} == {202} and len({a[1]["data"]["task_id"] for a in answers}) == 1
    task_id = answers[0][1]["data"]["task_id"]
    _wait_success(api, task_id)
    with engine_for(api["ops"]).connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_runs).where(job_runs.c.task_id == task_id)).scalar() == 1


def test_a_rule_switched_off_stops_firing_and_on_again_fires(api):
    from pelbiot_jobs.health.service import evaluate

    settings = api["settings"]
    host = f"api-{uuid.uuid4().hex[:6]}"
    now = utcnow()
    with engine_for(api["ops"]).begin() as conn:
        conn.execute(insert(metric_samples), [{"metric": "host.cpu_percent", "host": host, "value": 99.0,
                                               "ts": now - dt.timedelta(seconds=s)} for s in range(0, 300, 15)])
    status, answer = call(api, "POST", BASE + "/monitoring/rules/cpu_high/toggle", token="writer",
                          body={"enabled": False, "reason": "load test"})
    assert status == 200 and answer["data"]["enabled"] is False
    [rule] = [r for r in call(api, "GET", BASE + "/monitoring/rules")[1]["data"] if r["name"] == "cpu_high"]
    assert rule["enabled"] is False and rule["toggled"]["changed_by"] == "api:writer"
    assert rule["toggled"]["reason"] == "load test"
    evaluate(settings, now)

    def state():
        with engine_for(api["ops"]).connect() as conn:
            return conn.execute(select(alert_states.c.state).where(alert_states.c.rule == "cpu_high",
                                                                   alert_states.c.host == host)).scalar()
    assert state() is None  # not evaluated while off
    listed = pj("rules", "list", "--json", env=api["env"], cwd=api["tmp"], timeout=60)
    assert [r for r in json.loads(listed.stdout) if r["name"] == "cpu_high"][0]["enabled"] is False
    assert call(api, "POST", BASE + "/monitoring/rules/cpu_high/toggle", token="writer",
                body={"enabled": True})[1]["data"]["enabled"] is True
    evaluate(settings, now)
    evaluate(settings, now + dt.timedelta(minutes=3))
    assert state() in ("pending", "firing")


@pytest.mark.parametrize("method, path, body, status, words", [
    ("GET", "/jobs/runs?limit=100000", None, 400, "out of range"),
    ("GET", "/performance/trend?minutes=999999999", None, 400, "out of range"),
    ("GET", "/jobs/runs?limit=abc", None, 400, "not a whole number"),
    ("GET", "/jobs/runs?cursor=Zm9v", None, 400, "cursor"),
    ("GET", "/jobs?nope=1", None, 400, "unknown parameter"),
    ("GET", "/jobs/runs?limit=1&limit=2", None, 400, "more than once"),
    ("GET", "/monitoring/incidents/1%3BDROP%20TABLE%20x/resolve", None, 404, "no endpoint"),
    ("GET", "/../../etc/passwd", None, 404, "no endpoint"),
    ("DELETE", "/jobs", None, 405, "not allowed"),
    ("POST", "/cache/invalidate", b"{not json", 400, "not JSON"),
    ("POST", "/cache/invalidate", b"[1, 2]", 400, "JSON object"),
    ("POST", "/cache/invalidate", b'{"pattern": "x", "rm": true}', 400, "unknown field"),
    ("POST", "/cache/invalidate", b'{"pattern": "' + b"x" * 70_000 + b'"}', 413, "larger than 64 KiB"),
    ("POST", "/monitoring/alerts/999999999/acknowledge", None, 404, "999999999"),
])
def test_hostile_requests_are_one_clear_4xx_and_change_nothing(api, method, path, body, status, words):
    with engine_for(api["ops"]).connect() as conn:
        before = conn.execute(select(func.count()).select_from(job_runs)).scalar()
    got, answer = call(api, method, BASE + path, token="writer", raw=body)
    assert got == status and answer["success"] is False and words in answer["error"], (got, answer)
    assert "\n" not in answer["error"]
    with engine_for(api["ops"]).connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_runs)).scalar() == before


def test_the_openapi_document_is_valid_and_names_every_route(api):
    from openapi_spec_validator import validate

    with request.urlopen(api["url"] + "/api/openapi.json", timeout=30) as resp:
        document = json.loads(resp.read())
    validate(document)
    for route in ROUTES:
        assert route.method.lower() in document["paths"][BASE + route.path], route.path
    assert len({(r.method, r.path) for r in ROUTES}) >= 33


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(api):
    """The property-based tester, from the OpenAPI document, on every endpoint (a read token: the
    writes answer their documented 403, so it starts no job)."""
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "schemathesis") if (ROOT / ".venv" / "bin" / "schemathesis")
                           .exists() else "schemathesis", "run", api["url"] + "/api/openapi.json",
                           "--header", f"Authorization: Bearer {api['tokens']['reader']}",
                           "--checks", "all", "--max-examples", "15", "--no-color",
                           "--exclude-checks", "positive_data_acceptance"],
                          capture_output=True, text=True, timeout=600, cwd=api["tmp"])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_a_manual_incident_is_recorded_held_and_notified(api):
    status, answer = call(api, "POST", BASE + "/monitoring/incidents", token="writer",
                          body={"title": "meter gateway offline", "severity": "critical", "host": "gw-7",
                                "description": "seen from the field"})
    assert status == 201, answer
    opened = answer["data"]
    assert _wait_success(api, opened["notify_task_id"])["state"] == "SUCCESS"
    listed = call(api, "GET", BASE + "/monitoring/incidents/open")[1]["data"]
    [mine] = [i for i in listed if i["id"] == opened["incident_id"]]
    assert (mine["rule"], mine["host"], mine["severity"], mine["hold"]) == ("manual", "gw-7", "critical", 1)
    history = call(api, "GET", BASE + "/monitoring/alerts/history?limit=5")[1]["data"]["items"]
    [note] = [n for n in history if n["id"] == opened["notification_id"]]
    assert note["status"] == "sent" and "meter gateway offline" in note["subject"]
    outbox = list((api["tmp"] / "var" / "outbox").glob("*.eml"))
    assert any("meter gateway offline" in f.read_text() for f in outbox)
    assert call(api, "POST", f"{BASE}/monitoring/incidents/{opened['incident_id']}/resolve",
                token="writer")[0] == 200


def test_every_curl_example_of_the_docs_answers_as_the_docs_say(api):
    """docs/api.md's curl lines, run as they are against this server (its URL and tokens put in)."""
    import re
    import shlex

    text = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    ran = 0
    for i, line in enumerate(lines):
        if not line.startswith("curl "):
            continue
        said = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("# {") else None
        command = (line.replace("http://127.0.0.1:8088", api["url"]).replace("$READ", api["tokens"]["reader"])
                   .replace("$WRITE", api["tokens"]["writer"]))
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60)
        answer = json.loads(done.stdout)
        expected = not (said and '"success": false' in said)  # the answer shown under it, else a success
        assert answer["success"] is expected, (line, answer)
        ran += 1
    assert ran >= 11


def test_the_jobs_page_keeps_the_runs_across_a_worker_restart(api, tmp_path):
    """Flower's task list lives in its memory; the Jobs page reads ops_job_runs."""
    import base64

    from tests.helpers import render_in_chromium

    status, answer = call(api, "POST", BASE + "/database/optimize", token="writer")
    task_id = answer["data"]["task_id"]
    _wait_success(api, task_id)
    worker = api["workers"][-1]
    worker.terminate()
    worker.wait(60)
    api["workers"].append(start_worker(api["env"], api["tmp"]))
    basic = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    with request.urlopen(request.Request(api["url"] + "/jobs/db.optimize", headers=basic), timeout=60) as resp:
        page = resp.read().decode()
    assert "SUCCESS" in page and "api" in page
    port = api["url"].rsplit(":", 1)[1]
    dom = render_in_chromium(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/jobs", tmp_path / "profile",
                             tmp_path / "jobs.png")
    assert "db.optimize" in dom and "Run now" in dom
