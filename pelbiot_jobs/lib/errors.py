"""One error hierarchy.

``TransientError`` means "the world was briefly unavailable, try again": tasks retry it with
backoff. Everything else fails fast with a message a user can act on. The command line maps
each branch to a documented exit code (see ``cli.EXIT_*``).
"""

from __future__ import annotations


class PelbiotError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(PelbiotError):
    """A setting is missing or has a value that is not allowed (exit code 2)."""


class InputError(PelbiotError):
    """A file, argument or spec given by the user is invalid (exit code 2)."""


class NotFound(InputError):
    """What was asked for by its id or name is not there (exit code 2; the web view's 404)."""


class ScheduleError(InputError):
    """One or more schedule files are invalid; ``problems`` holds ``FILE:LINE: message`` lines."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ServiceUnavailable(PelbiotError):
    """A required service (database, Redis, broker) does not answer (exit code 3)."""


class TransientError(PelbiotError):
    """A failure that is expected to go away by itself; Celery retries it with backoff."""


#: MySQL/MariaDB error codes that mean "try again": lost connection, server gone, cannot
#: connect, lock wait timeout, deadlock, too many connections, server shutting down.
TRANSIENT_MYSQL_CODES = frozenset({1040, 1053, 1205, 1213, 2003, 2006, 2013, 2055})


#: MySQL/MariaDB error codes that mean "the configuration is wrong": access denied (bad password,
#: no grant), unknown database.
CONFIG_MYSQL_CODES = frozenset({1044, 1045, 1049, 1698})
#: Words with which Redis and RabbitMQ refuse credentials.
_AUTH_WORDS = ("WRONGPASS", "NOAUTH", "invalid username-password", "invalid password", "ACCESS_REFUSED",
               "Authentication required", "AuthenticationError")


def auth_failure(exc: BaseException) -> bool:
    """Tell whether ``exc`` (or what caused it) is a service refusing the configured credentials or database."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        orig = getattr(exc, "orig", None)
        code = orig.args[0] if orig is not None and getattr(orig, "args", None) else None
        if isinstance(code, int) and code in CONFIG_MYSQL_CODES:
            return True
        text = f"{type(exc).__name__}: {exc}"
        if any(word.lower() in text.lower() for word in _AUTH_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def refused_settings(exc: BaseException, urls: dict[str, str]) -> list[str]:
    """The settings (of ``urls``: name -> URL) whose account or database a MySQL/MariaDB server
    refused in ``exc``: the user named in "Access denied for user 'x'@...", or the database in
    "Unknown database 'x'", matched against each URL; every database URL when it cannot tell."""
    import re
    from urllib.parse import unquote, urlsplit

    text = " ".join(f"{e}" for e in (exc, getattr(exc, "orig", None), exc.__cause__) if e is not None)
    user = re.search(r"for user '([^']*)'@", text)
    database = re.search(r"Unknown database '([^']*)'", text)
    names = []
    for name, url in urls.items():
        if not url or not url.startswith("mysql"):
            continue
        parts = urlsplit(url)
        if (user and unquote(parts.username or "") == user.group(1)) or \
                (database and parts.path.lstrip("/").split("?")[0] == database.group(1)):
            names.append(name)
    return names or [name for name, url in urls.items() if url and url.startswith("mysql")]


def is_transient(exc: BaseException) -> bool:
    """Tell whether ``exc`` is worth a retry (network blips, deadlocks, restarts)."""
    if auth_failure(exc):
        return False  # a wrong password does not fix itself: fail fast
    if isinstance(exc, TransientError):
        return True
    # Imported here so this module stays importable without the service clients.
    import redis.exceptions
    import sqlalchemy.exc

    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                        redis.exceptions.BusyLoadingError)):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = getattr(exc, "orig", None)
        code = orig.args[0] if orig is not None and orig.args else None
        if isinstance(code, int) and code in TRANSIENT_MYSQL_CODES:
            return True
        if "database is locked" in str(orig):  # SQLite writer contention
            return True
    return isinstance(exc, (ConnectionError, TimeoutError))


#: Longest error text kept (job runs, attempts, one-line messages).
MAX_TEXT = 1000


def one_line(exc: BaseException, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``Type: message`` on one line, scrubbed of secrets, at most MAX_TEXT characters."""
    from .redact import scrub

    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = " ".join(text.split())
    return scrub(text, secrets)[:MAX_TEXT]


def unreachable(exc: BaseException) -> bool:
    """A connection that could not be made (kombu and SQLAlchemy wrap the socket errors)."""
    import sqlalchemy.exc

    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"OperationalError", "InterfaceError", "ConnectionError", "ConnectionRefusedError",
                         "TimeoutError", "gaierror", "RecoverableConnectionError"}) or \
        isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))
