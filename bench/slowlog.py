"""Slow-log digest: `pelbiot-jobs slowlog` against pt-query-digest on the same 100 MB log.

    .venv/bin/python bench/slowlog.py [--size-mb 100] [--database pj_bench_app]

Builds once (cached in bench/.cache/) a slow log of at least --size-mb recorded from the real
MariaDB with long_query_time=0 under a PELBIOT-like workload (the API's hot queries on demo data,
updates and multi-row inserts), then times `pelbiot-jobs slowlog --format json` and
`pt-query-digest --output json --limit 1000000` on it in the same run. Prints both wall
times, the ratio and whether the two agree: the same classes (by query ID) with the same counts.
Goal: at least 10 times faster, full agreement. The last line is one JSON object with the figures.
Needs MariaDB on 127.0.0.1:3306 (root, no password) and pt-query-digest (apt-get install percona-toolkit).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache"

import pymysql  # noqa: E402

QUERIES = [
    lambda r: "SELECT * FROM devices",
    lambda r: f"SELECT * FROM devices WHERE id = {r.randint(1, 40)}",
    lambda r: "SELECT a.*, d.name as device_name FROM alerts a JOIN devices d ON a.device_id = d.id "
              "WHERE a.status = 'open' ORDER BY a.created_at DESC",
    lambda r: f"SELECT hour, AVG(`load`) as `load`, MAX(peak) as peak, AVG(average) as average FROM load_profiles "
              f"WHERE hour >= {r.randint(0, 23)} GROUP BY hour ORDER BY hour ASC",
    lambda r: f"SELECT * FROM load_profiles WHERE device_id = {r.randint(1, 40)} ORDER BY created_at DESC LIMIT 24",
    lambda r: f"SELECT AVG(average) AS avg_load, MAX(peak) AS peak_load FROM load_profiles "
              f"WHERE created_at >= DATE_SUB(NOW(), INTERVAL {r.randint(1, 48)} HOUR)",
    lambda r: f"SELECT * FROM sensor_data WHERE sensor_id = {r.randint(1, 40)} AND timestamp > "
              f"'2026-11-27 {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00' ORDER BY timestamp LIMIT {r.randint(1, 60)}",
    lambda r: f"UPDATE devices SET status = '{r.choice(['online', 'offline', 'error'])}', updated_at = NOW() "
              f"WHERE id = {r.randint(1, 40)}",
    # Multi-row inserts into a table the reads do not touch, so the workload's cost stays flat.
    lambda r: "INSERT INTO activity_logs (user_id, activity_type, description, ip_address) VALUES " + ", ".join(
        f"(NULL, '{r.choice(['login', 'view', 'export'])}', 'Load {r.random():.3f} on \\'A\\'', "
        f"'10.0.{r.randint(0, 255)}.{r.randint(0, 255)}')" for _ in range(r.randint(1, 5))),
    lambda r: f"SELECT id, name FROM devices WHERE id IN ({', '.join(str(r.randint(1, 40)) for _ in range(r.randint(1, 9)))})",
    lambda r: f"SELECT severity, COUNT(*) AS count FROM alerts WHERE status = 'open' GROUP BY severity /* dash {r.randint(1, 9)} */",
    lambda r: f"SELECT *\nFROM trends\nWHERE device_id = {r.randint(1, 40)}\n  AND `date` >= '2026-11-{r.randint(1, 28):02d}'\n"
              f"ORDER BY `date` ASC, power DESC",
]


def record(path: Path, size_mb: int, database: str) -> None:
    from pelbiot_jobs.db.demo import DemoPlan, device_count, seed
    from pelbiot_jobs.db.engine import make_engine

    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    engine = make_engine(f"mysql+pymysql://root@127.0.0.1:3306/{database}")
    if device_count(engine) == 0:
        # Small tables: the log's size comes from many cheap API-style queries, as in production.
        seed(engine, DemoPlan(devices=40, days=2, sensor_days=1))
    engine.dispose()
    spool = Path("/tmp/pelbiot-bench-slowlog")
    spool.mkdir(exist_ok=True)
    os.chmod(spool, 0o777)
    live = spool / "slow.log"
    if live.exists():
        live.unlink()
    cur = admin.cursor()
    cur.execute(f"SET GLOBAL slow_query_log_file = '{live}'")
    cur.execute("SET GLOBAL long_query_time = 0")
    cur.execute("SET GLOBAL log_slow_verbosity = 'query_plan'")
    cur.execute("SET GLOBAL slow_query_log = ON")
    import threading

    def client(seed: int) -> None:  # two clients, as the API has several connections
        rnd = random.Random(seed)
        conn = pymysql.connect(host="127.0.0.1", user="root", database=database, autocommit=True)
        c = conn.cursor()
        while not live.exists() or live.stat().st_size < size_mb << 20:
            for _ in range(500):
                c.execute(rnd.choice(QUERIES)(rnd))
                c.fetchall()
        conn.close()

    try:
        threads = [threading.Thread(target=client, args=(seed,)) for seed in (7, 8)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(2)
            if live.exists():
                print(f"\rrecording: {live.stat().st_size / 2**20:.0f} MB", end="", file=sys.stderr)
        print(file=sys.stderr)
    finally:
        cur.execute("SET GLOBAL slow_query_log = OFF")
        cur.execute("SET GLOBAL long_query_time = 10")
    shutil.copyfile(live, path)
    live.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--database", default="pj_bench_app")
    args = parser.parse_args()
    pt = shutil.which("pt-query-digest")
    if pt is None:
        sys.exit("pt-query-digest is not installed: apt-get install percona-toolkit")
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / f"slow-{args.size_mb}mb.log"
    if not log.exists():
        record(log, args.size_mb, args.database)
    size = log.stat().st_size

    t = time.perf_counter()
    ours = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "slowlog", "--format", "json", str(log)],
                          capture_output=True, check=True, cwd=ROOT)
    ours_s = time.perf_counter() - t
    t = time.perf_counter()
    theirs = subprocess.run([pt, "--output", "json", "--limit", "1000000", str(log)], capture_output=True,
                            check=True)
    pt_s = time.perf_counter() - t

    a = {c["checksum"]: int(c["query_count"]) for c in json.loads(ours.stdout)["classes"]}
    b = {c["checksum"]: int(c["query_count"]) for c in json.loads(theirs.stdout)["classes"]}
    agree = a == b
    ratio = pt_s / ours_s
    print(f"slow log                 {size / 2**20:.1f} MB, {sum(b.values()):,} events, {len(b)} classes")
    print(f"pelbiot-jobs slowlog     {ours_s:.2f} s  ({size / 2**20 / ours_s:.1f} MB/s, {os.cpu_count()} cores)")
    print(f"pt-query-digest 3.x      {pt_s:.2f} s  ({size / 2**20 / pt_s:.1f} MB/s)")
    print(f"ratio                    {ratio:.1f}x faster  (goal >= 10)")
    print(f"agreement                {'same classes, same counts' if agree else 'DIFFERENT'}"
          + ("" if agree else f": only ours {set(a) - set(b)}, only pt {set(b) - set(a)}, "
             f"counts differ {[k for k in a if k in b and a[k] != b[k]]}"))
    print(json.dumps({"bench": "slowlog", "bytes": size, "events": sum(b.values()), "classes": len(b),
                      "pelbiot_s": round(ours_s, 3), "pt_query_digest_s": round(pt_s, 3),
                      "ratio": round(ratio, 2), "agree": agree}))


if __name__ == "__main__":
    main()
