"""``indexes plan|apply``: declared versus live indexes, and creating the missing ones online."""

from __future__ import annotations

import sys
import uuid

from ..lib.textsafe import cell, escaped
from .common import EXIT_FAILED, EXIT_OK, add_json, command, group, migrate_ops, print_json, read_command, table


def register(sub) -> None:
    _, actions = group(sub, "indexes", "plan indexes (declared versus live, duplicates, unused) or create the missing ones",
                       "examples:\n  pelbiot-jobs indexes plan\n  pelbiot-jobs indexes plan --spec my-indexes.yaml --json\n"
                       "  pelbiot-jobs indexes apply                 # shows the DDL, asks, runs it online under guardrails\n"
                       "  pelbiot-jobs indexes apply --yes --only idx_alerts_status_created\n")
    p = read_command(actions, "plan", cmd_plan, "what would be created, what exists or is covered, duplicates, unused")
    p.add_argument("--spec", help="an indexes.yaml (default: schedules/indexes.yaml)")
    add_json(p)
    p = command(actions, "apply", cmd_apply, "show the DDL, ask, create the missing indexes online under the guardrails")
    p.add_argument("--spec", help="an indexes.yaml (default: schedules/indexes.yaml)")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--only", help="only this index (by name); an advisor's suggestion may be named too")
    p.add_argument("--ignore-window", action="store_true", help="outside PELBIOT_INDEX_WINDOW too")
    add_json(p)


def cmd_plan(settings, args) -> int:
    from ..indexes.service import full_plan, spec_path

    result = full_plan(settings, spec_path(settings, args.spec))
    if args.json:
        print_json(result)
        return EXIT_OK
    rows = []
    for kind, colour in (("create", "green"), ("exists", "dim"), ("covered", "dim"), ("invalid", "red")):
        for e in result[kind]:
            rows.append([f"[{colour}]{kind}[/]", cell(e["table"]), cell(", ".join(map(str, e["columns"]))),
                         cell(str(e.get("sql") or e.get("index") or e.get("reason")))])
    for d in result["duplicates"]:
        rows.append([f"[yellow]{escaped(d['kind'])}[/]", cell(d["table"]), cell(d["index"]),
                     cell(f"redundant with {d['duplicate_of']}: {d['drop_sql']} (never run automatically)")])
    for s in result["suggested"]:
        if s.get("workload"):  # what it would cost the writes beside what it saves the reads
            ids = ", ".join(q[:16] for q in s["query_ids"])
            extends = f"; replaces {s['extends']}" if s.get("extends") else ""
            rows.append(["[cyan]weighed[/]", cell(s["table"]), cell(", ".join(s["columns"])),
                         cell(f"{s['verdict']}; serves {len(s['query_ids'])} class(es): {ids}{extends}")])
        if s.get("served_by"):
            rows.append(["[cyan]served[/]", cell(s["table"]), cell(", ".join(s["columns"])),
                         cell(f"already served by {s['served_by']} once rewritten: no new index")])
        if s.get("rewrite"):
            rows.append(["[cyan]rewrite[/]", cell(s["table"]), cell(", ".join(s["columns"])),
                         cell(f"{s['rewrite']}" + (f" ({s['alternative']})" if s.get("alternative") else ""))])
    for n in result.get("not_helpful", []):
        rows.append(["[dim]no index[/]", cell(n["table"]), cell(", ".join(n["columns"])), cell(n["reason"])])
    table("index plan", ["kind", "table", "columns / index", "detail"], rows,
          empty="no declared index and no suggestion")
    note = result.get("unused_note")
    print(f"unused: {len(result['unused'])}" + (f" ({note})" if note else ""))
    return EXIT_OK


def cmd_apply(settings, args) -> int:
    from ..indexes.service import apply, current_plan, spec_path, to_create

    settings.admin_url("indexes apply")  # say it before planning: nothing can be created without it
    creates = to_create(settings, current_plan(settings, spec_path(settings, args.spec)), args.only,
                        include_advice=bool(args.only))
    if not creates:
        print("nothing to create: every declared index exists or is covered")
        return EXIT_OK
    for e in creates:
        print(f"will run: {e['sql']}")
    if not args.yes:
        if not sys.stdin.isatty():
            from ..lib.errors import InputError

            raise InputError("add --yes to apply without a question (standard input is not a terminal)")
        if input(f"create {len(creates)} index(es) now? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing done")
            return EXIT_OK
    migrate_ops(settings)  # every change is recorded in ops_index_changes
    results = apply(settings, creates, f"cli-{uuid.uuid4()}", ignore_window=args.ignore_window)
    if args.json:
        print_json(results)
    else:
        table("indexes apply", ["outcome", "index", "seconds", "reason"],
              [[cell(r["outcome"]), cell(f"{r['table']}.{r['index']}"), f"{r['duration_s']:.2f}", cell(r["reason"] or "")]
               for r in results])
    return EXIT_OK if all(r["outcome"] in ("created", "skipped") for r in results) else EXIT_FAILED
