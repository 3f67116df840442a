"""`pelbiot-jobs status` against Celery's own way to list the workers, on a running stack.

    .venv/bin/python bench/status.py [--runs 9]

Starts `pelbiot-jobs up --no-flower` on the embedded default in a temporary folder, waits until
its worker has written a heartbeat, then times, one after the other, RUNS times each, as a
user runs them (a new process each time):

- `pelbiot-jobs status`: every job's last run and next due time, workers from their heartbeats;
- `pelbiot-jobs status --json`: the same as JSON (what scripts read);
- `pelbiot-jobs status --ping`: the same, workers asked through the broker (waits 1 s);
- `celery -A pelbiot_jobs inspect ping`: the reference, Celery's worker list alone.

Prints the median wall time of each and the ratio reference / status; goal: status and
status --json under 0.5 s each.
The last line is one JSON object with the figures. Stops the stack after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import BIN, running_up  # noqa: E402


def timed(cmd: list[str], env: dict, cwd: Path, ok=(0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    pj = str(BIN / "pelbiot-jobs")
    with running_up("--no-flower") as (up, home, env):
        deadline = time.monotonic() + 60
        while True:  # the worker's first heartbeat
            done = subprocess.run([pj, "status", "--json"], env=env, cwd=home, capture_output=True, text=True)
            if done.returncode == 0 and json.loads(done.stdout)["workers"]:
                break
            if time.monotonic() > deadline:
                raise SystemExit("no worker heartbeat within 60 s")
            time.sleep(1)
        variants = {
            "pelbiot-jobs status": [pj, "status"],
            "pelbiot-jobs status --json": [pj, "status", "--json"],
            "pelbiot-jobs status --ping": [pj, "status", "--ping"],
            "celery inspect ping": [str(BIN / "celery"), "-A", "pelbiot_jobs", "inspect", "ping"],
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):  # interleaved: a slow moment of the machine hits all three alike
            for name, cmd in variants.items():
                times[name].append(timed(cmd, env, home))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:<28} median {value:.3f} s over {args.runs} runs "
              f"(min {min(times[name]):.3f}, max {max(times[name]):.3f})")
    ratio = medians["celery inspect ping"] / medians["pelbiot-jobs status"]
    met = all(medians[k] < 0.5 for k in ("pelbiot-jobs status", "pelbiot-jobs status --json"))
    print(f"ratio celery inspect ping / pelbiot-jobs status: {ratio:.1f}x; goal: status and status --json under "
          f"0.5 s ({'met' if met else 'NOT met'})")
    print(json.dumps({"runs": args.runs, "median_s": {k: round(v, 3) for k, v in medians.items()},
                      "ratio": round(ratio, 2), "goal_s": 0.5}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
