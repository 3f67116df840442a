"""The index advisor weighs the whole workload: the writes an index slows beside the reads it speeds,
one index for several classes, extending an index, an index that serves a rewritten query."""

import pytest

from pelbiot_jobs.indexes.advisor import proposals_from_digests
from pelbiot_jobs.indexes.live import Schema
from pelbiot_jobs.indexes.model import Column, Index
from pelbiot_jobs.indexes.workload import WRITE_COST, weigh, write_of, writes_by_table


@pytest.mark.parametrize("fingerprint, expected", [
    ("insert into readings (device_id, value) values(?+)", ("insert", "readings", ())),
    ("insert ignore into `pelbiot`.`readings` (a) values(?+)", ("insert", "readings", ())),
    ("replace into readings values(?+)", ("insert", "readings", ())),
    ("update devices set status = ?, updated_at = now() where id = ?", ("update", "devices", ("status", "updated_at"))),
    ("update low_priority `devices` d set d.name = ? where d.id = ?", ("update", "devices", ("name",))),
    ("delete from readings where created_at < ?", ("delete", "readings", ())),
    ("select * from readings where device_id = ?", None),
])
def test_write_statements_are_read_from_fingerprints(fingerprint, expected):
    assert write_of(fingerprint) == expected


def digest(qid, fingerprint, calls, examined=0, sent=0, affected=0, time_s=1.0, example=None, full_scans=0):
    return {"query_id": qid, "fingerprint": fingerprint, "example": example, "calls": calls,
            "rows_examined_sum": examined, "rows_sent_sum": sent, "rows_affected_sum": affected,
            "query_time_sum": time_s, "full_scans": full_scans}


def test_the_verdict_weighs_rows_saved_against_index_entries_written():
    reads = [digest("R", "select * from t where a = ?", 100, examined=100 * 5000, sent=100)]
    read_heavy = reads + [digest("W", "insert into t (a) values(?+)", 10, affected=10)]
    w = weigh("t", ("a",), reads, read_heavy, writes_by_table(read_heavy), hours=10)
    assert w["pays"] and not w["write_heavy"] and w["verdict"].startswith("pays: t is read-heavy")
    assert w["reads_per_hour"] == 10 and w["inserts_per_hour"] == 1 and w["index_entries_written_per_hour"] == 1
    assert w["rows_saved_per_hour"] == (100 * 5000 - 100) // 10
    # the same reads on a table that takes 50,000 inserts and 20,000 updates of the column: it does not pay
    write_heavy = reads + [digest("W", "insert into t (a) values(?+)", 50_000, affected=50_000),
                           digest("U", "update t set a = ? where id = ?", 20_000, affected=20_000),
                           digest("V", "update t set b = ? where id = ?", 90_000, affected=90_000)]
    w = weigh("t", ("a",), reads, write_heavy, writes_by_table(write_heavy), hours=10)
    assert w["write_heavy"] and not w["pays"] and "does not pay: t is write-heavy" in w["verdict"]
    assert w["updates_per_hour"] == 11_000 and w["updates_changing_its_columns_per_hour"] == 2_000
    assert w["index_entries_written_per_hour"] == 5_000 + 2 * 2_000  # updates of b leave an index on a alone
    assert 499_990 / 10 < WRITE_COST * 9_000  # what makes it not pay


def schema(**indexes):
    return Schema("pelbiot", "mysql", columns={"readings": ["id", "device_id", "at", "value", "kind"]},
                  indexes={"readings": [Index("readings", "PRIMARY", (Column("id"),), unique=True, primary=True)]
                           + [Index("readings", name, tuple(Column(c) for c in cols)) for name, cols in indexes.items()]})


def test_one_index_serves_several_classes_and_is_named_once():
    by_device = "SELECT * FROM readings WHERE device_id = 7"
    by_device_at = "SELECT * FROM readings WHERE device_id = 7 AND at >= '2026-12-01'"
    rows = [digest("A" * 32, "select * from readings where device_id = ?", 500, 500 * 2000, 500 * 20, example=by_device,
                   full_scans=500),
            digest("B" * 32, "select * from readings where device_id = ? and at >= ?", 300, 300 * 2000, 300 * 5,
                   example=by_device_at, full_scans=300)]
    proposals = proposals_from_digests(rows, schema(), hours=5)
    assert len(proposals) == 1
    p = proposals[0]
    assert p.columns == ("device_id", "at") and set(p.serves) == {"A" * 32, "B" * 32}
    assert p.reason.startswith("one index for 2 query classes") and p.workload["reads_per_hour"] == 160
    assert not p.extends


def test_an_existing_index_is_extended_rather_than_a_new_one_added():
    q = "SELECT * FROM readings WHERE device_id = 7 AND at >= '2026-12-01'"
    rows = [digest("C" * 32, "select * from readings where device_id = ? and at >= ?", 300, 300 * 2000, 300,
                   example=q, full_scans=0)]
    (p,) = proposals_from_digests(rows, schema(idx_device=("device_id",)), hours=5)
    assert p.columns == ("device_id", "at") and p.extends == "idx_device"
    assert "extends idx_device (device_id)" in p.reason and "never automatically" in p.reason


def test_a_class_an_index_serves_once_rewritten_gets_no_new_index():
    q = "SELECT * FROM readings WHERE DATE(at) = '2026-12-01'"
    rows = [digest("D" * 32, "select * from readings where date(at) = ?", 300, 300 * 2000, 300, example=q,
                   full_scans=300)]
    (p,) = proposals_from_digests(rows, schema(idx_at=("at",)), hours=5)
    assert p.served_by == "idx_at" and p.rewrite and "no new index" in p.reason and p.workload is None
