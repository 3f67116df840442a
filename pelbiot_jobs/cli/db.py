"""``db upgrade|check|current|downgrade|advise`` and ``demo-data``."""

from __future__ import annotations

import sys
import time

from ..lib.errors import InputError
from ..lib.redact import mask_url
from ..lib.textsafe import cell
from .common import EXIT_OK, add_json, command, console, group, migrate_ops, positive, print_json, read_command, table


def register(sub) -> None:
    _, actions = group(sub, "db", "ops database migrations; tuning advice for the app DB",
                       "examples:\n  pelbiot-jobs db upgrade\n  pelbiot-jobs db check\n  pelbiot-jobs db advise --json\n")
    command(actions, "upgrade", cmd_upgrade, "create or migrate the ops tables to this version")
    read_command(actions, "check", cmd_check, "verify that the ops tables match this version's models (exit 1 if not)")
    read_command(actions, "current", cmd_current, "print the ops database's revision")
    p = command(actions, "downgrade", cmd_downgrade, "migrate the ops tables back (drops what later revisions added)")
    p.add_argument("revision", help="target revision (`db current` shows the one it is at; `base` drops every ops table)")
    p.add_argument("--yes", action="store_true", help="do it without asking (the tables the revisions after it added "
                                                      "are dropped, with their rows)")
    p = command(actions, "advise", cmd_advise, "the server and schema checks of the app DB (MySQL/MariaDB): "
                "each finding with its evidence and fix", "examples:\n  pelbiot-jobs db advise\n"
                "  pelbiot-jobs db advise --category security\n  pelbiot-jobs db advise --recorded --resolved\n")
    from ..tuning.checks import CATEGORIES

    p.add_argument("--category", choices=CATEGORIES, help="only the checks of this category")
    p.add_argument("--recorded", action="store_true", help="what db.optimize recorded (open findings, when first "
                                                           "seen) instead of checking the server now")
    p.add_argument("--resolved", action="store_true", help="with --recorded: the findings that went away, and when")
    add_json(p)

    p = command(sub, "demo-data", cmd_demo_data, "create the PELBIOT tables if missing and fill an empty app DB",
                "examples:\n  pelbiot-jobs demo-data\n  pelbiot-jobs demo-data --devices 50 --days 7\n")
    p.add_argument("--devices", type=positive, default=200, help="devices (default 200)")
    p.add_argument("--days", type=positive, default=30, help="days of history (default 30)")
    p.add_argument("--sensor-days", type=positive, default=1, help="days of per-minute sensor data (default 1)")
    p.add_argument("--seed", type=int, default=42, help="random seed: the same seed gives the same rows")


def cmd_upgrade(settings, args) -> int:
    from ..db import service

    service.upgrade(settings)
    print(f"ops database {mask_url(settings.ops_db_url)} is at revision {service.current(settings)}")
    return EXIT_OK


def cmd_check(settings, args) -> int:
    from ..db import service

    revision = service.check(settings)
    print(f"ops database {mask_url(settings.ops_db_url)}: models and migrations agree (revision {revision})")
    return EXIT_OK


def cmd_current(settings, args) -> int:
    from ..db import service

    print(service.current(settings) or "empty (run `pelbiot-jobs db upgrade`)")
    return EXIT_OK


def cmd_downgrade(settings, args) -> int:
    from ..db import service

    current = service.current(settings)
    what = ("every ops table and its rows (job runs, metrics, incidents, reports...)" if args.revision == "base"
            else f"what the revisions after {args.revision} added, with its rows")
    print(f"{mask_url(settings.ops_db_url)} is at revision {current or 'base'}; downgrading to {args.revision} drops "
          f"{what}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError("add --yes to downgrade without a question (standard input is not a terminal); "
                             "nothing was done")
        if input(f"drop {what}? type the revision ({args.revision}) to go on: ").strip() != args.revision:
            print("nothing done")
            return EXIT_OK
    revision = service.downgrade(settings, args.revision)
    print(f"ops database {mask_url(settings.ops_db_url)} is at revision {revision or 'base'}")
    return EXIT_OK


def cmd_advise(settings, args) -> int:
    from ..tuning import service

    if args.resolved and not args.recorded:
        raise InputError("--resolved shows recorded findings: add --recorded")
    if args.recorded:
        rows = service.findings(settings, "resolved" if args.resolved else "open", args.category)
        if args.json:
            print_json({"findings": rows})
            return EXIT_OK
        when = "resolved_at" if args.resolved else "first_seen"
        table("findings that went away" if args.resolved else "open findings (recorded by db.optimize)",
              ["severity", "category", "check", "finding", "resolved" if args.resolved else "since"],
              [[cell(r["severity"]), cell(r["category"]), cell(r["code"]), cell(r["message"]),
                cell(f"{r[when]:%Y-%m-%d %H:%M}" if r[when] else "")] for r in rows],
              empty="none recorded (db.optimize records them; `db advise` checks the server now)", flexible="finding")
        return EXIT_OK
    result = service.advice(settings, args.category)
    if args.json:
        print_json(result)
        return EXIT_OK
    out = console()
    out.print(f"[bold]checks of the app DB[/] ({cell(result['server'])}): {len(result['checked'])} run, "
              f"{len(result['findings'])} findings", highlight=False)
    if not result["findings"]:
        out.print(f"no finding: the {len(result['checked'])} checks passed")
    style = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
    for a in result["findings"]:  # a finding and its fix on lines of their own: the fix is what gets pasted
        out.print(f"[{style[a['severity']]}]{a['severity']:<8}[/] {a['category']:<12} {cell(a['code'])}: "
                  f"{cell(a['message'])}", highlight=False, soft_wrap=True)
        out.print(f"{'':22}fix: {cell(a['fix'])}", highlight=False, soft_wrap=True)
    for x in result["not_checked"]:
        console().print(f"not checked: {x['code']}: needs {cell(x['needs'])}", markup=True, highlight=False)
    return EXIT_OK


def cmd_demo_data(settings, args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..demo.data import DemoPlan
    from ..demo.service import seed_demo

    plan = DemoPlan(devices=args.devices, days=args.days, sensor_days=args.sensor_days, seed=args.seed)
    total = sum(plan.row_counts().values())
    started = time.monotonic()
    with Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=not sys.stderr.isatty(), console=console(stderr=True)) as bar:
        task = bar.add_task("demo data", total=total)

        def progress(table_name: str, rows: int) -> None:
            bar.update(task, advance=rows, description=table_name)

        written = seed_demo(settings, plan, progress=progress)
    print(f"demo data in {mask_url(settings.app_db_url)}: {sum(written.values()):,} rows in "
          f"{len(written)} tables ({time.monotonic() - started:.1f}s)")
    if settings.embedded_default:  # the ops DB's labelled demo history: only the embedded default's own
        from ..demo.history import seed_history

        migrate_ops(settings)
        history = seed_history(settings)
        print(f"demo history in the ops DB: {sum(history.values()):,} rows (7 days, hosts demo-*)" if history
              else "demo history in the ops DB: there already")
    return EXIT_OK
