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
    # The axis runs from the day's start to the next day's: its first and last ticks are those dates.
    assert ">Oct-07<" in chart.svg and ">Oct-08<" in chart.svg and ">12:00<" in chart.svg
