from pelbiot_jobs.tuning.advice import advise

FACTS = {"buffer_pool_bytes": 128 * 2**20, "innodb_bytes": 512 * 2**20, "max_connections": 100,
         "max_used_connections": 95, "tmp_tables": 1000, "tmp_disk_tables": 400, "uptime_s": 86400,
         "tables_without_pk": ["readings_raw"]}


def test_every_rule_fires_with_its_evidence():
    advice = {a["code"]: a for a in advise(FACTS, [{"table": "users", "index": "idx_email",
                                                     "drop_sql": "ALTER TABLE `users` DROP INDEX `idx_email`;"}])}
    assert set(advice) == {"buffer_pool_small", "connections_high", "tmp_tables_on_disk",
                           "tables_without_primary_key", "duplicate_indexes"}
    assert advice["buffer_pool_small"]["evidence"] == {"buffer_pool_bytes": 128 * 2**20, "innodb_bytes": 512 * 2**20}
    assert "95 % of max_connections" in advice["connections_high"]["message"]
    assert "40 % of temporary tables" in advice["tmp_tables_on_disk"]["message"]
    assert "readings_raw" in advice["tables_without_primary_key"]["message"]


def test_a_healthy_server_gets_no_advice():
    healthy = dict(FACTS, buffer_pool_bytes=2**30, max_used_connections=10, tmp_disk_tables=10, tables_without_pk=[])
    assert advise(healthy) == []
