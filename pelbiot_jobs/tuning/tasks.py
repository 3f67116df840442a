"""db.table_stats and db.optimize: thin shells over tuning/service.py (the task names stay as beat.yaml has them)."""

from __future__ import annotations

from ..runtime.app import app


@app.task(name="db.table_stats", bind=True, exclusive=True, soft_time_limit=240, time_limit=300)
def db_table_stats(self) -> dict:
    """Record rows, data, index and free bytes of every app DB table (one row per table and hour)."""
    from . import service

    return service.record_table_stats(self.settings)


@app.task(name="db.optimize", bind=True, exclusive=True, soft_time_limit=3500, time_limit=3600)
def db_optimize(self) -> dict:
    """ANALYZE stale tables, record table statistics, store tuning recommendations with their evidence."""
    from . import service

    return service.optimize(self.settings)
