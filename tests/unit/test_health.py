import datetime as dt
import textwrap

import pytest

from pelbiot_jobs.health.rules import AlertState, Rule, aggregate, step
from pelbiot_jobs.health.score import health_score
from pelbiot_jobs.health.spec import parse_alerts, parse_health
from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES


@pytest.mark.parametrize("values, score, status", [
    ({"cpu": 45, "memory": 65, "error_rate": 1.5, "response_time": 250}, 93.75, "EXCELLENT"),  # PELBIOT's example
    ({"cpu": 50, "memory": 70, "error_rate": 1, "response_time": 500}, 100.0, "EXCELLENT"),  # at "good": 100
    ({"cpu": 50.01, "memory": 70, "error_rate": 1, "response_time": 500}, 93.75, "EXCELLENT"),
    ({"cpu": 75, "memory": 85, "error_rate": 5, "response_time": 1000}, 75.0, "GOOD"),
    ({"cpu": 90, "memory": 95, "error_rate": 10, "response_time": 2000}, 50.0, "WARNING"),
    ({"cpu": 90.1, "memory": 95.1, "error_rate": 10.1, "response_time": 2001}, 0.0, "CRITICAL"),
    ({"cpu": 95, "memory": 99, "error_rate": 0, "response_time": 100}, 50.0, "WARNING"),
])
def test_score(values, score, status):
    result = health_score(values)
    assert (result["score"], result["status"], result["present"]) == (score, status, 4)


def test_missing_components_are_reported_not_counted_healthy():
    result = health_score({"cpu": 95, "memory": None})
    assert result["score"] == 0.0 and result["status"] == "CRITICAL"  # rests on CPU alone
    assert result["present"] == 1 and result["of"] == 4
    assert [p["missing"] for p in result["components"]] == [False, True, True, True]
    assert health_score({})["status"] == "UNKNOWN" and health_score({})["score"] is None


T0 = dt.datetime(2026, 11, 28, 12, 0)
RULE = Rule("cpu_high", "host.cpu_percent", ">", 80, for_s=300, clear_threshold=70, clear_for_s=120)


def run(rule, values, start=T0, every=60, state=AlertState()):
    """Feed one value per minute; return the states and transitions seen."""
    seen = []
    for i, value in enumerate(values):
        state, transitions = step(rule, state, value, start + dt.timedelta(seconds=every * i))
        seen.append((state.state, [t.kind for t in transitions]))
    return seen


def test_pending_then_firing_after_for():
    seen = run(RULE, [90, 90, 90, 90, 90, 90, 90])
    assert [s for s, _ in seen] == ["pending"] * 5 + ["firing", "firing"]
    assert seen[5][1] == ["firing"] and seen[6][1] == []  # fires once


def test_a_value_flapping_around_the_threshold_neither_fires_nor_resolves_repeatedly():
    flapping = [85, 79, 85, 79, 85, 79, 85, 79, 85, 79]
    assert all(s in ("pending", "inactive") for s, _ in run(RULE, flapping))  # never 5 min above
    firing = run(RULE, [90] * 6)
    state = AlertState("firing", T0, None, 90, T0)
    # Once firing: dips below 80 but above the clear threshold 70 do not resolve it.
    seen = run(RULE, [75, 85, 75, 85, 72], state=state)
    assert all(s == "firing" for s, _ in seen) and not any(t for _, t in seen)
    assert firing[-1][1] == ["firing"]


def test_clear_delay():
    state = AlertState("firing", T0, None, 90, T0)
    seen = run(RULE, [60, 60, 60, 60], state=state)
    assert [s for s, _ in seen] == ["firing", "firing", "inactive", "inactive"]  # 120 s of clear, then resolved
    assert seen[2][1] == ["resolved"]
    # Back above the clear threshold during the delay restarts it.
    seen = run(RULE, [60, 75, 60, 60, 60], state=state)
    assert [t for _, t in seen] == [[], [], [], [], ["resolved"]]


@pytest.mark.parametrize("policy, expected", [("keep", "firing"), ("ok", "inactive"), ("alert", "firing")])
def test_no_data_policy(policy, expected):
    rule = Rule("r", "host.cpu_percent", ">", 80, for_s=0, clear_for_s=0, no_data=policy)
    state = AlertState("firing", T0, None, 90, T0)
    new, _ = step(rule, state, None, T0 + dt.timedelta(minutes=1))
    assert new.state == expected
    fresh, transitions = step(rule, AlertState(), None, T0)
    assert fresh.state == ("firing" if policy == "alert" else "inactive")


def test_aggregates():
    values = [1.0, 5.0, 3.0]
    assert [aggregate(values, a) for a in ("avg", "max", "min", "last", "sum", "p95")] == [3.0, 5.0, 1.0, 3.0, 9.0, 5.0]
    assert aggregate([], "avg") is None


def test_alerts_file_problems_name_file_and_line(tmp_path):
    path = tmp_path / "alerts.yaml"
    path.write_text(textwrap.dedent("""\
        rules:
          a:
            metric: host.cpu_percent
            op: "=>"
            threshold: 80
          b:
            metric: host.cpu_percent
            op: ">"
            threshold: 80
            clear_threshold: 90
          c:
            metric: api.latency
            op: ">"
            threshold: 1
          d:
            metric: host.cpu_percent
            threshold: high
            severty: critical
    """))
    problems = []
    rules, _ = parse_alerts(path, problems)
    text = "\n".join(p.replace(str(path), "alerts.yaml") for p in problems)
    assert "alerts.yaml:4: op must be one of" in text
    assert "alerts.yaml:10: clear_threshold 90 is on the alerting side of threshold 80" in text
    assert "alerts.yaml:12: unknown metric 'api.latency'" in text
    assert "alerts.yaml:17: threshold must be a number" in text
    assert "alerts.yaml:18: unknown key 'severty' in rule 'd' (did you mean 'severity'?)" in text
    assert rules == []


def test_the_shipped_rules_and_score_are_pelbiots():
    problems = []
    rules, notify = parse_alerts(SHIPPED_SCHEDULES / "alerts.yaml", problems)
    components, window = parse_health(SHIPPED_SCHEDULES / "health.yaml", problems)
    assert problems == []
    by_name = {r.name: r for r in rules}
    assert (by_name["cpu_high"].threshold, by_name["cpu_high"].severity) == (80, "critical")
    assert (by_name["memory_high"].threshold, by_name["memory_high"].severity) == (90, "critical")
    assert by_name["error_rate_high"].metric == "requests.errors_per_minute"
    assert by_name["response_time_high"].threshold == 2000
    assert all(r.for_s == 300 for r in rules)
    assert notify["repeat_interval"] == 4 * 3600 and notify["cooldown"] == 600
    assert [c.name for c in components] == ["cpu", "memory", "error_rate", "response_time"]
