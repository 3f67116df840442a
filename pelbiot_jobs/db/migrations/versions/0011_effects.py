"""effects: what a task did outside pelbiot-jobs, recorded before doing it (done once)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

from sqlalchemy.dialects import mysql

# As the other migrations: DATETIME(6) on MySQL/MariaDB (db check compares them with the models).
UtcDateTime = lambda: sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(  # noqa: E731
    mysql.DATETIME(fsp=6), 'mysql')


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ops_effects',
        sa.Column('effect_key', sa.String(length=191), nullable=False),
        sa.Column('task_id', sa.String(length=64), nullable=True),
        sa.Column('what', sa.String(length=255), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('claimed_at', UtcDateTime(), nullable=False),
        sa.Column('done_at', UtcDateTime(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('detail', sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint('effect_key', name=op.f('pk_ops_effects')),
    )


def downgrade() -> None:
    op.drop_table('ops_effects')
