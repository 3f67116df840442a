"""Score the installation, evaluate the rules, keep incidents, queue notifications.

Everything an evaluation changes (alert states, incidents and their events, the queued
notification) is committed in one transaction; sending happens afterwards in its own task, so
a mail server that is down can delay a message but never lose or corrupt alert state.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Engine, and_, insert, or_, select, update

from ..db.ops_models import alert_states, health_scores, incident_events, incidents, notifications, silences
from ..db.upsert import upsert
from ..lib.templates import render
from .inputs import ALL, request_series, request_value, request_window, sample_series
from .rules import AlertState, Rule, Transition, aggregate, step
from .score import health_score

ACTOR = "pelbiot-jobs"


# --- health score -----------------------------------------------------------------------------

def compute_scores(engine: Engine, components, window: float, now: dt.datetime) -> list[dict]:
    """One score per host with host samples, and the overall one ("*"), for the minute of ``now``."""
    since = now - dt.timedelta(seconds=window)
    with engine.connect() as conn:
        merged, minutes = request_window(conn, since)
        per_host: dict[str, dict[str, float]] = {}
        shared: dict[str, float | None] = {}
        for c in components:
            if c.metric.startswith("requests."):
                shared[c.name] = request_value(c.metric, merged, minutes)
                continue
            for host, values in sample_series(conn, c.metric, since).items():
                per_host.setdefault(host, {})[c.name] = sum(values) / len(values)
    minute = now.replace(second=0, microsecond=0)
    rows = []
    for host, values in sorted(per_host.items()):
        rows.append((host, health_score({**shared, **values}, components)))
    # Overall: the worst host for host components (one saturated host is a problem for everyone).
    overall = dict(shared)
    for c in components:
        if c.name not in shared:
            host_values = [v[c.name] for v in per_host.values() if c.name in v]
            overall[c.name] = max(host_values) if host_values else None
    rows.append((ALL, health_score(overall, components)))
    return [{"host": host, "ts": minute, "score": s["score"], "status": s["status"], "present": s["present"],
             "components": json.dumps({"components": s["components"], "of": s["of"]})} for host, s in rows]


def store_scores(engine: Engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        upsert(conn, health_scores, rows, key=("host", "ts"))


# --- rule evaluation --------------------------------------------------------------------------

@dataclass
class Change:
    rule: Rule
    host: str
    transition: Transition | None  # None: a reminder of a still-firing alert
    incident_id: int
    threshold: float
    value: float | None
    since: dt.datetime | None


def _state_of(row) -> AlertState:
    if row is None:
        return AlertState()
    return AlertState(row["state"], row["since"], row["clearing_since"], row["value"], row["fired_at"])


def _silenced(conn, rule: str, host: str, now: dt.datetime) -> bool:
    s = silences.c
    return conn.execute(select(s.id).where(s.rule == rule, s.until > now,
                                           or_(s.host.is_(None), s.host == host)).limit(1)).first() is not None


def _event(conn, incident_id: int, now: dt.datetime, kind: str, detail: str, actor: str = ACTOR) -> None:
    conn.execute(insert(incident_events).values(incident_id=incident_id, at=now, kind=kind, actor=actor,
                                                detail=detail[:1000]))


def _open_incident(conn, rule: Rule, host: str, value, now) -> int:
    i = incidents.c
    row = conn.execute(select(i.id).where(i.rule == rule.name, i.host == host, i.status != "resolved")
                       .order_by(i.id.desc()).limit(1)).first()
    if row is not None:  # join the open incident of the same rule and host
        conn.execute(update(incidents).where(i.id == row.id).values(last_value=value))
        _event(conn, row.id, now, "refired", f"{rule.name} fired again at {value}")
        return row.id
    summary = f"{rule.name}: {rule.metric} {rule.aggregate} {rule.op} {rule.threshold:g} on {host}"
    new_id = conn.execute(insert(incidents).values(
        rule=rule.name, host=host, severity=rule.severity, status="open", opened_at=now, hold=0,
        last_value=value, summary=summary[:500])).inserted_primary_key[0]
    _event(conn, new_id, now, "opened", f"value {value} {rule.op} {rule.threshold:g}")
    return new_id


def _resolve_incident(conn, rule: Rule, host: str, value, now) -> int | None:
    i = incidents.c
    row = conn.execute(select(i.id, i.hold).where(i.rule == rule.name, i.host == host, i.status != "resolved")
                       .order_by(i.id.desc()).limit(1)).first()
    if row is None:
        return None
    if row.hold:
        _event(conn, row.id, now, "cleared", f"alert resolved at {value}; held open for an operator to close")
        return row.id
    conn.execute(update(incidents).where(i.id == row.id).values(status="resolved", resolved_at=now,
                                                                resolved_by="auto", last_value=value))
    _event(conn, row.id, now, "resolved", f"value back to {value}")
    return row.id


def _hosts_to_evaluate(conn, rule: Rule, series: dict[str, list[float]]) -> set[str]:
    known = {r.host for r in conn.execute(select(alert_states.c.host).where(
        alert_states.c.rule == rule.name, alert_states.c.state != "inactive"))}
    hosts = set(series) | known
    if not hosts and rule.metric.startswith("requests."):
        hosts = {ALL}  # installation-wide: evaluated even without data, for its no-data policy
    return hosts


def evaluate(engine: Engine, rules: list[Rule], notify: dict, now: dt.datetime) -> dict:
    """Step every (rule, host); return what changed and the id of a queued notification, if any."""
    changes: list[Change] = []
    firing_now: list[str] = []
    with engine.begin() as conn:
        for rule in rules:
            if not rule.enabled:
                continue
            since = now - dt.timedelta(seconds=rule.window)
            if rule.metric.startswith("requests."):
                _, minutes = request_window(conn, since)
                series = {ALL: request_series(rule.metric, minutes)} if minutes else {}
            else:
                series = sample_series(conn, rule.metric, since)
            for host in sorted(_hosts_to_evaluate(conn, rule, series)):
                a = alert_states.c
                row = conn.execute(select(alert_states).where(a.rule == rule.name, a.host == host)).mappings().first()
                prev = _state_of(row)
                value = aggregate(series.get(host, []), rule.aggregate)
                state, transitions = step(rule, prev, value, now)
                last_notified = row["last_notified_at"] if row else None
                for t in transitions:
                    if t.kind == "firing":
                        incident_id = _open_incident(conn, rule, host, t.value, now)
                    else:
                        incident_id = _resolve_incident(conn, rule, host, t.value, now)
                    changes.append(Change(rule, host, t, incident_id or 0, rule.threshold, t.value,
                                          prev.fired_at if t.kind == "resolved" else now))
                if state.state == "firing":
                    firing_now.append(f"{rule.name}@{host}")
                    # Remind after the repeat interval; announce one never told (silenced until now).
                    repeat_due = (last_notified is None
                                  or (now - last_notified).total_seconds() >= notify["repeat_interval"])
                    if not transitions and repeat_due:
                        i = incidents.c
                        inc = conn.execute(select(i.id).where(i.rule == rule.name, i.host == host,
                                                              i.status != "resolved")).first()
                        changes.append(Change(rule, host, None, inc.id if inc else 0, rule.threshold, value,
                                              state.fired_at))
                upsert(conn, alert_states, [{
                    "rule": rule.name, "host": host, "state": state.state, "since": state.since,
                    "clearing_since": state.clearing_since, "fired_at": state.fired_at, "value": state.value,
                    "evaluated_at": now, "last_notified_at": last_notified}], key=("rule", "host"))
        notification_id, deliveries = _queue_notification(conn, changes, notify, now)
    return {"changes": [f"{c.transition.kind if c.transition else 'reminder'}:{c.rule.name}@{c.host}"
                        for c in changes],
            "firing": firing_now, "notification_id": notification_id, "deliveries": deliveries}


def _worth_telling(conn, change: Change, notify: dict, now: dt.datetime) -> bool:
    """Silences, the per-rule cooldown after a firing notice, and resolved only if firing was told."""
    a = alert_states.c
    row = conn.execute(select(a.last_notified_at, a.fired_at).where(a.rule == change.rule.name,
                                                                     a.host == change.host)).first()
    last = row.last_notified_at if row else None
    if _silenced(conn, change.rule.name, change.host, now):
        if change.incident_id and change.transition is not None:
            _event(conn, change.incident_id, now, "muted", "notification muted by a silence")
        return False
    if change.transition is None:
        return True
    if change.transition.kind == "firing":
        return last is None or (now - last).total_seconds() >= notify["cooldown"]
    return last is not None and change.since is not None and last >= change.since  # resolved


def _render(told: list[Change], now: dt.datetime) -> tuple[str, str, str]:
    firing = [c for c in told if c.transition and c.transition.kind == "firing"]
    resolved = [c for c in told if c.transition and c.transition.kind == "resolved"]
    reminders = [c for c in told if c.transition is None]
    context = {"firing": firing, "resolved": resolved, "reminders": reminders, "now": now}
    return (" ".join(render("alerts_subject.txt.j2", **context).split()), render("alerts_email.txt.j2", **context),
            render("alerts_email.html.j2", **context))


def _insert_notification(conn, told: list[Change], now: dt.datetime, recipients: str, status: str) -> int:
    subject, text, html = _render(told, now)
    return conn.execute(insert(notifications).values(
        created_at=now, kind="alerts", subject=subject[:500], body_text=text, body_html=html,
        recipients=recipients, status=status, attempts=0)).inserted_primary_key[0]


def _queue_notification(conn, changes: list[Change], notify: dict, now: dt.datetime) -> tuple[int | None, dict]:
    """One notification of what changed: e-mailed to the recipients (its id is returned) and sent to
    each receiver; a receiver that only some of the rules name gets a notification of their changes
    alone. Returns (the e-mail's notification or None, {receiver: notification id})."""
    told = [c for c in changes if _worth_telling(conn, c, notify, now)]
    default = tuple(notify.get("receivers") or ())
    routes = [c.rule.receivers if c.rule.receivers is not None else default for c in told]
    receivers = sorted({r for route in routes for r in route})
    recipients = notify.get("recipients") or []
    if not told or not (recipients or receivers):
        return None, {}
    everyone = [r for r in receivers if all(r in route for route in routes)]
    main_id = _insert_notification(conn, told, now, ", ".join(recipients), "pending" if recipients else "receivers") \
        if recipients or everyone else None
    deliveries = {r: main_id for r in everyone}
    for r in receivers:
        if r not in deliveries:  # routed changes only
            deliveries[r] = _insert_notification(conn, [c for c, route in zip(told, routes) if r in route], now,
                                                 f"receiver:{r}", "receivers")
    a = alert_states.c
    for c in told:
        conn.execute(update(alert_states).where(and_(a.rule == c.rule.name, a.host == c.host))
                     .values(last_notified_at=now))
        if c.incident_id:
            where = f"notification #{main_id}" if main_id else "notifications #" + ", #".join(
                str(n) for n in sorted(set(deliveries.values())))
            _event(conn, c.incident_id, now, "notified", f"{c.transition.kind if c.transition else 'reminder'} in {where}")
    return (main_id if recipients else None), deliveries


# --- operators' actions -----------------------------------------------------------------------

def _unresolved(conn, incident_id: int) -> None:
    """Raise InputError unless incident ``incident_id`` exists and is not resolved."""
    from ..lib.errors import InputError, NotFound

    row = conn.execute(select(incidents.c.status).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident #{incident_id}")
    if row.status == "resolved":
        raise InputError(f"incident #{incident_id} is already resolved")


def acknowledge(engine: Engine, incident_id: int, who: str, now: dt.datetime, hold: bool = False) -> dict:
    with engine.begin() as conn:
        _unresolved(conn, incident_id)
        conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
            status="acknowledged", acknowledged_by=who, acknowledged_at=now, hold=1 if hold else 0))
        _event(conn, incident_id, now, "acknowledged", "held open until closed by hand" if hold else "", actor=who)
    return {"id": incident_id, "status": "acknowledged", "by": who, "hold": hold}


def resolve_by_hand(engine: Engine, incident_id: int, who: str, now: dt.datetime) -> dict:
    with engine.begin() as conn:
        _unresolved(conn, incident_id)
        conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
            status="resolved", resolved_at=now, resolved_by=who))
        _event(conn, incident_id, now, "resolved", "closed by hand", actor=who)
    return {"id": incident_id, "status": "resolved", "by": who}


def add_silence(engine: Engine, rule: str, host: str | None, until: dt.datetime, who: str, now: dt.datetime,
                reason: str | None) -> int:
    with engine.begin() as conn:
        return conn.execute(insert(silences).values(rule=rule, host=host, until=until, created_by=who,
                                                    created_at=now, reason=reason)).inserted_primary_key[0]
