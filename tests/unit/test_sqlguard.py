"""The plain-read check every statement from outside must pass (pure)."""

import pytest

from pelbiot_jobs.lib.sqlguard import UnsafeSQL, check_read


@pytest.mark.parametrize("sql, reason", [
    ("SELECT * FROM devices /*!50000 INTO OUTFILE '/tmp/x' */", "executable comment"),
    ("SELECT * FROM devices /*M!100000 INTO OUTFILE '/tmp/x' */", "executable comment"),
    ("SELECT * FROM devices INTO OUTFILE '/tmp/x'", "does not parse"),
    ("SELECT id INTO @x FROM devices", "INTO"),
    ("SELECT * FROM devices FOR UPDATE", "locking read"),
    ("SELECT * FROM devices LOCK IN SHARE MODE", "locking read"),
    ("SELECT SLEEP(5)", "SLEEP"),
    ("SELECT BENCHMARK(100000000, MD5('a'))", "BENCHMARK"),
    ("SELECT GET_LOCK('x', 0)", "GET_LOCK"),
    ("SELECT RELEASE_LOCK('x')", "RELEASE_LOCK"),
    ("SELECT LOAD_FILE('/etc/shadow')", "LOAD_FILE"),
    ("SELECT * FROM devices WHERE id = my_stored_func(1)", "MY_STORED_FUNC"),
    ("SELECT * FROM (SELECT evil() AS e FROM devices) AS d", "EVIL"),
    ("SELECT pelbiot.evil(id) FROM devices", "schema-qualified function"),
    ("SELECT @a := 1", "assignment"),
    ("SELECT @@global.secure_file_priv", "system variable"),
    ("SELECT @token", "user variable"),
    ("SELECT user, password FROM mysql.user", "system schema mysql"),
    ("SELECT * FROM INFORMATION_SCHEMA.PROCESSLIST", "system schema information_schema"),
    ("SELECT * FROM performance_schema.threads", "system schema performance_schema"),
    ("SELECT * FROM sys.session", "system schema sys"),
    ("SELECT id FROM devices UNION SELECT user FROM mysql.user", "system schema mysql"),
    ("SELECT * FROM devices; DROP TABLE devices", "2 statements"),
    ("UPDATE devices SET status = 'error'", "found UPDATE"),
    ("DELETE FROM devices", "found DELETE"),
    ("SHOW TABLES", "SHOW"),
    ("SELECT * FROM devices WHERE id = ?", "placeholder"),
    ("", "no SQL"),
    ("SELECT 1 FROM devices WHERE name = '" + "x" * 70000 + "'", "longer than"),
])
def test_what_is_not_a_plain_read_is_refused_with_the_reason(sql, reason):
    with pytest.raises(UnsafeSQL, match=None) as info:
        check_read(sql)
    assert reason.lower() in str(info.value).lower(), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("sql", [
    "select max(peak) from load_profiles where date(created_at) = '2026-11-28'",
    "SELECT d.id, COUNT(*) AS n FROM devices d JOIN alerts a ON a.device_id = d.id WHERE a.status = 'open' "
    "GROUP BY d.id ORDER BY n DESC LIMIT 10",
    "SELECT * FROM sensor_data WHERE sensor_id = 1 AND timestamp >= NOW() - INTERVAL 1 DAY",
    "SELECT AVG(average) / MAX(peak) * 100 AS lf FROM load_profiles WHERE created_at >= DATE_SUB(NOW(), INTERVAL 24 HOUR)",
    "SELECT hour, ROUND(AVG(`load`), 2) AS l FROM load_profiles GROUP BY hour",
    "SELECT COALESCE(a.message, '') AS m, IF(a.severity = 'critical', 1, 0) AS c FROM alerts a",
    "(SELECT id FROM devices WHERE status = 'online') UNION ALL (SELECT id FROM devices WHERE status = 'error')",
    "SELECT * FROM devices WHERE id IN (SELECT device_id FROM alerts WHERE status = 'open')",
    "SELECT JSON_EXTRACT(metadata, '$.phase') AS phase FROM sensor_data LIMIT 5",
])
def test_plain_reads_pass_and_what_runs_has_no_comment(sql):
    checked = check_read(sql + " /* from app.js:42 */")
    assert checked.sql.upper().startswith(("SELECT", "(SELECT"))
    assert "/*" not in checked.sql


def test_placeholders_only_when_asked():
    checked = check_read("SELECT * FROM devices WHERE id = :id AND created_at > :since", placeholders=True)
    assert checked.placeholders == ("id", "since")
    with pytest.raises(UnsafeSQL):
        check_read("SELECT * FROM devices WHERE id = :id")
