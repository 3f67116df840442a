"""The queries.analyze task."""

from __future__ import annotations

from ..celery_app import app
from ..db.engine import engine_for
from ..params import Choice, Text, allowed_slow_log
from ..runs import skipped, utcnow
from .analyze import analyze


# One run per source at a time (a second would read the same events); two slow logs side by side.
@app.task(name="queries.analyze", exclusive=True, exclusive_by=("source", "path"), soft_time_limit=1700,
          time_limit=1800,
          params={"source": Choice(("auto", "file", "table", "performance_schema", "off")), "path": Text()})
def queries_analyze(source: str | None = None, path: str | None = None) -> dict:
    """Digest the slow-query events that are new since the last run (file or mysql.slow_log)."""
    settings = app.pelbiot_settings
    source = source or settings.slowlog_source
    if source == "off":
        return skipped("PELBIOT_SLOWLOG_SOURCE=off")
    if path is not None:  # a caller may only name the configured log or a file in the configured folder
        path = allowed_slow_log(path, settings.slow_log, settings.slow_log_dir)
    path = path or (str(settings.slow_log) if settings.slow_log else None)
    if source == "auto" and path:
        source = "file"
    result = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), utcnow(), source, path,
                     mask=not settings.show_query_literals, slow_s=settings.slow_threshold_ms / 1000.0)
    if result.get("skipped"):
        return skipped(result["reason"])
    return result
