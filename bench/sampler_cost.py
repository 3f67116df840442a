"""CPU cost of one complete sample: the host sample and the MySQL sample.

    .venv/bin/python bench/sampler_cost.py [--runs 300] [--mysql-url mysql+pymysql://root@127.0.0.1:3306/test]

Measures process CPU time (time.process_time: this process's user + system time, not wall
time) of read + compute for each sampler, over many runs, and prints the medians. Goal: the
host sample at most 5 ms of CPU, so sampling every 15 s costs well under 0.1 % of a core.
For scale it also times `ps -e` (procps), what an admin would run to look at the same host.
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pelbiot_jobs.db.engine import make_engine  # noqa: E402
from pelbiot_jobs.metrics.host import host_metrics, read_host  # noqa: E402
from pelbiot_jobs.metrics.mysql import database_metrics, read_database  # noqa: E402

INTERVAL_S = 15.0


def cpu_ms(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        out.append((time.process_time() - t) * 1000)
    return out


def children_cpu_ms(cmd: list[str], runs: int) -> float:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000 / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306/test")
    args = parser.parse_args()

    state = {"host": read_host()}

    def host_sample():
        cur = read_host()
        host_metrics(state["host"], cur)
        state["host"] = cur

    engine = make_engine(args.mysql_url)
    state["db"] = read_database(engine)

    def mysql_sample():
        cur = read_database(engine)
        database_metrics(state["db"], cur)
        state["db"] = cur

    host = statistics.median(cpu_ms(host_sample, args.runs))
    mysql = statistics.median(cpu_ms(mysql_sample, args.runs))
    ps = children_cpu_ms(["ps", "-e"], min(args.runs, 100))
    share = host / (INTERVAL_S * 1000) * 100
    print(f"host sample   {host:.2f} ms CPU (median of {args.runs}; goal <= 5 ms)")
    print(f"mysql sample  {mysql:.2f} ms CPU (median of {args.runs}, client side)")
    print(f"ps -e         {ps:.2f} ms CPU (for scale)")
    print(f"host sampling every {INTERVAL_S:.0f} s costs {share:.4f} % of a core (goal < 0.1 %)")
    print(json.dumps({"bench": "sampler_cost", "runs": args.runs, "host_sample_cpu_ms": round(host, 3),
                      "mysql_sample_cpu_ms": round(mysql, 3), "ps_cpu_ms": round(ps, 3),
                      "core_share_percent": round(share, 5), "ratio": round(host / ps, 3) if ps else None}))
    engine.dispose()


if __name__ == "__main__":
    main()
