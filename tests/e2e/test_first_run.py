"""What a newcomer meets on the first run, on the embedded default as `make up` starts it: every
page of the web view answers (each window and host of the Metrics page included), the terminal
shows warnings and errors only, each once, and a port that is taken stops `up` before anything
starts, in one line naming the port and the setting that moves it."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import clean_environ, free_port


def _start_up(tmp_path, env, *args):
    out = open(tmp_path / "terminal.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "pelbiot_jobs.cli", "up", *args], env=env, cwd=tmp_path,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(up) -> None:
    if up.poll() is None:
        os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)


def _wait_for(predicate, up, log, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert up.poll() is None, f"up exited while waiting for {what}: {log.read_text()[-2000:]}"
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory):
    """`pelbiot-jobs up` in an empty folder with nothing configured, as `make up` runs it."""
    tmp_path = tmp_path_factory.mktemp("first-run")
    web_port, flower_port = free_port(), free_port()
    env = clean_environ() | {"PELBIOT_WEB_PORT": str(web_port), "PELBIOT_FLOWER_PORT": str(flower_port)}
    up = _start_up(tmp_path, env)
    terminal = tmp_path / "terminal.log"
    try:
        _wait_for(lambda: "pelbiot-jobs is up" in terminal.read_text(errors="replace"), up, terminal, 300,
                  "the banner")
        yield {"dir": tmp_path, "web": web_port, "flower": flower_port, "up": up, "terminal": terminal, "env": env}
    finally:
        _stop(up)


def test_every_page_of_the_web_view_answers_on_the_embedded_default(embedded_stack):
    from tests.helpers import crawl_in_chromium

    stack = embedded_stack
    user, _, password = (stack["dir"] / "var" / "flower-credentials").read_text().strip().partition(":")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    base = f"http://127.0.0.1:{stack['web']}"
    shot = stack["dir"] / "metrics.png"
    # Report files other than the HTML ones are downloads, not pages.
    pages = crawl_in_chromium(base + "/", stack["dir"] / "profile", auth, limit=200,
                              skip=lambda url: bool(re.search(r"/reports/\d+/.+(?<!\.html)$", url)),
                              screenshots={base + "/samples": shot})
    failed = {url: page["status"] for url, page in pages.items() if page["status"] != 200}
    assert not failed, failed
    broken = [url for url, page in pages.items() if "internal error" in page["text"]]
    assert not broken, broken
    # The navigation, every window of the Metrics page for every host it lists, the queries' windows and sorts.
    for path in ("/", "/samples", "/incidents", "/queries", "/indexes", "/reports"):
        assert base + path in pages, sorted(pages)
    hosts = {m.group(1) for url in pages for m in [re.search(r"[?&]host=([^&]+)", url)] if m}
    assert {"demo-web1", "demo-db1"} <= {h.replace("%40", "@") for h in hosts}, hosts
    for window in ("1h", "24h", "7d"):
        metric_pages = [u for u in pages if u.startswith(base + f"/samples?window={window}&")]
        assert len(metric_pages) >= len(hosts) - 1, (window, metric_pages)
    assert any(re.search(r"/queries/[0-9A-F]{16}", u) for u in pages)
    # The default Metrics view draws the first host's charts (the 500 of SQLAlchemy 2.1's cast).
    assert "No samples in this window" not in pages[base + "/samples"]["text"]
    assert shot.stat().st_size > 20_000
    # Nothing went wrong on the server's side either.
    log = (stack["dir"] / "var" / "log" / "up.log").read_text(errors="replace")
    assert "Traceback" not in log and "Uncaught exception" not in log, log[-3000:]
    assert not re.search(r"\[E \d{6} .*web:\d+\] 5\d\d ", log), log[-3000:]


def test_the_terminal_shows_warnings_and_errors_only_each_once(embedded_stack):
    # After the crawl above (when run alone: after the banner), the terminal of `up`:
    terminal = embedded_stack["terminal"].read_text(errors="replace")
    lines = terminal.splitlines()
    # No bare traceback header without its exception, no INFO line, no favicon 404 warning.
    assert not any(line.rstrip().endswith("Traceback (most recent call last):") for line in lines), terminal
    assert not [line for line in lines if re.search(r"(: INFO/|\[I \d{6} )", line)], terminal
    assert "favicon" not in terminal, terminal
    assert not re.search(r"\] 404 ", terminal), terminal
    # The icon is served (the browser asked for it and got it).
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{embedded_stack['web']}/favicon.ico", timeout=10) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/svg+xml"


@pytest.mark.parametrize("taken, setting", [("web", "PELBIOT_WEB_PORT"), ("flower", "PELBIOT_FLOWER_PORT")])
def test_a_port_taken_stops_up_before_anything_starts(tmp_path, taken, setting):
    ports = {"web": free_port(), "flower": free_port()}
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", ports[taken]))
    holder.listen()
    env = clean_environ() | {"PELBIOT_WEB_PORT": str(ports["web"]), "PELBIOT_FLOWER_PORT": str(ports["flower"])}
    try:
        done = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "up"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
    assert done.returncode == 2, done.stdout + done.stderr
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert f"port {ports[taken]} on 127.0.0.1 is taken" in errors[0] and setting in errors[0], errors
    assert "is up" not in done.stdout
    # Nothing started: no demo seeded, no embedded Redis, no child left behind.
    assert not (tmp_path / "var" / "app.db").exists() and not (tmp_path / "var" / "redis.sock").exists()


def test_an_app_db_that_refuses_its_account_is_said_once_naming_the_setting(tmp_path, fresh_mysql_db, redis_url):
    """A wrong app DB password under `up`: one warning naming PELBIOT_APP_DB_URL before the banner;
    the samplers' failures (every 15 s) reach the terminal once; the CLI's error names the setting."""
    from tests.conftest import MYSQL_HOST, MYSQL_PORT, service_env

    dbs = {"app": fresh_mysql_db(), "ops": fresh_mysql_db()}
    wrong = f"mysql+pymysql://root:not-the-password@{MYSQL_HOST}:{MYSQL_PORT}/{dbs['app'].rsplit('/', 1)[1]}"
    env = clean_environ() | service_env(dbs, redis_url, tmp_path) | {"PELBIOT_APP_DB_URL": wrong}
    env.pop("PELBIOT_APP_DB_ADMIN_URL")
    plan = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "indexes", "plan"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "refuses the account or database of PELBIOT_APP_DB_URL" in plan.stderr and "not-the-password" not in \
        plan.stderr, plan.stderr
    up = _start_up(tmp_path, env, "--no-flower", "--no-web")
    terminal = tmp_path / "terminal.log"
    try:
        _wait_for(lambda: "pelbiot-jobs is up" in terminal.read_text(errors="replace"), up, terminal, 120,
                  "the banner")
        time.sleep(40)  # the samplers fail every 15 s
        text = terminal.read_text(errors="replace")
    finally:
        _stop(up)
    warning = [line for line in text.splitlines() if "refuses the account of PELBIOT_APP_DB_URL" in line]
    assert len(warning) == 1 and text.index(warning[0]) < text.index("pelbiot-jobs is up"), text
    assert "not-the-password" not in text
    denied = [line for line in text.splitlines() if "Access denied" in line and "worker |" in line]
    # Each failing task once (its traceback belongs to it): the sampler's, and db.table_stats' when the
    # 40 s span an hour's :05.
    tasks = [re.search(r"Task ([\w.]+)\[", line).group(1) for line in denied]
    assert tasks and len(tasks) == len(set(tasks)), denied
    assert "repeats are only in" in text, text
    log = (tmp_path / "var" / "log" / "up.log").read_text(errors="replace")
    assert log.count("Access denied") >= 3  # ... while the log keeps every one
