"""Cache writes: the warmer's write path against a bare redis-py pipeline and redis-benchmark.

    .venv/bin/python bench/cache_warm.py [--keys 200000] [--value-bytes 400] [--port 6379] [--db 14]

Writes the same N key/value pairs (JSON bodies of a realistic size) to the same Redis three ways
in one run: pelbiot_jobs.cache.writer.write_keys (pipelined SET ... EX with jittered TTLs, what
cache.warm uses), a bare redis-py pipeline of SET ... EX, and `redis-benchmark -P 16 -t set` for
reference. Prints the three rates and the ratio of the warmer to the bare pipeline (goal >= 0.9);
the last line is one JSON object with the figures. The database used is flushed afterwards.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from pelbiot_jobs.cache.writer import BATCH, write_keys  # noqa: E402


def make_items(n: int, size: int) -> list[tuple[str, bytes]]:
    pad = "x" * max(0, size - 120)
    return [(f"route:/api/devices/{i}",
             json.dumps({"success": True, "data": {"id": i, "name": f"Panel A-{i:06d}", "type": "panel",
                                                   "status": "online", "location": pad}},
                        separators=(",", ":")).encode()) for i in range(n)]


def warmer(client, items) -> float:
    t = time.perf_counter()
    write_keys(client, items, 300, 30)
    return time.perf_counter() - t


def bare(client, items) -> float:
    t = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i, (key, value) in enumerate(items, 1):
        pipe.set(key, value, ex=300)
        if i % BATCH == 0:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - t


def redis_benchmark(port: int, db: int, n: int, size: int) -> float | None:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return None
    out = subprocess.run([exe, "-h", "127.0.0.1", "-p", str(port), "--dbnum", str(db), "-P", "16", "-t", "set",
                          "-n", str(n), "-d", str(size), "-q"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"SET: ([\d.]+) requests per second", out)
    return float(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--db", type=int, default=14)
    args = parser.parse_args()

    client = redis.Redis(host="127.0.0.1", port=args.port, db=args.db)
    items = make_items(args.keys, args.value_bytes)
    size = sum(len(v) for _, v in items) // len(items)
    ours, theirs = [], []
    try:
        for round_ in range(args.rounds):
            client.flushdb()
            if round_ % 2:
                theirs.append(bare(client, items))
                client.flushdb()
                ours.append(warmer(client, items))
            else:
                ours.append(warmer(client, items))
                client.flushdb()
                theirs.append(bare(client, items))
        ours_rate = args.keys / statistics.median(ours)
        bare_rate = args.keys / statistics.median(theirs)
        client.flushdb()
        reference = redis_benchmark(args.port, args.db, args.keys, size)
    finally:
        client.flushdb()
    ratio = ours_rate / bare_rate
    print(f"keys                         {args.keys:,} of ~{size} bytes, {args.rounds} rounds (median)")
    print(f"warmer write path            {ours_rate:,.0f} keys/s  (pipelined SET EX, jittered TTL)")
    print(f"bare redis-py pipeline       {bare_rate:,.0f} keys/s  (SET EX, same batches)")
    print("redis-benchmark -P 16 -t set " + (f"{reference:,.0f} keys/s  (C client, for reference)"
                                              if reference else "not installed"))
    print(f"ratio warmer / bare          {ratio:.2f}  (goal >= 0.9)")
    print(json.dumps({"bench": "cache_warm", "keys": args.keys, "value_bytes": size,
                      "warmer_keys_per_s": round(ours_rate), "bare_pipeline_keys_per_s": round(bare_rate),
                      "redis_benchmark_keys_per_s": round(reference) if reference else None,
                      "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
