"""The report service: build one report (files + ops row), mail it when asked. What the
reports.export task, the CLI and the web view call.
"""

from __future__ import annotations

import datetime as dt

from ..db.engine import engine_for
from ..lib.clock import utcnow
from ..lib.errors import InputError, NotFound, ScheduleError, one_line
from . import KINDS


def alert_rules(settings) -> list:
    """The alert rules (alerts.yaml) whose thresholds the charts draw; none when the file is invalid
    (the report is still written; `schedules check` names the problem)."""
    from ..health.service import load_alerts

    try:
        return [r for r in load_alerts(settings)[0] if r.enabled]
    except ScheduleError:
        return []


def export(settings, kind: str, day: dt.date | None, email: bool, output=None, task_id: str | None = None) -> dict:
    """Build one report (files + ops row), then mail it when asked; the files stay whatever the mail does.

    Run as a task (``task_id``), the e-mail is an effect done once (effects.py): a run of the same
    task after its worker died rebuilds the files but does not send the e-mail again.
    """
    # Imported here: pandas, matplotlib and Jinja2 load in the worker that builds a report, not in
    # beat, `up` or any process that only needs the task's name.
    from ..lib.mail import deliver
    from ..runtime import effects
    from .build import MAX_EMAIL_HTML, compute, email_message, record, write
    from .data import period_for

    if kind not in KINDS:
        raise InputError(f"unknown report kind {kind!r}; use one of {', '.join(KINDS)}")
    now = utcnow()
    period = period_for(kind, day, now.date())
    ops = engine_for(settings.ops_db_url)
    ctx = compute(ops, engine_for(settings.app_db_url), period, alert_rules(settings))
    folder, files = write(ctx, output or settings.reports_dir, ops, now)
    result = {"kind": kind, "period": period.label, "folder": str(folder), "files": len(files)}
    if email:
        try:
            notice = queue_for_receivers(settings, ctx, kind, period.label, folder, task_id)
        except ScheduleError:
            notice = None
            result["warning"] = "alerts.yaml has problems (`pelbiot-jobs schedules check`): no chat receiver got it"
        if notice:
            result["receivers"] = notice
    recipients = list(settings.report_recipients.get(kind) or settings.smtp.recipients) or (
        [] if settings.smtp.configured else ["operator@localhost"])
    if email and recipients:
        msg, html_bytes = email_message(settings, ctx, folder, recipients)
        result["email_html_bytes"] = html_bytes
        if html_bytes > MAX_EMAIL_HTML:
            result["warning"] = f"the e-mail's HTML part is {html_bytes:,} bytes (over {MAX_EMAIL_HTML:,})"
        key = f"report-mail:{task_id}" if task_id else None
        claim = effects.claim(settings, key, f"e-mail of the {kind} report {period.label}", task_id) if key \
            else effects.NEW
        if claim == effects.DONE:
            result["email"] = "already sent by an earlier run of this task"
            return result
        if key:
            msg.replace_header("Message-ID", effects.message_id(key))
        try:
            outcome = deliver(settings, msg)
        except Exception as exc:
            record(ops, period, folder, files, now, "mail_failed", ", ".join(recipients), one_line(exc))
            raise
        if key:
            effects.done(settings, key, outcome)
        record(ops, period, folder, files, now, "emailed" if outcome == "sent" else "outbox", ", ".join(recipients))
        result["email"] = outcome + (" (again: an earlier run died while sending)"
                                     if claim == effects.INTERRUPTED else "")
    return result


#: The longest report summary sent to a chat receiver (characters); the files hold the rest.
MAX_NOTICE = 3500


def queue_for_receivers(settings, ctx: dict, kind: str, label: str, folder, task_id: str | None) -> dict | None:
    """The report's summary as a notification for the receivers alerts.yaml names under
    ``notify: report_receivers:`` (sent by alerts.deliver, once per receiver); None without any.
    One notification per task: a run again after its worker died finds the one it queued."""
    from sqlalchemy import insert, select

    from ..db.ops_models import notifications
    from ..health.service import load_alerts
    from .build import render_text

    receivers = load_alerts(settings)[1].get("report_receivers", [])
    if not receivers:
        return None
    marker = f"report:{task_id}" if task_id else f"report:cli:{utcnow().isoformat()}"
    n = notifications.c
    with engine_for(settings.ops_db_url).begin() as conn:
        found = conn.execute(select(n.id).where(n.kind == "report", n.recipients == marker)).scalar()
        if found is None:
            text = render_text(ctx)
            body = (text if len(text) <= MAX_NOTICE else text[:MAX_NOTICE] + "\n...") + f"\nFiles: {folder}"
            found = conn.execute(insert(notifications).values(
                created_at=utcnow(), kind="report", subject=f"[pelbiot-jobs] {kind} report {label}", body_text=body,
                recipients=marker, status="receivers", attempts=0)).inserted_primary_key[0]
    return {"notification_id": found, "receivers": list(receivers)}


def list_reports(settings, limit: int = 50) -> list[dict]:
    """The reports written, newest first, with their files."""
    import json

    from sqlalchemy import select

    from ..db.ops_models import reports

    r = reports.c
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = [dict(x) for x in conn.execute(select(reports).order_by(r.created_at.desc(), r.id.desc())
                                              .limit(limit)).mappings()]
    for row in rows:
        row["files"] = json.loads(row["files"] or "[]")
    return rows


def report_file(settings, report_id: int, name: str):
    """The path of one file of a recorded report; InputError for anything else (another name, a
    path outside the report's folder, a file gone since)."""
    import json
    from pathlib import Path

    from sqlalchemy import select

    from ..db.ops_models import reports

    with engine_for(settings.ops_db_url).connect() as conn:
        row = conn.execute(select(reports.c.path, reports.c.files).where(reports.c.id == report_id)).first()
    if row is None:
        raise NotFound(f"no report #{report_id}")
    if name not in {f["name"] for f in json.loads(row.files or "[]")}:
        raise InputError(f"report #{report_id} has no file {name!r}")
    folder = Path(row.path).resolve()
    path = (folder / name).resolve()
    if path.parent != folder or not path.is_file():
        raise InputError(f"report #{report_id}: {name} is not in its folder any more")
    return path
