"""cache.warm: a thin shell over cache/service.py."""

from __future__ import annotations

from ..runtime.app import app
from ..runtime.params import Name
from . import spec  # noqa: F401 (registers its schedule file's checker)


@app.task(name="cache.warm", bind=True, exclusive=True, soft_time_limit=200, time_limit=240,
          params={"warmer": Name(100)})
def cache_warm(self, warmer: str | None = None) -> dict:
    """Precompute the API's hot responses into the Redis keys it reads (all warmers, or one)."""
    from . import service

    return service.warm(self.settings, warmer, self.request.id or "local")
