"""api tokens (hashed) and alert rules toggled at run time

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

from sqlalchemy.dialects import mysql

# As the other migrations: DATETIME(6) on MySQL/MariaDB (db check compares them with the models).
UtcDateTime = lambda: sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(  # noqa: E731
    mysql.DATETIME(fsp=6), 'mysql')
BigId = lambda: sa.BigInteger().with_variant(sa.Integer(), 'sqlite')  # noqa: E731


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ops_api_tokens',
        sa.Column('id', BigId(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.String(length=8), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=True),
        sa.Column('expires_at', UtcDateTime(), nullable=True),
        sa.Column('last_used_at', UtcDateTime(), nullable=True),
        sa.Column('revoked_at', UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_api_tokens')),
        sa.UniqueConstraint('name', name=op.f('uq_ops_api_tokens_name')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_ops_api_tokens_token_hash')),
    )
    op.create_table(
        'ops_rule_toggles',
        sa.Column('rule', sa.String(length=100), nullable=False),
        sa.Column('enabled', sa.Integer(), nullable=False),
        sa.Column('changed_by', sa.String(length=100), nullable=False),
        sa.Column('changed_at', UtcDateTime(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint('rule', name=op.f('pk_ops_rule_toggles')),
    )


def downgrade() -> None:
    op.drop_table('ops_rule_toggles')
    op.drop_table('ops_api_tokens')
