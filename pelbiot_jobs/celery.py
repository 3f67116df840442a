"""``celery -A pelbiot_jobs ...``: the app configured from the environment (PELBIOT_* and .env),
as Celery's own commands expect of a project (``celery -A pelbiot_jobs inspect active``)."""

from .lib.paths import private_files
from .runtime.app import configure

private_files()
app = configure()
