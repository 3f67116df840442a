"""The processes: ``up`` (worker, beat and Flower under one supervisor), ``worker``, ``beat``, ``flower``."""

from __future__ import annotations

import signal
import sys
import time

from ..config import mask_url
from ..errors import ConfigError, InputError
from ..textsafe import escaped
from .common import (DEFAULT_WAIT, EXIT_OK, OUTCOME_COLUMNS, Fail, celery_app, command, console, migrate_ops,
                     outcome_rows, prepare, run_apart, table)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


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
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT, help="seconds --once waits (default 600)")

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
    from ..supervisor import flower_credentials, flower_environment, flower_listen

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
    embedded = prepare(settings, upgrade=False)
    app = celery_app(settings)
    flower_environment(creds)
    return run_celery(app, ["flower", f"--address={final_address}", f"--port={final_port}", *args.celery_args],
                      embedded)


def check_and_prepare(settings) -> list[dict]:
    """Before `up` starts anything: refuse invalid schedules, migrate the ops DB, and on the
    embedded default fill the demo app DB on the first start. Run apart (``run_apart``); returns
    the enabled jobs."""
    from ..celery_app import load_jobs
    from ..db.demo import DemoPlan
    from ..db.service import demo_needed, seed_demo

    jobs = [{"name": j.name, "task": j.task, "kwargs": dict(j.kwargs), "queue": j.queue}
            for j in load_jobs(settings, deep=False) if j.enabled]
    migrate_ops(settings)
    if demo_needed(settings):  # only the embedded default's own, empty app DB; a configured one never
        out = console()
        out.print("seeding the demo PELBIOT database (first start)...")
        written = seed_demo(settings, DemoPlan())
        out.print(f"  {sum(written.values()):,} rows in {len(written)} tables")
    return jobs


def cmd_up(settings, args) -> int:
    from types import SimpleNamespace

    from ..supervisor import Supervisor, flower_credentials

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    # Invalid schedules stop us before anything starts.
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
        banner(out, settings, jobs, flower)
        while True:  # a child that dies is started again, with backoff; Ctrl-C stops everything
            supervisor.supervise(lambda text: out.print(f"[yellow]{escaped(text)}[/]"))
            time.sleep(0.5)
    except KeyboardInterrupt:
        out.print("stopping: beat and Flower, then the worker (finishing its current tasks)...")
        return EXIT_OK  # a requested stop is a clean stop
    finally:
        supervisor.stop_all()
        if embedded:
            embedded.stop()


def banner(out, settings, jobs, flower) -> None:
    lines = ["[bold]pelbiot-jobs is up[/]: worker, beat" + (" and Flower" if flower else "")]
    if flower:
        from ..supervisor import GENERATED

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
              f"  jobs        {len(jobs)} enabled; `pelbiot-jobs status` shows them",
              "  Ctrl-C stops everything."]
    out.print("\n".join(lines))


def up_once(settings, supervisor, jobs, args, out) -> int:
    from ..celery_app import EXTERNAL_EFFECTS
    from ..db.engine import engine_for
    from ..runs import publishing
    from ..status import wait_for_runs
    from ..supervisor import new_task_id

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
