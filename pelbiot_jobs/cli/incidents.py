"""Incidents and silences: ``incidents list|show|ack|resolve``, ``silence add|list|expire``."""

from __future__ import annotations

from ..lib.textsafe import cell, plain
from .common import (
    EXIT_OK,
    add_by,
    add_json,
    command,
    duration,
    group,
    migrate_ops,
    num,
    positive,
    print_json,
    read_command,
    table,
    who,
)


def register(sub) -> None:
    p, actions = group(sub, "incidents", "list, show, acknowledge or resolve incidents",
                       "examples:\n  pelbiot-jobs incidents                      # the open ones (= incidents list)\n"
                       "  pelbiot-jobs incidents list --all\n  pelbiot-jobs incidents show 1\n"
                       "  pelbiot-jobs incidents ack 12 --by alice       # auto-resolves when the alert clears\n"
                       "  pelbiot-jobs incidents ack 12 --hold           # stays open until resolved by hand\n"
                       "  pelbiot-jobs incidents resolve 12\n", default=cmd_incidents_list, reads=True)
    _list_options(p)
    _list_options(read_command(actions, "list", cmd_incidents_list, "open and acknowledged incidents (--all: every one)"))
    p = read_command(actions, "show", cmd_incidents_show, "one incident with its history")
    p.add_argument("id", type=positive, help="incident ID")
    add_json(p)
    p = command(actions, "ack", cmd_incidents_ack, "acknowledge: it resolves itself when the alert clears")
    p.add_argument("id", type=positive, help="incident ID")
    p.add_argument("--hold", action="store_true", help="keep it open until resolved by hand")
    add_by(p)
    add_json(p)
    p = command(actions, "resolve", cmd_incidents_resolve, "close it by hand")
    p.add_argument("id", type=positive, help="incident ID")
    add_by(p)
    add_json(p)

    _, actions = group(sub, "silence", "mute a rule's notifications for a while; list and end silences",
                       "examples:\n  pelbiot-jobs silence add cpu_high --host web1 --for 2h --reason 'reindexing'\n"
                       "  pelbiot-jobs silence list\n  pelbiot-jobs silence expire 3\n")
    p = command(actions, "add", cmd_silence_add, "mute the notifications of a rule (on one host or all) for a while")
    p.add_argument("rule", help="an alert rule's name (schedules/alerts.yaml)")
    p.add_argument("--host", help="only this host (default: every host)")
    p.add_argument("--for", dest="for_", required=True, help="how long, e.g. 30m, 2h, 1d")
    p.add_argument("--reason", help="why, recorded with the silence")
    add_by(p)
    add_json(p)
    p = read_command(actions, "list", cmd_silence_list, "silences in force (--all: ended ones too)")
    p.add_argument("--all", action="store_true", help="ended silences too")
    add_json(p)
    p = command(actions, "expire", cmd_silence_expire, "end a silence now: the rule notifies again")
    p.add_argument("id", type=positive, help="silence ID (see `silence list`)")
    add_by(p)
    add_json(p)


def _list_options(p) -> None:
    p.add_argument("--all", action="store_true", help="resolved incidents too")
    p.add_argument("--limit", type=positive, default=50, help="at most this many (default 50)")
    add_json(p)


def cmd_incidents_list(settings, args) -> int:
    from ..health.service import list_incidents

    rows = list_incidents(settings, include_resolved=args.all, limit=args.limit)
    if args.json:
        print_json(rows)
        return EXIT_OK
    table("incidents" + ("" if args.all else " (open and acknowledged; --all for every one)"),
          ["id", "status", "severity", "rule", "host", "opened (UTC)", "acknowledged by", "last value"],
          [[str(r["id"]), cell(r["status"]), cell(r["severity"]), cell(r["rule"]), cell(r["host"]),
            f"{r['opened_at']:%Y-%m-%d %H:%M}", cell(r["acknowledged_by"] or ""), num(r["last_value"])] for r in rows],
          empty="no incidents" if args.all else "no open incidents (`incidents list --all` shows resolved ones)")
    return EXIT_OK


def cmd_incidents_show(settings, args) -> int:
    from ..health.service import incident

    result = incident(settings, args.id)
    if args.json:
        print_json(result)
        return EXIT_OK
    print(plain(f"#{result['id']} {result['status']} {result['severity']} {result['summary']}"))
    print(f"opened {result['opened_at']:%Y-%m-%d %H:%M:%S} UTC" + (
        plain(f", resolved {result['resolved_at']:%Y-%m-%d %H:%M:%S} by {result['resolved_by']}")
        if result["resolved_at"] else ""))
    for e in result["events"]:
        print(plain(f"  {e['at']:%Y-%m-%d %H:%M:%S}  {e['kind']:<12} {e['actor']:<14} {e['detail'] or ''}"))
    return EXIT_OK


def _changed(args, result: dict) -> int:
    if args.json:
        print_json(result)
    else:
        print(plain(f"incident #{result['id']} {result['status']} by {result['by']}"))
    return EXIT_OK


def cmd_incidents_ack(settings, args) -> int:
    from ..health.service import acknowledge

    migrate_ops(settings)
    return _changed(args, acknowledge(settings, args.id, who(settings, args), hold=args.hold))


def cmd_incidents_resolve(settings, args) -> int:
    from ..health.service import resolve

    migrate_ops(settings)
    return _changed(args, resolve(settings, args.id, who(settings, args)))


def cmd_silence_add(settings, args) -> int:
    from ..health.service import add_silence

    seconds = duration("--for", args.for_)
    migrate_ops(settings)
    s = add_silence(settings, args.rule, args.host, seconds, who(settings, args), args.reason)
    if args.json:
        print_json({**s, "until": s["until"].isoformat() + "Z"})
    else:
        print(plain(f"silence #{s['id']}: {s['rule']}" + (f" on {s['host']}" if s["host"] else " on every host")
                    + f" muted until {s['until']:%Y-%m-%d %H:%M} UTC"))
    return EXIT_OK


def cmd_silence_list(settings, args) -> int:
    from ..health.service import list_silences

    rows = list_silences(settings, include_expired=args.all)
    if args.json:
        print_json(rows)
        return EXIT_OK
    table("silences" + ("" if args.all else " in force (--all: ended ones too)"),
          ["id", "rule", "host", "until (UTC)", "by", "reason"],
          [[str(r["id"]), cell(r["rule"]), cell(r["host"] or "every host"),
            f"{r['until']:%Y-%m-%d %H:%M}" + ("" if r["active"] else " (ended)"), cell(r["created_by"]),
            cell(r["reason"] or "")] for r in rows],
          empty="no silence in force" if not args.all else "no silences")
    return EXIT_OK


def cmd_silence_expire(settings, args) -> int:
    from ..health.service import expire_silence

    migrate_ops(settings)
    s = expire_silence(settings, args.id, who(settings, args))
    if args.json:
        print_json({**s, "until": s["until"].isoformat() + "Z"})
    else:
        print(plain(f"silence #{s['id']} ({s['rule']}) ended by {s['by']}; the rule notifies again"))
    return EXIT_OK
