"""Helpers more than one test file uses: a real SMTP server with an inbox, pt-query-digest as the
oracle of the slow-log digest, and a MariaDB connection."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest


class Inbox:
    """What a real SMTP server (aiosmtpd) received, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def wait(self, count: int, timeout: float = 30):
        """The ``count``-th message, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.1)
        assert len(self.messages) >= count, [m["Subject"] for m in self.messages]
        return self.messages[count - 1]


def smtp_server(port: int, inbox=None):
    """Start an SMTP server on 127.0.0.1:``port``; return (controller, inbox). Stop the controller after."""
    from aiosmtpd.controller import Controller

    inbox = inbox or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


def pt_query_digest(path: Path) -> dict:
    """{query ID: count} as pt-query-digest finds them in ``path``: the oracle of our digest."""
    pt = shutil.which("pt-query-digest")
    if pt is None:
        pytest.fail("pt-query-digest is not installed: `make test` installs percona-toolkit (apt-get)", pytrace=False)
    out = subprocess.run([pt, "--output", "json", "--limit", "100%:100000", str(path)], capture_output=True,
                         check=True).stdout
    return {c["checksum"]: int(c["query_count"]) for c in json.loads(out)["classes"]}


def mysql(database: str | None = None, autocommit: bool = True):
    """A connection to the test MariaDB server as its administrator (PELBIOT_TEST_MYSQL_*)."""
    import pymysql

    from tests.conftest import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER

    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD,
                           database=database, autocommit=autocommit)


def open_incident(ops_url: str, host: str, value: float = 97.0) -> int:
    """A firing cpu_high on ``host`` in the ops DB: a sample over the threshold, evaluated once."""
    from sqlalchemy import insert, select

    from pelbiot_jobs.clock import utcnow
    from pelbiot_jobs.db.engine import engine_for
    from pelbiot_jobs.db.ops_models import incidents, metric_samples
    from pelbiot_jobs.health.engine import evaluate
    from pelbiot_jobs.health.rules import Rule

    rule = Rule("cpu_high", "host.cpu_percent", ">", 80, aggregate="last", window=120, for_s=0,
                clear_threshold=70, clear_for_s=0, severity="critical")
    engine = engine_for(ops_url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(metric_samples).values(metric="host.cpu_percent", host=host, ts=now, value=value))
    evaluate(engine, [rule], {"repeat_interval": 3600, "cooldown": 0, "recipients": []}, now)
    with engine.connect() as conn:
        return conn.execute(select(incidents.c.id).where(incidents.c.host == host)).scalar_one()
