"""maintenance.retention: a thin shell over maintenance/service.py."""

from __future__ import annotations

from ..runtime.app import app
from ..runtime.params import Days


@app.task(name="maintenance.retention", bind=True, exclusive=True, soft_time_limit=1700, time_limit=1800,
          params={"job_runs_days": Days(), "table_stats_days": Days(), "samples_days": Days(), "rollups_days": Days()})
def maintenance_retention(self, job_runs_days: int | None = None, table_stats_days: int | None = None,
                          samples_days: int | None = None, rollups_days: int | None = None) -> dict:
    """Prune job runs, table statistics, raw samples and rollups past their configured age."""
    from . import service

    return service.retention(self.settings, job_runs_days, table_stats_days, samples_days, rollups_days)
