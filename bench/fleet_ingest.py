"""Metrics ingest for a fleet: the CPU a host costs per day (its samples, and its share of the rollups,
health scores and alert evaluations of the whole fleet).

    .venv/bin/python bench/fleet_ingest.py [--hosts 100] [--slots 20] [--runs 5] [--port 3306]

Each host's worker samples its own host every 15 s (metrics.sample_host: 5,760 samples a day);
health.score and alerts.evaluate run every minute (1,440 a day) and metrics.rollup every hour (24),
each once for the whole fleet. On a fresh MariaDB ops database this bench runs the task bodies as a
worker runs them, in this one process (Celery's dispatch of each task is not counted):
- HOSTS hosts sampled for SLOTS 15 s slots through the samplers' own path (a real reading of this
  machine under each host's name, its rates against that host's previous reading, the rows and the
  checkpoint written in one transaction);
- the last complete hour filled with every host's samples (not timed), then health.score and
  alerts.evaluate RUNS times each and metrics.rollup once over that hour of HOSTS hosts.
It measures this process's CPU (user + system) and the database server's (mariadbd, from /proc)
over each part and prints, per host and day, the CPU of each part, the total, and the share of
a core the whole fleet's ingest takes. The last line is one JSON object with the figures.
Needs MariaDB on 127.0.0.1 (root, no password) running on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402

from pelbiot_jobs.config import load_settings  # noqa: E402
from pelbiot_jobs.db import migrate  # noqa: E402
from pelbiot_jobs.db.engine import engine_for  # noqa: E402
from pelbiot_jobs.health.service import evaluate, score  # noqa: E402
from pelbiot_jobs.metrics.host import host_metrics, read_host  # noqa: E402
from pelbiot_jobs.metrics.service import record_sample, roll_up  # noqa: E402
from pelbiot_jobs.metrics.store import sample_rows, write_samples  # noqa: E402

SAMPLES_PER_DAY, RUNS_PER_DAY, ROLLUPS_PER_DAY = 86400 // 15, 1440, 24
TICK = os.sysconf("SC_CLK_TCK")


def server_pid() -> int:
    """The pid of the MariaDB server on this machine (the oldest mariadbd or mysqld)."""
    for name in ("mariadbd", "mysqld"):
        found = subprocess.run(["pgrep", "-o", "-x", name], capture_output=True, text=True).stdout.split()
        if found:
            return int(found[0])
    raise SystemExit("no mariadbd on this machine: the server's CPU cannot be read")


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Part:
    """CPU of this process and of the server over a block, and its wall time."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.t, self.cpu, self.db = time.perf_counter(), time.process_time(), server_cpu(self.pid)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.ours = time.process_time() - self.cpu
        self.server = server_cpu(self.pid) - self.db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--slots", type=int, default=20, help="15 s slots sampled per host")
    parser.add_argument("--runs", type=int, default=5, help="runs of health.score and of alerts.evaluate")
    parser.add_argument("--port", type=int, default=3306)
    args = parser.parse_args()
    pid = server_pid()
    name = f"pj_bench_fleet_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=args.port, user="root", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    url = f"mysql+pymysql://root@127.0.0.1:{args.port}/{name}"
    home = Path(f"/tmp/{name}")
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")} | {
        "PELBIOT_OPS_DB_URL": url, "PELBIOT_APP_DB_URL": url}
    settings = load_settings(env, cwd=home)
    hosts = [f"fleet{i:03d}" for i in range(args.hosts)]
    try:
        migrate.upgrade(url)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
        first = now - dt.timedelta(seconds=15 * args.slots)
        with Part(pid) as sampling:
            for k in range(args.slots):
                slot = first + dt.timedelta(seconds=15 * k)
                for host in hosts:
                    record_sample(settings, f"host:{host}", host, read_host(), host_metrics, f"{host}-{k}", slot)
        samples = args.slots * args.hosts
        before = read_host()
        time.sleep(0.5)
        values = host_metrics(before, read_host())  # gauges and rates, as every sample after a host's first
        metrics = len(values)
        # the last complete hour, every host sampled every 15 s (what the rollup and the scores read)
        hour = now.replace(minute=0, second=0) - dt.timedelta(hours=1)
        engine = engine_for(url)
        for host in hosts:
            with engine.begin() as conn:
                for k in range(0, 240, 60):
                    write_samples(conn, [r for j in range(k, k + 60)
                                         for r in sample_rows(host, hour + dt.timedelta(seconds=15 * j), values)])
        with Part(pid) as scoring:
            for _ in range(args.runs):
                score(settings)
        with Part(pid) as alerting:
            for _ in range(args.runs):
                evaluate(settings)
        with Part(pid) as rolling:
            rolled = roll_up(settings)
    finally:
        admin.cursor().execute(f"DROP DATABASE `{name}`")
        for f in home.iterdir():
            f.unlink() if f.is_file() else None
    per_day = {
        "samples": {"ours": sampling.ours / samples * SAMPLES_PER_DAY, "server": sampling.server / samples * SAMPLES_PER_DAY},
        "health.score": {"ours": scoring.ours / args.runs * RUNS_PER_DAY / args.hosts,
                         "server": scoring.server / args.runs * RUNS_PER_DAY / args.hosts},
        "alerts.evaluate": {"ours": alerting.ours / args.runs * RUNS_PER_DAY / args.hosts,
                            "server": alerting.server / args.runs * RUNS_PER_DAY / args.hosts},
        "metrics.rollup": {"ours": rolling.ours * ROLLUPS_PER_DAY / args.hosts,
                           "server": rolling.server * ROLLUPS_PER_DAY / args.hosts},
    }
    print(f"{args.hosts} hosts, {metrics} metrics a sample; {samples:,} samples in {sampling.wall:.1f} s, "
          f"{args.runs} scores in {scoring.wall:.1f} s, {args.runs} evaluations in {alerting.wall:.1f} s, "
          f"a rollup of {args.hosts} hosts' hour in {rolling.wall:.1f} s ({rolled})")
    print(f"{'CPU seconds per host per day':<34}{'worker':>10}{'database':>10}")
    for part, cpu in per_day.items():
        print(f"{part:<34}{cpu['ours']:>10.1f}{cpu['server']:>10.1f}")
    ours = sum(c["ours"] for c in per_day.values())
    server = sum(c["server"] for c in per_day.values())
    print(f"{'total':<34}{ours:>10.1f}{server:>10.1f}")
    share = (ours + server) * args.hosts / 86400 * 100
    print(f"the fleet's ingest: {share:.1f} % of one core ({args.hosts} hosts: worker and database together)")
    print(json.dumps({"bench": "fleet_ingest", "hosts": args.hosts, "metrics_per_sample": metrics, "slots": args.slots,
                      "runs": args.runs, "cpu_s_per_host_day": {k: {s: round(v, 2) for s, v in c.items()}
                                                                for k, c in per_day.items()},
                      "total_worker_s": round(ours, 1), "total_database_s": round(server, 1),
                      "fleet_core_percent": round(share, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
