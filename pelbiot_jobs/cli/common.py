"""What every command group shares: the exit codes, the failure of a command, rendering (one
table renderer, numbers, JSON), the arguments that recur, and preparing the local installation.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from ..lib.errors import InputError, PelbiotError, ServiceUnavailable
from ..lib.textsafe import cell

#: Exit codes.
EXIT_OK = 0
EXIT_FAILED = 1  # a job or command ran and failed
EXIT_USAGE = 2  # bad configuration, arguments, schedules or input files
EXIT_UNAVAILABLE = 3  # a required service (database, Redis, broker) does not answer
EXIT_INTERRUPTED = 130

#: How long ``up --once`` and ``run --wait`` wait for the runs they sent (s).
DEFAULT_WAIT = 600.0


class Fail(PelbiotError):
    """A command finished its work and found failures: exit 1 without a traceback."""


class Exit(Exception):
    """Leave with this exit code; what went wrong was already said (by a child process)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def run_apart(settings, fn):
    """Run ``fn(settings)`` in a forked child, wait for it, and return what it returned (JSON).

    What the child imports (Alembic, Celery and the task registry, the demo data's generator)
    never enters this process: ``up`` stays a small supervisor for as long as it runs. The child
    reports its own errors through the one error boundary; its exit code is raised here as ``Exit``.
    """
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's code
        os.close(read_end)
        code = EXIT_FAILED
        try:
            with os.fdopen(write_end, "w") as pipe:
                json.dump(fn(settings), pipe)
            code = EXIT_OK
        except BaseException as exc:  # noqa: B036
            from . import report

            code = report(settings, exc)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != EXIT_OK:
        raise Exit(code if code > 0 else EXIT_FAILED)
    return json.loads(text)


# --- rendering ----------------------------------------------------------------------------------

def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


#: ``--wide``: every column, nothing shortened (set by ``main`` from the option).
WIDE = False


def table(title: str | None, columns: list[str], rows: list[list[str]], empty: str | None = None,
          out=None, optional: tuple[str, ...] = (), flexible: str | None = None) -> None:
    """Print one table: every listing of the command line goes through here.

    Cells are rich markup: text from outside is passed through ``textsafe.cell`` by the caller.
    With no rows, ``empty`` is printed instead of an empty table (when given).

    The table fits the terminal as ``kubectl`` and ``gh`` fit theirs: no cell is ever split in
    the middle of a name or a time; when the table is wider than the terminal, the ``optional``
    columns are left out, first named first, and then the ``flexible`` one (a fingerprint, a
    message) is shortened with an ellipsis. ``--wide`` shows everything, whatever the width.
    """
    from rich.table import Table
    from rich.text import Text

    out = out or console()
    if not rows and empty:
        out.print(empty)
        return
    keep = list(range(len(columns)))
    if not WIDE:
        widths = [max([Text.from_markup(h).cell_len] + [Text.from_markup(str(r[i])).cell_len for r in rows])
                  for i, h in enumerate(columns)]

        def width(kept):  # each cell has one space either side and a border
            return sum(widths[i] + 3 for i in kept) + 1
        for name in optional:
            if width(keep) <= out.width:
                break
            keep = [i for i in keep if columns[i] != name]
        if flexible is None and width(keep) > out.width:  # the widest gives way, not every column
            flexible = columns[max(keep, key=lambda i: widths[i])]
    t = Table(title=title)
    if WIDE:
        for i in keep:
            t.add_column(columns[i], no_wrap=True)
    else:
        # Whole columns keep their width; the flexible one gets what is left (at least 12).
        spare = out.width - width([i for i in keep if columns[i] != flexible]) - 3
        for i in keep:
            if columns[i] == flexible:
                t.add_column(columns[i], no_wrap=True, overflow="ellipsis", width=max(min(12, widths[i]),
                                                                                      min(widths[i], spare)))
            else:
                t.add_column(columns[i], no_wrap=True, overflow="ellipsis")
    for row in rows:
        t.add_row(*(row[i] for i in keep))
    if WIDE:  # as wide as it is: the terminal (or less) folds the lines, never the table
        saved, out.width = out.width, 1_000_000
        try:
            out.print(t, crop=False)
        finally:
            out.width = saved
    else:
        out.print(t)
    dropped = [c for i, c in enumerate(columns) if i not in keep]
    if dropped:
        out.print(f"[dim]left out to fit {out.width} columns: {', '.join(dropped)} (--wide shows them)[/]")


def num(value) -> str:
    """A figure for a table: thousands separators, no trailing zeros, G/M for the large ones."""
    if value is None:
        return ""
    if abs(value) >= 1e9:
        return f"{value / 1e9:.2f}G"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f}M"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def state_cell(state: str | None) -> str:
    colour = {"SUCCESS": "green", "SKIPPED": "yellow", None: "dim"}.get(state, "red")
    return f"[{colour}]{state or 'never run'}[/]"


def outcome_rows(rows: list[tuple[str, dict | None]]) -> list[list[str]]:
    """Rows of the outcome table of runs waited for (``run --wait``, ``up --once``)."""
    out = []
    for name, row in rows:
        if row is None:
            out.append([cell(name), "[red]NOT RUN[/]", "", "no run recorded before the timeout"])
            continue
        duration = f"{row['duration_s']:.2f}s" if row.get("duration_s") is not None else ""
        out.append([cell(name), state_cell(row["state"]), duration,
                    cell(row.get("error") or row.get("result") or "")])
    return out


OUTCOME_COLUMNS = ["job", "state", "duration", "result / error"]


# --- arguments ------------------------------------------------------------------------------------

def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {value!r}")
    return number


def duration(option: str, value: str) -> float:
    """Seconds of a duration argument (15m, 2h, 1d), or InputError naming the option."""
    from ..lib.specfile import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise InputError(f"{option} {value!r}: {exc}") from None


def add_json(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--wide", action="store_true",
                        help="every column, nothing shortened, whatever the terminal's width")


def add_by(parser) -> None:
    parser.add_argument("--by", help="who is acting, recorded with the change (default: SUDO_USER or the login name)")


def who(settings, args) -> str:
    return args.by or settings.operator


def command(sub, name: str, fn, help: str, examples: str = "", reads: bool = False, **kwargs):
    """A subcommand with its help as description and its examples as epilog. ``reads``: it reads
    the ops DB and never creates one (``require_ops_db``)."""
    p = sub.add_parser(name, help=help, description=help, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=textwrap.dedent(examples) if examples else None, **kwargs)
    p.set_defaults(fn=fn, reads_ops=reads)
    return p


def read_command(sub, name: str, fn, help: str, examples: str = "", **kwargs):
    """A command that reads the ops DB (and never creates one)."""
    return command(sub, name, fn, help, examples, reads=True, **kwargs)


def require_ops_db(settings) -> None:
    """A read never creates a database: an ops DB file that is not there is one line saying which
    one was looked for (run from another folder, the embedded default looks in ./var)."""
    from pathlib import Path

    url = settings.ops_db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise InputError(f"no ops DB at {url.removeprefix('sqlite:///')}: run pelbiot-jobs in the folder where "
                         "`pelbiot-jobs up` ran (it keeps var/ there) or set PELBIOT_OPS_DB_URL; nothing was created")


def group(sub, name: str, help: str, examples: str = "", default=None, reads: bool = False):
    """A command with subcommands (``incidents list|show|ack|resolve``); ``default`` runs without one
    (``reads``: and reads the ops DB)."""
    p = command(sub, name, default, help, examples, reads=reads)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=default is None)
    return p, actions


# --- the local installation -----------------------------------------------------------------------

def prepare(settings, *, upgrade: bool = True):
    """Folders, the embedded Redis when in use, and (for commands that write) the ops schema.
    Returns the embedded Redis handle when this process started it."""
    from ..lib.paths import private_dir

    private_dir(settings.var_dir, follow=True)
    private_dir(settings.reports_dir, follow=True)
    embedded = None
    if settings.embedded_redis:
        from ..stack.embedded import ensure_running

        embedded = ensure_running(settings.var_dir)
    if upgrade:
        migrate_ops(settings)
    return embedded


def migrate_ops(settings) -> None:
    """Bring the ops schema up to date: only commands that write call this, never a read."""
    from ..db import service

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    service.upgrade(settings)


def require_broker(settings) -> None:
    if settings.embedded_redis:
        from ..stack.embedded import answers

        if not answers(settings.embedded_socket):
            raise ServiceUnavailable(
                f"the embedded broker is not running ({settings.embedded_socket}); "
                "start `pelbiot-jobs up` in another terminal, or add --local to run here")


def celery_app(settings, with_schedule: bool = False, deep: bool = True):
    from ..runtime.app import configure

    return configure(settings, with_schedule=with_schedule, deep=deep)

