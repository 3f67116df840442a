"""Render a digest summary as text (pt-query-digest's profile), JSON, CSV or HTML. Pure."""

from __future__ import annotations

import csv
import html
import io
import json

from ..textsafe import csv_value, plain

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


def render(summary: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(summary, default=str) + "\n"  # no indent: json then uses its C encoder
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: csv_value(v) for k, v in r.items()} for r in rows(summary))
        return buf.getvalue()
    if fmt == "html":
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in COLUMNS) + "</tr>" for r in rows(summary))
        g = summary["global"]
        return ("<!doctype html><html><head><meta charset='utf-8'><title>slow query digest</title>"
                "<style>body{font-family:sans-serif}td,th{padding:2px 6px;border-bottom:1px solid #ddd;"
                "font-size:13px}td:last-child{font-family:monospace}</style></head><body>"
                f"<h2>Slow query digest</h2><p>{g['query_count']:,} events, {g['unique_query_count']:,} classes, "
                f"{g['query_time_sum']:.3f} s in all; {g['skipped_events']} skipped</p><table><tr>"
                + "".join(f"<th>{c}</th>" for c in COLUMNS) + "</tr>" + body + "</table></body></html>\n")
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
