"""health.score, alerts.evaluate and alerts.notify."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update, insert

from .. import effects
from ..celery_app import app, schedules_dir
from ..db.engine import engine_for
from ..db.ops_models import notification_attempts, notifications
from ..errors import ScheduleError, TransientError
from ..params import PositiveInt
from ..runs import publishing, utcnow
from .spec import ALERTS_FILE, HEALTH_FILE, parse_alerts, parse_health

#: Without PELBIOT_MAIL_TO or recipients in alerts.yaml, mail goes to this address in the outbox.
FALLBACK_RECIPIENT = "operator@localhost"
#: A queued notification nobody picked up for this long is sent again by the next evaluation.
STUCK_AFTER = dt.timedelta(minutes=2)


def load_health(settings):
    problems: list[str] = []
    components, window = parse_health(schedules_dir(settings) / HEALTH_FILE, problems)
    if problems:
        raise ScheduleError(problems)
    return components, window


def load_alerts(settings):
    problems: list[str] = []
    rules, notify = parse_alerts(schedules_dir(settings) / ALERTS_FILE, problems)
    if problems:
        raise ScheduleError(problems)
    if not notify["recipients"]:
        notify["recipients"] = list(settings.smtp.recipients) or (
            [] if settings.smtp.configured else [FALLBACK_RECIPIENT])
    return rules, notify


@app.task(name="health.score", soft_time_limit=50, time_limit=60)
def health_score_task() -> dict:
    """Score every host and the installation (0-100) from the last window of metrics."""
    from .engine import compute_scores, store_scores

    settings = app.pelbiot_settings
    components, window = load_health(settings)
    engine = engine_for(settings.ops_db_url)
    rows = compute_scores(engine, components, window, utcnow())
    store_scores(engine, rows)
    overall = rows[-1]
    return {"score": overall["score"], "status": overall["status"], "present": overall["present"],
            "hosts": len(rows) - 1}


@app.task(name="alerts.evaluate", exclusive=True, soft_time_limit=50, time_limit=60)
def alerts_evaluate() -> dict:
    """Step every alert rule; open and resolve incidents; queue one notification of what changed."""
    from .engine import evaluate

    settings = app.pelbiot_settings
    rules, notify = load_alerts(settings)
    engine = engine_for(settings.ops_db_url)
    now = utcnow()
    result = evaluate(engine, rules, notify, now)
    to_send = [result["notification_id"]] if result["notification_id"] else []
    n = notifications.c
    with engine.connect() as conn:  # queued but never picked up (a worker died in between)
        to_send += [r.id for r in conn.execute(select(n.id).where(
            n.status == "pending", n.created_at < now - STUCK_AFTER)) if r.id not in to_send]
    for notification_id in to_send:
        with publishing("dispatch"):
            alerts_notify.apply_async(args=[notification_id])
    return result


@app.task(name="alerts.notify", bind=True, max_retries=6, backoff_max=600.0, soft_time_limit=100, time_limit=120,
          params={"notification_id": PositiveInt()})
def alerts_notify(self, notification_id: int) -> dict:
    """Send one queued notification; SMTP trouble is retried with backoff, each attempt logged."""
    from ..mail import build_message, deliver
    from ..runs import one_line

    settings = app.pelbiot_settings
    engine = engine_for(settings.ops_db_url)
    n = notifications.c
    now = utcnow()
    with engine.begin() as conn:  # claim it: a second task for the same notification does nothing
        claimed = conn.execute(update(notifications).where(n.id == notification_id, n.status == "pending")
                               .values(status="sending", attempts=n.attempts + 1)).rowcount
        row = conn.execute(select(notifications).where(n.id == notification_id)).mappings().first()
    if row is None:
        return {"skipped": True, "reason": f"no notification #{notification_id}"}
    # The e-mail is an effect done once per notification (effects.py): this task run again after its
    # worker died while sending finds the notification "sending" and its effect claimed, and sends
    # again with the same Message-ID; after a send that was recorded, it sends nothing.
    key = f"alert-mail:{notification_id}"
    if not claimed and not (row["status"] == "sending" and effects.state(settings, key) == "claimed"):
        return {"skipped": True, "reason": f"notification #{notification_id} is {row['status']}"}
    claim = effects.claim(settings, key, f"alert e-mail, notification #{notification_id}", self.request.id)
    if claim == effects.DONE:
        return {"skipped": True, "reason": f"notification #{notification_id} was sent by an earlier run"}
    msg = build_message(settings, [r.strip() for r in row["recipients"].split(",")], row["subject"],
                        row["body_text"], row["body_html"])
    msg.replace_header("Message-ID", effects.message_id(key))
    try:
        outcome = deliver(settings, msg)
    except Exception as exc:
        last = self.request.retries >= self.max_retries or not isinstance(exc, TransientError)
        with engine.begin() as conn:
            conn.execute(insert(notification_attempts).values(notification_id=notification_id, at=now,
                                                              outcome="failed", detail=one_line(exc)))
            conn.execute(update(notifications).where(n.id == notification_id).values(
                status="failed" if last else "pending", last_error=one_line(exc)))
        raise
    with engine.begin() as conn:  # the e-mail's effect and the notification's state in one commit
        effects.done(settings, key, outcome, conn=conn)
        conn.execute(insert(notification_attempts).values(notification_id=notification_id, at=now,
                                                          outcome="outbox" if outcome != "sent" else "sent",
                                                          detail=outcome[:1000]))
        conn.execute(update(notifications).where(n.id == notification_id).values(status="sent", sent_at=now,
                                                                               last_error=None))
    return {"notification": notification_id, "outcome": outcome}

