"""Two beat processes against one Redis: each due job fires once per tick, not twice, and the
standby takes over when the active one stops."""

import json
import os
import signal
import subprocess
import sys
import time

import redis

from tests.conftest import clean_environ, service_env

RUN_SECONDS = 7


def start_beat(env, log):
    return subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "beat"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def sent_messages(client):
    """Messages beat put on the maintenance queue (no worker consumes them here)."""
    messages = [json.loads(m) for m in client.lrange("maintenance", 0, -1)]
    return [m["headers"] for m in messages]


def wait_for_text(path, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def test_two_beats_fire_each_tick_once_and_the_standby_takes_over(mariadb, redis_url, tmp_path):
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "beat.yaml").write_text("jobs:\n  db.table_stats:\n    every: 1s\n    queue: maintenance\n")
    env = clean_environ() | service_env(mariadb, redis_url, tmp_path) | {"PELBIOT_SCHEDULES_DIR": str(schedules)}
    logs = [tmp_path / "beat-a.log", tmp_path / "beat-b.log"]
    beats = []
    try:
        for log in logs:
            beats.append(start_beat(env, open(log, "wb")))
            time.sleep(1.0)
        assert wait_for_text(logs[0], "Acquired lock", 30), logs[0].read_text()
        time.sleep(RUN_SECONDS)
        client = redis.Redis.from_url(redis_url)
        headers = sent_messages(client)
        due_times = [h["pelbiot_scheduled_at"] for h in headers]
        # One message per tick: no due time sent twice, about one per second.
        assert len(due_times) == len(set(due_times)), due_times
        assert RUN_SECONDS - 2 <= len(due_times) <= RUN_SECONDS + 4, due_times
        assert all(h["pelbiot_trigger"] == "beat" and h["pelbiot_job"] == "db.table_stats" for h in headers)
        assert "Acquired lock" not in logs[1].read_text(errors="replace")  # B stood by

        # A stops (and releases its lock): B takes over and the ticks go on, still once each.
        beats[0].send_signal(signal.SIGTERM)
        beats[0].wait(30)
        assert wait_for_text(logs[1], "Acquired lock", 40), logs[1].read_text()
        count_at_takeover = len(sent_messages(client))
        time.sleep(3)
        due_times = [h["pelbiot_scheduled_at"] for h in sent_messages(client)]
        assert len(due_times) > count_at_takeover
        assert len(due_times) == len(set(due_times))
    finally:
        for beat in beats:
            if beat.poll() is None:
                os.killpg(beat.pid, signal.SIGTERM)
                beat.wait(30)


def test_status_shows_the_next_due_time_from_beats_own_last_send(ops_schema, redis_url, tmp_path):
    """`status` reads when RedBeat last sent each job from its entries, and computes the next due
    time from that and the schedule."""
    import datetime as dt

    from tests.e2e.conftest import pj

    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "beat.yaml").write_text("jobs:\n  db.table_stats:\n    cron: '0 3 * * *'\n    queue: maintenance\n"
                                         "  maintenance.retention:\n    every: 1h\n    queue: maintenance\n")
    env = clean_environ() | service_env(ops_schema, redis_url, tmp_path) | {"PELBIOT_SCHEDULES_DIR": str(schedules)}
    log = tmp_path / "beat.log"
    beat = start_beat(env, open(log, "wb"))
    try:
        assert wait_for_text(log, "Acquired lock", 30), log.read_text()
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(30)
    client = redis.Redis.from_url(redis_url)
    key = "pelbiot:redbeat:maintenance.retention"
    assert client.hget(key, "definition")  # beat wrote its entries
    sent = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=20)
    client.hset(key, "meta", json.dumps({"last_run_at": {"__type__": "datetime", "year": sent.year, "month": sent.month,
                                                         "day": sent.day, "hour": sent.hour, "minute": sent.minute,
                                                         "second": sent.second, "microsecond": 0, "timezone": "UTC"},
                                         "total_run_count": 1}))
    done = pj("status", "--json", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    jobs = {j["name"]: j for j in json.loads(done.stdout)["jobs"]}
    assert dt.datetime.fromisoformat(jobs["maintenance.retention"]["next_due"]) == sent + dt.timedelta(hours=1)
    daily = dt.datetime.fromisoformat(jobs["db.table_stats"]["next_due"])
    assert (daily.hour, daily.minute, daily.second) == (3, 0, 0)
