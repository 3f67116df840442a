"""Render a digest summary as text (pt-query-digest's profile), JSON, CSV or HTML. Pure."""

from __future__ import annotations

import csv
import io
import json

from ..lib.textsafe import csv_value, plain

COLUMNS = ("rank", "query_id", "response_time_s", "time_share_percent", "calls", "r_per_call_s", "p95_s",
           "rows_examined_avg", "rows_sent_avg", "full_scans", "fingerprint")


def rows(summary: dict) -> list[dict]:
    out = []
    for rank, c in enumerate(summary["classes"], 1):
        qt = c["metrics"].get("Query_time", {})
        out.append({
            "rank": rank, "query_id": c["checksum"], "response_time_s": qt.get("sum", 0.0),
            "time_share_percent": c["time_share_percent"], "calls": c["query_count"],
            "r_per_call_s": qt.get("avg", 0.0), "p95_s": qt.get("pct_95", 0.0),
            "rows_examined_avg": c["metrics"].get("Rows_examined", {}).get("avg"),
            "rows_sent_avg": c["metrics"].get("Rows_sent", {}).get("avg"),
            "full_scans": c["flags"].get("Full_scan", 0), "fingerprint": c["fingerprint"]})
    return out


def render(summary: dict, fmt: str, title: str = "", masked: bool = True) -> str:
    if fmt == "json":
        return json.dumps(summary, default=str) + "\n"  # no indent: json then uses its C encoder
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: csv_value(v) for k, v in r.items()} for r in rows(summary))
        return buf.getvalue()
    if fmt == "html":
        return html_report(summary, title, masked)
    return _text(summary)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value < 100 else f"{value:.1f}"
    return "" if value is None else str(value)


def _text(summary: dict) -> str:
    g = summary["global"]
    lines = [f"# {g['query_count']:,} events, {g['unique_query_count']:,} unique, "
             f"{g['query_time_sum']:.4f} s total, {g['skipped_events']} skipped", "", "# Profile",
             "# Rank Query ID                         Response time    Calls  R/Call   Item",
             "# ==== ================================ ================ ====== ======== " + "=" * 30]
    for r in rows(summary):
        lines.append(f"# {r['rank']:>4} 0x{r['query_id']} {r['response_time_s']:>9.4f} {r['time_share_percent']:>5.1f}% "
                     f"{r['calls']:>6} {r['r_per_call_s']:>8.4f} {r['fingerprint'][:60]}")
    for rank, c in enumerate(summary["classes"], 1):
        lines += ["", f"# Query {rank}: ID 0x{c['checksum']}, {c['query_count']} calls, "
                      f"{c['time_share_percent']:.1f}% of the time, {c['ts_min']} to {c['ts_max']}",
                  "# Attribute          total        min        max        avg     median        95%"]
        for name, m in c["metrics"].items():
            lines.append(f"# {name:<14} {_fmt(m['sum']):>10} {_fmt(m['min']):>10} {_fmt(m['max']):>10} "
                         f"{_fmt(m['avg']):>10} {_fmt(m['median']):>10} {_fmt(m['pct_95']):>10}")
        if c["flags"]:
            lines.append("# Flags    " + ", ".join(f"{k} {v}" for k, v in sorted(c["flags"].items())))
        if c["databases"]:
            lines.append("# Databases " + ", ".join(f"{k} ({v})" for k, v in c["databases"].items()))
        lines += [f"# Fingerprint: {c['fingerprint']}", c["example"]["query"].rstrip() + "\\G"]
    return plain("\n".join(lines)) + "\n"  # slow-log text never drives the terminal


#: Classes shown in detail (example, attributes, EXPLAIN) in the HTML report.
HTML_DETAILS = 20
#: Classes listed in the HTML report's profile.
HTML_ROWS = 100
_TIME_ATTRIBUTES = ("Query_time", "Lock_time")


def html_report(summary: dict, title: str = "", masked: bool = True) -> str:
    """The report a DBA opens: an overview, queries and time per hour (SVG), the top classes by
    total time, and for the first ones their example, attributes and EXPLAIN. No script."""
    import datetime as dt

    from ..lib.svgchart import bar_chart
    from ..lib.templates import human_seconds
    from ..lib.templates import render as render_template

    g = summary["global"]
    hours = [(dt.datetime.fromisoformat(h), n, t) for h, n, t in g.get("hours", [])]
    if hours:
        start, end = hours[0][0], hours[-1][0] + dt.timedelta(hours=1)
    else:
        start = end = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        end += dt.timedelta(hours=1)
    span = "–"
    if g.get("ts_min") and g.get("ts_max"):
        seconds = (dt.datetime.fromisoformat(g["ts_max"]) - dt.datetime.fromisoformat(g["ts_min"])).total_seconds()
        span = human_seconds(seconds) if seconds else "one second"
    listed = rows(summary)[:HTML_ROWS]
    view_rows = []
    for r, c in zip(listed, summary["classes"]):
        examined, sent = c["metrics"].get("Rows_examined", {}).get("sum"), c["metrics"].get("Rows_sent", {}).get("sum")
        view_rows.append({"rank": r["rank"], "query_id": r["query_id"], "total": r["response_time_s"],
                          "share": r["time_share_percent"], "calls": r["calls"], "per_call": r["r_per_call_s"],
                          "p95": r["p95_s"], "full_scans": r["full_scans"], "fingerprint": r["fingerprint"],
                          "examined_per_sent": (examined / sent if sent else examined) if examined is not None else None})
    details = []
    for r, c in zip(view_rows[:HTML_DETAILS], summary["classes"]):
        explain = c.get("explain") or []
        details.append({**r, "ts_min": c["ts_min"], "ts_max": c["ts_max"], "example": c["example"]["query"],
                        "databases": ", ".join(c["databases"]), "users": ", ".join(c["users"]),
                        "hosts": ", ".join(c["hosts"]),
                        "metrics": [{"name": name, "time": name in _TIME_ATTRIBUTES, **m}
                                    for name, m in sorted(c["metrics"].items())],
                        "flags": sorted(c["flags"].items()),
                        "explain": [row for row in explain if "refused" not in row],
                        "explain_columns": list(explain[0]) if explain and "refused" not in explain[0] else [],
                        "explain_flags": [f for f in c.get("explain_flags", []) if f != "refused"],
                        "explain_note": c.get("explain_note") or (explain[0]["refused"] if explain and "refused" in explain[0]
                                                                   else None)})
    return render_template(
        "slowlog.html.j2", title=title or "slow log", made=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        masked=masked, g=g, span=span, rows=view_rows, details=details,
        more=max(0, len(summary["classes"]) - len(view_rows)),
        calls_chart=bar_chart([(h, n) for h, n, _ in hours], start, end, 3600, "Queries per hour",
                              fmt=lambda v: f"{v:,.0f}"),
        time_chart=bar_chart([(h, t) for h, _, t in hours], start, end, 3600, "Query time per hour",
                             fmt=human_seconds))
