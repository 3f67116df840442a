"""The ops database's size per host-day, and held flat by retention: days of a host's metrics
simulated one after the other, retention run at the end of each.

    .venv/bin/python bench/ops_size.py [--hosts 1] [--days 30] [--samples-days 3] [--rollups-days 10]

Per simulated day, on a fresh MariaDB ops database: every host's samples every 15 s (a real
reading of this machine, written through the samplers' store), a health score per host and
minute, metrics.rollup at the day's end (24 hourly rollups per metric and host), then
maintenance.retention at that moment with the retention given (the defaults keep samples 14 days
and rollups 400: shorter horizons show the same shape in minutes). After each day the tables'
sizes are read from information_schema (data and indexes, after ANALYZE TABLE) and printed. The
figures: bytes per host-day of samples, of scores and of rollups, the size the defaults would
hold (14 days of samples, 400 of rollups), and whether the size stayed flat after the horizon
(InnoDB reuses freed pages, so the size wavers from day to day: flat is a least-squares trend
of the days after the horizon rising by under 5 % of the size at it). The last line is one
JSON object.
Needs MariaDB on 127.0.0.1 (root, no password).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from pelbiot_jobs.config import load_settings  # noqa: E402
from pelbiot_jobs.db import migrate  # noqa: E402
from pelbiot_jobs.db.engine import engine_for  # noqa: E402
from pelbiot_jobs.db.ops_models import health_scores  # noqa: E402
from pelbiot_jobs.maintenance.service import retention  # noqa: E402
from pelbiot_jobs.metrics.host import host_metrics, read_host  # noqa: E402
from pelbiot_jobs.metrics.rollup import roll_up  # noqa: E402
from pelbiot_jobs.metrics.store import sample_rows, write_samples  # noqa: E402

TABLES = ("ops_metric_samples", "ops_health_scores", "ops_metric_rollups")
DEFAULT_SAMPLES_DAYS, DEFAULT_ROLLUPS_DAYS = 14, 400


def sizes(cur, name: str) -> dict[str, int]:
    for table in TABLES:
        cur.execute(f"ANALYZE TABLE `{name}`.`{table}`")
        cur.fetchall()
    cur.execute("SELECT table_name, data_length + index_length FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name IN %s", (name, TABLES))
    return {t: int(n) for t, n in cur.fetchall()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--samples-days", type=int, default=3)
    parser.add_argument("--rollups-days", type=int, default=10)
    parser.add_argument("--port", type=int, default=3306)
    args = parser.parse_args()
    name = f"pj_bench_size_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=args.port, user="root", autocommit=True)
    cur = admin.cursor()
    cur.execute(f"CREATE DATABASE `{name}`")
    url = f"mysql+pymysql://root@127.0.0.1:{args.port}/{name}"
    home = Path(f"/tmp/{name}")
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")} | {
        "PELBIOT_OPS_DB_URL": url, "PELBIOT_APP_DB_URL": url,
        "PELBIOT_RETENTION_SAMPLES_DAYS": str(args.samples_days), "PELBIOT_RETENTION_ROLLUPS_DAYS": str(args.rollups_days)}
    settings = load_settings(env, cwd=home)
    before = read_host()
    time.sleep(0.5)
    values = host_metrics(before, read_host())
    hosts = [f"size{i:03d}" for i in range(args.hosts)]
    start = dt.datetime(2026, 1, 1)
    history = []
    started = time.perf_counter()
    try:
        migrate.upgrade(url)
        engine = engine_for(url)
        for day in range(args.days):
            midnight = start + dt.timedelta(days=day)
            for host in hosts:
                for hour in range(24):
                    at = midnight + dt.timedelta(hours=hour)
                    with engine.begin() as conn:
                        write_samples(conn, [r for k in range(240)
                                             for r in sample_rows(host, at + dt.timedelta(seconds=15 * k), values)])
                with engine.begin() as conn:
                    conn.execute(insert(health_scores), [
                        {"host": host, "ts": midnight + dt.timedelta(minutes=m), "score": 90.0, "status": "GOOD",
                         "present": 4, "components": json.dumps({"of": 4, "components": [
                             {"name": c, "value": 40.0, "score": 100, "missing": False, "weight": 25}
                             for c in ("cpu", "memory", "disk", "slow_queries")]})} for m in range(1440)])
            end = midnight + dt.timedelta(days=1, minutes=5)
            roll_up(engine, end)
            deleted = retention(settings, now=end)["deleted"]
            size = sizes(cur, name)
            history.append(size)
            print(f"day {day + 1:>3}: {sum(size.values()) / 1e6:8.1f} MB  "
                  + "  ".join(f"{t.removeprefix('ops_')} {n / 1e6:.1f}" for t, n in size.items())
                  + f"  (deleted {sum(v for v in deleted.values() if isinstance(v, int)):,} rows)", file=sys.stderr)
    finally:
        cur.execute(f"DROP DATABASE `{name}`")
        for f in home.iterdir():
            if f.is_file():
                f.unlink()
    # per host-day: a table's size once it holds its whole horizon, divided by the horizon's host-days
    horizon = max(args.samples_days, args.rollups_days)
    at_horizon = history[min(horizon, len(history)) - 1]
    per_host_day = {
        "ops_metric_samples": at_horizon["ops_metric_samples"] / (args.hosts * (args.samples_days + 1)),
        "ops_health_scores": at_horizon["ops_health_scores"] / (args.hosts * (args.samples_days + 1)),
        "ops_metric_rollups": at_horizon["ops_metric_rollups"] / (args.hosts * min(horizon, args.rollups_days)),
    }
    held = (DEFAULT_SAMPLES_DAYS + 1) * (per_host_day["ops_metric_samples"] + per_host_day["ops_health_scores"]) + \
        DEFAULT_ROLLUPS_DAYS * per_host_day["ops_metric_rollups"]
    after = [sum(h.values()) for h in history[horizon:]]
    base = sum(at_horizon.values())
    # InnoDB reuses the pages retention frees, so the size wavers by a few MB from day to day: flat
    # means the least-squares line through the days after the horizon rises by under 5 % over them.
    slope = 0.0
    if len(after) > 1:
        mean_x, mean_y = (len(after) - 1) / 2, sum(after) / len(after)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(after)) / \
            sum((x - mean_x) ** 2 for x in range(len(after)))
    rise = slope * max(1, len(after) - 1)
    flat = bool(after) and rise < 0.05 * base
    print(f"{args.hosts} host(s), {len(values)} metrics, {args.days} days in {time.perf_counter() - started:.0f} s; "
          f"retention: samples and scores {args.samples_days} days, rollups {args.rollups_days} days")
    for table, n in per_host_day.items():
        print(f"{table:<22} {n / 1e3:9.1f} kB per host-day")
    print(f"held by the default retention (samples and scores {DEFAULT_SAMPLES_DAYS} days, rollups "
          f"{DEFAULT_ROLLUPS_DAYS}): {held / 1e6:.1f} MB per host, {held * 100 / 1e9:.2f} GB for 100 hosts")
    if after:
        print(f"after the horizon (day {horizon}): {base / 1e6:.1f} MB, then {min(after) / 1e6:.1f}-{max(after) / 1e6:.1f} MB "
              f"over {len(after)} more days, a trend of {rise / 1e6:+.1f} MB over them: "
              f"{'flat' if flat else 'GROWING'}")
    print(json.dumps({"bench": "ops_size", "hosts": args.hosts, "days": args.days,
                      "retention_days": {"samples": args.samples_days, "rollups": args.rollups_days},
                      "bytes_per_host_day": {t: round(n) for t, n in per_host_day.items()},
                      "default_retention_mb_per_host": round(held / 1e6, 1),
                      "total_mb_by_day": [round(sum(h.values()) / 1e6, 1) for h in history],
                      "trend_mb_after_horizon": round(rise / 1e6, 2), "flat": flat}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
