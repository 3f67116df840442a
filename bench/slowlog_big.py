"""Slow-log digest of a 1 GB log: memory, time against size, and the same classes as pt-query-digest.

    .venv/bin/python bench/slowlog_big.py [--copies 30] [--no-pt]

Builds (in bench/.cache/) COPIES copies of the 34 MB log bench/slowlog.py recorded from MariaDB,
end to end (about 1 GB), with a 50 MB INSERT on one line in the middle and the last event cut
off. Times `pelbiot-jobs slowlog --format json` on the 34 MB log (best of 3) and on the big one, samples the
peak PSS of all its processes (shared pages counted once), and prints both times, the ratio of
time to size (linear: the big log takes about COPIES times the small one), the lines on stderr,
and, unless --no-pt, whether its classes and counts equal pt-query-digest's on the same big log
(read with a Time line on every event, as bench/slowlog.py does; pt takes about 6 minutes).
Goal: under 200 MB PSS, time linear in size, the same classes (but for the 50 MB event, which
pt reads and this digest skips), one line on stderr. The last line is one JSON object. Run bench/slowlog.py once first (it records the 34 MB log).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / ".cache"
GOAL_MB = 200


def _bench_slowlog():
    spec = importlib.util.spec_from_file_location("bench_slowlog", ROOT / "bench" / "slowlog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(small: Path, big: Path, copies: int) -> None:
    """The big log from ``copies`` of ``small``, a 50 MB line after the middle copy, the last
    event cut 30 bytes before the end of its query."""
    data = small.read_bytes()
    with open(big, "wb") as fh:
        for i in range(copies):
            fh.write(data if i < copies - 1 else data[:-30])
            if i == copies // 2:
                fh.write(b"# Time: 251129 10:00:00\n# User@Host: api[api] @ localhost []\n"
                         b"# Query_time: 2.5  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0\n"
                         b"SET timestamp=1795428000;\nINSERT INTO activity_logs (description) VALUES ('")
                fh.write(b"x" * (50 << 20))
                fh.write(b"');\n")
    return big.stat().st_size, 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--no-pt", action="store_true", help="skip pt-query-digest's 6 minutes on the big log")
    args = parser.parse_args()
    sl = _bench_slowlog()
    small = CACHE / "slow-34mb.log"
    if not small.exists():
        raise SystemExit(f"{small} is missing: run .venv/bin/python bench/slowlog.py first (it records it)")
    big = CACHE / f"slow-34mb-x{args.copies}-hostile.log"
    if not big.exists():
        build(small, big, args.copies)
    cmd = [sys.executable, "-m", "pelbiot_jobs.cli", "slowlog", "--format", "json"]
    sl.timed(cmd + [str(small)], ROOT, env=sl.OURS_ENV)  # bytecode written, the small log in the page cache
    small_s, small_out, small_mb = min((sl.timed(cmd + [str(small)], ROOT, env=sl.OURS_ENV) for _ in range(3)),
                                       key=lambda r: r[0])
    with tempfile.TemporaryFile() as err:
        big_s, big_out, big_mb = sl.timed(cmd + [str(big)], ROOT, err, env=sl.OURS_ENV)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    ours = json.loads(big_out)
    size_ratio = big.stat().st_size / small.stat().st_size
    print(f"34 MB log  {small.stat().st_size / 2**20:7.0f} MB  {small_s:6.2f} s  peak {small_mb:5.0f} MB PSS")
    print(f"big log    {big.stat().st_size / 2**20:7.0f} MB  {big_s:6.2f} s  peak {big_mb:5.0f} MB PSS  "
          f"(goal under {GOAL_MB} MB)")
    print(f"time ratio {big_s / small_s:.1f} for a size ratio of {size_ratio:.1f} "
          f"({'linear' if big_s / small_s <= size_ratio * 1.15 else 'NOT linear'}: within 15 %)")
    g = ours["global"]
    print(f"events {g['query_count']:,}, classes {len(ours['classes'])}, skipped {g['skipped_events']}, "
          f"oversized {g['oversized_events']}; stderr, {stderr.count(chr(10))} line(s): {stderr.strip()}")
    agree = None
    if not args.no_pt:
        pt = shutil.which("pt-query-digest")
        if pt is None:
            raise SystemExit("pt-query-digest is not installed: apt-get install percona-toolkit (or --no-pt)")
        from tests.slowlog_shapes import with_time_lines

        timed_log = big.with_suffix(".timed")
        if not timed_log.exists():
            timed_log.write_bytes(with_time_lines(big.read_bytes()))
        pt_s, pt_out, _ = sl.timed([pt, "--output", "json", "--limit", "1000000", str(timed_log)])
        a, b = sl.counts(big_out), sl.counts(pt_out)
        # pt reads the 50 MB event; ours skips it (oversized): every other class, count for count
        beyond = {k: v - a.get(k, 0) for k, v in b.items() if v != a.get(k)}
        agree = set(a) <= set(b) and sum(beyond.values()) == g["oversized_events"] and \
            all(v > 0 for v in beyond.values())
        print(f"pt-query-digest {pt_s:.1f} s: {len(b)} classes, {sum(b.values()):,} events; ours {len(a)}, "
              f"{sum(a.values()):,}: {'the same' if agree else 'NOT the same'} but for the "
              f"{g['oversized_events']} oversized event(s) pt read ({beyond})")
    print(json.dumps({"bench": "slowlog_big", "small_bytes": small.stat().st_size, "big_bytes": big.stat().st_size,
                      "small_s": round(small_s, 2), "big_s": round(big_s, 2), "small_peak_mb": round(small_mb, 1),
                      "big_peak_mb": round(big_mb, 1), "events": g["query_count"], "classes": len(ours["classes"]),
                      "oversized": g["oversized_events"], "skipped": g["skipped_events"],
                      "stderr_lines": stderr.count("\n"), "agree_with_pt": agree}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
