"""What a report shows: the period's data from the ops DB (and the app DB for the PELBIOT summary)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, and_, case, func, select

from ..db.ops_models import (
    health_scores,
    incidents,
    index_changes,
    job_runs,
    metric_rollups,
    metric_samples,
    query_digests,
    recommendations,
    request_minutes,
)
from ..metrics.requests import MinuteAgg

#: Metrics drawn and summarised per host.
HOST_METRICS = ("host.cpu_percent", "host.memory_percent")
DB_METRICS = ("mysql.queries_per_s", "mysql.threads_running", "mysql.slow_queries_per_s")
CACHE_METRICS = ("redis.hit_rate_percent",)
#: The interval samplers run at (s): availability = samples seen / samples expected.
SAMPLE_INTERVAL = 15


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def previous(self) -> "Period":
        if self.kind == "monthly":
            prev_end = self.start
            prev_start = (self.start - dt.timedelta(days=1)).replace(day=1)
            return Period(self.kind, prev_start, prev_end)
        return Period(self.kind, self.start - (self.end - self.start), self.start)

    @property
    def label(self) -> str:
        if self.kind == "monthly":
            return self.start.strftime("%Y-%m")
        if self.kind == "weekly":
            return f"{self.start:%Y-%m-%d} to {(self.end - dt.timedelta(days=1)):%Y-%m-%d}"
        return f"{self.start:%Y-%m-%d}"


def period_for(kind: str, day: dt.date | None, today: dt.date) -> Period:
    """Pure: the period of a report; by default the last complete one before ``today``."""
    if kind in ("daily", "summary"):
        d = day or today - dt.timedelta(days=1)
        start = dt.datetime.combine(d, dt.time())
        return Period(kind, start, start + dt.timedelta(days=1))
    if kind == "weekly":
        d = day or today - dt.timedelta(days=7)
        monday = d - dt.timedelta(days=d.weekday())
        start = dt.datetime.combine(monday, dt.time())
        return Period(kind, start, start + dt.timedelta(days=7))
    if kind == "monthly":
        d = day or (today.replace(day=1) - dt.timedelta(days=1))
        start = dt.datetime.combine(d.replace(day=1), dt.time())
        nxt = (start + dt.timedelta(days=32)).replace(day=1)
        return Period(kind, start, nxt)
    raise ValueError(f"unknown report kind {kind!r}")


def _frame(conn, query) -> pd.DataFrame:
    result = conn.execute(query)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


#: Periods longer than this read hourly rollups instead of raw samples (when there are rollups).
ROLLUP_ABOVE = dt.timedelta(days=2)


def samples(conn, metrics, p: Period) -> pd.DataFrame:
    """Samples of the period: raw ones for a day; hourly rollups (their hourly mean) for longer periods.

    With rollups, ``samples`` carries how many raw samples each hour held (for availability).
    """
    if p.end - p.start > ROLLUP_ABOVE:
        r = metric_rollups.c
        frame = _frame(conn, select(r.metric, r.host, r.hour.label("ts"), r.avg.label("value"), r.samples).where(
            r.metric.in_(list(metrics)), r.hour >= p.start, r.hour < p.end).order_by(r.hour))
        if not frame.empty:
            return frame
    c = metric_samples.c
    frame = _frame(conn, select(c.metric, c.host, c.ts, c.value).where(
        c.metric.in_(list(metrics)), c.ts >= p.start, c.ts < p.end, c.value.is_not(None)).order_by(c.ts))
    frame["samples"] = 1
    return frame


def gather(ops: Engine, p: Period) -> dict:
    """Every table a report needs for period ``p`` (DataFrames; empty ones mean no data)."""
    with ops.connect() as conn:
        data = {
            "hosts": samples(conn, HOST_METRICS, p),
            "database": samples(conn, DB_METRICS, p),
            "cache": samples(conn, CACHE_METRICS, p),
        }
        h = health_scores.c
        data["health"] = _frame(conn, select(h.ts, h.score, h.status, h.present).where(
            h.host == "*", h.ts >= p.start, h.ts < p.end, h.score.is_not(None)).order_by(h.ts))
        r = request_minutes.c
        data["requests"] = _frame(conn, select(r.minute, r.source, r.requests, r.c4xx, r.c5xx, r.error_rate_percent,
                                               r.p50_ms, r.p95_ms, r.p99_ms, r.agg)
                                  .where(r.minute >= p.start, r.minute < p.end).order_by(r.minute))
        q = query_digests.c
        data["queries"] = _frame(conn, select(
            q.query_id, func.min(q.fingerprint).label("fingerprint"), func.sum(q.calls).label("calls"),
            func.sum(q.query_time_sum).label("total_s"), func.max(q.query_time_p95).label("p95_s"),
            func.sum(q.rows_examined_sum).label("rows_examined"), func.sum(q.rows_sent_sum).label("rows_sent"),
            func.sum(q.full_scans).label("full_scans"), func.max(q.slow).label("slow"),
            func.max(q.explain_flags).label("explain_flags"))
            .where(q.window_start >= p.start, q.window_start < p.end).group_by(q.query_id))
        i = incidents.c
        data["incidents"] = _frame(conn, select(i.id, i.rule, i.host, i.severity, i.status, i.opened_at,
                                                i.resolved_at, i.acknowledged_by, i.resolved_by).where(
            and_(i.opened_at < p.end, (i.resolved_at.is_(None)) | (i.resolved_at >= p.start))).order_by(i.opened_at))
        x = index_changes.c
        data["index_changes"] = _frame(conn, select(
            x.started_at, x.table_name, x.index_name, x.outcome, x.reason, x.statement, x.duration_s, x.target_query,
            x.explain_rows_before, x.explain_rows_after, x.latency_ms_before, x.latency_ms_after, x.measure_note)
            .where(x.started_at >= p.start, x.started_at < p.end).order_by(x.started_at))
        rc = recommendations.c  # the findings open at the period's end, and those resolved in it
        seen = func.coalesce(rc.first_seen, rc.day)
        data["recommendations"] = _frame(conn, select(
            rc.day, rc.code, rc.category, rc.severity, rc.subject, rc.message, rc.fix, rc.evidence, rc.first_seen,
            rc.resolved_at).where(seen < p.end, rc.resolved_at.is_(None) | (rc.resolved_at >= p.start))
            .order_by(rc.resolved_at.is_not(None), case({"critical": 0, "warning": 1}, value=rc.severity, else_=2),
                      rc.category, rc.code, rc.subject))
        j = job_runs.c
        data["jobs"] = _frame(conn, select(j.task, j.state, j.duration_s, j.started_at, j.finished_at, j.error).where(
            func.coalesce(j.started_at, j.finished_at) >= p.start,
            func.coalesce(j.started_at, j.finished_at) < p.end))
    return data


def merged_requests(frame: pd.DataFrame) -> MinuteAgg:
    total = MinuteAgg()
    for agg in frame.get("agg", []):
        total = total.merge(MinuteAgg.from_json(json.loads(agg)))
    return total


def pelbiot_summary(app: Engine, p: Period) -> dict:
    """PELBIOT's daily summary figures, from the app DB."""
    from ..db.app_models import app_metadata

    md = app_metadata(app)
    devices, alerts, trends, profiles = (md.tables[n] for n in ("devices", "alerts", "trends", "load_profiles"))
    with app.connect() as conn:
        total_devices = conn.execute(select(func.count()).select_from(devices)).scalar_one()
        online = conn.execute(select(func.count()).select_from(devices).where(devices.c.status == "online")).scalar_one()
        total_alerts = conn.execute(select(func.count()).select_from(alerts).where(
            alerts.c.created_at >= p.start, alerts.c.created_at < p.end)).scalar_one()
        active = conn.execute(select(func.count()).select_from(alerts).where(alerts.c.status != "resolved")).scalar_one()
        by_type = _frame(conn, select(
            devices.c.type.label("device_type"), func.avg(trends.c.power).label("average_power_kw"),
            func.sum(trends.c.energy).label("energy_kwh")).select_from(trends.join(devices, trends.c.device_id == devices.c.id))
            .where(trends.c.date == p.start.date()).group_by(devices.c.type).order_by(devices.c.type))
        factor = _frame(conn, select(
            devices.c.type.label("device_type"),
            (func.avg(profiles.c.average) / func.nullif(func.max(profiles.c.peak), 0) * 100).label("load_factor_percent"))
            .select_from(profiles.join(devices, profiles.c.device_id == devices.c.id))
            .where(profiles.c.created_at >= p.start, profiles.c.created_at < p.end).group_by(devices.c.type))
    if not by_type.empty:
        by_type = by_type.merge(factor, on="device_type", how="left")
        for col in ("average_power_kw", "energy_kwh", "load_factor_percent"):
            by_type[col] = pd.to_numeric(by_type[col]).astype(float).round(2)
    return {"total_devices": total_devices, "online_devices": online, "total_alerts": total_alerts,
            "active_alerts": active, "by_type": by_type}
