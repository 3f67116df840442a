"""The checks on facts alone: what no server state here reaches, and hostile names in what they print."""

import datetime as dt

from pelbiot_jobs.indexes.live import Schema
from pelbiot_jobs.tuning.checks import (
    BY_CODE,
    CATEGORIES,
    CHECKS,
    SEVERITIES,
    native_hash,
    run_checks,
)


def facts(**over):
    f = {"now": dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc), "missing": {},
         "variables": {"version": "10.11.19-MariaDB", "innodb_buffer_pool_size": "134217728",
                       "innodb_log_file_size": "100663296", "max_connections": "151", "performance_schema": "ON",
                       "slow_query_log": "ON", "sql_mode": "STRICT_TRANS_TABLES", "innodb_doublewrite": "ON",
                       "innodb_flush_log_at_trx_commit": "1", "thread_cache_size": "151",
                       "table_definition_cache": "400", "open_files_limit": "1000", "skip_name_resolve": "ON",
                       "secure_file_priv": "/var/lib/mysql-files", "have_symlink": "DISABLED"},
         "status": {"uptime": "86400", "open_files": "10", "connections": "100"},
         "tables": [], "columns": [], "innodb_bytes": 0, "innodb_tables": 0, "table_count": 100,
         "accounts": [], "schemas": ["pelbiot"], "replica": None, "replicas": 0, "statistics_updated": {},
         "index_usage": {}, "schema_model": Schema("pelbiot", "mysql"), "memory_bytes": 8 * 2**30}
    for key, value in over.items():
        if key in ("variables", "status"):
            f[key] = {**f[key], **value}
        else:
            f[key] = value
    return f


def codes(f):
    return {x["code"] for x in run_checks(f)["findings"]}


def test_the_table_of_checks():
    assert len(CHECKS) >= 40 and len(BY_CODE) == len(CHECKS)
    for c in CHECKS:
        assert c.category in CATEGORIES and c.severity in SEVERITIES and c.about, c.code
    assert {c.category for c in CHECKS} == set(CATEGORIES)


def test_a_healthy_server_has_no_finding():
    assert codes(facts()) == set()


def test_open_files_near_the_limit():
    assert "open_files_near_limit" in codes(facts(status={"open_files": "900"}))


def test_native_hash_is_mysql_password():
    assert native_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"


def test_hostile_names_never_reach_a_fix_line_raw():
    evil = "x'; DROP TABLE users; --"
    f = facts(accounts=[{"user": evil, "host": "%", "plugin": "mysql_native_password", "hash": "", "ssl_type": "",
                         "locked": False, "all_privileges": False, "super": False}],
              tables=[{"TABLE_NAME": "a`b; DROP TABLE c", "ENGINE": "MyISAM", "TABLE_ROWS": 1, "DATA_LENGTH": 1,
                       "INDEX_LENGTH": 0, "DATA_FREE": 0, "AUTO_INCREMENT": None, "TABLE_COLLATION": None}])
    found = run_checks(f)["findings"]
    assert {"accounts_without_password", "non_innodb_tables", "tables_without_primary_key"} <= {x["code"] for x in found}
    for x in found:
        if x["subject"].startswith("'x"):  # the quote doubled: the name stays one string literal
            assert "'x''; DROP TABLE users; --'@'%'" in x["fix"]
        else:  # a name no statement could quote safely gets a placeholder, not itself
            assert "DROP TABLE c" not in x["fix"] and "by hand" in x["fix"], x["fix"]


def test_a_missing_fact_is_not_checked_and_says_the_grant():
    f = facts(missing={"accounts": "GRANT SELECT ON mysql.user TO <reader>"})
    result = run_checks(f)
    needs = {x["code"]: x["needs"] for x in result["not_checked"]}
    assert needs["anonymous_accounts"].startswith("GRANT SELECT ON mysql.user")
    assert "anonymous_accounts" not in result["checked"] and "local_infile_on" in result["checked"]


def test_every_check_has_its_docs_entry():
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "checks.md").read_text()
    missing = [c.code for c in CHECKS if f"| `{c.code}` | {c.severity} | {' '.join(c.run.__doc__.split())} |" not in docs]
    assert not missing, f"docs/checks.md lacks (or has an old line for) {missing}: regenerate its tables"


def test_the_api_offers_the_same_categories():
    from pelbiot_jobs.web.api import CHECK_CATEGORIES

    assert CHECK_CATEGORIES == CATEGORIES
