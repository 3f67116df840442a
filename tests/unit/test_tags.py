"""Tags of SQL comments (sqlcommenter and PMM's key=value), read as bounded data; the fingerprint ignores them."""

import random

from pelbiot_jobs.queries.fingerprint import FingerprintCache, fingerprint
from pelbiot_jobs.queries.tags import MAX_CANONICAL, MAX_TAGS, decode, filter_pattern, parse_filter, tags_of

import pytest


def tags(query: bytes) -> dict:
    stored, _ = tags_of(query)
    return decode(stored.decode())


def test_sqlcommenter_and_pmm_forms_anywhere_in_the_query():
    q = b"SELECT * FROM devices WHERE id = 5 /*controller='device',route='%2Fapi%2Fdevices%2F%3Aid'*/"
    assert tags(q) == {"controller": "device", "route": "/api/devices/:id"}
    assert tags(b"/* route=/api/x, team=billing */ SELECT 1") == {"route": "/api/x", "team": "billing"}
    # a quoted comma, an escaped quote (sqlcommenter's meta-escaping), two comments, the first of a repeated key
    q = b"SELECT 1 /*a='x%2Cy',b='it\\'s'*/ FROM t /*c='3',a='later'*/"
    assert tags(q) == {"a": "x,y", "b": "it's", "c": "3"}


@pytest.mark.parametrize("query", [b"SELECT 1 /* fetch the devices */", b"SELECT /*+ BKA(t) */ 1",
                                   b"SELECT /*!40001 SQL_NO_CACHE */ 1", b"SELECT 1 /* a=1, not a tag */",
                                   b"SELECT 1 /* 'a'=1 */", b"SELECT 1 -- route=/x", b"SELECT 1 # route=/x",
                                   b"SELECT 1 /*route=x"])
def test_prose_hints_version_comments_and_line_comments_are_not_tags(query):
    assert tags_of(query) == (b"", None)


def test_a_1_mb_tag_and_10000_tags_are_bounded():
    huge = b"SELECT 1 FROM t /*route='" + b"x" * (1 << 20) + b"'*/"
    assert tags_of(huge) == (b"", None)  # a comment this long is not read
    assert fingerprint(huge) == b"select ? from t "
    one_comment = b"SELECT 1 /*" + b",".join(b"k%d='v'" % i for i in range(10_000)) + b"*/"
    assert tags_of(one_comment) == (b"", None)
    many = b"SELECT 1 " + b" ".join(b"/*k%05d='%s'*/" % (i, b"v" * 200) for i in range(10_000))
    stored, keyed = tags_of(many)
    found = decode(stored.decode())
    assert 0 < len(found) <= MAX_TAGS and len(stored) <= MAX_CANONICAL
    assert list(found) == sorted(found) and all(k.startswith("k000") for k in found)  # the first ones, sorted
    assert fingerprint(many).rstrip() == b"select ?"
    # a value longer than a tag may hold drops that tag, not the others
    assert tags(b"SELECT 1 /*a='" + b"y" * 300 + b"',b='2'*/") == {"b": "2"}


def test_quotes_and_control_characters_never_reach_the_stored_form_raw():
    q = b"SELECT 1 /*route='%27%3B%20DROP%20TABLE%20x%3B%20--%0A%1B%5B31m%00',who=a\"b*/"
    stored, _ = tags_of(q)
    assert all(32 < c < 127 for c in stored) and b"'" not in stored and b'"' not in stored and b";" not in stored
    assert decode(stored.decode()) == {"route": "'; DROP TABLE x; --\n\x1b[31m\x00", "who": 'a"b'}
    # the filter finds it by value, with LIKE's wildcards in the value escaped
    assert filter_pattern("route", "50%_off") == "%&route=50\\%25\\_off&%"
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_filter("route")
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_filter("ro'ute=x")


def test_the_fingerprint_ignores_the_tags_as_pt_ignores_comments():
    """Whatever the tags say, one statement is one class; as in pt, the comment's place stays (a
    trailing comment leaves its blank: pt-fingerprint gives ``... id = ? `` for it)."""
    for template in (b"SELECT * FROM devices WHERE id = %d /*route='%s'*/", b"/* route=%s */ SELECT * FROM devices "
                     b"WHERE id = %d", b"SELECT * FROM devices /*controller='%s'*/ WHERE id = %d"):
        prints = set()
        for i, route in enumerate((b"%2Fapi%2Fdevices", b"%2Fapi%2Fusers", b"x" * 200)):
            values = (i, route) if template.index(b"%d") < template.index(b"%s") else (route, i)
            prints.add(fingerprint(template % values))
        assert len(prints) == 1, prints
    assert fingerprint(b"SELECT * FROM devices WHERE id = 5 /*route='x'*/") == b"select * from devices where id = ? "


def test_tagged_queries_share_a_cache_entry_and_keys_alike_have_one_fingerprint():
    """The cache keys a tagged query with its tags' text replaced; the claim (one key, one
    fingerprint) holds on made-up pairs that differ only in their tags, hostile ones included
    (parentheses that could move pt's multi-row INSERT cut, pt-table-checksum's comment, VALUES)."""
    r = random.Random(5)
    bases = [b"SELECT * FROM devices WHERE id = 1", b"INSERT INTO t (a) VALUES (1),(2)", b"CALL p(1)",
             b"UPDATE devices SET name = 'x' WHERE id IN (1, 2, 3)", b"INSERT INTO t VALUES (1)",
             b"SELECT a FROM t WHERE b = 'in (1, 2)'"]
    values = [b"'%2Fapi%2Fdevices'", b"'%2Fapi%2Fusers'", b"/api/x", b"'a),(b'", b"'x.y:1/5'", b"VALUES",
              b"'('", b"1", b"22", b"'it\\'s'"]

    def tagged(base: bytes) -> bytes:
        comment = b"/*route=" + r.choice(values) + b",n=" + str(r.randint(0, 999)).encode() + b"*/"
        at = r.choice(["end", "start", "middle"])
        if at == "end":
            return base + b" " + comment
        if at == "start":
            return comment + b" " + base
        head, _, tail = base.partition(b" ")
        return head + b" " + comment + b" " + tail

    def key(q: bytes):
        cache = FingerprintCache()
        _, keyed = tags_of(q)
        assert cache(q, keyed) == fingerprint(q), q
        k = next(iter(cache.cache))
        return q if cache.cache[k] is FingerprintCache._EXACT else k

    alike = 0
    for _ in range(3000):
        base = r.choice(bases)
        q1, q2 = tagged(base), tagged(base)
        if key(q1) == key(q2):
            alike += 1
            assert fingerprint(q1) == fingerprint(q2), (q1, q2)
    assert alike > 300
    # the common case: one statement from two routes is one cache entry
    cache = FingerprintCache()
    for route in (b"%2Fa", b"%2Fb", b"%2Fc"):
        q = b"SELECT * FROM devices WHERE id = 3 /*route='" + route + b"'*/"
        cache(q, tags_of(q)[1])
    assert len(cache.cache) == 1
