"""The web view's pages on a big history: 400 days of hourly rollups for 10 hosts, a day of 15 s samples.

    .venv/bin/python bench/web.py [--hosts 10] [--days 400] [--runs 7] [--port 3306] [--keep NAME]

Fills a fresh MariaDB ops database (migrated as pelbiot-jobs does) with, per host, 12 metrics as
hourly rollups over DAYS days and as 15 s samples over the last 24 hours, a health score per host
and minute over the last day, 50 slow-query classes per hour over the last 30 days (12 slices
each: 3 API routes x 2 client hosts x 2 accounts), incidents and index changes, then the samples
and scores topped up to the moment the timing starts; starts `pelbiot-jobs web` on it and times
every page RUNS times as a browser requests it (a new connection each time), interleaved. Prints each page's median and worst time
against the goal (200 ms); the last line is one JSON object with the figures. The database is
dropped afterwards, unless --keep names it: then a database of that name filled by an earlier
run is migrated, topped up and timed again, which saves the fill (10 minutes on 100 hosts).
Needs MariaDB on 127.0.0.1 (root, no password).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib import request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from pelbiot_jobs.db import migrate  # noqa: E402
from pelbiot_jobs.db.engine import make_engine  # noqa: E402
from pelbiot_jobs.db.ops_models import (health_scores, incidents, index_changes, metric_rollups,  # noqa: E402
                                        metric_samples, query_digests)

METRICS = ("host.cpu_percent", "host.memory_percent", "host.load_1m", "host.disk_used_percent", "host.swap_percent",
           "host.net_in_bytes_per_s", "host.net_out_bytes_per_s", "host.disk_read_bytes_per_s",
           "host.disk_write_bytes_per_s", "host.processes", "host.available_memory_bytes", "host.worker_rss_bytes")
PAGES = ("/", "/samples?window=1h", "/samples?window=24h", "/samples?window=7d", "/incidents", "/queries",
         "/queries?window=7d&sort=p95", "/queries?window=7d&by=tag:route", "/queries?window=24h&by=user",
         "/queries?window=7d&tag=route%3D%2Fapi%2Fr1", "/indexes", "/reports", "/metrics")
#: Who sends each query class per hour: routes x API hosts x accounts (queries.analyze's slices).
ROUTES, APP_HOSTS, ACCOUNTS = 3, 2, 2
GOAL_MS = 200.0
BATCH = 20_000


def fill(url: str, hosts: int, days: int) -> dict:
    rnd = random.Random(7)
    engine = make_engine(url)
    moment = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    now = moment.replace(minute=0, second=0)
    names = [f"web{i:02d}" for i in range(hosts)]
    counts = {}

    def put(table, rows):
        with engine.begin() as conn:
            for i in range(0, len(rows), BATCH):
                conn.execute(insert(table), rows[i:i + BATCH])
        counts[table.name] = counts.get(table.name, 0) + len(rows)

    for host in names:
        rows = []
        for h in range(days * 24):
            hour = now - dt.timedelta(hours=h)
            for metric in METRICS:
                v = rnd.uniform(5, 95)
                rows.append({"metric": metric, "host": host, "hour": hour, "samples": 240, "min": v * 0.5,
                             "avg": v, "max": min(100.0, v * 1.4), "p95": min(100.0, v * 1.3)})
        put(metric_rollups, rows)
        start = moment - dt.timedelta(days=1)  # the last day up to now: none in the hour still to come
        put(metric_samples, [{"metric": metric, "host": host, "ts": start + dt.timedelta(seconds=15 * k),
                              "value": rnd.uniform(5, 95)} for k in range(1, 5761) for metric in METRICS])
        put(health_scores, [{"host": host, "ts": start + dt.timedelta(minutes=m + 1), "score": rnd.uniform(60, 100),
                             "status": "GOOD", "present": 2,
                             "components": json.dumps({"of": 4, "components": [
                                 {"name": "cpu", "value": 40.0, "score": 100, "missing": False, "weight": 25}]})}
                            for m in range(1440)])
    put(health_scores, [{"host": "*", "ts": start + dt.timedelta(minutes=m + 1), "score": rnd.uniform(60, 100),
                         "status": "GOOD", "present": 2, "components": json.dumps({"of": 4, "components": []})}
                        for m in range(1440)])
    put(query_digests, [{"source": "file", "query_id": f"{q:016X}", "window_start": now - dt.timedelta(hours=h),
                         "fingerprint": f"select * from t{q} where c = ?", "example": f"SELECT * FROM t{q} WHERE c = 1",
                         "calls": rnd.randint(1, 5000), "query_time_sum": rnd.uniform(0.1, 900),
                         "query_time_p95": rnd.uniform(0.01, 3), "rows_examined_sum": rnd.randint(1, 10 ** 7),
                         "rows_sent_sum": rnd.randint(1, 10 ** 4), "slow": int(q % 7 == 0), "hist": "{}",
                         "explain_flags": "full_scan" if q % 5 == 0 else None}
                        for h in range(days * 24 if days < 30 else 24 * 30) for q in range(50)])
    from pelbiot_jobs.db.ops_models import query_slices
    from pelbiot_jobs.queries.analyze import slice_row

    put(query_slices, [slice_row("file", f"{q:016X}", now - dt.timedelta(hours=h), f"app{a}", f"api{k}", "pelbiot",
                                 f"&route=%2Fapi%2Fr{r}&", [rnd.randint(1, 900), rnd.uniform(0.01, 150), 0.0,
                                                            rnd.randint(1, 10 ** 6), rnd.randint(1, 10 ** 3), 0])
                       for h in range(days * 24 if days < 30 else 24 * 30) for q in range(50)
                       for r in range(ROUTES) for k in range(APP_HOSTS) for a in range(ACCOUNTS)])
    from pelbiot_jobs.queries.analyze import day_of, roll_days

    with engine.begin() as conn:  # what queries.analyze writes beside them
        roll_days(conn, {("file", f"{q:016X}", day_of(now - dt.timedelta(hours=h)))
                         for h in range(days * 24 if days < 30 else 24 * 30) for q in range(50)})
    put(incidents, [{"rule": "cpu_high", "host": host, "severity": "critical", "status": "open" if i % 3 else "resolved",
                     "opened_at": now - dt.timedelta(hours=i), "summary": f"cpu_high on {host}", "last_value": 97.0}
                    for i, host in enumerate(names * 5)])
    put(index_changes, [{"run_id": "bench", "table_name": "load_profiles", "index_name": f"idx_{i}",
                         "statement": "ALTER TABLE load_profiles ADD INDEX ...", "started_at": now - dt.timedelta(days=i),
                         "outcome": "created"} for i in range(60)])
    engine.dispose()
    return counts


def top_up(url: str, hosts: int) -> int:
    """Samples every 15 s and scores every minute from the newest stored up to now, for every host:
    a database filled minutes ago (the fill itself takes ten on 100 hosts) ends at the present,
    as a live one does. Returns the rows added."""
    from sqlalchemy import func, select

    rnd = random.Random(11)
    engine = make_engine(url)
    names = [f"web{i:02d}" for i in range(hosts)]
    moment = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    added = 0
    with engine.begin() as conn:
        last = conn.execute(select(func.max(metric_samples.c.ts))).scalar()
        slots = int((moment - last).total_seconds() // 15) if last else 0
        rows = [{"metric": m, "host": h, "ts": last + dt.timedelta(seconds=15 * k), "value": rnd.uniform(5, 95)}
                for k in range(1, slots + 1) for h in names for m in METRICS]
        for i in range(0, len(rows), BATCH):
            conn.execute(insert(metric_samples), rows[i:i + BATCH])
        added += len(rows)
        last = conn.execute(select(func.max(health_scores.c.ts))).scalar()
        minutes = int((moment - last).total_seconds() // 60) if last else 0
        rows = [{"host": h, "ts": last + dt.timedelta(minutes=k), "score": rnd.uniform(60, 100), "status": "GOOD",
                 "present": 2, "components": json.dumps({"of": 4, "components": []})}
                for k in range(1, minutes + 1) for h in names + ["*"]]
        if rows:
            conn.execute(insert(health_scores), rows)
        added += len(rows)
    engine.dispose()
    return added


def open_database(args, prefix: str, fills: list) -> tuple:
    """(admin connection, database name, URL, row counts): a fresh database filled by each
    ``(what, filler(url) -> counts)`` of ``fills``; with --keep NAME the database of that name, each
    filler run only where an earlier run of the same --hosts and --days did not (a mark per filler)."""
    admin = pymysql.connect(host="127.0.0.1", port=args.port, user="root", autocommit=True)
    cur = admin.cursor()
    name = args.keep or f"pj_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"--keep {name!r}: letters, digits and _ only")
    url = f"mysql+pymysql://root@127.0.0.1:{args.port}/{name}"
    done: dict[str, dict] = {}
    cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = "
                "'bench_filled'", (name,))
    if args.keep and cur.fetchone()[0]:
        cur.execute(f"SELECT what, counts FROM `{name}`.bench_filled WHERE hosts = %s AND days = %s",
                    (args.hosts, args.days))
        done = {what: json.loads(counts) for what, counts in cur.fetchall()}
    if not done:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.bench_filled (what VARCHAR(10), hosts INT, days INT, counts TEXT)")
    migrate.upgrade(url)
    counts: dict[str, int] = {}
    for what, filler in fills:
        if what in done:
            print(f"{name}: {what} filled by an earlier run", file=sys.stderr)
            counts |= done[what]
            continue
        started = time.perf_counter()
        filled = filler(url)
        print(f"{what} filled in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{n:,} {t}" for t, n in filled.items()), file=sys.stderr)
        cur.execute(f"INSERT INTO `{name}`.bench_filled VALUES (%s, %s, %s, %s)",
                    (what, args.hosts, args.days, json.dumps(filled)))
        counts |= filled
    return admin, name, url, counts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(env: dict, home: Path, port: int) -> subprocess.Popen:
    """`pelbiot-jobs web` with ``env``, once its port answers."""
    web = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "web"], env=env, cwd=home,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return web
        except OSError:
            if time.monotonic() > deadline or web.poll() is not None:
                raise SystemExit("the web view did not start")
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--keep", metavar="NAME", help="keep the filled database under this name; reuse it if filled")
    args = parser.parse_args()
    admin, name, url, counts = open_database(args, "web", [("history", lambda url: fill(url, args.hosts, args.days))])
    print(f"topped up to now: {top_up(url, args.hosts):,} rows", file=sys.stderr)
    web = None
    try:
        port = free_port()
        home = Path(tempfile.mkdtemp(prefix="pelbiot-bench-web-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")} | {
            "PELBIOT_OPS_DB_URL": url, "PELBIOT_APP_DB_URL": url, "PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/15",
            "PELBIOT_WEB_USER": "bench", "PELBIOT_WEB_PASSWORD": "bench-pw", "PELBIOT_WEB_PORT": str(port)}
        web = start_web(env, home, port)
        auth = "Basic " + base64.b64encode(b"bench:bench-pw").decode()
        host = "web00"
        times: dict[str, list[float]] = {p: [] for p in PAGES}
        for run in range(args.runs + 1):  # the first round loads what each page imports: not timed
            for page in PAGES:
                path = page + (f"&host={host}" if page.startswith("/samples") else "")
                t = time.perf_counter()
                with request.urlopen(request.Request(f"http://127.0.0.1:{port}{path}",
                                                     headers={"Authorization": auth}), timeout=60) as resp:
                    body = resp.read()
                    assert resp.status == 200 and body
                if run:
                    times[page].append((time.perf_counter() - t) * 1000)
    finally:
        if web is not None:
            web.terminate()
            web.wait(30)
        if not args.keep:
            admin.cursor().execute(f"DROP DATABASE `{name}`")
    worst = 0.0
    for page, values in times.items():
        median = statistics.median(values)
        worst = max(worst, median)
        print(f"{page:<30} median {median:7.1f} ms, max {max(values):7.1f} ms "
              f"{'ok' if median < GOAL_MS else 'OVER the goal'}")
    print(f"slowest page median {worst:.1f} ms; goal under {GOAL_MS:.0f} ms: {'met' if worst < GOAL_MS else 'NOT met'}")
    print(json.dumps({"hosts": args.hosts, "days": args.days, "rows": counts, "runs": args.runs,
                      "median_ms": {p: round(statistics.median(v), 1) for p, v in times.items()},
                      "worst_median_ms": round(worst, 1), "goal_ms": GOAL_MS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
