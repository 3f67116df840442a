"""The ops tables: where every result of pelbiot-jobs lands.

Every table has the ``ops_`` prefix so the ops DB may be the app DB itself. Rows are keyed by
what they describe (task id + attempt, table + hour...) so a redelivered task upserts the same
row instead of writing a second one. Change these only together with a migration
(``pelbiot-jobs db check`` fails when the two differ).
"""

from __future__ import annotations

from sqlalchemy import (Column, Float, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, BigInteger)

from .types import BigId, UtcDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
})

#: Final states of a run; RETRY and STARTED are not final.
FINAL_STATES = ("SUCCESS", "FAILURE", "SKIPPED")

job_runs = Table(
    "ops_job_runs", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("task", String(100), nullable=False),
    Column("job", String(100)),  # the beat entry that sent it, when beat did
    Column("trigger", String(16), nullable=False),  # beat, cli, once, manual (Flower, API)
    Column("args", Text),
    Column("queue", String(100)),
    Column("scheduled_at", UtcDateTime),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("state", String(16), nullable=False),  # STARTED, SUCCESS, FAILURE, RETRY, SKIPPED
    Column("duration_s", Float),
    Column("error", String(1000)),
    Column("result", String(1000)),
    Column("host", String(255)),
    Column("worker", String(255)),
    UniqueConstraint("task_id", "attempt"),
    Index(None, "task", "started_at"),
    Index(None, "job", "started_at"),  # a job's latest run (status, the Jobs page, the API)
    Index(None, "state", "finished_at"),
    Index(None, "started_at"),
)

table_stats = Table(
    "ops_table_stats", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("schema_name", String(64), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("captured_at", UtcDateTime, nullable=False),  # truncated to the hour: one row per table and hour
    Column("engine", String(32)),
    Column("row_count", BigInteger),
    Column("data_bytes", BigInteger),
    Column("index_bytes", BigInteger),
    Column("free_bytes", BigInteger),
    Column("exact", Integer, nullable=False, default=0),  # 1: counted; 0: the engine's estimate
    UniqueConstraint("schema_name", "table_name", "captured_at"),
    Index(None, "captured_at"),
)

# --- metrics ----------------------------------------------------------------------------------

metric_samples = Table(
    "ops_metric_samples", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("metric", String(160), nullable=False),  # e.g. host.cpu_percent, host.disk_used_percent{/}
    Column("host", String(120), nullable=False),  # the sampled thing: a host name, mysql@db:3306, redis@cache:6379
    Column("ts", UtcDateTime, nullable=False),  # the sample's slot (its scheduled second): redelivery upserts
    Column("value", Float),  # NULL: not applicable to this source (never a fake zero)
    UniqueConstraint("metric", "host", "ts"),
    Index(None, "ts"),
    # One host's charts read from the index alone (0019: it was (host, ts), then a row lookup per sample).
    Index(None, "host", "ts", "metric", "value"),
)

metric_rollups = Table(
    "ops_metric_rollups", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("metric", String(160), nullable=False),
    Column("host", String(120), nullable=False),
    Column("hour", UtcDateTime, nullable=False),
    Column("samples", Integer, nullable=False),
    Column("min", Float),
    Column("avg", Float),
    Column("max", Float),
    Column("p95", Float),
    UniqueConstraint("metric", "host", "hour"),
    Index(None, "hour"),
    Index(None, "host", "hour"),  # one host's charts, the hosts of a window (0019)
)

request_minutes = Table(
    "ops_request_minutes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),  # stream or access_log
    Column("minute", UtcDateTime, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("c4xx", Integer, nullable=False),
    Column("c5xx", Integer, nullable=False),
    Column("error_rate_percent", Float),
    Column("p50_ms", Float),
    Column("p95_ms", Float),
    Column("p99_ms", Float),
    Column("avg_ms", Float),
    Column("max_ms", Float),
    Column("slowest_routes", Text),  # JSON list
    Column("agg", Text, nullable=False),  # mergeable aggregate (histogram, per route) as JSON
    UniqueConstraint("source", "minute"),
    Index(None, "minute"),
)

checkpoints = Table(
    "ops_checkpoints", metadata,  # db/checkpoints.py; ops_sampler_state before revision 0012
    Column("name", String(200), primary_key=True),  # e.g. host:web1, slowlog:file:/var/log/..., stream:pelbiot:requests
    Column("updated_at", UtcDateTime, nullable=False),
    Column("data", Text, nullable=False),  # JSON: the last reading, offsets, stream ids
)

# --- cache warming ----------------------------------------------------------------------------

cache_warm_runs = Table(
    "ops_cache_warm_runs", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),  # the task id: a retried run updates its rows
    Column("warmer", String(100), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("duration_s", Float),
    Column("keys", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("error", String(1000)),
    UniqueConstraint("run_id", "warmer"),
    Index(None, "started_at"),
)

# --- health, alerts, incidents, notifications -------------------------------------------------

health_scores = Table(
    "ops_health_scores", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("host", String(120), nullable=False),  # a host name, or "*" for the whole installation
    Column("ts", UtcDateTime, nullable=False),  # the minute it stands for
    Column("score", Float),  # NULL: no component had data
    Column("status", String(16), nullable=False),
    Column("present", Integer, nullable=False),  # components with data
    Column("components", Text, nullable=False),  # JSON
    UniqueConstraint("host", "ts"),
    # a fleet's trend read from the index alone (0019: it was (ts), then a row lookup per score)
    Index(None, "ts", "host", "score"),
)

alert_states = Table(
    "ops_alert_states", metadata,
    Column("rule", String(100), primary_key=True),
    Column("host", String(120), primary_key=True),
    Column("state", String(16), nullable=False),  # inactive, pending, firing
    Column("since", UtcDateTime),
    Column("clearing_since", UtcDateTime),
    Column("fired_at", UtcDateTime),
    Column("value", Float),
    Column("evaluated_at", UtcDateTime, nullable=False),
    Column("last_notified_at", UtcDateTime),
)

incidents = Table(
    "ops_incidents", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("host", String(120), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open, acknowledged, resolved
    Column("opened_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Column("acknowledged_by", String(100)),
    Column("acknowledged_at", UtcDateTime),
    Column("hold", Integer, nullable=False, default=0),  # 1: acknowledged to be closed by hand
    Column("resolved_by", String(100)),  # "auto" or an operator
    Column("last_value", Float),
    Column("summary", String(500)),
    Index(None, "rule", "host", "status"),
    Index(None, "opened_at"),
)

incident_events = Table(
    "ops_incident_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("kind", String(32), nullable=False),  # opened, acknowledged, resolved, notified, reopened
    Column("actor", String(100), nullable=False),  # "pelbiot-jobs" or the operator
    Column("detail", String(1000)),
    Index(None, "incident_id", "at"),
)

silences = Table(
    "ops_silences", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("host", String(120)),  # NULL: every host
    Column("until", UtcDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reason", String(500)),
    Index(None, "rule", "until"),
)

notifications = Table(
    "ops_notifications", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("kind", String(32), nullable=False),  # alerts
    Column("subject", String(500), nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text),
    Column("recipients", String(1000), nullable=False),
    Column("status", String(16), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_at", UtcDateTime),
    Column("last_error", String(1000)),
    Index(None, "status", "created_at"),
)

notification_attempts = Table(
    "ops_notification_attempts", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("notification_id", BigInteger, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),  # sent, outbox, failed
    Column("detail", String(1000)),
    Column("receiver", String(40)),  # an Apprise receiver's name; NULL: the e-mail
    Index(None, "notification_id"),
)

# --- slow queries -----------------------------------------------------------------------------

query_digests = Table(
    "ops_query_digests", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),  # file, table, performance_schema (PELBIOT_SLOWLOG_SOURCE)
    Column("query_id", String(32), nullable=False),  # pt-query-digest's checksum of the fingerprint
    Column("window_start", UtcDateTime, nullable=False),  # the hour the events fall in
    Column("fingerprint", Text, nullable=False),
    Column("example", Text),  # literals masked unless configured otherwise
    Column("calls", Integer, nullable=False),
    Column("query_time_sum", Float, nullable=False),
    Column("query_time_min", Float),
    Column("query_time_max", Float),
    Column("query_time_avg", Float),
    Column("query_time_median", Float),
    Column("query_time_p95", Float),
    Column("lock_time_sum", Float),
    Column("rows_sent_sum", BigInteger),
    Column("rows_examined_sum", BigInteger),
    Column("rows_affected_sum", BigInteger),
    Column("bytes_sent_sum", BigInteger),
    Column("full_scans", Integer),
    Column("filesorts", Integer),
    Column("tmp_disk_tables", Integer),
    Column("first_seen", UtcDateTime),
    Column("last_seen", UtcDateTime),
    Column("databases", String(1000)),  # JSON {name: count}
    Column("users", String(1000)),
    Column("hosts", String(1000)),
    Column("slow", Integer, nullable=False, default=0),  # p95 (or the average, without one) above the slow threshold
    Column("hist", Text, nullable=False),  # mergeable Query_time histogram (JSON)
    Column("explain", Text),  # JSON plan rows of the example, when it is a SELECT
    Column("explain_flags", String(200)),  # full_scan, filesort, temporary, no_key
    UniqueConstraint("source", "query_id", "window_start"),
    Index(None, "window_start"),
)

def _slice_table(name: str, when: str) -> Table:
    """A table of query slices per ``when`` (an hour's or a day's start): the hourly table and its
    daily sums have one shape."""
    return Table(
        name, metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("source", String(32), nullable=False),
        Column("query_id", String(32), nullable=False),
        Column(when, UtcDateTime, nullable=False),
        Column("user_name", String(80)),  # None where the source does not say (performance_schema)
        Column("client_host", String(255)),
        Column("schema_name", String(64)),
        Column("tags", String(1000), nullable=False, default=""),  # queries.tags' stored form: &key=value&...&
        Column("slice_key", String(40), nullable=False),  # SHA-1 of user, host, schema and tags
        Column("calls", Integer, nullable=False),
        Column("query_time_sum", Float, nullable=False),
        Column("lock_time_sum", Float),
        Column("rows_examined_sum", BigInteger),
        Column("rows_sent_sum", BigInteger),
        Column("rows_affected_sum", BigInteger),
        UniqueConstraint("source", "query_id", when, "slice_key"),
        Index(None, when),
    )


#: What a query class's time is attributed to: one row per source, class, hour and slice (the
#: client's user, host and schema, and the tags of its SQL comments); the sums of a class-hour's
#: slices are its digest's. At most queries.analyze.MAX_SLICES per class and hour; the rest are
#: summed in one slice whose user, host and schema are "(other)".
query_slices = _slice_table("ops_query_slices", "window_start")
#: The slices summed per UTC day (0019; ``day`` is its 00:00 UTC): a week or a month of
#: attribution is read from a row per class, slice and day, with only the hours at the window's
#: edges from ops_query_slices. Rebuilt from the hourly rows of each class-day queries.analyze
#: writes (never incremented on its own).
query_slices_daily = _slice_table("ops_query_slices_daily", "day")

# --- reports ----------------------------------------------------------------------------------

reports = Table(
    "ops_reports", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # daily, weekly, monthly, summary
    Column("period_start", UtcDateTime, nullable=False),
    Column("period_end", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("path", String(500), nullable=False),  # the folder of the report's files
    Column("files", Text, nullable=False),  # JSON [{name, bytes, sha256}]
    Column("emailed_to", String(1000)),
    Column("outcome", String(32), nullable=False),  # written, emailed, outbox, mail_failed
    Column("error", String(1000)),
    UniqueConstraint("kind", "period_start"),
    Index(None, "created_at"),
)

# --- index changes ----------------------------------------------------------------------------

index_changes = Table(
    "ops_index_changes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("index_name", String(64), nullable=False),
    Column("statement", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("duration_s", Float),
    Column("outcome", String(16), nullable=False),  # created, skipped, failed, aborted
    Column("reason", String(1000)),
    Column("table_bytes", BigInteger),
    Column("threads_running_max", Integer),  # the highest load seen while it ran
    Column("target_query", Text),  # the slow query the index is for (literals masked), when known
    Column("explain_rows_before", BigInteger),
    Column("explain_rows_after", BigInteger),
    Column("latency_ms_before", Float),
    Column("latency_ms_after", Float),
    Column("measure_note", String(1000)),  # why the target query was not measured (refused, failed)
    UniqueConstraint("run_id", "table_name", "index_name"),
    Index(None, "started_at"),
)

recommendations = Table(
    "ops_recommendations", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # A finding: one row per check (code) and what it is about (subject), kept while the check finds it.
    Column("day", UtcDateTime, nullable=False),  # the day it was last seen
    Column("code", String(64), nullable=False),  # the check (tuning/checks.py)
    Column("severity", String(16), nullable=False),  # critical, warning, info
    Column("message", String(1000), nullable=False),
    Column("evidence", Text, nullable=False),  # JSON of the values it read
    Column("category", String(16), nullable=False, server_default="performance"),
    Column("subject", String(255), nullable=False, server_default=""),  # an account, a table, a variable
    Column("fix", String(1000), nullable=False, server_default=""),
    Column("first_seen", UtcDateTime),
    Column("resolved_at", UtcDateTime, index=True),  # set when a run of its check no longer finds it
    UniqueConstraint("code", "subject"),
)

effects = Table(
    "ops_effects", metadata,
    # What a task did outside pelbiot-jobs (an e-mail sent), recorded before it is done and marked
    # done after, so a task run again after its worker died does not do it twice (effects.py).
    Column("effect_key", String(191), primary_key=True),
    Column("task_id", String(64)),
    Column("what", String(255), nullable=False),
    Column("state", String(16), nullable=False),  # claimed, done
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("done_at", UtcDateTime),
    Column("attempts", Integer, nullable=False, default=1),
    Column("detail", String(1000)),
)

api_tokens = Table(
    "ops_api_tokens", metadata,
    # Who may call the REST API: a token is shown once when created; only its SHA-256 is kept.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("scope", String(8), nullable=False),  # read, write (write includes read)
    Column("token_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(100)),
    Column("expires_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    UniqueConstraint("name"),
    UniqueConstraint("token_hash"),
)

rule_toggles = Table(
    "ops_rule_toggles", metadata,
    # An alert rule switched off (or on again) at run time, over what alerts.yaml says: who, when, why.
    Column("rule", String(100), primary_key=True),
    Column("enabled", Integer, nullable=False),
    Column("changed_by", String(100), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("reason", String(500)),
)
