"""Charts: matplotlib (Agg) line charts as inline SVG for the HTML file and PNG for e-mail.

The x axis is the report's period, whatever the data covers. Series are downsampled to at most
MAX_POINTS buckets keeping each bucket's maximum, so a peak of one sample still shows on a
month-long chart; a time without samples (longer than three usual steps) is a gap in the line,
not a line across it; a lone point is drawn as a marker.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG: smaller, searchable, readable
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

#: Points per series after downsampling.
MAX_POINTS = 288
WIDTH, HEIGHT, DPI = 7.5, 2.4, 80


@dataclass
class Chart:
    key: str
    title: str
    alt: str
    svg: str
    png: bytes


def downsample(frame: pd.DataFrame, time_col: str, value_col: str, points: int = MAX_POINTS) -> pd.DataFrame:
    """Pure: at most ``points`` rows, each the maximum of its time bucket."""
    if len(frame) <= points:
        return frame[[time_col, value_col]]
    f = frame[[time_col, value_col]].copy()
    f[time_col] = pd.to_datetime(f[time_col])
    span = (f[time_col].max() - f[time_col].min()) / points
    f["bucket"] = ((f[time_col] - f[time_col].min()) / span).astype(int).clip(upper=points - 1)
    out = f.groupby("bucket").agg({time_col: "min", value_col: "max"}).reset_index(drop=True)
    return out


def with_gaps(frame: pd.DataFrame, time_col: str, value_col: str) -> pd.DataFrame:
    """Pure: the series with a NaN point in every gap longer than three times its median step, so
    the line breaks there."""
    f = frame[[time_col, value_col]].copy()
    f[time_col] = pd.to_datetime(f[time_col])
    f[value_col] = pd.to_numeric(f[value_col]).astype(float)
    f = f.sort_values(time_col).reset_index(drop=True)
    if len(f) < 3:
        return f
    steps = f[time_col].diff()
    gap = steps.median() * 3
    holes = f.loc[steps > gap, time_col] - steps[steps > gap] / 2
    if holes.empty:
        return f
    breaks = pd.DataFrame({time_col: holes.values, value_col: float("nan")})
    return pd.concat([f, breaks]).sort_values(time_col).reset_index(drop=True)


def line_chart(key: str, title: str, series: dict[str, pd.DataFrame], time_col: str, value_col: str,
               thresholds: tuple[tuple[float, str], ...] = (), unit: str = "", period=None) -> Chart:
    """``period`` (start, end): the x axis; by default the data's own span."""
    import matplotlib.dates as mdates

    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT), dpi=DPI)
    for label, frame in series.items():
        d = with_gaps(downsample(frame, time_col, value_col), time_col, value_col)
        lone = d[value_col].notna().sum() <= 2
        ax.plot(d[time_col], d[value_col], linewidth=1.2, label=label, marker="o" if lone else None, markersize=4)
    if period is not None:
        # The axis ends a minute before the period does: no tick (and no date) of the next day.
        ax.set_xlim(pd.Timestamp(period[0]), pd.Timestamp(period[1]) - pd.Timedelta(minutes=1))
        locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
        ax.set_xlabel(period_label(*period), fontsize=7)
    for value, label in thresholds:
        ax.axhline(value, color="#c62828" if "crit" in label else "#ef6c00", linewidth=0.8, linestyle="--")
        ax.annotate(label, xy=(1.0, value), xycoords=("axes fraction", "data"), fontsize=7, ha="right",
                    va="bottom", color="#555")
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    if period is None:
        fig.autofmt_xdate()
    fig.tight_layout()
    svg_buf, png_buf = io.StringIO(), io.BytesIO()
    fig.savefig(svg_buf, format="svg", metadata={"Date": None})
    fig.savefig(png_buf, format="png")
    plt.close(fig)
    svg = svg_buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog: the SVG is inlined in HTML
    summary = ", ".join(f"{label}: max {pd.to_numeric(f[value_col]).max():.1f}{unit}" for label, f in series.items())
    return Chart(key, title, f"{title}. {summary}", svg, png_buf.getvalue())


def period_label(start, end) -> str:
    """Pure: the dates a period covers (its end is the next period's start), in UTC."""
    last = (pd.Timestamp(end) - pd.Timedelta(seconds=1)).date()
    first = pd.Timestamp(start).date()
    return f"{first:%Y-%m-%d} (UTC)" if first == last else f"{first:%Y-%m-%d} to {last:%Y-%m-%d} (UTC)"


def rule_lines(rules, metric: str, unit: str) -> tuple[tuple[float, str], ...]:
    """The dashed lines of the alert rules on ``metric`` (alerts.yaml), labelled with the rule."""
    return tuple((r.threshold, f"{'crit' if r.severity == 'critical' else 'warn'} {r.name} {r.threshold:g}{unit}")
                 for r in rules if r.metric == metric and r.op in (">", ">="))


def build_charts(data: dict, period=None, rules=()) -> list[Chart]:
    """The report's charts, each only when it has data (an empty chart tells nothing), on the axis
    of ``period`` (start, end); a chart's dashed lines are the alert rules (``rules``, alerts.yaml)
    on the very metric it draws."""
    import functools

    chart = functools.partial(line_chart, period=period)
    charts = []
    if not data["health"].empty:
        charts.append(chart("health", "Health score", {"score": data["health"]}, "ts", "score",
                                 ((90, "excellent"), (75, "good"), (50, "warning")), ""))
    hosts = data["hosts"]
    for metric, title in (("host.cpu_percent", "CPU per host"), ("host.memory_percent", "Memory per host")):
        part = hosts[hosts.metric == metric] if not hosts.empty else hosts
        if not part.empty:
            charts.append(chart(metric.split(".")[1], title, {h: f for h, f in part.groupby("host")},
                                     "ts", "value", rule_lines(rules, metric, " %"), " %"))
    db = data["database"]
    if not db.empty:
        series = {m.split(".")[1]: f for m, f in db[db.metric != "mysql.slow_queries_per_s"].groupby("metric")}
        if series:
            charts.append(chart("database", "Database: queries/s and threads running", series, "ts", "value"))
    req = data["requests"]
    if not req.empty:
        charts.append(chart("api_rate", "API requests per minute", {"requests": req}, "minute", "requests"))
        charts.append(chart("api_errors", "API error rate", {"5xx %": req}, "minute", "error_rate_percent",
                                 rule_lines(rules, "requests.error_rate_percent", " %"), " %"))
        charts.append(chart("api_errors_per_minute", "API errors (5xx) per minute", {"5xx": req}, "minute", "c5xx",
                                 rule_lines(rules, "requests.errors_per_minute", "/min"), "/min"))
        charts.append(chart("api_p95", "API p95 latency", {"p95": req}, "minute", "p95_ms",
                                 rule_lines(rules, "requests.p95_ms", " ms"), " ms"))
    cache = data["cache"]
    if not cache.empty:
        charts.append(chart("cache", "Cache hit rate", {"hit rate": cache}, "ts", "value", (), " %"))
    return charts
