"""Query fingerprints and IDs compatible with pt-query-digest 3.x (QueryRewriter::fingerprint). Pure.

Works on bytes, as the Perl original does: lower-casing touches ASCII only and the query ID is
the upper-case MD5 hex of the fingerprint's bytes. The steps and their order are Percona's.
"""

from __future__ import annotations

import hashlib
import re

from .tags import MARK  # what stands for a tag comment's text in a cache key: no digits, removed as the comment is

_MYSQLDUMP = re.compile(rb"\ASELECT /\*!40001 SQL_NO_CACHE \*/ \* FROM `")
_PT_CHECKSUM = re.compile(rb"/\*\w+\.\w+:[0-9]/[0-9]\*/")
_CALL = re.compile(rb"\A\s*(call\s+\S+)\(", re.I)
_MULTI_INSERT = re.compile(rb"\A((?:INSERT|REPLACE)(?: IGNORE)?\s+INTO.+?VALUES\s*\(.*?\))\s*,\s*\(", re.I | re.S)
_MLC = re.compile(rb"/\*[^!].*?\*/", re.S | re.M)  # multi-line comments, but not /*!version */
_OLC = re.compile(rb"(?:--|#)[^'\"\r\n]*(?=[\r\n]|\Z)")  # one-line comments
_USE = re.compile(rb"\Ause \S+\Z", re.I)
_ESCAPED_QUOTE = re.compile(rb"\\[\"']")
_DQ = re.compile(rb'".*?"', re.S)
_SQ = re.compile(rb"'.*?'", re.S)
_BOOL = re.compile(rb"\bfalse\b|\btrue\b", re.I)
_NUMBER = re.compile(rb"[0-9+-][0-9a-f.xb+-]*")
_LEFTOVER = re.compile(rb"[xb.+-]\?")
_LEADING_WS = re.compile(rb"\A\s+")
_WS = re.compile(rb"[ \n\t\r\f]+")
_NULL = re.compile(rb"\bnull\b")
_IN_LIST = re.compile(rb"\b(in|values?)(?:[\s,]*\([\s?,]*\))+")
_UNION = re.compile(rb"\b(select\s.*?)(?:(\sunion(?:\sall)?)\s\1)+")
_LIMIT = re.compile(rb"\blimit \?(?:, ?\?| offset \?)?")
_ORDER_BY = re.compile(rb"\bORDER BY ", re.I)
_ASC = re.compile(rb"\s+ASC", re.I)


def fingerprint(query: bytes) -> bytes:
    """The fingerprint of one query, as pt-query-digest and pt-fingerprint compute it."""
    if _MYSQLDUMP.match(query):
        return b"mysqldump"
    if _PT_CHECKSUM.search(query):
        return b"percona-toolkit"
    if query.startswith(b"administrator command: "):
        return query
    m = _CALL.match(query)
    if m:
        return m.group(1).lower()
    m = _MULTI_INSERT.match(query)
    if m:
        query = m.group(1)
    query = _MLC.sub(b"", query)
    query = _OLC.sub(b"", query)
    query, n = _USE.subn(b"use ?", query)
    if n:
        return query
    query = _ESCAPED_QUOTE.sub(b"", query)
    query = _DQ.sub(b"?", query)
    query = _SQ.sub(b"?", query)
    query = _BOOL.sub(b"?", query)
    query = _NUMBER.sub(b"?", query)
    query = _LEFTOVER.sub(b"?", query)
    query = _LEADING_WS.sub(b"", query, count=1)
    if query.endswith(b"\n"):  # Perl's chomp: one trailing newline
        query = query[:-1]
    query = _WS.sub(b" ", query).lower()
    query = _NULL.sub(b"?", query)
    query = _IN_LIST.sub(lambda m: m.group(1) + b"(?+)", query)
    query = _UNION.sub(lambda m: m.group(1) + b" /*repeat" + m.group(2) + b"*/", query)
    query = _LIMIT.sub(b"limit ?", query, count=1)
    m = _ORDER_BY.search(query)
    if m:  # remove ASC after ORDER BY, as Perl's \G loop does
        head, tail = query[:m.start()], query[m.start():]
        query = head + _ASC.sub(b"", tail)
    return query


def query_id(fp: bytes) -> str:
    """pt-query-digest's query ID (its "checksum"): the upper-case MD5 hex of the fingerprint."""
    return hashlib.md5(fp).hexdigest().upper()


_MASK_STRINGS = re.compile(rb"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"", re.S)
_MASK_NUMBERS = re.compile(rb"(?<![\w.`])[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?![\w`])", re.I)


def mask_literals(query: bytes) -> bytes:
    """The query as written, with string and number literals replaced by ``?``: no user values."""
    return _MASK_NUMBERS.sub(b"?", _MASK_STRINGS.sub(b"?", query))


# --- the cache every digest reads fingerprints through -----------------------------------------

#: Every digit becomes one marker byte (then runs of markers one marker).
_DIGITS_TO_MARK = bytes.maketrans(b"0123456789", b"\x00" * 10)
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_\x00")
_IN_LIST_INNER = b"\x00?, \t\n\r"
#: A query shorter than this is not searched for IN lists (it hits the cache as it is).
_LONG = 200


def _collapse_in_lists(key: bytes) -> bytes:
    """Each ``in (0, 0, 0)`` list of numbers (digits already markers) as ``in (0)``: the fingerprint
    makes both ``in(?+)``, by its rule ``\\b(in|values?)(?:[\\s,]*\\([\\s?,]*\\))+``, which this
    follows: "in" after a non-word character, blanks or commas, "(", only numbers, blanks,
    commas and "?" up to ")"."""
    low = key.lower()
    out, pos = [], 0
    at = low.find(b"in")
    while at >= 0:
        if at == 0 or low[at - 1] not in _WORD:
            i = at + 2
            while i < len(low) and low[i] in b" \t\n\r,":
                i += 1
            if i < len(low) and low[i] == 40:  # "("
                close = low.find(b")", i)
                if close > i + 2 and not low[i + 1:close].translate(None, _IN_LIST_INNER):
                    out.append(key[pos:i + 1])
                    out.append(b"\x00")
                    pos = close
                    at = low.find(b"in", close)
                    continue
        at = low.find(b"in", at + 2)
    if not out:
        return key
    out.append(key[pos:])
    return b"".join(out)


def cache_key(query: bytes) -> bytes:
    """The key FingerprintCache files a query under: every digit a marker byte, IN lists of numbers
    collapsed (queries over 200 bytes), runs of markers one marker. (_scan.c computes the same.)"""
    key = query.translate(_DIGITS_TO_MARK)
    if len(key) > _LONG:  # first: what is left to squeeze is then short
        key = _collapse_in_lists(key)
    while b"\x00\x00" in key:
        key = key.replace(b"\x00\x00", b"\x00")
    return key


class FingerprintCache:
    """Fingerprints of many queries, each computed once per shape of query.

    Queries are keyed by their text with every run of digits as one marker byte (C-speed
    translate and replace) and, when long, their IN lists of numbers collapsed, so ``... IN (1,
    2, 3)`` and ``... IN (40, 7)`` share a key; a multi-row INSERT is keyed by its first row, as
    the fingerprint keeps only that. Every step of the fingerprint treats a digit like any other
    digit and a run of them like one (``[0-9+-][0-9a-f.xb+-]*`` -> ``?``), so queries with one key
    have one fingerprint (tests/unit/test_slowlog.py checks it on many made-up pairs). The
    exceptions keep digits in the result (CALL names, administrator commands) or test single
    digits (pt-table-checksum's comment): those are keyed by their exact text.
    """

    _EXACT = object()
    #: Bytes of keys and fingerprints the cache holds at most: a log of queries whose literals
    #: all differ keeps adding keys, and the cache must not grow with the log.
    MAX_BYTES = 24 << 20

    def __init__(self, size: int = 200_000, max_bytes: int = MAX_BYTES):
        self.size = size
        self.max_bytes = max_bytes
        self.held = 0
        self.cache: dict = {}

    def __call__(self, query: bytes, keyed: bytes | None = None) -> bytes:
        """The fingerprint of ``query``; ``keyed``: the same query with its tag comments' text
        replaced (queries.tags.tags_of), so that queries differing in their tags share an entry."""
        if b"\x00" in query:  # a NUL byte would read as a digit's marker in the key: never keyed (rare: binary bytes)
            return fingerprint(query)
        first = query[:7].lower()
        if first.startswith((b"insert", b"replace")):
            m = _MULTI_INSERT.match(query)
            if m:
                query = m.group(1)
                if keyed is not None:
                    k = _MULTI_INSERT.match(keyed)
                    keyed = k.group(1) if k else None
        if keyed is not None and _keeps_digits(query, keyed):
            keyed = None  # keyed by its own text, as any query that keeps digits
        key = cache_key(query if keyed is None else keyed)
        cache = self.cache
        fp = cache.get(key)
        if fp is self._EXACT:
            fp = cache.get(query)
        if fp is None:
            fp = fingerprint(query)
            if len(cache) < self.size and self.held < self.max_bytes:
                if _keeps_digits(query, keyed):
                    cache[key] = self._EXACT
                    cache[query] = fp
                    self.held += len(key) + len(query) + len(fp)
                else:
                    cache[key] = fp
                    self.held += len(key) + len(fp)
        return fp


def _keeps_digits(query: bytes, keyed: bytes | None = None) -> bool:
    """Whether the query must be keyed by its exact text: CALL names and administrator commands
    keep digits, and a comment may be pt-table-checksum's (``/*db.tbl:1/5*/``, single digits).
    Tag comments, replaced in ``keyed``, are neither."""
    if query[:32].lstrip().lower().startswith((b"call", b"administrator")):
        return True
    return b"/*" in (query if keyed is None else keyed.replace(MARK, b""))
