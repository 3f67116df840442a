"""The tuning services: table statistics, ANALYZE of stale tables, tuning advice with its evidence.

What the tasks (tuning/tasks.py), the command line and the web view call; each takes the settings.
"""

from __future__ import annotations

import datetime as dt
import json

from ..db.engine import engine_for
from ..db.ops_models import recommendations, table_stats
from ..db.upsert import upsert
from ..lib.clock import utcnow
from ..lib.errors import ConfigError, InputError
from .table_stats import hour_bucket, read_table_stats


def record_table_stats(settings, now: dt.datetime | None = None) -> dict:
    """Record rows, data, index and free bytes of every app DB table (one row per table and hour)."""
    rows = read_table_stats(engine_for(settings.app_db_url))
    captured = hour_bucket(now or utcnow())
    for row in rows:
        row["captured_at"] = captured
    with engine_for(settings.ops_db_url).begin() as conn:
        upsert(conn, table_stats, rows, key=("schema_name", "table_name", "captured_at"))
    return {"tables": len(rows), "rows": sum(r["row_count"] or 0 for r in rows),
            "bytes": sum((r["data_bytes"] or 0) + (r["index_bytes"] or 0) for r in rows)}


def advice(settings, category: str | None = None) -> dict:
    """Every server and schema check (tuning/checks.py) over the app DB, read with the read-only account.

    ``findings`` (worst first), ``not_checked`` (a check whose facts the account may not read, with the
    grant it needs) and ``checked`` (the codes that ran). Nothing is written, on the server or here.
    """
    from .checks import CATEGORIES, run_checks
    from .facts import read_facts

    if category is not None and category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}")
    engine = engine_for(settings.app_db_url)
    if engine.dialect.name == "sqlite":
        raise InputError("db advise reads a MySQL/MariaDB server; the app DB is SQLite")
    facts = read_facts(engine, settings.app_db_memory_mb)
    result = run_checks(facts, category)
    result["server"] = facts["variables"].get("version", "")
    return result


def record_findings(settings, result: dict, now: dt.datetime) -> dict:
    """Store a run's findings: new ones inserted, found ones refreshed, and an open finding that a check which
    ran no longer finds marked resolved now (a check that could not run resolves nothing)."""
    from sqlalchemy import select, update

    r = recommendations.c
    found = {(x["code"], x["subject"]): x for x in result["findings"]}
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with engine_for(settings.ops_db_url).begin() as conn:
        known = {(row.code, row.subject): row for row in conn.execute(
            select(r.id, r.code, r.subject, r.resolved_at).where(r.code.in_(result["checked"]) if result["checked"]
                                                                  else r.code.is_(None)))}
        opened = 0
        for key, x in found.items():
            values = {"day": day, "severity": x["severity"], "category": x["category"], "message": x["message"][:1000],
                      "fix": x["fix"][:1000], "evidence": json.dumps(x["evidence"], default=str)}
            row = known.get(key)
            if row is None:
                conn.execute(recommendations.insert().values(code=x["code"], subject=x["subject"], first_seen=now,
                                                             **values))
                opened += 1
            elif row.resolved_at is not None:  # it came back: a new first sighting
                conn.execute(update(recommendations).where(r.id == row.id).values(first_seen=now, resolved_at=None,
                                                                                  **values))
                opened += 1
            else:
                conn.execute(update(recommendations).where(r.id == row.id).values(**values))
        gone = [row.id for key, row in known.items() if key not in found and row.resolved_at is None]
        if gone:
            conn.execute(update(recommendations).where(r.id.in_(gone)).values(resolved_at=now))
    return {"open": len(found), "new": opened, "resolved": len(gone)}


def findings(settings, state: str = "open", category: str | None = None, limit: int = 1000) -> list[dict]:
    """Recorded findings: ``open``, ``resolved`` or ``all``; worst first, then newest."""
    from sqlalchemy import case, select

    r = recommendations.c
    query = select(r.code, r.category, r.severity, r.subject, r.message, r.fix, r.evidence, r.first_seen,
                   r.day.label("last_seen"), r.resolved_at)
    if state == "open":
        query = query.where(r.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(r.resolved_at.is_not(None))
    if category:
        query = query.where(r.category == category)
    rank = case({"critical": 0, "warning": 1}, value=r.severity, else_=2)
    query = query.order_by(r.resolved_at.is_not(None), rank, r.category, r.code, r.subject).limit(limit)
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = [dict(x) for x in conn.execute(query).mappings()]
    for row in rows:
        try:
            row["evidence"] = json.loads(row["evidence"])
        except ValueError:
            pass
    return rows


def finding_counts(settings) -> dict:
    """Open findings by severity: what the overview shows ("3 critical findings")."""
    from sqlalchemy import func, select

    r = recommendations.c
    with engine_for(settings.ops_db_url).connect() as conn:
        return dict(conn.execute(select(r.severity, func.count()).where(r.resolved_at.is_(None))
                                 .group_by(r.severity)).all())


def optimize(settings, record_stats=record_table_stats) -> dict:
    """ANALYZE stale tables, record table statistics, run the checks and record their findings.

    Skipped (not failed) without PELBIOT_APP_DB_ADMIN_URL: ANALYZE needs an account allowed to run it.
    The checks read with the read-only account (PELBIOT_APP_DB_URL).
    """
    from ..lib.outcome import skipped
    from ..tuning.advice import analyze_stale

    try:
        admin = settings.admin_url("db.optimize (ANALYZE TABLE)")
    except ConfigError as exc:
        return skipped(str(exc))
    now = utcnow()
    analyzed = analyze_stale(engine_for(admin), now)
    stats = record_stats(settings, now)
    if engine_for(settings.app_db_url).dialect.name == "sqlite":
        return {"analyzed": analyzed, "tables": stats["tables"], "findings": 0}
    result = advice(settings)
    recorded = record_findings(settings, result, now)
    by_severity: dict[str, int] = {}
    for x in result["findings"]:
        by_severity[x["severity"]] = by_severity.get(x["severity"], 0) + 1
    return {"analyzed": len(analyzed), "tables": stats["tables"], "findings": by_severity, **recorded,
            "not_checked": [x["code"] for x in result["not_checked"]]}


def latest_table_stats(settings) -> list[dict]:
    """Each table's newest ops_table_stats row (rows, data, index and free bytes), largest first."""
    from sqlalchemy import func, select

    from ..db.engine import engine_for
    from ..db.ops_models import table_stats

    t = table_stats.c
    newest = (select(t.schema_name, t.table_name, func.max(t.captured_at).label("at"))
              .group_by(t.schema_name, t.table_name).subquery())
    query = (select(table_stats).join(newest, (t.schema_name == newest.c.schema_name)
                                      & (t.table_name == newest.c.table_name) & (t.captured_at == newest.c.at))
             .order_by((func.coalesce(t.data_bytes, 0) + func.coalesce(t.index_bytes, 0)).desc(), t.table_name))
    with engine_for(settings.ops_db_url).connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
