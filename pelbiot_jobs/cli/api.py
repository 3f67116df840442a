"""The REST API's tokens and the alert rules' run-time switches: ``api token create|list|revoke``,
``rules list|toggle``."""

from __future__ import annotations

import sys

from ..lib.textsafe import cell
from .common import EXIT_OK, add_by, add_json, command, group, migrate_ops, print_json, read_command, table, who


def register(sub) -> None:
    _, api = group(sub, "api", "the REST API (/api/advanced, served by `web` and `up`): its tokens",
                   "examples:\n  pelbiot-jobs api token create grafana-bot --scope read     # prints the token once\n"
                   "  pelbiot-jobs api token create deploy --scope write --days 30\n"
                   "  pelbiot-jobs api token list\n  pelbiot-jobs api token revoke grafana-bot\n")
    _, tokens = group(api, "token", "create, list or revoke API tokens")
    p = command(tokens, "create", cmd_token_create, "a new token, printed once (only its hash is kept)")
    p.add_argument("name", help="what the token is for (its writes are recorded as api:NAME)")
    p.add_argument("--scope", choices=("read", "write"), default="read", help="read (default), or write too")
    p.add_argument("--days", type=float, help="it expires after this many days (default: never)")
    add_by(p)
    add_json(p)
    add_json(read_command(tokens, "list", cmd_token_list, "every token: scope, expiry, last use (never the token)"))
    p = command(tokens, "revoke", cmd_token_revoke, "refuse a token from now on")
    p.add_argument("name", help="the token's name (`api token list`)")
    add_json(p)

    p, rules = group(sub, "rules", "alert rules with their state; switch one off or on at run time",
                     "examples:\n  pelbiot-jobs rules list\n"
                     "  pelbiot-jobs rules toggle cpu_high --off --reason 'load test tonight'\n"
                     "  pelbiot-jobs rules toggle cpu_high --on\n", default=cmd_rules_list, reads=True)
    add_json(p)
    add_json(read_command(rules, "list", cmd_rules_list, "every rule of alerts.yaml, its toggle and state per host"))
    p = command(rules, "toggle", cmd_rules_toggle, "switch a rule off or on (over alerts.yaml, until toggled back)")
    p.add_argument("rule", help="an alert rule's name (schedules/alerts.yaml)")
    side = p.add_mutually_exclusive_group()
    side.add_argument("--off", dest="enabled", action="store_false", default=None, help="stop evaluating it")
    side.add_argument("--on", dest="enabled", action="store_true", help="evaluate it again")
    p.add_argument("--reason", help="why, recorded with the change")
    add_by(p)
    add_json(p)


def cmd_token_create(settings, args) -> int:
    from ..access.tokens import create

    migrate_ops(settings)
    made = create(settings, args.name, args.scope, args.days, who(settings, args))
    if args.json:
        print_json(made)
        return EXIT_OK
    print(made["token"])
    expiry = f", expires {made['expires_at']:%Y-%m-%d %H:%M} UTC" if made["expires_at"] else ""
    print(f"token {made['name']} (scope {made['scope']}{expiry}): shown this once; "
          "send it as `Authorization: Bearer <token>`", file=sys.stderr)
    return EXIT_OK


def cmd_token_list(settings, args) -> int:
    from ..access.tokens import listing

    rows = listing(settings)
    if args.json:
        print_json(rows)
        return EXIT_OK

    def when(value):
        return f"{value:%Y-%m-%d %H:%M}" if value else ""

    table("API tokens (UTC)", ["name", "scope", "created", "by", "expires", "last used", "revoked"],
          [[cell(r["name"]), r["scope"], when(r["created_at"]), cell(r["created_by"] or ""), when(r["expires_at"]),
            when(r["last_used_at"]), when(r["revoked_at"])] for r in rows], optional=("by",))
    return EXIT_OK


def cmd_token_revoke(settings, args) -> int:
    from ..access.tokens import revoke

    done = revoke(settings, args.name)
    if args.json:
        print_json(done)
    else:
        print(f"token {args.name} revoked")
    return EXIT_OK


def cmd_rules_list(settings, args) -> int:
    from ..health.service import rule_states

    rows = rule_states(settings)
    if args.json:
        print_json(rows)
        return EXIT_OK

    def toggled(r):
        t = r["toggled"]
        return f"{'on' if r['enabled'] else 'off'} by {t['changed_by']} {t['changed_at']:%m-%d %H:%M}" + (
            f": {t['reason']}" if t["reason"] else "") if t else ""

    table("alert rules", ["rule", "condition", "severity", "enabled", "toggled", "state per host"],
          [[cell(r["name"]), cell(f"{r['aggregate']}({r['metric']}, {r['window_s']:g}s) {r['op']} {r['threshold']:g}"),
            cell(r["severity"]), "yes" if r["enabled"] else "no", cell(toggled(r)),
            cell(", ".join(f"{s['host']}: {s['state']}" for s in r["states"]) or "not evaluated yet")]
           for r in rows], optional=("toggled", "condition"))
    return EXIT_OK


def cmd_rules_toggle(settings, args) -> int:
    from ..health.service import toggle_rule

    migrate_ops(settings)
    done = toggle_rule(settings, args.rule, args.enabled, who(settings, args), args.reason)
    if args.json:
        print_json(done)
    else:
        print(f"rule {done['rule']} is {'on' if done['enabled'] else 'off'} (was {'on' if done['was_enabled'] else 'off'}), "
              f"from the next evaluation")
    return EXIT_OK
