"""Retention: prune ops rows past their age, in small batches so no long lock is held."""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable

from sqlalchemy import Connection, Engine, delete, select

#: Rows deleted per transaction: short transactions keep the InnoDB undo log and locks small.
DELETE_BATCH = 5000


def cutoffs(now: dt.datetime, ages: Iterable[tuple]) -> list[tuple]:
    """Pure: the cutoff time of each (table, time expression, age in days[, a further condition])."""
    return [(table, column, now - dt.timedelta(days=days), *rest) for table, column, days, *rest in ages]


def prune(engine: Engine, plan: list[tuple],
          before_delete: dict[str, Callable[[Connection, list], None]] | None = None) -> dict[str, int]:
    """Delete rows older than each cutoff (and meeting the entry's further condition, if any);
    return the number deleted per table. ``before_delete``: per table name, called with each
    batch's ids in the transaction that deletes them."""
    deleted: dict[str, int] = {}
    for table, column, cutoff, *rest in plan:
        pk = list(table.primary_key.columns)[0]
        total = 0
        while True:
            with engine.begin() as conn:
                ids = conn.execute(select(pk).where(column < cutoff, *rest).order_by(pk)
                                   .limit(DELETE_BATCH)).scalars().all()
                if not ids:
                    break
                if before_delete and table.name in before_delete:
                    before_delete[table.name](conn, ids)
                total += conn.execute(delete(table).where(pk.in_(ids))).rowcount
            if len(ids) < DELETE_BATCH:
                break
        deleted[table.name] = deleted.get(table.name, 0) + total
    return deleted
