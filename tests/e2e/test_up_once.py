"""`pelbiot-jobs up --once` end to end: on the embedded default, and on MariaDB + Redis."""

from tests.conftest import clean_environ, service_env

from .conftest import pj, status_json


def assert_all_jobs_ran(env, cwd, everything=False):
    from pelbiot_jobs.runtime.app import EXTERNAL_EFFECTS

    status = status_json(env, cwd)
    enabled = [j for j in status["jobs"] if j["enabled"]]
    assert {j["name"] for j in enabled} >= {"db.table_stats", "maintenance.retention"}
    ran = [j for j in enabled if everything or j["task"] not in EXTERNAL_EFFECTS]
    assert len(ran) < len(enabled) or everything
    for job in ran:
        assert job["last_state"] in ("SUCCESS", "SKIPPED"), job
        assert job["last_finished"] and job["next_due"], job
    return status


def test_up_once_on_the_embedded_default_in_an_empty_folder(tmp_path):
    env = clean_environ()
    done = pj("up", "--once", "--timeout", "120", env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seeding the demo PELBIOT database" in done.stdout
    assert "SUCCESS" in done.stdout
    # A smoke test: no DDL, ANALYZE, cache writes, deletes or mail unless --all.
    assert "left out" in done.stdout and "indexes.reconcile" in done.stdout
    assert not list((tmp_path / "var" / "outbox").glob("*.eml"))
    assert (tmp_path / "var" / "app.db").stat().st_size > 10_000_000
    status = assert_all_jobs_ran(env, tmp_path)
    assert status["settings"]["broker"].endswith("(embedded)")
    # The embedded Redis was stopped with everything else.
    assert not (tmp_path / "var" / "redis.sock").exists()
    # A second start does not seed again and still succeeds.
    again = pj("up", "--once", "--timeout", "120", env=env, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "seeding" not in again.stdout


def test_up_once_on_mariadb_and_redis(tmp_path, fresh_mysql_db, redis_url):
    dbs = {"app": fresh_mysql_db(), "ops": fresh_mysql_db()}
    # The settings only in .env, as an operator would keep them: up must still never seed this app DB.
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in service_env(dbs, redis_url, tmp_path).items()))
    env = clean_environ()
    empty = pj("up", "--once", "--timeout", "120", env=env, cwd=tmp_path, timeout=300)
    assert "seeding" not in empty.stdout
    from sqlalchemy import create_engine, text

    with create_engine(dbs["app"]).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
                                 )).scalar() == 0  # not a table created, not a row written
    seeded = pj("demo-data", "--devices", "20", "--days", "3", env=env, cwd=tmp_path, timeout=300)
    assert seeded.returncode == 0, seeded.stderr
    assert "rows in 14 tables" in seeded.stdout
    again = pj("demo-data", env=env, cwd=tmp_path, timeout=60)
    assert again.returncode == 2 and "already has 20 devices" in again.stderr
    done = pj("up", "--once", "--all", "--timeout", "180", env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seeding" not in done.stdout  # a configured app DB is never seeded by up
    assert "--all: every enabled job runs" in done.stdout
    assert_all_jobs_ran(env, tmp_path, everything=True)
    checked = pj("db", "check", env=env, cwd=tmp_path, timeout=60)
    assert checked.returncode == 0, checked.stderr
