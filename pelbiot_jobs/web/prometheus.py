"""/metrics in Prometheus' text format (prometheus-client), from ``exported.figures``.

Names follow Prometheus conventions: a ``pelbiot_`` prefix, units in the name, ``_total`` for
counters. ``pelbiot_job_runs_total`` counts the runs the ops database keeps plus those retention
pruned (counted as it deletes them): it never goes down. ``pelbiot_incidents_open`` has a sample
for every severity, 0 included.
"""

from __future__ import annotations

import calendar

from ..health.rules import SEVERITIES


def _ts(value) -> float:
    return float(calendar.timegm(value.timetuple())) + value.microsecond / 1e6


def exposition(figures: dict) -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class Figures:
        def collect(self):
            score = GaugeMetricFamily("pelbiot_health_score", "Health score 0-100 (host \"*\": the installation)",
                                      labels=["host"])
            component = GaugeMetricFamily("pelbiot_health_component_score", "Score of one health component 0-100",
                                          labels=["host", "component"])
            for h in figures["health"]:
                if h["score"] is not None:
                    score.add_metric([h["host"]], h["score"])
                for c in h["components"]:
                    if c.get("score") is not None:
                        component.add_metric([h["host"], c["name"]], c["score"])
            yield score
            yield component
            sample = GaugeMetricFamily("pelbiot_metric_value", "Latest sample of each metric (at most 5 min old)",
                                       labels=["host", "metric"])
            for s in figures["samples"]:
                if s["value"] is not None:
                    sample.add_metric([s["host"], s["metric"]], s["value"], timestamp=_ts(s["ts"]))
            yield sample
            runs = CounterMetricFamily("pelbiot_job_runs", "Job runs recorded, by task and state",
                                       labels=["task", "state"])
            for r in figures["runs"]:
                runs.add_metric([r["task"], r["state"]], r["n"])
            yield runs
            last = GaugeMetricFamily("pelbiot_job_last_success_timestamp_seconds",
                                     "When each job last finished with SUCCESS (Unix time)", labels=["job"])
            for r in figures["last_success"]:
                if r["at"] is not None:
                    last.add_metric([r["job"]], _ts(r["at"]))
            yield last
            open_ = GaugeMetricFamily("pelbiot_incidents_open", "Incidents not resolved, by severity",
                                      labels=["severity"])
            counts = {severity: 0 for severity in SEVERITIES} | {r["severity"]: r["n"] for r in figures["incidents"]}
            for severity, n in sorted(counts.items()):
                open_.add_metric([severity], n)
            yield open_
            warm = GaugeMetricFamily("pelbiot_cache_warm_keys", "Keys written by each warmer in the last hour",
                                     labels=["warmer"])
            for r in figures["cache_warm"]:
                warm.add_metric([r["warmer"]], r["keys"] or 0)
            yield warm
            yield GaugeMetricFamily("pelbiot_slow_query_classes", "Query classes over the slow threshold (24 h)",
                                    value=figures["slow_classes"] or 0)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Figures())
    return generate_latest(registry)
