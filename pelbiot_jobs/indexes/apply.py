"""Create planned indexes online, under the guardrails a DBA expects.

- online only: ``ALGORITHM=INPLACE, LOCK=NONE``, so the server refuses rather than lock the table;
- ``lock_wait_timeout`` on the session: waiting for a metadata lock gives up instead of queueing
  every query behind the DDL;
- a maintenance window (UTC) and a maximum table size;
- a load guard like pt-online-schema-change's: Threads_running above ``max_load`` pauses before a
  DDL starts, above ``critical_load`` aborts, and a watcher aborts a running DDL (KILL QUERY);
- one DDL at a time on the server, whichever worker runs it (a named lock, GET_LOCK);
- every change, skipped or done, is recorded in ops_index_changes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, insert, text

from ..db.ops_models import index_changes

DDL_LOCK = "pelbiot_jobs.ddl"


@dataclass(frozen=True)
class Guard:
    window: tuple[dt.time, dt.time] | None = None  # UTC; None: any time
    max_table_bytes: int = 10 * 2**30
    max_load: int = 25  # Threads_running above this: pause
    critical_load: int = 50  # above this: abort
    pause_seconds: float = 5.0
    max_pauses: int = 12
    lock_wait_timeout: int = 10
    check_every: float = 0.5


def parse_window(value: str | None) -> tuple[dt.time, dt.time] | None:
    """``"02:00-05:00"`` -> (02:00, 05:00); raise ValueError."""
    if not value:
        return None
    start, _, end = value.partition("-")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


def in_window(window, now: dt.datetime) -> bool:
    if window is None:
        return True
    start, end = window
    t = now.time()
    return start <= t < end if start <= end else (t >= start or t < end)


def threads_running(conn) -> int:
    return int(conn.execute(text("SHOW GLOBAL STATUS LIKE 'Threads_running'")).one()[1])


def record(ops: Engine, row: dict) -> None:
    with ops.begin() as conn:
        conn.execute(insert(index_changes).values(**row))


#: A target query runs under this statement limit (s) when its latency is measured.
MEASURE_TIME_LIMIT = 5


def runnable(masked: str) -> str:
    """A masked example made runnable: each ``?`` becomes ``'1'`` (MySQL converts it for numbers and
    strings alike, so the plan stays representative)."""
    return masked.replace("?", "'1'")


def measure(app: Engine, query: str) -> tuple[int | None, float | None, str | None]:
    """(EXPLAIN's rows estimate, latency in ms, why not measured) of a target query.

    The query comes from a slow log: it runs only when ``sqlguard`` proves it a plain read, in a
    read-only transaction under a statement time limit; a refused one is never run.
    """
    from ..db.readonly import explain_read, flavor, time_read
    from ..lib.errors import one_line
    from ..lib.sqlguard import UnsafeSQL, check_read

    try:
        checked = check_read(runnable(query).strip().rstrip(";"))
    except UnsafeSQL as exc:
        return None, None, f"target query refused, not run: {exc}"
    with app.connect() as conn:
        if flavor(conn) == "sqlite":
            return None, None, None
        try:
            rows = sum(int(r.get("rows") or 0) for r in explain_read(conn, checked, time_limit_s=MEASURE_TIME_LIMIT))
            return rows, time_read(conn, checked, time_limit_s=MEASURE_TIME_LIMIT), None
        except UnsafeSQL as exc:
            return None, None, f"target query refused, not run: {exc}"
        except Exception as exc:
            return None, None, f"target query not measured: {one_line(exc)}"[:1000]


def apply_plan(app: Engine, ops: Engine, creates: list[dict], guard: Guard, run_id: str,
               now=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)) -> list[dict]:
    """Run the ``create`` entries of a plan, one at a time, under ``guard``; return their outcomes.

    When an entry names the slow query it is for (``target``), its EXPLAIN estimate and latency are
    measured before and after, and kept with the change.
    """
    results = []
    for entry in creates:
        started = now()
        target = entry.get("target")
        row = {"run_id": run_id, "table_name": entry["table"], "index_name": entry["name"],
               "statement": entry["sql"], "started_at": started, "target_query": target}
        if target:
            row["explain_rows_before"], row["latency_ms_before"], row["measure_note"] = measure(app, target)
        outcome, reason, size, peak = _apply_one(app, entry, guard, now)
        finished = now()
        if target and outcome == "created" and not row["measure_note"]:
            row["explain_rows_after"], row["latency_ms_after"], row["measure_note"] = measure(app, target)
        # A change keeps why it was made (the advisor names the query it is for), and why not when skipped.
        why = "; ".join(x for x in (reason, entry.get("reason")) if x) or None
        row.update(outcome=outcome, reason=why[:1000] if why else None, table_bytes=size, threads_running_max=peak,
                   finished_at=finished, duration_s=(finished - started).total_seconds())
        record(ops, row)
        results.append({"table": entry["table"], "index": entry["name"], "outcome": outcome, "reason": reason,
                        "duration_s": row["duration_s"],
                        **{k: row.get(k) for k in ("explain_rows_before", "explain_rows_after",
                                                   "latency_ms_before", "latency_ms_after", "measure_note")}})
        if outcome == "aborted":
            break  # the server is under critical load: stop the run, do not try the next one
    return results


def _apply_one(app: Engine, entry: dict, guard: Guard, now) -> tuple[str, str | None, int | None, int | None]:
    if not in_window(guard.window, now()):
        start, end = guard.window
        return "skipped", f"outside the maintenance window {start:%H:%M}-{end:%H:%M} UTC", None, None
    with app.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(entry["sql"])
            conn.commit()
            return "created", None, None, None
        size = conn.execute(text(
            "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": entry["table"]}).scalar() or 0
        if size > guard.max_table_bytes:
            return "skipped", (f"table {entry['table']} is {size / 2**20:,.0f} MB, above the "
                               f"{guard.max_table_bytes / 2**20:,.0f} MB limit"), size, None
        if conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": DDL_LOCK}).scalar() != 1:
            return "skipped", "another index change is running on this server", size, None
        try:
            for pause in range(guard.max_pauses + 1):
                load = threads_running(conn)
                if load > guard.critical_load:
                    return "aborted", f"Threads_running {load} above the critical load {guard.critical_load}", size, load
                if load <= guard.max_load:
                    break
                if pause == guard.max_pauses:
                    return "skipped", (f"Threads_running stayed above {guard.max_load} for "
                                       f"{guard.max_pauses * guard.pause_seconds:.0f} s"), size, load
                time.sleep(guard.pause_seconds)
            conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {int(guard.lock_wait_timeout)}")
            ddl_id = conn.execute(text("SELECT CONNECTION_ID()")).scalar()
            watcher = _LoadWatcher(app, ddl_id, guard)
            watcher.start()
            try:
                conn.exec_driver_sql(entry["sql"])
            except Exception as exc:
                if watcher.killed:
                    return "aborted", f"Threads_running reached {watcher.peak} during the build (critical " \
                                      f"{guard.critical_load}): the DDL was killed", size, watcher.peak
                from ..lib.errors import one_line

                return "failed", one_line(exc), size, watcher.peak
            finally:
                watcher.stop()
            return "created", None, size, watcher.peak
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": DDL_LOCK})


class _LoadWatcher(threading.Thread):
    """Watches Threads_running on its own connection while a DDL runs; kills the DDL above critical."""

    def __init__(self, engine: Engine, ddl_id: int, guard: Guard):
        super().__init__(daemon=True)
        self.engine, self.ddl_id, self.guard = engine, ddl_id, guard
        self.peak = 0
        self.killed = False
        self._done = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self._done.wait(self.guard.check_every):
                load = threads_running(conn) - 1  # not counting the DDL itself
                self.peak = max(self.peak, load)
                if load > self.guard.critical_load:
                    conn.exec_driver_sql(f"KILL QUERY {int(self.ddl_id)}")
                    self.killed = True
                    return

    def stop(self) -> None:
        self._done.set()
        self.join(10)
