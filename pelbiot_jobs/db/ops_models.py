"""The ops tables: where every result of pelbiot-jobs lands.

Every table has the ``ops_`` prefix so the ops DB may be the app DB itself. Rows are keyed by
what they describe (task id + attempt, table + hour...) so a redelivered task upserts the same
row instead of writing a second one. Change these only together with a migration
(``pelbiot-jobs db check`` fails when the two differ).
"""

from __future__ import annotations

from sqlalchemy import (Column, Float, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, BigInteger)

from .types import BigId, UtcDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
})

#: Final states of a run; RETRY and STARTED are not final.
FINAL_STATES = ("SUCCESS", "FAILURE", "SKIPPED")

job_runs = Table(
    "ops_job_runs", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("task", String(100), nullable=False),
    Column("job", String(100)),  # the beat entry that sent it, when beat did
    Column("trigger", String(16), nullable=False),  # beat, cli, once, manual (Flower, API)
    Column("args", Text),
    Column("queue", String(100)),
    Column("scheduled_at", UtcDateTime),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("state", String(16), nullable=False),  # STARTED, SUCCESS, FAILURE, RETRY, SKIPPED
    Column("duration_s", Float),
    Column("error", String(1000)),
    Column("result", String(1000)),
    Column("host", String(255)),
    Column("worker", String(255)),
    UniqueConstraint("task_id", "attempt"),
    Index(None, "task", "started_at"),
    Index(None, "state", "finished_at"),
    Index(None, "started_at"),
)

table_stats = Table(
    "ops_table_stats", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("schema_name", String(64), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("captured_at", UtcDateTime, nullable=False),  # truncated to the hour: one row per table and hour
    Column("engine", String(32)),
    Column("row_count", BigInteger),
    Column("data_bytes", BigInteger),
    Column("index_bytes", BigInteger),
    Column("free_bytes", BigInteger),
    Column("exact", Integer, nullable=False, default=0),  # 1: counted; 0: the engine's estimate
    UniqueConstraint("schema_name", "table_name", "captured_at"),
    Index(None, "captured_at"),
)
