"""Incidents, silences, repeat interval and cooldown with a pinned clock, on a real (SQLite) ops DB."""

import datetime as dt

import pytest
from sqlalchemy import func, insert, select

from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import make_engine
from pelbiot_jobs.db.ops_models import incident_events, incidents, metric_samples, notifications
from pelbiot_jobs.health.engine import acknowledge, add_silence, evaluate, resolve_by_hand
from pelbiot_jobs.health.rules import Rule

T0 = dt.datetime(2026, 11, 28, 12, 0)
RULE = Rule("cpu_high", "host.cpu_percent", ">", 80, aggregate="last", window=120, for_s=0,
            clear_threshold=70, clear_for_s=0, severity="critical")
NOTIFY = {"repeat_interval": 4 * 3600, "cooldown": 600, "recipients": ["oncall@example.com"]}


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def at(engine, minutes, value, host="web1"):
    now = T0 + dt.timedelta(minutes=minutes)
    with engine.begin() as conn:
        conn.execute(insert(metric_samples).values(metric="host.cpu_percent", host=host, ts=now, value=value))
    return evaluate(engine, [RULE], NOTIFY, now)


def count(engine, table, *where):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def subjects(engine):
    with engine.connect() as conn:
        return [r.subject for r in conn.execute(select(notifications.c.subject).order_by(notifications.c.id))]


def test_repeat_interval_reminds_of_what_is_still_firing(engine):
    assert at(engine, 0, 95)["notification_id"]
    for minute in (1, 60, 200):
        assert at(engine, minute, 95)["notification_id"] is None
    reminder = at(engine, 241, 95)
    assert reminder["notification_id"] and "STILL FIRING" in subjects(engine)[-1]
    assert count(engine, incidents) == 1  # one incident all along


def test_cooldown_keeps_a_flapping_alert_from_mailing_every_swing(engine):
    at(engine, 0, 95)  # firing: told
    at(engine, 1, 10)  # resolved: told (its firing was)
    refire = at(engine, 3, 95)  # within the 600 s cooldown: not told
    assert refire["notification_id"] is None and refire["firing"] == ["cpu_high@web1"]
    resolved_again = at(engine, 4, 10)
    assert resolved_again["notification_id"] is None  # its firing was never told
    assert len(subjects(engine)) == 2
    assert count(engine, incidents) == 2 and count(engine, incidents, incidents.c.status == "resolved") == 2


def test_silence_mutes_but_keeps_the_record(engine):
    add_silence(engine, "cpu_high", "web1", T0 + dt.timedelta(hours=1), "alice", T0, "maintenance")
    assert at(engine, 0, 95)["notification_id"] is None
    assert at(engine, 0, 95, host="web2")["notification_id"]  # another host is not silenced
    assert count(engine, incidents, incidents.c.host == "web1", incidents.c.status == "open") == 1
    assert count(engine, incident_events, incident_events.c.kind == "muted") == 1
    after = at(engine, 61, 95)  # the silence is over: what is still firing is announced
    assert after["notification_id"] and "web1" in subjects(engine)[-1]


def test_acknowledged_and_held_incident_waits_for_a_human(engine):
    at(engine, 0, 95)
    with engine.connect() as conn:
        incident_id = conn.execute(select(incidents.c.id)).scalar_one()
    acknowledge(engine, incident_id, "bob", T0 + dt.timedelta(minutes=1), hold=True)
    at(engine, 2, 10)  # the alert resolves
    with engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().one()
    assert row["status"] == "acknowledged" and row["acknowledged_by"] == "bob"
    resolve_by_hand(engine, incident_id, "bob", T0 + dt.timedelta(minutes=5))
    with engine.connect() as conn:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().one()
        kinds = [r.kind for r in conn.execute(select(incident_events.c.kind, incident_events.c.actor)
                                              .where(incident_events.c.incident_id == incident_id)
                                              .order_by(incident_events.c.id))]
    assert row["status"] == "resolved" and row["resolved_by"] == "bob"
    assert kinds == ["opened", "notified", "acknowledged", "cleared", "notified", "resolved"]


def test_an_acknowledged_incident_without_hold_resolves_itself(engine):
    at(engine, 0, 95)
    with engine.connect() as conn:
        incident_id = conn.execute(select(incidents.c.id)).scalar_one()
    acknowledge(engine, incident_id, "carol", T0 + dt.timedelta(minutes=1))
    at(engine, 2, 10)
    with engine.connect() as conn:
        assert conn.execute(select(incidents.c.status, incidents.c.resolved_by)
                            .where(incidents.c.id == incident_id)).one() == ("resolved", "auto")
