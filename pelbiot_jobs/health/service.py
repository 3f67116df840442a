"""The health and alerting services: score, evaluate, notify; the current health; incidents and
silences as operators see and change them. What tasks, the CLI and the web view call.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import insert, select, update

from ..db.engine import engine_for
from ..db.ops_models import health_scores, incident_events, incidents, notification_attempts, notifications, silences
from ..lib.clock import utcnow
from ..lib.errors import InputError, NotFound, ScheduleError, TransientError
from ..lib.paths import schedules_dir
from ..runtime import effects
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


def rules_in_force(settings) -> tuple[list, dict, dict[str, dict]]:
    """alerts.yaml's rules with the run-time toggles applied (``toggle_rule``), its notify block,
    and the toggles by rule name. A toggle of a rule no longer in the file is ignored."""
    from dataclasses import replace

    from ..db.ops_models import rule_toggles

    rules, notify = load_alerts(settings)
    with engine_for(settings.ops_db_url).connect() as conn:
        toggled = {r["rule"]: dict(r) for r in conn.execute(select(rule_toggles)).mappings()}
    return ([replace(r, enabled=bool(toggled[r.name]["enabled"])) if r.name in toggled else r for r in rules],
            notify, toggled)


def toggle_rule(settings, name: str, enabled: bool | None, who: str, reason: str | None = None,
                now: dt.datetime | None = None) -> dict:
    """Switch an alert rule off or on at run time (``enabled`` None: the other way round), over
    what alerts.yaml says, recorded with who, when and why; the evaluator honours it from its next run."""
    from ..db.ops_models import rule_toggles
    from ..db.upsert import upsert

    rules, _, _ = rules_in_force(settings)
    rule = next((r for r in rules if r.name == name), None)
    if rule is None:
        raise NotFound(f"no alert rule {name!r:.100} in alerts.yaml (`pelbiot-jobs rules list`)")
    enabled = (not rule.enabled) if enabled is None else bool(enabled)
    row = {"rule": name, "enabled": int(enabled), "changed_by": who[:100], "changed_at": now or utcnow(),
           "reason": (reason or "")[:500] or None}
    with engine_for(settings.ops_db_url).begin() as conn:
        upsert(conn, rule_toggles, [row], key=("rule",))
    return {"rule": name, "enabled": enabled, "was_enabled": rule.enabled, "changed_by": row["changed_by"],
            "changed_at": row["changed_at"], "reason": row["reason"]}


def score(settings, now: dt.datetime | None = None) -> dict:
    """Score every host and the installation (0-100) from the last window of metrics; store it."""
    from .engine import compute_scores, store_scores

    components, window = load_health(settings)
    engine = engine_for(settings.ops_db_url)
    rows = compute_scores(engine, components, window, now or utcnow())
    store_scores(engine, rows)
    overall = rows[-1]
    return {"score": overall["score"], "status": overall["status"], "present": overall["present"],
            "hosts": len(rows) - 1}


def evaluate(settings, now: dt.datetime | None = None) -> tuple[dict, list[int], dict[str, int]]:
    """Step every rule; open and resolve incidents; queue a notification of what changed.

    Returns the outcome, the notifications to e-mail (the new one, and any queued more than
    STUCK_AFTER ago that nobody picked up: its worker died in between) and which notification
    each receiver gets ({receiver: notification id}).
    """
    from .engine import evaluate as step_rules

    now = now or utcnow()
    rules, notify, _ = rules_in_force(settings)
    engine = engine_for(settings.ops_db_url)
    result = step_rules(engine, rules, notify, now)
    to_send = [result["notification_id"]] if result["notification_id"] else []
    n = notifications.c
    with engine.connect() as conn:
        to_send += [r.id for r in conn.execute(select(n.id).where(
            n.status == "pending", n.created_at < now - STUCK_AFTER)) if r.id not in to_send]
    return result, to_send, result.pop("deliveries", {})


def notify(settings, notification_id: int, task_id: str | None, last_attempt: bool) -> dict:
    """Send one queued notification once; each attempt recorded. Raises on SMTP trouble (retried).

    The e-mail is an effect done once per notification (effects.py): run again after its worker
    died while sending, it finds the notification "sending" and its effect claimed, and sends
    again with the same Message-ID; after a send that was recorded, it sends nothing.
    """
    from ..lib.errors import one_line
    from ..lib.mail import build_message, deliver

    engine = engine_for(settings.ops_db_url)
    n = notifications.c
    now = utcnow()
    with engine.begin() as conn:  # claim it: a second task for the same notification does nothing
        claimed = conn.execute(update(notifications).where(n.id == notification_id, n.status == "pending")
                               .values(status="sending", attempts=n.attempts + 1)).rowcount
        row = conn.execute(select(notifications).where(n.id == notification_id)).mappings().first()
    if row is None:
        return {"skipped": True, "reason": f"no notification #{notification_id}"}
    key = f"alert-mail:{notification_id}"
    if not claimed and not (row["status"] == "sending" and effects.state(settings, key) == "claimed"):
        return {"skipped": True, "reason": f"notification #{notification_id} is {row['status']}"}
    claim = effects.claim(settings, key, f"alert e-mail, notification #{notification_id}", task_id)
    if claim == effects.DONE:
        return {"skipped": True, "reason": f"notification #{notification_id} was sent by an earlier run"}
    msg = build_message(settings, [r.strip() for r in row["recipients"].split(",")], row["subject"],
                        row["body_text"], row["body_html"])
    msg.replace_header("Message-ID", effects.message_id(key))
    try:
        outcome = deliver(settings, msg)
    except Exception as exc:
        last = last_attempt or not isinstance(exc, TransientError)
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


def deliver(settings, notification_id: int, receiver: str, task_id: str | None) -> dict:
    """Send one notification to one Apprise receiver (Slack, Teams, Telegram, a webhook...) once.

    Each receiver is its own task: one that is down is retried with backoff (TransientError)
    without holding up the others; every attempt is recorded with the receiver's name, never its
    URL. The delivery is an effect done once per notification and receiver (effects.py).
    """
    import logging

    import apprise

    from ..config import receiver_variable
    from ..lib.errors import one_line

    url = settings.receivers.get(receiver)
    engine = engine_for(settings.ops_db_url)
    if url is None:  # alerting goes on (incidents, e-mail, the other receivers); this one fails visibly
        detail = f"receiver {receiver!r} has no URL: set {receiver_variable(receiver)} to its Apprise URL"
        with engine.begin() as conn:
            conn.execute(insert(notification_attempts).values(notification_id=notification_id, at=utcnow(),
                                                              outcome="failed", detail=detail, receiver=receiver))
        raise InputError(detail)
    with engine.connect() as conn:
        row = conn.execute(select(notifications).where(notifications.c.id == notification_id)).mappings().first()
    if row is None:
        return {"skipped": True, "reason": f"no notification #{notification_id}"}
    key = f"alert-{receiver}:{notification_id}"
    if effects.claim(settings, key, f"alert to {receiver}, notification #{notification_id}", task_id) == effects.DONE:
        return {"skipped": True, "reason": f"notification #{notification_id} went to {receiver} in an earlier run"}
    sender = apprise.Apprise()
    now = utcnow()
    if not sender.add(url):
        raise InputError(f"receiver {receiver!r}: its URL is not one Apprise knows (the URL is not shown)")
    with apprise.LogCapture(level=logging.WARNING) as said:
        result = sender.notify(title=row["subject"], body=row["body_text"])
    if not result:  # a bool, or (Apprise 2) a result that is true when every service took it
        lines = [line.split(" - ", 2)[-1] for line in said.getvalue().splitlines() if line.strip()]
        why = " ".join(" ".join(lines).split()) or "the receiver did not accept it"
        detail = one_line(TransientError(f"{receiver}: {why}"), settings.secrets()).removeprefix("TransientError: ")
        with engine.begin() as conn:
            conn.execute(insert(notification_attempts).values(notification_id=notification_id, at=now,
                                                              outcome="failed", detail=detail, receiver=receiver))
        raise TransientError(detail)
    with engine.begin() as conn:
        effects.done(settings, key, "sent", conn=conn)
        conn.execute(insert(notification_attempts).values(notification_id=notification_id, at=now, outcome="sent",
                                                          detail=f"sent to {receiver}", receiver=receiver))
    return {"notification": notification_id, "receiver": receiver, "outcome": "sent"}


# --- what operators read ----------------------------------------------------------------------

def component_units(settings) -> dict[str, str]:
    """The unit of each health component's value, from the metric it reads (health.yaml)."""
    try:
        components = load_health(settings)[0]
    except ScheduleError:
        return {}
    return {c.name: " %" if c.metric.endswith("_percent") else " ms" if c.metric.endswith("_ms") else ""
            for c in components}


def current_health(settings, trend_points: int = 60) -> dict:
    """The latest scores (overall and per host) with their components, and the overall trend."""
    h = health_scores.c
    with engine_for(settings.ops_db_url).connect() as conn:
        latest_ts = conn.execute(select(h.ts).order_by(h.ts.desc()).limit(1)).scalar()
        rows = [] if latest_ts is None else conn.execute(select(health_scores).where(h.ts == latest_ts)
                                                          .order_by(h.host)).mappings().all()
        trend = conn.execute(select(h.ts, h.score).where(h.host == "*").order_by(h.ts.desc())
                             .limit(trend_points)).all()
    scores = [{"host": r["host"], "ts": r["ts"].isoformat() + "Z", "score": r["score"], "status": r["status"],
               "present": r["present"], **json.loads(r["components"])} for r in rows]
    try:
        specs = {c.name: c for c in load_health(settings)[0]}
    except ScheduleError:
        specs = {}
    for score_row in scores:
        for part in score_row.get("components", []):
            part["why"] = why(part, specs.get(part["name"]))
    return {"overall": next((s for s in scores if s["host"] == "*"), None),
            "hosts": [s for s in scores if s["host"] != "*"],
            "trend": [{"ts": t.isoformat() + "Z", "score": v} for t, v in reversed(trend)]}


def why(part: dict, spec) -> str:
    """Which of its thresholds (health.yaml) a component's value is under or over, in words."""
    if part.get("missing"):
        return "no data in the window"
    if spec is None:
        return ""
    value = part["value"]
    for level, limit in (("critical", spec.critical), ("warning", spec.warning), ("good", spec.good)):
        if value > limit:
            return f"{value:g} is over {level} ({limit:g})"
    return f"{value:g} is within good ({spec.good:g})"


def list_incidents(settings, include_resolved: bool = False, limit: int = 50) -> list[dict]:
    i = incidents.c
    query = select(incidents).order_by(i.id.desc()).limit(limit)
    if not include_resolved:
        query = query.where(i.status != "resolved")
    with engine_for(settings.ops_db_url).connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def incident(settings, incident_id: int) -> dict:
    """One incident with its events, oldest first; InputError when there is no such incident."""
    e = incident_events.c
    with engine_for(settings.ops_db_url).connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
        if row is None:
            raise NotFound(f"no incident #{incident_id}")
        events = conn.execute(select(incident_events).where(e.incident_id == incident_id)
                              .order_by(e.at, e.id)).mappings().all()
    return {**dict(row), "events": [dict(ev) for ev in events]}


def acknowledge(settings, incident_id: int, who: str, hold: bool = False, now: dt.datetime | None = None) -> dict:
    """Acknowledged: auto-resolves when its alert clears, unless ``hold`` (then resolved by hand)."""
    from .engine import acknowledge as ack

    return ack(engine_for(settings.ops_db_url), incident_id, who, now or utcnow(), hold=hold)


def resolve(settings, incident_id: int, who: str, now: dt.datetime | None = None) -> dict:
    from .engine import resolve_by_hand

    return resolve_by_hand(engine_for(settings.ops_db_url), incident_id, who, now or utcnow())


def add_silence(settings, rule: str, host: str | None, seconds: float, who: str, reason: str | None,
                now: dt.datetime | None = None) -> dict:
    """Mute a rule's notifications (on one host, or all) for ``seconds``; the rule must exist."""
    from .engine import add_silence as add

    rules, _ = load_alerts(settings)
    names = sorted(r.name for r in rules)
    if rule not in names:
        raise InputError(f"unknown rule {rule!r} (rules: {', '.join(names) or 'none'})")
    now = now or utcnow()
    until = now + dt.timedelta(seconds=seconds)
    silence_id = add(engine_for(settings.ops_db_url), rule, host, until, who, now, reason)
    return {"id": silence_id, "rule": rule, "host": host, "until": until, "by": who, "reason": reason}


def list_silences(settings, include_expired: bool = False, now: dt.datetime | None = None,
                  limit: int = 100) -> list[dict]:
    """Silences in force (or every one, newest first), with whether each is active now."""
    now = now or utcnow()
    s = silences.c
    query = select(silences).order_by(s.id.desc()).limit(limit)
    if not include_expired:
        query = query.where(s.until > now)
    with engine_for(settings.ops_db_url).connect() as conn:
        return [{**dict(r), "active": r["until"] > now} for r in conn.execute(query).mappings()]


def expire_silence(settings, silence_id: int, who: str, now: dt.datetime | None = None) -> dict:
    """End a silence now: the rule notifies again from its next evaluation. Who ended it is recorded."""
    now = now or utcnow()
    s = silences.c
    with engine_for(settings.ops_db_url).begin() as conn:
        row = conn.execute(select(silences).where(s.id == silence_id)).mappings().first()
        if row is None:
            raise NotFound(f"no silence #{silence_id}")
        if row["until"] <= now:
            raise InputError(f"silence #{silence_id} already ended at {row['until']:%Y-%m-%d %H:%M:%S} UTC")
        note = f"expired by {who} at {now:%Y-%m-%d %H:%M:%S}"
        reason = f"{row['reason']} ({note})" if row["reason"] else note
        conn.execute(update(silences).where(s.id == silence_id).values(until=now, reason=reason[:500]))
    return {"id": silence_id, "rule": row["rule"], "host": row["host"], "until": now, "by": who}


def rule_states(settings) -> list[dict]:
    """Every alert rule with its definition and, per host, its current state."""
    from ..db.ops_models import alert_states

    rules, _, toggled = rules_in_force(settings)
    a = alert_states.c
    with engine_for(settings.ops_db_url).connect() as conn:
        states = conn.execute(select(alert_states).order_by(a.rule, a.host)).mappings().all()
    by_rule: dict[str, list[dict]] = {}
    for s in states:
        by_rule.setdefault(s["rule"], []).append(dict(s))
    return [{"name": r.name, "metric": r.metric, "op": r.op, "threshold": r.threshold, "aggregate": r.aggregate,
             "window_s": r.window, "for_s": r.for_s, "severity": r.severity, "enabled": r.enabled,
             "description": r.description, "states": by_rule.get(r.name, []),
             "toggled": {k: toggled[r.name][k] for k in ("changed_by", "changed_at", "reason")}
             if r.name in toggled else None} for r in rules]


def score_history(settings, hours: float = 24, now: dt.datetime | None = None,
                  hosts: list[str] | None = None) -> dict[str, list]:
    """Each host's score (and the overall one, "*") over the last hours as [(time, score)], oldest
    first, as many per host as a chart draws: each bucket's lowest (a one-minute dip still shows).
    ``hosts``: only these (a fleet's Overview charts the lowest few, not a hundred)."""
    return {host: [(p["at"], p["score"]) for p in points]
            for host, points in score_trend(settings, hours * 60, now, hosts, lowest=True,
                                            points=history_points()).items()}



def active_alerts(settings) -> list[dict]:
    """The (rule, host) pairs firing or pending now, firing first."""
    from ..db.ops_models import alert_states

    a = alert_states.c
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = conn.execute(select(alert_states).where(a.state.in_(("firing", "pending")))
                            .order_by(a.state, a.rule, a.host)).mappings().all()
    return [dict(r) for r in rows]


def notification_history(settings, limit: int = 100, before: int | None = None) -> list[dict]:
    """Notifications newest first (what was sent, to whom, how it went), without their bodies;
    ``before``: only those with a smaller id (the next page)."""
    n = notifications.c
    query = select(n.id, n.created_at, n.kind, n.subject, n.recipients, n.status, n.attempts, n.sent_at,
                   n.last_error).order_by(n.id.desc()).limit(limit)
    if before is not None:
        query = query.where(n.id < before)
    with engine_for(settings.ops_db_url).connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


#: The rule name a manual incident is recorded under (no rule of alerts.yaml may take it: none evaluates it).
MANUAL_RULE = "manual"
MANUAL_SEVERITIES = ("warning", "critical")


def open_manual_incident(settings, title: str, severity: str, host: str | None, description: str | None,
                         who: str, now: dt.datetime | None = None) -> dict:
    """An incident an operator (or a script) opens: recorded as the rule ``manual``, held open until
    resolved by hand, its opening in the incident's history, and a notification queued to the
    recipients of alerts.yaml, sent by alerts.notify as an alert's would be."""
    from ..lib.textsafe import plain

    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise InputError("title must be text of 1 to 200 characters")
    if severity not in MANUAL_SEVERITIES:
        raise InputError(f"severity {str(severity)[:20]!r} is not valid: use warning or critical")
    host = (host or "*").strip() or "*"
    if len(host) > 120:
        raise InputError("host must be at most 120 characters")
    description = (description or "").strip()[:1000] or None
    _, notify = load_alerts(settings)
    now = now or utcnow()
    subject = f"[pelbiot-jobs] {severity.upper()} (opened by hand): {plain(title)}"[:500]
    text = (f"{who} opened an incident at {now:%Y-%m-%d %H:%M} UTC\n\nhost: {host}\nseverity: {severity}\n"
            f"title: {plain(title)}\n" + (f"\n{plain(description)}\n" if description else ""))
    with engine_for(settings.ops_db_url).begin() as conn:
        incident_id = conn.execute(insert(incidents).values(
            rule=MANUAL_RULE, host=host, severity=severity, status="open", opened_at=now, hold=1,
            summary=title[:500])).inserted_primary_key[0]
        conn.execute(insert(incident_events).values(incident_id=incident_id, at=now, kind="opened", actor=who[:100],
                                                    detail=(description or title)[:1000]))
        notification_id = conn.execute(insert(notifications).values(
            created_at=now, kind="alerts", subject=subject, body_text=text, body_html=None,
            recipients=", ".join(notify["recipients"]), status="pending", attempts=0)).inserted_primary_key[0]
    return {"incident_id": incident_id, "notification_id": notification_id, "rule": MANUAL_RULE, "host": host,
            "severity": severity, "title": title}


#: A score trend has at most this many points per host: each bucket's average, made in the database.
TREND_POINTS = 360


def history_points() -> int:
    """Points per host score_history gives: no more than a chart draws, which would thin them by
    their highest and lose the dips."""
    from ..lib.svgchart import MAX_POINTS

    return min(MAX_POINTS, TREND_POINTS)


def trend_step(minutes: float, points: int = TREND_POINTS) -> int:
    """The seconds each point of score_trend stands for (a minute at least)."""
    from ..db.engine import bucket_step

    return bucket_step(minutes * 60, min(points, TREND_POINTS), 60)


def score_trend(settings, minutes: float, now: dt.datetime | None = None, hosts: list[str] | None = None,
                lowest: bool = False, points: int = TREND_POINTS) -> dict[str, list[dict]]:
    """Each host's score (and the overall one, "*") over the window, at most ``points`` points
    per host (the average of each bucket, or its lowest with ``lowest``, computed in the database),
    oldest first; ``hosts``: only these."""
    from sqlalchemy import func

    from ..db.engine import bucket_start, time_bucket

    h = health_scores.c
    since = (now or utcnow()) - dt.timedelta(minutes=minutes)
    engine = engine_for(settings.ops_db_url)
    step = trend_step(minutes, points)
    bucket = time_bucket(engine, h.ts, step)
    # each point at its bucket's start, read as the bucket's number: a fleet's day is ten thousand
    # points, and a datetime per row costs the client more than the database's grouping
    query = (select(h.host, bucket, (func.min if lowest else func.avg)(h.score)).where(h.ts >= since)
             .group_by(h.host, bucket).order_by(h.host, bucket))
    if hosts is not None:
        query = query.where(h.host.in_(hosts))
    out: dict[str, list[dict]] = {}
    with engine.connect() as conn:
        for host, number, score in conn.execute(query):
            out.setdefault(host, []).append({"at": max(since, bucket_start(engine, number, step)),
                                             "score": float(score) if score is not None else None})
    return out
