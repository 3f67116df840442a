"""Alembic environment: the connection comes from ``pelbiot_jobs.db.migrate``."""

from alembic import context

from pelbiot_jobs.db.migrate import VERSION_TABLE
from pelbiot_jobs.db.ops_models import metadata

config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    # Only the ops tables are ours; the app tables may share the database.
    if type_ == "table":
        return name.startswith("ops_") and name != VERSION_TABLE
    table = getattr(obj, "table", None)
    if table is not None and not table.name.startswith("ops_"):
        return False
    return True


def run() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
