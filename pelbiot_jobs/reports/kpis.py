"""The KPI header of a report, and the tables below it. Pure: DataFrames in, plain data out."""

from __future__ import annotations

import pandas as pd

from .data import SAMPLE_INTERVAL, Period, merged_requests

#: Top queries listed per ordering.
TOP_QUERIES = 10


def _num(value):
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return float(value)


def kpis(data: dict, p: Period, now=None) -> dict:
    """Figures of the period; None where there is no data. Availability is over the part of the
    period that has passed at ``now`` (a report of today counts the hours so far)."""
    health = data["health"]
    hosts = data["hosts"]
    db = data["database"]
    cache = data["cache"]
    jobs = data["jobs"]
    inc = data["incidents"]
    req = merged_requests(data["requests"])
    elapsed = p.seconds if now is None else max(0.0, min(p.seconds, (now - p.start).total_seconds()))
    expected = max(elapsed, SAMPLE_INTERVAL) / SAMPLE_INTERVAL
    availability = {}
    if not hosts.empty:
        cpu = hosts[hosts.metric == "host.cpu_percent"]
        for host, n in cpu.groupby("host")["samples"].sum().items():
            availability[host] = min(100.0, 100.0 * n / expected)
    qps = db[db.metric == "mysql.queries_per_s"]
    slow = db[db.metric == "mysql.slow_queries_per_s"]
    db_seen = db[db.metric == "mysql.threads_running"]
    return {
        "health_avg": _num(health.score.mean()) if not health.empty else None,
        "health_min": _num(health.score.min()) if not health.empty else None,
        "availability": availability,
        "database_availability": min(100.0, 100.0 * db_seen["samples"].sum() / expected) if not db_seen.empty else None,
        "api_requests": req.count if req.count else None,
        "error_rate_percent": (100.0 * req.c5xx / req.count) if req.count else None,
        "p95_ms": req.percentile(95),
        "qps_avg": _num(qps.value.mean()) if not qps.empty else None,
        "slow_queries": _num((slow.value * SAMPLE_INTERVAL * slow["samples"]).sum()) if not slow.empty else None,
        "cache_hit_rate": _num(cache.value.mean()) if not cache.empty else None,
        "jobs_run": int(len(jobs)) if not jobs.empty else 0,
        "jobs_failed": int((jobs.state == "FAILURE").sum()) if not jobs.empty else 0,
        "incidents_opened": int(((inc.opened_at >= p.start) & (inc.opened_at < p.end)).sum()) if not inc.empty else 0,
        "incidents_open": int((inc.status != "resolved").sum()) if not inc.empty else 0,
    }


#: Figures where more is better (a rise shows green); the others show green when they fall.
HIGHER_IS_BETTER = frozenset({"health_avg", "health_min", "database_availability", "cache_hit_rate", "jobs_run",
                              "availability"})

KPI_LABELS = (
    ("health_avg", "Health score (avg)", "{:.1f}"), ("health_min", "Health score (min)", "{:.1f}"),
    ("database_availability", "Database availability", "{:.2f} %"), ("api_requests", "API requests", "{:,.0f}"),
    ("error_rate_percent", "API error rate", "{:.2f} %"), ("p95_ms", "API p95 latency", "{:.0f} ms"),
    ("qps_avg", "Queries per second (avg)", "{:.1f}"), ("slow_queries", "Slow queries", "{:,.0f}"),
    ("cache_hit_rate", "Cache hit rate", "{:.1f} %"), ("jobs_run", "Jobs run", "{:,}"),
    ("jobs_failed", "Jobs failed", "{:,}"), ("incidents_opened", "Incidents opened", "{:,}"),
    ("incidents_open", "Incidents still open", "{:,}"),
)


def kpi_rows(now: dict, before: dict) -> list[dict]:
    """KPI rows with their change against the previous period."""
    rows = []
    for key, label, fmt in KPI_LABELS:
        value, prev = now.get(key), before.get(key)
        change = None
        if value is not None and prev not in (None, 0):
            change = 100.0 * (value - prev) / abs(prev)
        rows.append({"kpi": key, "label": label, "value": value, "previous": prev,
                     "shown": fmt.format(value) if value is not None else "no data",
                     "previous_shown": fmt.format(prev) if prev is not None else "",
                     "change_percent": round(change, 1) if change is not None else None,
                     **trend(key, change)})
    for host, value in sorted(now.get("availability", {}).items()):
        prev = before.get("availability", {}).get(host)
        change = round(value - prev, 2) if prev is not None else None
        rows.append({"kpi": f"availability:{host}", "label": f"Availability of {host}", "value": value,
                     "previous": prev, "shown": f"{value:.2f} %",
                     "previous_shown": f"{prev:.2f} %" if prev is not None else "",
                     "change_percent": change, **trend("availability", change)})
    return rows


#: Figures that are neither good nor bad news when they change (traffic): no colour.
NEUTRAL = frozenset({"api_requests", "qps_avg", "jobs_run"})


def trend(key: str, change: float | None) -> dict:
    """The arrow of a change (↑ ↓ →, within ±1 % is steady) and whether it is good news."""
    if change is None:
        return {"arrow": "", "good": None}
    if abs(change) < 1:
        return {"arrow": "→", "good": None}
    up = change > 0
    return {"arrow": "↑" if up else "↓", "good": None if key in NEUTRAL else up == (key in HIGHER_IS_BETTER)}


def top_queries(queries: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if queries.empty:
        return {}
    q = queries.copy()
    for col in ("calls", "total_s", "p95_s", "rows_examined", "rows_sent", "full_scans"):
        q[col] = pd.to_numeric(q[col], errors="coerce")
    total = q.total_s.sum()
    q["share_percent"] = (100.0 * q.total_s / total).round(2) if total else 0.0
    q["examined_per_sent"] = (q.rows_examined / q.rows_sent.where(q.rows_sent > 0)).round(1)
    cols = ["query_id", "fingerprint", "calls", "total_s", "share_percent", "p95_s", "examined_per_sent",
            "full_scans", "slow", "explain_flags"]
    return {"by total time": q.sort_values("total_s", ascending=False)[cols].head(TOP_QUERIES),
            "by count": q.sort_values("calls", ascending=False)[cols].head(TOP_QUERIES),
            "by p95": q.sort_values("p95_s", ascending=False, na_position="last")[cols].head(TOP_QUERIES)}


def job_table(jobs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(failures first, per-task runs/failures/p95 duration)."""
    if jobs.empty:
        return jobs, jobs
    failures = jobs[jobs.state == "FAILURE"].sort_values("finished_at", ascending=False)
    per_task = jobs.groupby("task").agg(runs=("state", "size"), failures=("state", lambda s: int((s == "FAILURE").sum())),
                                        skipped=("state", lambda s: int((s == "SKIPPED").sum())),
                                        p95_duration_s=("duration_s", lambda d: d.dropna().quantile(0.95)
                                                        if d.notna().any() else None)).reset_index()
    return failures[["task", "finished_at", "error"]], per_task
