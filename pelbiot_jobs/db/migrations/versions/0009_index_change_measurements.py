"""index change measurements

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ops_index_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('target_query', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('explain_rows_before', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('explain_rows_after', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('latency_ms_before', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('latency_ms_after', sa.Float(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('ops_index_changes', schema=None) as batch_op:
        batch_op.drop_column('latency_ms_after')
        batch_op.drop_column('latency_ms_before')
        batch_op.drop_column('explain_rows_after')
        batch_op.drop_column('explain_rows_before')
        batch_op.drop_column('target_query')

