"""digests name their source as PELBIOT_SLOWLOG_SOURCE does: file, table, performance_schema

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

RENAMED = (("slowlog_file", "file"), ("slow_log_table", "table"))


def upgrade() -> None:
    for old, new in RENAMED:
        op.execute(f"UPDATE ops_query_digests SET source = '{new}' WHERE source = '{old}'")


def downgrade() -> None:
    for old, new in RENAMED:
        op.execute(f"UPDATE ops_query_digests SET source = '{old}' WHERE source = '{new}'")
