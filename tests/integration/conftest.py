from __future__ import annotations

import pytest
from sqlalchemy import select

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import job_runs
from pelbiot_jobs.runtime.app import configure
from tests.conftest import service_env

from . import testing_tasks  # noqa: F401  (registers the testing.* tasks)
from .testing_tasks import LEAKED_SECRET


@pytest.fixture(scope="session")
def ops_schema(mariadb):
    migrate.upgrade(mariadb["ops"])
    return mariadb


@pytest.fixture(scope="session")
def demo_app_db(ops_schema):
    """The session's app DB filled with demo data once (whichever tests ask first: integration or
    security); the rows per table."""
    from sqlalchemy import inspect, text

    from pelbiot_jobs.demo.data import DemoPlan, device_count, seed

    engine = engine_for(ops_schema["app"])
    if device_count(engine) == 0:
        return seed(engine, DemoPlan(devices=20, days=3, sensor_days=1))
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM `{t}`")).scalar_one()
                for t in inspect(conn).get_table_names()}


@pytest.fixture
def settings(ops_schema, redis_url, tmp_path):
    env = service_env(ops_schema, redis_url, tmp_path) | {"PELBIOT_SMTP_PASSWORD": LEAKED_SECRET}
    return load_settings(env, cwd=tmp_path)


@pytest.fixture
def app(settings):
    return configure(settings)


@pytest.fixture
def worker(app, settings):
    """A real Celery worker (threads pool, 2 slots) consuming the shared queues from Redis."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING",
                      queues=["sampling", "maintenance", "reports", settings.host_queue],
                      shutdown_timeout=30) as w:
        yield w


def runs_of(settings, task_id: str) -> list[dict]:
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = conn.execute(select(job_runs).where(job_runs.c.task_id == task_id)
                            .order_by(job_runs.c.attempt)).mappings().all()
    return [dict(r) for r in rows]
