"""Each attack of the safety issue as a test on the real MariaDB, Redis, worker and Flower."""

from tests.integration.conftest import app, demo_app_db, ops_schema, settings, worker  # noqa: F401
