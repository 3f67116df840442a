"""Jobs: ``run``, ``status``, ``workers``, ``schedules check``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..lib.errors import InputError, ScheduleError
from ..lib.redact import scrub
from ..lib.textsafe import cell, escaped
from .common import (
    DEFAULT_WAIT,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    OUTCOME_COLUMNS,
    Fail,
    add_json,
    celery_app,
    command,
    console,
    group,
    migrate_ops,
    outcome_rows,
    print_json,
    read_command,
    require_broker,
    state_cell,
    table,
)


def register(sub) -> None:
    p = command(sub, "run", cmd_run, "trigger a task by hand",
                "examples:\n  pelbiot-jobs run db.table_stats --wait\n"
                "  pelbiot-jobs run maintenance.retention --param job_runs_days=7 --local\n"
                "  pelbiot-jobs run reports.daily --param email=false   # a job of beat.yaml: reports.export, kind=daily\n")
    p.add_argument("task", help="task or job name, e.g. db.table_stats or reports.daily (a job: its task and kwargs)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="keyword argument (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait for the outcome (exit 1 unless SUCCESS/SKIPPED)")
    p.add_argument("--local", action="store_true", help="run in this process (still recorded)")
    p.add_argument("--timeout", type=float, default=DEFAULT_WAIT, help="seconds --wait waits (default 600)")
    add_json(p)

    p = read_command(sub, "status", cmd_status, "last run and next due time of every scheduled job; workers online",
                "examples:\n  pelbiot-jobs status\n  pelbiot-jobs status --json | jq '.jobs[].last_state'\n")
    add_json(p)
    p.add_argument("--offline", action="store_true", help="read the ops DB only (no broker)")
    p.add_argument("--ping", action="store_true",
                   help="ask the workers through the broker (waits 1 s) instead of reading their heartbeats")

    p = read_command(sub, "workers", cmd_workers,
                "workers alive now: host, queues, processes, what each is running, last heartbeat",
                "examples:\n  pelbiot-jobs workers\n  pelbiot-jobs workers --json | jq '.workers[].active'\n")
    add_json(p)

    _, actions = group(sub, "schedules", "validate the schedule files",
                       "examples:\n  pelbiot-jobs schedules check\n  pelbiot-jobs schedules check ./my-schedules\n")
    p = command(actions, "check", cmd_schedules_check,
                "validate every schedule file, cache.yaml's SQL included (exit 2 on problems)")
    p.add_argument("dir", nargs="?", help="folder (default: the schedules in use)")


def parse_params(pairs: list[str] | None) -> dict:
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


def resolve_run(settings, app, name: str, params: dict):
    """(task, its keyword arguments, queue, job name) of ``name``: a task, or a job of beat.yaml (the name
    `status` shows: reports.daily runs reports.export with kind=daily; --param adds to or overrides
    the job's own). An unknown name is an InputError suggesting the nearest names."""
    import difflib

    from ..runtime.app import load_jobs

    tasks = sorted(n for n in app.tasks if not n.startswith("celery."))
    if name in tasks:
        return app.tasks[name], params, None, None
    try:
        jobs = {j.name: j for j in load_jobs(settings, deep=False)}
    except InputError:  # invalid schedules: tasks can still be run by their own name
        jobs = {}
    job = jobs.get(name)
    if job is not None and job.task in tasks:
        kwargs = dict(job.kwargs) | params
        print(f"{name} is a job of beat.yaml: it runs {job.task}"
              + (f" with {', '.join(f'{k}={v}' for k, v in kwargs.items())}" if kwargs else ""), file=sys.stderr)
        return app.tasks[job.task], kwargs, job.queue, name
    near = difflib.get_close_matches(name, sorted(set(tasks) | set(jobs)), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(near)}?" if near else "`pelbiot-jobs status` lists the jobs"
    raise InputError(f"unknown task or job {name!r}: {hint}")


def cmd_run(settings, args) -> int:
    from ..db.engine import engine_for
    from ..jobs.service import wait_for_runs
    from ..lib.outcome import is_skipped
    from ..runtime.params import check_params
    from ..runtime.headers import publishing
    from ..stack.supervisor import new_task_id

    app = celery_app(settings)
    task, params, queue, job = resolve_run(settings, app, args.task, parse_params(args.param))
    check_params(task.name, task.params, (), params)  # the task checks again; say it here, exit 2
    task_id = new_task_id()
    migrate_ops(settings)  # the run is recorded in ops_job_runs; a new ops DB may not have it yet
    if args.local:
        result = task.apply(kwargs=params, task_id=task_id, headers={"pelbiot_job": job} if job else None)
        value = result.result
        if result.failed():
            raise Fail(f"{args.task} failed: {scrub(f'{type(value).__name__}: {value}', settings.secrets())}")
        state = "SKIPPED" if is_skipped(value) else "SUCCESS"
        if args.json:
            print_json({"task_id": task_id, "state": state, "result": value})
        else:
            print(f"{args.task} [{task_id}] {state}: {json.dumps(value, default=str)}")
        return EXIT_OK
    require_broker(settings)
    with publishing("cli", job=job):
        task.apply_async(kwargs=params, task_id=task_id, **({"queue": queue} if queue else {}))
    if not args.wait:
        if args.json:
            print_json({"task_id": task_id, "state": "SENT"})
        else:
            print(f"sent {args.task} [{task_id}]; follow it in Flower or with `pelbiot-jobs status`")
        return EXIT_OK
    row = wait_for_runs(engine_for(settings.ops_db_url), [task_id], args.timeout).get(task_id)
    if args.json:
        print_json({"task_id": task_id, **(row or {"state": "TIMEOUT"})})
    else:
        table(escaped(f"{args.task} [{task_id}]"), OUTCOME_COLUMNS, outcome_rows([(args.task, row)]))
    if row is None or row["state"] not in ("SUCCESS", "SKIPPED"):
        raise Fail(f"{args.task} did not succeed: " + (row["error"] or row["state"] if row else
                                                       f"no final state within {args.timeout:.0f}s"))
    return EXIT_OK


def short_time(iso: str | None) -> str:
    """A time of the status table: MM-DD HH:MM:SS (the year and zone go with --wide and --json)."""
    if not iso:
        return ""
    from . import common

    return iso[:19] if common.WIDE else iso[5:19].replace("T", " ")


def last_why(job: dict) -> str | None:
    """Why a job's last run did not do its work: the reason of a SKIPPED, the error of a FAILURE."""
    if job["last_state"] == "SKIPPED" and job.get("last_result"):
        return job["last_result"]  # a skipped run's result is its reason
    if job["last_state"] == "FAILURE":
        return job.get("last_error")
    return None


def cmd_status(settings, args) -> int:
    from ..jobs.service import overview

    data = overview(settings, ping=args.ping, offline=args.offline)
    broker_error = data["broker_error"]
    if args.json:
        print_json({"jobs": data["jobs"], "workers": data["workers"], "settings": settings.describe(),
                    **({"dead_letters": data["dead_letters"]} if data["dead_letters"] is not None else {}),
                    **({"rejected_runs": data["rejected_runs"]} if data["rejected_runs"] is not None else {}),
                    **({"broker_error": broker_error} if broker_error else {}),
                    **({"schedule_problems": data["schedule_problems"]} if data["schedule_problems"] else {})})
        return EXIT_UNAVAILABLE if broker_error else EXIT_OK
    out = console()
    table("pelbiot-jobs status (UTC)", ["job", "schedule", "last state", "last finished", "duration", "next due"],
          [[cell(r["name"] + ("" if r["enabled"] else " (disabled)")), cell(r["schedule"]), state_cell(r["last_state"]),
            short_time(r["last_finished"]),
            f"{r['last_duration_s']:.2f}s" if r["last_duration_s"] is not None else "", short_time(r["next_due"])]
           for r in data["jobs"]], out=out, optional=("duration", "schedule"))
    for r in data["jobs"]:  # why the last run did not do its work: a SKIPPED's reason, a FAILURE's error
        why = last_why(r)
        if why:
            out.print(f"  {cell(r['name'])} {state_cell(r['last_state'])}: {cell(why)}", soft_wrap=True)
    workers = data["workers"]
    out.print(f"workers online: {escaped(', '.join(workers)) if workers else 'none answered'}")
    dead = data["dead_letters"]
    if dead and dead["count"]:
        newest = dead["newest"][0] if dead["newest"] else {"queue": "?", "reason": "?"}
        out.print(f"[red]dead letters: {dead['count']}[/] messages on the queues were not tasks and were moved "
                  f"to the Redis list pelbiot:deadletter (newest: queue {escaped(newest['queue'])}, "
                  f"{escaped(newest['reason'])}); `status --json` lists them")
    if data.get("rejected_runs"):
        out.print(f"[red]job runs not recorded: {data['rejected_runs']}[/] rows the ops DB refused (a value it cannot "
                  "hold, from a message sent from outside) are kept, not retried, in var/job-runs-rejected/ on "
                  "their workers' hosts")
    if data["schedule_problems"]:
        out.print(f"[red]schedules: {len(data['schedule_problems'])} problems[/]; `pelbiot-jobs schedules check` "
                  "lists them")
    if broker_error:
        print(f"pelbiot-jobs: error: {broker_error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_OK


def cmd_workers(settings, args) -> int:
    """The workers alive now, from their heartbeats in the broker's Redis (no broadcast to wait for)."""
    from ..jobs.service import live_workers
    from ..runtime.heartbeats import HEARTBEAT_TTL

    rows = live_workers(settings)
    if args.json:
        print_json({"workers": rows, "heartbeat_ttl_s": HEARTBEAT_TTL})
        return EXIT_OK
    table(f"pelbiot-jobs workers (heartbeat within {HEARTBEAT_TTL}s)",
          ["worker", "host", "machine/pid", "queues", "procs", "running", "prefetched", "heartbeat"],
          [[cell(w.get("node", "?")), cell(w.get("host", "?")), cell(f"{w.get('machine')}/{w.get('pid')}"),
            cell(", ".join(w.get("queues") or [])), str(w.get("concurrency") or "?"),
            cell("\n".join(f"{t['task']} {t['running_s']:.0f}s" if t.get("running_s") is not None else t["task"]
                           for t in w.get("active") or []) or "-"),
            str(w.get("reserved", 0)), f"{w['heartbeat_age_s']:.0f}s ago"] for w in rows],
          empty="no worker has written a heartbeat: start one with `pelbiot-jobs worker` (or `up`)")
    return EXIT_OK


def cmd_schedules_check(settings, args) -> int:
    from ..lib.paths import schedules_dir
    from ..runtime.app import check_schedules
    from ..runtime.schedule import BEAT_FILE, parse_beat

    directory = Path(args.dir).resolve() if args.dir else schedules_dir(settings)
    problems = check_schedules(settings, directory)
    if problems:
        raise ScheduleError(problems)
    jobs = parse_beat(directory / BEAT_FILE, lambda _name: True, [])
    print(f"{directory}: ok ({len(jobs)} jobs, {sum(j.enabled for j in jobs)} enabled)")
    return EXIT_OK
