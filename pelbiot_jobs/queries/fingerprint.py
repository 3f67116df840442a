"""Query fingerprints and IDs compatible with pt-query-digest 3.x (QueryRewriter::fingerprint). Pure.

Works on bytes, as the Perl original does: lower-casing touches ASCII only and the query ID is
the upper-case MD5 hex of the fingerprint's bytes. The steps and their order are Percona's.
"""

from __future__ import annotations

import hashlib
import re

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
