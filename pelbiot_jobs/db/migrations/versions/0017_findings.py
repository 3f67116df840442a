"""ops_recommendations become findings: a row per check and subject, with its category, fix, and when it was
first seen, last seen and resolved

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def _when():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    # One set per day becomes one row per finding: keep each code's newest day (its subject is the whole server).
    op.execute("DELETE FROM ops_recommendations WHERE id NOT IN (SELECT id FROM (SELECT MAX(r.id) AS id FROM "
               "ops_recommendations r JOIN (SELECT code, MAX(day) AS day FROM ops_recommendations GROUP BY code) n "
               "ON n.code = r.code AND n.day = r.day GROUP BY r.code) keep)")
    with op.batch_alter_table('ops_recommendations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.String(length=16), nullable=False, server_default='performance'))
        batch_op.add_column(sa.Column('subject', sa.String(length=255), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('fix', sa.String(length=1000), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('first_seen', _when(), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', _when(), nullable=True))
        batch_op.drop_constraint('uq_ops_recommendations_day_code', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_ops_recommendations_code_subject'), ['code', 'subject'])
        batch_op.create_index(batch_op.f('ix_ops_recommendations_resolved_at'), ['resolved_at'])
    op.execute("UPDATE ops_recommendations SET first_seen = day")
    # The checks that took over the first five rules' codes.
    op.execute("UPDATE ops_recommendations SET code = 'buffer_pool_vs_data' WHERE code = 'buffer_pool_small'")
    op.execute("UPDATE ops_recommendations SET code = 'connections_near_max', category = 'resources' "
               "WHERE code = 'connections_high'")
    op.execute("UPDATE ops_recommendations SET category = 'schema' "
               "WHERE code IN ('tables_without_primary_key', 'duplicate_indexes')")


def downgrade() -> None:
    op.execute("DELETE FROM ops_recommendations WHERE id NOT IN (SELECT id FROM (SELECT MIN(id) AS id FROM "
               "ops_recommendations GROUP BY day, code) keep)")
    with op.batch_alter_table('ops_recommendations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_recommendations_resolved_at'))
        batch_op.drop_constraint(batch_op.f('uq_ops_recommendations_code_subject'), type_='unique')
        batch_op.create_unique_constraint('uq_ops_recommendations_day_code', ['day', 'code'])
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('first_seen')
        batch_op.drop_column('fix')
        batch_op.drop_column('subject')
        batch_op.drop_column('category')
