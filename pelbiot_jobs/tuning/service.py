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


def advice(settings) -> dict:
    """Tuning recommendations for the app DB (MySQL/MariaDB), with the facts they rest on."""
    from ..indexes.live import read_schema
    from ..indexes.plan import plan
    from ..tuning.advice import advise, facts

    engine = engine_for(settings.app_db_url)
    if engine.dialect.name == "sqlite":
        raise InputError("db advise reads a MySQL/MariaDB server; the app DB is SQLite")
    f = facts(engine)
    return {"recommendations": advise(f, plan([], read_schema(engine))["duplicates"]), "facts": f}


def optimize(settings, record_stats=record_table_stats) -> dict:
    """ANALYZE stale tables, record table statistics, store tuning recommendations with their evidence.

    Skipped (not failed) without PELBIOT_APP_DB_ADMIN_URL: ANALYZE needs an account allowed to run it.
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
        return {"analyzed": analyzed, "tables": stats["tables"], "recommendations": 0}
    found = advice(settings)["recommendations"]
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with engine_for(settings.ops_db_url).begin() as conn:
        upsert(conn, recommendations, [{"day": day, "code": a["code"], "severity": a["severity"],
                                        "message": a["message"][:1000], "evidence": json.dumps(a["evidence"])}
                                       for a in found], key=("day", "code"))
    return {"analyzed": len(analyzed), "tables": stats["tables"], "recommendations": [a["code"] for a in found]}


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
