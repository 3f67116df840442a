"""A window of query attribution read from daily slices and the hours at its edges gives exactly
what the hourly slices add up to, on MariaDB and SQLite: however often an hour was added to,
wherever the window starts and ends."""

import datetime as dt
import random
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.db.ops_models import query_digests, query_slices, query_slices_daily
from pelbiot_jobs.queries.analyze import slice_row, store_slices
from pelbiot_jobs.queries.service import attributed, stored
from pelbiot_jobs.queries.tags import canonical
from tests.conftest import clean_environ

NOW = dt.datetime(2026, 12, 7, 14, 37, 12)
CLASSES = ("00000000000000A1", "00000000000000B2", "00000000000000C3")
ROUTES = ("/api/devices", "/api/alerts")
USERS = ("api", "reports")


@pytest.fixture(params=["sqlite", "mariadb"])
def ops(request, tmp_path, fresh_mysql_db):
    url = f"sqlite:///{tmp_path / 'ops.db'}" if request.param == "sqlite" else fresh_mysql_db()
    migrate.upgrade(url)
    env = clean_environ() | {"PELBIOT_OPS_DB_URL": url, "PELBIOT_APP_DB_URL": url}
    return load_settings(env, cwd=Path(tmp_path))


def fill(settings) -> list[dict]:
    """Nine days of hourly slices (three classes, two routes, two users), each hour added in two
    batches as two analyze runs add it; a digest row per class-hour. Returns every fresh slice."""
    rnd = random.Random(11)
    fresh, digests = [], {}
    hour = NOW.replace(minute=0, second=0) - dt.timedelta(days=9)
    engine = engine_for(settings.ops_db_url)
    while hour <= NOW:
        for run in range(2):
            batch = []
            for qid in CLASSES:
                for route in ROUTES:
                    for user in USERS:
                        if rnd.random() < 0.2:
                            continue
                        calls, seconds = rnd.randint(1, 50), round(rnd.uniform(0.01, 5), 6)
                        batch.append(slice_row("file", qid, hour, user, "10.0.0.9", "pelbiot",
                                               canonical({b"route": route.encode()}).decode(),
                                               [calls, seconds, 0.0, calls * 10, calls, 0]))
                        key = (qid, hour)
                        held = digests.setdefault(key, [0, 0.0])
                        held[0] += calls
                        held[1] += seconds
            with engine.begin() as conn:
                store_slices(conn, batch)
            fresh += batch
        hour += dt.timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(insert(query_digests), [
            {"source": "file", "query_id": qid, "window_start": when, "fingerprint": f"select {qid}", "calls": c,
             "query_time_sum": t, "slow": 0, "hist": "{}"} for (qid, when), (c, t) in digests.items()])
    return fresh


def expected(fresh, since, end, key, **match):
    out: dict = {}
    for r in fresh:
        if since <= r["window_start"] < end and all(r[k] == v for k, v in match.items()):
            held = out.setdefault(key(r), [0, 0.0])
            held[0] += r["calls"]
            held[1] += r["query_time_sum"]
    return out


def test_daily_slices_and_edge_hours_add_up_to_the_hourly_ones(ops):
    fresh = fill(ops)
    engine = engine_for(ops.ops_db_url)
    with engine.connect() as conn:  # every day's rows are that day's hourly sums
        hourly = conn.execute(select(func.sum(query_slices.c.calls), func.sum(query_slices.c.query_time_sum))).one()
        daily = conn.execute(select(func.sum(query_slices_daily.c.calls),
                                    func.sum(query_slices_daily.c.query_time_sum),
                                    func.count(func.distinct(query_slices_daily.c.day)))).one()
    assert int(daily[0]) == int(hourly[0]) == sum(r["calls"] for r in fresh)
    assert float(daily[1]) == pytest.approx(float(hourly[1]))
    assert daily[2] == 10  # nine days back from a Monday afternoon: ten UTC days
    route_of = {canonical({b"route": r.encode()}).decode(): r for r in ROUTES}
    for window in (3600 * 5, 3600 * 30, 2 * 86400, 7 * 86400, 8 * 86400 + 3600 * 7):
        since, end = NOW - dt.timedelta(seconds=window), NOW + dt.timedelta(hours=1)
        by_route = {r["value"]: [r["calls"], r["time_s"]] for r in
                    attributed(ops, "tag:route", window, now=NOW)}
        want = {route_of[k]: v for k, v in expected(fresh, since, end, lambda r: r["tags"]).items()}
        assert by_route.keys() == want.keys(), window
        for route, (calls, seconds) in want.items():
            assert by_route[route][0] == calls, (window, route)
            assert by_route[route][1] == pytest.approx(seconds), (window, route)
        by_user = {r["value"]: r["calls"] for r in attributed(ops, "user", window, now=NOW, tags=[("route", ROUTES[0])])}
        assert by_user == {k: v[0] for k, v in expected(fresh, since, end, lambda r: r["user_name"],
                                                        tags=canonical({b"route": ROUTES[0].encode()}).decode()).items()}
        listed = {r["query_id"]: r["calls"] for r in stored(ops, window, now=NOW, user="reports")}
        assert listed == {k: v[0] for k, v in expected(fresh, since, end, lambda r: r["query_id"],
                                                       user_name="reports").items()}, window
