"""Duplicate keys exactly as pt-duplicate-key-checker finds them: the oracle runs on the same
MariaDB schema, one table per rule, and names the same keys, for the same reasons, with the same
statements."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from pelbiot_jobs.db.engine import engine_for
from pelbiot_jobs.indexes.duplicates import duplicate_foreign_keys, find_duplicates
from pelbiot_jobs.indexes.live import read_schema
from tests.conftest import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER
from tests.helpers import mysql

TABLES = [
    # PRIMARY (a) makes UNIQUE (a, b) no constraint of its own: a left prefix of KEY (a, b, c)
    "CREATE TABLE t_stronger (a INT NOT NULL, b INT, c INT, PRIMARY KEY (a), UNIQUE KEY u (a,b), KEY k (a,b,c))",
    # identical keys: which one is named for dropping (not the order they were declared in)
    "CREATE TABLE t_same (a INT, b INT, KEY k1 (a,b), KEY k2 (a,b))",
    "CREATE TABLE t_same_rev (a INT, KEY z (a), KEY y (a))",
    "CREATE TABLE t_three (a INT, b INT, KEY m (a,b), KEY l (a,b), KEY n (a,b), KEY o (a))",
    # a unique key stays over an identical plain one; a single-column unique key is never dropped
    "CREATE TABLE t_unique (a INT, b INT, UNIQUE KEY ua (a), UNIQUE KEY uab (a,b), KEY kab (a,b), KEY ka (a))",
    "CREATE TABLE t_unique_twice (id INT PRIMARY KEY, x INT, UNIQUE KEY ux (x), UNIQUE KEY ux2 (x))",
    # prefix lengths are part of the column list
    "CREATE TABLE t_prefix (a VARCHAR(40), b INT, KEY a10 (a(10)), KEY a20 (a(20)), KEY a10b (a(10),b))",
    # a left prefix of the primary key, and a key ending with it (InnoDB: carried twice)
    "CREATE TABLE t_pk (a INT, b INT, c INT, PRIMARY KEY (a,b), KEY ka (a), KEY kcab (c,a,b))",
    "CREATE TABLE t_clustered (id INT, a INT, PRIMARY KEY (id), KEY ka (a,id), UNIQUE KEY ua (a,id))",
    "CREATE TABLE t_myisam (id INT, a INT, PRIMARY KEY (id), KEY ka (a,id)) ENGINE=MyISAM",
    # FULLTEXT keys: their column order does not matter; only exact duplicates
    "CREATE TABLE t_ft (id INT PRIMARY KEY, x TEXT, y TEXT, FULLTEXT KEY f1 (x,y), FULLTEXT KEY f2 (y,x), "
    "FULLTEXT KEY f3 (x))",
    # duplicate foreign keys
    "CREATE TABLE t_parent (id INT PRIMARY KEY, id2 INT, UNIQUE KEY (id, id2), KEY (id2, id))",
    "CREATE TABLE t_child (id INT PRIMARY KEY, pid INT, pid2 INT, KEY (pid, pid2), "
    "CONSTRAINT fk_b FOREIGN KEY (pid) REFERENCES t_parent (id), "
    "CONSTRAINT fk_a FOREIGN KEY (pid) REFERENCES t_parent (id), "
    "CONSTRAINT fk_c FOREIGN KEY (pid, pid2) REFERENCES t_parent (id, id2), "
    "CONSTRAINT fk_d FOREIGN KEY (pid2, pid) REFERENCES t_parent (id2, id))",
    "CREATE TABLE t_clean (id INT PRIMARY KEY, a INT, b INT, KEY kab (a,b), KEY kb (b))",
]


@pytest.fixture(scope="module")
def schema(fresh_mysql_db):
    url = fresh_mysql_db()
    name = url.rsplit("/", 1)[1]
    conn = mysql(name)
    with conn.cursor() as cur:
        for statement in TABLES:
            cur.execute(statement + ("" if "ENGINE=" in statement else " ENGINE=InnoDB"))
    conn.close()
    return url, name


def pt_findings(database: str) -> set[tuple[str, str]]:
    """(why, statement) of each duplicate pt-duplicate-key-checker reports."""
    tool = shutil.which("pt-duplicate-key-checker")
    if tool is None:
        pytest.fail("pt-duplicate-key-checker is needed: `make test` installs it (apt-get install percona-toolkit)",
                    pytrace=False)
    dsn = f"h={MYSQL_HOST},P={MYSQL_PORT},u={MYSQL_USER}" + (f",p={MYSQL_PASSWORD}" if MYSQL_PASSWORD else "")
    done = subprocess.run([tool, dsn, "--databases", database], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found, reasons, reading = set(), [], False
    for line in done.stdout.splitlines():
        if not line.strip():
            reasons, reading = [], True
        elif line.startswith("# Key definitions:"):
            reading = False
        elif reading and line.startswith("# ") and not line.startswith("# #"):
            reasons.append(line[2:].strip())
        elif line.startswith("ALTER TABLE"):
            found.add(("; ".join(reasons), line.strip()))
    return found


def test_the_same_keys_for_the_same_reasons_with_the_same_statements(schema):
    url, name = schema
    live = read_schema(engine_for(url))
    ours = set()
    for table, indexes in live.indexes.items():
        clustered = live.engines.get(table, "").lower() == "innodb"
        for d in find_duplicates(indexes, name, clustered=clustered) + \
                duplicate_foreign_keys(live.foreign_keys.get(table, []), name):
            ours.add((d.reason, d.drop_sql))
    expected = pt_findings(name)
    assert len(expected) >= 12, expected  # the oracle found what each table is there for
    assert ours == expected, {"only ours": sorted(ours - expected), "only pt's": sorted(expected - ours)}
    assert not [r for r, _ in ours if "t_clean" in _]


def test_a_key_that_ends_with_the_clustered_key_is_shortened_not_dropped(schema):
    url, name = schema
    live = read_schema(engine_for(url))
    found = {d.index: d for d in find_duplicates(live.indexes["t_clustered"], name)}
    assert found["ka"].reason == "ka is a duplicate of ua"  # the plain one goes, the unique one stays
    assert found["ua"].drop_sql == f"ALTER TABLE `{name}`.`t_clustered` DROP INDEX `ua`, ADD INDEX `ua` (`a`);"
    assert re.search(r"DROP INDEX `ua`;", found["ua"].drop_sql) is None
