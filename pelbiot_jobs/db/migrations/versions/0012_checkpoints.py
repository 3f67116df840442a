"""checkpoints: ops_sampler_state renamed ops_checkpoints (every job's read position, not only samplers')

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A rename keeps the rows: slow-log offsets, stream ids and sampler baselines carry over.
    op.rename_table('ops_sampler_state', 'ops_checkpoints')


def downgrade() -> None:
    op.rename_table('ops_checkpoints', 'ops_sampler_state')
