"""The health score: four components, each scored 100/75/50/0 against its thresholds. Pure.

PELBIOT's formula is the default: CPU %, memory %, API error rate % and API response time,
25 % each. A component without data is missing: the score rests on the components that have
data (weights renormalised) and says how many those are; missing never counts as healthy.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Status bands of the score, highest first.
STATUS_BANDS = (("EXCELLENT", 90.0), ("GOOD", 75.0), ("WARNING", 50.0))
#: Score of a component at or below each threshold; above critical it scores 0.
BAND_SCORES = (100.0, 75.0, 50.0)


@dataclass(frozen=True)
class Component:
    name: str
    metric: str  # host.cpu_percent, host.memory_percent, requests.error_rate_percent, requests.p95_ms
    good: float
    warning: float
    critical: float
    weight: float = 25.0


DEFAULT_COMPONENTS = (
    Component("cpu", "host.cpu_percent", 50, 75, 90),
    Component("memory", "host.memory_percent", 70, 85, 95),
    Component("error_rate", "requests.error_rate_percent", 1, 5, 10),
    Component("response_time", "requests.p95_ms", 500, 1000, 2000),
)


def component_score(value: float, c: Component) -> float:
    for threshold, score in zip((c.good, c.warning, c.critical), BAND_SCORES):
        if value <= threshold:
            return score
    return 0.0


def status_of(score: float | None) -> str:
    if score is None:
        return "UNKNOWN"
    for name, low in STATUS_BANDS:
        if score >= low:
            return name
    return "CRITICAL"


def health_score(values: dict[str, float | None], components=DEFAULT_COMPONENTS) -> dict:
    """``values`` maps component name to its input (None: no data). Returns score, status, parts."""
    parts = []
    total = weights = 0.0
    for c in components:
        value = values.get(c.name)
        if value is None:
            parts.append({"name": c.name, "value": None, "score": None, "missing": True, "weight": c.weight})
            continue
        s = component_score(value, c)
        parts.append({"name": c.name, "value": round(value, 3), "score": s, "missing": False, "weight": c.weight})
        total += s * c.weight
        weights += c.weight
    score = round(total / weights, 2) if weights else None
    present = sum(not p["missing"] for p in parts)
    return {"score": score, "status": status_of(score), "components": parts,
            "present": present, "of": len(parts)}
