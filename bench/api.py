"""The REST API's GETs on a big history, side by side with the web view's page of the same data.

    .venv/bin/python bench/api.py [--hosts 10] [--days 400] [--runs 7] [--port 3306] [--keep NAME]

Fills a fresh MariaDB ops database with the history of bench/web.py (per host, 12 metrics as
hourly rollups over DAYS days and as 15 s samples over the last day, health scores, slow-query
classes, incidents, index changes) and a run history, starts `pelbiot-jobs web` on it, and
times every GET endpoint of /api/advanced (a read token) and the page showing the same data,
RUNS times each, interleaved, a new connection each time. Prints each endpoint's median against
the goal (100 ms; 200 ms with --hosts 100 or more, a fleet's) with its page's median beside it, the slowest first; the last line is one JSON
object with the figures. The database is dropped afterwards, unless --keep names it (as in
bench/web.py: a database bench/web.py --keep filled is reused and given the run history).
Needs MariaDB on 127.0.0.1 (root, no password) and Redis on 127.0.0.1:6379 (database 15).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib import request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from pelbiot_jobs.config import load_settings  # noqa: E402
from pelbiot_jobs.db.engine import make_engine  # noqa: E402
from pelbiot_jobs.db.ops_models import job_runs  # noqa: E402
from pelbiot_jobs.web.api import BASE, ROUTES  # noqa: E402

#: At most 100 ms an endpoint on 10 hosts of history; 200 ms on a fleet's (100 hosts and more),
#: the goal of every page and GET there.
GOAL_MS, FLEET_GOAL_MS, FLEET = 100.0, 200.0, 100
#: The web view's page that shows what each endpoint answers (None: no page shows it).
PAGE_OF = {"/performance/metrics": "/samples?window=1h&host=web00", "/monitoring/metrics/summary": "/samples?window=1h&host=web00",
           "/performance/trend": "/", "/monitoring/dashboard": "/", "/performance/analysis": "/",
           "/database/slow-queries": "/queries", "/database/query-stats": "/queries", "/database/indexes": "/indexes",
           "/monitoring/incidents/open": "/incidents", "/monitoring/rules": "/incidents",
           "/monitoring/alerts/active": "/incidents", "/jobs": "/jobs", "/jobs/runs": "/jobs/db.table_stats"}
#: Endpoints that read the app DB server (tuning facts, its connections) rather than the history.
SKIP = {"/performance/tuning-strategies"}


def _bench_web():
    spec = importlib.util.spec_from_file_location("bench_web", ROOT / "bench" / "web.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fill_runs(url: str, days: int) -> int:
    """A run of each of eight jobs every 15 minutes over the window (35,000 per year)."""
    engine = make_engine(url)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    jobs = ("metrics.sample_hosts", "metrics.sample_mysql", "health.score", "alerts.evaluate", "db.table_stats",
            "queries.analyze", "metrics.rollup", "cache.warm")
    rows = [{"task_id": f"bench-{j}-{k}", "attempt": 0, "task": job, "job": job, "trigger": "beat",
             "state": "SUCCESS" if k % 97 else "FAILURE", "started_at": now - dt.timedelta(minutes=15 * k),
             "finished_at": now - dt.timedelta(minutes=15 * k) + dt.timedelta(seconds=1), "duration_s": 1.0,
             "host": "bench", "worker": "w@bench"} for j, job in enumerate(jobs) for k in range(min(days, 60) * 96)]
    with engine.begin() as conn:
        for i in range(0, len(rows), 20_000):
            conn.execute(insert(job_runs), rows[i:i + 20_000])
    engine.dispose()
    return len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--keep", metavar="NAME", help="keep the filled database under this name; reuse it if filled")
    args = parser.parse_args()
    web_bench = _bench_web()

    def runs(url):
        return {"ops_job_runs": fill_runs(url, args.days)}

    admin, name, url, counts = web_bench.open_database(
        args, "api", [("history", lambda url: web_bench.fill(url, args.hosts, args.days)), ("runs", runs)])
    print(f"topped up to now: {web_bench.top_up(url, args.hosts):,} rows", file=sys.stderr)
    web = None
    try:
        port = web_bench.free_port()
        home = Path(tempfile.mkdtemp(prefix="pelbiot-bench-api-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")} | {
            "PELBIOT_OPS_DB_URL": url, "PELBIOT_APP_DB_URL": url, "PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/15",
            "PELBIOT_WEB_USER": "bench", "PELBIOT_WEB_PASSWORD": "bench-pw", "PELBIOT_WEB_PORT": str(port)}
        from pelbiot_jobs.access.tokens import create

        token = create(load_settings(env, cwd=home), f"bench-{uuid.uuid4().hex[:6]}", "read")["token"]
        web = web_bench.start_web(env, home, port)
        basic = "Basic " + base64.b64encode(b"bench:bench-pw").decode()
        endpoints = [r.path for r in ROUTES if r.method == "GET" and "{" not in r.path and r.path not in SKIP]
        pages = sorted({p for e, p in PAGE_OF.items() if e in endpoints})
        targets = [(BASE + e, {"Authorization": f"Bearer {token}"}) for e in endpoints] + \
            [(p, {"Authorization": basic}) for p in pages]
        times: dict[str, list[float]] = {path: [] for path, _ in targets}
        for run in range(args.runs + 1):  # the first round loads what each handler imports: not timed
            for path, headers in targets:
                t = time.perf_counter()
                with request.urlopen(request.Request(f"http://127.0.0.1:{port}{path}", headers=headers),
                                     timeout=120) as resp:
                    body = resp.read()
                    assert resp.status == 200 and body, path
                if run:
                    times[path].append((time.perf_counter() - t) * 1000)
    finally:
        if web is not None:
            web.terminate()
            web.wait(30)
        if not args.keep:
            admin.cursor().execute(f"DROP DATABASE `{name}`")
    goal = FLEET_GOAL_MS if args.hosts >= FLEET else GOAL_MS
    medians = {path: statistics.median(values) for path, values in times.items()}
    api = sorted(((m, p) for p, m in medians.items() if p.startswith(BASE)), reverse=True)
    for median, path in api:
        page = PAGE_OF.get(path[len(BASE):])
        beside = f"   page {page} {medians[page]:7.1f} ms" if page else ""
        print(f"{path:<48} median {median:7.1f} ms {'ok' if median <= goal else 'OVER the goal'}{beside}")
    worst, slowest = api[0]
    print(f"slowest endpoint {slowest}: median {worst:.1f} ms; goal at most {goal:.0f} ms on {args.hosts} hosts: "
          f"{'met' if worst <= goal else 'NOT met'}")
    print(json.dumps({"hosts": args.hosts, "days": args.days, "rows": counts, "runs": args.runs,
                      "median_ms": {p: round(m, 1) for p, m in medians.items()}, "worst_api_median_ms": round(worst, 1),
                      "slowest": slowest, "goal_ms": goal}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
