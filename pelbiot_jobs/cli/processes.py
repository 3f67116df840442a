"""The processes: ``up`` (worker, beat and Flower under one supervisor), ``worker``, ``beat``, ``flower``."""

from __future__ import annotations

import signal
import sys
import time

from ..lib.errors import ConfigError, InputError
from ..lib.redact import mask_url
from ..lib.textsafe import escaped
from ..stack.servers import refuse_open, required, web_listen
from .common import (
    DEFAULT_WAIT,
    EXIT_OK,
    OUTCOME_COLUMNS,
    Exit,
    Fail,
    celery_app,
    command,
    console,
    migrate_ops,
    outcome_rows,
    prepare,
    run_apart,
    table,
)


def register(sub) -> None:
    p = command(sub, "up", cmd_up, "run worker, beat and Flower (the main job); Ctrl-C stops everything",
                "examples:\n  pelbiot-jobs up\n  pelbiot-jobs up --once   # smoke test: safe jobs once, then exit\n"
                "  pelbiot-jobs up --once --all   # every enabled job once, DDL and e-mail included\n")
    p.add_argument("--once", action="store_true",
                   help="a smoke test: send each enabled job that changes nothing outside pelbiot-jobs once, "
                        "wait, print outcomes, exit")
    p.add_argument("--all", action="store_true",
                   help="with --once: also the jobs that run DDL, ANALYZE, write the API cache, delete or send mail")
    p.add_argument("--no-flower", action="store_true", help="do not start Flower")
    p.add_argument("--no-web", action="store_true", help="do not start the web view")
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT, help="seconds --once waits (default 600)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show the worker's, beat's and Flower's whole output (by default it goes to var/log/up.log "
                        "and the terminal shows warnings and errors)")

    p = command(sub, "web", cmd_web, "run the operator's web view and /metrics (Prometheus), with authentication",
                "examples:\n  pelbiot-jobs web                         # http://127.0.0.1:8088\n"
                "  pelbiot-jobs web --address 0.0.0.0 --port 8088   # needs PELBIOT_WEB_USER/PASSWORD or Flower's\n")
    p.add_argument("--address", help="listen address (default PELBIOT_WEB_ADDRESS or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default PELBIOT_WEB_PORT or 8088)")
    p.add_argument("--unauthenticated", action="store_true", help="allow no credentials; only with --address 127.0.0.1")

    for name, fn, text in (("worker", cmd_worker, "run a Celery worker (other options go to celery worker)"),
                           ("beat", cmd_beat, "run Celery beat (RedBeat on Redis: a second one stands by)"),
                           ("flower", cmd_flower, "run Flower, with authentication")):
        p = command(sub, name, fn, text, f"examples:\n  pelbiot-jobs {name}\n" + (
            "  pelbiot-jobs worker -Q maintenance -c 1\n" if name == "worker" else ""))
        if name == "flower":
            p.add_argument("--address", help="listen address (default PELBIOT_FLOWER_ADDRESS or 127.0.0.1)")
            p.add_argument("--port", type=int, help="port (default PELBIOT_FLOWER_PORT or 5555)")
            p.add_argument("--unauthenticated", action="store_true",
                           help="allow no credentials; only with --address 127.0.0.1")
            p.add_argument("--with-web", action="store_true",
                           help="also serve the web view from this process (PELBIOT_WEB_*; `up` does this)")
        p.set_defaults(passthrough=True)


def cmd_worker(settings, args) -> int:
    extra = list(args.celery_args)
    beat = "-B" in extra or "--beat" in extra
    app = celery_app(settings, with_schedule=True)  # refuses to start on invalid schedules, SQL included
    embedded = prepare(settings)
    extra = expand_host_queue(extra, settings.host_queue)
    argv = ["worker", "--loglevel", settings.log_level]
    if not has_option(extra, "-Q", "--queues"):
        argv += ["-Q", ",".join(["sampling", "maintenance", "reports", settings.host_queue])]
    if not has_option(extra, "-c", "--concurrency"):
        argv += ["-c", str(settings.worker_concurrency)]
    if not has_option(extra, "-n", "--hostname"):
        argv += ["-n", f"pelbiot@{settings.hostname}"]
    if beat and not has_option(extra, "-s", "--schedule"):
        argv += ["-s", str(settings.var_dir / "beat-schedule")]
    try:
        app.worker_main(argv + extra)
    finally:
        if embedded:
            embedded.stop()
    return EXIT_OK


def expand_host_queue(extra: list[str], host_queue: str) -> list[str]:
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


def has_option(extra: list[str], short: str, long: str) -> bool:
    return any(a == short or a == long or a.startswith(long + "=") or (a.startswith(short) and len(a) > 2
               and not a.startswith("--")) for a in extra)


def cmd_beat(settings, args) -> int:
    # Beat checks the schedules' structure; cache.yaml's SQL is the worker's to prove (no SQL parser here).
    app = celery_app(settings, with_schedule=True, deep=False)
    return run_celery(app, ["beat", "--loglevel", settings.log_level, *args.celery_args],
                      prepare(settings, upgrade=False))


def run_celery(app, argv: list[str], embedded) -> int:
    """Run a Celery (or Flower) command in this process; stop the embedded Redis we started after."""
    try:
        app.start(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        if embedded:
            embedded.stop()
    return EXIT_OK


def cmd_flower(settings, args) -> int:
    from ..stack.supervisor import flower_credentials, flower_environment, flower_listen

    address = args.address or settings.flower.address
    port = args.port or settings.flower.port
    final_address, final_port, unix_socket = flower_listen(args.celery_args, address, port)
    if any(a.replace("_", "-").lower().startswith(("--basic-auth", "--auth")) for a in args.celery_args):
        raise InputError("give Flower's credentials with PELBIOT_FLOWER_USER/PASSWORD, not on the command line "
                         "(a process's arguments are readable by every user of the host)")
    from ..stack.supervisor import check_ports

    check_ports(([] if unix_socket else [("Flower", final_address, final_port, "PELBIOT_FLOWER_PORT or --port")]) + (
        [("the web view", settings.web.address, settings.web.port, "PELBIOT_WEB_PORT")] if args.with_web else []))
    creds = flower_credentials(settings)
    refuse_open("Flower", "PELBIOT_FLOWER_USER and PELBIOT_FLOWER_PASSWORD", creds,
                args.unauthenticated or settings.flower.unauthenticated, final_address, unix_socket)
    if args.with_web:  # one process for both: Flower's Tornado and Celery are loaded once (docs/benchmarks.md)
        web_listen(settings, settings.web.address, settings.web.port, False)
    embedded = prepare(settings, upgrade=False)
    app = celery_app(settings)
    flower_environment(creds)
    return run_celery(app, ["flower", f"--address={final_address}", f"--port={final_port}", *args.celery_args],
                      embedded)


def check_and_prepare(settings) -> list[dict]:
    """Before `up` starts anything: refuse invalid schedules, migrate the ops DB, and on the
    embedded default fill the demo app DB on the first start. Run apart (``run_apart``); returns
    the enabled jobs."""
    from ..demo.data import DemoPlan
    from ..demo.service import demo_needed, seed_demo
    from ..runtime.app import load_jobs

    jobs = [{"name": j.name, "task": j.task, "kwargs": dict(j.kwargs), "queue": j.queue}
            for j in load_jobs(settings, deep=False) if j.enabled]
    migrate_ops(settings)
    if not settings.app_db_embedded:
        app_db_answers(settings)
    if demo_needed(settings):  # only the embedded default's own, empty app DB; a configured one never
        out = console()
        out.print("seeding the demo PELBIOT database (first start)...")
        written = seed_demo(settings, DemoPlan())
        out.print(f"  {sum(written.values()):,} rows in {len(written)} tables")
    if settings.embedded_default:  # a labelled week of history, so every page and report shows something
        from ..demo.history import seed_history

        history = seed_history(settings)
        if history:
            console().print(f"  a demo week of history in the ops DB: {sum(history.values()):,} rows (hosts demo-*)")
    return jobs


def app_db_answers(settings) -> bool:
    """Say once, before `up` starts, in one line naming PELBIOT_APP_DB_URL, when the app DB refuses
    its account or does not answer: the jobs that read it fail until it is fixed (`status` and the
    web view show their errors; the terminal shows the first only)."""
    from ..db.engine import engine_for
    from ..lib.errors import auth_failure, one_line

    try:
        with engine_for(settings.app_db_url).connect():
            return True
    except Exception as exc:  # noqa: BLE001 (any failure is said the same way, and up goes on)
        kind = "refuses the account of" if auth_failure(exc) else "does not answer at"
        console(stderr=True).print(
            f"[yellow]warning: the app DB {kind} PELBIOT_APP_DB_URL ({escaped(mask_url(settings.app_db_url))}): "
            f"{escaped(one_line(exc, settings.secrets()))}; the database samplers, slow queries and "
            "indexes fail until it is fixed (`pelbiot-jobs status` shows them)[/]", soft_wrap=True)
        return False


def cmd_web(settings, args) -> int:
    from ..stack.supervisor import check_ports

    check_ports([("the web view", args.address or settings.web.address, args.port or settings.web.port,
                  "PELBIOT_WEB_PORT or --port")])
    web_listen(settings, args.address or settings.web.address, args.port or settings.web.port, args.unauthenticated,
               serve_forever=True)
    return EXIT_OK


def cmd_up(settings, args) -> int:
    from types import SimpleNamespace

    from ..demo.history import feed_requests
    from ..stack.supervisor import Supervisor, check_ports, flower_credentials

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    # A port that is taken, or invalid schedules, stop us before anything starts.
    if not args.once:
        check_ports(listeners(settings, not args.no_flower, not args.no_web))
    jobs = [SimpleNamespace(**job) for job in run_apart(settings, check_and_prepare)]
    out = console()
    embedded = prepare(settings, upgrade=False)
    supervisor = Supervisor(settings)

    def on_term(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)  # also when started with SIGINT ignored (a background job)
    try:
        if args.once:
            return up_once(settings, supervisor, jobs, args, out)
        log = settings.var_dir / "log" / "up.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            fh.write(f"\n--- pelbiot-jobs up, {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
        echo = _echo(out, args.verbose, log)
        supervisor.start("worker", ["worker"], log, echo)
        supervisor.start("beat", ["beat"], log, echo)
        from ..stack.supervisor import web_credentials

        flower = creds = web = None
        if not args.no_flower:
            creds = required(flower_credentials(settings), settings.flower.unauthenticated, "Flower",
                             "PELBIOT_FLOWER_USER and PELBIOT_FLOWER_PASSWORD", "--no-flower")
        if not args.no_web:
            web = required(web_credentials(settings), settings.web.unauthenticated, "the web view",
                           "PELBIOT_WEB_USER and PELBIOT_WEB_PASSWORD (or Flower's)", "--no-web")
        if not args.no_flower:
            # Flower serves the web view too: one Tornado process for the browser, not two.
            supervisor.start("flower", ["flower"] + ([] if args.no_web else ["--with-web"]), log, echo)
            flower = creds
        elif not args.no_web:
            supervisor.start("web", ["web"], log, echo)
        worker_answers(settings, supervisor, out)
        flower_up, web_up = servers_answer(settings, supervisor, out, flower is not None, not args.no_web)
        banner(out, settings, jobs, flower if flower_up else None, web, web_up)
        out.print(f"[dim]the processes' output: {log}" + ("" if args.verbose else " (-v shows it here)") + "[/]",
                  soft_wrap=True)
        fed = 0.0
        while True:  # a child that dies is started again, with backoff; Ctrl-C stops everything
            supervisor.supervise(lambda text: out.print(f"[yellow]{escaped(text)}[/]"))
            if settings.embedded_default and time.monotonic() - fed >= 60:
                fed = time.monotonic()
                try:  # demo API telemetry, in a forked child (SQLAlchemy never loads in `up`)
                    run_apart(settings, feed_requests)
                except Exit:
                    pass  # the child said why on stderr; the next minute tries again
            time.sleep(0.5)
    except KeyboardInterrupt:
        out.print("stopping: beat and Flower, then the worker (finishing its current tasks)...")
        return EXIT_OK  # a requested stop is a clean stop
    finally:
        supervisor.stop_all()
        if embedded:
            embedded.stop()


def listeners(settings, flower: bool, web: bool) -> list[tuple[str, str, int, str]]:
    """What `up` will listen on: (what, address, port, the setting that moves it)."""
    out = []
    if flower:
        out.append(("Flower", settings.flower.address, settings.flower.port, "PELBIOT_FLOWER_PORT"))
    if web:
        if flower and settings.web.port == settings.flower.port:
            raise ConfigError(f"the web view and Flower are both set to port {settings.web.port}: set PELBIOT_WEB_PORT "
                              "or PELBIOT_FLOWER_PORT to another port")
        out.append(("the web view", settings.web.address, settings.web.port, "PELBIOT_WEB_PORT"))
    return out


#: Seconds `up` waits for Flower and the web view to answer before the banner leaves them out.
SERVER_WAIT = 60


def servers_answer(settings, supervisor, out, flower: bool, web: bool) -> tuple[bool, bool]:
    """Wait until Flower's and the web view's ports answer; say which did not (the banner then
    leaves it out, so it never says up of what is not)."""
    from ..stack.supervisor import answers

    wanted = {"Flower": (flower, settings.flower.address, settings.flower.port),
              "the web view": (web, settings.web.address, settings.web.port)}
    up = {name: False for name in wanted}
    deadline = time.monotonic() + SERVER_WAIT
    while time.monotonic() < deadline:
        for name, (asked, address, port) in wanted.items():
            up[name] = up[name] or (asked and answers(address, port, 0.5))
        if all(up[name] or not asked for name, (asked, _, _) in wanted.items()):
            break
        supervisor.supervise(lambda text: out.print(f"[yellow]{escaped(text)}[/]"))
        time.sleep(0.5)
    for name, (asked, address, port) in wanted.items():
        if asked and not up[name]:
            out.print(f"[yellow]{name} does not answer on {address}:{port} after {SERVER_WAIT} s; see "
                      f"{settings.var_dir / 'log' / 'up.log'}[/]")
    return up["Flower"], up["the web view"]


def _echo(out, verbose: bool, log):
    """What the terminal shows of a child's line: everything with -v, else its warnings and errors,
    each once, and of a traceback the exception it ends with (supervisor.TerminalLines)."""
    from ..stack.supervisor import TerminalLines

    filters: dict[str, TerminalLines] = {}

    def echo(name: str, line: str) -> None:
        shown = [line] if verbose else filters.setdefault(name, TerminalLines(log))(line)
        for text in shown:
            out.print(f"[dim]{name} |[/] {escaped(text)}", highlight=False, soft_wrap=True)
    return echo


#: Seconds `up` waits for the worker's first heartbeat before it prints the banner anyway.
WORKER_WAIT = 120


def worker_answers(settings, supervisor, out) -> bool:
    """Wait until a worker's heartbeat is in Redis (the worker answers), so the banner is true when
    printed; say so when it takes long."""
    from ..jobs.service import live_workers

    if not settings.broker_is_redis:
        return True  # heartbeats live in Redis; with another broker the banner does not wait
    started = time.monotonic()
    told = False
    while time.monotonic() - started < WORKER_WAIT:
        try:
            if live_workers(settings):
                return True
        except Exception:  # the broker is starting: ask again
            pass
        if not told and time.monotonic() - started > 10:
            out.print("waiting for the worker to answer...")
            told = True
        supervisor.supervise(lambda text: out.print(f"[yellow]{escaped(text)}[/]"))
        time.sleep(0.5)
    out.print(f"[yellow]the worker did not answer within {WORKER_WAIT} s; see {settings.var_dir / 'log' / 'up.log'}[/]")
    return False


def shown_password(creds) -> str:
    """How the banner shows a password: a generated one once, on a terminal; never into a log or a pipe."""
    from ..stack.supervisor import GENERATED

    _, password, source = creds
    if source in GENERATED and sys.stdout.isatty():
        return password
    return f"in {source}" if source.endswith("flower-credentials") else "(as configured)"


def banner(out, settings, jobs, flower, web=None, with_web: bool = False) -> None:
    parts = ["worker", "beat"] + (["Flower"] if flower else []) + (["the web view"] if with_web else [])
    lines = ["[bold]pelbiot-jobs is up[/]: " + ", ".join(parts[:-1]) + " and " + parts[-1]]
    if with_web:
        if web is None:
            who = "no authentication (127.0.0.1 only)"
        elif flower and web[2] == flower[2]:
            who = f"user {web[0]}, the same password as Flower"
        else:
            who = f"user {web[0]}, password {shown_password(web)}  [dim]({web[2]})[/]"
        lines.append(f"  web view    http://{settings.web.address}:{settings.web.port}  {who}  (/metrics for Prometheus)")
    if flower:
        lines.append(f"  Flower      http://{settings.flower.address}:{settings.flower.port}  "
                     f"user {flower[0]}, password {shown_password(flower)}  [dim]({flower[2]})[/]")
    lines += [f"  ops db      {mask_url(settings.ops_db_url)}",
              f"  app db      {mask_url(settings.app_db_url)}",
              f"  broker      {mask_url(settings.broker_url)}",
              f"  reports     {settings.reports_dir}",
              f"  jobs        {len(jobs)} enabled; `pelbiot-jobs status` shows them",
              "  Ctrl-C stops everything."]
    out.print("\n".join(lines))


def up_once(settings, supervisor, jobs, args, out) -> int:
    from ..db.engine import engine_for
    from ..jobs.service import wait_for_runs
    from ..runtime.app import EXTERNAL_EFFECTS
    from ..runtime.headers import publishing
    from ..stack.supervisor import new_task_id

    enabled = jobs
    left_out = [job for job in enabled if job.task in EXTERNAL_EFFECTS and not args.all]
    if left_out:
        out.print("left out (they change things outside pelbiot-jobs; `up --once --all` runs them too):\n"
                  + "\n".join(f"  {job.name:<28} {EXTERNAL_EFFECTS[job.task]}" for job in left_out))
    elif args.all:
        out.print("--all: every enabled job runs, including index DDL, ANALYZE, cache writes, retention and e-mail")
    jobs = [job for job in enabled if job not in left_out]
    log = settings.var_dir / "up-once-worker.log"
    supervisor.start("worker", ["worker"], log=log)
    app = celery_app(settings)
    sent: list[tuple[str, str]] = []
    for job in jobs:
        task_id = new_task_id()
        options = {"queue": job.queue} if job.queue else {}
        # No expiry here: a manual run waits for the worker to start instead of being dropped.
        with publishing("once", job=job.name):
            app.send_task(job.task, kwargs=dict(job.kwargs), task_id=task_id, **options)
        sent.append((job.name, task_id))
    out.print(f"sent {len(sent)} jobs; waiting for the worker (log: {log})")

    def worker_alive(_done: int, _total: int) -> None:
        child = supervisor.first_exited()
        if child is not None:
            raise Fail(f"the worker exited with code {child.process.returncode} before the jobs finished; "
                       f"see {log}")

    rows = wait_for_runs(engine_for(settings.ops_db_url), [t for _, t in sent], args.timeout,
                         on_progress=worker_alive)
    outcome = [(name, rows.get(task_id)) for name, task_id in sent]
    table("pelbiot-jobs up --once", OUTCOME_COLUMNS, outcome_rows(outcome), out=out)
    bad = [name for name, row in outcome if row is None or row["state"] not in ("SUCCESS", "SKIPPED")]
    if bad:
        raise Fail(f"{len(bad)} of {len(outcome)} jobs did not succeed: {', '.join(bad)}")
    return EXIT_OK
