"""Run warmers: query the app DB read-only, shape the API's responses, write them, record the run."""

from __future__ import annotations

import datetime as dt
import random
import time

from sqlalchemy import Engine

from ..db.ops_models import cache_warm_runs
from ..db.readonly import read_only, run_read
from ..db.upsert import upsert
from ..lib.sqlguard import check_read
from .serialize import dumps, response_body
from .spec import Warmer
from .writer import write_keys

#: A warmer's query runs under this statement time limit (s).
WARMER_TIME_LIMIT_S = 30


def compute(engine: Engine, warmer: Warmer, now: dt.datetime) -> list[tuple[str, bytes]]:
    """Every (key, value) of one warmer, computed in one read-only transaction.

    The SQL is checked again here (``sqlguard``), whoever built the warmer; on MySQL/MariaDB what
    runs is the checked rendering, under a statement time limit.
    """
    builtins = {"now": now, "today": now.date()}
    if warmer.window:
        builtins["since"] = now - dt.timedelta(seconds=warmer.window)
    query = check_read(warmer.sql, placeholders=True)
    params_query = check_read(warmer.params_sql, placeholders=True) if warmer.params_sql else None
    items = []
    with engine.connect() as conn, read_only(conn):
        if params_query:
            param_sets = [dict(r) for r in run_read(conn, params_query, builtins, original=warmer.params_sql,
                                                    time_limit_s=WARMER_TIME_LIMIT_S)]
        else:
            param_sets = [{}]
        for params in param_sets:
            rows = run_read(conn, query, {**builtins, **params}, original=warmer.sql,
                            time_limit_s=WARMER_TIME_LIMIT_S)
            key = warmer.key.format(**params) if params else warmer.key
            items.append((key, dumps(response_body(rows, warmer.shape))))
    return items


def warm(engine: Engine, client, warmers: list[Warmer], run_id: str, ops_engine: Engine,
         now: dt.datetime, rnd: random.Random | None = None) -> dict:
    """Compute then write each warmer; a warmer whose query fails leaves its keys as they were.

    Redis errors propagate (the task retries the run); query errors are recorded per warmer.
    """
    rnd = rnd or random.Random()
    summary = {"keys": 0, "bytes": 0, "warmers": {}, "errors": 0}
    for warmer in warmers:
        started = time.perf_counter()
        row = {"run_id": run_id, "warmer": warmer.name, "started_at": now, "keys": 0, "bytes": 0, "error": None}
        try:
            items = compute(engine, warmer, now)
        except Exception as exc:
            from ..lib.errors import is_transient, one_line

            if is_transient(exc):  # the database is away: retry the run, do not record a half run
                raise
            row["error"] = one_line(exc)
            summary["errors"] += 1
        else:
            row["keys"], row["bytes"] = write_keys(client, items, warmer.ttl, warmer.jitter, rnd)
        row["duration_s"] = round(time.perf_counter() - started, 4)
        row["finished_at"] = now + dt.timedelta(seconds=row["duration_s"])
        with ops_engine.begin() as conn:
            upsert(conn, cache_warm_runs, [row], key=("run_id", "warmer"))
        summary["keys"] += row["keys"]
        summary["bytes"] += row["bytes"]
        summary["warmers"][warmer.name] = row["error"] or row["keys"]
    return summary
