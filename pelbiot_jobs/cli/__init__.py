"""The ``pelbiot-jobs`` command: thin faces over the services of each slice.

Each command group registers its own subcommands (cli/<group>.py); ``main`` parses, loads the
settings once and passes them in, and is the one place errors become a line on stderr and a
documented exit code.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..lib.errors import ConfigError, InputError, ScheduleError, ServiceUnavailable, is_transient, unreachable
from ..lib.redact import scrub
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE, Exit, Fail

#: The command groups (cli/<name>.py), in the order ``--help`` lists them.
GROUPS = ("processes", "jobs", "observe", "incidents", "queries", "reports", "indexes", "cache", "db", "api")
#: Commands run often from scripts whose group alone is loaded to parse them: `pelbiot-jobs
#: slowlog` on an hourly 4 MB log starts in a third less time without the other groups' imports.
#: (It reads no configuration either: a command that sets ``no_settings`` gets ``settings`` None.)
ALONE = {"slowlog": "queries"}

EPILOG = """\
examples:
  pelbiot-jobs up                         # worker + beat + Flower on the embedded default
  pelbiot-jobs up --once                  # a smoke test: the jobs that change nothing outside pelbiot-jobs, once
  pelbiot-jobs run db.table_stats --wait  # trigger a task by hand through the broker
  pelbiot-jobs run maintenance.retention --param job_runs_days=7 --local
  pelbiot-jobs status --json              # last run and next due time of every job
  pelbiot-jobs metrics --since 1h         # latest value and trend of every metric
  pelbiot-jobs incidents ack 12 --by alice
  pelbiot-jobs silence add cpu_high --host web1 --for 2h --reason 'reindexing'
  pelbiot-jobs schedules check            # validate schedules/*.yaml (exit 2 on problems)
  pelbiot-jobs demo-data --devices 50 --days 7
  pelbiot-jobs worker -Q maintenance -c 1 # production: a dedicated maintenance worker
  pelbiot-jobs db upgrade && pelbiot-jobs db check

exit codes: 0 ok, 1 a job or command failed, 2 bad configuration or input,
            3 a required service does not answer, 130 interrupted
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` (a group's name) that group's commands alone."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="pelbiot-jobs", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Scheduled jobs that tune, watch and report on a PELBIOT installation (Celery + MySQL + Redis).")
    parser.add_argument("--version", action="version", version=f"pelbiot-jobs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only else GROUPS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(ALONE.get(words[0]) if words else None)
    # worker, beat and flower pass the options they do not know to Celery/Flower.
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.celery_args = unknown
    settings = None
    from ..lib.paths import private_files

    private_files()  # outbox mails, reports, var/: for this user only (and for what up starts)
    try:
        if not getattr(args, "no_settings", False):  # files in, a report out: no settings, no logging set up
            from ..config import load_settings

            settings = load_settings()
            for folder in (settings.var_dir, settings.reports_dir):  # made by an earlier version, or by hand
                if folder.is_dir():
                    from ..lib.paths import private_dir

                    private_dir(folder, follow=True)
            from ..logs import setup_logging

            setup_logging(settings)
        if getattr(args, "wide", False):
            from . import common

            common.WIDE = True
        if getattr(args, "reads_ops", False) and settings is not None:
            from .common import require_ops_db

            require_ops_db(settings)
        return args.fn(settings, args)
    except BaseException as exc:  # noqa: B036 (SystemExit and KeyboardInterrupt are mapped too)
        return report(settings, exc)


def report(settings, exc: BaseException) -> int:
    """The one error boundary: print what went wrong in one line (never a secret); return the exit code."""
    if isinstance(exc, Exit):
        return exc.code
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    if isinstance(exc, ScheduleError):
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, (ConfigError, InputError)):
        return _error(settings, f"error: {exc}", EXIT_USAGE)
    if isinstance(exc, ServiceUnavailable):
        return _error(settings, f"error: {exc}", EXIT_UNAVAILABLE)
    if isinstance(exc, Fail):
        return _error(settings, str(exc), EXIT_FAILED)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if not isinstance(exc, Exception):
        raise exc
    return _unexpected(settings, exc)


def _error(settings, text: str, code: int) -> int:
    print(f"pelbiot-jobs: {scrub(text, settings.secrets() if settings else [])}", file=sys.stderr)
    return code


def _unexpected(settings, exc: BaseException) -> int:
    """An exception no command turned into a line: name the kind of trouble, never a secret."""
    from ..lib.errors import auth_failure, one_line

    secrets = settings.secrets() if settings else []
    if auth_failure(exc):
        from ..lib.errors import refused_settings

        names = refused_settings(exc, database_urls(settings)) if settings is not None else []
        which = " or ".join(names) if names else "the PELBIOT_*_URL settings"
        return _error(settings, f"error: the server refuses the account or database of {which}: "
                                f"{one_line(exc, secrets)}", EXIT_USAGE)
    if _schema_missing(exc):
        return _error(settings, "error: the ops database is not at this version's schema (run `pelbiot-jobs db "
                                f"upgrade`, or start `pelbiot-jobs up`): {one_line(getattr(exc, 'orig', exc), secrets)}",
                      EXIT_USAGE)
    if is_transient(exc) or unreachable(exc):
        return _error(settings, f"error: a service does not answer: {one_line(exc, secrets)}", EXIT_UNAVAILABLE)
    if settings is None and not isinstance(exc, ImportError):  # a command that reads no settings: now, for the level
        try:
            from ..config import load_settings

            settings = load_settings()
        except Exception:  # noqa: BLE001 (the error being reported matters, not this one)
            pass
    if settings is not None and settings.log_level == "DEBUG":
        import traceback

        traceback.print_exc()  # secrets are never in settings' repr; DEBUG is asked for
    return _error(settings, f"internal error: {one_line(exc, secrets)} (PELBIOT_LOG_LEVEL=DEBUG shows the "
                            "traceback)", EXIT_FAILED)


def database_urls(settings) -> dict[str, str]:
    """The database settings by name, for naming the one a server refused."""
    return {"PELBIOT_APP_DB_URL": settings.app_db_url, "PELBIOT_APP_DB_ADMIN_URL": settings.app_db_admin_url or "",
            "PELBIOT_OPS_DB_URL": settings.ops_db_url}


def _schema_missing(exc: BaseException) -> bool:
    """A read of an ops table that does not exist yet (read commands never migrate)."""
    text = str(exc)
    return type(exc).__name__ in ("OperationalError", "ProgrammingError") and (
        "no such table" in text or "no such column" in text or "(1146," in text or "(1054," in text)


if __name__ == "__main__":
    sys.exit(main())
