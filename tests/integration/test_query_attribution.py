"""Query time attributed to client users, hosts, schemas and the API routes PELBIOT writes into its SQL
comments (sqlcommenter and PMM's key=value), on a slow log the real MariaDB writes for tagged queries."""

import json
import shutil
import uuid

import pymysql
import pytest

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.lib.clock import utcnow
from pelbiot_jobs.queries.analyze import analyze
from pelbiot_jobs.queries.fingerprint import fingerprint, query_id
from pelbiot_jobs.queries.service import attributed, stored
from tests.conftest import MYSQL_HOST, MYSQL_PORT, clean_environ, service_env
from tests.e2e.conftest import pj
from tests.helpers import mysql, pt_query_digest
from tests.integration.test_slow_queries import slow_log  # noqa: F401  (the fixture)

BY_ID = "SELECT * FROM devices WHERE id = {i}"
ALERTS = "SELECT a.*, d.name AS device_name FROM alerts a JOIN devices d ON a.device_id = d.id WHERE a.status = 'open'"
#: A route carrying SQL, quotes, a line break and a terminal escape: data, never run, never raw on a screen.
HOSTILE = "'; DROP TABLE devices; --\n\x1b[31m"


def sqlcommenter(**tags) -> str:
    """The comment sqlcommenter's Node.js middleware appends (keys sorted, values URL-encoded)."""
    from urllib.parse import quote

    return "/*" + ",".join(f"{k}='{quote(v, safe='')}'" for k, v in sorted(tags.items())) + "*/"


@pytest.fixture
def accounts(demo_app_db, mariadb):
    """Two application accounts of this test's own on the app DB; dropped after."""
    tag = uuid.uuid4().hex[:6]
    names = {"api": f"pj_api_{tag}", "reports": f"pj_rep_{tag}"}
    admin = mysql()
    with admin.cursor() as cur:
        for user in names.values():
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{tag}'")
            cur.execute(f"GRANT SELECT ON `{mariadb['names']['app']}`.* TO '{user}'@'%'")
    yield names, tag
    with admin.cursor() as cur:
        for user in names.values():
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    admin.close()


def send(user: str, tag: str, database: str, statements: list[str]) -> None:
    conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=user, password=f"pw-{tag}", database=database,
                           autocommit=True)
    with conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
            cur.fetchall()
    conn.close()


def test_queries_are_attributed_to_users_hosts_schemas_and_api_routes(settings, slow_log, accounts, mariadb,  # noqa: F811
                                                                       tmp_path):
    path, cur = slow_log
    (names, tag), app_db = accounts, mariadb["names"]["app"]
    devices, alerts, daily = f"/api/devices/{tag}", f"/api/alerts/{tag}", f"/api/reports/{tag}/daily"
    send(names["api"], tag, app_db,
         [BY_ID.format(i=k % 19 + 1) + " " + sqlcommenter(route=devices, controller="device") for k in range(30)]
         + [ALERTS + " " + sqlcommenter(route=alerts) for _ in range(10)])
    send(names["reports"], tag, app_db,
         [f"/* route={daily}, team=billing */ " + BY_ID.format(i=k + 1) for k in range(20)]  # PMM's form, in front
         + [BY_ID.format(i=k + 1) + " " + sqlcommenter(route=devices) for k in range(5)]
         + [BY_ID.format(i=3) + " " + sqlcommenter(route=HOSTILE)]
         + [BY_ID.format(i=k + 1) for k in range(4)])  # untagged
    cur.execute("SET GLOBAL slow_query_log = OFF")
    result = analyze(engine_for(settings.app_db_url), engine_for(settings.ops_db_url), utcnow(), "file", str(path))
    assert result["events"] >= 70 and result["skipped_records"] == 0

    # the fingerprint ignores the tags as pt-query-digest does: one class per statement and place of the
    # comment whatever the route, the same IDs and counts as pt's
    copy = tmp_path / "copy.log"
    shutil.copy(path, copy)
    expected = pt_query_digest(copy)
    tagged_end = query_id(fingerprint((BY_ID.format(i=1) + " " + sqlcommenter(route="x")).encode()))
    tagged_front = query_id(fingerprint(f"/* route=x */ {BY_ID.format(i=1)}".encode()))
    plain = query_id(fingerprint(BY_ID.format(i=1).encode()))
    assert tagged_front == plain != tagged_end  # a comment in front leaves no blank: the untagged statement's class
    rows = {r["query_id"]: r for r in stored(settings, 3600, "calls", 10_000)}
    assert rows[tagged_end]["calls"] == expected[tagged_end] == 36  # only this test sends it
    # the untagged statement's class holds other tests' calls of the hour too: this test's are its two accounts'
    ours = sum(r["calls"] for user in names.values() for r in stored(settings, 3600, "calls", 10_000, user=user)
               if r["query_id"] == plain)
    assert ours == expected[plain] == 24

    # grouped by route: every call of the test's routes, and nothing else under them
    routes = {r["value"]: r for r in attributed(settings, "tag:route", 3600, "calls", 1000)}
    assert routes[devices]["calls"] == 35 and routes[devices]["classes"] == 1
    assert routes[alerts]["calls"] == 10 and routes[alerts]["worst"]["fingerprint"].startswith("select a.*")
    assert routes[daily]["calls"] == 20 and routes[HOSTILE]["calls"] == 1
    assert routes[devices]["worst"]["query_id"] == tagged_end and routes[daily]["worst"]["query_id"] == tagged_front
    # by user; and a filter and a grouping together: what the reports account sent, by route
    # (each account also sent the SET NAMES its driver sends on connecting: untagged, counted)
    users = {r["value"]: r for r in attributed(settings, "user", 3600, "calls", 1000)}
    assert users[names["api"]]["calls"] == 41 and users[names["reports"]]["calls"] == 31
    mine = {r["value"]: r["calls"] for r in attributed(settings, "tag:route", 3600, "calls", 100,
                                                        user=names["reports"])}
    assert mine == {daily: 20, devices: 5, HOSTILE: 1, "(untagged)": 5}
    hosts = attributed(settings, "host", 3600, "calls", 100, user=names["api"])
    assert len(hosts) == 1 and hosts[0]["calls"] == 41 and hosts[0]["value"] in ("localhost", "127.0.0.1")
    schemas = attributed(settings, "schema", 3600, "calls", 100, user=names["api"])
    assert [(s["value"], s["calls"]) for s in schemas] == [(app_db, 41)]
    # the list of classes narrowed to a route: that route's calls of the class, not the class's
    on_route = stored(settings, 3600, "calls", 100, tags=[("route", devices)])
    assert [(r["query_id"], r["calls"]) for r in on_route] == [(tagged_end, 35)]
    both = stored(settings, 3600, "calls", 100, user=names["reports"], tags=[("route", devices)])
    assert [(r["query_id"], r["calls"]) for r in both] == [(tagged_end, 5)]

    # the same from the command line, as an operator types it; the hostile route never raw on the terminal
    env = clean_environ() | service_env(mariadb, settings.broker_url, tmp_path) | {"COLUMNS": "250"}

    def run(*args):
        done = pj("queries", *args, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    listed = json.loads(run("--by", "tag:route", "--user", names["reports"], "--since", "1h", "--json"))
    assert {r["value"]: r["calls"] for r in listed} == mine
    text_ = run("--by", "tag:route", "--since", "1h", "--limit", "500")
    assert daily in text_ and "\x1b" not in text_ and "DROP TABLE devices" in text_  # shown, escaped, one line
    assert "\\x1b" in text_ or "\\u001b" in text_ or "�" in text_
    filtered = json.loads(run("--tag", f"route={devices}", "--user", names["reports"], "--since", "1h", "--json"))
    assert [(r["query_id"], r["calls"]) for r in filtered] == [(tagged_end, 5)]
    shown = run("show", tagged_end)
    assert "who sends it" in shown and names["api"] in shown and f"route={devices}" in shown
    for bad, words in ((("--by", "tag:"), "tag:NAME"), (("--by", "route"), "tag:NAME"),
                       (("--tag", "route"), "NAME=VALUE"), (("--tag", "x'=1"), "NAME=VALUE")):
        done = pj("queries", *bad, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1, bad
