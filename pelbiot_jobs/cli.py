"""The ``pelbiot-jobs`` command.

Errors are caught in one place (``main``): one line on stderr and a documented exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

from . import __version__
from .config import Settings, load_settings, mask_url, scrub
from .errors import ConfigError, InputError, PelbiotError, ScheduleError, ServiceUnavailable, is_transient
from .textsafe import cell, plain
from rich.markup import escape

#: Exit codes.
EXIT_OK = 0
EXIT_FAILED = 1  # a job or command ran and failed
EXIT_USAGE = 2  # bad configuration, arguments, schedules or input files
EXIT_UNAVAILABLE = 3  # a required service (database, Redis, broker) does not answer
EXIT_INTERRUPTED = 130

#: How long ``up --once`` and ``run --wait`` wait for the runs they sent (s).
DEFAULT_WAIT = 600.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

EPILOG = """\
examples:
  pelbiot-jobs up                         # worker + beat + Flower on the embedded default
  pelbiot-jobs up --once                  # a smoke test: the jobs that change nothing outside pelbiot-jobs, once
  pelbiot-jobs run db.table_stats --wait  # trigger a task by hand through the broker
  pelbiot-jobs run maintenance.retention --param job_runs_days=7 --local
  pelbiot-jobs status --json              # last run and next due time of every job
  pelbiot-jobs metrics --since 1h         # latest value and trend of every metric
  pelbiot-jobs schedules check            # validate schedules/*.yaml (exit 2 on problems)
  pelbiot-jobs demo-data --devices 50 --days 7
  pelbiot-jobs worker -Q maintenance -c 1 # production: a dedicated maintenance worker
  pelbiot-jobs db upgrade && pelbiot-jobs db check

exit codes: 0 ok, 1 a job or command failed, 2 bad configuration or input,
            3 a required service does not answer, 130 interrupted
"""


class Fail(PelbiotError):
    """A command finished its work and found failures: exit 1 without a traceback."""


def _console():
    from rich.console import Console

    return Console()


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def _prepare(settings: Settings, *, upgrade: bool = True):
    """Folders, the embedded Redis when in use, and the ops schema; return the embedded handle."""
    from .db import migrate

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    embedded = None
    if settings.embedded_redis:
        from .embedded import ensure_running

        embedded = ensure_running(settings.var_dir)
    if upgrade:
        migrate.upgrade(settings.ops_db_url)
    return embedded


def _require_broker(settings: Settings) -> None:
    if settings.embedded_redis:
        from .embedded import answers

        if not answers(settings.embedded_socket):
            raise ServiceUnavailable(
                f"the embedded broker is not running ({settings.embedded_socket}); "
                "start `pelbiot-jobs up` in another terminal, or add --local to run here")


def _app(settings: Settings, with_schedule: bool = False):
    from .celery_app import configure

    return configure(settings, with_schedule=with_schedule)


# --- commands ---------------------------------------------------------------------------------

def cmd_schedules_check(settings: Settings, args) -> int:
    from .celery_app import SHIPPED_SCHEDULES, task_names
    from .scheduling import BEAT_FILE, check_dir, parse_beat

    directory = Path(args.dir).resolve() if args.dir else (settings.schedules_dir or SHIPPED_SCHEDULES)
    problems = check_dir(directory, task_names())
    if problems:
        raise ScheduleError(problems)
    jobs = parse_beat(directory / BEAT_FILE, task_names(), [])
    print(f"{directory}: ok ({len(jobs)} jobs, {sum(j.enabled for j in jobs)} enabled)")
    return EXIT_OK


def cmd_db(settings: Settings, args) -> int:
    from .db import migrate

    url = settings.ops_db_url
    if args.action == "upgrade":
        migrate.upgrade(url)
        print(f"ops database {mask_url(url)} is at revision {migrate.current(url)}")
    elif args.action == "check":
        migrate.check(url)
        print(f"ops database {mask_url(url)}: models and migrations agree (revision {migrate.current(url)})")
    elif args.action == "current":
        print(migrate.current(url) or "empty (run `pelbiot-jobs db upgrade`)")
    elif args.action == "advise":
        from .db.engine import engine_for
        from .db.tuning import advise, facts
        from .indexes.live import read_schema
        from .indexes.plan import plan

        engine = engine_for(settings.app_db_url)
        if engine.dialect.name == "sqlite":
            raise InputError("db advise reads a MySQL/MariaDB server; the app DB is SQLite")
        f = facts(engine)
        advice = advise(f, plan([], read_schema(engine))["duplicates"])
        if args.json:
            _print_json({"recommendations": advice, "facts": f})
        else:
            for a in advice:
                print(f"[{a['severity']}] {a['message']}")
            if not advice:
                print("no recommendation: buffer pool, connections, temporary tables, primary keys and indexes look fine")
    elif args.action == "downgrade":
        migrate.downgrade(url, args.revision)
        print(f"ops database {mask_url(url)} is at revision {migrate.current(url) or 'base'}")
    return EXIT_OK


def cmd_demo_data(settings: Settings, args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .db.demo import DemoPlan, seed
    from .db.engine import make_engine

    plan = DemoPlan(devices=args.devices, days=args.days, sensor_days=args.sensor_days, seed=args.seed)
    total = sum(plan.row_counts().values())
    engine = make_engine(settings.app_db_url)
    started = time.monotonic()
    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=not sys.stderr.isatty(), console=_stderr_console()) as bar:
        task = bar.add_task("demo data", total=total)

        def progress(table: str, rows: int) -> None:
            bar.update(task, advance=rows, description=table)

        written = seed(engine, plan, progress=progress)
    engine.dispose()
    print(f"demo data in {mask_url(settings.app_db_url)}: {sum(written.values()):,} rows in "
          f"{len(written)} tables ({time.monotonic() - started:.1f}s)")
    return EXIT_OK


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _parse_params(pairs: list[str]) -> dict:
    import yaml

    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise InputError(f"--param {pair!r} is not KEY=VALUE (KEY a Python identifier)")
        try:
            params[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            params[key] = value
    return params


def _outcome_table(rows: list[tuple[str, dict | None]], title: str):
    from rich.table import Table

    table = Table(title=title)
    for col in ("job", "state", "duration", "result / error"):
        table.add_column(col, overflow="fold")
    for name, row in rows:
        if row is None:
            table.add_row(cell(name), "[red]NOT RUN[/]", "", "no run recorded before the timeout")
            continue
        colour = {"SUCCESS": "green", "SKIPPED": "yellow"}.get(row["state"], "red")
        duration = f"{row['duration_s']:.2f}s" if row.get("duration_s") is not None else ""
        table.add_row(cell(name), f"[{colour}]{row['state']}[/]", duration,
                      cell((row.get("error") or row.get("result") or "")[:200]))
    return table


def cmd_run(settings: Settings, args) -> int:
    from .db.engine import engine_for
    from .runs import is_skipped, publishing
    from .status import wait_for_runs
    from .supervisor import new_task_id

    app = _app(settings)
    task = app.tasks.get(args.task)
    if task is None or args.task.startswith("celery."):
        known = ", ".join(sorted(n for n in app.tasks if not n.startswith("celery.")))
        raise InputError(f"unknown task {args.task!r} (known: {known})")
    from .params import check_params

    params = _parse_params(args.param)
    check_params(task.name, task.params, (), params)  # the task checks again; say it here, exit 2
    task_id = new_task_id()
    if args.local:
        from .db import migrate

        migrate.upgrade(settings.ops_db_url)
        result = task.apply(kwargs=params, task_id=task_id)
        value = result.result
        if result.failed():
            raise Fail(f"{args.task} failed: {scrub(f'{type(value).__name__}: {value}', settings.secrets())}")
        state = "SKIPPED" if is_skipped(value) else "SUCCESS"
        if args.json:
            _print_json({"task_id": task_id, "state": state, "result": value})
        else:
            print(f"{args.task} [{task_id}] {state}: {json.dumps(value, default=str)}")
        return EXIT_OK
    _require_broker(settings)
    from .db import migrate

    migrate.upgrade(settings.ops_db_url)  # --wait reads ops_job_runs; a new ops DB may not have it yet
    with publishing("cli"):
        task.apply_async(kwargs=params, task_id=task_id)
    if not args.wait:
        if args.json:
            _print_json({"task_id": task_id, "state": "SENT"})
        else:
            print(f"sent {args.task} [{task_id}]; follow it in Flower or with `pelbiot-jobs status`")
        return EXIT_OK
    row = wait_for_runs(engine_for(settings.ops_db_url), [task_id], args.timeout).get(task_id)
    if args.json:
        _print_json({"task_id": task_id, **(row or {"state": "TIMEOUT"})})
    else:
        _console().print(_outcome_table([(args.task, row)], title=f"{args.task} [{task_id}]"))
    if row is None or row["state"] not in ("SUCCESS", "SKIPPED"):
        raise Fail(f"{args.task} did not succeed: " + (row["error"] or row["state"] if row else
                                                       f"no final state within {args.timeout:.0f}s"))
    return EXIT_OK


def cmd_status(settings: Settings, args) -> int:
    from .celery_app import load_jobs
    from .db import migrate
    from .db.engine import engine_for
    from .runs import utcnow
    from .status import job_status

    migrate.upgrade(settings.ops_db_url)
    jobs = load_jobs(settings)
    beat_last_run, workers, broker_error = {}, [], None
    broker_up = not settings.embedded_redis or _embedded_answers(settings)
    if broker_up and not args.offline:
        app = _app(settings)
        beat_last_run = _redbeat_last_run(app, jobs)
        try:
            if settings.broker_is_redis and not args.ping:
                # The heartbeats workers write every 5 s: one Redis read, no broadcast to wait for.
                from .liveness import workers as heartbeats
                from .runs import coordination_redis

                workers = sorted(w.get("node", "?") for w in heartbeats(coordination_redis(settings)))
            else:
                workers = sorted(name for reply in app.control.ping(timeout=1.0) for name in reply)
        except Exception as exc:
            from .errors import auth_failure
            from .runs import one_line

            if auth_failure(exc):
                raise ConfigError(f"the broker refused the configured account (PELBIOT_BROKER_URL): "
                                  f"{one_line(exc, settings.secrets())}") from None
            broker_error = f"the broker does not answer: {one_line(exc, settings.secrets())}"
    dead = _dead_letters(settings) if broker_up and not broker_error and not args.offline else None
    rows = job_status(engine_for(settings.ops_db_url), jobs, utcnow(), beat_last_run)
    if args.json:
        _print_json({"jobs": rows, "workers": workers, "settings": settings.describe(),
                     **({"dead_letters": dead} if dead is not None else {}),
                     **({"broker_error": broker_error} if broker_error else {})})
        return EXIT_UNAVAILABLE if broker_error else EXIT_OK
    from rich.table import Table

    table = Table(title="pelbiot-jobs status (UTC)")
    for col in ("job", "schedule", "last state", "last finished", "duration", "next due"):
        table.add_column(col, overflow="fold")
    for r in rows:
        colour = {"SUCCESS": "green", "SKIPPED": "yellow", None: "dim"}.get(r["last_state"], "red")
        table.add_row(cell(r["name"] + ("" if r["enabled"] else " (disabled)")), cell(r["schedule"]),
                      f"[{colour}]{r['last_state'] or 'never run'}[/]", (r["last_finished"] or "")[:19],
                      f"{r['last_duration_s']:.2f}s" if r["last_duration_s"] is not None else "",
                      (r["next_due"] or "")[:19])
    console = _console()
    console.print(table)
    console.print(f"workers online: {', '.join(workers) if workers else 'none answered'}")
    if dead and dead["count"]:
        newest = dead["newest"][0]
        console.print(f"[red]dead letters: {dead['count']}[/] messages on the queues were not tasks and were moved "
                      f"to the Redis list pelbiot:deadletter (newest: queue {cell(newest['queue'])}, "
                      f"{cell(newest['reason'])}); `status --json` lists them")
    if broker_error:
        print(f"pelbiot-jobs: error: {broker_error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_OK


def cmd_metrics(settings: Settings, args) -> int:
    from .db import migrate
    from .db.engine import engine_for
    from .metrics.view import read_metrics
    from .runs import utcnow
    from .scheduling import parse_duration

    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        raise InputError(f"--since {args.since!r}: {exc}") from None
    migrate.upgrade(settings.ops_db_url)
    data = read_metrics(engine_for(settings.ops_db_url), utcnow() - dt.timedelta(seconds=window), args.host)
    if args.json:
        _print_json(data)
        return EXIT_OK
    from rich.table import Table

    console = _console()
    if not data["metrics"] and not data["requests"]:
        console.print(f"no samples in the last {args.since}" + (f" for host {args.host}" if args.host else "")
                      + "; is `pelbiot-jobs up` (or a worker and beat) running?")
        return EXIT_OK
    table = Table(title=f"metrics, last {args.since} (UTC)")
    for col in ("host", "metric", "latest", "min", "max", "trend"):
        table.add_column(col, overflow="fold")
    for m in data["metrics"]:
        table.add_row(cell(m["host"]), cell(m["metric"]), "n/a" if m["not_applicable"] else _num(m["latest"]),
                      _num(m["min"]), _num(m["max"]), m["trend"])
    console.print(table)
    if data["requests"]:
        req = Table(title="API requests per minute")
        for col in ("minute", "source", "requests", "5xx", "error %", "p50 ms", "p95 ms", "p99 ms", "slowest"):
            req.add_column(col, overflow="fold")
        for r in data["requests"][-15:]:
            slowest = r["slowest_routes"][0]["route"] if r["slowest_routes"] else ""
            req.add_row(r["minute"][11:16], cell(r["source"]), str(r["requests"]), str(r["c5xx"]),
                        _num(r["error_rate_percent"]), _num(r["p50_ms"]), _num(r["p95_ms"]), _num(r["p99_ms"]), slowest)
        console.print(req)
    return EXIT_OK


def cmd_cache(settings: Settings, args) -> int:
    from .cache.tasks import load_warmers
    from .cache.writer import invalidate, invalidation_problem
    from .metrics.tasks import cache_redis

    pattern = args.pattern
    namespaces = {w.namespace for w in load_warmers(settings)}
    problem = invalidation_problem(pattern, namespaces)
    if problem:
        raise InputError(problem)
    if settings.embedded_redis:
        _require_broker(settings)
    count = invalidate(cache_redis(settings.cache_redis_url), pattern, namespaces, dry_run=args.dry_run)
    verb = "would unlink" if args.dry_run else "unlinked"
    if args.json:
        _print_json({"pattern": pattern, "keys": count, "dry_run": args.dry_run})
    else:
        print(f"{verb} {count} keys matching {pattern!r} (SCAN + UNLINK)")
    return EXIT_OK


def cmd_health(settings: Settings, args) -> int:
    from sqlalchemy import select

    from .db import migrate
    from .db.engine import engine_for
    from .db.ops_models import health_scores
    from .metrics.view import sparkline

    migrate.upgrade(settings.ops_db_url)
    h = health_scores.c
    with engine_for(settings.ops_db_url).connect() as conn:
        latest_ts = conn.execute(select(h.ts).order_by(h.ts.desc()).limit(1)).scalar()
        rows = [] if latest_ts is None else conn.execute(select(health_scores).where(h.ts == latest_ts)
                                                          .order_by(h.host)).mappings().all()
        trend = conn.execute(select(h.ts, h.score).where(h.host == "*").order_by(h.ts.desc()).limit(60)).all()
    scores = [{"host": r["host"], "ts": r["ts"].isoformat() + "Z", "score": r["score"], "status": r["status"],
               "present": r["present"], **json.loads(r["components"])} for r in rows]
    overall = next((s for s in scores if s["host"] == "*"), None)
    if args.json:
        _print_json({"overall": overall, "hosts": [s for s in scores if s["host"] != "*"],
                     "trend": [{"ts": t.isoformat() + "Z", "score": v} for t, v in reversed(trend)]})
        return EXIT_OK
    console = _console()
    if overall is None:
        console.print("no health score yet; health.score runs every minute once `pelbiot-jobs up` is running")
        return EXIT_OK
    from rich.table import Table

    colour = {"EXCELLENT": "green", "GOOD": "green", "WARNING": "yellow"}.get(overall["status"], "red")
    console.print(f"health [{colour}]{_num(overall['score']) if overall['score'] is not None else '-'} "
                  f"{overall['status']}[/] at {overall['ts'][:16]} UTC, resting on {overall['present']} of "
                  f"{overall['of']} components; last hour {sparkline([v for _, v in reversed(trend)])}")
    table = Table()
    for col in ("host", "score", "status", *(c["name"] for c in overall["components"])):
        table.add_column(col)
    for s in scores:
        parts = [("missing" if c["missing"] else f"{_num(c['value'])} → {_num(c['score'])}") for c in s["components"]]
        table.add_row("all" if s["host"] == "*" else cell(s["host"]), _num(s["score"]) if s["score"] is not None else "-",
                      s["status"], *parts)
    console.print(table)
    return EXIT_OK


def _who(args) -> str:
    import getpass

    return args.by or os.environ.get("SUDO_USER") or getpass.getuser()


def cmd_incidents(settings: Settings, args) -> int:
    from sqlalchemy import select

    from .db import migrate
    from .db.engine import engine_for
    from .db.ops_models import incident_events, incidents
    from .health.engine import acknowledge, resolve_by_hand
    from .runs import utcnow

    migrate.upgrade(settings.ops_db_url)
    engine = engine_for(settings.ops_db_url)
    if args.action in ("ack", "resolve", "show") and args.id is None:
        raise InputError(f"incidents {args.action} needs an incident ID")
    if args.action == "ack":
        result = acknowledge(engine, args.id, _who(args), utcnow(), hold=args.hold)
    elif args.action == "resolve":
        result = resolve_by_hand(engine, args.id, _who(args), utcnow())
    else:
        i = incidents.c
        with engine.connect() as conn:
            if args.action == "show":
                row = conn.execute(select(incidents).where(i.id == args.id)).mappings().first()
                if row is None:
                    raise InputError(f"no incident #{args.id}")
                events = conn.execute(select(incident_events).where(incident_events.c.incident_id == args.id)
                                      .order_by(incident_events.c.at, incident_events.c.id)).mappings().all()
                result = {**dict(row), "events": [dict(e) for e in events]}
            else:
                query = select(incidents).order_by(i.id.desc()).limit(args.limit)
                if not args.all:
                    query = query.where(i.status != "resolved")
                result = [dict(r) for r in conn.execute(query).mappings()]
    if args.json:
        _print_json(result)
        return EXIT_OK
    if args.action in ("ack", "resolve"):
        print(f"incident #{result['id']} {result['status']} by {result['by']}")
    elif args.action == "show":
        print(plain(f"#{result['id']} {result['status']} {result['severity']} {result['summary']}"))
        print(f"opened {result['opened_at']:%Y-%m-%d %H:%M:%S} UTC" + (
            f", resolved {result['resolved_at']:%Y-%m-%d %H:%M:%S} by {result['resolved_by']}"
            if result["resolved_at"] else ""))
        for e in result["events"]:
            print(plain(f"  {e['at']:%Y-%m-%d %H:%M:%S}  {e['kind']:<12} {e['actor']:<14} {e['detail'] or ''}"))
    else:
        from rich.table import Table

        table = Table(title="incidents" + ("" if args.all else " (open and acknowledged; --all for every one)"))
        for col in ("id", "status", "severity", "rule", "host", "opened (UTC)", "acknowledged by", "last value"):
            table.add_column(col)
        for r in result:
            table.add_row(str(r["id"]), cell(r["status"]), cell(r["severity"]), cell(r["rule"]), cell(r["host"]),
                          f"{r['opened_at']:%Y-%m-%d %H:%M}", cell(r["acknowledged_by"] or ""), _num(r["last_value"]))
        _console().print(table)
    return EXIT_OK


def cmd_silence(settings: Settings, args) -> int:
    from .db import migrate
    from .db.engine import engine_for
    from .health.engine import add_silence
    from .health.tasks import load_alerts
    from .runs import utcnow
    from .scheduling import parse_duration

    rules, _ = load_alerts(settings)
    names = sorted(r.name for r in rules)
    if args.rule not in names:
        raise InputError(f"unknown rule {args.rule!r} (rules: {', '.join(names) or 'none'})")
    try:
        seconds = parse_duration(args.for_)
    except ValueError as exc:
        raise InputError(f"--for {args.for_!r}: {exc}") from None
    migrate.upgrade(settings.ops_db_url)
    now = utcnow()
    until = now + dt.timedelta(seconds=seconds)
    silence_id = add_silence(engine_for(settings.ops_db_url), args.rule, args.host, until, _who(args), now,
                             args.reason)
    if args.json:
        _print_json({"id": silence_id, "rule": args.rule, "host": args.host, "until": until.isoformat() + "Z"})
    else:
        print(f"silence #{silence_id}: {args.rule}" + (f" on {args.host}" if args.host else " on every host")
              + f" muted until {until:%Y-%m-%d %H:%M} UTC")
    return EXIT_OK


def cmd_slowlog(settings: Settings, args) -> int:
    from .queries.digest import digest_files, summarize
    from .queries.report import render

    paths = [_slow_log_input(name) for name in args.files]
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

        with Progress(console=_stderr_console(), transient=True) as bar:
            task = bar.add_task("digesting", total=total)
            digest = _digest_or_fail(digest_files, paths, args.workers, since,
                                     progress=lambda done: bar.update(task, completed=done))
    else:
        digest = _digest_or_fail(digest_files, paths, args.workers, since)
    summary = summarize(digest, limit=args.limit, mask_example=not args.show_literals)
    text = render(summary, args.format)
    if args.output:
        _write_atomically(Path(args.output), text)
        print(f"{len(summary['classes'])} classes of {summary['global']['query_count']} events written to "
              f"{args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if digest.skipped:
        print(f"pelbiot-jobs: {digest.skipped} malformed or truncated events skipped", file=sys.stderr)
    return EXIT_OK


#: A slow-log line longer than this is not a slow log (a query this long would not be logged whole).
MAX_SLOWLOG_LINE = 32 << 20


def _slow_log_input(name: str) -> Path:
    """A file ``slowlog`` may read, or InputError in one line saying why not."""
    path = Path(name)
    if path.is_dir():
        raise InputError(f"{name}: is a directory; name slow-log files")
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{name}: cannot read the file (permission denied)")
    if not name.endswith(".gz"):
        with path.open("rb") as fh:  # one cheap pass (memchr): a file without line breaks is not a log
            run = 0
            while chunk := fh.read(8 << 20):
                first = chunk.find(b"\n")
                if first == -1:
                    run += len(chunk)
                elif run + first > MAX_SLOWLOG_LINE:
                    run += first
                else:  # lines inside one chunk are shorter than the chunk, itself below the limit
                    run = len(chunk) - chunk.rfind(b"\n") - 1
                if run > MAX_SLOWLOG_LINE:
                    raise InputError(f"{name}: a line is longer than {MAX_SLOWLOG_LINE >> 20} MB; not a slow log")
    return path


def _digest_or_fail(digest_files, paths, workers, since, progress=None):
    """Digest, turning a damaged file (truncated or fake .gz, a read error) into one line."""
    import gzip
    import zlib

    try:
        return digest_files(paths, workers=workers, since=since, progress=progress)
    except (EOFError, gzip.BadGzipFile, zlib.error, UnicodeError, OSError) as exc:
        names = ", ".join(str(p) for p in paths)
        raise InputError(f"{names}: not a readable slow log ({type(exc).__name__}: {' '.join(str(exc).split())})") from None


def _write_atomically(path: Path, text: str) -> None:
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


def cmd_report(settings: Settings, args) -> int:
    from .db import migrate
    from .reports.tasks import export

    day = None
    if args.date:
        try:
            day = dt.date.fromisoformat(args.date)
        except ValueError:
            raise InputError(f"--date {args.date!r}: use YYYY-MM-DD") from None
    migrate.upgrade(settings.ops_db_url)
    output = Path(args.output).resolve() if args.output else None
    result = export(settings, args.kind, day, args.email, output)
    if args.json:
        _print_json(result)
    else:
        print(f"{args.kind} report {result['period']}: {result['files']} files in {result['folder']}"
              + (f"; e-mail: {result['email']}" if "email" in result else ""))
        if "warning" in result:
            print(f"pelbiot-jobs: {result['warning']}", file=sys.stderr)
    return EXIT_OK


def cmd_indexes(settings: Settings, args) -> int:
    from .celery_app import schedules_dir
    from .db.engine import engine_for
    from .indexes.live import unused_indexes
    from .indexes.spec import FILE
    from .indexes.tasks import current_plan

    path = Path(args.spec) if args.spec else schedules_dir(settings) / FILE
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    engine = engine_for(settings.app_db_url)
    result = current_plan(settings, path)
    if args.action == "apply":
        return _indexes_apply(settings, args, result)
    result["unused"], note = unused_indexes(engine)
    if note:
        result["unused_note"] = note
    if args.json:
        _print_json(result)
        return EXIT_OK
    console = _console()
    for kind, colour in (("create", "green"), ("exists", "dim"), ("covered", "dim"), ("invalid", "red")):
        for e in result[kind]:
            detail = e.get("sql") or e.get("index") or e.get("reason")
            console.print(f"[{colour}]{kind:<8}[/] " + escape(plain(f"{e['table']}({', '.join(map(str, e['columns']))})  {detail}")))
    for d in result["duplicates"]:
        console.print(f"[yellow]{d['kind']:<8}[/] " + escape(plain(f"{d['table']}.{d['index']} is redundant with "
                                                                   f"{d['duplicate_of']}: {d['drop_sql']}"))
                      + "  [dim](never run automatically)[/]")
    console.print(f"unused: {len(result['unused'])}" + (f" ({note})" if note else ""))
    return EXIT_OK


def _indexes_apply(settings: Settings, args, result: dict) -> int:
    import uuid

    from .db import migrate
    from .db.engine import engine_for
    from .indexes.apply import apply_plan
    from .indexes.tasks import guard_of

    admin = settings.admin_url("indexes apply")
    creates = [e for e in result["create"] if (args.only is None or e["name"] == args.only)
               and (e["source"] != "advisor" or settings.index_apply_advice or args.only)]
    if args.only and not creates:
        raise InputError(f"--only {args.only!r}: no such index to create (see `pelbiot-jobs indexes plan`)")
    if not creates:
        print("nothing to create: every declared index exists or is covered")
        return EXIT_OK
    for e in creates:
        print(f"will run: {e['sql']}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("add --yes to apply without a question (standard input is not a terminal)")
        if input(f"create {len(creates)} index(es) now? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing done")
            return EXIT_OK
    migrate.upgrade(settings.ops_db_url)
    results = apply_plan(engine_for(admin), engine_for(settings.ops_db_url), creates,
                         guard_of(settings, ignore_window=args.ignore_window), f"cli-{uuid.uuid4()}")
    if args.json:
        _print_json(results)
    else:
        for r in results:
            print(f"{r['outcome']:<8} {r['table']}.{r['index']} ({r['duration_s']:.2f}s)"
                  + (f": {r['reason']}" if r["reason"] else ""))
    return EXIT_OK if all(r["outcome"] in ("created", "skipped") for r in results) else EXIT_FAILED


def _num(value) -> str:
    if value is None:
        return ""
    if abs(value) >= 1e9:
        return f"{value / 1e9:.2f}G"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f}M"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"


def cmd_workers(settings: Settings, args) -> int:
    """The workers alive now, from their heartbeats in the broker's Redis (no broadcast to wait for)."""
    from .liveness import HEARTBEAT_TTL, workers
    from .runs import coordination_redis

    if not settings.broker_is_redis:
        raise InputError("`workers` reads the heartbeats workers write in the broker's Redis; with another broker, "
                         "use `celery inspect active` or Flower")
    if settings.embedded_redis and not _embedded_answers(settings):
        rows = []
    else:
        rows = workers(coordination_redis(settings))
    now = time.time()
    for w in rows:
        w["heartbeat_age_s"] = round(now - float(w.get("heartbeat") or 0), 1)
        for task in w.get("active") or []:
            started = task.get("started")
            task["running_s"] = round(now - float(started), 1) if started else None
    if args.json:
        _print_json({"workers": rows, "heartbeat_ttl_s": HEARTBEAT_TTL})
        return EXIT_OK
    from rich.table import Table

    table = Table(title=f"pelbiot-jobs workers (heartbeat within {HEARTBEAT_TTL}s)")
    for col in ("worker", "host", "machine/pid", "queues", "procs", "running", "prefetched", "heartbeat"):
        table.add_column(col, overflow="fold")
    for w in rows:
        running = "\n".join(f"{t['task']} {t['running_s']:.0f}s" if t.get("running_s") is not None else t["task"]
                            for t in w.get("active") or []) or "-"
        table.add_row(cell(w.get("node", "?")), cell(w.get("host", "?")), cell(f"{w.get('machine')}/{w.get('pid')}"),
                      cell(", ".join(w.get("queues") or [])), str(w.get("concurrency") or "?"), cell(running),
                      str(w.get("reserved", 0)), f"{w['heartbeat_age_s']:.0f}s ago")
    console = _console()
    console.print(table)
    if not rows:
        console.print("no worker has written a heartbeat: start one with `pelbiot-jobs worker` (or `up`)")
    return EXIT_OK


def _dead_letters(settings: Settings) -> dict | None:
    """Messages moved aside by the workers (broker.py): how many, and the newest ones."""
    if not settings.broker_is_redis:
        return None
    from .broker import dead_letters
    from .runs import coordination_redis

    try:
        count, newest = dead_letters(coordination_redis(settings), limit=10)
    except Exception:
        return None
    return {"count": count, "newest": newest}


def _embedded_answers(settings: Settings) -> bool:
    from .embedded import answers

    return answers(settings.embedded_socket)


def _redbeat_last_run(app, jobs) -> dict:
    """When RedBeat last sent each job (naive UTC), when beat runs on Redis; {} otherwise."""
    if not app.pelbiot_settings.broker_is_redis:
        return {}
    try:
        from redbeat import RedBeatSchedulerEntry

        due = {}
        for job in jobs:
            try:
                entry = RedBeatSchedulerEntry.from_key(app.conf.redbeat_key_prefix + job.name, app=app)
            except KeyError:
                continue
            if entry.last_run_at and entry.last_run_at.year > 1:
                due[job.name] = entry.last_run_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return due
    except Exception:
        return {}


def cmd_worker(settings: Settings, args) -> int:
    extra = list(args.celery_args)
    beat = "-B" in extra or "--beat" in extra
    app = _app(settings, with_schedule=True)  # refuses to start on invalid schedules
    embedded = _prepare(settings)
    extra = _expand_host_queue(extra, settings.host_queue)
    argv = ["worker", "--loglevel", settings.log_level]
    if not _has_option(extra, "-Q", "--queues"):
        argv += ["-Q", ",".join(["sampling", "maintenance", "reports", settings.host_queue])]
    if not _has_option(extra, "-c", "--concurrency"):
        argv += ["-c", str(settings.worker_concurrency)]
    if not _has_option(extra, "-n", "--hostname"):
        argv += ["-n", f"pelbiot@{settings.hostname}"]
    if beat and not _has_option(extra, "-s", "--schedule"):
        argv += ["-s", str(settings.var_dir / "beat-schedule")]
    try:
        app.worker_main(argv + extra)
    finally:
        if embedded:
            embedded.stop()
    return EXIT_OK


def _expand_host_queue(extra: list[str], host_queue: str) -> list[str]:
    """In ``-Q``/``--queues`` values, the word ``host`` means this host's own queue."""
    def expand(value: str) -> str:
        return ",".join(host_queue if q == "host" else q for q in value.split(","))

    out, expand_next = [], False
    for arg in extra:
        if expand_next:
            out.append(expand(arg))
            expand_next = False
        elif arg in ("-Q", "--queues"):
            out.append(arg)
            expand_next = True
        elif arg.startswith("--queues="):
            out.append("--queues=" + expand(arg.split("=", 1)[1]))
        elif arg.startswith("-Q") and len(arg) > 2:
            out.append("-Q" + expand(arg[2:]))
        else:
            out.append(arg)
    return out


def _has_option(extra: list[str], short: str, long: str) -> bool:
    return any(a == short or a == long or a.startswith(long + "=") or (a.startswith(short) and len(a) > 2
               and not a.startswith("--")) for a in extra)


def cmd_beat(settings: Settings, args) -> int:
    app = _app(settings, with_schedule=True)  # refuses to start on invalid schedules
    return _run_celery(app, ["beat", "--loglevel", settings.log_level, *args.celery_args],
                       _prepare(settings, upgrade=False))


def _run_celery(app, argv: list[str], embedded) -> int:
    """Run a Celery (or Flower) command in this process; stop the embedded Redis we started after."""
    try:
        app.start(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if embedded:
            embedded.stop()
    return EXIT_OK


def cmd_flower(settings: Settings, args) -> int:
    from .supervisor import flower_credentials, flower_listen

    address = args.address or settings.flower.address
    port = args.port or settings.flower.port
    final_address, final_port, unix_socket = flower_listen(args.celery_args, address, port)
    if any(a.replace("_", "-").lower().startswith(("--basic-auth", "--auth")) for a in args.celery_args):
        raise InputError("give Flower's credentials with PELBIOT_FLOWER_USER/PASSWORD, not on the command line "
                         "(a process's arguments are readable by every user of the host)")
    creds = flower_credentials(settings)
    unauthenticated = args.unauthenticated or settings.flower.unauthenticated
    if creds is None:
        if not unauthenticated:
            raise ConfigError("PELBIOT_FLOWER_USER and PELBIOT_FLOWER_PASSWORD are not set: Flower will not start "
                              "without authentication (set them, or pass --unauthenticated with "
                              "--address 127.0.0.1 for a local-only Flower)")
        if final_address not in LOCAL_HOSTS or unix_socket:
            raise ConfigError(f"Flower address {final_address!r} is not valid with an unauthenticated Flower: "
                              "an open Flower may only listen on 127.0.0.1")
    embedded = _prepare(settings, upgrade=False)
    app = _app(settings)
    for name in [k for k in os.environ if k.startswith("FLOWER_")]:
        del os.environ[name]  # Flower reads FLOWER_* too: only what is checked here reaches it
    if creds:
        # Through the environment, not argv: the command line of a process is world-readable.
        os.environ["FLOWER_BASIC_AUTH"] = f"{creds[0]}:{creds[1]}"
    return _run_celery(app, ["flower", f"--address={final_address}", f"--port={final_port}",
                             *args.celery_args], embedded)


def cmd_up(settings: Settings, args) -> int:
    from .celery_app import load_jobs
    from .db.demo import DemoPlan, device_count, seed
    from .db.engine import make_engine
    from .supervisor import Supervisor, flower_credentials

    jobs = load_jobs(settings)  # invalid schedules stop us before anything starts
    console = _console()
    embedded = _prepare(settings)
    supervisor = Supervisor(settings)
    def on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with SIGINT ignored (a background job)
    try:
        if settings.app_db_embedded:  # a configured app DB is never seeded, whatever set it
            app_engine = make_engine(settings.app_db_url)
            if device_count(app_engine) == 0:
                console.print("seeding the demo PELBIOT database (first start)...")
                written = seed(app_engine, DemoPlan())
                console.print(f"  {sum(written.values()):,} rows in {len(written)} tables")
            app_engine.dispose()
        if args.once:
            return _up_once(settings, supervisor, jobs, args, console)
        supervisor.start("worker", ["worker"])
        supervisor.start("beat", ["beat"])
        flower = None
        if not args.no_flower:
            creds = flower_credentials(settings)
            if creds is None and not settings.flower.unauthenticated:
                raise ConfigError("PELBIOT_FLOWER_USER and PELBIOT_FLOWER_PASSWORD are not set: Flower will not "
                                  "start without authentication (set them, or use --no-flower)")
            supervisor.start("flower", ["flower"])
            flower = creds
        _banner(console, settings, jobs, flower)
        while True:  # a child that dies is started again, with backoff; Ctrl-C stops everything
            supervisor.supervise(lambda text: console.print(f"[yellow]{cell(text)}[/]"))
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping: beat and Flower, then the worker (finishing its current tasks)...")
        return EXIT_OK  # a requested stop is a clean stop
    finally:
        supervisor.stop_all()
        if embedded:
            embedded.stop()


def _banner(console, settings: Settings, jobs, flower) -> None:
    lines = ["[bold]pelbiot-jobs is up[/]: worker, beat" + (" and Flower" if flower else "")]
    if flower:
        from .supervisor import GENERATED

        user, password, source = flower
        # A generated password is shown once, on a terminal; never into a log or a pipe.
        shown = password if source in GENERATED and sys.stdout.isatty() else f"in {source}" \
            if source.endswith("flower-credentials") else "(as configured)"
        lines.append(f"  Flower      http://{settings.flower.address}:{settings.flower.port}  "
                     f"user {user}, password {shown}  [dim]({source})[/]")
    lines += [f"  ops db      {mask_url(settings.ops_db_url)}",
              f"  app db      {mask_url(settings.app_db_url)}",
              f"  broker      {mask_url(settings.broker_url)}",
              f"  reports     {settings.reports_dir}",
              f"  jobs        {sum(j.enabled for j in jobs)} enabled; `pelbiot-jobs status` shows them",
              "  Ctrl-C stops everything."]
    console.print("\n".join(lines))


def _up_once(settings: Settings, supervisor, jobs, args, console) -> int:
    from .celery_app import EXTERNAL_EFFECTS
    from .db.engine import engine_for
    from .runs import publishing
    from .status import wait_for_runs
    from .supervisor import new_task_id

    enabled = [job for job in jobs if job.enabled]
    left_out = [job for job in enabled if job.task in EXTERNAL_EFFECTS and not args.all]
    if left_out:
        console.print("left out (they change things outside pelbiot-jobs; `up --once --all` runs them too):\n"
                      + "\n".join(f"  {job.name:<28} {EXTERNAL_EFFECTS[job.task]}" for job in left_out))
    elif args.all:
        console.print("--all: every enabled job runs, including index DDL, ANALYZE, cache writes, retention and e-mail")
    jobs = [job for job in enabled if job not in left_out]
    log = settings.var_dir / "up-once-worker.log"
    supervisor.start("worker", ["worker"], log=log)
    app = _app(settings)
    sent: list[tuple[str, str]] = []
    for job in jobs:
        if not job.enabled:
            continue
        task_id = new_task_id()
        options = {"queue": job.queue} if job.queue else {}
        # No expiry here: a manual run waits for the worker to start instead of being dropped.
        with publishing("once", job=job.name):
            app.send_task(job.task, kwargs=dict(job.kwargs), task_id=task_id, **options)
        sent.append((job.name, task_id))
    console.print(f"sent {len(sent)} jobs; waiting for the worker (log: {log})")

    def worker_alive(_done: int, _total: int) -> None:
        child = supervisor.first_exited()
        if child is not None:
            raise Fail(f"the worker exited with code {child.process.returncode} before the jobs finished; "
                       f"see {log}")

    rows = wait_for_runs(engine_for(settings.ops_db_url), [t for _, t in sent], args.timeout,
                         on_progress=worker_alive)
    outcome = [(name, rows.get(task_id)) for name, task_id in sent]
    console.print(_outcome_table(outcome, title="pelbiot-jobs up --once"))
    bad = [name for name, row in outcome if row is None or row["state"] not in ("SUCCESS", "SKIPPED")]
    if bad:
        raise Fail(f"{len(bad)} of {len(outcome)} jobs did not succeed: {', '.join(bad)}")
    return EXIT_OK


# --- parsing and the one place errors are handled --------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pelbiot-jobs", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Scheduled jobs that tune, watch and report on a PELBIOT installation (Celery + MySQL + Redis).")
    parser.add_argument("--version", action="version", version=f"pelbiot-jobs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, fn, help, examples=""):
        p = sub.add_parser(name, help=help, description=help, formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog=textwrap.dedent(examples) if examples else None)
        p.set_defaults(fn=fn)
        return p

    p = add("up", cmd_up, "run worker, beat and Flower (the main job); Ctrl-C stops everything",
            "examples:\n  pelbiot-jobs up\n  pelbiot-jobs up --once   # smoke test: safe jobs once, then exit\n  pelbiot-jobs up --once --all   # every enabled job once, DDL and e-mail included\n")
    p.add_argument("--once", action="store_true",
                   help="a smoke test: send each enabled job that changes nothing outside pelbiot-jobs once, "
                        "wait, print outcomes, exit")
    p.add_argument("--all", action="store_true",
                   help="with --once: also the jobs that run DDL, ANALYZE, write the API cache, delete or send mail")
    p.add_argument("--no-flower", action="store_true", help="do not start Flower")
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT, help="seconds --once waits (default 600)")

    for name, fn, text in (("worker", cmd_worker, "run a Celery worker (other options go to celery worker)"),
                           ("beat", cmd_beat, "run Celery beat (RedBeat on Redis: a second one stands by)"),
                           ("flower", cmd_flower, "run Flower, with authentication")):
        p = add(name, fn, text, f"examples:\n  pelbiot-jobs {name}\n" + (
            "  pelbiot-jobs worker -Q maintenance -c 1\n" if name == "worker" else ""))
        if name == "flower":
            p.add_argument("--address", help="listen address (default PELBIOT_FLOWER_ADDRESS or 127.0.0.1)")
            p.add_argument("--port", type=int, help="port (default PELBIOT_FLOWER_PORT or 5555)")
            p.add_argument("--unauthenticated", action="store_true",
                           help="allow no credentials; only with --address 127.0.0.1")
        p.set_defaults(passthrough=True)

    p = add("run", cmd_run, "trigger a task by hand",
            "examples:\n  pelbiot-jobs run db.table_stats --wait\n"
            "  pelbiot-jobs run maintenance.retention --param job_runs_days=7 --local\n")
    p.add_argument("task", help="task name, e.g. db.table_stats")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="keyword argument (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait for the outcome (exit 1 unless SUCCESS/SKIPPED)")
    p.add_argument("--local", action="store_true", help="run in this process (still recorded)")
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT)
    p.add_argument("--json", action="store_true")

    p = add("status", cmd_status, "last run and next due time of every scheduled job; workers online",
            "examples:\n  pelbiot-jobs status\n  pelbiot-jobs status --json | jq '.jobs[].last_state'\n")
    p.add_argument("--json", action="store_true")
    p.add_argument("--offline", action="store_true", help="read the ops DB only (no broker)")
    p.add_argument("--ping", action="store_true",
                   help="ask the workers through the broker (waits 1 s) instead of reading their heartbeats")

    p = add("workers", cmd_workers, "workers alive now: host, queues, processes, what each is running, last heartbeat",
            "examples:\n  pelbiot-jobs workers\n  pelbiot-jobs workers --json | jq '.workers[].active'\n")
    p.add_argument("--json", action="store_true")

    p = add("metrics", cmd_metrics, "latest value and trend of every sampled metric; API requests per minute",
            "examples:\n  pelbiot-jobs metrics\n  pelbiot-jobs metrics --since 6h --host web1\n"
            "  pelbiot-jobs metrics --json | jq '.metrics[] | select(.metric==\"host.cpu_percent\")'\n")
    p.add_argument("--since", default="1h", help="window, e.g. 15m, 1h, 1d (default 1h)")
    p.add_argument("--host", help="only this host (a host name, mysql@db:3306, redis@cache:6379...)")
    p.add_argument("--json", action="store_true")

    p = add("cache", cmd_cache, "cache operations: invalidate keys by pattern (SCAN + UNLINK, never KEYS)",
            "examples:\n  pelbiot-jobs cache invalidate 'route:/api/devices*'\n"
            "  pelbiot-jobs cache invalidate 'route:/api/load-profile/*' --dry-run\n"
            "  pelbiot-jobs run cache.warm --param warmer=load_profile.peak --wait\n")
    p.add_argument("action", choices=("invalidate",))
    p.add_argument("pattern", help="a Redis glob pattern, e.g. 'route:/api/devices*'")
    p.add_argument("--dry-run", action="store_true", help="count the keys, unlink nothing")
    p.add_argument("--json", action="store_true")

    p = add("health", cmd_health, "the current health score (0-100), its components and trend",
            "examples:\n  pelbiot-jobs health\n  pelbiot-jobs health --json\n")
    p.add_argument("--json", action="store_true")

    p = add("incidents", cmd_incidents, "list, show, acknowledge or resolve incidents",
            "examples:\n  pelbiot-jobs incidents\n  pelbiot-jobs incidents show 12\n"
            "  pelbiot-jobs incidents ack 12 --by alice            # auto-resolves when the alert clears\n"
            "  pelbiot-jobs incidents ack 12 --hold                # stays open until resolved by hand\n"
            "  pelbiot-jobs incidents resolve 12\n")
    p.add_argument("action", nargs="?", default="list", choices=("list", "show", "ack", "resolve"))
    p.add_argument("id", nargs="?", type=int)
    p.add_argument("--all", action="store_true", help="list resolved incidents too")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--hold", action="store_true", help="with ack: keep it open until resolved by hand")
    p.add_argument("--by", help="who is acting (default: the login name)")
    p.add_argument("--json", action="store_true")

    p = add("silence", cmd_silence, "mute the notifications of a rule (on one host or all) for a while",
            "examples:\n  pelbiot-jobs silence cpu_high --host web1 --for 2h --reason 'reindexing'\n")
    p.add_argument("rule")
    p.add_argument("--host", help="only this host (default: every host)")
    p.add_argument("--for", dest="for_", required=True, help="how long, e.g. 30m, 2h, 1d")
    p.add_argument("--reason")
    p.add_argument("--by", help="who is acting (default: the login name)")
    p.add_argument("--json", action="store_true")

    p = add("slowlog", cmd_slowlog, "digest slow-log files offline, like pt-query-digest (no database needed)",
            "examples:\n  pelbiot-jobs slowlog /var/log/mysql/slow.log\n"
            "  pelbiot-jobs slowlog slow.log.1.gz slow.log --format json --limit 20 > digest.json\n"
            "  pelbiot-jobs slowlog slow.log --since 2026-11-28T00:00 --format html --output digest.html\n")
    p.add_argument("files", nargs="+", metavar="FILE", help="slow log files, plain or .gz")
    p.add_argument("--format", choices=("text", "json", "csv", "html"), default="text")
    p.add_argument("--limit", type=_positive, help="only the N classes with the most total time")
    p.add_argument("--since", help="only events at or after this time (ISO 8601, UTC unless given)")
    p.add_argument("--output", help="write here instead of standard output")
    p.add_argument("--workers", type=_positive, help="processes (default: every core)")
    p.add_argument("--show-literals", action="store_true",
                   help="show example queries with their literal values (masked by default)")

    p = add("report", cmd_report, "build a report now (HTML + CSV under the reports folder), optionally e-mail it",
            "examples:\n  pelbiot-jobs report daily                      # yesterday (UTC)\n"
            "  pelbiot-jobs report weekly --date 2026-11-23 --email\n"
            "  pelbiot-jobs report monthly --output /srv/reports\n  pelbiot-jobs report summary\n")
    p.add_argument("kind", choices=("daily", "weekly", "monthly", "summary"))
    p.add_argument("--date", help="a day in the period (YYYY-MM-DD); default: the last complete period")
    p.add_argument("--email", action="store_true", help="also e-mail it (SMTP, or the outbox folder)")
    p.add_argument("--output", help="reports folder (default PELBIOT_REPORTS_DIR)")
    p.add_argument("--json", action="store_true")

    p = add("indexes", cmd_indexes, "plan indexes (declared versus live, duplicates, unused) or create the missing ones",
            "examples:\n  pelbiot-jobs indexes plan\n  pelbiot-jobs indexes plan --spec my-indexes.yaml --json\n"
            "  pelbiot-jobs indexes apply                 # shows the DDL, asks, runs it online under guardrails\n"
            "  pelbiot-jobs indexes apply --yes --only idx_alerts_status_created\n")
    p.add_argument("action", choices=("plan", "apply"))
    p.add_argument("--spec", help="an indexes.yaml (default: schedules/indexes.yaml)")
    p.add_argument("--yes", action="store_true", help="apply: do not ask")
    p.add_argument("--only", help="apply: only this index (by name)")
    p.add_argument("--ignore-window", action="store_true", help="apply: outside PELBIOT_INDEX_WINDOW too")
    p.add_argument("--json", action="store_true")

    p = add("db", cmd_db, "ops database migrations; tuning advice for the app DB",
            "examples:\n  pelbiot-jobs db upgrade\n  pelbiot-jobs db check\n  pelbiot-jobs db advise --json\n")
    p.add_argument("action", choices=("upgrade", "check", "current", "downgrade", "advise"))
    p.add_argument("revision", nargs="?", default="base", help="for downgrade (default base)")
    p.add_argument("--json", action="store_true", help="advise: as JSON")

    p = add("demo-data", cmd_demo_data, "create the PELBIOT tables if missing and fill an empty app DB",
            "examples:\n  pelbiot-jobs demo-data\n  pelbiot-jobs demo-data --devices 50 --days 7\n")
    p.add_argument("--devices", type=_positive, default=200)
    p.add_argument("--days", type=_positive, default=30)
    p.add_argument("--sensor-days", type=_positive, default=1, help="days of per-minute sensor data (default 1)")
    p.add_argument("--seed", type=int, default=42)

    p = add("schedules", cmd_schedules_check, "validate the schedule files",
            "examples:\n  pelbiot-jobs schedules check\n  pelbiot-jobs schedules check ./my-schedules\n")
    p.add_argument("action", choices=("check",))
    p.add_argument("dir", nargs="?", help="folder (default: the schedules in use)")
    return parser


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {value!r}")
    return number


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # worker, beat and flower pass the options they do not know to Celery/Flower.
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.celery_args = unknown
    secrets: list[str] = []
    try:
        settings = load_settings()
        secrets = settings.secrets()
        from .logs import setup_logging

        setup_logging(settings)
        return args.fn(settings, args)
    except ScheduleError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, InputError) as exc:
        print(f"pelbiot-jobs: error: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE
    except ServiceUnavailable as exc:
        print(f"pelbiot-jobs: error: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except Fail as exc:
        print(f"pelbiot-jobs: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        from .errors import auth_failure
        from .runs import one_line

        if auth_failure(exc):
            print(f"pelbiot-jobs: error: a service refused the configured account or database (check the "
                  f"PELBIOT_*_URL settings): {one_line(exc, secrets)}", file=sys.stderr)
            return EXIT_USAGE
        if is_transient(exc) or _unreachable(exc):
            print(f"pelbiot-jobs: error: a service does not answer: {one_line(exc, secrets)}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        if os.environ.get("PELBIOT_LOG_LEVEL", "").upper() == "DEBUG":
            import traceback

            traceback.print_exc()  # secrets are never in settings' repr; DEBUG is asked for
        print(f"pelbiot-jobs: internal error: {one_line(exc, secrets)} (PELBIOT_LOG_LEVEL=DEBUG shows the "
              "traceback)", file=sys.stderr)
        return EXIT_FAILED


def _unreachable(exc: BaseException) -> bool:
    """A connection that could not be made (kombu and SQLAlchemy wrap the socket errors)."""
    import sqlalchemy.exc

    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__) if e is not None}
    return bool(names & {"OperationalError", "ConnectionError", "ConnectionRefusedError", "TimeoutError",
                         "gaierror", "RecoverableConnectionError"}) or isinstance(exc, sqlalchemy.exc.OperationalError)


if __name__ == "__main__":
    sys.exit(main())
