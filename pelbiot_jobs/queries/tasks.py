"""queries.analyze: a thin shell over queries/service.py."""

from __future__ import annotations

from ..runtime.app import app
from ..runtime.params import Choice, Text


# One run per source at a time (a second would read the same events); two slow logs side by side.
@app.task(name="queries.analyze", bind=True, exclusive=True, exclusive_by=("source", "path"), soft_time_limit=1700,
          time_limit=1800,
          params={"source": Choice(("auto", "file", "table", "performance_schema", "off")), "path": Text()})
def queries_analyze(self, source: str | None = None, path: str | None = None) -> dict:
    """Digest the slow-query events that are new since the last run (file or mysql.slow_log)."""
    from . import service

    return service.analyze(self.settings, source, path)
