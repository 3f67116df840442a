import datetime as dt

from pelbiot_jobs.db.app_models import TABLE_NAMES, build_metadata, mysql_index_name
from pelbiot_jobs.demo.data import DemoPlan, generate, load_shape

NOW = dt.datetime(2026, 11, 28, 12, 0)


def rows_by_table(plan):
    out = {}
    for name, rows in generate(plan, NOW):
        out.setdefault(name, []).extend(rows)
    return out


def test_volumes_follow_the_plan():
    rows = rows_by_table(DemoPlan(devices=10, days=7, sensor_days=1))
    assert len(rows["devices"]) == 10
    assert len(rows["load_profiles"]) == 10 * (6 * 24 + NOW.hour + 1)  # today up to the current hour
    assert max(r["created_at"] for r in rows["load_profiles"]) == NOW.replace(minute=0)
    assert len(rows["trends"]) == 10 * 7
    assert len(rows["sensor_data"]) == 10 * 1440


def test_daily_and_weekly_shapes():
    assert load_shape(15) > 3 * load_shape(3)  # afternoon peak vs night
    rows = rows_by_table(DemoPlan(devices=30, days=14, sensor_days=1))
    weekday = [r["load"] for r in rows["load_profiles"] if r["created_at"].weekday() < 5]
    weekend = [r["load"] for r in rows["load_profiles"] if r["created_at"].weekday() >= 5]
    assert sum(weekend) / len(weekend) < 0.85 * sum(weekday) / len(weekday)
    assert all(r["peak"] >= r["load"] for r in rows["load_profiles"])


def test_some_anomalies_and_deterministic():
    a = rows_by_table(DemoPlan(devices=20, days=2, sensor_days=2))
    assert 0 < sum(r["is_anomaly"] for r in a["sensor_data"]) < 0.02 * len(a["sensor_data"])
    b = rows_by_table(DemoPlan(devices=20, days=2, sensor_days=2))
    assert a["load_profiles"][:50] == b["load_profiles"][:50]


def test_the_schema_keeps_pelbiots_tables_and_its_duplicate_indexes():
    assert len(TABLE_NAMES) == 25
    md = build_metadata()
    users = {i.name: [c.name for c in i.columns] for i in md.tables["users"].indexes}
    assert users["idx_username"] == ["username"] and users["idx_email"] == ["email"]
    sqlite_md = build_metadata(sqlite=True)
    names = [i.name for t in sqlite_md.tables.values() for i in t.indexes]
    assert len(names) == len(set(names))  # SQLite: one namespace per database
    assert mysql_index_name("load_profiles__idx_device_id") == "idx_device_id"
