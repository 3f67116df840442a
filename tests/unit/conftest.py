"""The unit tests: pure functions only. ``make unit`` runs them with no database, Redis, broker,
worker, SMTP server or external tool; a unit test that asks for one of the services' fixtures
is refused at collection, so the promise cannot rot."""

import pytest

SERVICE_FIXTURES = {"mariadb", "fresh_mysql_db", "redis_url", "private_redis", "ops_schema", "demo_app_db",
                    "settings", "app", "worker"}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/unit/" not in str(item.fspath).replace("\\", "/"):
            continue
        wanted = SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if wanted:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {', '.join(sorted(wanted))}: "
                                    "move it to tests/integration")
