"""cache warm runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_cache_warm_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('warmer', sa.String(length=100), nullable=False),
    sa.Column('started_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('finished_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('keys', sa.Integer(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_cache_warm_runs')),
    sa.UniqueConstraint('run_id', 'warmer', name=op.f('uq_ops_cache_warm_runs_run_id_warmer'))
    )
    with op.batch_alter_table('ops_cache_warm_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_cache_warm_runs_started_at'), ['started_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ops_cache_warm_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_cache_warm_runs_started_at'))

    op.drop_table('ops_cache_warm_runs')
