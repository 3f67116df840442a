"""Per-second rates between two readings of monotonic counters. Pure.

A counter that goes backwards, or a server whose uptime went backwards, means a restart: the
current reading becomes the new baseline and no rate is produced (never a negative rate, never
a huge one). The first reading after start-up has no baseline: gauges only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

#: Readings closer than this (s) give no rate: a duplicate or a clock step, not an interval.
MIN_INTERVAL = 0.5
#: Readings further apart than this (s) give no rate: after an outage, an average over hours
#: would pass for a current figure. The reading becomes the new baseline.
MAX_INTERVAL = 900.0


@dataclass(frozen=True)
class Reading:
    """Raw counters and gauges read at one moment (``ts`` in seconds since the epoch)."""

    ts: float
    counters: Mapping[str, float] = field(default_factory=dict)
    gauges: Mapping[str, float | None] = field(default_factory=dict)
    uptime: float | None = None  # seconds the source has been up, when it tells

    def to_json(self) -> dict:
        return {"ts": self.ts, "counters": dict(self.counters), "gauges": dict(self.gauges), "uptime": self.uptime}

    @classmethod
    def from_json(cls, data: Mapping | None) -> "Reading | None":
        if not data:
            return None
        return cls(ts=data["ts"], counters=data.get("counters", {}), gauges=data.get("gauges", {}),
                   uptime=data.get("uptime"))


def restarted(prev: Reading, cur: Reading) -> bool:
    """True when ``cur`` cannot be compared with ``prev``: the source restarted in between."""
    if prev.uptime is not None and cur.uptime is not None and cur.uptime + MIN_INTERVAL < prev.uptime:
        return True
    return any(name in prev.counters and value < prev.counters[name] for name, value in cur.counters.items())


def counter_rates(prev: Reading | None, cur: Reading) -> dict[str, float] | None:
    """Per-second rate of every counter present in both readings, or None without a usable baseline."""
    if prev is None:
        return None
    elapsed = cur.ts - prev.ts
    if not MIN_INTERVAL <= elapsed <= MAX_INTERVAL or restarted(prev, cur):
        return None
    return {name: (value - prev.counters[name]) / elapsed
            for name, value in cur.counters.items() if name in prev.counters}


def delta(prev: Reading | None, cur: Reading, name: str) -> float | None:
    """The increase of one counter between two comparable readings, or None."""
    if prev is None or restarted(prev, cur) or name not in prev.counters or name not in cur.counters:
        return None
    return cur.counters[name] - prev.counters[name]
