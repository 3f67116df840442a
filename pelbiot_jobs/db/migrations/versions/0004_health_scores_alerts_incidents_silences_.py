"""health scores, alerts, incidents, silences, notifications

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_alert_states',
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=120), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('since', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('clearing_since', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('fired_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('evaluated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('last_notified_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.PrimaryKeyConstraint('rule', 'host', name=op.f('pk_ops_alert_states'))
    )
    op.create_table('ops_health_scores',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('host', sa.String(length=120), nullable=False),
    sa.Column('ts', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('present', sa.Integer(), nullable=False),
    sa.Column('components', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_health_scores')),
    sa.UniqueConstraint('host', 'ts', name=op.f('uq_ops_health_scores_host_ts'))
    )
    with op.batch_alter_table('ops_health_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_health_scores_ts'), ['ts'], unique=False)

    op.create_table('ops_incident_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_incident_events'))
    )
    with op.batch_alter_table('ops_incident_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_incident_events_incident_id_at'), ['incident_id', 'at'], unique=False)

    op.create_table('ops_incidents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=120), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('resolved_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('hold', sa.Integer(), nullable=False),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_incidents'))
    )
    with op.batch_alter_table('ops_incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_incidents_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ops_incidents_rule_host_status'), ['rule', 'host', 'status'], unique=False)

    op.create_table('ops_notification_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('notification_id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_notification_attempts'))
    )
    with op.batch_alter_table('ops_notification_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_notification_attempts_notification_id'), ['notification_id'], unique=False)

    op.create_table('ops_notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('recipients', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=True),
    sa.Column('last_error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_notifications'))
    )
    with op.batch_alter_table('ops_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_notifications_status_created_at'), ['status', 'created_at'], unique=False)

    op.create_table('ops_silences',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=120), nullable=True),
    sa.Column('until', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_silences'))
    )
    with op.batch_alter_table('ops_silences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_silences_rule_until'), ['rule', 'until'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ops_silences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_silences_rule_until'))

    op.drop_table('ops_silences')
    with op.batch_alter_table('ops_notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_notifications_status_created_at'))

    op.drop_table('ops_notifications')
    with op.batch_alter_table('ops_notification_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_notification_attempts_notification_id'))

    op.drop_table('ops_notification_attempts')
    with op.batch_alter_table('ops_incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_incidents_rule_host_status'))
        batch_op.drop_index(batch_op.f('ix_ops_incidents_opened_at'))

    op.drop_table('ops_incidents')
    with op.batch_alter_table('ops_incident_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_incident_events_incident_id_at'))

    op.drop_table('ops_incident_events')
    with op.batch_alter_table('ops_health_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_health_scores_ts'))

    op.drop_table('ops_health_scores')
    op.drop_table('ops_alert_states')
