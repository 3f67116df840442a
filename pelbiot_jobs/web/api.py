"""The REST API PELBIOT v2.0 describes (``/api/advanced/...``), a thin face over the services the
CLI and the web view call, served by the web view's process (``pelbiot-jobs web``, ``up``).

One route table (``ROUTES``) is what the server dispatches on and what ``/api/openapi.json``
is generated from: each route names its method, path, scope, the service call, and its
parameters with their bounds. Answers keep PELBIOT's envelope: ``{"success": true, "data": ...}``;
an error is ``{"success": false, "error": "<one line naming the problem>"}`` with its status:
400 (a bad or unknown parameter, a body that is not a JSON object), 401 (no or a dead token),
403 (a read token on a write), 404, 405, 409 (an Idempotency-Key still in progress), 413 (a
body over 64 KiB), 503 (the ops DB or the broker does not answer).

Authentication: ``Authorization: Bearer <token>`` (``pelbiot-jobs api token create``), or the web
view's own Basic credentials (scope write). A token anywhere else (a query string) is refused:
it would land in logs and histories. No cookie is read, so no page elsewhere can forge a call.
Writes are recorded as ``api:<token name>``; a POST carrying an ``Idempotency-Key`` that is sent
again answers what the first one did, without starting its job twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import tornado.web

from ..lib.errors import (
    ConfigError,
    InputError,
    NotFound,
    ScheduleError,
    ServiceUnavailable,
    one_line,
)
from ..tuning.checks import CATEGORIES

log = logging.getLogger(__name__)

BASE = "/api/advanced"
#: The largest request body (bytes), and the longest window any parameter may ask for.
MAX_BODY = 64 * 1024
MAX_MINUTES = 400 * 24 * 60
#: Points per host /performance/trend answers unless asked: a day in 15-minute steps (a fleet's
#: day at the charts' 360 is 36,000 points).
TREND_DEFAULT_POINTS = 96
#: A list answers at most this many items at once (``limit``), 100 unless asked.
MAX_LIMIT, DEFAULT_LIMIT = 1000, 100
#: How long an Idempotency-Key's answer is kept (s).
IDEMPOTENCY_TTL = 86400
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
#: Query parameters that would carry a token in a URL: refused, and never logged.
TOKEN_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "key", "auth", "bearer"})


# --- the route table -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """A query or body parameter: its kind (int, str, choice, bool) and bounds."""

    name: str
    kind: str = "int"
    default: Any = None
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 200
    required: bool = False
    doc: str = ""

    def read(self, raw: Any):
        if raw is None:
            if self.required:
                raise InputError(f"parameter {self.name} is required")
            return self.default
        if self.kind == "int":
            if isinstance(raw, bool) or not isinstance(raw, (int, str)) or (
                    isinstance(raw, str) and not re.fullmatch(r"-?[0-9]{1,12}", raw)):
                raise InputError(f"parameter {self.name}={str(raw)[:40]!r} is not a whole number")
            value = int(raw)
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise InputError(f"parameter {self.name}={value} is out of range: use {self.low} to {self.high}")
            return value
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if raw in ("true", "1", "false", "0"):
                return raw in ("true", "1")
            raise InputError(f"parameter {self.name}={str(raw)[:40]!r} is not true or false")
        if not isinstance(raw, str) or len(raw) > self.max_length:
            raise InputError(f"parameter {self.name} must be text of at most {self.max_length} characters")
        if self.kind == "choice" and raw not in self.choices:
            raise InputError(f"parameter {self.name}={raw[:40]!r} is not valid: use one of {', '.join(self.choices)}")
        return raw

    def schema(self) -> dict:
        if self.kind == "int":
            out = {"type": "integer"}
            if self.low is not None:
                out["minimum"] = self.low
            if self.high is not None:
                out["maximum"] = self.high
        elif self.kind == "bool":
            out = {"type": "boolean"}
        elif self.kind == "choice":
            out = {"type": "string", "enum": list(self.choices)}
        else:
            out = {"type": "string", "maxLength": self.max_length}
        if self.default is not None:
            out["default"] = self.default
        return out


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under BASE; {id} is a number, {task_id} a run's id, {name} a rule's or job's name
    call: Callable  # (settings, **params) -> data; path parameters and, for writes, `who`
    summary: str
    scope: str = "read"
    query: tuple[Param, ...] = ()
    body: tuple[Param, ...] = ()
    status: int = 200
    tag: str = ""
    pattern: re.Pattern = field(init=False, compare=False)

    def __post_init__(self):
        regex = re.escape(self.path)
        for name, part in PATH_PARTS.items():
            regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>{part})")
        object.__setattr__(self, "pattern", re.compile(regex + "$"))


#: What each path parameter may be.
PATH_PARTS = {"id": r"[0-9]{1,18}", "task_id": r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}",
              "name": r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}"}


LIMIT = Param("limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT, doc="at most this many items")
CURSOR = Param("cursor", kind="str", max_length=40, doc="the next page: the `next_cursor` of the previous answer")
MINUTES = Param("minutes", default=5, low=1, high=MAX_MINUTES,
                doc="the window, in minutes back from now, of each metric's min, max and average (the samplers "
                    "run every 15 s: 5 minutes hold every live host's latest sample)")


def _page(rows: list[dict], limit: int, key: str = "id") -> dict:
    """A page of a list read newest first with one row more than asked: the next cursor, if any."""
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = base64.urlsafe_b64encode(str(rows[-1][key]).encode()).decode() if more and rows else None
    return {"items": rows, "next_cursor": cursor}


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        decoded = base64.urlsafe_b64decode(value.encode() + b"==").decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not re.fullmatch(r"[0-9]{1,18}", decoded):
        raise InputError("parameter cursor is not one this API gave")
    return int(decoded)


# --- what each route answers (the services do the work) ----------------------------------------

def _metrics(settings, minutes: int = 5, host: str | None = None) -> dict:
    from ..metrics.service import latest, request_summary

    return {"metrics": latest(settings, minutes * 60, host), "requests": request_summary(settings, minutes * 60)}


def _metrics_summary(settings, minutes: int = 5) -> dict:
    from ..metrics.service import latest_values, request_summary

    by_host: dict[str, dict] = {}
    for m in latest_values(settings, minutes * 60):
        by_host.setdefault(m["host"], {})[m["metric"]] = m["value"]
    return {"hosts": by_host, "requests": request_summary(settings, minutes * 60)}


def _analysis(settings) -> dict:
    from ..health.service import current_health
    from ..queries.service import stored

    health = current_health(settings)
    overall = health["overall"] or {}
    over = [{"host": s["host"], **part} for s in health["hosts"] + ([overall] if overall else [])
            for part in s.get("components", []) if part.get("status") not in (None, "ok") and not part.get("missing")]
    return {"health": {"score": overall.get("score"), "status": overall.get("status")}, "over_threshold": over,
            "worst_queries": stored(settings, 86400, "total", 10)}


def _tuning(settings, category: str | None = None) -> dict:
    from ..tuning.service import advice

    return advice(settings, category)


def _trend(settings, minutes: int = 1440, host: str | None = None, points: int = TREND_DEFAULT_POINTS) -> dict:
    from ..health.service import score_trend

    return {"scores": score_trend(settings, minutes, hosts=[host, "*"] if host else None, points=points)}


def _slow_queries(settings, minutes: int = 1440, sort: str = "total", limit: int = DEFAULT_LIMIT,
                  by: str | None = None, user: str | None = None, host: str | None = None,
                  schema: str | None = None, tag: str | None = None) -> Any:
    from ..queries.service import attributed, parse_tag_filters, stored

    tags = parse_tag_filters([tag] if tag else [])
    if by:
        return attributed(settings, by, minutes * 60, sort, limit, user=user, host=host, schema=schema, tags=tags)
    return stored(settings, minutes * 60, sort, limit, user=user, host=host, schema=schema, tags=tags)


def _query_stats(settings, minutes: int = 1440) -> dict:
    from ..queries.service import stored

    rows = stored(settings, minutes * 60, "total", MAX_LIMIT)
    items = rows["classes"] if isinstance(rows, dict) and "classes" in rows else rows
    totals: dict[str, dict] = {}
    for r in items if isinstance(items, list) else []:
        t = totals.setdefault(r.get("source") or "?", {"classes": 0, "calls": 0, "query_time_s": 0.0})
        t["classes"] += 1
        t["calls"] += r.get("calls") or 0
        t["query_time_s"] += r.get("query_time_sum") or 0.0
    return {"by_source": totals}


def _db_health(settings, minutes: int = 15) -> dict:
    from ..metrics.service import latest

    mysql = latest(settings, minutes * 60, prefix="mysql.")
    up = [m for m in mysql if m["metric"] == "mysql.uptime_s"]
    return {"available": bool(up) and all(m["latest"] is not None for m in up), "metrics": mysql}


def _indexes(settings) -> dict:
    from ..indexes.service import full_plan

    return full_plan(settings)


def _table_stats(settings) -> list:
    from ..tuning.service import latest_table_stats

    return latest_table_stats(settings)


def _pool_stats(settings, minutes: int = 15) -> dict:
    from ..db.engine import engine_for
    from ..metrics.service import latest

    wanted = ("mysql.threads_connected", "mysql.threads_running", "mysql.connection_usage_percent",
              "mysql.aborted_clients_per_s", "mysql.aborted_connects_per_s")
    app: dict[str, dict] = {}
    for m in latest(settings, minutes * 60, prefix="mysql."):
        if m["metric"] in wanted:
            app.setdefault(m["host"], {})[m["metric"]] = m["latest"]
    pool = engine_for(settings.app_db_url).pool
    own = {"size": getattr(pool, "size", lambda: None)(), "checked_out": getattr(pool, "checkedout", lambda: None)(),
           "overflow": getattr(pool, "overflow", lambda: None)(), "status": pool.status()}
    return {"app_db": app, "pelbiot_jobs_pool": own}


def _start(settings, name: str, who: str, params: dict | None = None) -> dict:
    from ..jobs.service import start

    sent = start(settings, name, params, trigger="api")
    log.info("api: %s started %s [%s]", who, name, sent["task_id"])
    return sent | {"status": "SENT", "status_url": f"{BASE}/jobs/{sent['task_id']}"}


def _export(settings, who: str, kind: str = "daily", email: bool = False) -> dict:
    """reports.export of the last complete period; the report lands in PELBIOT_REPORTS_DIR, never
    where a client says (PELBIOT's own endpoints wrote to any `filePath` sent)."""
    return _start(settings, "reports.export", who, {"kind": kind, "email": email})


def _optimize(settings, who: str) -> dict:
    return _start(settings, "db.optimize", who)


def _warm(settings, who: str, warmer: str | None = None) -> dict:
    return _start(settings, "cache.warm", who, {"warmer": warmer} if warmer else None)


def _invalidate(settings, who: str, pattern: str = "", dry_run: bool = False) -> dict:
    from ..cache.service import invalidate

    removed = invalidate(settings, pattern, dry_run=dry_run)
    log.info("api: %s invalidated %r (%d keys%s)", who, pattern, removed, ", dry run" if dry_run else "")
    return {"pattern": pattern, "keys": removed, "dry_run": dry_run}


def _clear(settings, who: str, dry_run: bool = False) -> dict:
    """Every key of every warmer's namespace, one namespace at a time (SCAN + UNLINK), never a
    whole database: the cache's Redis may be the broker's too."""
    from ..cache.service import invalidate, load_warmers

    spaces = sorted({w.namespace for w in load_warmers(settings, prove_sql=False)})
    counts = {space: invalidate(settings, space + "*", dry_run=dry_run) for space in spaces}
    log.info("api: %s cleared the cache namespaces %s (%d keys%s)", who, ", ".join(spaces), sum(counts.values()),
             ", dry run" if dry_run else "")
    return {"namespaces": counts, "keys": sum(counts.values()), "dry_run": dry_run}


def _cache_stats(settings, minutes: int = 1440) -> dict:
    from ..cache.service import warm_stats
    from ..metrics.service import latest

    return {"warmers": warm_stats(settings, minutes * 60), "redis": latest(settings, min(minutes, 60) * 60,
                                                                           prefix="redis.")}


def _cluster(settings) -> dict:
    from ..jobs.service import beat_lock, live_workers, queue_depths

    workers = live_workers(settings) if settings.broker_is_redis else []
    return {"workers": [{k: w.get(k) for k in ("node", "host", "queues", "concurrency", "active", "reserved",
                                                "heartbeat_age_s")} for w in workers],
            "queues": queue_depths(settings), "beat": beat_lock(settings)}


def _cluster_health(settings) -> dict:
    data = _cluster(settings)
    return {"workers_online": len(data["workers"]), "beat_sending": data["beat"].get("held"),
            "queued": sum(data["queues"].values()), "healthy": bool(data["workers"]) and data["beat"].get("held")
            is not False}


def _sessions(settings) -> dict:
    return {"note": "a job pipeline serves no HTTP sessions: a session here is a task running on a worker",
            "workers": {w["node"]: w["active"] for w in _cluster(settings)["workers"]}}


def _dashboard(settings) -> dict:
    from ..health.service import current_health, list_incidents
    from ..jobs.service import overview

    jobs = overview(settings, offline=True)["jobs"]
    return {"health": current_health(settings), "incidents_open": list_incidents(settings),
            "jobs_failing": [j["name"] for j in jobs if j["last_state"] == "FAILURE"], "jobs": len(jobs)}


def _alerts_active(settings) -> list:
    from ..health.service import active_alerts

    return active_alerts(settings)


def _alerts_history(settings, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict:
    from ..health.service import notification_history

    return _page(notification_history(settings, limit + 1, _cursor(cursor)), limit)


def _acknowledge(settings, id: int, who: str, hold: bool = False) -> dict:  # noqa: A002
    from ..health.service import acknowledge

    return acknowledge(settings, id, who, hold=hold)


def _resolve(settings, id: int, who: str) -> dict:  # noqa: A002
    from ..health.service import resolve

    return resolve(settings, id, who)


def _rules(settings) -> list:
    from ..health.service import rule_states

    return rule_states(settings)


def _toggle(settings, name: str, who: str, enabled: bool | None = None, reason: str | None = None) -> dict:
    from ..health.service import toggle_rule

    return toggle_rule(settings, name, enabled, who, reason)


def _incidents_open(settings, limit: int = DEFAULT_LIMIT) -> list:
    from ..health.service import list_incidents

    return list_incidents(settings, limit=limit)


def _manual_incident(settings, who: str, title: str, severity: str = "warning", host: str | None = None,
                     description: str | None = None) -> dict:
    from ..health.service import open_manual_incident

    opened = open_manual_incident(settings, title, severity, host, description, who)
    sent = _start(settings, "alerts.notify", who, {"notification_id": opened["notification_id"]})
    return opened | {"notify_task_id": sent["task_id"]}


def _jobs(settings) -> dict:
    from ..jobs.service import overview

    data = overview(settings, offline=True)
    return {"jobs": data["jobs"], "schedule_problems": data["schedule_problems"]}


def _job_runs(settings, limit: int = DEFAULT_LIMIT, cursor: str | None = None, job: str | None = None) -> dict:
    from ..jobs.service import recent_runs

    return _page(recent_runs(settings, job, limit + 1, _cursor(cursor)), limit)


def _run(settings, task_id: str) -> dict:
    from ..jobs.service import runs_of

    attempts = runs_of(settings, task_id)
    return {"task_id": task_id, "state": attempts[-1]["state"], "attempts": attempts}


def _complete(settings) -> dict:
    """Everything above in one answer; a part that fails says why instead of failing the whole."""
    from concurrent.futures import ThreadPoolExecutor

    parts = {"dashboard": _dashboard, "metrics": _metrics_summary, "cluster": _cluster, "alerts": _alerts_active,
             "rules": _rules, "tuning": _tuning, "cache": _cache_stats, "tables": _table_stats}

    def one(fn):
        try:
            return fn(settings)
        except Exception as exc:  # noqa: BLE001 - one part's trouble is reported in its place
            return {"error": one_line(exc, settings.secrets())}

    with ThreadPoolExecutor(max_workers=4) as pool:  # side by side: the answer takes as long as the slowest part
        return dict(zip(parts, pool.map(one, parts.values())))


REPORT_KINDS = ("daily", "weekly", "monthly", "summary")
CHECK_CATEGORIES = CATEGORIES  # tuning/checks.py's
EXPORT_BODY = (Param("kind", kind="choice", choices=REPORT_KINDS, default="daily"),
               Param("email", kind="bool", default=False, doc="e-mail it too (to PELBIOT_MAIL_TO)"))
ROUTES = [
    Route("GET", "/performance/metrics", _metrics, "the latest samples per host and source, with range and trend",
          query=(MINUTES, Param("host", kind="str", max_length=120)), tag="performance"),
    Route("GET", "/performance/analysis", _analysis, "health components over their thresholds, why; the worst "
          "query classes", tag="performance"),
    Route("GET", "/performance/tuning-strategies", _tuning, "the server and schema checks run now: findings with "
          "their evidence and fix, and the checks not run with the grant each needs",
          query=(Param("category", kind="choice", choices=CHECK_CATEGORIES, doc="only this category's checks"),),
          tag="performance"),
    Route("GET", "/performance/trend", _trend, "the health score per host over the window",
          query=(Param("minutes", default=1440, low=1, high=MAX_MINUTES),
                 Param("host", kind="str", max_length=120, doc="this host's scores (and the installation's) only"),
                 Param("points", default=TREND_DEFAULT_POINTS, low=2, high=360,
                       doc="at most this many points per host, each the average of its part of the window")),
          tag="performance"),
    Route("POST", "/performance/export-report", _export, "start reports.export (no path from the client)",
          scope="write", body=EXPORT_BODY, status=202, tag="performance"),
    Route("GET", "/database/slow-queries", _slow_queries, "stored slow-query digests: the worst classes, or the "
          "query time grouped by client user, host, schema or SQL-comment tag (by)",
          query=(Param("minutes", default=1440, low=1, high=MAX_MINUTES),
                 Param("sort", kind="choice", choices=("total", "calls", "p95"), default="total",
                       doc="p95 only without by"), LIMIT,
                 Param("by", kind="str", max_length=70, doc="user, host, schema or tag:NAME (e.g. tag:route)"),
                 Param("user", kind="str", max_length=80, doc="only what this client user sent"),
                 Param("host", kind="str", max_length=255, doc="only what this client host sent"),
                 Param("schema", kind="str", max_length=64, doc="only queries on this schema"),
                 Param("tag", kind="str", max_length=330, doc="NAME=VALUE: only queries whose SQL comment has "
                       "this tag (e.g. route=/api/devices)")),
          tag="database"),
    Route("GET", "/database/query-stats", _query_stats, "query totals per source",
          query=(Param("minutes", default=1440, low=1, high=MAX_MINUTES),), tag="database"),
    Route("GET", "/database/health", _db_health, "MySQL metrics and availability",
          query=(Param("minutes", default=15, low=1, high=MAX_MINUTES),), tag="database"),
    Route("GET", "/database/indexes", _indexes, "the index plan: declared, missing, duplicates, unused, "
          "suggestions", tag="database"),
    Route("GET", "/database/table-stats", _table_stats, "each table's newest size and row count", tag="database"),
    Route("GET", "/database/pool-stats", _pool_stats, "the app DB's connections and pelbiot-jobs' own pool",
          query=(Param("minutes", default=15, low=1, high=MAX_MINUTES),), tag="database"),
    Route("POST", "/database/optimize", _optimize, "start db.optimize", scope="write", status=202, tag="database"),
    Route("GET", "/cache/stats", _cache_stats, "warm runs per warmer; Redis hit rate and memory",
          query=(Param("minutes", default=1440, low=1, high=MAX_MINUTES),), tag="cache"),
    Route("POST", "/cache/warmup", _warm, "start cache.warm (every warmer, or one)", scope="write",
          body=(Param("warmer", kind="str", max_length=100),), status=202, tag="cache"),
    Route("POST", "/cache/invalidate", _invalidate, "delete the keys of a pattern, in warmers' namespaces only",
          scope="write", body=(Param("pattern", kind="str", required=True), Param("dry_run", kind="bool",
                                                                                  default=False)), tag="cache"),
    Route("POST", "/cache/clear", _clear, "delete every warmer's keys (never a whole database)", scope="write",
          body=(Param("dry_run", kind="bool", default=False),), tag="cache"),
    Route("GET", "/cluster/status", _cluster, "workers (from heartbeats), queue depths, beat's lock", tag="cluster"),
    Route("GET", "/cluster/health", _cluster_health, "workers online, beat sending, messages queued", tag="cluster"),
    Route("GET", "/cluster/sessions", _sessions, "the tasks running on each worker", tag="cluster"),
    Route("GET", "/monitoring/dashboard", _dashboard, "health, open incidents, failing jobs", tag="monitoring"),
    Route("GET", "/monitoring/metrics/summary", _metrics_summary, "the latest value of each metric per host",
          query=(MINUTES,), tag="monitoring"),
    Route("GET", "/monitoring/alerts/active", _alerts_active, "rules firing or pending, per host", tag="monitoring"),
    Route("GET", "/monitoring/alerts/history", _alerts_history, "notifications, newest first",
          query=(LIMIT, CURSOR), tag="monitoring"),
    Route("POST", "/monitoring/alerts/{id}/acknowledge", _acknowledge, "acknowledge an incident", scope="write",
          body=(Param("hold", kind="bool", default=False),), tag="monitoring"),
    Route("POST", "/monitoring/incidents/{id}/resolve", _resolve, "resolve an incident by hand", scope="write",
          tag="monitoring"),
    Route("GET", "/monitoring/rules", _rules, "alert rules with their state per host and run-time toggle",
          tag="monitoring"),
    Route("POST", "/monitoring/rules/{name}/toggle", _toggle, "switch a rule off or on at run time", scope="write",
          body=(Param("enabled", kind="bool"), Param("reason", kind="str", max_length=500)), tag="monitoring"),
    Route("GET", "/monitoring/incidents/open", _incidents_open, "open and acknowledged incidents",
          query=(LIMIT,), tag="monitoring"),
    Route("POST", "/monitoring/incidents", _manual_incident, "open an incident by hand: recorded, held open until "
          "resolved, notified as an alert is", scope="write",
          body=(Param("title", kind="str", required=True), Param("severity", kind="choice",
                                                                 choices=("warning", "critical"), default="warning"),
                Param("host", kind="str", max_length=120), Param("description", kind="str", max_length=1000)),
          status=201, tag="monitoring"),
    Route("POST", "/monitoring/export-report", _export, "start reports.export (no path from the client)",
          scope="write", body=EXPORT_BODY, status=202, tag="monitoring"),
    Route("GET", "/system/status/complete", _complete, "all of the above in one answer", tag="system"),
    Route("GET", "/jobs", _jobs, "every scheduled job: schedule, last run, next due", tag="jobs"),
    Route("GET", "/jobs/runs", _job_runs, "runs, newest first",
          query=(LIMIT, CURSOR, Param("job", kind="str", max_length=100)), tag="jobs"),
    Route("GET", "/jobs/{task_id}", _run, "one run: its state and every attempt", tag="jobs"),
]


# --- OpenAPI, from the same table ----------------------------------------------------------------

def openapi() -> dict:
    error = {"$ref": "#/components/responses/Error"}
    paths: dict[str, dict] = {}
    for r in ROUTES:
        op = {"summary": r.summary, "tags": [r.tag], "operationId": (r.method.lower() + r.path).replace("/", "_")
              .replace("{", "").replace("}", "").replace("-", "_"),
              "security": [{"bearer": []}, {"basic": []}],
              "parameters": [{"name": p.name, "in": "query", "required": p.required, "schema": p.schema(),
                              **({"description": p.doc} if p.doc else {})} for p in r.query],
              "responses": {str(r.status): {"description": "success", "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/Success"}}}},
                  "400": error, "401": error, "404": error, "503": error,
                  **({"403": error, "409": error, "413": error} if r.method == "POST" else {})}}
        for name in re.findall(r"{(\w+)}", r.path):
            op["parameters"].append({"name": name, "in": "path", "required": True,
                                     "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
                                     if name == "id" else {"type": "string", "pattern": f"^{PATH_PARTS[name]}$"}})
        if r.method == "POST":
            op["parameters"].append({"name": "Idempotency-Key", "in": "header", "required": False,
                                     "schema": {"type": "string", "maxLength": 200}})
            op["requestBody"] = {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {p.name: p.schema() for p in r.body},
                **({"required": [p.name for p in r.body if p.required]} if any(p.required for p in r.body) else {})}}}}
        paths.setdefault(BASE + r.path, {})[r.method.lower()] = op
    return {"openapi": "3.1.0",
            "info": {"title": "pelbiot-jobs API", "version": "1",
                     "description": "PELBIOT v2.0's /api/advanced endpoints, answered by pelbiot-jobs."},
            "paths": paths,
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                    "basic": {"type": "http", "scheme": "basic"}},
                "schemas": {"Success": {"type": "object", "required": ["success", "data"],
                                        "properties": {"success": {"const": True}, "data": {}}},
                            "Failure": {"type": "object", "required": ["success", "error"],
                                        "properties": {"success": {"const": False}, "error": {"type": "string"}}}},
                "responses": {"Error": {"description": "an error, in one line", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Failure"}}}}}}}


# --- the handler -----------------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def _plain(value):
    """JSON for what the services hand back: times as ISO 8601 UTC, bytes as text."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


class Api(tornado.web.RequestHandler):
    """Every /api/advanced request: authenticate, find the route, check its parameters, call."""

    def initialize(self, settings, credentials):
        self.settings_, self.credentials = settings, credentials

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self):
        """No cookie is read: a call carries its token in a header no page elsewhere can set."""

    async def get(self, path):
        await self._serve("GET", path)

    async def post(self, path):
        await self._serve("POST", path)

    async def put(self, path):
        await self._serve("PUT", path)

    async def delete(self, path):
        await self._serve("DELETE", path)

    async def patch(self, path):
        await self._serve("PATCH", path)

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS", "TRACE")

    async def head(self, path):
        await self._serve("HEAD", path)

    async def options(self, path):
        await self._serve("OPTIONS", path)

    async def trace(self, path):
        await self._serve("TRACE", path)

    def write_error(self, status_code, **kwargs):
        """What Tornado refuses before a method runs (an unknown method such as QUERY): the same
        envelope, and a 405 says what is allowed."""
        headers = {}
        if status_code == 405:
            path = self.request.path[len(BASE):] or "/"
            allowed = sorted({r.method for r in ROUTES if r.pattern.match(path)})
            headers["Allow"] = ", ".join(allowed) or "GET"
            message = f"{self.request.method[:20]} is not allowed on {self.request.path[:100]}"
        else:
            message = self._reason
        self.set_status(status_code)
        for name, value in headers.items():
            self.set_header(name, value)
        self.finish(json.dumps({"success": False, "error": message}))

    def _request_summary(self) -> str:
        """The access log's line: a token someone put in the URL (refused) is not written down."""
        query = "&".join(f"{name}={'***' if name.lower() in TOKEN_NAMES else '...'}"
                         for name in self.request.query_arguments)
        return f"{self.request.method} {self.request.path}{'?' + query if query else ''} ({self.request.remote_ip})"

    def _answer(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self.set_status(status)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        self.finish(json.dumps(payload, default=_plain))

    async def _serve(self, method: str, path: str) -> None:
        try:
            route, args = self._route(method, "/" + path)
            who, scope = await self._caller()
            if route.scope == "write" and scope != "write":
                raise ApiError(403, f"this token's scope is {scope}: {method} {BASE}{route.path} needs a write token")
            kwargs = self._params(route, method) | args
            if route.scope == "write":
                kwargs["who"] = who
            status, data = await self._once(route, who, kwargs)
            self._answer(status, {"success": True, "data": data})
        except ApiError as exc:
            self._answer(exc.status, {"success": False, "error": str(exc)}, exc.headers)
        except NotFound as exc:
            self._answer(404, {"success": False, "error": str(exc)})
        except ScheduleError as exc:
            self._answer(400, {"success": False, "error": "; ".join(exc.problems)[:1000]})
        except (InputError, ConfigError) as exc:
            self._answer(400, {"success": False, "error": one_line(exc, self.settings_.secrets())
                               .split(": ", 1)[-1]})
        except ServiceUnavailable as exc:
            self._answer(503, {"success": False, "error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the one error boundary of the API
            from ..lib.errors import is_transient, unreachable

            if is_transient(exc) or unreachable(exc):
                self._answer(503, {"success": False, "error": "a service does not answer: "
                                   + one_line(exc, self.settings_.secrets())})
                return
            log.exception("api: %s %s", method, path)
            self._answer(500, {"success": False, "error": "internal error (the web view's log has it)"})

    def _route(self, method: str, path: str) -> tuple[Route, dict]:
        allowed = []
        for route in ROUTES:
            match = route.pattern.match(path)
            if match:
                if route.method == method:
                    args = match.groupdict()
                    if "id" in args:
                        args["id"] = int(args["id"])
                    return route, args
                allowed.append(route.method)
        if allowed:
            raise ApiError(405, f"{method} is not allowed on {BASE}{path}: use {', '.join(sorted(set(allowed)))}",
                           {"Allow": ", ".join(sorted(set(allowed)))})
        raise ApiError(404, f"no endpoint {BASE}{path[:100]} (the list: /api/openapi.json)")

    async def _caller(self) -> tuple[str, str]:
        for name in self.request.query_arguments:
            if name.lower() in TOKEN_NAMES:
                raise ApiError(400, "a token is accepted only in the Authorization header, never in a URL")
        header = self.request.headers.get("Authorization", "")
        challenge = {"WWW-Authenticate": 'Bearer realm="pelbiot-jobs"'}
        if header.startswith("Bearer "):
            from ..access.tokens import check

            found = await asyncio.get_running_loop().run_in_executor(
                None, partial(check, self.settings_, header[7:].strip()))
            if found is None:
                raise ApiError(401, "the token is not valid (unknown, revoked or expired)", challenge)
            return f"api:{found['name']}", found["scope"]
        if header.startswith("Basic ") and self.credentials is not None:
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            ok = hmac.compare_digest(user.encode(), self.credentials[0].encode()) & \
                hmac.compare_digest(password.encode(), self.credentials[1].encode())
            if ok:
                return f"web:{user}", "write"
        raise ApiError(401, "authentication required: Authorization: Bearer <token> "
                            "(`pelbiot-jobs api token create NAME`)", challenge)

    def _params(self, route: Route, method: str) -> dict:
        known = {p.name: p for p in route.query}
        raw: dict[str, Any] = {}
        for name, values in self.request.query_arguments.items():
            if name not in known:
                raise ApiError(400, f"unknown parameter {name[:40]!r} for {method} {BASE}{route.path}"
                                    + (f" (accepted: {', '.join(known)})" if known else " (it takes none)"))
            if len(values) > 1:
                raise ApiError(400, f"parameter {name} is given more than once")
            raw[name] = values[0].decode("utf-8", "replace")
        body: dict = {}
        if method == "POST":
            if len(self.request.body) > MAX_BODY:
                raise ApiError(413, f"the body is larger than {MAX_BODY // 1024} KiB")
            if self.request.body.strip():
                try:
                    body = json.loads(self.request.body)
                except (ValueError, UnicodeDecodeError):
                    raise ApiError(400, "the body is not JSON") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "the body must be a JSON object")
            fields = {p.name: p for p in route.body}
            for name in body:
                if name not in fields:
                    raise ApiError(400, f"unknown field {str(name)[:40]!r} for POST {BASE}{route.path}"
                                        + (f" (accepted: {', '.join(fields)})" if fields else " (it takes none)"))
            return {p.name: p.read(raw.get(p.name)) for p in route.query} | \
                {p.name: p.read(body.get(p.name)) for p in route.body}
        return {p.name: p.read(raw.get(p.name)) for p in route.query}

    async def _call(self, route: Route, kwargs: dict):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, partial(route.call, self.settings_, **kwargs))

    async def _once(self, route: Route, who: str, kwargs: dict) -> tuple[int, Any]:
        """Call the route; a POST with an Idempotency-Key seen before answers what the first one did."""
        key = self.request.headers.get("Idempotency-Key")
        if route.method != "POST" or key is None:
            return route.status, await self._call(route, kwargs)
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ApiError(400, "Idempotency-Key must be 1-200 visible ASCII characters")
        from ..lib import redis_clients

        client = redis_clients.coordination(self.settings_)
        from ..runtime.keys import IDEMPOTENCY

        slot = IDEMPOTENCY + hashlib.sha256(f"{who}\0{route.path}\0{key}".encode()).hexdigest()
        loop = asyncio.get_running_loop()
        taken = await loop.run_in_executor(None, partial(client.set, slot, "pending", nx=True, ex=IDEMPOTENCY_TTL))
        if not taken:
            stored = await loop.run_in_executor(None, client.get, slot)
            if stored in (None, b"pending"):
                raise ApiError(409, "a request with this Idempotency-Key is still in progress: try again shortly")
            first = json.loads(stored)
            return first["status"], first["data"]
        try:
            data = await self._call(route, kwargs)
        except BaseException:
            await loop.run_in_executor(None, client.delete, slot)  # it did not happen: a retry may do it
            raise
        await loop.run_in_executor(None, partial(client.set, slot, json.dumps(
            {"status": route.status, "data": data}, default=_plain), ex=IDEMPOTENCY_TTL))
        return route.status, data


class OpenApi(tornado.web.RequestHandler):
    """The document the API is served from (no authentication: it says what exists, not what is in it)."""

    def initialize(self, **_):
        pass

    def get(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(openapi()))


def routes(kw: dict) -> list:
    return [(r"/api/openapi\.json", OpenApi, kw), (BASE + r"/(.*)", Api, kw)]
