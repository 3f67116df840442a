"""query digests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_query_digests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('query_id', sa.String(length=32), nullable=False),
    sa.Column('window_start', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('fingerprint', sa.Text(), nullable=False),
    sa.Column('example', sa.Text(), nullable=True),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('query_time_sum', sa.Float(), nullable=False),
    sa.Column('query_time_min', sa.Float(), nullable=True),
    sa.Column('query_time_max', sa.Float(), nullable=True),
    sa.Column('query_time_avg', sa.Float(), nullable=True),
    sa.Column('query_time_median', sa.Float(), nullable=True),
    sa.Column('query_time_p95', sa.Float(), nullable=True),
    sa.Column('lock_time_sum', sa.Float(), nullable=True),
    sa.Column('rows_sent_sum', sa.BigInteger(), nullable=True),
    sa.Column('rows_examined_sum', sa.BigInteger(), nullable=True),
    sa.Column('rows_affected_sum', sa.BigInteger(), nullable=True),
    sa.Column('bytes_sent_sum', sa.BigInteger(), nullable=True),
    sa.Column('full_scans', sa.Integer(), nullable=True),
    sa.Column('filesorts', sa.Integer(), nullable=True),
    sa.Column('tmp_disk_tables', sa.Integer(), nullable=True),
    sa.Column('first_seen', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('last_seen', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('databases', sa.String(length=1000), nullable=True),
    sa.Column('users', sa.String(length=1000), nullable=True),
    sa.Column('hosts', sa.String(length=1000), nullable=True),
    sa.Column('slow', sa.Integer(), nullable=False),
    sa.Column('hist', sa.Text(), nullable=False),
    sa.Column('explain', sa.Text(), nullable=True),
    sa.Column('explain_flags', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_query_digests')),
    sa.UniqueConstraint('source', 'query_id', 'window_start', name=op.f('uq_ops_query_digests_source_query_id_window_start'))
    )
    with op.batch_alter_table('ops_query_digests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_query_digests_window_start'), ['window_start'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ops_query_digests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_query_digests_window_start'))

    op.drop_table('ops_query_digests')
