"""The report's charts: gaps stay gaps, the axis is the period, a lone point is a marker."""

import datetime as dt

import pandas as pd

from pelbiot_jobs.reports.charts import line_chart, with_gaps


def series(minutes):
    start = dt.datetime(2026, 10, 7)
    return pd.DataFrame({"ts": [start + dt.timedelta(minutes=m) for m in minutes], "value": [1.0] * len(minutes)})


def test_a_time_without_samples_breaks_the_line():
    f = with_gaps(series([0, 5, 10, 15, 300, 305, 310]), "ts", "value")
    assert f["value"].isna().sum() == 1  # one break, between 15 and 300
    hole = f[f["value"].isna()]["ts"].iloc[0]
    assert dt.datetime(2026, 10, 7, 0, 15) < hole < dt.datetime(2026, 10, 7, 5, 0)
    assert with_gaps(series([0, 5, 10, 15, 20]), "ts", "value")["value"].notna().all()  # steady: no break


def test_the_axis_is_the_period_and_a_lone_sample_is_a_marker():
    day = (dt.datetime(2026, 10, 7), dt.datetime(2026, 10, 8))
    chart = line_chart("cpu", "CPU", {"h": series([600])}, "ts", "value", period=day)
    assert "<use" in chart.svg  # the marker
    # The axis runs over the day, labelled with that day only: no date of the next day (the period's
    # end) on a tick or as the axis' offset.
    assert ">Oct-07<" in chart.svg and ">12:00<" in chart.svg and ">2026-10-07 (UTC)<" in chart.svg
    assert "Oct-08" not in chart.svg and "2026-Oct-08" not in chart.svg and "2026-10-08" not in chart.svg


def test_a_week_is_labelled_with_its_dates_and_the_lines_are_the_rules_of_the_metric_drawn():
    from pelbiot_jobs.health.rules import Rule
    from pelbiot_jobs.reports.charts import build_charts, period_label

    assert period_label(dt.datetime(2026, 11, 30), dt.datetime(2026, 12, 7)) == "2026-11-30 to 2026-12-06 (UTC)"
    minutes = pd.DataFrame({"minute": [dt.datetime(2026, 10, 7, 1, m) for m in range(30)], "requests": 30,
                            "c5xx": 2, "error_rate_percent": 6.6, "p95_ms": 120.0})
    empty = pd.DataFrame()
    rules = [Rule("api_errors", "requests.errors_per_minute", ">", 10, severity="critical"),
             Rule("api_slow", "requests.p95_ms", ">", 2000), Rule("cpu_high", "host.cpu_percent", ">", 80)]
    charts = {c.key: c for c in build_charts({"health": empty, "hosts": empty, "database": empty, "requests": minutes,
                                              "cache": empty}, (dt.datetime(2026, 10, 7), dt.datetime(2026, 10, 8)),
                                             rules)}
    assert "api_errors" not in charts["api_errors"].svg  # no rule on the error rate in %: no line
    assert "crit api_errors 10/min" in charts["api_errors_per_minute"].svg
    assert "warn api_slow 2000 ms" in charts["api_p95"].svg
