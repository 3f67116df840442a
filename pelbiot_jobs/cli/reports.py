"""``report``: build a report now, optionally e-mail it."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from ..lib.errors import InputError
from .common import EXIT_OK, add_json, command, migrate_ops, print_json


def register(sub) -> None:
    from ..reports import KINDS

    p = command(sub, "report", cmd_report, "build a report now (HTML + CSV under the reports folder), optionally e-mail it",
                "examples:\n  pelbiot-jobs report daily                      # yesterday (UTC)\n"
                "  pelbiot-jobs report weekly --date 2026-11-23 --email\n"
                "  pelbiot-jobs report monthly --output /srv/reports\n  pelbiot-jobs report summary\n")
    p.add_argument("kind", choices=KINDS, help="which report")
    p.add_argument("--date", help="a day in the period (YYYY-MM-DD); default: the last complete period")
    p.add_argument("--email", action="store_true", help="also e-mail it (SMTP, or the outbox folder)")
    p.add_argument("--output", help="reports folder (default PELBIOT_REPORTS_DIR)")
    add_json(p)


def cmd_report(settings, args) -> int:
    from ..reports.service import export

    day = None
    if args.date:
        try:
            day = dt.date.fromisoformat(args.date)
        except ValueError:
            raise InputError(f"--date {args.date!r}: use YYYY-MM-DD") from None
    migrate_ops(settings)  # the report is recorded in ops_reports
    result = export(settings, args.kind, day, args.email, Path(args.output).resolve() if args.output else None)
    notice = result.get("receivers")
    if notice:  # here, in this process: the command may run without a worker
        from ..health.service import deliver

        result["receivers"] = {}
        for receiver in notice["receivers"]:
            try:
                result["receivers"][receiver] = deliver(settings, notice["notification_id"], receiver, None).get(
                    "outcome", "skipped")
            except Exception as exc:
                from ..lib.errors import one_line

                result["receivers"][receiver] = f"failed: {one_line(exc, settings.secrets())}"
    if args.json:
        print_json(result)
    else:
        print(f"{args.kind} report {result['period']}: {result['files']} files in {result['folder']}"
              + (f"; e-mail: {result['email']}" if "email" in result else "")
              + "".join(f"; {name}: {outcome}" for name, outcome in result.get("receivers", {}).items()))
        if "warning" in result:
            print(f"pelbiot-jobs: {result['warning']}", file=sys.stderr)
    return EXIT_OK
