"""Slow queries offline: ``slowlog`` digests files like pt-query-digest, no database needed."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from ..errors import InputError
from .common import EXIT_OK, command, console, positive


def register(sub) -> None:
    p = command(sub, "slowlog", cmd_slowlog, "digest slow-log files offline, like pt-query-digest (no database needed)",
                "examples:\n  pelbiot-jobs slowlog /var/log/mysql/slow.log\n"
                "  pelbiot-jobs slowlog slow.log.1.gz slow.log --format json --limit 20 > digest.json\n"
                "  pelbiot-jobs slowlog slow.log --since 2026-11-28T00:00 --format html --output digest.html\n"
                "  pelbiot-jobs slowlog slow.log --format html --explain --output digest.html   # EXPLAIN on the app DB\n")
    p.add_argument("files", nargs="+", metavar="FILE", help="slow log files, plain or .gz")
    p.add_argument("--format", choices=("text", "json", "csv", "html"), default="text", help="output format")
    p.add_argument("--limit", type=positive, help="only the N classes with the most total time")
    p.add_argument("--since", help="only events at or after this time (ISO 8601, UTC unless given)")
    p.add_argument("--output", help="write here instead of standard output")
    p.add_argument("--workers", type=positive, help="processes (default: every core)")
    p.add_argument("--show-literals", action="store_true",
                   help="show example queries with their literal values (masked by default)")
    p.add_argument("--explain", nargs="?", const="", metavar="DATABASE_URL",
                   help="EXPLAIN the 10 classes with the most time on this database (default: the app DB, "
                        "PELBIOT_APP_DB_URL); only examples proven plain reads are explained")


def cmd_slowlog(settings, args) -> int:
    from ..queries.service import digest_logs, render_digest, slow_log_input

    paths = [slow_log_input(name) for name in args.files]
    if args.output and any(Path(args.output).exists() and Path(args.output).samefile(p) for p in paths):
        raise InputError(f"--output {args.output}: that is an input file; name another file")
    since = None
    if args.since:
        try:
            when = dt.datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"--since {args.since!r}: use an ISO 8601 time, e.g. 2026-11-28T10:00") from None
        since = (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()
    total = sum(p.stat().st_size for p in paths)
    if total > 50 << 20 and sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(console=console(stderr=True), transient=True) as bar:
            task = bar.add_task("digesting", total=total)
            digest = digest_logs(paths, args.workers, since, progress=lambda done: bar.update(task, completed=done))
    else:
        digest = digest_logs(paths, args.workers, since)
    explain_url = None
    if args.explain is not None:
        explain_url = args.explain or settings.app_db_url
    summary, text = render_digest(digest, args.limit, args.show_literals, args.format,
                                  title=", ".join(str(p) for p in paths), explain_url=explain_url)
    if args.output:
        write_atomically(Path(args.output), text)
        print(f"{len(summary['classes'])} classes of {summary['global']['query_count']} events written to "
              f"{args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if digest.skipped:
        print(f"pelbiot-jobs: {digest.skipped} malformed or truncated events skipped", file=sys.stderr)
    return EXIT_OK


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it: never a half-written output."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file would be, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
