"""The C reader of the slow log (pelbiot_jobs/queries/_scan.c) against the Python parser, its reference.

Every log here is digested twice, by the C reader (records of the usual layouts in C, the rest by the
Python parser) and by the Python parser alone, and the two digests must be equal in everything a
report shows: classes, counts, sums, percentiles, examples and their times, users, hosts, databases,
flags, hours, skipped and oversized events. The logs are every shape of tests/slowlog_shapes.py, then
thousands of random mutations of them (bytes flipped, inserted, cut; separators, digits, banner lines
and header lines put where they do not belong), then blocks so small that records straddle them.
"""

from __future__ import annotations

import random

import pytest

from pelbiot_jobs.queries import digest as digest_module
from pelbiot_jobs.queries.digest import digest_files, summarize
from pelbiot_jobs.queries.fingerprint import cache_key
from tests.slowlog_shapes import BANNER, admin, mariadb_event, mysql8_event, no_query, old_event, shapes

try:
    from pelbiot_jobs.queries import _scan
except ImportError:  # test_the_extension_is_built_and_used says why; the rest fail on _scan
    _scan = None


def both(tmp_path, data: bytes, monkeypatch, name: str = "slow.log"):
    """(C reader's summary, Python reader's summary, C reader's digest) of ``data`` as a file."""
    path = tmp_path / name
    path.write_bytes(data)
    out = {}
    for reader in ("c", "python"):
        d = digest_files([path], workers=1, use=reader)
        s = summarize(d, mask_example=False)
        s["global"].pop("python_records")
        out[reader] = (s, d)
    return out["c"][0], out["python"][0], out["c"][1]


def assert_equal(c: dict, py: dict, what) -> None:
    if c == py:
        return
    for k in py["global"]:
        assert c["global"][k] == py["global"][k], (what, "global", k)
    assert [x["fingerprint"] for x in c["classes"]] == [x["fingerprint"] for x in py["classes"]], what
    for a, b in zip(c["classes"], py["classes"]):
        for k in b:
            assert a[k] == b[k], (what, b["fingerprint"][:80], k)
    raise AssertionError(what)


def test_the_extension_is_built_and_used():
    assert digest_module.reader() == "c", "the C reader was not built: pip install -e . needs gcc and Python's headers"


@pytest.mark.parametrize("name", sorted(shapes()))
def test_every_shape_digests_the_same_in_c_and_in_python(name, tmp_path, monkeypatch):
    c, py, d = both(tmp_path, shapes()[name], monkeypatch)
    assert_equal(c, py, name)
    if name in ("mariadb", "mysql8-log-slow-extra", "mysql5-no-set-timestamp"):
        # the usual layouts are read in C (else this test would compare Python with itself)
        assert d.events > 250 and d.python_records < d.events * 0.05, (name, d.python_records, d.events)


def _log(r: random.Random, n: int) -> bytes:
    makers = [mariadb_event, mariadb_event, mariadb_event, mysql8_event, old_event, no_query, admin,
              lambda r, i: mariadb_event(r, i, db=True)]
    parts = [r.choice(makers)(r, i) for i in range(n)]
    if r.random() < 0.2:
        parts.insert(r.randrange(len(parts) + 1), BANNER)
    return b"".join(parts)


_PIECES = [b";\n#", b";\n", b"\n#", b"# ", b"#", b"\n", b" ", b"\t", b"\r", b":", b".", b"0", b"9", b"12345678901234567",
           b"9" * 40, b"Yes", b"No", b"use ", b"use x;\n", b"SET timestamp=", b"SET timestamp=1795000000;\n",
           b"SET insert_id=1;\n", b"# Time: 261128 10:00:01\n", b"# Time: 2026-11-28T10:00:01.5Z\n",
           b"# User@Host: u[u] @ h [1.2.3.4]\n", b"# User@Host: \n", b"Schema: ", b"QC_hit: Yes", b"Full_scan: Yes",
           b"# Full_scan: Yes  Full_join: No  Tmp_table: No  Tmp_table_on_disk: Yes\n# Filesort: Yes\n",
           b"# Tmp_tables: 1\n", b"Rows_affected: ", b"Bytes_sent: ", b"Bytes_sent: 1e5", b"Bytes_sent: x",
           b"Query_time: ", b"Lock_time: 1.2.3 ", b"# administrator command: Quit;\n", b"/*", b"*/", b"/* a=1 */",
           b"INSERT INTO t VALUES (1),(2)", b"call p(1)", b" IN (1, 2, 3)", b"\x00", b"\xff\xfe", BANNER,
           b"Tcp port: 3306\n", b"Time  Id Command  Argument\n", b"select 1;\n\n", b";\n#\n"]


def _mutate(r: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(r.randint(1, 6)):
        if not b:
            break
        at = r.randrange(len(b) + 1)
        op = r.random()
        if op < 0.35:
            b[at:at] = r.choice(_PIECES)
        elif op < 0.55:
            b[at:at + r.randint(1, 30)] = b""
        elif op < 0.75 and at < len(b):
            b[at] = r.randrange(256)
        elif op < 0.85:
            b[at:at + r.randint(1, 8)] = r.choice(_PIECES)
        else:  # a line moved elsewhere
            start = b.rfind(b"\n", 0, at) + 1
            end = b.find(b"\n", at)
            if end > start:
                line = bytes(b[start:end + 1])
                del b[start:end + 1]
                to = r.randrange(len(b) + 1)
                b[to:to] = line
    if r.random() < 0.1:
        del b[r.randrange(len(b) + 1):]
    return bytes(b)


def test_thousands_of_mutated_logs_digest_the_same_in_c_and_in_python(tmp_path, monkeypatch):
    r = random.Random(20261207)
    mutated = 0
    for i in range(1500):
        data = _mutate(r, _log(r, r.randint(1, 12)))
        c, py, _ = both(tmp_path, data, monkeypatch)
        assert_equal(c, py, (i, data[:3000]))
        mutated += 1
    assert mutated == 1500


def test_records_straddling_small_blocks_and_records_over_the_limit_digest_the_same(tmp_path, monkeypatch):
    """Blocks of 1 KB and a record limit of 8 KB: records cross blocks, separators are cut in two, long
    queries are skipped as oversized; both readers agree, plain and gzipped."""
    import gzip

    monkeypatch.setattr(digest_module, "BLOCK", 1024)
    monkeypatch.setattr(digest_module, "MAX_RECORD", 8 << 10)
    r = random.Random(7)
    for i in range(60):
        data = _log(r, r.randint(5, 40))
        if i % 3 == 0:  # a long one-line query in the middle
            data += mariadb_event(r, 99, b"SELECT '" + b"x" * r.randint(5000, 20000) + b"'") + _log(r, 5)
        c, py, d = both(tmp_path, data, monkeypatch)
        assert_equal(c, py, i)
        gz = tmp_path / "slow.log.gz"
        gz.write_bytes(gzip.compress(data))
        zc = summarize(digest_files([gz], workers=1, use="c"), mask_example=False)
        zc["global"].pop("python_records")
        zc["global"]["bytes"] = c["global"]["bytes"]
        assert_equal(zc, c, ("gz", i))
    assert d.oversized >= 0


def test_the_cache_key_in_c_is_the_python_one():
    from tests.slowlog_shapes import _query

    r = random.Random(5)
    pieces = [b"IN (", b"in(", b"In ,(", b"join (", b"min (", b"1", b"22", b",", b" ", b"\n", b"?", b")", b"(", b"\x00",
              b"\x00\x00", b"x", b"_in (1)", b"IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)"]
    for _ in range(5000):
        q = _query(r) if r.random() < 0.3 else b"SELECT x FROM t WHERE " + b"".join(
            r.choice(pieces) for _ in range(r.randint(0, 150)))
        assert _scan.cache_key(q) == cache_key(q), q


def test_the_queries_c_leaves_to_python_are_those_keyed_otherwise():
    """Comments (tags, pt-table-checksum's), INSERT/REPLACE (keyed by their first row), CALL and
    administrator commands (which keep their digits) go to the Python fingerprint path."""
    from pelbiot_jobs.queries.fingerprint import _keeps_digits

    r = random.Random(6)
    heads = [b"insert", b"INSERT", b"Replace", b"replac", b"inser", b" insert", b"call", b"  CALL", b"\tcall", b"\x00",
             b"administrator", b" Administrator", b"administrato", b"select", b"/", b"*", b"/*", b"*/", b""]
    for _ in range(3000):
        q = b"".join(r.choice(heads) for _ in range(r.randint(0, 4))) + b" x " + r.choice(heads)
        expected = b"/*" in q or q[:7].lower().startswith((b"insert", b"replace")) or _keeps_digits(q) or b"\x00" in q
        assert _scan.needs_python(q) == expected, q


@pytest.mark.parametrize("ts", [b"9" * 400, b"99999999999999999", b"253402300800"])
def test_a_timestamp_past_year_9999_is_no_time_for_either_reader(ts, tmp_path, monkeypatch):
    """Before: 400 digits stopped the digest (OverflowError), 10^17 too (OSError, making the hour's date)."""
    r = random.Random(1)
    event = (b"# User@Host: app[app] @ localhost [127.0.0.1]\n# Thread_id: 1  Schema: pelbiot  QC_hit: No\n"
             b"# Query_time: 0.5  Lock_time: 0.1  Rows_sent: 1  Rows_examined: 1\n# Rows_affected: 0  Bytes_sent: 9\n"
             b"SET timestamp=" + ts + b";\nSELECT 1;\n")
    old = b"# Time: 071015 21:00:00\n# User@Host: root[root] @ localhost []\n# Query_time: 1  Lock_time: 0  " \
          b"Rows_sent: 1  Rows_examined: 3\nSET timestamp=" + ts + b";\nSELECT 2;\n"
    data = mariadb_event(r, 0) + event + old + old_event(r, 2)
    c, py, d = both(tmp_path, data, monkeypatch)
    assert_equal(c, py, ts)
    select_one = [x for x in c["classes"] if x["fingerprint"] == "select ?"]
    assert select_one and select_one[0]["query_count"] == 2 and select_one[0]["ts_min"] is None
    assert d.python_records == 0  # read by the C reader


_MARIADB = (b"# Time: 261128 10:00:01\n# User@Host: app[app] @ localhost [127.0.0.1]\n"
            b"# Thread_id: 7  Schema: pelbiot  QC_hit: No\n"
            b"# Query_time: 0.250000  Lock_time: 0.000100  Rows_sent: 3  Rows_examined: 300\n"
            b"# Rows_affected: 0  Bytes_sent: 512\n"
            b"# Full_scan: Yes  Full_join: No  Tmp_table: No  Tmp_table_on_disk: No\n"
            b"# Filesort: Yes  Filesort_on_disk: No  Merge_passes: 0  Priority_queue: No\n"
            b"use pelbiot;\nSET timestamp=1795000000;\nSELECT * FROM devices WHERE id = 4;\n")
_MYSQL = (b"# Time: 2026-11-28T10:00:01.123456Z\n# User@Host: app[app] @ localhost [127.0.0.1]  Id:    95\n"
          b"# Query_time: 0.591748  Lock_time: 0.000003 Rows_sent: 7  Rows_examined: 301 Thread_id: 8 Errno: 0 "
          b"Bytes_received: 0 Bytes_sent: 56 Read_first: 0\nSET timestamp=1795000001;\nSELECT id FROM alerts;\n")
# One change each to a line the C reader checks: each must read as the Python parser reads it.
_EDGES = [
    (b"SET timestamp=1795000000;\n", b"SET timestamp=1795000000;\nSET insert_id=5;\n"),
    (b"SET timestamp=1795000000;\n", b"SET timestamp=1795000000;\nSET last_insert_id=5;\n"),
    (b"SET timestamp=1795000000;\n", b"SET timestamp=1795000000;\nSET timestamp=1795000001;\n"),
    (b"SET timestamp=1795000000;\n", b"SET timestamp 1795000000;\n"),
    (b"SET timestamp=1795000000;\n", b"SET timestamp=17950x0000;\n"),
    (b"SET timestamp=1795000000;\n", b""),
    (b"SET timestamp=1795000000;\n", b"SET NAMES utf8;\n"),
    (b"use pelbiot;\n", b"use pelbiot;\nuse other;\n"),
    (b"use pelbiot;\n", b"use pelbiot\n"),
    (b"use pelbiot;\n", b"use ;\n"),
    (b"use pelbiot;\n", b"use `odd;name`;\n"),
    (b"Schema: pelbiot  QC_hit", b"Schema:   QC_hit"),
    (b"Schema: pelbiot  QC_hit", b"Schema: a:b  QC_hit"),
    (b"Schema: pelbiot  QC_hit", b"Schema: pelbiot\n  QC_hit"),
    (b"QC_hit: No", b"QC_hit: Yes"),
    (b"QC_hit: No", b"QC_hit: "),
    (b"# Full_scan: Yes", b"# Tmp_tables: 1  Tmp_disk_tables: 0  Tmp_table_sizes: 0\n# Full_scan: Yes"),
    (b"# Full_scan: Yes", b"# Tmp_tables: 1"),
    (b"# Filesort: Yes  Filesort_on_disk: No  Merge_passes: 0  Priority_queue: No\n", b""),
    (b"Tmp_table_on_disk: No", b"Tmp_table_on_disk: Yes"),
    (b"Full_join: No", b"Full_join: Yes"),
    (b"Full_join: No  ", b""),
    (b"# Filesort: Yes", b"#\n# explain: id\tselect_type\n#\n# Filesort: Yes"),
    (b"use pelbiot;\n", b"#\n# explain: 1\tSIMPLE\tdevices\tALL\n#\nuse pelbiot;\n"),
    (b"use pelbiot;\n", b"# no line end"),
    (b"# Time: 261128 10:00:01\n", b""),
    (b"# Time: 261128 10:00:01\n", b"# Time: 261128  9:00:01\n"),
    (b"# Time: 261128 10:00:01\n", b"# Time: garbage\n"),
    (b"# Time: 261128 10:00:01\n", b"# Time: \n"),
    (b"# Time: 261128 10:00:01\n# User", b"# Time: 261128 10:00:01\n#User"),
    (b"# User@Host: app[app] @ localhost [127.0.0.1]", b"# User@Host: "),
    (b"# User@Host: app[app] @ localhost [127.0.0.1]", b"# User@Host: [weird] @  [10.0.0.1]"),
    (b"# Thread_id: 7  ", b"# Thread_id: x  "),
    (b"# Thread_id: 7  ", b"# Thread_id: 7\n"),
    (b"Query_time: 0.250000", b"Query_time: 0.25.0"),
    (b"Query_time: 0.250000", b"Query_time: ."),
    (b"Query_time: 0.250000", b"Query_time: .25"),
    (b"Query_time: 0.250000", b"Query_time: 25."),
    (b"Query_time: 0.250000", b"Query_time: 18446744073708.796870.000036"),
    (b"Query_time: 0.250000", b"Query_time: 0.1234567890123456789"),
    (b"Query_time: 0.250000", b"Query_time: 1234567890123456"),
    (b"Query_time: 0.250000", b"Query_time: " + b"9" * 60),
    (b"Rows_examined: 300", b"Rows_examined: 12345678901234567890"),
    (b"Rows_examined: 300", b"Rows_examined: 3e2"),
    (b"Rows_examined: 300\n", b"Rows_examined: 300  Extra: 1\n"),
    (b"Bytes_sent: 512", b"Bytes_sent: 512  Tmp_tables: 0"),
    (b"  Lock_time", b"\tLock_time"),
    (b"  Lock_time", b"Lock_time"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b";\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"   \n;\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"SELECT 1;\n\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"# administrator command: Quit;\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"INSERT INTO t VALUES (1, 'a'), (2, 'b');\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"/* route=GET /devices */ SELECT * FROM devices;\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"CALL refresh(4);\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"Tcp port: 3306  Unix socket: x\nSELECT 1;\n"),
    (b"SELECT * FROM devices WHERE id = 4;\n", b"SELECT 1\r\n;\n"),
    (b"\n", b"\r\n"),
]
_MYSQL_EDGES = [
    (b"Bytes_sent: 56", b"Bytes_sent: 5x6"),
    (b"Bytes_sent: 56", b"Bytes_sent: 1e5"),
    (b"Bytes_sent: 56", b"Bytes_sent: "),
    (b"Bytes_sent: 56", b"Bytes_sent:  77"),
    (b"Bytes_sent: 56", b"XBytes_sent: 77 Bytes_sent: 1"),
    (b"Bytes_sent: 56", b"Schema: x Bytes_sent: 56"),
    (b"Bytes_sent: 56", b"QC_hit: Yes"),
    (b"Bytes_sent: 56", b"Rows_affected: 4"),
    (b"  Id:    95", b""),
    (b"Lock_time: 0.000003", b"Lock_time: 0.0.3"),
    (b"SET timestamp=1795000001;\n", b""),
    (b"SET timestamp=1795000001;\n", b"use x;\nSET timestamp=1795000001;\n"),
    (b"# Time: 2026-11-28T10:00:01.123456Z\n", b""),
    (b"# Time: 2026-11-28T10:00:01.123456Z\n", b"# Time: 071015 21:00:00\n"),
]


_CASES = [(_MARIADB, o, n) for o, n in _EDGES] + [(_MYSQL, o, n) for o, n in _MYSQL_EDGES + _EDGES if o in _MYSQL]


@pytest.mark.parametrize("base, old, new", _CASES, ids=[f"{'mysql' if b is _MYSQL else 'mariadb'}-{i}"
                                                        for i, (b, _, _) in enumerate(_CASES)])
def test_each_line_the_c_reader_checks_reads_as_in_python(base, old, new, tmp_path, monkeypatch):
    edge = base.replace(old, new, 1)
    assert edge != base, old
    r = random.Random(2)
    for data in (base + edge + base, edge, edge + mariadb_event(r, 3), no_query(r, 1) + edge + old_event(r, 2)):
        c, py, _ = both(tmp_path, data, monkeypatch)
        assert_equal(c, py, (old, new, data))


def test_the_command_reads_the_same_with_either_reader(tmp_path):
    """`pelbiot-jobs slowlog --reader python` (the fallback should the C reader ever misread) gives the
    default's digest; the command reads no settings (a broken PELBIOT_* variable does not stop it)."""
    import json
    import os
    import subprocess
    import sys

    log = tmp_path / "slow.log"
    log.write_bytes(shapes()["mariadb"] + shapes()["mysql8-log-slow-extra"] + BANNER + shapes()["no-query-and-admin-events"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PELBIOT_")} | {"PELBIOT_WORKER_CONCURRENCY": "x"}
    out = {}
    for reader in ("c", "python"):
        done = subprocess.run([sys.executable, "-m", "pelbiot_jobs.cli", "slowlog", "--format", "json", "--reader",
                               reader, "--show-literals", str(log)], capture_output=True, env=env, cwd=tmp_path,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        out[reader] = json.loads(done.stdout)
        out[reader]["global"].pop("python_records")
    assert out["c"] == out["python"] and out["c"]["global"]["query_count"] > 1000


@pytest.mark.parametrize("value", [b"9" * 400, b"9" * 60, b"1" + b"0" * 300, b"123456789012345678901"])
def test_a_number_no_server_writes_is_left_out_by_either_reader(value, tmp_path, monkeypatch):
    """Before: 400 digits made an infinite sum (invalid JSON), and folding it stopped the digest
    (OverflowError); 10^300 twice overflowed the sum. Over 10^20 (no counter passes 2^64) it is
    left out, as text that is not a number is; the event is kept."""
    import json

    r = random.Random(3)
    bad = _MARIADB.replace(b"Rows_examined: 300", b"Rows_examined: " + value).replace(
        b"Query_time: 0.250000", b"Query_time: " + value[:30])
    data = b"".join(mariadb_event(r, i) + bad for i in range(40))
    c, py, d = both(tmp_path, data, monkeypatch)
    assert_equal(c, py, value)
    devices = [x for x in c["classes"] if x["fingerprint"] == "select * from devices where id = ?"][0]
    assert devices["query_count"] >= 40 and all(m["max"] <= 1e20 for m in devices["metrics"].values())
    monkeypatch.setattr(digest_module, "RAW_BUDGET", 50)  # folded into buckets, as a big log's values are
    monkeypatch.setattr(digest_module, "FOLD_CHECK", 10)
    for reader in ("c", "python"):
        folded = summarize(digest_files([tmp_path / "slow.log"], workers=1, use=reader))
        json.loads(json.dumps(folded, allow_nan=False))  # no Infinity: a JSON every reader takes
        assert {x["checksum"]: x["query_count"] for x in folded["classes"]} == \
            {x["checksum"]: x["query_count"] for x in c["classes"]}


def test_a_look_ahead_that_never_ends_holds_no_more_than_a_few_records(tmp_path, monkeypatch):
    """Each record answers the look-ahead of the one before and ends looking ahead itself: one chain
    through the whole log. The Python parser reads it in constant memory; the C reader, which hands
    such records over, must too (before: it held them all, handing them over again each time the run
    doubled: 111 MB and 18 s for this 4 MB log, against 8 MB and 6 s now)."""
    import tracemalloc

    records = 200_000
    # "x;\n Query_time: 1": "x" answers the look-ahead; the rest, read as a record ("#" put back), is a
    # header alone that looks ahead again
    data = b"# Query_time: 1" + b"".join(b";\n#x" + str(i % 7).encode() + b";\n Query_time: 1" for i in range(records))
    c, py, d = both(tmp_path, data, monkeypatch)
    assert_equal(c, py, "chain")
    assert c["global"]["query_count"] >= records
    path = tmp_path / "slow.log"
    tracemalloc.start()
    digest_files([path], workers=1, use="c")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20, f"{peak >> 20} MB held for a {len(data) >> 20} MB log"


def test_a_nul_byte_in_a_query_is_not_read_as_a_digit(tmp_path, monkeypatch):
    """The cache key turns digits into NUL bytes: a query holding a NUL byte where another holds a digit
    had the other's fingerprint from the cache (found by a longer run of the mutation test: an IN list
    with a NUL in it took the collapsed IN list's class). Such a query is never keyed."""
    from pelbiot_jobs.queries.fingerprint import FingerprintCache, fingerprint

    ids = ", ".join(str(i) for i in range(80)).encode()
    q1 = b"SELECT id FROM sensor_data WHERE sensor_id IN (" + ids + b")"
    q2 = q1.replace(b"7, ", b"\x00, ", 1)
    cache = FingerprintCache()
    assert cache(q1) == fingerprint(q1) and cache(q2) == fingerprint(q2) != fingerprint(q1)
    r = random.Random(8)
    data = mariadb_event(r, 1, q1) + mariadb_event(r, 2, q2) + old_event(r, 3, q2) + no_query(r, 4) + old_event(r, 5, q1)
    c, py, _ = both(tmp_path, data, monkeypatch)
    assert_equal(c, py, "nul")
    assert len([x for x in c["classes"] if x["fingerprint"]]) == 2  # (and the no-query event's class)
