"""A labelled demo history for the ops DB of the embedded default: the first report, ``health``,
``queries`` and the web view show every capability on a fresh install.

Seven days on three hosts named ``demo-*``: host and database samples since yesterday and hourly
rollups for the week, API request minutes, health scores, slow-query digests with EXPLAIN (PELBIOT's
own worst query among them), an incident that fired and resolved, an index created for that query
with its EXPLAIN rows and latency before and after, a suggestion, tuning recommendations and job
runs. Everything it writes says ``demo``: the hosts, the run IDs, the recommendations' messages,
the incident's summary. ``seed_history`` writes nothing unless both databases are the embedded
default's own files (``Settings.embedded_default``), and nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random

HOSTS = ("demo-web1", "demo-web2", "demo-db1")
DB_HOST = "mysql@demo-db1:3306"
DAYS = 7
#: Marks that the history is there (one row of ops_checkpoints).
MARK = "demo:history"

#: PELBIOT's API queries as its slow log shows them: (fingerprint, example, calls/h, ms per call, rows examined, sent)
QUERIES = (
    ("select max(peak) from load_profiles where date(created_at) = ?",
     "SELECT MAX(peak) FROM load_profiles WHERE DATE(created_at) = ?", 40, 180.0, 48000, 1),
    ("select * from load_profiles where device_id = ? order by created_at desc limit ?",
     "SELECT * FROM load_profiles WHERE device_id = ? ORDER BY created_at DESC LIMIT ?", 600, 4.0, 1200, 24),
    ("select a.*, d.name as device_name from alerts a join devices d on a.device_id = d.id where a.status = ? "
     "order by a.created_at desc", "SELECT a.*, d.name AS device_name FROM alerts a JOIN devices d ON a.device_id = "
     "d.id WHERE a.status = ? ORDER BY a.created_at DESC", 300, 6.0, 900, 40),
    ("select hour, avg(`load`) as `load`, max(peak) as peak from load_profiles where hour >= ? group by hour",
     "SELECT hour, AVG(`load`) AS `load`, MAX(peak) AS peak FROM load_profiles WHERE hour >= ? GROUP BY hour",
     120, 25.0, 14000, 24),
    ("select * from devices where id = ?", "SELECT * FROM devices WHERE id = ?", 3000, 0.3, 1, 1),
    ("update devices set status = ?, updated_at = now() where id = ?",
     "UPDATE devices SET status = ?, updated_at = NOW() WHERE id = ?", 400, 0.8, 1, 0),
)
#: The PELBIOT API route that sends each of QUERIES (the sqlcommenter tag docs/jobs.md shows how to add).
ROUTES = ("/api/reports/daily", "/api/devices/:id/load", "/api/alerts", "/api/dashboard/load", "/api/devices/:id",
          "/api/devices/:id/status")
WORST = QUERIES[0]
#: The index the advisor proposes for the worst query (created in the demo's story, and in the demo app DB).
INDEX_NAME = "idx_load_profiles_created_at_peak"


#: Each demo host's own day: (CPU at rest, CPU added at the busiest hour, memory at rest, memory
#: added, hours its day is shifted by). Memory stays under memory_high (90 %) and CPU under
#: cpu_high (80 %) but for the incident: the alert rules and the history agree.
PROFILES = {"demo-web1": (22.0, 38.0, 52.0, 14.0, 0.0), "demo-web2": (18.0, 30.0, 46.0, 10.0, 1.5),
            "demo-db1": (30.0, 42.0, 64.0, 16.0, -1.0)}
#: The worst query's sargable form, which PELBIOT's API sends once the index is there.
REWRITTEN = "SELECT MAX(peak) FROM load_profiles WHERE created_at >= '{day}' AND created_at < '{day}' + INTERVAL 1 DAY"
#: The demo's job runs: real jobs of beat.yaml, (job, task, runs per hour); the 15 s samplers are left
#: out (their runs would be most of the rows).
JOBS = (("metrics.rollup", "metrics.rollup", 1), ("queries.analyze", "queries.analyze", 1),
        ("db.table_stats", "db.table_stats", 1), ("cache.warm", "cache.warm", 15), ("health.score", "health.score", 12))


def level(host: str, metric: str, t: dt.datetime, incident: bool = False) -> float:
    """A demo host's CPU or memory percent at ``t`` (its own profile; 96 % CPU on demo-web1 during
    the incident)."""
    cpu0, cpu_busy, mem0, mem_busy, shift = PROFILES[host]
    busy = _load(t + dt.timedelta(hours=shift))
    if metric == "host.cpu_percent":
        return 96.0 if incident and host == "demo-web1" else cpu0 + cpu_busy * busy
    return mem0 + mem_busy * busy


def _hours(now: dt.datetime) -> list[dt.datetime]:
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - dt.timedelta(hours=h) for h in range(DAYS * 24, 0, -1)]


def _load(t: dt.datetime) -> float:
    """A day's shape: quiet at night, busy in the afternoon (0.2-1.0)."""
    return 0.6 - 0.4 * math.cos((t.hour + t.minute / 60 - 3) / 24 * 2 * math.pi)


def generate(now: dt.datetime, seed: int = 7) -> dict[str, list[dict]]:
    """Pure: the rows of every ops table, ending at ``now``."""
    from ..queries.analyze import slice_row
    from ..queries.fingerprint import fingerprint, query_id
    from ..queries.tags import canonical

    rnd = random.Random(seed)
    hours = _hours(now)
    out: dict[str, list[dict]] = {k: [] for k in ("metric_rollups", "metric_samples", "health_scores",
                                                  "request_minutes", "query_digests", "query_slices", "job_runs")}
    # Yesterday (the first daily report's day): the index for the worst query is created at 03:00
    # (before, it scans; after, it does not), and an incident fires at 09:12 and resolves.
    yesterday = now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    fixed_at = yesterday + dt.timedelta(hours=3)
    incident_at = yesterday + dt.timedelta(hours=9, minutes=12)
    for hour in hours:
        busy = _load(hour)
        incident = incident_at <= hour + dt.timedelta(minutes=59) and hour < incident_at + dt.timedelta(minutes=35)
        for host in HOSTS:
            for metric in ("host.cpu_percent", "host.memory_percent"):
                avg = level(host, metric, hour + dt.timedelta(minutes=30), incident)
                spread = 1.15 if metric == "host.cpu_percent" else 1.04
                out["metric_rollups"].append({"metric": metric, "host": host, "hour": hour, "samples": 240,
                                              "min": round(avg / spread, 2), "avg": round(avg, 2),
                                              "max": round(min(99.0, avg * spread), 2),
                                              "p95": round(min(98.0, avg * (1 + (spread - 1) / 2)), 2)})
        for metric, value in (("mysql.queries_per_s", 40 + 260 * busy), ("mysql.threads_running", 1 + 6 * busy),
                              ("mysql.slow_queries_per_s", 0.02 + (0.3 * busy if hour < fixed_at else 0.01))):
            out["metric_rollups"].append({"metric": metric, "host": DB_HOST, "hour": hour, "samples": 240,
                                          "min": round(value * 0.6, 3), "avg": round(value, 3),
                                          "max": round(value * 1.5, 3), "p95": round(value * 1.3, 3)})
        out["metric_rollups"].append({"metric": "redis.hit_rate_percent", "host": "redis@demo-cache:6379",
                                      "hour": hour, "samples": 240, "min": 80.0, "avg": round(92 + 5 * rnd.random(), 2),
                                      "max": 99.0, "p95": 98.5})
        for (fp, example, per_hour, ms, examined, sent), route in zip(QUERIES, ROUTES):
            calls = max(1, int(per_hour * busy * (0.8 + 0.4 * rnd.random())))
            each = ms / 1000.0
            plan = None
            if fp == WORST[0] and hour < fixed_at:  # DATE() hides created_at from every index: a full scan
                plan = [{"id": 1, "select_type": "SIMPLE", "table": "load_profiles", "type": "ALL", "key": None,
                         "rows": examined, "Extra": "Using where"}]
            elif fp == WORST[0]:  # the index is there and the API sends the rewrite: a range on it
                example = REWRITTEN.format(day=f"{hour:%Y-%m-%d}")
                fp = fingerprint(example.encode()).decode()
                each, examined = 0.0009, 240
                plan = [{"id": 1, "select_type": "SIMPLE", "table": "load_profiles", "type": "range",
                         "key": INDEX_NAME, "rows": examined, "Extra": "Using where; Using index"}]
            total = calls * each * (0.9 + 0.2 * rnd.random())
            out["query_digests"].append({
                "source": "file", "query_id": query_id(fp.encode()), "window_start": hour, "fingerprint": fp,
                "example": example, "calls": calls, "query_time_sum": round(total, 6),
                "query_time_min": round(each * 0.5, 6), "query_time_max": round(each * 3, 6),
                "query_time_avg": round(total / calls, 6), "query_time_median": round(each, 6),
                "query_time_p95": round(each * 2, 6), "lock_time_sum": round(calls * 0.00002, 6),
                "rows_sent_sum": calls * sent, "rows_examined_sum": calls * examined, "rows_affected_sum": 0,
                "bytes_sent_sum": calls * 120, "full_scans": calls if plan and plan[0]["type"] == "ALL" else 0,
                "filesorts": 0, "tmp_disk_tables": 0, "first_seen": hour, "last_seen": hour + dt.timedelta(minutes=59),
                "databases": json.dumps({"pelbiot": calls}), "users": json.dumps({"demo": calls}),
                "hosts": json.dumps({"demo-web1": calls // 2, "demo-web2": calls - calls // 2}),
                "slow": int(each * 2 > 1.0), "hist": "{}",
                "explain": json.dumps(plan) if plan else None,
                "explain_flags": ("full_scan,no_key" if plan and plan[0]["type"] == "ALL" else "") if plan else None})
            # who sent it: the API's account from both web hosts, each query tagged with its route
            tags = canonical({b"route": route.encode()}).decode()
            for host, share in (("demo-web1", calls // 2), ("demo-web2", calls - calls // 2)):
                if share:
                    out["query_slices"].append(slice_row(
                        "file", query_id(fp.encode()), hour, "demo", host, "pelbiot", tags,
                        [share, round(total * share / calls, 6), round(share * 0.00002, 6), share * examined,
                         share * sent, 0]))
        for job, task, per_hour in JOBS:
            for k in range(per_hour):
                at = hour + dt.timedelta(minutes=60 * k // per_hour + 1)
                out["job_runs"].append({"task_id": f"demo-{job}-{at:%Y%m%d%H%M}", "attempt": 0, "task": task,
                                        "job": job, "trigger": "beat", "state": "SUCCESS", "started_at": at,
                                        "finished_at": at + dt.timedelta(seconds=1), "duration_s": 0.4 + rnd.random()})
    # Yesterday and today: what availability counts (CPU, threads running, slow queries) every 15 s
    # as the samplers take it, the rest every 5 minutes; scores every 5 minutes for the week.
    out["metric_samples"] = list(samples(yesterday, now, rnd, fixed_at, incident_at))
    from ..health.score import health_score

    for i in range(DAYS * 24 * 12):  # scored as health.score scores them, from the same figures
        ts = hours[0] + dt.timedelta(minutes=5 * i)
        busy = _load(ts)
        hot = incident_at <= ts < incident_at + dt.timedelta(minutes=35)
        figures = {"error_rate": 1.2 + 0.8 * busy, "response_time": 80 + 60 * busy}
        per_host = {host: health_score({"cpu": level(host, "host.cpu_percent", ts, hot),
                                        "memory": level(host, "host.memory_percent", ts), **figures})
                    for host in HOSTS}
        overall = health_score({"cpu": max(level(h, "host.cpu_percent", ts, hot) for h in HOSTS),
                                "memory": max(level(h, "host.memory_percent", ts) for h in HOSTS), **figures})
        for host, score in (("*", overall), *per_host.items()):
            out["health_scores"].append({"host": host, "ts": ts, "score": score["score"], "status": score["status"],
                                         "present": score["present"],
                                         "components": json.dumps({"components": score["components"],
                                                                   "of": score["of"]})})
    out["request_minutes"] = list(request_minutes(hours[0], now, rnd))
    return out | _events(now, fixed_at, incident_at)


def samples(start: dt.datetime, end: dt.datetime, rnd: random.Random, fixed_at: dt.datetime | None = None,
            incident_at: dt.datetime | None = None):
    """Sample rows of the demo hosts from ``start`` (a 15 s slot) to ``end``: CPU, threads running and
    slow queries every 15 s as the samplers take them, the rest every 5 minutes."""
    ts, step = start, dt.timedelta(seconds=15)
    while ts < end:
        busy = _load(ts)
        every_5_min = ts.second == 0 and ts.minute % 5 == 0
        hot = incident_at is not None and incident_at <= ts < incident_at + dt.timedelta(minutes=35)
        fixed = fixed_at is None or ts >= fixed_at
        for host in HOSTS:
            cpu = level(host, "host.cpu_percent", ts, hot) + 4 * rnd.random()
            yield {"metric": "host.cpu_percent", "host": host, "ts": ts, "value": round(cpu, 2)}
            if every_5_min:
                yield {"metric": "host.memory_percent", "host": host, "ts": ts,
                       "value": round(level(host, "host.memory_percent", ts), 2)}
        yield {"metric": "mysql.threads_running", "host": DB_HOST, "ts": ts, "value": round(1 + 6 * busy, 2)}
        yield {"metric": "mysql.slow_queries_per_s", "host": DB_HOST, "ts": ts,
               "value": round(0.02 + (0.005 if fixed else 0.3 * busy), 4)}
        if every_5_min:
            yield {"metric": "mysql.queries_per_s", "host": DB_HOST, "ts": ts, "value": round(40 + 260 * busy, 2)}
            yield {"metric": "redis.hit_rate_percent", "host": "redis@demo-cache:6379", "ts": ts,
                   "value": round(92 + 5 * rnd.random(), 2)}
        ts += step


def request_minutes(start: dt.datetime, end: dt.datetime, rnd: random.Random):
    """Per-minute API telemetry rows (demo source), as the stream ingester stores them."""
    from ..metrics.requests import MinuteAgg, Request

    minute = start.replace(second=0, microsecond=0)
    while minute < end:
        agg = MinuteAgg()
        for _ in range(max(1, int(30 * _load(minute) * (0.7 + 0.6 * rnd.random())))):
            route = rnd.choice(("/api/devices", "/api/alerts/active", "/api/load-profiles", "/api/dashboard"))
            agg.add(Request(minute.timestamp() + rnd.random() * 59, "GET", route,
                            rnd.choice([200] * 60 + [404, 500]), rnd.lognormvariate(3.6, 0.6)))
        s = agg.summary()
        yield {"source": "demo", "minute": minute, "requests": s["requests"], "c4xx": s["c4xx"], "c5xx": s["c5xx"],
               "error_rate_percent": s["error_rate_percent"], "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"],
               "p99_ms": s["p99_ms"], "avg_ms": s["avg_ms"], "max_ms": s["max_ms"],
               "slowest_routes": json.dumps(s["slowest_routes"]), "agg": json.dumps(agg.to_json())}
        minute += dt.timedelta(minutes=1)


def _events(now: dt.datetime, fixed_at: dt.datetime, incident_at: dt.datetime) -> dict[str, list[dict]]:
    from ..queries.fingerprint import query_id

    worst_id = query_id(WORST[0].encode())
    target = REWRITTEN.format(day=f"{fixed_at:%Y-%m-%d}")
    day = now.replace(hour=3, minute=30, second=0, microsecond=0) - dt.timedelta(days=1)
    return {
        "incidents": [{"rule": "cpu_high", "host": "demo-web1", "severity": "critical", "status": "resolved",
                       "opened_at": incident_at, "resolved_at": incident_at + dt.timedelta(minutes=35),
                       "acknowledged_by": "demo-operator", "acknowledged_at": incident_at + dt.timedelta(minutes=6),
                       "hold": 0, "resolved_by": "auto", "last_value": 96.0,
                       "summary": "(demo) cpu_high on demo-web1: CPU 96 % over 80 % for 2 min"}],
        "index_changes": [
            {"run_id": "demo-history", "table_name": "load_profiles", "index_name": INDEX_NAME,
             "statement": "ALTER TABLE `load_profiles` ADD INDEX `idx_load_profiles_created_at_peak` (`created_at`, "
                          "`peak`), ALGORITHM=INPLACE, LOCK=NONE",
             "started_at": fixed_at, "finished_at": fixed_at + dt.timedelta(seconds=3), "duration_s": 2.7,
             "outcome": "created", "reason": "(demo) advisor: range on created_at; covering (peak read from the index); "
                                             f"sargable rewrite: DATE(created_at) = ? -> created_at >= ? AND created_at < "
                                             f"? + INTERVAL 1 DAY (query {worst_id[:16]})",
             "table_bytes": 6_291_456, "threads_running_max": 3, "target_query": target,
             "explain_rows_before": 47376, "explain_rows_after": 240, "latency_ms_before": 182.4, "latency_ms_after": 0.9},
            {"run_id": "demo-history", "table_name": "alerts", "index_name": "idx_alerts_device_id_created_at",
             "statement": "ALTER TABLE `alerts` ADD INDEX `idx_alerts_device_id_created_at` (`device_id`, `created_at`), "
                          "ALGORITHM=INPLACE, LOCK=NONE",
             "started_at": now - dt.timedelta(hours=5), "outcome": "suggested",
             "reason": "(demo) advisor: equality on device_id; order by created_at (query "
                       f"{query_id(QUERIES[2][0].encode())[:16]})", "explain_rows_before": 900}],
        "recommendations": [
            {"day": day, "code": "buffer_pool_vs_data", "severity": "warning", "category": "performance",
             "subject": "innodb_buffer_pool_size", "first_seen": day, "fix": "SET GLOBAL innodb_buffer_pool_size = 536870912;",
             "message": "(demo) innodb_buffer_pool_size (128 MB) is smaller than the InnoDB data (412 MB): raise it "
                        "to about 512 MB so the working set stays in memory", "evidence": json.dumps(
                 {"innodb_buffer_pool_size": 134217728, "innodb_data_bytes": 432013312})},
            {"day": day, "code": "duplicate_indexes", "severity": "info", "category": "schema",
             "subject": "alerts.idx_device_id", "first_seen": day,
             "fix": "ALTER TABLE `alerts` DROP INDEX `idx_device_id`;",
             "message": "(demo) 2 redundant indexes (alerts.idx_device_id is a prefix of idx_alerts_device_status)",
             "evidence": json.dumps({"duplicates": 2})}],
    }


def seed_history(settings, now: dt.datetime | None = None) -> dict[str, int] | None:
    """Write the demo history into the embedded default's ops DB, once; None when not written (a
    configured database, or written before)."""
    from ..db.engine import engine_for

    if not settings.embedded_default:
        return None  # a configured database never gets demo rows
    written = write_history(engine_for(settings.ops_db_url), now)
    if written is not None:
        create_the_index(settings)
    return written


def write_history(engine, now: dt.datetime | None = None) -> dict[str, int] | None:
    """The demo week's rows into ``engine``'s ops tables, once (None: written before). Only the
    embedded default (``seed_history``) and the tests write it."""
    from sqlalchemy import insert

    from ..db import checkpoints
    from ..db import ops_models as m
    from ..db.ops_models import incident_events, incidents
    from ..lib.clock import utcnow

    tables = {"metric_rollups": m.metric_rollups, "metric_samples": m.metric_samples, "health_scores": m.health_scores,
              "request_minutes": m.request_minutes, "query_digests": m.query_digests,
              "query_slices": m.query_slices, "job_runs": m.job_runs,
              "index_changes": m.index_changes, "recommendations": m.recommendations}
    now = now or utcnow()
    with engine.begin() as conn:
        if checkpoints.get(conn, MARK):
            return None
        rows = generate(now)
        written = {}
        for name, batch in rows.items():
            if batch and name != "incidents":
                keys = sorted({k for row in batch for k in row})  # one shape for every row of a batch
                conn.execute(insert(tables[name]), [{k: row.get(k) for k in keys} for row in batch])
                written[name] = len(batch)
        if rows["query_slices"]:  # what a week's attribution reads beside the hourly slices
            from ..queries.analyze import day_of, roll_days

            roll_days(conn, {(r["source"], r["query_id"], day_of(r["window_start"])) for r in rows["query_slices"]})
        for row in rows["incidents"]:
            incident_id = conn.execute(insert(incidents).values(**row)).inserted_primary_key[0]
            conn.execute(insert(incident_events), [
                {"incident_id": incident_id, "at": row["opened_at"], "kind": "opened", "actor": "pelbiot-jobs",
                 "detail": "(demo) CPU 96 % over 80 % for 2 min"},
                {"incident_id": incident_id, "at": row["acknowledged_at"], "kind": "acknowledged",
                 "actor": "demo-operator", "detail": "(demo) looking at it"},
                {"incident_id": incident_id, "at": row["resolved_at"], "kind": "resolved", "actor": "pelbiot-jobs",
                 "detail": "(demo) CPU back under 70 %"}])
            written["incidents"] = written.get("incidents", 0) + 1
        checkpoints.put(conn, MARK, {"written": written, "at": now.isoformat()}, now)
    return written


def create_the_index(settings) -> str | None:
    """What the history says was done, done in the demo app DB: the index the real advisor
    proposes for the worst query, from the digests just written, with the statement it plans.
    Returns that statement (None when the index was there already)."""
    from ..db.engine import engine_for
    from ..indexes.service import current_plan

    plan = current_plan(settings)
    if any(e["name"] == INDEX_NAME for e in plan["exists"]):
        return None
    entry = next((e for e in plan["create"] if e["name"] == INDEX_NAME), None)
    if entry is None:
        raise RuntimeError(f"the advisor no longer proposes {INDEX_NAME} for the demo's worst query: "
                           "the demo history must tell what it proposes (demo_history.QUERIES)")
    with engine_for(settings.app_db_url).begin() as conn:
        conn.exec_driver_sql(entry["sql"])
    return entry["sql"]


#: At most this many minutes of demo telemetry are written at once (after `up` was stopped a while).
FEED_MAX_MINUTES = 60


def feed_requests(settings, now: dt.datetime | None = None) -> int:
    """While `up` runs on the embedded default: the demo API telemetry and the demo hosts' samples
    of the minutes since the last ones written (source ``demo``, hosts ``demo-*``), so health
    (scored by the real health.score from them), reports and the web view stay current. Writes
    nothing on a configured database; returns the minutes of telemetry written."""
    from sqlalchemy import func, insert, select

    from ..db.engine import engine_for
    from ..db.ops_models import metric_samples
    from ..db.ops_models import request_minutes as table
    from ..lib.clock import as_datetime, utcnow

    if not settings.embedded_default:
        return 0
    now = (now or utcnow()).replace(second=0, microsecond=0)
    engine = engine_for(settings.ops_db_url)
    rnd = random.Random(int(now.timestamp()))
    with engine.begin() as conn:
        last = conn.execute(select(func.max(table.c.minute)).where(table.c.source == "demo")).scalar()
        start = max(last + dt.timedelta(minutes=1), now - dt.timedelta(minutes=FEED_MAX_MINUTES)) if last else \
            now - dt.timedelta(minutes=1)
        rows = list(request_minutes(start, now, rnd))
        if rows:
            conn.execute(insert(table), rows)
        c = metric_samples.c
        last = conn.execute(select(func.max(c.ts)).where(c.host == HOSTS[0], c.metric == "host.cpu_percent")).scalar()
        if last is not None:  # only after the history: a configured ops DB never has demo hosts
            first = max(as_datetime(last) + dt.timedelta(seconds=15), now - dt.timedelta(minutes=FEED_MAX_MINUTES))
            first = first.replace(second=first.second // 15 * 15, microsecond=0)
            fed = list(samples(first, now, rnd))
            if fed:
                conn.execute(insert(metric_samples), fed)
    return len(rows)
