"""The cache.warm task."""

from __future__ import annotations

from ..celery_app import app, schedules_dir
from ..db.engine import engine_for
from ..errors import InputError, ScheduleError
from ..params import Name
from ..runs import utcnow
from .spec import FILE, parse_cache_file


def load_warmers(settings) -> list:
    """The warmers of cache.yaml; raise ScheduleError listing every problem (nothing runs then)."""
    path = schedules_dir(settings) / FILE
    if not path.is_file():
        return []
    problems: list[str] = []
    warmers = parse_cache_file(path, problems)
    if problems:
        raise ScheduleError(problems)
    return warmers


@app.task(name="cache.warm", bind=True, exclusive=True, soft_time_limit=200, time_limit=240,
          params={"warmer": Name(100)})
def cache_warm(self, warmer: str | None = None) -> dict:
    """Precompute the API's hot responses into the Redis keys it reads (all warmers, or one)."""
    from .warm import warm
    from ..metrics.tasks import cache_redis

    settings = app.pelbiot_settings
    warmers = [w for w in load_warmers(settings) if w.enabled or w.name == warmer]
    if warmer is not None:
        warmers = [w for w in warmers if w.name == warmer]
        if not warmers:
            raise InputError(f"unknown warmer {warmer!r}")
    return warm(engine_for(settings.app_db_url), cache_redis(settings.cache_redis_url), warmers,
                self.request.id or "local", engine_for(settings.ops_db_url), utcnow())
