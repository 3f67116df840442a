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
