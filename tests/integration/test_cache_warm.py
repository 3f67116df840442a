"""cache.warm on the real MariaDB with demo data and a real Redis, through a real worker."""

import json
import shutil
import time
import uuid
from dataclasses import replace

import pytest
import redis
from sqlalchemy import select, text

from pelbiot_jobs.cache.spec import parse_cache_file
from pelbiot_jobs.cache.warm import compute
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import cache_warm_runs
from pelbiot_jobs.jobs.service import wait_for_runs
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES
from pelbiot_jobs.runtime.app import configure
from pelbiot_jobs.runtime.headers import publishing

from .conftest import runs_of


@pytest.fixture
def demo(demo_app_db, ops_schema):
    return ops_schema


def send(app, name, **kwargs):
    task_id = str(uuid.uuid4())
    with publishing("cli"):
        app.tasks[name].apply_async(kwargs=kwargs, task_id=task_id)
    return task_id


def shipped_warmers():
    problems = []
    warmers = parse_cache_file(SHIPPED_SCHEDULES / "cache.yaml", problems)
    assert not problems
    return warmers


def test_every_shipped_key_holds_what_the_api_would_serve(app, worker, settings, demo):
    task_id = send(app, "cache.warm")
    row = wait_for_runs(engine_for(settings.ops_db_url), [task_id], 60)[task_id]
    assert row["state"] == "SUCCESS", row
    client = redis.Redis.from_url(settings.cache_redis_url)
    app_engine = engine_for(settings.app_db_url)
    checked = 0
    for warmer in shipped_warmers():
        expected = dict(compute(app_engine, warmer, utcnow()))  # what the query returns now
        assert expected, warmer.name
        for key, value in expected.items():
            raw = client.get(key)
            assert raw is not None, key
            body = json.loads(raw)
            assert body["success"] is True
            assert body == json.loads(value), key
            ttl = client.ttl(key)
            assert warmer.ttl - warmer.jitter - 5 <= ttl <= warmer.ttl + warmer.jitter, (key, ttl)
            checked += 1
    assert checked >= 11 + 19  # one key per device for devices.by_id
    devices = json.loads(client.get("route:/api/devices"))["data"]
    assert len(devices) == 20 and {"id", "name", "type", "status"} <= set(devices[0])
    with engine_for(settings.ops_db_url).connect() as conn:
        runs = conn.execute(select(cache_warm_runs).where(cache_warm_runs.c.run_id == task_id)).mappings().all()
    assert {r["warmer"] for r in runs} == {w.name for w in shipped_warmers()}
    assert all(r["error"] is None and r["keys"] >= 1 and r["bytes"] > 0 for r in runs)


def test_the_warm_transaction_is_read_only(settings, demo):
    from pelbiot_jobs.cache.spec import Warmer
    from pelbiot_jobs.db.readonly import read_only

    # The admin account may write: the transaction itself must refuse.
    with engine_for(settings.app_db_admin_url).connect() as conn, read_only(conn):
        with pytest.raises(Exception, match="READ ONLY"):
            conn.execute(text("UPDATE devices SET status = 'error' WHERE id = 1"))
    assert Warmer  # the parser keeps writes out; the transaction would refuse them anyway


def slow_schedules(tmp_path):
    folder = tmp_path / "schedules"
    folder.mkdir()
    shutil.copy(SHIPPED_SCHEDULES / "beat.yaml", folder / "beat.yaml")
    (folder / "cache.yaml").write_text(
        "warmers:\n  slow.one:\n    key: \"route:/test/slow\"\n    sql: SELECT COUNT(*) AS slept FROM devices a, devices b, devices c, load_profiles d\n    shape: first\n")
    return folder


def test_two_warm_runs_at_once_one_runs_one_is_skipped(app, worker, settings, demo, tmp_path):
    configure(replace(settings, schedules_dir=slow_schedules(tmp_path)))
    first, second = send(app, "cache.warm"), send(app, "cache.warm")
    rows = wait_for_runs(engine_for(settings.ops_db_url), [first, second], 60)
    assert sorted(r["state"] for r in rows.values()) == ["SKIPPED", "SUCCESS"]
    skipped = next(r for r in rows.values() if r["state"] == "SKIPPED")
    assert skipped["result"].startswith("another cache.warm run is in progress")


def test_redis_down_during_a_run_retries_and_keeps_the_previous_values(app, worker, settings, demo, tmp_path):
    from tests.conftest import PrivateRedis

    cache = PrivateRedis(tmp_path)
    cache.persist = True
    cache.start()
    try:
        cache_url = f"redis://127.0.0.1:{cache.port}/0"
        own = replace(settings, cache_redis_url=cache_url)
        configure(own)
        first = send(app, "cache.warm", warmer="system.health")
        assert wait_for_runs(engine_for(own.ops_db_url), [first], 60)[first]["state"] == "SUCCESS"
        client = redis.Redis.from_url(cache_url)
        before = client.get("route:/api/system/health")
        assert before is not None
        app_engine = engine_for(own.app_db_admin_url)  # the jobs' own account only reads
        with app_engine.begin() as conn:  # the data changes, so a new value would differ
            original = conn.execute(text("SELECT id, status FROM devices WHERE id <= 5")).all()
            conn.execute(text("UPDATE devices SET status = 'offline' WHERE id <= 5"))
        cache.stop()  # saves its data, like a restart would
        second = send(app, "cache.warm", warmer="system.health")
        # Wait for the first attempt to fail, then bring Redis back at once: the retry comes 2 s
        # after the failure, so what we read next is what the failed attempt left.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r["state"] == "RETRY" for r in runs_of(own, second)):
            time.sleep(0.05)
        assert [r["state"] for r in runs_of(own, second)][:1] == ["RETRY"]
        cache.start()
        assert client.get("route:/api/system/health") == before  # the failed run deleted nothing
        row = wait_for_runs(engine_for(own.ops_db_url), [second], 60)[second]
        assert row["state"] == "SUCCESS", row
        states = [r["state"] for r in runs_of(own, second)]
        assert states[0] == "RETRY" and states[-1] == "SUCCESS"
        after = json.loads(client.get("route:/api/system/health"))
        assert after != json.loads(before) and int(after["data"]["online_devices"]) <= 15
    finally:
        with engine_for(settings.app_db_admin_url).begin() as conn:
            for device_id, status in locals().get("original", []):
                conn.execute(text("UPDATE devices SET status = :s WHERE id = :i"), {"s": status, "i": device_id})
        if cache.process.poll() is None:
            cache.stop()
