"""Settings, read once from the environment (and ``./.env``), typed and validated.

With nothing set, everything runs on one machine with nothing to install: SQLite files and an
embedded Redis server whose socket lives under ``./var/``. Setting the URLs switches to
MySQL/MariaDB and a real Redis; nothing else changes.

A bad value raises ``ConfigError`` with one line naming the variable and what is allowed; the
command line turns it into exit code 2. URLs are only ever shown through ``mask_url``.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qs, urlsplit

from .lib.errors import ConfigError
from .lib.redact import mask_url, password_forms

PREFIX = "PELBIOT_"

#: Where the embedded default keeps its state, relative to the working directory.
DEFAULT_VAR_DIR = "var"
#: Where reports go unless PELBIOT_REPORTS_DIR says otherwise.
DEFAULT_REPORTS_DIR = "reports/out"
#: Redis database numbers on the embedded server: broker (noeviction) and cache apart.
EMBEDDED_BROKER_DB = 0
EMBEDDED_CACHE_DB = 1
#: A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, with the NUL).
MAX_SOCKET_PATH = 107

DB_SCHEMES = ("sqlite", "mysql+pymysql")
BROKER_SCHEMES = ("redis", "rediss", "redis+socket", "amqp", "pyamqp")
REDIS_SCHEMES = ("redis", "rediss", "unix")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None = None
    port: int = 587
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    sender: str = "pelbiot-jobs@localhost"
    recipients: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class FlowerSettings:
    """A server operators reach with a browser: Flower, and (a subclass) the web view."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    address: str = "127.0.0.1"
    port: int = 5555
    unauthenticated: bool = False


@dataclass(frozen=True)
class WebSettings(FlowerSettings):
    """The operator's web view (``pelbiot-jobs web``); without its own credentials it uses Flower's."""

    port: int = 8088


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything the project reads from its environment, resolved to concrete values."""

    app_db_url: str
    ops_db_url: str
    #: The account that may ALTER/INDEX/ANALYZE the app DB; None: index and ANALYZE work is refused.
    app_db_admin_url: str | None
    broker_url: str
    cache_redis_url: str
    result_backend_url: str
    schedules_dir: Path | None  # None: the shipped schedules (package data)
    reports_dir: Path
    var_dir: Path
    hostname: str
    embedded_redis: bool
    smtp: SmtpSettings
    flower: FlowerSettings
    web: WebSettings = field(default_factory=WebSettings)
    log_level: str = "INFO"
    worker_concurrency: int = 2
    visibility_timeout: int = 120
    # The Redis for leases, locks, heartbeats and dead letters when the broker is not Redis
    # (None: the cache Redis). Give one that never evicts (maxmemory-policy noeviction).
    lock_redis_url: str | None = None
    retention_job_runs_days: int = 30
    retention_table_stats_days: int = 400
    retention_samples_days: int = 14
    retention_rollups_days: int = 400
    retention_queries_days: int = 90  # query digests and their slices (who sent what)
    requests_stream: str | None = "pelbiot:requests"  # None: no stream source
    requests_redis_url: str = ""  # the Redis the API appends its request stream to
    access_log: Path | None = None
    slowlog_source: str = "auto"  # auto, file, table, performance_schema, off
    slow_log: Path | None = None
    slow_log_dir: Path | None = None  # queries.analyze may be given a file under it (path=...)
    show_query_literals: bool = False
    slow_threshold_ms: int = 1000
    report_recipients: dict = field(default_factory=dict)  # kind -> addresses (PELBIOT_REPORT_TO_<KIND>)
    retention_reports_days: int = 30
    index_window: str | None = None  # "02:00-05:00" UTC; None: any time
    index_max_table_mb: int = 10240
    index_max_load: int = 25
    index_critical_load: int = 50
    index_apply_advice: bool = False
    #: The app DB server's memory for the checks that weigh it (None: read when the server is on this host).
    app_db_memory_mb: int | None = None
    #: Who an operator's action is recorded as when no --by is given: SUDO_USER, else the login name.
    operator: str = "operator"
    #: Notification receivers by name: Apprise URLs from PELBIOT_RECEIVER_<NAME> (secrets: never shown).
    receivers: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:  # URLs carry passwords: never show them raw, even in a traceback
        fields = ", ".join(f"{k}={mask_url(v) if isinstance(v, str) else v!r}" for k, v in vars(self).items())
        return f"Settings({fields})"

    def admin_url(self, what: str) -> str:
        """The app DB account that may change the schema; ConfigError naming ``what`` needs it."""
        if not self.app_db_admin_url:
            raise ConfigError(f"{PREFIX}APP_DB_ADMIN_URL is not set: {what} needs an app DB account with ALTER, "
                              "INDEX and SELECT on mysql.innodb_table_stats (docs/security.md); nothing was done")
        return self.app_db_admin_url

    @property
    def app_db_embedded(self) -> bool:
        """True when the app DB is the embedded default's own SQLite file (the only one ever seeded)."""
        return self.app_db_url == f"sqlite:///{self.var_dir / 'app.db'}"

    @property
    def embedded_default(self) -> bool:
        """True when both databases are the embedded default's own SQLite files (nothing configured):
        the only case where demo rows are ever written."""
        return self.app_db_embedded and self.ops_db_url == f"sqlite:///{self.var_dir / 'ops.db'}"

    @property
    def embedded_socket(self) -> Path:
        return self.var_dir / "redis.sock"

    @property
    def broker_is_redis(self) -> bool:
        return self.broker_url.split(":", 1)[0] in ("redis", "rediss", "redis+socket")

    @property
    def coordination_redis_url(self) -> str:
        """The Redis that holds leases, locks and the beat schedule: the broker's (noeviction) if it
        is one; else PELBIOT_LOCK_REDIS_URL, else the cache Redis."""
        if not self.broker_is_redis:
            return self.lock_redis_url or self.cache_redis_url
        if self.broker_url.startswith("redis+socket://"):
            path = urlsplit(self.broker_url).path
            return f"unix://{path}?db={EMBEDDED_BROKER_DB}"
        return self.broker_url

    @property
    def host_queue(self) -> str:
        return f"host.{self.hostname}"

    def secrets(self) -> list[str]:
        """Every secret value configured, so that messages can be scrubbed of them."""
        found = [s for s in (self.smtp.password, self.flower.password, self.web.password) if s]
        for url in self.receivers.values():  # the whole URL and its tokens (a webhook's path is its key)
            found.append(url)
            found.extend(part for part in re.split(r"[/:@?&=]", url.split("://", 1)[-1])
                         if len(part) >= 6 and "." not in part)  # tokens, not host names
        for url in (self.app_db_url, self.app_db_admin_url or "", self.ops_db_url, self.broker_url, self.cache_redis_url,
                    self.result_backend_url, self.requests_redis_url, self.lock_redis_url or ""):
            rest = url.split("://", 1)[-1]
            userinfo = rest[:rest.rfind("@")] if "@" in rest else ""
            if ":" in userinfo:
                found.extend(password_forms(userinfo.split(":", 1)[1]))
        return sorted(set(found), key=len, reverse=True)

    def describe(self) -> dict[str, str]:
        """The settings as a user may see them: every URL masked."""
        return {
            "app database": mask_url(self.app_db_url),
            "app database (changes)": mask_url(self.app_db_admin_url) if self.app_db_admin_url else "not set",
            "ops database": mask_url(self.ops_db_url),
            "broker": mask_url(self.broker_url) + (" (embedded)" if self.embedded_redis else ""),
            "cache redis": mask_url(self.cache_redis_url),
            "schedules": str(self.schedules_dir or "shipped defaults"),
            "reports": str(self.reports_dir),
            "host queue": self.host_queue,
        }


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if k.startswith(PREFIX) and v is not None}


#: The largest file a PELBIOT_*_FILE variable may name (a secret, not a document).
MAX_SECRET_FILE = 64 * 1024


def _from_files(env: dict[str, str]) -> dict[str, str]:
    """Docker secrets: PELBIOT_X_FILE=/run/secrets/x gives PELBIOT_X the file's content (its last
    line end dropped), for every setting and receiver. Both set, or a file that cannot be read, is
    a ConfigError naming the variable and the file (never the content)."""
    out = dict(env)
    for key, path in env.items():
        if not (key.startswith(PREFIX) and key.endswith("_FILE")) or not path.strip():
            continue
        target = key[:-len("_FILE")]
        if env.get(target, "").strip():
            raise ConfigError(f"{target} and {key} are both set: set one")
        out[target] = _secret_file(key, path.strip()).removesuffix("\n").removesuffix("\r")
        del out[key]
    return out


def _secret_file(key: str, path: str) -> str:
    """The text of a secret file: a regular file (a symlink to one, as Kubernetes mounts them, is
    followed), at most MAX_SECRET_FILE bytes, UTF-8. A device (/dev/zero), a FIFO (it would block)
    or a directory is refused without reading; an error never quotes a byte of the content."""
    import os
    import stat

    def refuse(why: str) -> ConfigError:
        return ConfigError(f"{key}={path!r} is not valid: {why}")

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise refuse(exc.strerror or type(exc).__name__) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
            raise refuse(f"{kind}, not a regular file holding the secret")
        data = os.read(fd, MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise refuse(exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_FILE:
        raise refuse(f"the file is larger than {MAX_SECRET_FILE // 1024} KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("the file is not UTF-8 text") from None


class _Reader:
    """Typed access to PELBIOT_* variables; every error names the variable."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def fail(self, name: str, value: str, allowed: str) -> ConfigError:
        return ConfigError(f"{PREFIX}{name}={mask_url(value)!r} is not valid: {allowed}")

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise self.fail(name, value, "use true or false")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise self.fail(name, value, f"use a whole number from {low} to {high}")
        return number

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value.upper() not in allowed:
            raise self.fail(name, value, "use one of " + ", ".join(allowed))
        return value.upper()

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme == "mysql" and "mysql+pymysql" in schemes:
            # Only PyMySQL is installed; say so rather than fail later on a missing driver.
            value = "mysql+pymysql" + value[len("mysql"):]
            parts, scheme = urlsplit(value), "mysql+pymysql"
        if scheme not in schemes:
            raise self.fail(name, value, "use a URL starting with " + ", ".join(f"{s}://" for s in schemes))
        if scheme in ("sqlite", "unix", "redis+socket"):
            if not parts.path or parts.path == "/":
                raise self.fail(name, value, f"{scheme}:// needs a file path")
        else:
            if not parts.hostname:
                raise self.fail(name, value, "the URL names no host")
            try:
                parts.port
            except ValueError:
                raise self.fail(name, value, "the port is not a number from 1 to 65535") from None
        if scheme == "mysql+pymysql" and len(parts.path.strip("/")) == 0:
            raise self.fail(name, value, "name the database, e.g. mysql+pymysql://user:pw@host:3306/pelbiot")
        if scheme in ("redis", "rediss", "unix"):
            db = parts.path.strip("/") if scheme != "unix" else (parse_qs(parts.query).get("db") or ["0"])[0]
            if db and not db.isdigit():
                raise self.fail(name, value, "the Redis database must be a number, e.g. redis://host:6379/0")
        return value

    def path(self, name: str, default: Path | None) -> Path | None:
        value = self.raw(name)
        return Path(value).expanduser().resolve() if value else default

    def addresses(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        found = tuple(a.strip() for a in value.split(",") if a.strip())
        for address in found:
            if not re.fullmatch(r"[^@\s,]+@[^@\s,]+", address):
                raise self.fail(name, value, "use comma-separated e-mail addresses")
        return found


#: A notification receiver's name, as alerts.yaml names it; its URL is PELBIOT_RECEIVER_<NAME>.
RECEIVER_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")


def receiver_variable(name: str) -> str:
    return f"{PREFIX}RECEIVER_{name.upper().replace('-', '_')}"


def _receivers(r: "_Reader") -> dict[str, str]:
    """Every PELBIOT_RECEIVER_<NAME>: an Apprise URL (scheme://...), by its lower-case name."""
    out = {}
    for key in r.env:
        if not key.startswith(PREFIX + "RECEIVER_"):
            continue
        name = key[len(PREFIX + "RECEIVER_"):].lower().replace("_", "-")
        url = r.raw(key[len(PREFIX):])
        if url is None:
            continue
        if not RECEIVER_NAME.fullmatch(name) or not re.fullmatch(r"[a-z][a-z0-9+.-]{1,20}://\S+", url):
            raise ConfigError(f"{key} is not valid: name a receiver with letters, digits and '_' and give it an "
                              "Apprise URL such as json://host/path or slack://T/B/C (the value is not shown)")
        out[name] = url
    return out


def _listener(r: "_Reader", prefix: str, cls, what: str):
    """The settings of a server operators reach with a browser (Flower, the web view)."""
    found = cls(user=r.raw(f"{prefix}_USER"), password=r.raw(f"{prefix}_PASSWORD"),
                address=r.raw(f"{prefix}_ADDRESS") or _default("address", cls),
                port=r.integer(f"{prefix}_PORT", _default("port", cls), 1, 65535),
                unauthenticated=r.boolean(f"{prefix}_UNAUTHENTICATED", _default("unauthenticated", cls)))
    if bool(found.user) != bool(found.password):
        missing = f"{prefix}_PASSWORD" if found.user else f"{prefix}_USER"
        raise ConfigError(f"{PREFIX}{missing} is not set: {what} needs both a user and a password")
    return found


def _default(name: str, of: type | None = None):
    """A setting's default: written once, on its dataclass field (Settings unless ``of``)."""
    return (of or Settings).__dataclass_fields__[name].default


def _login(env: Mapping[str, str]) -> str:
    """The login name, as getpass.getuser() finds it, from ``env`` (not this process's environment)."""
    for key in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if env.get(key):
            return env[key]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return "operator"


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read and validate every setting; raise ``ConfigError`` on the first bad value."""
    cwd = (cwd or Path.cwd()).resolve()
    env = dict(_read_dotenv(cwd / ".env"))
    env.update(os.environ if environ is None else environ)
    env = _from_files(env)
    r = _Reader(env)

    var_dir = r.path("VAR_DIR", None) or cwd / DEFAULT_VAR_DIR
    app_db = r.url("APP_DB_URL", DB_SCHEMES) or f"sqlite:///{var_dir / 'app.db'}"
    app_admin = r.url("APP_DB_ADMIN_URL", DB_SCHEMES)
    if app_admin is None and app_db.startswith("sqlite:"):
        app_admin = app_db  # SQLite has no accounts: the one file is read and changed alike
    elif app_admin is not None and _same_database(app_db) != _same_database(app_admin):
        raise ConfigError(f"{PREFIX}APP_DB_ADMIN_URL={mask_url(app_admin)!r} is not valid: it must name the same "
                          f"server and database as {PREFIX}APP_DB_URL ({mask_url(app_db)}), with another account")
    ops_db = r.url("OPS_DB_URL", DB_SCHEMES) or f"sqlite:///{var_dir / 'ops.db'}"
    broker = r.url("BROKER_URL", BROKER_SCHEMES)
    cache = r.url("CACHE_REDIS_URL", REDIS_SCHEMES)
    result_backend = r.url("RESULT_BACKEND_URL", ("redis", "rediss", "redis+socket", "rpc"))

    embedded = broker is None
    if embedded:
        sock = var_dir / "redis.sock"
        if len(str(sock)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"{PREFIX}VAR_DIR={str(var_dir)!r} is not valid: the embedded Redis socket path would be "
                f"longer than {MAX_SOCKET_PATH} bytes; use a shorter folder")
        broker = f"redis+socket://{sock}?virtual_host={EMBEDDED_BROKER_DB}"
        cache = cache or f"unix://{sock}?db={EMBEDDED_CACHE_DB}"
    elif cache is None:
        if broker.split(":", 1)[0] not in ("redis", "rediss"):
            raise ConfigError(f"{PREFIX}CACHE_REDIS_URL is not set: it is required when "
                              f"{PREFIX}BROKER_URL is not a Redis URL (use redis://host:6379/1)")
        cache = broker  # same server; the cache keys live under their own prefixes
    if result_backend is None:
        if broker.split(":", 1)[0] in ("redis", "rediss", "redis+socket"):
            result_backend = broker
        else:
            result_backend = "rpc://"

    hostname = r.raw("HOSTNAME") or socket.gethostname().split(".")[0]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", hostname):
        raise r.fail("HOSTNAME", hostname, "use letters, digits, '-', '_' or '.' (at most 63)")

    smtp = SmtpSettings(
        host=r.raw("SMTP_HOST"),
        port=r.integer("SMTP_PORT", _default("port", SmtpSettings), 1, 65535),
        user=r.raw("SMTP_USER"),
        password=r.raw("SMTP_PASSWORD"),
        starttls=r.boolean("SMTP_STARTTLS", _default("starttls", SmtpSettings)),
        sender=r.raw("SMTP_FROM") or _default("sender", SmtpSettings),
        recipients=r.addresses("MAIL_TO"),
    )
    flower = _listener(r, "FLOWER", FlowerSettings, "Flower")
    web = _listener(r, "WEB", WebSettings, "the web view")

    return Settings(
        app_db_url=app_db,
        ops_db_url=ops_db,
        app_db_admin_url=app_admin,
        broker_url=broker,
        cache_redis_url=cache,
        lock_redis_url=r.url("LOCK_REDIS_URL", REDIS_SCHEMES),
        result_backend_url=result_backend,
        schedules_dir=r.path("SCHEDULES_DIR", None) or (cwd / "schedules" if (cwd / "schedules").is_dir() else None),
        reports_dir=r.path("REPORTS_DIR", None) or cwd / DEFAULT_REPORTS_DIR,
        var_dir=var_dir,
        hostname=hostname,
        embedded_redis=embedded,
        smtp=smtp,
        flower=flower,
        web=web,
        log_level=r.choice("LOG_LEVEL", _default("log_level"), LOG_LEVELS),
        worker_concurrency=r.integer("WORKER_CONCURRENCY", _default("worker_concurrency"), 1, 64),
        visibility_timeout=r.integer("VISIBILITY_TIMEOUT", _default("visibility_timeout"), 20, 3600),
        retention_job_runs_days=r.integer("RETENTION_JOB_RUNS_DAYS", _default("retention_job_runs_days"), 1, 3650),
        retention_table_stats_days=r.integer("RETENTION_TABLE_STATS_DAYS", _default("retention_table_stats_days"), 1, 3650),
        retention_samples_days=r.integer("RETENTION_SAMPLES_DAYS", _default("retention_samples_days"), 1, 3650),
        retention_rollups_days=r.integer("RETENTION_ROLLUPS_DAYS", _default("retention_rollups_days"), 1, 3650),
        retention_queries_days=r.integer("RETENTION_QUERIES_DAYS", _default("retention_queries_days"), 1, 3650),
        requests_stream=_stream_name(r),
        requests_redis_url=r.url("REQUESTS_REDIS_URL", REDIS_SCHEMES) or cache,
        access_log=r.path("ACCESS_LOG", None),
        slowlog_source=r.choice("SLOWLOG_SOURCE", "AUTO", ("AUTO", "FILE", "TABLE", "PERFORMANCE_SCHEMA",
                                                           "OFF")).lower(),
        slow_log=r.path("SLOW_LOG", None),
        slow_log_dir=r.path("SLOW_LOG_DIR", None),
        show_query_literals=r.boolean("SHOW_QUERY_LITERALS", _default("show_query_literals")),
        slow_threshold_ms=r.integer("SLOW_THRESHOLD_MS", _default("slow_threshold_ms"), 1, 3_600_000),
        report_recipients={kind: r.addresses(f"REPORT_TO_{kind.upper()}")
                           for kind in ("daily", "weekly", "monthly", "summary") if r.raw(f"REPORT_TO_{kind.upper()}")},
        retention_reports_days=r.integer("RETENTION_REPORTS_DAYS", _default("retention_reports_days"), 1, 3650),
        index_window=_window(r),
        index_max_table_mb=r.integer("INDEX_MAX_TABLE_MB", _default("index_max_table_mb"), 1, 10_000_000),
        index_max_load=r.integer("INDEX_MAX_LOAD", _default("index_max_load"), 1, 100_000),
        index_critical_load=r.integer("INDEX_CRITICAL_LOAD", _default("index_critical_load"), 1, 100_000),
        index_apply_advice=r.boolean("INDEX_APPLY_ADVICE", _default("index_apply_advice")),
        app_db_memory_mb=(r.integer("APP_DB_MEMORY_MB", 0, 64, 1 << 30) if r.raw("APP_DB_MEMORY_MB") is not None
                          else None),
        operator=env.get("SUDO_USER") or _login(env),
        receivers=_receivers(r),
    )


def _same_database(url: str) -> tuple:
    """What two URLs must share to name one database: scheme, host, port, database (not the account)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return ("sqlite", parts.path)
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or 3306, parts.path.strip("/"))


def _window(r: _Reader) -> str | None:
    value = r.raw("INDEX_WINDOW")
    if value is None:
        return None
    if not re.fullmatch(r"\d{2}:\d{2}-\d{2}:\d{2}", value):
        raise r.fail("INDEX_WINDOW", value, "use HH:MM-HH:MM in UTC, e.g. 02:00-05:00")
    return value


def _stream_name(r: _Reader) -> str | None:
    value = r.raw("REQUESTS_STREAM")
    if value is None:
        return "pelbiot:requests"
    if value.lower() in ("off", "none", "false"):
        return None
    if not re.fullmatch(r"[A-Za-z0-9:_.-]{1,200}", value):
        raise r.fail("REQUESTS_STREAM", value, "use a Redis key of letters, digits, ':', '_', '.', '-', or off")
    return value


def settings_environ(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process resolve to the same settings."""
    env = {
        "APP_DB_URL": settings.app_db_url,
        "OPS_DB_URL": settings.ops_db_url,
        "VAR_DIR": str(settings.var_dir),
        "REPORTS_DIR": str(settings.reports_dir),
        "HOSTNAME": settings.hostname,
        "LOG_LEVEL": settings.log_level,
    }
    if settings.app_db_admin_url and settings.app_db_admin_url != settings.app_db_url:
        env["APP_DB_ADMIN_URL"] = settings.app_db_admin_url
    if settings.slow_log:
        env["SLOW_LOG"] = str(settings.slow_log)
    if settings.slow_log_dir:
        env["SLOW_LOG_DIR"] = str(settings.slow_log_dir)
    if not settings.embedded_redis:
        env["BROKER_URL"] = settings.broker_url
        env["CACHE_REDIS_URL"] = settings.cache_redis_url
        env["RESULT_BACKEND_URL"] = settings.result_backend_url
    if settings.lock_redis_url:
        env["LOCK_REDIS_URL"] = settings.lock_redis_url
    if settings.schedules_dir:
        env["SCHEDULES_DIR"] = str(settings.schedules_dir)
    return {PREFIX + k: v for k, v in env.items()}

