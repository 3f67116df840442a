"""notification attempts name their receiver (NULL: e-mail)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ops_notification_attempts') as batch:
        batch.add_column(sa.Column('receiver', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ops_notification_attempts') as batch:
        batch.drop_column('receiver')
