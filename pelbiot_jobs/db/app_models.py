"""The PELBIOT app schema, as the real schema defines it.

Reserved words (``load``, ``condition``) are quoted by SQLAlchemy wherever they appear. The real
schema's own indexes are kept, duplicates included (users.idx_username beside the UNIQUE key on
username, for instance), because the index work must find them.

SQLite keeps index names in one namespace per database while MySQL scopes them to a table, and
PELBIOT reuses names such as ``idx_device_id`` on many tables. ``build_metadata(sqlite=True)``
therefore prefixes index names with ``<table>__`` on SQLite; ``mysql_index_name`` undoes it.
"""

from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Date, Enum, ForeignKey, Index, Integer,
                        MetaData, Numeric, String, Table, Text, TIMESTAMP, UniqueConstraint, text)

SQLITE_INDEX_SEPARATOR = "__"
SEVERITY = ("info", "warning", "critical")
ALERT_STATUS = ("open", "acknowledged", "resolved")


def mysql_index_name(name: str) -> str:
    """The index name as PELBIOT's schema spells it (strip the SQLite table prefix)."""
    return name.split(SQLITE_INDEX_SEPARATOR, 1)[-1]


def build_metadata(sqlite: bool = False) -> MetaData:
    """The PELBIOT tables; ``sqlite`` makes index names unique database-wide."""
    md = MetaData()
    now = text("CURRENT_TIMESTAMP")

    def created():
        return Column("created_at", TIMESTAMP, nullable=True, server_default=now)

    def updated():
        return Column("updated_at", TIMESTAMP, nullable=True, server_default=now)

    def pk():
        return Column("id", Integer, primary_key=True, autoincrement=True)

    def fk(column, target, ondelete, nullable=True):
        return Column(column, Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable)

    def table(name, *cols, keys=(), uniques=(), **kw):
        items = list(cols)
        for uname, ucols in uniques:
            items.append(UniqueConstraint(*ucols, name=uname))
        t = Table(name, md, *items, mysql_engine="InnoDB", mysql_charset="utf8mb4", **kw)
        for iname, icols in keys:
            Index(f"{name}{SQLITE_INDEX_SEPARATOR}{iname}" if sqlite else iname, *(t.c[c] for c in icols))
        return t

    table("users", pk(),
          Column("username", String(50), nullable=False),
          Column("email", String(100), nullable=False),
          Column("password", String(255), nullable=False),
          Column("role", Enum("user", "admin", "super_admin", "operator", name="user_role"), server_default="user"),
          Column("first_name", String(100)), Column("last_name", String(100)), Column("phone", String(20)),
          Column("is_active", Boolean, server_default=text("1")),
          created(), updated(), Column("last_login", TIMESTAMP, nullable=True),
          uniques=[("username", ["username"]), ("email", ["email"])],
          keys=[("idx_username", ["username"]), ("idx_email", ["email"]), ("idx_role", ["role"])])

    table("devices", pk(),
          Column("name", String(255), nullable=False),
          Column("type", String(50), nullable=False),
          Column("status", Enum("online", "offline", "error", name="device_status"), server_default="online"),
          Column("location", String(255)), Column("ip_address", String(15)),
          created(), updated(),
          keys=[("idx_type", ["type"]), ("idx_status", ["status"])])

    table("alerts", pk(),
          fk("device_id", "devices.id", "CASCADE"),
          Column("severity", Enum(*SEVERITY, name="alert_severity"), server_default="info"),
          Column("message", String(500)),
          Column("status", Enum(*ALERT_STATUS, name="alert_status"), server_default="open"),
          created(), updated(),
          keys=[("idx_device_id", ["device_id"]), ("idx_severity", ["severity"]),
                ("idx_status", ["status"]), ("idx_created_at", ["created_at"])])

    table("reports", pk(),
          Column("name", String(255)), Column("report_type", String(50)),
          Column("start_date", Date), Column("end_date", Date), Column("created_by", String(255)),
          created(),
          keys=[("idx_report_type", ["report_type"]), ("idx_created_at", ["created_at"])])

    table("load_profiles", pk(),
          fk("device_id", "devices.id", "CASCADE"),
          Column("hour", Integer),
          Column("load", Numeric(10, 2)), Column("peak", Numeric(10, 2)), Column("average", Numeric(10, 2)),
          created(),
          keys=[("idx_device_id", ["device_id"]), ("idx_hour", ["hour"])])

    table("trends", pk(),
          fk("device_id", "devices.id", "CASCADE"),
          Column("date", Date), Column("power", Numeric(10, 2)), Column("energy", Numeric(10, 2)),
          Column("temperature", Numeric(5, 2)), Column("load", Numeric(5, 2)),
          created(),
          keys=[("idx_device_id", ["device_id"]), ("idx_date", ["date"]), ("idx_created_at", ["created_at"])])

    table("sensors", pk(),
          Column("name", String(255), nullable=False),
          Column("protocol", Enum("mqtt", "modbus-tcp", "modbus-rtu", "serial", "rest", name="sensor_protocol"),
                 nullable=False),
          Column("device_id", Integer),
          Column("register_address", Integer),
          Column("min_value", Numeric(10, 2)), Column("max_value", Numeric(10, 2)),
          Column("unit", String(50)), Column("config", JSON),
          Column("status", Enum("active", "inactive", "error", "registered", name="sensor_status"),
                 server_default="inactive"),
          Column("location", String(255)), Column("last_register", TIMESTAMP, nullable=True),
          created(), Column("created_by", String(255)), updated(), Column("updated_by", String(255)),
          keys=[("idx_protocol", ["protocol"]), ("idx_status", ["status"]), ("idx_device_id", ["device_id"]),
                ("idx_created_at", ["created_at"])])

    table("sensor_data",
          Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
          fk("sensor_id", "sensors.id", "CASCADE", nullable=False),
          Column("value", Numeric(15, 6), nullable=False),
          Column("unit", String(50)), Column("metadata", JSON),
          Column("quality_score", Integer, server_default=text("100")),
          Column("is_anomaly", Boolean, server_default=text("0")),
          Column("timestamp", TIMESTAMP, nullable=True, server_default=now),
          keys=[("idx_sensor_id", ["sensor_id"]), ("idx_timestamp", ["timestamp"]),
                ("idx_sensor_timestamp", ["sensor_id", "timestamp"]), ("idx_quality_score", ["quality_score"])])

    table("device_sensor_mapping", pk(),
          fk("device_id", "devices.id", "CASCADE", nullable=False),
          fk("sensor_id", "sensors.id", "CASCADE", nullable=False),
          Column("position", String(100)), Column("priority", Integer, server_default=text("1")),
          created(),
          uniques=[("unique_device_sensor", ["device_id", "sensor_id"])],
          keys=[("idx_device_id", ["device_id"]), ("idx_sensor_id", ["sensor_id"])])

    table("panels", pk(),
          fk("device_id", "devices.id", "CASCADE", nullable=False),
          Column("panel_number", Integer),
          Column("voltage", Numeric(10, 2)), Column("ampere", Numeric(10, 2)), Column("power", Numeric(10, 2)),
          Column("status", String(50), server_default="online"),
          created(), updated(),
          keys=[("idx_device_id", ["device_id"]), ("idx_status", ["status"])])

    table("transformers", pk(),
          fk("device_id", "devices.id", "CASCADE", nullable=False),
          Column("name", String(255)),
          Column("primary_voltage", Numeric(10, 2)), Column("secondary_voltage", Numeric(10, 2)),
          Column("efficiency", Numeric(5, 2)), Column("temperature", Numeric(5, 2)),
          Column("status", String(50), server_default="online"),
          created(), updated(),
          keys=[("idx_device_id", ["device_id"])])

    table("weather", pk(),
          fk("device_id", "devices.id", "CASCADE"),
          Column("temperature", Numeric(5, 2)), Column("humidity", Numeric(5, 2)),
          Column("pressure", Numeric(7, 2)), Column("wind_speed", Numeric(5, 2)),
          Column("condition", String(50)),
          created(),
          keys=[("idx_device_id", ["device_id"]), ("idx_created_at", ["created_at"])])

    table("verification", pk(),
          fk("device_id", "devices.id", "CASCADE"),
          Column("accuracy_score", Numeric(5, 2)), Column("status", String(50)),
          created(),
          keys=[("idx_device_id", ["device_id"])])

    table("alert_rules", pk(),
          fk("device_id", "devices.id", "CASCADE", nullable=False),
          Column("name", String(255), nullable=False), Column("description", Text),
          Column("severity", Enum(*SEVERITY, name="rule_severity"), server_default="warning"),
          Column("is_enabled", Boolean, server_default=text("1")),
          Column("trigger_type", Enum("threshold", "change", "pattern", name="rule_trigger"),
                 server_default="threshold"),
          Column("condition_logic", String(500)),
          Column("threshold_value", Numeric(10, 2)),
          Column("comparison_operator", Enum("<", ">", "<=", ">=", "=", "!=", name="rule_op"),
                 server_default=">"),
          Column("metric", String(50)),
          Column("duration_seconds", Integer, server_default=text("300")),
          Column("cooldown_seconds", Integer, server_default=text("600")),
          Column("notification_enabled", Boolean, server_default=text("1")),
          Column("email_recipients", String(500)),
          fk("created_by", "users.id", "SET NULL"),
          created(), updated(), Column("last_triggered_at", TIMESTAMP, nullable=True),
          keys=[("created_by", ["created_by"]), ("idx_device_id", ["device_id"]),
                ("idx_is_enabled", ["is_enabled"]), ("idx_severity", ["severity"]),
                ("idx_created_at", ["created_at"])])

    table("alert_rule_conditions", pk(),
          fk("rule_id", "alert_rules.id", "CASCADE", nullable=False),
          Column("condition_type", String(50)), Column("metric", String(50)),
          Column("operator", String(10)), Column("value", Numeric(10, 2)), Column("unit", String(20)),
          Column("logical_operator", Enum("AND", "OR", name="cond_logic"), server_default="AND"),
          created(),
          keys=[("idx_rule_id", ["rule_id"])])

    table("alert_rule_triggers", pk(),
          fk("rule_id", "alert_rules.id", "CASCADE", nullable=False),
          Column("trigger_time", TIMESTAMP, nullable=True, server_default=now),
          Column("metric_value", Numeric(10, 2)), Column("alert_message", Text),
          Column("notification_sent", Boolean, server_default=text("0")),
          Column("ack_status", Enum(*ALERT_STATUS, name="trigger_ack"), server_default="open"),
          Column("ack_time", TIMESTAMP, nullable=True),
          fk("ack_by", "users.id", "SET NULL"),
          created(),
          keys=[("ack_by", ["ack_by"]), ("idx_rule_id", ["rule_id"]), ("idx_trigger_time", ["trigger_time"]),
                ("idx_ack_status", ["ack_status"])])

    table("notifications", pk(),
          fk("user_id", "users.id", "CASCADE", nullable=False),
          fk("alert_id", "alerts.id", "SET NULL"),
          fk("report_id", "reports.id", "SET NULL"),
          Column("notification_type", Enum("email", "report", "alert", "system", "welcome", "password_reset",
                                           name="notification_type"), server_default="email"),
          Column("status", Enum("pending", "sent", "failed", name="notification_status"), server_default="pending"),
          Column("recipient_email", String(100)), Column("subject", String(255)),
          Column("message_preview", String(500)), Column("sent_at", TIMESTAMP, nullable=True),
          Column("is_read", Boolean, server_default=text("0")), Column("read_at", TIMESTAMP, nullable=True),
          Column("error_message", Text),
          created(), updated(),
          keys=[("alert_id", ["alert_id"]), ("report_id", ["report_id"]), ("idx_user_id", ["user_id"]),
                ("idx_status", ["status"]), ("idx_notification_type", ["notification_type"]),
                ("idx_is_read", ["is_read"]), ("idx_created_at", ["created_at"]), ("idx_sent_at", ["sent_at"])])

    table("notification_preferences", pk(),
          fk("user_id", "users.id", "CASCADE", nullable=False),
          Column("alert_emails", Boolean, server_default=text("1")),
          Column("report_emails", Boolean, server_default=text("1")),
          Column("daily_summary", Boolean, server_default=text("1")),
          Column("weekly_summary", Boolean, server_default=text("0")),
          Column("critical_only", Boolean, server_default=text("0")),
          Column("notification_frequency", Enum("immediate", "daily", "weekly", name="notification_frequency"),
                 server_default="immediate"),
          created(), updated(),
          uniques=[("user_id", ["user_id"])],
          keys=[("idx_user_id", ["user_id"])])

    table("audit_logs", pk(),
          fk("user_id", "users.id", "SET NULL"),
          Column("action", String(255)), Column("resource_type", String(50)), Column("resource_id", Integer),
          Column("old_value", JSON), Column("new_value", JSON),
          Column("ip_address", String(45)), Column("user_agent", String(500)),
          Column("status", String(20), server_default="success"),
          created(),
          keys=[("idx_user_id", ["user_id"]), ("idx_action", ["action"]), ("idx_created_at", ["created_at"])])

    table("activity_logs", pk(),
          fk("user_id", "users.id", "SET NULL"),
          Column("activity_type", String(50)), Column("description", Text), Column("metadata", JSON),
          Column("ip_address", String(45)),
          created(),
          keys=[("idx_user_id", ["user_id"]), ("idx_activity_type", ["activity_type"]),
                ("idx_created_at", ["created_at"])])

    table("system_settings", pk(),
          Column("setting_key", String(100), nullable=False), Column("setting_value", Text),
          Column("setting_type", String(20), server_default="string"), Column("description", String(500)),
          created(), updated(),
          uniques=[("setting_key", ["setting_key"])],
          keys=[("idx_setting_key", ["setting_key"])])

    table("master_data", pk(),
          Column("type", String(50)), Column("name", String(255)), Column("value", String(255)),
          created(),
          keys=[("idx_type", ["type"])])

    table("sensor_config_history", pk(),
          fk("sensor_id", "sensors.id", "CASCADE", nullable=False),
          Column("old_config", JSON), Column("new_config", JSON),
          Column("change_reason", String(500)), Column("changed_by", String(255)),
          Column("changed_at", TIMESTAMP, nullable=True, server_default=now),
          keys=[("idx_sensor_id", ["sensor_id"]), ("idx_changed_at", ["changed_at"])])

    table("sensor_error_log", pk(),
          fk("sensor_id", "sensors.id", "CASCADE", nullable=False),
          Column("error_type", String(100)), Column("error_message", Text),
          Column("severity", Enum("info", "warning", "error", "critical", name="sensor_error_severity"),
                 server_default="error"),
          Column("resolved", Boolean, server_default=text("0")), Column("resolved_at", TIMESTAMP, nullable=True),
          created(),
          keys=[("idx_sensor_id", ["sensor_id"]), ("idx_severity", ["severity"]), ("idx_resolved", ["resolved"]),
                ("idx_created_at", ["created_at"])])

    table("sensor_health", pk(),
          fk("sensor_id", "sensors.id", "CASCADE", nullable=False),
          Column("is_connected", Boolean, server_default=text("0")),
          Column("last_data_time", TIMESTAMP, nullable=True),
          Column("error_count", Integer, server_default=text("0")),
          Column("warning_count", Integer, server_default=text("0")),
          Column("total_data_points", BigInteger, server_default=text("0")),
          Column("uptime_percentage", Numeric(5, 2), server_default=text("100.00")),
          Column("last_checked", TIMESTAMP, nullable=True, server_default=now),
          uniques=[("sensor_id", ["sensor_id"])],
          keys=[("idx_is_connected", ["is_connected"])])
    return md


#: The tables, by name, as MySQL/MariaDB sees them (for reading; DDL goes through build_metadata).
TABLE_NAMES = tuple(sorted(build_metadata().tables))


def app_metadata(engine) -> MetaData:
    """The PELBIOT tables as the engine's dialect declares them."""
    return build_metadata(sqlite=engine.dialect.name == "sqlite")
