"""ops_query_slices: each query class's calls and time per client user, host, schema and SQL-comment tags, per
hour; the stored digests backfilled where their users, hosts and schemas name one each

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""
import datetime as dt
import hashlib
import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

#: What a digest stored before 0018 says of a dimension that held several values.
MIXED = "(mixed)"


def upgrade() -> None:
    slices = op.create_table(
        'ops_query_slices',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('query_id', sa.String(length=32), nullable=False),
        sa.Column('window_start', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb')
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
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_query_slices')),
        sa.UniqueConstraint('source', 'query_id', 'window_start', 'slice_key',
                            name=op.f('uq_ops_query_slices_source_query_id_window_start_slice_key')))
    with op.batch_alter_table('ops_query_slices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_query_slices_window_start'), ['window_start'], unique=False)
    _backfill(slices)


def _one(raw):
    """The one value a stored {value: count} names; MIXED for several; None for none."""
    try:
        values = [k for k in json.loads(raw or "{}") if k]
    except ValueError:
        return MIXED
    return values[0] if len(values) == 1 else (MIXED if values else None)


def _backfill(slices) -> None:
    """One slice per stored digest: exact where it names one user, host and schema."""
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(sa.text(
            "SELECT id, source, query_id, window_start, users, hosts, `databases`, calls, query_time_sum, "
            "lock_time_sum, rows_examined_sum, rows_sent_sum, rows_affected_sum FROM ops_query_digests "
            "WHERE id > :last ORDER BY id LIMIT 5000"), {"last": last}).mappings().all()
        if not rows:
            return
        out = []
        for r in rows:
            user, host, schema = _one(r["users"]), _one(r["hosts"]), _one(r["databases"])
            user, host, schema = (user or None) and user[:80], (host or None) and host[:255], \
                (schema or None) and schema[:64]
            key = hashlib.sha1("\0".join(v or "" for v in (user, host, schema, "")).encode()).hexdigest()
            when = r["window_start"]
            if isinstance(when, str):  # SQLite hands a raw SELECT's datetime back as text
                when = dt.datetime.fromisoformat(when)
            out.append({"source": r["source"], "query_id": r["query_id"], "window_start": when,
                        "user_name": user, "client_host": host, "schema_name": schema, "tags": "", "slice_key": key,
                        "calls": r["calls"], "query_time_sum": r["query_time_sum"],
                        "lock_time_sum": r["lock_time_sum"], "rows_examined_sum": r["rows_examined_sum"],
                        "rows_sent_sum": r["rows_sent_sum"], "rows_affected_sum": r["rows_affected_sum"]})
        op.bulk_insert(slices, out)
        last = rows[-1]["id"]


def downgrade() -> None:
    with op.batch_alter_table('ops_query_slices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ops_query_slices_window_start'))
    op.drop_table('ops_query_slices')
