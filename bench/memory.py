"""Memory of the embedded stack: the sum of PSS over every process `pelbiot-jobs up` runs.

    .venv/bin/python bench/memory.py [--seconds 600] [--goal-mb 300]

Starts `pelbiot-jobs up` on the embedded default in a fresh PELBIOT_HOME (a temporary folder),
lets it run for SECONDS (beat sends every job on its schedule: samplers every 15 s, health every
minute, the slow-log digest, cache warming...), then reads Pss from /proc/PID/smaps_rollup of
`up` and every process below it (worker, its pool, beat, Flower, the embedded Redis). PSS counts
a page shared by n processes as 1/n in each, so the sum is what the stack costs the machine.
Prints a line per process, the total, and the ratio to the goal; the last line is one JSON
object with `total_mb` and `ratio` (goal / total: above 1 is under the goal). Stops `up` after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children(p)
    return found


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def describe(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    words = [a.decode(errors="replace") for a in argv if a]
    name = Path(words[0]).name if words else "?"
    rest = [w for w in words[1:] if not w.startswith("-")][:3]
    return " ".join([name, *(Path(w).name if "/" in w else w for w in rest)])[:60]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the stack runs before measuring")
    parser.add_argument("--goal-mb", type=float, default=300.0)
    args = parser.parse_args()
    cli = Path(sys.executable).parent / "pelbiot-jobs"
    home = Path(tempfile.mkdtemp(prefix="pelbiot-mem-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")}
    env.update(PELBIOT_HOME=str(home), PELBIOT_FLOWER_USER="admin", PELBIOT_FLOWER_PASSWORD="bench-only-password",
               PELBIOT_FLOWER_PORT=str(15555 + os.getpid() % 1000))
    log = (home / "up.log").open("w")
    up = subprocess.Popen([str(cli), "up"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home,
                          start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "is up" not in (home / "up.log").read_text():
            if up.poll() is not None or time.monotonic() > deadline:
                print((home / "up.log").read_text()[-3000:], file=sys.stderr)
                raise SystemExit("pelbiot-jobs up did not come up")
            time.sleep(1)
        print(f"pelbiot-jobs up is running in {home}; measuring after {args.seconds:.0f} s", file=sys.stderr)
        time.sleep(args.seconds)
        rows = []
        for pid in tree(up.pid):
            try:
                rows.append((pid, describe(pid), pss_kb(pid)))
            except OSError:
                pass  # a pool process that just ended
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
        log.close()
    total = sum(kb for _, _, kb in rows) / 1024
    for pid, name, kb in rows:
        print(f"{pid:>8}  {kb / 1024:7.1f} MB  {name}")
    print(f"total PSS {total:.1f} MB over {len(rows)} processes after {args.seconds:.0f} s; "
          f"goal {args.goal_mb:.0f} MB; ratio goal/total {args.goal_mb / total:.2f}")
    print(json.dumps({"total_mb": round(total, 1), "processes": len(rows), "seconds": args.seconds,
                      "goal_mb": args.goal_mb, "ratio": round(args.goal_mb / total, 2),
                      "per_process": [{"pid": p, "name": n, "pss_mb": round(k / 1024, 1)} for p, n, k in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
