import gzip
from pathlib import Path

import pytest

from pelbiot_jobs.queries.digest import Digest, digest_files, digest_records, summarize
from pelbiot_jobs.queries.fingerprint import fingerprint, mask_literals, query_id
from pelbiot_jobs.queries.slowlog import parse_record, split_records

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("query, expected", [
    (b"SELECT * FROM t WHERE a = 'x' AND b IN (1,2,3) ORDER BY c ASC LIMIT 10, 20",
     b"select * from t where a = ? and b in(?+) order by c limit ?"),
    (b"INSERT INTO t (a,b) VALUES (1,'a'),(2,'b')", b"insert into t (a,b) values(?+)"),
    (b"SELECT 1 UNION ALL SELECT 1", b"select ? /*repeat union all*/"),
    (b"use test", b"use ?"),
    (b"administrator command: Quit", b"administrator command: Quit"),
    (b"call foo(1, 2)", b"call foo"),
    (b"SELECT col FROM db1.t2 WHERE x IS NULL AND y = true", b"select col from d?t? where x is ? and y = ?"),
    (b"select /* hint */ a from t  where  b='\\'q\\''\n", b"select a from t where b=?"),
])
def test_fingerprints_follow_percona(query, expected):
    assert fingerprint(query) == expected


def test_query_id_is_the_upper_case_md5_of_the_fingerprint():
    assert query_id(b"select ?") == "B5CA67C9F30C4DC4B19C0D2A2B4A1F0C".upper() or len(query_id(b"select ?")) == 32
    import hashlib

    assert query_id(b"select ?") == hashlib.md5(b"select ?").hexdigest().upper()


def test_masking_keeps_the_query_readable_without_user_values():
    assert mask_literals(b"SELECT * FROM users WHERE email = 'bob@x.io' AND id = 42 AND t1.c = 3") == \
        b"SELECT * FROM users WHERE email = ? AND id = ? AND t1.c = ?"


def digest_text(text: bytes) -> Digest:
    d = Digest()
    digest_records(split_records(text), d)
    return d


def test_mysql8_log_with_extra_fields_and_admin_commands():
    d = digest_text((DATA / "mysql8-slow.log").read_bytes())
    s = summarize(d)
    by_fp = {c["fingerprint"]: c for c in s["classes"]}
    assert d.events == 6 and len(by_fp) == 5
    devices = by_fp["select * from devices where id = ?"]
    assert devices["query_count"] == 2 and devices["metrics"]["Query_time"]["sum"] == pytest.approx(0.0005)
    hist = by_fp["select hour, avg(`load`) as `load` from load_profiles where hour >= ? group by hour order by hour"]
    assert hist["metrics"]["Rows_examined"]["max"] == 144000 and hist["databases"] == {"pelbiot": 1}
    assert hist["ts_min"] == "2026-11-28T10:00:01"
    assert "administrator command: Quit" in by_fp
    multi = [c for c in s["classes"] if c["fingerprint"].startswith("select * from alerts")][0]
    # pt-query-digest's string rule is non-greedy: 'it''s' is two strings, hence "??".
    assert multi["fingerprint"] == "select * from alerts where message = ?? and status in(?+) order by created_at"
    assert "it''s" not in multi["example"]["query"]  # literals masked


@pytest.mark.parametrize("garbage", [
    b"\x00\xff\xfe binary garbage\n" * 10,
    b"# Query_time: 0.1 Lock_time",  # truncated header
    b"not a log line at all\nanother\n",
])
def test_garbage_costs_only_itself(garbage):
    good = (DATA / "mysql8-slow.log").read_bytes()
    d = digest_text(garbage + b";\n" + good + garbage)
    assert d.events >= 6  # every real event is still there


def test_a_file_that_starts_mid_event_and_a_huge_query():
    good = (DATA / "mysql8-slow.log").read_bytes()
    mid = good[good.index(b"Rows_examined: 144000") + 5:]
    huge = b"# Time: 2026-11-28T11:00:00Z\n# Query_time: 0.1  Lock_time: 0.0 Rows_sent: 0  Rows_examined: 0\n" \
           b"INSERT INTO t VALUES (" + b"1," * 2_000_000 + b"1);\n"
    d = digest_text(mid + huge)
    assert d.events >= 5
    assert any(fp.startswith(b"insert into t values") for fp in d.classes)


def test_gzip_and_parallel_parts_give_the_same_digest(tmp_path):
    body = (DATA / "mysql8-slow.log").read_bytes()
    log = tmp_path / "big.log"
    log.write_bytes(body * 3000)  # ~4 MB: several parts on several processes
    gz = tmp_path / "big.log.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(body * 3000)
    one = summarize(digest_files([log], workers=1))
    many = summarize(digest_files([log], workers=3))
    zipped = summarize(digest_files([gz], workers=2))
    counts = [{c["checksum"]: c["query_count"] for c in s["classes"]} for s in (one, many, zipped)]
    assert counts[0] == counts[1] == counts[2] and sum(counts[0].values()) == 6 * 3000
    assert one["global"]["query_time_sum"] == pytest.approx(many["global"]["query_time_sum"])


def test_the_fast_path_reads_mariadb_records_exactly_as_the_general_one():
    data = (DATA / "mariadb-slow.log").read_bytes()  # recorded from MariaDB 10.11, log_slow_verbosity=query_plan,explain
    fast_hits = 0
    for record in split_records(data):
        a = parse_record(record, fast=True)
        b = parse_record(record, fast=False)
        assert (a is None) == (b is None)
        if a is not None:
            assert (a.query, a.ts, a.user, a.host, a.db) == (b.query, b.ts, b.user, b.host, b.db)
            for name in (b"Query_time", b"Lock_time", b"Rows_sent", b"Rows_examined", b"Rows_affected",
                         b"Bytes_sent", b"Full_scan", b"Filesort", b"Tmp_table_on_disk", b"QC_hit"):
                assert a.attrs.get(name) == b.attrs.get(name), (name, record[:200])
            fast_hits += 1
    assert fast_hits > 50


def test_queries_the_fingerprint_cache_keys_alike_have_one_fingerprint():
    """FingerprintCache's claim, on made-up pairs: a query and the same query with other digits,
    numbers of other lengths and IN lists of other lengths; when their keys match, so do their
    fingerprints (and the cache gives the fingerprint itself)."""
    import random
    import re

    from pelbiot_jobs.queries.fingerprint import FingerprintCache
    from tests.slowlog_shapes import _query

    r = random.Random(3)
    pieces = [b"IN (", b"in(", b"JOIN (", b"join(", b" , ", b"1", b"22", b"-3", b"0x1F", b"'in (1, 2)'",
              b"-- in (4,5)\n", b")", b"(", b" ", b",", b"\n", b"?", b"values (", b"min (", b"b1", b"1.5e3",
              b"null", b"#x\n", b"/* 1 */", b"union select ", b"limit 1, 2", b"order by a asc", b"\"q 1\"",
              b"IN (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25)"]

    def made_up() -> bytes:
        if r.random() < 0.3:
            return _query(r)
        return b"SELECT x FROM t WHERE " + b"".join(r.choice(pieces) for _ in range(r.randint(1, 120)))

    def other_numbers(q: bytes) -> bytes:
        q = re.sub(rb"\d+", lambda m: str(r.randint(0, 10 ** r.randint(0, 6))).encode(), q)
        return re.sub(rb"\((\s*\d+\s*(?:,\s*\d+\s*)*)\)", lambda m: b"(" + b", ".join(
            str(r.randint(0, 99)).encode() for _ in range(r.randint(1, 30))) + b")", q)

    def key(q: bytes):
        cache = FingerprintCache()
        assert cache(q) == fingerprint(q)
        k = next(iter(cache.cache))
        return q if cache.cache[k] is FingerprintCache._EXACT else k

    alike = 0
    for _ in range(5000):
        q = made_up()
        q2 = other_numbers(q)
        if key(q) == key(q2):
            alike += 1
            assert fingerprint(q) == fingerprint(q2), (q, q2)
    assert alike > 1000  # the test tries the claim often enough to mean something


def test_a_digest_over_its_raw_budget_folds_into_buckets_and_keeps_exact_counts_and_sums(monkeypatch):
    """Memory grows with classes, not events: past the budget the biggest classes' values are
    folded into 5 % buckets; count, sum, min and max stay exact, median and p95 within 5 %."""
    import random

    from pelbiot_jobs.queries import digest as digest_module
    from tests.slowlog_shapes import mariadb_event

    r = random.Random(11)
    log = b"".join(mariadb_event(r, i, b"SELECT * FROM devices WHERE id = " + str(i).encode()) for i in range(3000))
    exact = summarize(digest_text(log))["classes"][0]["metrics"]
    monkeypatch.setattr(digest_module, "RAW_BUDGET", 1000)
    monkeypatch.setattr(digest_module, "FOLD_CHECK", 100)
    folded_digest = digest_text(log)
    assert folded_digest.raw <= 1000 and any(qc.folded for qc in folded_digest.classes.values())
    folded = summarize(folded_digest)["classes"][0]["metrics"]
    for name, m in exact.items():
        assert folded[name]["sum"] == pytest.approx(m["sum"]) and folded[name]["max"] == m["max"], name
        assert folded[name]["min"] == m["min"], name
        for q in ("median", "pct_95"):
            assert m[q] <= folded[name][q] <= m[q] * 1.05 + 1e-6, (name, q)


@pytest.mark.parametrize("name", ["mariadb", "mysql8-log-slow-extra", "mysql5-no-set-timestamp", "empty-schema",
                                  "no-query-and-admin-events", "wrapped-query-time", "crlf-line-ends"])
def test_the_fast_paths_read_every_layout_exactly_as_the_general_one(name):
    """The MariaDB and MySQL fast paths against the general path, field for field."""
    from tests.slowlog_shapes import shapes

    for record in split_records(shapes()[name]):
        assert parse_record(record, fast=True) == parse_record(record, fast=False), record[:300]


def test_the_fast_time_parser_agrees_with_strptime():
    import random

    from pelbiot_jobs.queries.slowlog import _parse_time_slow, _parse_time_text

    r = random.Random(4)
    samples = [b"071015 21:43:52", b"261128  9:05:01", b"261128 23:59:59", b"240229  0:00:00", b"230229 10:00:00",
               b"261332 10:00:00", b"261128 25:00:00", b"2026-11-28T10:00:01.123456Z", b"garbage"]
    samples += [f"{r.randint(0, 99):02d}{r.randint(1, 12):02d}{r.randint(1, 28):02d} {r.randint(0, 23):>2}:"
                f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}".encode() for _ in range(500)]
    for raw in samples:
        assert _parse_time_text(raw) == _parse_time_slow(raw), raw


def test_the_fingerprint_cache_stops_growing_at_its_byte_budget_and_still_answers():
    """A log whose queries all differ in their strings keeps adding keys: the cache holds at most
    its byte budget (plus the entry that crossed it) and every answer is still the fingerprint."""
    from pelbiot_jobs.queries.fingerprint import FingerprintCache, fingerprint

    cache = FingerprintCache(max_bytes=64 << 10)
    queries = [f"SELECT * FROM logs WHERE note = 'entry {chr(97 + i % 26) * (i % 40)} x{i:x}y' AND k = {i}".encode()
               for i in range(5000)]
    for q in queries:
        assert cache(q) == fingerprint(q)
    longest = max(len(q) for q in queries) * 2
    assert cache.held <= (64 << 10) + longest and len(cache.cache) < 5000
    assert all(cache(q) == fingerprint(q) for q in queries[::97])
