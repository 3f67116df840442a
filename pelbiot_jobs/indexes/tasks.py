"""indexes.reconcile: plan and create the missing declared indexes, under the guardrails."""

from __future__ import annotations

from ..celery_app import app, schedules_dir
from ..db.engine import engine_for
from ..errors import ScheduleError
from ..params import Name
from .apply import Guard, apply_plan, parse_window
from .live import read_schema
from .plan import plan
from .spec import FILE, parse_spec


def guard_of(settings, ignore_window: bool = False) -> Guard:
    return Guard(window=None if ignore_window else parse_window(settings.index_window),
                 max_table_bytes=settings.index_max_table_mb * 2**20, max_load=settings.index_max_load,
                 critical_load=settings.index_critical_load)


#: Digests this recent feed the advisor.
ADVICE_DAYS = 7


def current_plan(settings, spec_path=None) -> dict:
    """The plan of the declared indexes plus the advisor's suggestions from recent query digests."""
    import datetime as dt

    from sqlalchemy import select

    from ..db.ops_models import query_digests
    from ..runs import utcnow
    from .advisor import proposals_from_digests

    path = spec_path or schedules_dir(settings) / FILE
    problems: list[str] = []
    wanted = parse_spec(path, problems) if path.is_file() else []
    if problems:
        raise ScheduleError(problems)
    schema = read_schema(engine_for(settings.app_db_url))
    q = query_digests.c
    try:
        with engine_for(settings.ops_db_url).connect() as conn:
            digests = [dict(r) for r in conn.execute(select(
                q.query_id, q.example, q.full_scans, q.rows_sent_sum, q.rows_examined_sum, q.explain)
                .where(q.window_start >= utcnow() - dt.timedelta(days=ADVICE_DAYS))).mappings()]
    except Exception:  # a fresh ops DB without digests yet: no advice
        digests = []
    return plan(wanted, schema, proposals_from_digests(digests, schema))


@app.task(name="indexes.reconcile", bind=True, exclusive=True, soft_time_limit=7000, time_limit=7200,
          params={"only": Name(64)})
def indexes_reconcile(self, only: str | None = None) -> dict:
    """Create the declared indexes that are missing, online, one at a time, under the guardrails."""
    from ..errors import ConfigError
    from ..runs import skipped

    settings = app.pelbiot_settings
    try:
        admin = settings.admin_url("indexes.reconcile")
    except ConfigError as exc:
        return skipped(str(exc))
    p = current_plan(settings)
    creates = [e for e in p["create"] if (only is None or e["name"] == only)
               and (e["source"] != "advisor" or settings.index_apply_advice)]
    run_id = self.request.id or "local"
    results = apply_plan(engine_for(admin), engine_for(settings.ops_db_url), creates,
                         guard_of(settings), run_id)
    # The advisor's indexes not created (configuration does not allow it) are stored as suggestions.
    from .apply import _record
    from ..runs import utcnow

    for e in p["create"]:
        if e["source"] == "advisor" and e not in creates:
            _record(engine_for(settings.ops_db_url), {
                "run_id": run_id, "table_name": e["table"], "index_name": e["name"], "statement": e["sql"],
                "started_at": utcnow(), "outcome": "suggested", "reason": e["reason"][:1000],
                "target_query": e.get("target")})
    return {"created": [r["index"] for r in results if r["outcome"] == "created"],
            "skipped": [f"{r['index']}: {r['reason']}" for r in results if r["outcome"] != "created"],
            "invalid": len(p["invalid"]), "duplicates": len(p["duplicates"])}
