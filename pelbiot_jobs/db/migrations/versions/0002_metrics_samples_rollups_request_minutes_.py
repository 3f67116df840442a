"""metrics samples, rollups, request minutes, sampler state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_metric_rollups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('metric', sa.String(length=160), nullable=False),
    sa.Column('host', sa.String(length=120), nullable=False),
    sa.Column('hour', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('min', sa.Float(), nullable=True),
    sa.Column('avg', sa.Float(), nullable=True),
    sa.Column('max', sa.Float(), nullable=True),
    sa.Column('p95', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_metric_rollups')),
    sa.UniqueConstraint('metric', 'host', 'hour', name=op.f('uq_ops_metric_rollups_metric_host_hour'))
    )
    with op.batch_alter_table('ops_metric_rollups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_metric_rollups_hour'), ['hour'], unique=False)

    op.create_table('ops_metric_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('metric', sa.String(length=160), nullable=False),
    sa.Column('host', sa.String(length=120), nullable=False),
    sa.Column('ts', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_metric_samples')),
    sa.UniqueConstraint('metric', 'host', 'ts', name=op.f('uq_ops_metric_samples_metric_host_ts'))
    )
    with op.batch_alter_table('ops_metric_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_metric_samples_host_ts'), ['host', 'ts'], unique=False)
        batch_op.create_index(batch_op.f('ix_ops_metric_samples_ts'), ['ts'], unique=False)

    op.create_table('ops_request_minutes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('minute', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('c4xx', sa.Integer(), nullable=False),
    sa.Column('c5xx', sa.Integer(), nullable=False),
    sa.Column('error_rate_percent', sa.Float(), nullable=True),
    sa.Column('p50_ms', sa.Float(), nullable=True),
    sa.Column('p95_ms', sa.Float(), nullable=True),
    sa.Column('p99_ms', sa.Float(), nullable=True),
    sa.Column('avg_ms', sa.Float(), nullable=True),
    sa.Column('max_ms', sa.Float(), nullable=True),
    sa.Column('slowest_routes', sa.Text(), nullable=True),
    sa.Column('agg', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_request_minutes')),
    sa.UniqueConstraint('source', 'minute', name=op.f('uq_ops_request_minutes_source_minute'))
    )
    with op.batch_alter_table('ops_request_minutes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_request_minutes_minute'), ['minute'], unique=False)

    op.create_table('ops_sampler_state',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_ops_sampler_state'))
    )


def downgrade() -> None:
    op.drop_table('ops_sampler_state')
    with op.batch_alter_table('ops_request_minutes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_request_minutes_minute'))

    op.drop_table('ops_request_minutes')
    with op.batch_alter_table('ops_metric_samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_metric_samples_ts'))
        batch_op.drop_index(batch_op.f('ix_ops_metric_samples_host_ts'))

    op.drop_table('ops_metric_samples')
    with op.batch_alter_table('ops_metric_rollups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_metric_rollups_hour'))

    op.drop_table('ops_metric_rollups')
