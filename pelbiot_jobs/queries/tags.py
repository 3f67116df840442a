"""Tags an application writes into its SQL comments, read as data. Pure.

Two forms are read, in ``/* ... */`` comments anywhere in the query:

- sqlcommenter (Google's, what OpenTelemetry's MySQL instrumentations write):
  ``/*controller='device',route='%2Fapi%2Fdevices'*/``: comma-separated ``key='value'`` pairs,
  values URL-encoded, a ``'`` inside a value escaped as ``\\'``;
- PMM Query Analytics' ``key=value`` form: ``/* route=/api/devices, team=billing */``, values
  taken as written.

A comment is a tag comment only when every comma-separated item of it is ``key=value`` with a
key of letters, digits, ``_``, ``.`` or ``-``: prose (``/* fetch the devices */``), optimizer
hints (``/*+ ... */``) and version comments (``/*! ... */``) are not tags. Nothing here is ever
executed or evaluated: a value is bytes, decoded once from URL-encoding when quoted.

Everything is bounded, whatever the query holds: a comment longer than MAX_COMMENT is not read,
at most MAX_TAGS tags are kept per query (the first), a value longer than MAX_VALUE after decoding
drops that tag, and the stored form (``canonical``) never exceeds MAX_CANONICAL characters.

The stored form is ``&key=value&key=value&``: keys sorted, values percent-encoded (no ``&``,
``=``, quote or control byte survives raw), so ``&route=%2Fapi%2Fdevices&`` finds one tag with
a plain LIKE, and storage, logs and pages never see a raw byte of a value.
"""

from __future__ import annotations

import re
from urllib.parse import quote_from_bytes, unquote_to_bytes

#: A comment longer than this is not read for tags (a 1 MB comment costs one length test).
MAX_COMMENT = 2048
#: Tags kept per query, in the order they appear; the rest are ignored.
MAX_TAGS = 16
#: A key's length, and a value's after decoding: a longer tag is dropped, not cut (a cut value
#: would be a wrong one).
MAX_KEY = 64
MAX_VALUE = 256
#: The stored form's length (ops_query_slices.tags): whole tags only, the first that fit.
MAX_CANONICAL = 1000

#: A comment as pt-query-digest's fingerprint removes it: from ``/*`` to the first ``*/``, not a
#: ``/*!`` version comment. Its content holds no ``*`` (the first ``*/`` ends it).
COMMENT = re.compile(rb"/\*([^!][^*]*)\*/")
_KEY = re.compile(rb"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
#: A comment whose text is replaced in the fingerprint cache's key (see ``keyed``).
MARK = b"/* */"

_parsed: dict[bytes, tuple | None] = {}


def parse_comment(content: bytes) -> tuple[tuple[bytes, bytes], ...] | None:
    """The tags of one comment's content, or None when it is not a tag comment."""
    if len(content) > MAX_COMMENT:
        return None
    cached = _parsed.get(content, _parsed)
    if cached is not _parsed:
        return cached
    result = _parse(content)
    if len(_parsed) > 10_000:
        _parsed.clear()
    _parsed[content] = result
    return result


def _parse(content: bytes) -> tuple | None:
    text = content.strip()
    if not text or text[:1] == b"+":  # an optimizer hint
        return None
    tags = []
    for item in _items(text):
        key, eq, value = item.partition(b"=")
        key, value = key.strip(), value.strip()
        if not eq or not _KEY.match(key):
            return None
        if len(value) >= 2 and value[:1] == b"'" and value[-1:] == b"'":
            value = unquote_to_bytes(value[1:-1].replace(b"\\'", b"'"))  # sqlcommenter
        if len(key) <= MAX_KEY and len(value) <= MAX_VALUE:
            tags.append((key, value))
    return tuple(tags)


def _items(text: bytes) -> list[bytes]:
    """The comma-separated items of a comment, a comma inside a quoted value kept."""
    if b"'" not in text:
        return text.split(b",")
    out, start, quoted, i = [], 0, False, 0
    while i < len(text):
        ch = text[i]
        if ch == 0x5C and quoted:  # \' inside a quoted value
            i += 2
            continue
        if ch == 0x27:
            quoted = not quoted
        elif ch == 0x2C and not quoted:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


def tags_of(query: bytes) -> tuple[bytes, bytes | None]:
    """The query's tags in their stored form (``b""`` for none), and the query with each tag
    comment's text replaced by MARK (None when nothing was replaced): what the fingerprint
    cache keys on, so queries that differ only in their tags share one cache entry."""
    if b"/*" not in query:
        return b"", None
    found: dict[bytes, bytes] = {}
    spans, exact = [], False
    for m in COMMENT.finditer(query):
        content = m.group(1)
        tags = parse_comment(content)
        if not tags:
            continue
        if b"(" in content or b")" in content:
            exact = True  # a parenthesis could change where pt cuts a multi-row INSERT: keyed as written
        else:
            spans.append(m.span())
        for key, value in tags:
            if len(found) >= MAX_TAGS:
                break
            found.setdefault(key, value)  # the first of a repeated key
    if not found:
        return b"", None
    if exact or not spans:
        return canonical(found), None
    pieces, pos = [], 0
    for start, end in spans:
        pieces += [query[pos:start], MARK]
        pos = end
    pieces.append(query[pos:])
    return canonical(found), b"".join(pieces)


def canonical(tags: dict[bytes, bytes]) -> bytes:
    """``&key=value&...&``, keys sorted, values percent-encoded, at most MAX_CANONICAL long."""
    if not tags:
        return b""
    out = b"&"
    for key in sorted(tags):
        item = key + b"=" + quote_from_bytes(tags[key], safe="").encode() + b"&"
        if len(out) + len(item) > MAX_CANONICAL:
            break
        out += item
    return out if out != b"&" else b""


def decode(stored: str | None) -> dict[str, str]:
    """The stored form back as {key: value} (values decoded; control bytes stay in the value:
    show it with lib.textsafe)."""
    out = {}
    for item in (stored or "").strip("&").split("&"):
        key, eq, value = item.partition("=")
        if eq:
            out[key] = unquote_to_bytes(value).decode("utf-8", "replace")
    return out


def filter_pattern(name: str, value: str) -> str:
    """The LIKE pattern (escape ``\\``) that finds ``name=value`` in the stored form."""
    encoded = quote_from_bytes(value.encode(), safe="")
    needle = f"&{name}={encoded}&"
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def parse_filter(text: str) -> tuple[str, str]:
    """``--tag NAME=VALUE`` as (name, value), or ValueError in one line naming the problem."""
    name, eq, value = text.partition("=")
    if not eq or not _KEY.match(name.encode()) or len(name) > MAX_KEY:
        raise ValueError(f"tag {text[:80]!r}: use NAME=VALUE, NAME of letters, digits, _ . - (e.g. route=/api/devices)")
    if len(value.encode()) > MAX_VALUE:
        raise ValueError(f"tag {name}: a value is at most {MAX_VALUE} bytes")
    return name, value


def valid_name(name: str) -> bool:
    return len(name) <= MAX_KEY and bool(_KEY.match(name.encode()))
