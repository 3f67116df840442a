import datetime as dt
import random

import pytest

from pelbiot_jobs.metrics.host import host_metrics
from pelbiot_jobs.metrics.mysql import MYSQL_METRICS, database_metrics
from pelbiot_jobs.metrics.rates import Reading, counter_rates
from pelbiot_jobs.metrics.redis_info import parse_info, reading_from_info, redis_metrics
from pelbiot_jobs.metrics.requests import (
    MinuteAgg,
    Request,
    aggregate,
    normalize_path,
    parse_access_line,
    parse_stream_fields,
)
from pelbiot_jobs.metrics.rollup import hours_to_roll, p95, rollup_rows
from pelbiot_jobs.metrics.view import sparkline


def r(ts, uptime=None, **counters):
    return Reading(ts=ts, counters=counters, uptime=uptime)


@pytest.mark.parametrize("prev, cur, expected", [
    (None, r(10, q=5), None),  # first sample: no baseline
    (r(0, q=100), r(10, q=150), {"q": 5.0}),
    (r(0, q=100), r(10, q=40), None),  # counter went backwards: a restart, new baseline
    (r(0, uptime=5000, q=100), r(10, uptime=8, q=120), None),  # uptime went backwards
    (r(0, q=100), r(0.1, q=101), None),  # too close: a duplicate, not an interval
    (r(0, q=100), r(3600, q=200), None),  # after an outage: no hour-long average
    (r(0, q=2**64 - 10), r(10, q=5), None),  # a 64-bit wrap looks like a reset: no negative rate
    (r(0, q=1, gone=3), r(10, q=11), {"q": 1.0}),  # a counter that vanished is skipped
])
def test_counter_rates(prev, cur, expected):
    assert counter_rates(prev, cur) == expected


def cpu(ts, busy0, total0, busy1, total1, **extra):
    counters = {"cpu.busy{0}": busy0, "cpu.total{0}": total0, "cpu.busy{1}": busy1, "cpu.total{1}": total1}
    counters.update(extra)
    return Reading(ts=ts, counters=counters, gauges={"host.memory_percent": 42.0})


def test_host_cpu_percent_from_cpu_time_deltas():
    prev = cpu(0, 100, 1000, 50, 1000, **{"net.bytes_recv": 0})
    cur = cpu(15, 115, 1015, 50, 1015, **{"net.bytes_recv": 1500})
    m = host_metrics(prev, cur)
    assert m["host.cpu_percent{0}"] == 100.0 and m["host.cpu_percent{1}"] == 0.0
    assert m["host.cpu_percent"] == 50.0
    assert m["host.net_in_bytes_per_s"] == 100.0
    assert m["host.memory_percent"] == 42.0
    assert "host.cpu_percent" not in host_metrics(None, cur)  # first sample: gauges only


def mysql_reading(ts, uptime, **counters):
    return Reading(ts=ts, uptime=uptime, counters=counters,
                   gauges={"Threads_connected": 30.0, "Threads_running": 3.0, "max_connections": 151.0})


def test_database_metrics_rates_gauges_and_hit_ratio():
    prev = mysql_reading(0, 100, Questions=1000, Com_select=500, Innodb_buffer_pool_read_requests=10000,
                         Innodb_buffer_pool_reads=100)
    cur = mysql_reading(10, 110, Questions=2000, Com_select=1300, Innodb_buffer_pool_read_requests=20000,
                        Innodb_buffer_pool_reads=150)
    m = database_metrics(prev, cur)
    assert m["mysql.queries_per_s"] == 100.0 and m["mysql.selects_per_s"] == 80.0
    assert m["mysql.buffer_pool_hit_percent"] == 99.5
    assert m["mysql.connection_usage_percent"] == round(100 * 30 / 151, 2)
    first = database_metrics(None, cur)
    assert "mysql.queries_per_s" not in first and first["mysql.threads_running"] == 3.0
    restarted = database_metrics(cur, mysql_reading(20, 5, Questions=10))
    assert "mysql.queries_per_s" not in restarted


def test_sqlite_records_mysql_metrics_as_not_applicable():
    m = database_metrics(None, Reading(ts=1, gauges={"sqlite.file_bytes": 4096.0, "sqlite.page_count": 1.0,
                                                     "sqlite.freelist_count": 0.0}))
    assert all(m[name] is None for name in MYSQL_METRICS)
    assert m["sqlite.page_count"] == 1.0


INFO = """# Server
redis_version:7.0.15
uptime_in_seconds:1000
# Clients
connected_clients:7
# Memory
used_memory:1048576
mem_fragmentation_ratio:1.25
# Stats
total_commands_processed:5000
keyspace_hits:{hits}
keyspace_misses:{misses}
evicted_keys:{evicted}
expired_keys:3
"""


def test_redis_info_parsing_and_interval_hit_rate():
    info0 = parse_info(INFO.format(hits=900, misses=100, evicted=0))
    assert info0["redis_version"] == "7.0.15" and info0["used_memory"] == "1048576"
    prev = reading_from_info(info0, ts=0)
    cur = reading_from_info(parse_info(INFO.format(hits=930, misses=110, evicted=5)), ts=10)
    m = redis_metrics(prev, cur)
    assert m["redis.hit_rate_percent"] == 75.0  # 30 hits, 10 misses in the interval, not 90 % since start
    assert m["redis.evictions_per_s"] == 0.5
    assert m["redis.used_memory_bytes"] == 1048576 and m["redis.fragmentation_ratio"] == 1.25
    assert "redis.hit_rate_percent" not in redis_metrics(None, cur)


def test_percentiles_are_within_a_bucket_of_the_exact_value():
    rnd = random.Random(7)
    durations = [rnd.lognormvariate(4, 1) for _ in range(5000)]
    agg = MinuteAgg()
    for d in durations:
        agg.add(Request(0, "GET", "/api/x", 200, d))
    exact = sorted(durations)
    for q in (50, 95, 99):
        true = exact[int(q / 100 * len(exact)) - 1]
        assert true * 0.99 <= agg.percentile(q) <= true * 1.06, q


def test_minutes_read_in_two_runs_merge_to_the_same_figures():
    rnd = random.Random(3)
    reqs = [Request(1_700_000_000 + rnd.uniform(0, 180), rnd.choice("GP"), rnd.choice(["/a", "/b"]),
                    rnd.choice([200, 200, 404, 500]), rnd.uniform(1, 900)) for _ in range(2000)]
    at_once = aggregate(reqs)
    first, second = aggregate(reqs[:700]), aggregate(reqs[700:])
    merged = {m: first[m].merge(second[m]) if m in first and m in second else first.get(m) or second[m]
              for m in set(first) | set(second)}
    assert {m: a.summary() for m, a in at_once.items()} == {m: a.summary() for m, a in merged.items()}
    s = next(iter(at_once.values())).summary()
    assert s["error_rate_percent"] == round(100 * s["c5xx"] / s["requests"], 3)
    assert s["slowest_routes"][0]["avg_ms"] >= s["slowest_routes"][-1]["avg_ms"]


LINE = ('10.0.0.7 - - [28/Nov/2026:22:30:01 +0000] "GET /api/devices/42?page=2 HTTP/1.1" 200 512 '
        '"-" "Mozilla/5.0 (X11) \\"quoted\\"" 0.125')


def test_access_log_lines():
    req = parse_access_line(LINE)
    assert req == Request(ts=dt.datetime(2026, 11, 28, 22, 30, 1, tzinfo=dt.timezone.utc).timestamp(),
                          method="GET", route="/api/devices/:id", status=200, duration_ms=125.0)


@pytest.mark.parametrize("line", [
    "", "garbage", LINE.replace(" 0.125", ""),  # no request time
    LINE.replace("28/Nov/2026", "31/Feb/2026"), LINE.replace('"GET ', '"'), LINE[:60],
])
def test_malformed_access_lines_are_rejected(line):
    assert parse_access_line(line) is None


def test_stream_fields():
    req = parse_stream_fields({b"method": b"get", b"route": b"/api/load-profile/7", b"status": b"503",
                               b"duration_ms": b"12.5", b"ts": b"1700000000123"})
    assert req == Request(1700000000.123, "GET", "/api/load-profile/:id", 503, 12.5)
    assert parse_stream_fields({b"method": b"GET", b"status": b"x"}) is None


def test_normalize_path():
    assert normalize_path("/api/devices/42") == "/api/devices/:id"
    assert normalize_path("/api/u/5f2b7c9e1a2b3c4d5e6f7a8b/x") == "/api/u/:id/x"
    assert normalize_path("/api/load-profile/peak?date=2026-11-28") == "/api/load-profile/peak"


HOUR = dt.datetime(2026, 11, 28, 10)


def test_rollup_rows_and_p95():
    rows = rollup_rows([("cpu", "h1", float(v)) for v in range(1, 101)] + [("cpu", "h1", None), ("mem", "h1", 5.0)],
                       HOUR)
    cpu = rows[0]
    assert (cpu["samples"], cpu["min"], cpu["max"], cpu["avg"], cpu["p95"]) == (100, 1.0, 100.0, 50.5, 95.0)
    assert rows[1]["metric"] == "mem" and rows[1]["p95"] == 5.0
    assert p95([3.0]) == 3.0


def test_hours_to_roll_with_a_pinned_clock():
    now = dt.datetime(2026, 11, 28, 13, 20)
    assert hours_to_roll(None, dt.datetime(2026, 11, 28, 10, 40), now) == [HOUR, HOUR.replace(hour=11),
                                                                             HOUR.replace(hour=12)]
    assert hours_to_roll(HOUR.replace(hour=12), None, now) == []  # the current hour is not complete
    assert len(hours_to_roll(None, now - dt.timedelta(days=30), now)) == 48  # bounded catch-up
    assert hours_to_roll(None, None, now) == []


def test_sparkline_keeps_peaks_when_downsampling():
    values = [1.0] * 200
    values[137] = 50.0
    line = sparkline(values)
    assert len(line) == 24 and "█" in line
    assert sparkline([]) == "" and sparkline([2.0, 2.0]) == "▄▄"
