"""Alerts to chat and webhook receivers (Apprise), through the real tasks on a real worker, to HTTP
receivers started here: a JSON webhook and a Slack-shaped one (Mattermost's incoming webhook,
which takes Slack's payload). Fired, repeated and resolved notices arrive once each; a receiver
that is down is retried with backoff without holding up the others, and gets each notice once
when it is back."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import insert, select, update

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import alert_states, metric_samples, notification_attempts
from pelbiot_jobs.jobs.service import wait_for_runs
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES
from pelbiot_jobs.runtime.app import configure
from pelbiot_jobs.runtime.headers import publishing
from tests.conftest import free_port, service_env

RULES = """\
notify:
  cooldown: 0s
  repeat_interval: 1h
  receivers: [hook, chat, down]
  report_receivers: [hook]
rules:
  receivers_test_high:   # a rule of its own: no other test's alert state joins in
    metric: host.receivers_test_percent   # only this test samples it: no other test's host joins in
    aggregate: last
    window: 30s
    op: ">"
    threshold: 80
    clear_threshold: 70
    for: 2s
    clear_for: 0s
    severity: critical
  receivers_test_routed:   # this rule names its own receivers
    metric: host.receivers_test_routed
    aggregate: last
    window: 30s
    op: ">"
    threshold: 80
    for: 0s
    severity: warning
    receivers: [hook]
"""


class Receiver:
    """An HTTP server that keeps every POST: (path, JSON body)."""

    def __init__(self, port: int = 0):
        self.posts: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def texts(self, path: str) -> list[str]:
        return [b.get("title") or b.get("text") or "" for p, b in self.posts if p == path]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.fixture
def receivers(ops_schema, redis_url, tmp_path):
    live, dead_port = Receiver(), free_port()
    folder = tmp_path / "schedules"
    folder.mkdir()
    shutil.copy(SHIPPED_SCHEDULES / "beat.yaml", folder / "beat.yaml")
    (folder / "alerts.yaml").write_text(RULES)
    env = service_env(ops_schema, redis_url, tmp_path) | {
        "PELBIOT_SCHEDULES_DIR": str(folder),
        "PELBIOT_RECEIVER_HOOK": f"json://127.0.0.1:{live.port}/hook",
        "PELBIOT_RECEIVER_CHAT": f"mmost://127.0.0.1:{live.port}/tokenchat1234",
        "PELBIOT_RECEIVER_DOWN": f"json://127.0.0.1:{dead_port}/down"}
    settings = load_settings(env, cwd=tmp_path)
    configure(settings)
    yield settings, live, dead_port
    live.stop()


def evaluate(app, settings):
    task_id = str(uuid.uuid4())
    with publishing("cli"):
        app.tasks["alerts.evaluate"].apply_async(task_id=task_id)
    assert wait_for_runs(engine_for(settings.ops_db_url), [task_id], 60)[task_id]["state"] == "SUCCESS"


def sample(settings, host, value):
    with engine_for(settings.ops_db_url).begin() as conn:
        conn.execute(insert(metric_samples).values(metric="host.receivers_test_percent", host=host, ts=utcnow(),
                                                   value=value))


def move_back(settings, host, column, seconds):
    """Move an alert's timestamp back instead of sleeping (the rule's `for`, the repeat interval)."""
    a = alert_states.c
    with engine_for(settings.ops_db_url).begin() as conn:
        value = conn.execute(select(a[column]).where(a.rule == "receivers_test_high", a.host == host)).scalar_one()
        conn.execute(update(alert_states).where(a.rule == "receivers_test_high", a.host == host)
                     .values({column: value - dt.timedelta(seconds=seconds)}))


def attempts(settings, receiver):
    n = notification_attempts.c
    with engine_for(settings.ops_db_url).connect() as conn:
        return [dict(r) for r in conn.execute(select(notification_attempts).where(n.receiver == receiver)
                                              .order_by(n.id)).mappings()]


def test_fired_repeated_and_resolved_reach_every_receiver_once(app, worker, receivers):
    settings, live, dead_port = receivers
    host = f"chat-{uuid.uuid4().hex[:6]}"
    sample(settings, host, 95.0)
    evaluate(app, settings)
    move_back(settings, host, "since", 3)
    sample(settings, host, 96.0)
    evaluate(app, settings)  # fired
    wait_for(lambda: len(live.texts("/hook")) == 1 and len(live.texts("/hooks/tokenchat1234")) == 1, 30,
             "the fired notice at both live receivers")
    assert "FIRING" in live.texts("/hook")[0] and host in live.texts("/hook")[0]
    assert "FIRING" in live.texts("/hooks/tokenchat1234")[0]  # Slack's payload: {"text": ...}

    # The dead receiver is retried with backoff; the others were not held up by it.
    wait_for(lambda: len(attempts(settings, "down")) >= 2, 30, "two failed attempts at the dead receiver")
    failed = attempts(settings, "down")
    assert all(a["outcome"] == "failed" for a in failed)
    assert all(f"{dead_port}/down" not in a["detail"] for a in failed)  # the URL is a secret

    move_back(settings, host, "last_notified_at", 3700)
    sample(settings, host, 97.0)
    evaluate(app, settings)  # still firing after the repeat interval: a reminder
    wait_for(lambda: len(live.texts("/hook")) == 2, 30, "the reminder")
    assert "STILL FIRING" in live.texts("/hook")[1]

    sample(settings, host, 10.0)
    evaluate(app, settings)  # resolved
    wait_for(lambda: len(live.texts("/hook")) == 3 and len(live.texts("/hooks/tokenchat1234")) == 3, 30,
             "the resolved notice")
    assert "RESOLVED" in live.texts("/hook")[2] and "RESOLVED" in live.texts("/hooks/tokenchat1234")[2]

    back = Receiver(dead_port)  # the dead receiver comes back: each notice arrives, once
    try:
        wait_for(lambda: len(back.texts("/down")) >= 3, 90, "the three notices at the receiver that was down")
        time.sleep(3)
        texts = back.texts("/down")
        assert len(texts) == 3 and sum("RESOLVED" in t for t in texts) == 1
    finally:
        back.stop()
    time.sleep(2)  # nothing more arrives at the others either
    assert len(live.texts("/hook")) == 3 and len(live.texts("/hooks/tokenchat1234")) == 3
    assert [a["outcome"] for a in attempts(settings, "hook")] == ["sent"] * 3


def test_a_report_reaches_its_receivers_once(app, worker, receivers):
    settings, live, _ = receivers
    task_id = str(uuid.uuid4())
    with publishing("cli"):
        app.tasks["reports.export"].apply_async(kwargs={"kind": "daily", "email": True}, task_id=task_id)
    row = wait_for_runs(engine_for(settings.ops_db_url), [task_id], 120)[task_id]
    assert row["state"] == "SUCCESS", row
    wait_for(lambda: any("daily report" in t for t in live.texts("/hook")), 30, "the report at the webhook")
    time.sleep(2)
    notices = [b for p, b in live.posts if p == "/hook" and "daily report" in b.get("title", "")]
    assert len(notices) == 1 and "Files: " in notices[0]["message"]
    assert not any(p == "/hooks/tokenchat1234" for p, _ in live.posts)  # only the receivers named for reports


def test_a_rule_naming_its_receivers_reaches_only_them(app, worker, receivers):
    settings, live, _ = receivers
    host = f"routed-{uuid.uuid4().hex[:6]}"
    with engine_for(settings.ops_db_url).begin() as conn:
        conn.execute(insert(metric_samples).values(metric="host.receivers_test_routed", host=host, ts=utcnow(),
                                                   value=99.0))
    evaluate(app, settings)
    wait_for(lambda: any(host in b.get("message", "") for p, b in live.posts if p == "/hook"), 30,
             "the routed notice at the webhook")
    time.sleep(3)  # give the others every chance to (wrongly) get it
    assert [p for p, b in live.posts if host in json.dumps(b)] == ["/hook"]
    n = notification_attempts.c
    with engine_for(settings.ops_db_url).connect() as conn:
        told = {r.receiver for r in conn.execute(select(n.receiver).where(n.receiver.is_not(None)))}
    assert "hook" in told
