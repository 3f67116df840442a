"""Alert rules and their state machine, as in Prometheus: inactive -> pending -> firing -> resolved. Pure.

A rule fires when its value has breached the threshold for ``for``; it resolves when the value
has been back past the clear threshold (hysteresis) for ``clear_for``. A value flapping around
the threshold therefore neither fires early nor resolves and fires again on every swing.
"""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass, replace

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
NO_DATA = ("keep", "ok", "alert")
AGGREGATES = ("avg", "max", "min", "last", "sum", "p95")
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    op: str
    threshold: float
    aggregate: str = "avg"
    window: float = 60.0
    for_s: float = 300.0
    clear_threshold: float | None = None
    clear_for_s: float = 60.0
    no_data: str = "keep"
    severity: str = "warning"
    description: str = ""
    enabled: bool = True
    #: The chat and webhook receivers this rule's notices go to; None: notify.receivers.
    receivers: tuple[str, ...] | None = None

    @property
    def per_host(self) -> bool:
        return self.metric.startswith("host.")

    def breaches(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def cleared(self, value: float) -> bool:
        """Back on the good side of the clear threshold (the threshold itself by default)."""
        limit = self.threshold if self.clear_threshold is None else self.clear_threshold
        return not OPS[self.op](value, limit)


@dataclass(frozen=True)
class AlertState:
    state: str = "inactive"  # inactive, pending, firing
    since: dt.datetime | None = None  # when it entered this state
    clearing_since: dt.datetime | None = None  # firing, but the value has been clear since
    value: float | None = None
    fired_at: dt.datetime | None = None


@dataclass(frozen=True)
class Transition:
    kind: str  # "firing" or "resolved"
    at: dt.datetime
    value: float | None


def step(rule: Rule, prev: AlertState, value: float | None, now: dt.datetime) -> tuple[AlertState, list[Transition]]:
    """The next state of one (rule, host) given the value now, and what changed that people hear of."""
    if value is None:
        if rule.no_data == "keep":
            return replace(prev, value=None), []
        breaching = rule.no_data == "alert"
        clear = not breaching
    else:
        breaching = rule.breaches(value)
        clear = rule.cleared(value)

    if prev.state == "firing":
        if not clear:
            return replace(prev, clearing_since=None, value=value), []
        clearing_since = prev.clearing_since or now
        if (now - clearing_since).total_seconds() >= rule.clear_for_s:
            return AlertState("inactive", now, None, value, None), [Transition("resolved", now, value)]
        return replace(prev, clearing_since=clearing_since, value=value), []

    if not breaching:
        return AlertState("inactive", prev.since if prev.state == "inactive" else now, None, value, None), []
    since = prev.since if prev.state == "pending" else now
    if (now - since).total_seconds() >= rule.for_s:
        return AlertState("firing", now, None, value, now), [Transition("firing", now, value)]
    return AlertState("pending", since, None, value, None), []


def aggregate(values: list[float], how: str) -> float | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    if how == "avg":
        return sum(values) / len(values)
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    if how == "sum":
        return sum(values)
    if how == "p95":
        ordered = sorted(values)
        import math

        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return values[-1]  # last

