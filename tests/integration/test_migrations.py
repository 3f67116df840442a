"""Migrations on MariaDB and SQLite: upgrade to head, no drift against the models, downgrade."""

import pytest
from sqlalchemy import inspect, text

from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import make_engine
from pelbiot_jobs.db.ops_models import metadata
from pelbiot_jobs.lib.errors import InputError


@pytest.fixture(params=["sqlite", "mariadb"])
def empty_db(request, tmp_path, fresh_mysql_db):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return fresh_mysql_db()


def tables(url):
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_check_downgrade(empty_db):
    migrate.upgrade(empty_db)
    assert set(metadata.tables) <= tables(empty_db)
    assert migrate.current(empty_db) is not None
    migrate.check(empty_db)  # raises when models and migrations differ
    migrate.upgrade(empty_db)  # idempotent
    migrate.downgrade(empty_db, "base")
    assert not (set(metadata.tables) & tables(empty_db))
    assert migrate.current(empty_db) is None


def test_check_finds_drift(empty_db):
    migrate.upgrade(empty_db)
    engine = make_engine(empty_db)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE ops_table_stats ADD COLUMN surprise INTEGER"))
    engine.dispose()
    with pytest.raises(InputError, match="the ops models and the migrations differ"):
        migrate.check(empty_db)


def test_app_tables_in_the_same_database_are_not_drift(empty_db):
    from pelbiot_jobs.demo.data import create_schema

    engine = make_engine(empty_db)
    create_schema(engine)  # the PELBIOT tables beside the ops tables: ops DB == app DB
    engine.dispose()
    migrate.upgrade(empty_db)
    migrate.check(empty_db)


def test_checkpoints_keep_their_rows_across_the_rename(empty_db):
    """Revision 0012 renames ops_sampler_state to ops_checkpoints: the read positions carry over."""
    migrate.upgrade(empty_db, "0011")
    engine = make_engine(empty_db)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ops_sampler_state (name, updated_at, data) "
                          "VALUES ('slowlog:file:/var/log/mysql/slow.log', '2026-11-28 10:00:00', "
                          "'{\"inode\": 7, \"offset\": 123}')"))
    migrate.upgrade(empty_db)
    assert "ops_sampler_state" not in tables(empty_db)
    from pelbiot_jobs.db import checkpoints

    with engine.connect() as conn:
        assert checkpoints.get(conn, "slowlog:file:/var/log/mysql/slow.log") == {"inode": 7, "offset": 123}
    migrate.check(empty_db)
    migrate.downgrade(empty_db, "0011")
    assert "ops_sampler_state" in tables(empty_db) and "ops_checkpoints" not in tables(empty_db)
    engine.dispose()


def test_stored_digests_take_the_settings_source_names(empty_db):
    """Revision 0014: slowlog_file and slow_log_table become file and table (PELBIOT_SLOWLOG_SOURCE's
    names); a downgrade gives the old names back."""
    migrate.upgrade(empty_db, "0013")
    engine = make_engine(empty_db)
    with engine.begin() as conn:
        for source, qid in (("slowlog_file", "A"), ("slow_log_table", "B"), ("performance_schema", "C")):
            conn.execute(text("INSERT INTO ops_query_digests (source, query_id, window_start, fingerprint, calls, "
                              "query_time_sum, slow, hist) VALUES (:s, :q, '2026-12-01 10:00:00', 'select ?', 1, 0.5, "
                              "0, '{}')"),
                         {"s": source, "q": qid})
    migrate.upgrade(empty_db)

    def sources():
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT query_id, source FROM ops_query_digests")).all())

    assert sources() == {"A": "file", "B": "table", "C": "performance_schema"}
    migrate.downgrade(empty_db, "0013")
    assert sources() == {"A": "slowlog_file", "B": "slow_log_table", "C": "performance_schema"}
    engine.dispose()


def test_daily_recommendations_become_findings(empty_db):
    """Revision 0017: one set per day becomes a row per finding; each code keeps its newest day, the first
    five rules' codes take the checks' names, and the first sighting is that day."""
    migrate.upgrade(empty_db, "0016")
    engine = make_engine(empty_db)
    with engine.begin() as conn:
        for day, code in (("2026-11-01", "buffer_pool_small"), ("2026-11-08", "buffer_pool_small"),
                          ("2026-11-08", "duplicate_indexes"), ("2026-11-01", "connections_high")):
            conn.execute(text("INSERT INTO ops_recommendations (day, code, severity, message, evidence) "
                              "VALUES (:d, :c, 'warning', 'm', '{}')"), {"d": f"{day} 00:00:00", "c": code})
    migrate.upgrade(empty_db)
    migrate.check(empty_db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, category, subject, day, first_seen, resolved_at "
                                 "FROM ops_recommendations ORDER BY code")).all()
    assert [(r[0], r[1], r[2], str(r[3])[:10], str(r[4])[:10], r[5]) for r in rows] == [
        ("buffer_pool_vs_data", "performance", "", "2026-11-08", "2026-11-08", None),
        ("connections_near_max", "resources", "", "2026-11-01", "2026-11-01", None),
        ("duplicate_indexes", "schema", "", "2026-11-08", "2026-11-08", None)]
    migrate.downgrade(empty_db, "0016")
    engine.dispose()


def test_stored_digests_are_backfilled_as_slices(empty_db):
    """Revision 0018: a digest stored before it becomes one slice: exact where its users, hosts and
    schemas name one each, "(mixed)" for a dimension that held several; the downgrade drops the table."""
    migrate.upgrade(empty_db, "0017")
    engine = make_engine(empty_db)
    with engine.begin() as conn:
        for qid, users, hosts in (("A1", '{"api": 5}', '{"10.0.0.1": 5}'),
                                  ("B2", '{"api": 2, "reports": 3}', '{"10.0.0.1": 5}')):
            conn.execute(text("INSERT INTO ops_query_digests (source, query_id, window_start, fingerprint, calls, "
                              "query_time_sum, rows_examined_sum, users, hosts, `databases`, slow, hist) VALUES "
                              "('file', :q, '2026-12-01 10:00:00', 'select ?', 5, 2.5, 50, :u, :h, "
                              "'{\"pelbiot\": 5}', 0, '{}')"), {"q": qid, "u": users, "h": hosts})
    migrate.upgrade(empty_db)
    migrate.check(empty_db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT query_id, user_name, client_host, schema_name, tags, calls, query_time_sum, "
                                 "rows_examined_sum, window_start FROM ops_query_slices ORDER BY query_id")).all()
    assert [tuple(r[:8]) for r in rows] == [("A1", "api", "10.0.0.1", "pelbiot", "", 5, 2.5, 50),
                                           ("B2", "(mixed)", "10.0.0.1", "pelbiot", "", 5, 2.5, 50)]
    assert str(rows[0][8]).startswith("2026-12-01 10:00:00")
    migrate.downgrade(empty_db, "0017")
    with engine.connect() as conn:
        assert "ops_query_slices" not in inspect(conn).get_table_names()
    engine.dispose()


def test_hourly_slices_are_summed_per_day(empty_db):
    """Revision 0019: the hourly slices stored before it are summed per class, slice and UTC day
    (hours of two days, two slices: three daily rows with the hours' sums); the downgrade drops
    the table and puts the samples' (host, ts) index back."""
    migrate.upgrade(empty_db, "0018")
    engine = make_engine(empty_db)
    rows = [("k1", "2026-12-01 00:00:00", 2, 1.5), ("k1", "2026-12-01 23:00:00", 3, 0.5),
            ("k1", "2026-12-02 00:00:00", 7, 7.0), ("k2", "2026-12-01 05:00:00", 1, 0.25)]
    with engine.begin() as conn:
        for key, hour, calls, seconds in rows:
            conn.execute(text("INSERT INTO ops_query_slices (source, query_id, window_start, user_name, tags, "
                              "slice_key, calls, query_time_sum, rows_examined_sum) VALUES ('file', 'A1', :h, :u, "
                              "'&route=%2Fapi&', :k, :c, :t, :c)"), {"h": hour, "u": "api-" + key, "k": key,
                                                                      "c": calls, "t": seconds})
    migrate.upgrade(empty_db)
    migrate.check(empty_db)
    with engine.connect() as conn:
        daily = conn.execute(text("SELECT slice_key, day, user_name, tags, calls, query_time_sum, rows_examined_sum "
                                  "FROM ops_query_slices_daily ORDER BY slice_key, day")).all()
    assert [(r[0], str(r[1])[:19], r[2], r[3], r[4], r[5], r[6]) for r in daily] == [
        ("k1", "2026-12-01 00:00:00", "api-k1", "&route=%2Fapi&", 5, 2.0, 5),
        ("k1", "2026-12-02 00:00:00", "api-k1", "&route=%2Fapi&", 7, 7.0, 7),
        ("k2", "2026-12-01 00:00:00", "api-k2", "&route=%2Fapi&", 1, 0.25, 1)]
    migrate.downgrade(empty_db, "0018")
    with engine.connect() as conn:
        assert "ops_query_slices_daily" not in inspect(conn).get_table_names()
        assert "ix_ops_metric_samples_host_ts" in {i["name"] for i in inspect(conn).get_indexes("ops_metric_samples")}
    engine.dispose()
