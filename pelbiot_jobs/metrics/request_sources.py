"""Where request telemetry comes from: a Redis stream (consumer group) or an nginx access log.

Both commit the aggregates and their read position (last stream id, or file inode and offset)
in one ops-DB transaction, so a worker killed at any point neither loses nor double-counts:
- stream: entries are acknowledged only after that commit; entries redelivered after a crash
  whose ids are at or below the committed id were counted already and are only acknowledged;
- access log: the offset moves with the aggregates; rotation (rename) is followed by finishing
  the rotated file first, truncation restarts at 0, a partial last line waits for the next run.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Callable

import redis
from sqlalchemy import Engine

from ..db import checkpoints
from ..lib.filetail import find_by_inode
from .requests import aggregate, parse_access_line, parse_stream_fields
from .store import merge_request_minutes

STREAM_GROUP = "pelbiot-jobs"
#: One consumer name: the ingest task is exclusive, so one reader at a time owns the pending list.
STREAM_CONSUMER = "ingest"
STREAM_BATCH = 5000
#: Batches per run; what is left is read by the next run.
MAX_BATCHES = 40
#: Bytes of access log read per run.
MAX_LOG_BYTES = 64 * 1024 * 1024


def _id(value) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else str(value)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def ensure_group(client: redis.Redis, stream: str) -> None:
    try:
        client.xgroup_create(stream, STREAM_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def ingest_stream(client: redis.Redis, engine: Engine, stream: str, now: dt.datetime,
                  crash: Callable[[str], None] | None = None) -> dict:
    """Read new (and previously unacknowledged) entries, commit their aggregates, then ack them."""
    ensure_group(client, stream)
    state_name = f"stream:{stream}"
    totals = {"entries": 0, "counted": 0, "malformed": 0, "already_counted": 0}
    for start in ("0", ">"):  # first what a dead run left pending, then what is new
        for _ in range(MAX_BATCHES):
            reply = client.xreadgroup(STREAM_GROUP, STREAM_CONSUMER, {stream: start}, count=STREAM_BATCH)
            entries = reply[0][1] if reply else []
            if not entries:
                break
            with engine.begin() as conn:
                state = checkpoints.get(conn, state_name, lock=True) or {}
                last = _id(state.get("last_id", "0-0"))
                fresh = [(eid, fields) for eid, fields in entries if _id(eid) > last]
                requests = [parse_stream_fields(fields or {}) for _, fields in fresh]
                good = [r for r in requests if r is not None]
                merge_request_minutes(conn, "stream", aggregate(good))
                if fresh:
                    checkpoints.put(conn, state_name, {"last_id": _text(max(fresh, key=lambda e: _id(e[0]))[0])}, now)
                if crash:
                    crash("before_commit")
            if crash:
                crash("after_commit")
            client.xack(stream, STREAM_GROUP, *[eid for eid, _ in entries])
            totals["entries"] += len(entries)
            totals["counted"] += len(good)
            totals["malformed"] += len(requests) - len(good)
            totals["already_counted"] += len(entries) - len(fresh)
            if len(entries) < STREAM_BATCH and start == ">":
                break
    return totals


def _read_lines(path: Path, offset: int, limit: int, final: bool) -> tuple[list[str], int]:
    """Complete lines from ``offset``; a final file also gives up its unterminated last line."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(limit)
    end = len(data) if final and len(data) < limit else data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    return lines, offset + end


def ingest_access_log(path: Path, engine: Engine, now: dt.datetime) -> dict:
    """Read what the access log gained since the last run; follow rotation and truncation."""
    state_name = f"access_log:{path}"
    with engine.begin() as conn:
        state = checkpoints.get(conn, state_name, lock=True) or {}
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {"lines": 0, "counted": 0, "malformed": 0, "missing": True}
        inode, offset = state.get("inode"), int(state.get("offset", 0))
        lines: list[str] = []
        rotated = truncated = False
        if inode is not None and inode != st.st_ino:
            old = find_by_inode(path.parent, inode)
            if old is not None:  # finish the rotated file first
                lines, _ = _read_lines(old, offset, MAX_LOG_BYTES, final=True)
            offset, rotated = 0, True
        elif offset > st.st_size:
            offset, truncated = 0, True
        more, offset = _read_lines(path, offset, MAX_LOG_BYTES, final=False)
        lines += more
        requests = [parse_access_line(line) for line in lines if line.strip()]
        good = [r for r in requests if r is not None]
        merge_request_minutes(conn, "access_log", aggregate(good))
        malformed = len(requests) - len(good)
        checkpoints.put(conn, state_name, {"inode": st.st_ino, "offset": offset,
                                     "malformed_total": int(state.get("malformed_total", 0)) + malformed}, now)
    return {"lines": len(requests), "counted": len(good), "malformed": malformed, "rotated": rotated,
            "truncated": truncated}
