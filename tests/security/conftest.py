"""Each attack of the safety issue as a test on the real MariaDB, Redis, worker and Flower."""

import contextlib
import subprocess
import sys


from tests.integration.conftest import app, demo_app_db, ops_schema, settings, worker  # noqa: F401


#: The web view's login in the security tests.
WEB_USER, WEB_PASSWORD = "ops", "w3b-s3curity-pw"


@contextlib.contextmanager
def web_view(ops_schema, tmp_path):  # noqa: F811
    """A real `pelbiot-jobs web` process on the session's ops DB (HTTP Basic: WEB_USER, WEB_PASSWORD);
    yields its URL."""
    from tests.conftest import ROOT, clean_environ, free_port, service_env
    from tests.helpers import wait_for_port

    port = free_port()
    env = clean_environ() | service_env(ops_schema, "redis://127.0.0.1:6379/14", tmp_path) | {
        "PELBIOT_WEB_USER": WEB_USER, "PELBIOT_WEB_PASSWORD": WEB_PASSWORD, "PELBIOT_WEB_PORT": str(port)}
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "web"], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, proc, tmp_path / "web.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@contextlib.contextmanager
def writing_function(database: str, name: str, signature: str, returns: str, traits: str = ""):
    """A stored function ``name(signature)`` of ``database`` that writes a row to a table of its own
    each time it runs (the oracle of "it ran"); yields the count of rows it wrote. Dropped after."""
    from tests.helpers import mysql

    table = f"pjt_side_{name}"
    conn = mysql(database)
    with conn.cursor() as cur:
        cur.execute("SET GLOBAL log_bin_trust_function_creators = 1")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INT AUTO_INCREMENT PRIMARY KEY)")
        cur.execute(f"DELETE FROM {table}")
        cur.execute(f"DROP FUNCTION IF EXISTS {name}")
        cur.execute(f"CREATE FUNCTION {name}({signature}) RETURNS INT {traits} MODIFIES SQL DATA "
                    f"BEGIN INSERT INTO {table} VALUES (NULL); RETURN {returns}; END")

    def count() -> int:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            return cur.fetchone()[0]

    try:
        yield count
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP FUNCTION IF EXISTS {name}")
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
