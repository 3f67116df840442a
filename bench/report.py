"""Report build time against the floor: pandas reading the same rows.

    .venv/bin/python bench/report.py

Fills a fresh MariaDB ops database with a day of 15 s samples for 3 hosts (40 metrics each,
691,200 rows) and a month of hourly rollups, then times, in one run: the daily report (HTML and
CSV), the monthly report, and pandas alone reading the rows the daily report reads (the floor).
Goal: the daily report within 3x the floor. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import pymysql  # noqa: E402
from sqlalchemy import text  # noqa: E402

from pelbiot_jobs.config import load_settings  # noqa: E402
from pelbiot_jobs.db import migrate  # noqa: E402
from pelbiot_jobs.db.engine import make_engine  # noqa: E402
from pelbiot_jobs.db.ops_models import metric_rollups  # noqa: E402
from pelbiot_jobs.db.upsert import upsert  # noqa: E402
from pelbiot_jobs.metrics.store import write_samples  # noqa: E402

DAY = dt.date(2026, 11, 20)
HOSTS = ("web1", "web2", "db1")
METRICS = ["host.cpu_percent", "host.memory_percent", "host.load1", "host.swap_percent"] + [
    f"host.extra_{i}" for i in range(36)]


def fill(engine) -> int:
    rnd = random.Random(1)
    start = dt.datetime.combine(DAY, dt.time())
    rows = 0
    batch = []
    with engine.begin() as conn:
        for i in range(5760):
            ts = start + dt.timedelta(seconds=15 * i)
            for host in HOSTS:
                for metric in METRICS:
                    batch.append({"metric": metric, "host": host, "ts": ts, "value": rnd.uniform(0, 100)})
            if len(batch) >= 20000:
                write_samples(conn, batch)
                rows += len(batch)
                batch = []
        if batch:
            write_samples(conn, batch)
            rows += len(batch)
        month = dt.datetime(2026, 11, 1)
        rollups = [{"metric": m, "host": h, "hour": month + dt.timedelta(hours=k), "samples": 240, "min": 1.0,
                    "avg": rnd.uniform(10, 90), "max": 99.0, "p95": 95.0}
                   for k in range(30 * 24) for h in HOSTS for m in METRICS[:2]]
        upsert(conn, metric_rollups, rollups, key=("metric", "host", "hour"))
    return rows


def main() -> None:
    name = f"pj_bench_report_{uuid.uuid4().hex[:6]}"
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    url = f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        rows = fill(engine)
        out = Path(tempfile.mkdtemp())
        settings = load_settings({"PELBIOT_APP_DB_URL": url, "PELBIOT_OPS_DB_URL": url,
                                  "PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/14",
                                  "PELBIOT_REPORTS_DIR": str(out)}, cwd=out)
        from pelbiot_jobs.reports.service import export

        start, end = dt.datetime.combine(DAY, dt.time()), dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time())
        t = time.perf_counter()
        with engine.connect() as conn:
            floor_frame = pd.read_sql(text(
                "SELECT metric, host, ts, value FROM ops_metric_samples WHERE metric IN "
                "('host.cpu_percent', 'host.memory_percent') AND ts >= :s AND ts < :e AND value IS NOT NULL "
                "ORDER BY ts"), conn, params={"s": start, "e": end})
        floor = time.perf_counter() - t
        t = time.perf_counter()
        export(settings, "daily", DAY, email=False)
        daily = time.perf_counter() - t
        t = time.perf_counter()
        export(settings, "monthly", DAY, email=False)
        monthly = time.perf_counter() - t
        ratio = daily / floor
        print(f"rows in the day            {rows:,} samples ({len(floor_frame):,} read by the daily report)")
        print(f"pandas read_sql (floor)    {floor:.2f} s")
        print(f"daily report (HTML + CSV)  {daily:.2f} s  = {ratio:.1f}x the floor (goal <= 3)")
        print(f"monthly report (rollups)   {monthly:.2f} s")
        print(json.dumps({"bench": "report", "rows": rows, "rows_read": len(floor_frame), "floor_s": round(floor, 3),
                          "daily_s": round(daily, 3), "monthly_s": round(monthly, 3), "ratio": round(ratio, 2)}))
        engine.dispose()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


if __name__ == "__main__":
    main()
