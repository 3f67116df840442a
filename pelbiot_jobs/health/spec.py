"""``schedules/health.yaml`` and ``schedules/alerts.yaml``, validated with ``FILE:LINE`` problems."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from ..lib.specfile import LineMap, checks, load_yaml, parse_duration
from .rules import AGGREGATES, NO_DATA, OPS, SEVERITIES, Rule
from .score import DEFAULT_COMPONENTS, Component

HEALTH_FILE, ALERTS_FILE = "health.yaml", "alerts.yaml"
#: Request-telemetry metrics a rule or component may use (per minute, from ops_request_minutes).
REQUEST_METRICS = {"requests.per_minute": "requests", "requests.errors_per_minute": "c5xx",
                   "requests.error_rate_percent": "error_rate_percent", "requests.p50_ms": "p50_ms",
                   "requests.p95_ms": "p95_ms", "requests.p99_ms": "p99_ms", "requests.avg_ms": "avg_ms"}
METRIC_PREFIXES = ("host.", "mysql.", "redis.", "sqlite.", "worker.")
RULE_KEYS = ("metric", "aggregate", "window", "op", "threshold", "clear_threshold", "for", "clear_for",
             "no_data", "severity", "description", "enabled", "receivers")
NOTIFY_KEYS = ("repeat_interval", "cooldown", "recipients", "receivers", "report_receivers")
#: Alertmanager's repeat interval; PELBIOT's alert_rules cooldown_seconds default.
DEFAULT_REPEAT = 4 * 3600.0
DEFAULT_COOLDOWN = 600.0


def _metric_problem(metric) -> str | None:
    if not isinstance(metric, str):
        return "metric must be a string"
    if metric in REQUEST_METRICS or metric.startswith(METRIC_PREFIXES):
        return None
    return (f"unknown metric {metric!r}: use a sampled metric (host.*, mysql.*, redis.*) or one of "
            + ", ".join(REQUEST_METRICS))


def _unknown_keys(mapping: LineMap, allowed, path, what, problems) -> None:
    for key in mapping:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            problems.append(f"{path}:{mapping.lines[key]}: unknown key {key!r} in {what}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else ""))


def _number(spec, key, path, problems, where, default=None):
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where}: {key} must be a number, got {value!r}")
        return None
    return float(value)


def _duration(spec, key, path, problems, where, default):
    if key not in spec:
        return default
    try:
        return parse_duration(spec[key]) if spec[key] not in (0, "0", "0s") else 0.0
    except ValueError as exc:
        problems.append(f"{where}: {key}: {exc}")
        return default


def parse_health(path: Path, problems: list[str]) -> tuple[list[Component], float]:
    """The score's components and window; the defaults when the file does not exist."""
    if not path.is_file():
        return list(DEFAULT_COMPONENTS), 300.0
    data = load_yaml(path, problems)
    if not isinstance(data, LineMap):
        if data is not None:
            problems.append(f"{path}:1: expected a mapping with 'components:'")
        return list(DEFAULT_COMPONENTS), 300.0
    _unknown_keys(data, ("components", "window"), path, "health.yaml", problems)
    window = _duration(data, "window", path, problems, f"{path}:{data.lines.get('window', 1)}", 300.0)
    comps = data.get("components")
    if not isinstance(comps, LineMap) or not comps:
        problems.append(f"{path}:{data.lines.get('components', 1)}: 'components' must map names to thresholds")
        return list(DEFAULT_COMPONENTS), window
    out = []
    for name, spec in comps.items():
        where = f"{path}:{comps.lines[name]}"
        if not isinstance(spec, LineMap):
            problems.append(f"{where}: component {name!r} must be a mapping")
            continue
        _unknown_keys(spec, ("metric", "good", "warning", "critical", "weight"), path, f"component {name!r}", problems)
        problem = _metric_problem(spec.get("metric"))
        if problem:
            problems.append(f"{path}:{spec.lines.get('metric', comps.lines[name])}: {problem}")
            continue
        good, warning, critical = (_number(spec, k, path, problems, f"{path}:{spec.lines.get(k, comps.lines[name])}")
                                   for k in ("good", "warning", "critical"))
        weight = _number(spec, "weight", path, problems, where, 25)
        if None in (good, warning, critical, weight):
            continue
        if not good <= warning <= critical:
            problems.append(f"{where}: component {name!r} needs good <= warning <= critical")
            continue
        out.append(Component(name, spec["metric"], good, warning, critical, weight))
    return out, window


def parse_alerts(path: Path, problems: list[str]) -> tuple[list[Rule], dict]:
    """The rules and notification settings of alerts.yaml."""
    notify = {"repeat_interval": DEFAULT_REPEAT, "cooldown": DEFAULT_COOLDOWN, "recipients": [], "receivers": [],
              "report_receivers": []}
    if not path.is_file():
        return [], notify
    data = load_yaml(path, problems)
    if not isinstance(data, LineMap):
        if data is not None:
            problems.append(f"{path}:1: expected a mapping with 'rules:'")
        return [], notify
    _unknown_keys(data, ("rules", "defaults", "notify"), path, "alerts.yaml", problems)
    defaults = data.get("defaults") or LineMap()
    if not isinstance(defaults, LineMap):
        problems.append(f"{path}:{data.lines['defaults']}: 'defaults' must be a mapping")
        defaults = LineMap()
    _unknown_keys(defaults, RULE_KEYS, path, "defaults", problems)
    n = data.get("notify") or LineMap()
    if isinstance(n, LineMap):
        _unknown_keys(n, NOTIFY_KEYS, path, "notify", problems)
        for key in ("repeat_interval", "cooldown"):
            notify[key] = _duration(n, key, path, problems, f"{path}:{n.lines.get(key, 1)}", notify[key])
        recipients = n.get("recipients", [])
        if not isinstance(recipients, list) or not all(
                isinstance(r, str) and re.fullmatch(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}", r)
                for r in recipients) or len(recipients) > 100:
            problems.append(f"{path}:{n.lines.get('recipients', 1)}: recipients must be a list of e-mail addresses")
        else:
            notify["recipients"] = recipients
        for key in ("receivers", "report_receivers"):
            receivers = n.get(key, [])
            if not isinstance(receivers, list) or len(receivers) > 20 or not all(
                    isinstance(r, str) and re.fullmatch(r"[a-z][a-z0-9-]{0,39}", r) for r in receivers):
                problems.append(f"{path}:{n.lines.get(key, 1)}: {key} must be a list of names (lower-case "
                                "letters, digits, '-'); each one's Apprise URL is PELBIOT_RECEIVER_<NAME>")
            else:
                notify[key] = list(dict.fromkeys(receivers))
    rules_map = data.get("rules")
    if not isinstance(rules_map, LineMap):
        problems.append(f"{path}:{data.lines.get('rules', 1)}: 'rules' must map rule names to rules")
        return [], notify
    rules = []
    for name, own in rules_map.items():
        where = f"{path}:{rules_map.lines[name]}"
        if not isinstance(own, LineMap):
            problems.append(f"{where}: rule {name!r} must be a mapping")
            continue
        spec = LineMap({**defaults, **own})
        spec.lines = {**defaults.lines, **own.lines}
        before = len(problems)
        _unknown_keys(own, RULE_KEYS, path, f"rule {name!r}", problems)

        def at(key):
            return f"{path}:{spec.lines.get(key, rules_map.lines[name])}"

        problem = _metric_problem(spec.get("metric"))
        if problem:
            problems.append(f"{at('metric')}: {problem}")
        op = spec.get("op", ">")
        if op not in OPS:
            problems.append(f"{at('op')}: op must be one of {', '.join(OPS)}, got {op!r}")
        threshold = _number(spec, "threshold", path, problems, at("threshold"))
        clear = _number(spec, "clear_threshold", path, problems, at("clear_threshold"), threshold) \
            if "clear_threshold" in spec else None
        if threshold is not None and clear is not None and op in OPS and OPS[op](clear, threshold):
            problems.append(f"{at('clear_threshold')}: clear_threshold {clear:g} is on the alerting side of "
                            f"threshold {threshold:g}; it must be {'below' if op in ('>', '>=') else 'above'} it")
        aggregate = spec.get("aggregate", "avg")
        if aggregate not in AGGREGATES:
            problems.append(f"{at('aggregate')}: aggregate must be one of {', '.join(AGGREGATES)}")
        no_data = spec.get("no_data", "keep")
        if no_data not in NO_DATA:
            problems.append(f"{at('no_data')}: no_data must be one of {', '.join(NO_DATA)}")
        severity = spec.get("severity", "warning")
        if severity not in SEVERITIES:
            problems.append(f"{at('severity')}: severity must be one of {', '.join(SEVERITIES)}")
        window = _duration(spec, "window", path, problems, at("window"), 60.0)
        for_s = _duration(spec, "for", path, problems, at("for"), 300.0)
        clear_for = _duration(spec, "clear_for", path, problems, at("clear_for"), 60.0)
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(f"{at('enabled')}: enabled must be true or false")
        receivers = spec.get("receivers")
        if receivers is not None and (not isinstance(receivers, list) or len(receivers) > 20 or not all(
                isinstance(r, str) and re.fullmatch(r"[a-z][a-z0-9-]{0,39}", r) for r in receivers)):
            problems.append(f"{at('receivers')}: receivers must be a list of receiver names (lower-case letters, "
                            "digits, '-'); [] sends this rule to none")
        if len(problems) == before:
            rules.append(Rule(name=name, metric=spec["metric"], op=op, threshold=threshold, aggregate=aggregate,
                              window=window, for_s=for_s, clear_threshold=clear, clear_for_s=clear_for,
                              no_data=no_data, severity=severity, description=str(spec.get("description", "")),
                              enabled=enabled, receivers=tuple(dict.fromkeys(receivers)) if receivers is not None
                              else None))
    return rules, notify


@checks("health.yaml")
def check_health(path: Path, problems: list[str], deep: bool = True) -> None:
    parse_health(path, problems)


@checks("alerts.yaml")
def check_alerts(path: Path, problems: list[str], deep: bool = True) -> None:
    parse_alerts(path, problems)
