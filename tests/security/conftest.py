"""Each attack of the safety issue as a test on the real MariaDB, Redis, worker and Flower."""

import pytest

from pelbiot_jobs.db.engine import engine_for
from tests.integration.conftest import app, ops_schema, settings, worker  # noqa: F401


@pytest.fixture(scope="session")
def demo_app_db(ops_schema):  # noqa: F811
    """The session's app DB with demo data (the integration tests may have filled it already)."""
    from pelbiot_jobs.demo.data import DemoPlan, device_count, seed

    engine = engine_for(ops_schema["app"])
    if device_count(engine) == 0:
        seed(engine, DemoPlan(devices=20, days=3, sensor_days=1))
