"""ops_job_runs indexed by job: a job's latest run is read without a scan of every run

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_ops_job_runs_job_started_at'), 'ops_job_runs', ['job', 'started_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_ops_job_runs_job_started_at'), table_name='ops_job_runs')
