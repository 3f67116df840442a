"""Slow queries offline: ``slowlog`` digests files like pt-query-digest, no database needed."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from ..lib.errors import InputError
from .common import EXIT_OK, add_json, command, console, duration, group, num, positive, print_json, read_command, table


def register(sub) -> None:
    register_browser(sub)
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
    p.add_argument("--workers", type=positive, help="processes (default: one for less than 24 MB of plain logs, else every core)")
    p.add_argument("--show-literals", action="store_true",
                   help="show example queries with their literal values (masked by default)")
    p.add_argument("--explain", nargs="?", const="", metavar="DATABASE_URL",
                   help="EXPLAIN the 10 classes with the most time on this database (default: the app DB, "
                        "PELBIOT_APP_DB_URL); only examples proven plain reads are explained")
    p.add_argument("--reader", choices=("c", "python"),
                   help="how records are read: c (the default when built: the usual layouts in C, the rest in "
                        "Python) or python (the Python parser alone, 3-10 times slower; the same digest)")
    p.set_defaults(no_settings=True)  # reads no configuration (but the app DB's URL for --explain)


def cmd_slowlog(settings, args) -> int:
    from ..queries.service import digest_logs, render_digest, slow_log_input
    from ..queries.slowlog import MAX_RECORD

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
            digest = digest_logs(paths, args.workers, since, progress=lambda done: bar.update(task, completed=done),
                                 use=args.reader)
    else:
        digest = digest_logs(paths, args.workers, since, use=args.reader)
    explain_url = None
    if args.explain is not None:
        if not args.explain:
            from ..config import load_settings

            settings = load_settings()
        explain_url = args.explain or settings.app_db_url
    summary, text = render_digest(digest, args.limit, args.show_literals, args.format,
                                  title=", ".join(str(p) for p in paths), explain_url=explain_url)
    if args.output:
        write_atomically(Path(args.output), text)
        print(f"{len(summary['classes'])} classes of {summary['global']['query_count']} events written to "
              f"{args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if digest.skipped or digest.oversized:  # one line, whatever went wrong how often
        over = f" ({digest.oversized} over {MAX_RECORD >> 20} MB, not read)" if digest.oversized else ""
        print(f"pelbiot-jobs: {digest.skipped + digest.oversized} malformed, truncated or oversized events "
              f"skipped{over}", file=sys.stderr)
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


def register_browser(sub) -> None:
    p, actions = group(sub, "queries", "the stored slow-query digests (every source): the worst classes, one class",
                       "examples:\n  pelbiot-jobs queries                          # the last 24 h by total time\n"
                       "  pelbiot-jobs queries --since 7d --sort p95 --limit 10\n"
                       "  pelbiot-jobs queries --host 10.0.0.12 --json\n"
                       "  pelbiot-jobs queries --by tag:route          # which API route sends the most query time\n"
                       "  pelbiot-jobs queries --by user --schema pelbiot\n"
                       "  pelbiot-jobs queries --tag route=/api/devices --since 7d\n"
                       "  pelbiot-jobs queries show 55EAF920E0E331BA   # history, example, EXPLAIN, index advice\n",
                       default=cmd_queries_list, reads=True)
    _list_options(p)
    _list_options(read_command(actions, "list", cmd_queries_list, "the worst query classes of a window, with their trend"))
    p = read_command(actions, "show", cmd_queries_show, "one query class: its hours, example, EXPLAIN and index advice")
    p.add_argument("query_id", help="the query ID (pt-query-digest's checksum; its first characters are enough)")
    add_json(p)


def _list_options(p) -> None:
    p.add_argument("--since", default="24h", help="the window: 1h, 24h, 7d... (default 24h; the trend compares it "
                                                  "with the window of the same length before)")
    p.add_argument("--sort", choices=("total", "p95", "calls"), default="total", help="order (default: total time)")
    p.add_argument("--by", metavar="user|host|schema|tag:NAME",
                   help="group the window's query time by client user, client host, schema or a tag of the "
                        "queries' SQL comments (sqlcommenter or key=value), e.g. tag:route")
    p.add_argument("--user", help="only what this client user sent")
    p.add_argument("--host", help="only what this client host sent")
    p.add_argument("--schema", help="only queries on this schema")
    p.add_argument("--tag", action="append", metavar="NAME=VALUE",
                   help="only queries whose SQL comment has this tag (repeat: all must hold), e.g. route=/api/devices")
    p.add_argument("--source", choices=("file", "table", "performance_schema"), help="only this source")
    p.add_argument("--limit", type=positive, default=20, help="at most this many classes (default 20)")
    add_json(p)


def cmd_queries_list(settings, args) -> int:
    from ..lib.templates import human_seconds
    from ..lib.textsafe import cell
    from ..queries.service import parse_tag_filters, stored

    window = duration("--since", args.since)
    tags = parse_tag_filters(args.tag)
    if args.by:
        return _list_grouped(settings, args, window, tags)
    rows = stored(settings, window_s=window, sort=args.sort, limit=args.limit, host=args.host, source=args.source,
                  user=args.user, schema=args.schema, tags=tags)
    if args.json:
        print_json(rows)
        return EXIT_OK

    def trend(r) -> str:
        if r["previous_time_s"] is None:
            return "new"
        if r["trend_percent"] is None:
            return ""
        arrow = "↑" if r["trend_percent"] > 5 else ("↓" if r["trend_percent"] < -5 else "→")
        return f"{arrow} {r['trend_percent']:+.0f} %"

    table(f"query classes of the last {args.since} by {args.sort}{_filters_said(args)} "
          f"(trend: total time against the {args.since} before)",
          ["query ID", "source", "total", "share", "calls", "p95", "examined/sent", "trend", "flags", "fingerprint"],
          [[r["query_id"][:16], r["source"], human_seconds(r["time_s"] or 0), f"{r['share_percent']:.1f} %",
            f"{int(r['calls'] or 0):,}", human_seconds(r["p95_s"]) if r["p95_s"] is not None else "",
            num(r["examined_per_sent"]), trend(r), cell(r["flags"] or ""), cell(r["fingerprint"])] for r in rows],
          optional=("source", "flags", "examined/sent", "share", "p95"), flexible="fingerprint",
          empty=f"no stored query digests in the last {args.since}{_filters_said(args)} (queries.analyze stores "
                f"them hourly; `pelbiot-jobs run queries.analyze` runs it now)")
    return EXIT_OK


def _filters_said(args) -> str:
    said = [f"{k} {v}" for k, v in (("user", args.user), ("host", args.host), ("schema", args.schema),
                                     ("source", args.source)) if v]
    said += [f"tag {t}" for t in args.tag or ()]
    return f" ({', '.join(said)})" if said else ""


def _list_grouped(settings, args, window: float, tags) -> int:
    from ..lib.templates import human_seconds
    from ..lib.textsafe import cell
    from ..queries.service import attributed

    rows = attributed(settings, args.by, window_s=window, sort=args.sort, limit=args.limit, source=args.source,
                      user=args.user, host=args.host, schema=args.schema, tags=tags)
    if args.json:
        print_json(rows)
        return EXIT_OK
    table(f"query time of the last {args.since} by {args.by}{_filters_said(args)}",
          [args.by, "total", "share", "calls", "classes", "examined/sent", "worst class", "its total", "fingerprint"],
          [[cell(r["value"]), human_seconds(r["time_s"]), f"{r['share_percent']:.1f} %", f"{r['calls']:,}",
            f"{r['classes']:,}", num(r["examined_per_sent"]), r["worst"]["query_id"][:16],
            human_seconds(r["worst"]["time_s"]), cell(r["worst"]["fingerprint"] or "")] for r in rows],
          optional=("examined/sent", "classes", "its total"), flexible="fingerprint",
          empty=f"no stored query slices in the last {args.since}{_filters_said(args)} (queries.analyze stores "
                f"them hourly; `pelbiot-jobs run queries.analyze` runs it now)")
    return EXIT_OK


def cmd_queries_show(settings, args) -> int:
    from ..lib.templates import human_seconds
    from ..lib.textsafe import cell, plain
    from ..queries.service import digest_history, resolve_query_id

    result = digest_history(settings, resolve_query_id(settings, args.query_id))
    if args.json:
        print_json(result)
        return EXIT_OK
    print(plain(f"query {result['query_id']}"))
    print(plain(f"fingerprint: {result['fingerprint']}"))
    print(plain(f"example:     {result['example']}"))
    table("by hour (newest first)", ["hour (UTC)", "source", "calls", "total", "p95", "rows examined", "rows sent"],
          [[f"{w['window_start']:%Y-%m-%d %H:%M}", w["source"], f"{w['calls']:,}", human_seconds(w["query_time_sum"] or 0),
            human_seconds(w["query_time_p95"]) if w["query_time_p95"] is not None else "",
            f"{int(w['rows_examined_sum'] or 0):,}", f"{int(w['rows_sent_sum'] or 0):,}"] for w in result["windows"][:48]])
    table("who sends it (client user, host, schema, tags of its SQL comments)",
          ["user", "host", "schema", "tags", "calls", "total"],
          [[cell(x["user"]), cell(x["host"]), cell(x["schema"]),
            cell(", ".join(f"{k}={v}" for k, v in x["tags"].items())), f"{x['calls']:,}", human_seconds(x["time_s"])]
           for x in result["senders"]], optional=("tags", "schema"), flexible="tags",
          empty="who sends it: not recorded (the slices of its hours are not stored)")
    if result["explain"]:
        columns = [k for k in result["explain"][0] if k != "refused"]
        if columns:
            table(f"EXPLAIN (flags: {result['explain_flags'] or 'none'})", columns,
                  [[cell("" if row.get(k) is None else str(row.get(k))) for k in columns] for row in result["explain"]])
        else:
            print(plain(f"EXPLAIN refused: {result['explain'][0]['refused']}"))
    else:
        print("EXPLAIN: none stored (only plain reads among the worst classes of a run are explained)")
    suggestions = [s for s in result["suggestions"] if "problem" not in s]
    for s in result["suggestions"]:
        if "problem" in s:
            print(plain(f"index advice: unavailable ({s['problem']})"))
    table("index advice", ["table", "columns", "why", "EXPLAIN rows now"],
          [[cell(s["table"]), cell(", ".join(s["columns"])), cell(s["reason"]), num(s.get("explain_rows_before"))]
           for s in suggestions], empty="index advice: none for this query")
    for s in suggestions:
        if s.get("verdict"):
            shared = f" (one index for {len(s['query_ids'])} query classes)" if len(s.get("query_ids", [])) > 1 else ""
            print(plain(f"weighed: {s['verdict']}{shared}"))
        if s.get("rewrite"):
            print(plain(f"rewrite: {s['rewrite']}"))
        if s.get("alternative"):
            print(plain(s["alternative"]))
    if result["indexes"]:
        table("index changes for it", ["when (UTC)", "outcome", "index", "EXPLAIN rows before → after",
                                       "latency ms before → after"],
              [[f"{c['started_at']:%Y-%m-%d %H:%M}", c["outcome"], cell(f"{c['table_name']}.{c['index_name'] or ''}"),
                f"{num(c['explain_rows_before'])} → {num(c['explain_rows_after'])}",
                f"{num(c['latency_ms_before'])} → {num(c['latency_ms_after'])}"] for c in result["indexes"]])
    return EXIT_OK
