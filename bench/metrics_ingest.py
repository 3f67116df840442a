"""Sample ingest: the project's store against a bare PyMySQL executemany, same rows, same server.

    .venv/bin/python bench/metrics_ingest.py [--rows 200000] [--url mysql+pymysql://root@127.0.0.1:3306/]

Writes N samples through pelbiot_jobs.metrics.store.write_samples (batched upsert, what the
samplers use) into ops_metric_samples, and the same N rows with cursor.executemany of a plain
INSERT into an identical table, in one run, alternating the order over several rounds.
Prints both rates and the ratio (goal: the project's path at least 0.8 of the bare one); the
last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymysql  # noqa: E402

from pelbiot_jobs.db import migrate  # noqa: E402
from pelbiot_jobs.db.engine import make_engine  # noqa: E402
from pelbiot_jobs.metrics.store import write_samples  # noqa: E402

BATCH = 1000


def make_rows(n: int, round_: int) -> list[dict]:
    start = dt.datetime(2026, 1, 1) + dt.timedelta(days=round_)
    metrics = [f"host.metric_{i}" for i in range(40)]
    return [{"metric": metrics[i % 40], "host": f"host{(i // 40) % 50}",
             "ts": start + dt.timedelta(seconds=15 * (i // 2000)), "value": float(i % 1000) / 7}
            for i in range(n)]


def project(engine, rows) -> float:
    t = time.perf_counter()
    with engine.begin() as conn:
        for i in range(0, len(rows), BATCH):
            write_samples(conn, rows[i:i + BATCH])
    return time.perf_counter() - t


def bare(conn, rows) -> float:
    params = [(r["metric"], r["host"], r["ts"], r["value"]) for r in rows]
    t = time.perf_counter()
    with conn.cursor() as cur:
        for i in range(0, len(params), BATCH):
            cur.executemany("INSERT INTO bare_samples (metric, host, ts, value) VALUES (%s, %s, %s, %s)",
                            params[i:i + BATCH])
    conn.commit()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="")
    args = parser.parse_args()

    name = f"pj_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=args.host, port=args.port, user=args.user, password=args.password, autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    url = f"mysql+pymysql://{args.user}{':' + args.password if args.password else ''}@{args.host}:{args.port}/{name}"
    try:
        migrate.upgrade(url)
        raw = pymysql.connect(host=args.host, port=args.port, user=args.user, password=args.password, database=name)
        raw.cursor().execute("CREATE TABLE bare_samples LIKE ops_metric_samples")
        engine = make_engine(url)
        ours, theirs = [], []
        for round_ in range(args.rounds):
            rows = make_rows(args.rows, round_)
            if round_ % 2:
                theirs.append(bare(raw, rows))
                ours.append(project(engine, rows))
            else:
                ours.append(project(engine, rows))
                theirs.append(bare(raw, rows))
        ours_rate = args.rows / statistics.median(ours)
        bare_rate = args.rows / statistics.median(theirs)
        ratio = ours_rate / bare_rate
        print(f"rows per round           {args.rows:,} x {args.rounds} rounds (median)")
        print(f"pelbiot-jobs store       {ours_rate:,.0f} rows/s  (batched upsert, SQLAlchemy)")
        print(f"bare PyMySQL executemany {bare_rate:,.0f} rows/s  (plain INSERT)")
        print(f"ratio                    {ratio:.2f}  (goal >= 0.8)")
        print(json.dumps({"bench": "metrics_ingest", "rows": args.rows, "rounds": args.rounds,
                          "project_rows_per_s": round(ours_rate), "bare_rows_per_s": round(bare_rate),
                          "ratio": round(ratio, 3)}))
        engine.dispose()
        raw.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


if __name__ == "__main__":
    main()
