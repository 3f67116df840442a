"""Memory of the embedded stack: the sum of PSS over every process `pelbiot-jobs up` runs.

    .venv/bin/python bench/memory.py [--seconds 600] [--goal-mb 300]

Starts `pelbiot-jobs up` on the embedded default in a fresh temporary folder, lets it run for
SECONDS (beat sends every job on its schedule: samplers every 15 s, health every minute, the
slow-log digest, cache warming...), opens every page of the web view once, then reads Pss from
/proc/PID/smaps_rollup of `up` and every process below it (worker, its pool, beat, Flower, the
web view, the embedded Redis). PSS counts
a page shared by n processes as 1/n in each, so the sum is what the stack costs the machine.
Prints a line per process, the total, and the ratio to the goal; the last line is one JSON
object with `total_mb` and `ratio` (goal / total: above 1 is under the goal). Stops `up` after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import running_up  # noqa: E402


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


def visit_the_web_view(port: int, user: str, password: str) -> None:
    """Open every page of the web view once, as an operator would: what they load counts too."""
    import base64
    from urllib import request

    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    for path in ("/", "/samples", "/incidents", "/queries", "/indexes", "/reports", "/metrics"):
        with request.urlopen(request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": auth}),
                             timeout=60) as resp:
            resp.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the stack runs before measuring")
    parser.add_argument("--goal-mb", type=float, default=300.0)
    args = parser.parse_args()
    flower = {"PELBIOT_FLOWER_USER": "admin", "PELBIOT_FLOWER_PASSWORD": "bench-only-password"}
    with running_up(env=flower) as (up, home, env):
        print(f"pelbiot-jobs up is running in {home}; measuring after {args.seconds:.0f} s", file=sys.stderr)
        time.sleep(args.seconds)
        visit_the_web_view(int(env["PELBIOT_WEB_PORT"]), flower["PELBIOT_FLOWER_USER"], flower["PELBIOT_FLOWER_PASSWORD"])
        rows = []
        for pid in tree(up.pid):
            try:
                rows.append((pid, describe(pid), pss_kb(pid)))
            except OSError:
                pass  # a pool process that just ended
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
