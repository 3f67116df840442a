"""Helpers more than one test file uses: a real SMTP server with an inbox, pt-query-digest as the
oracle of the slow-log digest, and a MariaDB connection."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest


class Inbox:
    """What a real SMTP server (aiosmtpd) received, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def wait(self, count: int, timeout: float = 30):
        """The ``count``-th message, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.1)
        assert len(self.messages) >= count, [m["Subject"] for m in self.messages]
        return self.messages[count - 1]


def smtp_server(port: int, inbox=None):
    """Start an SMTP server on 127.0.0.1:``port``; return (controller, inbox). Stop the controller after."""
    from aiosmtpd.controller import Controller

    inbox = inbox or Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


def pt_query_digest(path: Path, whole: bool = False) -> dict:
    """{query ID: count} as pt-query-digest finds them in ``path``: the oracle of our digest
    (``whole``: its whole JSON report)."""
    pt = shutil.which("pt-query-digest")
    if pt is None:
        pytest.fail("pt-query-digest is not installed: `make test` installs percona-toolkit (apt-get)", pytrace=False)
    # --limit as a count only: "100%:N" leaves out classes once the total time is reached.
    out = subprocess.run([pt, "--output", "json", "--limit", "1000000", str(path)], capture_output=True,
                         check=True).stdout
    if not out.strip():
        return {}  # pt prints nothing at all for a file with no event
    if whole:
        return json.loads(out)
    return {c["checksum"]: int(c["query_count"]) for c in json.loads(out)["classes"]}


def mysql(database: str | None = None, autocommit: bool = True):
    """A connection to the test MariaDB server as its administrator (PELBIOT_TEST_MYSQL_*)."""
    import pymysql

    from tests.conftest import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER

    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD,
                           database=database, autocommit=autocommit)


def open_incident(ops_url: str, host: str, value: float = 97.0) -> int:
    """A firing cpu_high on ``host`` in the ops DB: a sample over the threshold, evaluated once."""
    from sqlalchemy import insert, select

    from pelbiot_jobs.db.engine import engine_for
    from pelbiot_jobs.db.ops_models import incidents, metric_samples
    from pelbiot_jobs.health.engine import evaluate
    from pelbiot_jobs.health.rules import Rule
    from pelbiot_jobs.lib.clock import utcnow

    rule = Rule("cpu_high", "host.cpu_percent", ">", 80, aggregate="last", window=120, for_s=0,
                clear_threshold=70, clear_for_s=0, severity="critical")
    engine = engine_for(ops_url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(metric_samples).values(metric="host.cpu_percent", host=host, ts=now, value=value))
    evaluate(engine, [rule], {"repeat_interval": 3600, "cooldown": 0, "recipients": []}, now)
    with engine.connect() as conn:
        return conn.execute(select(incidents.c.id).where(incidents.c.host == host)).scalar_one()


def render_in_chromium(url: str, profile: Path, screenshot: Path | None = None, size: str = "1280,2400") -> str:
    """The DOM of ``url`` as headless Chromium renders it (and a screenshot when asked)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)", pytrace=False)
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}"]
    if screenshot is not None:
        done = subprocess.run(flags + [f"--window-size={size}", f"--screenshot={screenshot}", url],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and screenshot.stat().st_size > 20_000, done.stderr[-500:]
    done = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    return done.stdout


class DevTools:
    """Headless Chromium driven through the Chrome DevTools Protocol, as a user's browser: one
    page, JSON commands over its websocket (``send``), JavaScript evaluated in it (``evaluate``)."""

    def __init__(self, profile, url: str = "about:blank", flags: tuple[str, ...] = ()):
        import socket as sockets

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)",
                        pytrace=False)
        with sockets.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = url
        self.browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                         "--disable-background-networking", "--disable-component-update",
                                         "--disable-sync", *flags, f"--user-data-dir={profile}",
                                         f"--remote-debugging-port={self.port}", url],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ids = itertools.count(1)
        self.ws = None

    async def connect(self, deadline: float):
        """The page's websocket, once Chromium lists the page (with the URL it was opened on loaded)."""
        import asyncio
        import urllib.request

        from tornado.websocket import websocket_connect

        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as resp:
                    pages = [t for t in json.load(resp) if t["type"] == "page"]
                if pages and (self.url == "about:blank" or pages[0]["url"].startswith("http")):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Chromium did not open the page"
            await asyncio.sleep(0.2)
        self.ws = await websocket_connect(pages[0]["webSocketDebuggerUrl"], max_message_size=64 << 20)

    async def send(self, method, **params):
        n = next(self.ids)
        await self.ws.write_message(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.read_message())
            if reply.get("id") == n:
                return reply.get("result", {})

    async def evaluate(self, expression):
        return (await self.send("Runtime.evaluate", expression=expression, returnByValue=True))["result"].get("value")

    def run(self, drive):
        """Run the coroutine function ``drive(self)``; the browser is stopped after, whatever happens."""
        import asyncio

        async def main():
            try:
                return await drive(self)
            finally:
                if self.ws is not None:
                    self.ws.close()
        try:
            return asyncio.run(main())
        finally:
            self.browser.terminate()
            self.browser.wait(30)


def click_in_chromium(url: str, selector: str, profile, timeout: float = 60) -> str:
    """Open ``url`` in headless Chromium, click the first element matching ``selector`` as a user
    would (Chrome DevTools Protocol), wait for the page it leads to, and return that page's URL."""
    import asyncio

    async def drive(page):
        deadline = time.monotonic() + timeout
        await page.connect(deadline)
        ready = "document.readyState === 'complete' && !!document.querySelector(%s)" % json.dumps(selector)
        while not await page.evaluate(ready):
            assert time.monotonic() < deadline, f"no {selector} on {url}"
            await asyncio.sleep(0.2)
        before = await page.evaluate("performance.timeOrigin")
        await page.evaluate("document.querySelector(%s).click()" % json.dumps(selector))
        while True:  # a new document: the form was submitted and its answer loaded
            origin, state, href = await page.evaluate("[performance.timeOrigin, document.readyState, location.href]")
            if origin != before and state == "complete":
                return href
            assert time.monotonic() < deadline, "the click led nowhere"
            await asyncio.sleep(0.2)

    return DevTools(profile, url).run(drive)


def wait_for_port(port: int, proc, log_path, timeout: float = 60) -> None:
    """Until something accepts connections on 127.0.0.1:``port``; fail with the log if ``proc`` exits."""
    import socket as sockets

    deadline = time.monotonic() + timeout
    while True:
        try:
            sockets.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, Path(log_path).read_text(errors="replace")
            time.sleep(0.2)


def crawl_in_chromium(start: str, profile: Path, headers: dict[str, str], limit: int = 150, skip=lambda url: False,
                      screenshots: dict[str, Path] | None = None, timeout: float = 240) -> dict[str, dict]:
    """Open ``start`` in headless Chromium and every same-origin page its links lead to, as a user
    clicking through would (Chrome DevTools Protocol, ``headers`` on every request). Returns, per
    URL, the HTTP status the browser got, the page's text and its links; ``screenshots`` maps a
    URL to the PNG to save of it."""
    import asyncio
    import base64
    from urllib.parse import urldefrag, urlsplit

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(start))

    async def drive(page):
        deadline = time.monotonic() + timeout
        await page.connect(deadline)
        await page.send("Network.enable")
        await page.send("Network.setExtraHTTPHeaders", headers=headers)
        seen: dict[str, dict] = {}
        queue = [start]
        while queue and len(seen) < limit:
            url = queue.pop(0)
            if url in seen:
                continue
            before = await page.evaluate("performance.timeOrigin")
            await page.send("Page.navigate", url=url)
            while True:
                state = await page.evaluate("[performance.timeOrigin, document.readyState]")
                if state and state[0] != before and state[1] == "complete":
                    break
                assert time.monotonic() < deadline, f"{url} did not load"
                await asyncio.sleep(0.05)
            found = await page.evaluate("({status: performance.getEntriesByType('navigation')[0].responseStatus, "
                                        "text: document.body ? document.body.innerText : '', "
                                        "links: Array.from(document.querySelectorAll('a[href]'), a => a.href)})")
            seen[url] = found
            if screenshots and url in screenshots:
                shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                screenshots[url].write_bytes(base64.b64decode(shot["data"]))
            for link in found["links"]:
                link = urldefrag(link)[0]
                if link.startswith(origin + "/") and link not in seen and link not in queue and not skip(link):
                    queue.append(link)
        return seen

    return DevTools(profile, flags=("--window-size=1280,1600",)).run(drive)
