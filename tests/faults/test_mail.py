"""A report's e-mail when the worker dies during the SMTP conversation: the mail server gets it again
with the same Message-ID (one message in the reader's mail client), and the effect is recorded done."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from sqlalchemy import select

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import effects
from tests.conftest import free_port
from tests.helpers import Inbox, smtp_server

from .conftest import Stack, record, stack_env


class SlowInbox(Inbox):
    """Keeps each message, then waits before saying 250: the sender can be killed in between."""

    def __init__(self):
        super().__init__()
        self.delay = 6.0

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return reply


def test_a_report_mail_cut_off_mid_smtp_is_sent_again_as_the_same_message(fault_dbs, broker, tmp_path):
    port = free_port()
    server, inbox = smtp_server(port, SlowInbox())
    stack = Stack(stack_env(fault_dbs, broker, tmp_path, PELBIOT_SMTP_HOST="127.0.0.1", PELBIOT_SMTP_PORT=str(port),
                            PELBIOT_SMTP_STARTTLS="false", PELBIOT_MAIL_TO="ops@example.com"), tmp_path, broker)
    try:
        worker = stack.worker("w1", concurrency=1)
        task_id = stack.send("reports.export", queue="reports", kind="daily")
        deadline = time.monotonic() + 120
        while not inbox.messages:  # the server has the message; its 250 has not been sent yet
            assert time.monotonic() < deadline and worker.poll() is None, stack.tail(worker)
            time.sleep(0.1)
        for child in stack.pool_children(worker):
            os.kill(child, signal.SIGKILL)
        killed = time.monotonic()
        inbox.delay = 0
        key = f"report-mail:{task_id}"

        def done():
            with engine_for(stack.settings.ops_db_url).connect() as conn:
                return conn.execute(select(effects).where(effects.c.effect_key == key)).mappings().first()

        row = stack.wait(lambda: (r := done()) and r["state"] == "done" and r, 120, "the e-mail recorded as sent", worker)
        recovered = time.monotonic() - killed
        ids = {m["Message-ID"] for m in inbox.messages}
        assert len(inbox.messages) == 2 and len(ids) == 1, ids  # sent again, as the same message
        assert row["attempts"] == 2
        time.sleep(3)
        assert len(inbox.messages) == 2  # and not a third time
        stack.wait(lambda: stack.runs(task_id)[-1]["state"] == "SUCCESS", 30, "the run recorded as SUCCESS")
        record("kill -9 of the pool child during a report e-mail's SMTP conversation "
               "(sent again with the same Message-ID)", 2, 0, 0, recovered)
    finally:
        stack.stop_all()
        server.stop()
