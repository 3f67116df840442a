"""The ops schema's services: upgrade, check, current revision, downgrade. Only the commands that
write migrate; a read never does (cli/common.py's migrate_ops, require_ops_db).
"""

from __future__ import annotations


def _migrate():
    from . import migrate  # Alembic: loaded by the commands that migrate, not by every process

    return migrate


def upgrade(settings) -> None:
    _migrate().upgrade(settings.ops_db_url)


def check(settings) -> str | None:
    _migrate().check(settings.ops_db_url)
    return _migrate().current(settings.ops_db_url)


def current(settings) -> str | None:
    return _migrate().current(settings.ops_db_url)


def downgrade(settings, revision: str) -> str | None:
    _migrate().downgrade(settings.ops_db_url, revision)
    return _migrate().current(settings.ops_db_url)
