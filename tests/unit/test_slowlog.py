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
