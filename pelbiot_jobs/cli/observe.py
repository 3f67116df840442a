"""What the installation looks like now: ``metrics`` and ``health``."""

from __future__ import annotations

from ..lib.textsafe import cell, escaped
from .common import EXIT_OK, add_json, console, duration, num, print_json, read_command, table


def register(sub) -> None:
    p = read_command(sub, "metrics", cmd_metrics, "latest value and trend of every sampled metric; API requests per minute",
                "examples:\n  pelbiot-jobs metrics\n  pelbiot-jobs metrics --since 6h --host web1\n"
                "  pelbiot-jobs metrics --json | jq '.metrics[] | select(.metric==\"host.cpu_percent\")'\n")
    p.add_argument("--since", default="1h", help="window, e.g. 15m, 1h, 1d (default 1h)")
    p.add_argument("--host", help="only this host (a host name, mysql@db:3306, redis@cache:6379...)")
    add_json(p)

    p = read_command(sub, "health", cmd_health, "the current health score (0-100), its components and trend",
                "examples:\n  pelbiot-jobs health\n  pelbiot-jobs health --json\n")
    add_json(p)


def cmd_metrics(settings, args) -> int:
    from ..metrics.service import read

    data = read(settings, duration("--since", args.since), args.host)
    if args.json:
        print_json(data)
        return EXIT_OK
    out = console()
    if not data["metrics"] and not data["requests"]:
        out.print(f"no samples in the last {escaped(args.since)}" + (f" for host {escaped(args.host)}" if args.host else "")
                  + "; is `pelbiot-jobs up` (or a worker and beat) running?")
        return EXIT_OK
    shown = [m for m in data["metrics"] if not m["not_applicable"]]
    table(f"metrics, last {escaped(args.since)} (UTC)", ["host", "metric", "latest", "min", "max", "trend"],
          [[cell(m["host"]), cell(m["metric"]), num(m["latest"]), num(m["min"]), num(m["max"]), m["trend"]]
           for m in shown], out=out, optional=("min", "max"), flexible="trend")
    hidden = len(data["metrics"]) - len(shown)
    if hidden:  # MySQL-only metrics on a SQLite app DB, for instance
        out.print(f"[dim]{hidden} metrics that do not apply here are left out (--json lists them)[/]")
    if data["requests"]:
        table("API requests per minute",
              ["minute", "source", "requests", "5xx", "error %", "p50 ms", "p95 ms", "p99 ms", "slowest"],
              [[r["minute"][11:16], cell(r["source"]), str(r["requests"]), str(r["c5xx"]), num(r["error_rate_percent"]),
                num(r["p50_ms"]), num(r["p95_ms"]), num(r["p99_ms"]),
                cell(r["slowest_routes"][0]["route"]) if r["slowest_routes"] else ""]
               for r in data["requests"][-15:]], out=out, optional=("p50 ms", "p99 ms", "source", "slowest"))
    return EXIT_OK


def cmd_health(settings, args) -> int:
    from ..health.service import current_health
    from ..metrics.view import sparkline

    data = current_health(settings)
    if args.json:
        print_json(data)
        return EXIT_OK
    out = console()
    overall = data["overall"]
    if overall is None:
        out.print("no health score yet; health.score runs every minute once `pelbiot-jobs up` is running")
        return EXIT_OK
    colour = {"EXCELLENT": "green", "GOOD": "green", "WARNING": "yellow"}.get(overall["status"], "red")
    out.print(f"health [{colour}]{num(overall['score']) if overall['score'] is not None else '-'} "
              f"{overall['status']}[/] at {overall['ts'][:16]} UTC, resting on {overall['present']} of "
              f"{overall['of']} components; last hour {sparkline([t['score'] for t in data['trend']])}")
    from ..health.service import component_units

    units = component_units(settings)
    table(None, ["host", "score", "status", *(c["name"] for c in overall["components"])],
          [["all" if s["host"] == "*" else cell(s["host"]), num(s["score"]) if s["score"] is not None else "-",
            s["status"], *[("missing" if c["missing"] else f"{num(round(c['value'], 1))}{units.get(c['name'], '')} "
                            f"({num(c['score'])})") for c in s["components"]]]
           for s in [overall, *data["hosts"]]], out=out, optional=("status",))
    out.print("[dim]each component: its value over health.yaml's window, and (the points it gives): 100 at or "
              "below good, 75 at or below warning, 50 at or below critical, else 0[/]")
    return EXIT_OK
