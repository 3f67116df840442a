"""The index services: the plan (declared versus live, the advisor's suggestions, duplicates,
unused) and its application under the guardrails. What tasks, the CLI and the web view call.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from ..db.engine import engine_for
from ..db.ops_models import query_digests
from ..lib.clock import as_datetime, utcnow
from ..lib.errors import ConfigError, InputError, ScheduleError
from ..lib.paths import schedules_dir
from .apply import Guard, apply_plan, parse_window, record
from .spec import FILE, parse_spec

#: Digests this recent feed the advisor.
ADVICE_DAYS = 7


def guard_of(settings, ignore_window: bool = False) -> Guard:
    return Guard(window=None if ignore_window else parse_window(settings.index_window),
                 max_table_bytes=settings.index_max_table_mb * 2**20, max_load=settings.index_max_load,
                 critical_load=settings.index_critical_load)


def spec_path(settings, given: str | Path | None = None) -> Path:
    path = Path(given) if given else schedules_dir(settings) / FILE
    if given and not path.is_file():
        raise InputError(f"{path}: no such file")
    return path


def current_plan(settings, path: Path | None = None) -> dict:
    """The plan of the declared indexes plus the advisor's suggestions from recent query digests."""
    from .advisor import proposals_from_digests
    from .live import read_schema
    from .plan import plan

    path = path or spec_path(settings)
    problems: list[str] = []
    wanted = parse_spec(path, problems) if path.is_file() else []
    if problems:
        raise ScheduleError(problems)
    schema = read_schema(engine_for(settings.app_db_url))
    q = query_digests.c
    now = utcnow()
    since = now - dt.timedelta(days=ADVICE_DAYS)
    try:  # one row per query class over the days (not per hourly window): each example is parsed once
        with engine_for(settings.ops_db_url).connect() as conn:
            digests = [dict(r) for r in conn.execute(select(
                q.query_id, func.max(q.fingerprint).label("fingerprint"), func.max(q.example).label("example"),
                func.sum(q.calls).label("calls"), func.sum(q.query_time_sum).label("query_time_sum"),
                func.sum(q.full_scans).label("full_scans"), func.sum(q.rows_sent_sum).label("rows_sent_sum"),
                func.sum(q.rows_examined_sum).label("rows_examined_sum"),
                func.sum(q.rows_affected_sum).label("rows_affected_sum"), func.max(q.explain).label("explain"),
                func.max(q.last_seen).label("last_seen"), func.min(q.window_start).label("first_hour"))
                .where(q.window_start >= since).group_by(q.query_id)
                .order_by(func.sum(q.query_time_sum).desc())).mappings()]
    except Exception:  # a fresh ops DB without digests yet: no advice
        digests = []
    # the hours the stored digests cover (a history younger than the days is not spread over them)
    first = min((as_datetime(d["first_hour"]).replace(tzinfo=None) for d in digests if d.get("first_hour")), default=now)
    hours = max(1.0, (now - first).total_seconds() / 3600.0)
    proposals, not_helpful = selective(engine_for(settings.app_db_url), proposals_from_digests(digests, schema, hours))
    paying = []
    for p in proposals:
        if p.workload is None or p.workload["pays"]:
            paying.append(p)
        else:
            not_helpful.append({"table": p.table, "columns": list(p.columns), "query_id": p.query_id,
                                "query_ids": list(p.serves), "example": p.example, "workload": p.workload,
                                "verdict": p.workload["verdict"], "reason": f"not proposed: {p.workload['verdict']}"})
    result = plan(wanted, schema, paying)
    result["not_helpful"] = not_helpful
    return result


#: A leading equality column whose one value matches more than this share of the rows does not
#: narrow a scan enough for an index to pay (InnoDB reads each match through the primary key;
#: the optimizer prefers a full scan then): fewer than 5 distinct values.
MAX_MATCH_SHARE = 0.2
_SELECTIVITY_CACHE: dict = {}


def selective(engine, proposals: list) -> tuple[list, list[dict]]:
    """The proposals whose leading column narrows the scan, and why the others were not proposed
    (its distinct values in a sample of the table), cached for ten minutes per column."""
    import time

    from .live import selectivity

    keep, dropped = [], []
    for p in proposals:
        if "equality on" not in p.reason:  # ranges, GROUP BY, MIN/MAX: the order is what helps
            keep.append(p)
            continue
        key = (str(engine.url), p.table, p.columns[0])
        hit = _SELECTIVITY_CACHE.get(key)
        if hit is None or hit[0] < time.monotonic() - 600:
            hit = _SELECTIVITY_CACHE[key] = (time.monotonic(), selectivity(engine, p.table, p.columns[0]))
        seen = hit[1]
        if seen and seen[1] >= 1000 and seen[0] and 1.0 / seen[0] > MAX_MATCH_SHARE:
            dropped.append({"table": p.table, "columns": list(p.columns), "query_id": p.query_id,
                            "query_ids": list(p.serves or (p.query_id,)), "example": p.example,
                            "reason": f"not proposed: {p.table}.{p.columns[0]} has {seen[0]:,} distinct values in "
                                      f"{seen[1]:,} rows sampled (one matches about {100 // seen[0]} % of the rows): "
                                      f"an index on it would not narrow the scan"})
        else:
            keep.append(p)
    return keep, dropped


def suggestions_for(settings, query_id: str) -> list[dict]:
    """The advisor's suggestions for one query class (table, columns, why, EXPLAIN rows before, the
    rewrite), and why an index was not proposed for it when it was not."""
    result = current_plan(settings)
    return [s for s in result["suggested"] + result["not_helpful"] if query_id in s.get("query_ids", [s["query_id"]])]


def full_plan(settings, path: Path | None = None) -> dict:
    """The plan, with the indexes the server has not used since it started (when it can tell)."""
    from .live import unused_indexes

    result = current_plan(settings, path)
    result["unused"], note = unused_indexes(engine_for(settings.app_db_url))
    if note:
        result["unused_note"] = note
    return result


def may_create(settings, entry: dict, only: str | None = None, include_advice: bool = False) -> bool:
    """A planned create that may run: the one named (when one is), and an advisor's suggestion only
    when configured (PELBIOT_INDEX_APPLY_ADVICE) or asked for by name."""
    return (only is None or entry["name"] == only) and (
        entry["source"] != "advisor" or settings.index_apply_advice or include_advice)


def to_create(settings, result: dict, only: str | None = None, include_advice: bool = False) -> list[dict]:
    """The plan's creates that may run: declared ones, and the advisor's when configured (or named)."""
    creates = [e for e in result["create"] if may_create(settings, e, only, include_advice)]
    if only and not creates:
        raise InputError(f"--only {only!r}: no such index to create (see `pelbiot-jobs indexes plan`)")
    return creates


def apply(settings, creates: list[dict], run_id: str, ignore_window: bool = False, what: str = "indexes apply") -> list:
    """Create the indexes, online, one at a time, under the guardrails; each outcome recorded."""
    admin = settings.admin_url(what)
    return apply_plan(engine_for(admin), engine_for(settings.ops_db_url), creates,
                      guard_of(settings, ignore_window=ignore_window), run_id)


def reconcile(settings, run_id: str, only: str | None = None) -> dict:
    """The scheduled job: create the missing declared indexes; store the advisor's others as suggestions."""
    from ..lib.outcome import skipped

    try:
        settings.admin_url("indexes.reconcile")
    except ConfigError as exc:
        return skipped(str(exc))
    p = current_plan(settings)
    creates = [e for e in p["create"] if may_create(settings, e, only)]
    results = apply(settings, creates, run_id, what="indexes.reconcile")
    ops = engine_for(settings.ops_db_url)
    for e in p["create"]:
        if e["source"] == "advisor" and e not in creates:
            record(ops, {"run_id": run_id, "table_name": e["table"], "index_name": e["name"], "statement": e["sql"],
                         "started_at": utcnow(), "outcome": "suggested", "reason": e["reason"][:1000],
                         "target_query": e.get("target")})
    return {"created": [r["index"] for r in results if r["outcome"] == "created"],
            "skipped": [f"{r['index']}: {r['reason']}" for r in results if r["outcome"] != "created"],
            "invalid": len(p["invalid"]), "duplicates": len(p["duplicates"])}


def changes(settings, limit: int = 50) -> list[dict]:
    """The index changes recorded (created, skipped, failed, suggested), newest first, with their
    target query's EXPLAIN rows and latency before and after."""
    from ..db.ops_models import index_changes

    c = index_changes.c
    with engine_for(settings.ops_db_url).connect() as conn:
        return [dict(r) for r in conn.execute(select(index_changes).order_by(c.started_at.desc(), c.id.desc())
                                              .limit(limit)).mappings()]
