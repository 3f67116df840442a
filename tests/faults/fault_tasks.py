"""Tasks the fault tests run in a real worker: each writes what it did to ``fault_log`` in the ops DB.

``faults.work`` logs its start, sleeps, logs its end: a run that starts twice while the first is
alive, or a key that never ends, is visible from the database. ``faults.effect`` does an effect
once through effects.py (the way report and alert e-mails are sent), then sleeps.
"""

import os
import time

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.runtime import effects
from pelbiot_jobs.runtime.app import app
from pelbiot_jobs.runtime.params import Float, Name

metadata = MetaData()
fault_log = Table(
    "fault_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
    Column("task_id", String(64)),
    Column("event", String(16), nullable=False),  # start, end, effect
    Column("pid", Integer),
    Column("at", DateTime(timezone=False), nullable=False),
)


def log(key: str, event: str, task_id: str | None) -> None:
    with engine_for(app.pelbiot_settings.ops_db_url).begin() as conn:
        conn.execute(insert(fault_log).values(key=key, task_id=task_id, event=event, pid=os.getpid(), at=utcnow()))


@app.task(name="faults.work", bind=True, soft_time_limit=280, time_limit=300,
          params={"key": Name(), "seconds": Float(0, 250)})
def work(self, key: str, seconds: float = 1.0) -> dict:
    return _sleep_logged(self, key, seconds)


def _sleep_logged(task, key: str, seconds: float) -> dict:
    log(key, "start", task.request.id)
    time.sleep(seconds)
    log(key, "end", task.request.id)
    return {"key": key}


@app.task(name="faults.effect", bind=True, params={"key": Name(), "seconds": Float(0, 250)})
def effect(self, key: str, seconds: float = 1.0) -> dict:
    log(key, "start", self.request.id)
    claim_key = f"fault-effect:{self.request.id}"
    if effects.claim(app.pelbiot_settings, claim_key, "a fault test's effect", self.request.id) != effects.DONE:
        log(key, "effect", self.request.id)
        effects.done(app.pelbiot_settings, claim_key)
    time.sleep(seconds)  # the kill lands here: after the effect, before the ack
    log(key, "end", self.request.id)
    return {"key": key}


@app.task(name="faults.exclusive", bind=True, exclusive=True, soft_time_limit=280, time_limit=300,
          params={"key": Name(), "seconds": Float(0, 250)})
def exclusive(self, key: str, seconds: float = 1.0) -> dict:
    return _sleep_logged(self, key, seconds)


@app.task(name="faults.flaky", bind=True, backoff_max=2.0, params={"key": Name()})
def flaky(self, key: str) -> dict:
    """Fails with a transient error on its first attempt: its retry goes through a countdown."""
    import redis

    log(key, "start", self.request.id)
    if not self.request.retries:
        raise redis.exceptions.ConnectionError("Error 111 connecting to cache:6379. Connection refused.")
    log(key, "end", self.request.id)
    return {"key": key, "attempts": self.request.retries + 1}


@app.task(name="faults.mail", bind=True, params={"key": Name()})
def mail(self, key: str) -> dict:
    """An e-mail sent once through effects.py, as alert and report mails are: a run killed after
    the send and before the record sends it again with the same Message-ID."""
    from pelbiot_jobs.lib.mail import build_message, deliver

    settings = app.pelbiot_settings
    log(key, "start", self.request.id)
    claim_key = f"fault-mail:{self.request.id}"  # one e-mail per message, whatever its copies
    if effects.claim(settings, claim_key, "a chaos run's e-mail", self.request.id) != effects.DONE:
        msg = build_message(settings, ["ops@example.com"], f"chaos {key}", "a chaos run's e-mail\n")
        msg.replace_header("Message-ID", effects.message_id(claim_key))
        deliver(settings, msg)
        log(key, "effect", self.request.id)
        effects.done(settings, claim_key)
    log(key, "end", self.request.id)
    return {"key": key}
