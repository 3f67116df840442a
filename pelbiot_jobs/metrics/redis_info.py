"""Cache Redis metrics from INFO: parse (pure), and turn two readings into metrics (pure)."""

from __future__ import annotations

import time

from .rates import Reading, counter_rates, delta

COUNTERS = ("total_commands_processed", "keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys")
GAUGES = {"used_memory": "redis.used_memory_bytes", "mem_fragmentation_ratio": "redis.fragmentation_ratio",
          "connected_clients": "redis.connected_clients"}


def parse_info(text: str) -> dict[str, str]:
    """Parse the text of INFO into a flat mapping (sections and comments dropped)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        out[key] = value
    return out


def reading_from_info(info: dict, ts: float | None = None) -> Reading:
    def number(key):
        try:
            return float(info[key])
        except (KeyError, TypeError, ValueError):
            return None

    counters = {k: number(k) for k in COUNTERS if number(k) is not None}
    gauges = {k: number(k) for k in GAUGES}
    return Reading(ts=ts if ts is not None else time.time(), counters=counters, gauges=gauges,
                   uptime=number("uptime_in_seconds"))


def read_redis(client) -> Reading:
    """One raw reading of a Redis server (redis-py parses INFO into a dict already)."""
    return reading_from_info(client.info())


def redis_metrics(prev: Reading | None, cur: Reading) -> dict[str, float | None]:
    out: dict[str, float | None] = {metric: cur.gauges.get(key) for key, metric in GAUGES.items()}
    rates = counter_rates(prev, cur)
    if rates is None:
        return out
    out["redis.ops_per_s"] = round(rates.get("total_commands_processed", 0.0), 3)
    out["redis.evictions_per_s"] = round(rates.get("evicted_keys", 0.0), 4)
    out["redis.expired_per_s"] = round(rates.get("expired_keys", 0.0), 4)
    hits, misses = delta(prev, cur, "keyspace_hits"), delta(prev, cur, "keyspace_misses")
    if hits is not None and misses is not None and hits + misses > 0:
        # Over the interval, not since start: a hit rate that moves when the cache goes cold.
        out["redis.hit_rate_percent"] = round(100.0 * hits / (hits + misses), 3)
    return out
