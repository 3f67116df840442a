"""reports.export: a thin shell over reports/service.py."""

from __future__ import annotations

import datetime as dt

from ..runtime.app import app
from ..runtime.params import Bool, Choice, IsoDate
from . import KINDS


@app.task(name="reports.export", bind=True, max_retries=5, backoff_max=300.0, soft_time_limit=500, time_limit=600,
          params={"kind": Choice(KINDS), "date": IsoDate(), "email": Bool()})
def reports_export(self, kind: str = "daily", date: str | None = None, email: bool = True) -> dict:
    """Build the daily, weekly or monthly operations report (or PELBIOT's summary); e-mail it."""
    from ..runtime.headers import publishing
    from . import service

    day = dt.date.fromisoformat(date) if date else None
    result = service.export(self.settings, kind, day, email, task_id=self.request.id)
    notice = result.get("receivers")
    # One task each, as for alerts; sent by its name (a slice never imports another's tasks).
    for receiver in (notice or {}).get("receivers", []):
        with publishing("dispatch"):
            self.app.tasks["alerts.deliver"].apply_async(args=[notice["notification_id"], receiver])
    return result
