"""job runs and table stats

Revision ID: 0001
Revises: 
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_job_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('task', sa.String(length=100), nullable=False),
    sa.Column('job', sa.String(length=100), nullable=True),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('args', sa.Text(), nullable=True),
    sa.Column('queue', sa.String(length=100), nullable=True),
    sa.Column('scheduled_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('started_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('finished_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('result', sa.String(length=1000), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('worker', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_job_runs')),
    sa.UniqueConstraint('task_id', 'attempt', name=op.f('uq_ops_job_runs_task_id_attempt'))
    )
    with op.batch_alter_table('ops_job_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_job_runs_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ops_job_runs_state_finished_at'), ['state', 'finished_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ops_job_runs_task_started_at'), ['task', 'started_at'], unique=False)

    op.create_table('ops_table_stats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('schema_name', sa.String(length=64), nullable=False),
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('captured_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('engine', sa.String(length=32), nullable=True),
    sa.Column('row_count', sa.BigInteger(), nullable=True),
    sa.Column('data_bytes', sa.BigInteger(), nullable=True),
    sa.Column('index_bytes', sa.BigInteger(), nullable=True),
    sa.Column('free_bytes', sa.BigInteger(), nullable=True),
    sa.Column('exact', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_table_stats')),
    sa.UniqueConstraint('schema_name', 'table_name', 'captured_at', name=op.f('uq_ops_table_stats_schema_name_table_name_captured_at'))
    )
    with op.batch_alter_table('ops_table_stats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_table_stats_captured_at'), ['captured_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ops_table_stats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_table_stats_captured_at'))

    op.drop_table('ops_table_stats')
    with op.batch_alter_table('ops_job_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_job_runs_task_started_at'))
        batch_op.drop_index(batch_op.f('ix_ops_job_runs_state_finished_at'))
        batch_op.drop_index(batch_op.f('ix_ops_job_runs_started_at'))

    op.drop_table('ops_job_runs')
