"""The database services: table statistics, optimization with tuning advice, and the ops schema.

What the tasks (db/tasks.py), the command line and the web view call; each takes the settings.
"""

from __future__ import annotations

import datetime as dt
import json

from ..clock import utcnow
from ..errors import ConfigError, InputError
from .engine import engine_for
from .ops_models import recommendations, table_stats
from .table_stats import hour_bucket, read_table_stats
from .upsert import upsert


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
    from .tuning import advise, facts

    engine = engine_for(settings.app_db_url)
    if engine.dialect.name == "sqlite":
        raise InputError("db advise reads a MySQL/MariaDB server; the app DB is SQLite")
    f = facts(engine)
    return {"recommendations": advise(f, plan([], read_schema(engine))["duplicates"]), "facts": f}


def optimize(settings, record_stats=record_table_stats) -> dict:
    """ANALYZE stale tables, record table statistics, store tuning recommendations with their evidence.

    Skipped (not failed) without PELBIOT_APP_DB_ADMIN_URL: ANALYZE needs an account allowed to run it.
    """
    from ..outcome import skipped
    from .tuning import analyze_stale

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


# --- the ops schema: only the commands that write migrate it ----------------------------------

def _migrate():
    from . import migrate  # Alembic: loaded by the commands that migrate, not by every process

    return migrate


def upgrade(settings) -> None:
    _migrate().upgrade(settings.ops_db_url)


def check(settings) -> str | None:
    _migrate().check(settings.ops_db_url)
    return _migrate().current(settings.ops_db_url)


def current(settings) -> str | None:
    return _migrate().current(settings.ops_db_url)


def downgrade(settings, revision: str) -> str | None:
    _migrate().downgrade(settings.ops_db_url, revision)
    return _migrate().current(settings.ops_db_url)


def seed_demo(settings, plan, progress=None) -> dict:
    """Create the PELBIOT tables if missing and fill them (the app DB the settings name)."""
    from .demo import seed
    from .engine import make_engine

    engine = make_engine(settings.app_db_url)
    try:
        return seed(engine, plan, progress=progress)
    finally:
        engine.dispose()


def demo_needed(settings) -> bool:
    """True for the embedded default's own app DB while it is empty; a configured one: never."""
    from .demo import device_count
    from .engine import make_engine

    if not settings.app_db_embedded:
        return False
    engine = make_engine(settings.app_db_url)
    try:
        return device_count(engine) == 0
    finally:
        engine.dispose()
