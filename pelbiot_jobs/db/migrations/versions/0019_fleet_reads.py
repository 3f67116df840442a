"""Reads that stay fast on a fleet: ops_metric_rollups indexed by host and hour (one host's chart,
the hosts of a window, without a scan of every host's rollups); ops_metric_samples' (host, ts)
index carries metric and value (a host's day of samples charted from the index alone), and
ops_health_scores' (ts) index host and score (a fleet's trend read from the index alone);
ops_query_slices_daily, the
slices summed per UTC day (a week of attribution reads a row per class, slice and day),
backfilled from the hourly slices

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_SUMS = ('calls', 'query_time_sum', 'lock_time_sum', 'rows_examined_sum', 'rows_sent_sum', 'rows_affected_sum')


def upgrade() -> None:
    op.create_index(op.f('ix_ops_metric_rollups_host_hour'), 'ops_metric_rollups', ['host', 'hour'])
    op.create_index(op.f('ix_ops_metric_samples_host_ts_metric_value'), 'ops_metric_samples',
                    ['host', 'ts', 'metric', 'value'])
    op.drop_index(op.f('ix_ops_metric_samples_host_ts'), table_name='ops_metric_samples')
    op.create_index(op.f('ix_ops_health_scores_ts_host_score'), 'ops_health_scores', ['ts', 'host', 'score'])
    op.drop_index(op.f('ix_ops_health_scores_ts'), table_name='ops_health_scores')
    op.create_table(
        'ops_query_slices_daily',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('query_id', sa.String(length=32), nullable=False),
        sa.Column('day', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb')
                  .with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
        sa.Column('user_name', sa.String(length=80), nullable=True),
        sa.Column('client_host', sa.String(length=255), nullable=True),
        sa.Column('schema_name', sa.String(length=64), nullable=True),
        sa.Column('tags', sa.String(length=1000), nullable=False),
        sa.Column('slice_key', sa.String(length=40), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('query_time_sum', sa.Float(), nullable=False),
        sa.Column('lock_time_sum', sa.Float(), nullable=True),
        sa.Column('rows_examined_sum', sa.BigInteger(), nullable=True),
        sa.Column('rows_sent_sum', sa.BigInteger(), nullable=True),
        sa.Column('rows_affected_sum', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_query_slices_daily')),
        sa.UniqueConstraint('source', 'query_id', 'day', 'slice_key',
                            name=op.f('uq_ops_query_slices_daily_source_query_id_day_slice_key')))
    with op.batch_alter_table('ops_query_slices_daily', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_query_slices_daily_day'), ['day'], unique=False)
    # SQLite keeps a datetime as text 'YYYY-MM-DD HH:MM:SS.ffffff': its day is the text's date and midnight.
    day = ("CAST(DATE(window_start) AS DATETIME)" if op.get_bind().dialect.name != 'sqlite'
           else "DATE(window_start) || ' 00:00:00.000000'")
    sums = ", ".join(f"SUM({c})" for c in _SUMS)
    op.execute(f"INSERT INTO ops_query_slices_daily (source, query_id, day, user_name, client_host, schema_name, tags, "
               f"slice_key, {', '.join(_SUMS)}) SELECT source, query_id, {day}, MAX(user_name), MAX(client_host), "
               f"MAX(schema_name), MAX(tags), slice_key, {sums} FROM ops_query_slices "
               f"GROUP BY source, query_id, {day}, slice_key")


def downgrade() -> None:
    with op.batch_alter_table('ops_query_slices_daily', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_query_slices_daily_day'))
    op.drop_table('ops_query_slices_daily')
    op.create_index(op.f('ix_ops_health_scores_ts'), 'ops_health_scores', ['ts'])
    op.drop_index(op.f('ix_ops_health_scores_ts_host_score'), table_name='ops_health_scores')
    op.create_index(op.f('ix_ops_metric_samples_host_ts'), 'ops_metric_samples', ['host', 'ts'])
    op.drop_index(op.f('ix_ops_metric_samples_host_ts_metric_value'), table_name='ops_metric_samples')
    op.drop_index(op.f('ix_ops_metric_rollups_host_hour'), table_name='ops_metric_rollups')
