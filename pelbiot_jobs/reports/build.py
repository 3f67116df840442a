"""Build a report: gather, compute, render HTML and CSV files, record it; e-mail it on request.

The files are written aside and renamed into a dated folder, and recorded in ops_reports
before any mail is attempted: whatever happens to the mail, the report exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from ..db.ops_models import reports
from ..db.upsert import upsert
from ..lib.templates import render as render_template
from .charts import build_charts
from .data import Period, gather, pelbiot_summary
from .kpis import job_table, kpi_rows, kpis, top_queries

SECTIONS = ("kpis", "charts", "queries", "indexes", "alerts", "jobs")
#: The e-mail's HTML part must stay under this (charts go as attached PNGs, not inline data).
MAX_EMAIL_HTML = 100_000

def _csv(frame: pd.DataFrame, path: Path) -> None:
    f = frame.copy()
    for col in f.columns:
        if pd.api.types.is_datetime64_any_dtype(f[col]):
            f[col] = f[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif f[col].dtype == object and len(f) and isinstance(f[col].dropna().iloc[0] if f[col].notna().any() else None,
                                                               dt.datetime):
            f[col] = f[col].map(lambda v: v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, dt.datetime) else v)
    from ..lib.textsafe import csv_value

    for col in f.columns:  # text from outside (rule names, hosts, queries) must not become a formula
        # by value, whatever the dtype: pandas 3 gives text the `str` dtype, older pandas `object`
        if not (pd.api.types.is_numeric_dtype(f[col]) or pd.api.types.is_bool_dtype(f[col])):
            f[col] = f[col].map(csv_value)
    f.to_csv(path, index=False, encoding="utf-8")


def compute(ops: Engine, app: Engine | None, p: Period, rules=()) -> dict:
    """Everything the templates show, for period ``p``; ``rules``: the alert rules whose thresholds
    the charts draw."""
    if p.kind == "summary":
        return {"period": p, "summary": pelbiot_summary(app, p)}
    data = gather(ops, p)
    before = gather(ops, p.previous())
    failures, per_task = job_table(data["jobs"])
    changes = data["index_changes"]
    from ..lib.clock import utcnow

    return {"period": p, "kpis": kpi_rows(kpis(data, p, utcnow()), kpis(before, p.previous())),
            "charts": build_charts(data, (p.start, p.end), rules), "queries": top_queries(data["queries"]),
            "incidents": data["incidents"],
            "index_changes": changes[changes["outcome"] != "suggested"] if not changes.empty else changes,
            "index_suggestions": (changes[changes["outcome"] == "suggested"].drop_duplicates(["table_name", "index_name"],
                                                                                         keep="last")
                                  if not changes.empty else changes),
            "recommendations": data["recommendations"],
            "job_failures": failures, "jobs": per_task,
            "has_data": any(not data[k].empty for k in ("health", "hosts", "database", "requests", "jobs"))}


def tables(ctx: dict) -> dict[str, pd.DataFrame]:
    """The CSV files of a report: one per table."""
    if "summary" in ctx:
        s = ctx["summary"]
        head = pd.DataFrame([{k: s[k] for k in ("total_devices", "online_devices", "total_alerts", "active_alerts")}])
        return {"summary": head, "by_device_type": s["by_type"]}
    out = {"kpis": pd.DataFrame(ctx["kpis"])[["kpi", "label", "value", "previous", "change_percent"]]}
    for name, frame in ctx["queries"].items():
        out["top_queries_" + name.replace("by ", "by_").replace(" ", "_")] = frame
    out["index_changes"] = ctx["index_changes"]
    out["index_suggestions"] = ctx["index_suggestions"]
    out["recommendations"] = ctx["recommendations"]
    out["incidents"] = ctx["incidents"]
    out["job_runs"] = ctx["jobs"]
    out["job_failures"] = ctx["job_failures"]
    return out


def render(ctx: dict, images: str) -> str:
    """The HTML: charts inline as SVG (``images="svg"``) or as ``cid:`` PNG references ("cid")."""
    name = "summary.html.j2" if "summary" in ctx else "report.html.j2"
    return render_template(name, **ctx, images=images, sections=SECTIONS)


def render_text(ctx: dict) -> str:
    return render_template("report.txt.j2", **ctx)


def write(ctx: dict, reports_dir: Path, ops: Engine, now: dt.datetime) -> tuple[Path, list[dict]]:
    """Write the HTML and CSV files into reports/<kind>/<period>/ and record them; return folder and files."""
    p: Period = ctx["period"]
    folder = reports_dir / p.kind / p.start.strftime("%Y-%m-%d")
    # A folder of this run's own: two runs for the same period (beat and a manual run, or a run
    # handed out again) may write at the same time; the last one to finish wins, whole.
    tmp = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    (tmp / "report.html").write_text(render(ctx, "svg"), encoding="utf-8")
    for name, frame in tables(ctx).items():
        _csv(frame, tmp / f"{name}.csv")
    _publish(tmp, folder)  # the whole report appears at once
    files = [{"name": f.name, "bytes": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
             for f in sorted(folder.iterdir())]
    record(ops, p, folder, files, now, "written")
    return folder, files


def _publish(tmp: Path, folder: Path, tries: int = 5) -> None:
    """Put ``tmp`` in the place of ``folder``; an older report there is moved aside, then removed."""
    for _ in range(tries):
        old = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.old")
        try:
            os.replace(folder, old)
        except FileNotFoundError:
            old = None
        try:
            os.replace(tmp, folder)
        except OSError:  # another run put its report there just now: move that one aside, go again
            continue
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"could not put the report in place at {folder} (other runs kept writing it)")


def record(ops: Engine, p: Period, folder: Path, files, now, outcome: str, emailed_to: str | None = None,
           error: str | None = None) -> None:
    row = {"kind": p.kind, "period_start": p.start, "period_end": p.end, "created_at": now, "path": str(folder),
           "files": json.dumps(files), "outcome": outcome, "emailed_to": emailed_to, "error": error}
    with ops.begin() as conn:
        upsert(conn, reports, [row], key=("kind", "period_start"))


def email_message(settings, ctx: dict, folder: Path, recipients: list[str]):
    """multipart/mixed: (multipart/alternative: text, multipart/related: HTML + PNG charts), CSVs."""
    from ..lib.mail import build_message

    p: Period = ctx["period"]
    subject = f"[pelbiot-jobs] {p.kind} report {p.label}"
    html = render(ctx, "cid")
    msg = build_message(settings, recipients, subject, render_text(ctx), html)
    html_part = msg.get_payload()[1]
    for chart in ctx.get("charts", []):
        html_part.add_related(chart.png, "image", "png", cid=f"<{chart.key}@pelbiot-jobs>",
                              filename=f"{chart.key}.png")
    for csv_file in sorted(folder.glob("*.csv")):
        msg.add_attachment(csv_file.read_bytes(), maintype="text", subtype="csv", filename=csv_file.name)
    return msg, len(html.encode())
