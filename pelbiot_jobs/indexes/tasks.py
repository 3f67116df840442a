"""indexes.reconcile: a thin shell over indexes/service.py."""

from __future__ import annotations

from ..runtime.app import app
from ..runtime.params import Name
from . import spec  # noqa: F401 (registers its schedule file's checker)


@app.task(name="indexes.reconcile", bind=True, exclusive=True, soft_time_limit=7000, time_limit=7200,
          params={"only": Name(64)})
def indexes_reconcile(self, only: str | None = None) -> dict:
    """Create the declared indexes that are missing, online, one at a time, under the guardrails."""
    from . import service

    return service.reconcile(self.settings, self.request.id or "local", only)
