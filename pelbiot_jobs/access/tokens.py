"""API tokens: ``pelbiot-jobs api token create|list|revoke`` and the check of a Bearer token.

A token is ``pj_`` and 43 random URL-safe characters (256 bits), shown once when it is created;
the ops DB keeps only its SHA-256 (a fast hash is right for a random secret of this size: there
is nothing to guess from it). A token has a scope, ``read`` or ``write`` (write includes read),
an optional expiry, and records when it was last used (at most once a minute, so reads do not
write on every call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import insert, select, update

from ..db.engine import engine_for
from ..db.ops_models import api_tokens
from ..lib.clock import utcnow
from ..lib.errors import InputError, NotFound

PREFIX = "pj_"
SCOPES = ("read", "write")
#: A token's name: what `api token list` shows and what its writes are recorded under (api:<name>).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TOKEN = re.compile(r"pj_[A-Za-z0-9_-]{43}")
#: last_used_at is written at most this often per token.
TOUCH_EVERY = dt.timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(settings, name: str, scope: str, days: float | None = None, who: str | None = None,
           now: dt.datetime | None = None) -> dict:
    """A new token; the only time its value is returned."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError(f"token name {name!r:.80} is not valid: letters, digits, '.', '_' and '-', at most 64")
    if scope not in SCOPES:
        raise InputError(f"scope {scope!r:.40} is not valid: use read or write")
    if days is not None and not 0 < days <= 3650:
        raise InputError(f"--days {days:g} is not valid: from more than 0 to 3650")
    now = now or utcnow()
    token = PREFIX + secrets.token_urlsafe(32)
    expires = now + dt.timedelta(days=days) if days else None
    with engine_for(settings.ops_db_url).begin() as conn:
        if conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
            raise InputError(f"a token named {name} exists: revoke it first, or choose another name")
        conn.execute(insert(api_tokens).values(name=name, scope=scope, token_hash=_hash(token), created_at=now,
                                               created_by=who, expires_at=expires))
    return {"name": name, "scope": scope, "token": token, "expires_at": expires, "created_at": now}


def listing(settings) -> list[dict]:
    t = api_tokens.c
    with engine_for(settings.ops_db_url).connect() as conn:
        rows = conn.execute(select(t.name, t.scope, t.created_at, t.created_by, t.expires_at, t.last_used_at,
                                   t.revoked_at).order_by(t.name)).mappings().all()
    return [dict(r) for r in rows]


def revoke(settings, name: str, now: dt.datetime | None = None) -> dict:
    t = api_tokens.c
    with engine_for(settings.ops_db_url).begin() as conn:
        done = conn.execute(update(api_tokens).where(t.name == name, t.revoked_at.is_(None))
                            .values(revoked_at=now or utcnow())).rowcount
    if not done:
        raise NotFound(f"no live token named {name!r:.80} (`pelbiot-jobs api token list`)")
    return {"name": name, "revoked": True}


def check(settings, token: str, now: dt.datetime | None = None) -> dict | None:
    """The token's name and scope when it is live (not revoked, not expired), else None."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    digest = _hash(token)
    now = now or utcnow()
    t = api_tokens.c
    engine = engine_for(settings.ops_db_url)
    with engine.connect() as conn:
        row = conn.execute(select(api_tokens).where(t.token_hash == digest)).mappings().first()
    if row is None or not hmac.compare_digest(row["token_hash"], digest) or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY:
        with engine.begin() as conn:
            conn.execute(update(api_tokens).where(t.id == row["id"]).values(last_used_at=now))
    return {"name": row["name"], "scope": row["scope"]}
