"""index changes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_index_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('index_name', sa.String(length=64), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('finished_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('table_bytes', sa.BigInteger(), nullable=True),
    sa.Column('threads_running_max', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_index_changes')),
    sa.UniqueConstraint('run_id', 'table_name', 'index_name', name=op.f('uq_ops_index_changes_run_id_table_name_index_name'))
    )
    with op.batch_alter_table('ops_index_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_index_changes_started_at'), ['started_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ops_index_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_index_changes_started_at'))

    op.drop_table('ops_index_changes')
