"""API request telemetry: per-minute aggregates that merge exactly. Pure.

Latencies go into a log-bucketed histogram (5 % wide buckets), so the aggregates of one minute
read in two runs merge into the same p50/p95/p99 as if read at once; a percentile is reported
as its bucket's upper bound (at most 5 % high).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from ..lib import histogram

#: Routes listed as the slowest of a minute.
SLOWEST_ROUTES = 5


@dataclass(frozen=True)
class Request:
    ts: float  # seconds since the epoch, UTC
    method: str
    route: str
    status: int
    duration_ms: float


@dataclass
class MinuteAgg:
    """Requests of one minute: counts, latency histogram, per-route figures."""

    count: int = 0
    c4xx: int = 0
    c5xx: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0
    hist: dict[int, int] = field(default_factory=dict)
    routes: dict[str, list[float]] = field(default_factory=dict)  # route -> [count, sum_ms, max_ms]

    def add(self, r: Request) -> None:
        self.count += 1
        self.c4xx += 400 <= r.status < 500
        self.c5xx += r.status >= 500
        self.sum_ms += r.duration_ms
        self.max_ms = max(self.max_ms, r.duration_ms)
        b = histogram.bucket_of(r.duration_ms)
        self.hist[b] = self.hist.get(b, 0) + 1
        key = f"{r.method} {r.route}"
        stats = self.routes.setdefault(key, [0, 0.0, 0.0])
        stats[0] += 1
        stats[1] += r.duration_ms
        stats[2] = max(stats[2], r.duration_ms)

    def merge(self, other: "MinuteAgg") -> "MinuteAgg":
        out = MinuteAgg(self.count + other.count, self.c4xx + other.c4xx, self.c5xx + other.c5xx,
                        self.sum_ms + other.sum_ms, max(self.max_ms, other.max_ms), dict(self.hist),
                        {k: list(v) for k, v in self.routes.items()})
        histogram.merge(out.hist, other.hist)
        for key, (n, s, m) in other.routes.items():
            stats = out.routes.setdefault(key, [0, 0.0, 0.0])
            stats[0] += n
            stats[1] += s
            stats[2] = max(stats[2], m)
        return out

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) of latency, as its bucket's upper bound, capped at the max."""
        return histogram.percentile(self.hist, self.count, q, self.max_ms)

    def summary(self) -> dict:
        slowest = sorted(self.routes.items(), key=lambda kv: kv[1][1] / kv[1][0], reverse=True)[:SLOWEST_ROUTES]
        return {
            "requests": self.count, "c4xx": self.c4xx, "c5xx": self.c5xx,
            "error_rate_percent": round(100.0 * self.c5xx / self.count, 3) if self.count else None,
            "p50_ms": self.percentile(50), "p95_ms": self.percentile(95), "p99_ms": self.percentile(99),
            "avg_ms": round(self.sum_ms / self.count, 3) if self.count else None, "max_ms": round(self.max_ms, 3),
            "slowest_routes": [{"route": k, "count": int(v[0]), "avg_ms": round(v[1] / v[0], 2),
                                "max_ms": round(v[2], 2)} for k, v in slowest],
        }

    def to_json(self) -> dict:
        return {"count": self.count, "c4xx": self.c4xx, "c5xx": self.c5xx, "sum_ms": self.sum_ms,
                "max_ms": self.max_ms, "hist": {str(k): v for k, v in self.hist.items()}, "routes": self.routes}

    @classmethod
    def from_json(cls, data: dict) -> "MinuteAgg":
        return cls(data["count"], data["c4xx"], data["c5xx"], data["sum_ms"], data["max_ms"],
                   {int(k): v for k, v in data["hist"].items()}, {k: list(v) for k, v in data["routes"].items()})


def minute_of(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts // 60 * 60), dt.timezone.utc).replace(tzinfo=None)


def aggregate(requests) -> dict[dt.datetime, MinuteAgg]:
    """Group requests by UTC minute."""
    out: dict[dt.datetime, MinuteAgg] = {}
    for r in requests:
        out.setdefault(minute_of(r.ts), MinuteAgg()).add(r)
    return out


_ID_SEGMENT = re.compile(r"/(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27,}|[0-9a-fA-F]{24,})(?=/|$)")


def normalize_path(path: str) -> str:
    """``/api/devices/42?x=1`` -> ``/api/devices/:id``: one route per endpoint, no user values."""
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    return _ID_SEGMENT.sub("/:id", path)


# nginx: log_format timed '$remote_addr - $remote_user [$time_local] "$request" $status '
#                         '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time';
_ACCESS = re.compile(
    r'^(?P<addr>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+)(?: [^"]*)?" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*" (?P<rt>\d+(?:\.\d+)?)\s*$')


def parse_access_line(line: str) -> Request | None:
    """One nginx ``combined`` line with ``$request_time`` appended; None when malformed."""
    m = _ACCESS.match(line)
    if not m:
        return None
    try:
        when = dt.datetime.strptime(m["time"], "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None
    return Request(ts=when.timestamp(), method=m["method"], route=normalize_path(m["path"]),
                   status=int(m["status"]), duration_ms=float(m["rt"]) * 1000.0)


def parse_stream_fields(fields: dict) -> Request | None:
    """One entry of the ``pelbiot:requests`` stream; None when a field is missing or malformed."""
    def get(name):
        value = fields.get(name, fields.get(name.encode()))
        return value.decode() if isinstance(value, bytes) else value

    try:
        ts = float(get("ts"))
        if ts > 1e11:  # JavaScript's Date.now() is in milliseconds
            ts /= 1000.0
        return Request(ts=ts, method=str(get("method") or "GET").upper(), route=normalize_path(str(get("route"))),
                       status=int(get("status")), duration_ms=float(get("duration_ms")))
    except (TypeError, ValueError):
        return None
