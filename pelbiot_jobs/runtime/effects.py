"""Effects outside pelbiot-jobs (an e-mail sent) done once, even when a task runs again.

A task's message is handed out again when its worker dies before the ack, so a task may run a
second time after its first run did part of its work. Before such an effect, the task claims it
in ``ops_effects`` under a key naming it (the task id and what it is); after, it marks it done.
A run that finds the effect done skips it. A run that finds it claimed but not done knows the
first run died while doing it: it does it again with the same identity (an e-mail keeps its
Message-ID, which mail clients use to show one message), and the row counts the attempts.
When the ops DB does not answer, the claim fails and the effect is not done (the task retries).
"""

from __future__ import annotations

from sqlalchemy import select, update

from ..db.engine import engine_for
from ..db.ops_models import effects
from ..lib.clock import utcnow

NEW, DONE, INTERRUPTED = "new", "done", "interrupted"


def claim(settings, key: str, what: str, task_id: str | None) -> str:
    """NEW (do it), DONE (skip it) or INTERRUPTED (an earlier run died doing it: do it again)."""
    e = effects.c
    with engine_for(settings.ops_db_url).begin() as conn:
        row = conn.execute(select(e.state).where(e.effect_key == key).with_for_update()).first()
        if row is None:
            conn.execute(effects.insert().values(effect_key=key, task_id=task_id, what=what[:255], state="claimed",
                                                 claimed_at=utcnow(), attempts=1))
            return NEW
        if row.state == "done":
            return DONE
        conn.execute(update(effects).where(e.effect_key == key).values(attempts=e.attempts + 1, claimed_at=utcnow()))
        return INTERRUPTED


def state(settings, key: str) -> str | None:
    """"claimed", "done", or None when nothing was claimed under ``key``."""
    with engine_for(settings.ops_db_url).connect() as conn:
        return conn.execute(select(effects.c.state).where(effects.c.effect_key == key)).scalar()


def done(settings, key: str, detail: str | None = None, conn=None) -> None:
    """Mark the effect done; inside ``conn``'s transaction when given (atomic with the caller's record)."""
    stmt = update(effects).where(effects.c.effect_key == key).values(
        state="done", done_at=utcnow(), detail=(detail or "")[:1000] or None)
    if conn is not None:
        conn.execute(stmt)
        return
    with engine_for(settings.ops_db_url).begin() as own:
        own.execute(stmt)


def message_id(key: str) -> str:
    """A Message-ID that is the same for every attempt at the same effect."""
    import hashlib

    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@pelbiot-jobs>"
