"""Checkpoints: where each job got to (a slow log's inode and offset, a stream's last id, a
sampler's last reading), one JSON row per name in ops_checkpoints.

A job writes its checkpoint in the same transaction as the results it derived from the
events before it, so a redelivered or retried run neither loses nor counts an event twice.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Connection, select

from .ops_models import checkpoints
from .upsert import upsert


#: The job runs retention has deleted, per "task|state": /metrics counts the runs kept plus these,
#: a counter that never goes down (maintenance.service.count_pruned_runs writes it).
PRUNED_JOB_RUNS = "metrics:pruned_job_runs"


def get(conn: Connection, name: str, *, lock: bool = False) -> dict | None:
    """The checkpoint ``name``; ``lock`` holds its row until the transaction ends (MySQL/MariaDB)."""
    query = select(checkpoints.c.data).where(checkpoints.c.name == name)
    if lock and conn.dialect.name in ("mysql", "mariadb"):
        query = query.with_for_update()
    data = conn.execute(query).scalar()
    return json.loads(data) if data else None


def put(conn: Connection, name: str, data: dict, now: dt.datetime) -> None:
    upsert(conn, checkpoints, [{"name": name, "updated_at": now, "data": json.dumps(data, sort_keys=True)}],
           key=("name",))
