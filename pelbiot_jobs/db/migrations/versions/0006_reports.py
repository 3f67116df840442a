"""reports

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('period_start', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('period_end', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('files', sa.Text(), nullable=False),
    sa.Column('emailed_to', sa.String(length=1000), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_reports')),
    sa.UniqueConstraint('kind', 'period_start', name=op.f('uq_ops_reports_kind_period_start'))
    )
    with op.batch_alter_table('ops_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_reports_created_at'), ['created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ops_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_reports_created_at'))

    op.drop_table('ops_reports')
