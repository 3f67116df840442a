"""index change measure note: why a target query was not measured (refused, failed)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ops_index_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('measure_note', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ops_index_changes', schema=None) as batch_op:
        batch_op.drop_column('measure_note')
