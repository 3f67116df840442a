"""``schedules/cache.yaml``: the declared warmers, validated when the file is loaded.

Each warmer's SQL must be exactly one plain read, checked by ``sqlguard`` with a real SQL
parser (sqlglot, MySQL dialect): no other statement kind, no second statement, no SELECT ... INTO,
no locking read, no executable comment, only pure built-in functions, no system schema. Problems are reported as ``FILE:LINE: what is wrong``; a file with problems
is never run.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass
from pathlib import Path

from ..lib.specfile import LineMap, checks, load_yaml, parse_duration

FILE = "cache.yaml"
WARMER_KEYS = ("key", "sql", "params_sql", "shape", "ttl", "jitter", "window", "enabled", "description")
SHAPES = ("list", "first")
#: Parameters every warmer may use: the window start, now, and today's date (UTC).
BUILTIN_PARAMS = ("since", "now", "today")
#: Key namespaces that belong to the broker, Celery, RedBeat and pelbiot-jobs itself: no warmer may
#: write there and ``cache invalidate`` never deletes there, even with the cache on the broker's Redis.
RESERVED_KEY_PREFIXES = ("pelbiot:", "_kombu", "celery", "unacked", "redbeat", "_binding")
#: Longest key a warmer may declare (characters, before its fields are filled).
MAX_KEY_LENGTH = 512
#: Defaults: the API caches for 300 s; keys warmed together expire up to 30 s apart.
DEFAULT_TTL = 300
DEFAULT_JITTER = 30


@dataclass(frozen=True)
class Warmer:
    name: str
    key: str
    sql: str
    shape: str = "list"
    params_sql: str | None = None
    ttl: int = DEFAULT_TTL
    jitter: int = DEFAULT_JITTER
    window: float | None = None
    enabled: bool = True
    description: str = ""

    @property
    def namespace(self) -> str:
        """The key's prefix up to and including its first ':' (``route:``): what invalidation may touch."""
        return namespace_of(self.key)

    @property
    def key_fields(self) -> list[str]:
        return [f for _, f, _, _ in string.Formatter().parse(self.key) if f]


def namespace_of(key: str) -> str:
    return key.split(":", 1)[0] + ":" if ":" in key else ""


def key_problem(key: str) -> str | None:
    """Pure: why a warmer's key pattern is not allowed, or None."""
    if len(key) > MAX_KEY_LENGTH:
        return f"'key' is longer than {MAX_KEY_LENGTH} characters"
    space = namespace_of(key)
    if not space or len(space) < 2 or "{" in space:
        return "'key' needs a literal namespace prefix ending in ':' (the API's is route:)"
    if any(c in space for c in "*?[]\\"):
        return f"'key' namespace {space!r} has glob characters"
    if space.lower().startswith(RESERVED_KEY_PREFIXES) or any(p.startswith(space.lower()) for p in RESERVED_KEY_PREFIXES):
        return f"'key' namespace {space!r} is reserved for the broker, Celery, RedBeat or pelbiot-jobs"
    for _, field, spec, conversion in string.Formatter().parse(key):
        if field is not None and (spec or conversion or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field)):
            return f"key field {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} " \
                   "must be a plain column name (no format spec, conversion, index or attribute)"
    return None


def check_select(sql: str) -> tuple[str | None, list[str], list[str]]:
    """Pure: (problem, placeholders, output column names) of a SQL text that must be one plain read.

    The rules are ``sqlguard``'s (one SELECT, no INTO, no locking, no executable comment, pure
    built-in functions only, no system schema); an expression in the select list needs an alias,
    because the JSON keys of the cached response come from the column names.
    """
    import sqlglot
    from sqlglot import exp

    from ..lib.sqlguard import UnsafeSQL, check_read

    try:
        checked = check_read(sql, placeholders=True)
    except UnsafeSQL as exc:
        return f"SQL is not a plain read: {exc}", [], []
    tree = sqlglot.parse_one(checked.sql, read="mysql")
    first = tree if isinstance(tree, exp.Select) else next(tree.find_all(exp.Select))
    for projection in first.expressions:
        if not isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
            return (f"give {projection.sql(dialect='mysql')[:60]} an alias (AS name): the cached JSON's "
                    "keys come from column names"), [], []
    return None, list(checked.placeholders), list(checked.columns)


def parse_cache_file(path: Path, problems: list[str], prove_sql: bool = True) -> list[Warmer]:
    """Read cache.yaml; append ``FILE:LINE: problem`` lines; return the valid warmers.

    ``prove_sql=False`` checks everything but the SQL itself (and what depends on it: the
    placeholders and the key's fields); its warmers must not be run (beat and ``up`` only check).
    """
    data = load_yaml(path, problems)
    if data is None:
        return []
    if not isinstance(data, LineMap):
        problems.append(f"{path}:1: expected a mapping with 'warmers:' (and optional 'defaults:')")
        return []
    for key in data:
        if key not in ("warmers", "defaults"):
            problems.append(f"{path}:{data.lines[key]}: unknown key {key!r} (allowed: defaults, warmers)")
    defaults = data.get("defaults") or LineMap()
    if not isinstance(defaults, dict):
        problems.append(f"{path}:{data.lines['defaults']}: 'defaults' must be a mapping")
        defaults = LineMap()
    warmers_map = data.get("warmers")
    if not isinstance(warmers_map, LineMap):
        problems.append(f"{path}:{data.lines.get('warmers', data.line)}: 'warmers' must be a mapping of name to warmer")
        return []
    out = []
    for name, spec in warmers_map.items():
        line = warmers_map.lines[name]
        before = len(problems)
        if not isinstance(spec, LineMap):
            problems.append(f"{path}:{line}: warmer {name!r} must be a mapping")
            continue

        def at(key: str) -> str:
            return f"{path}:{spec.lines.get(key, line)}"

        merged = {**{k: v for k, v in defaults.items()}, **spec}
        for key in spec:
            if key not in WARMER_KEYS:
                hint = difflib.get_close_matches(str(key), WARMER_KEYS, n=1)
                problems.append(f"{at(key)}: unknown key {key!r} in warmer {name!r}"
                                + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        for key in defaults:
            if key not in WARMER_KEYS:
                problems.append(f"{path}:{defaults.lines.get(key, 1)}: unknown key {key!r} in defaults")
        key = merged.get("key")
        sql = merged.get("sql")
        if not isinstance(key, str) or not key or not re.fullmatch(r"[\x21-\x7e]+", key):
            problems.append(f"{at('key')}: warmer {name!r} needs a 'key' of printable characters without spaces")
        else:
            try:
                problem = key_problem(key)
            except ValueError as exc:  # unbalanced braces
                problem = f"'key' is not a valid pattern: {exc}"
            if problem:
                problems.append(f"{at('key')}: warmer {name!r}: {problem}")
                key = None
        if not isinstance(sql, str) or not sql.strip():
            problems.append(f"{at('sql')}: warmer {name!r} needs 'sql', a single SELECT")
            continue
        problem, placeholders, _ = check_select(sql) if prove_sql else (None, [], [])
        if problem:
            problems.append(f"{at('sql')}: warmer {name!r}: {problem}")
            continue
        params_sql = merged.get("params_sql")
        param_columns: list[str] = []
        if params_sql is not None and prove_sql:
            problem, _, param_columns = check_select(str(params_sql))
            if problem:
                problems.append(f"{at('params_sql')}: warmer {name!r}: params_sql: {problem}")
                continue
            if "*" in param_columns:
                problems.append(f"{at('params_sql')}: warmer {name!r}: params_sql must name its columns, not *")
                continue
        shape = merged.get("shape", "list")
        if shape not in SHAPES:
            problems.append(f"{at('shape')}: shape must be one of {', '.join(SHAPES)}, got {shape!r}")
        ttl, jitter, window = merged.get("ttl", DEFAULT_TTL), merged.get("jitter", DEFAULT_JITTER), None
        try:
            ttl = int(parse_duration(ttl))
        except ValueError as exc:
            problems.append(f"{at('ttl')}: ttl: {exc}")
        try:
            jitter = int(parse_duration(jitter)) if jitter not in (0, "0", "0s") else 0
            if isinstance(ttl, int) and jitter >= ttl:
                problems.append(f"{at('jitter')}: jitter ({jitter}s) must be below ttl ({ttl}s)")
        except ValueError as exc:
            problems.append(f"{at('jitter')}: jitter: {exc}")
        if "window" in merged:
            try:
                window = parse_duration(merged["window"])
            except ValueError as exc:
                problems.append(f"{at('window')}: window: {exc}")
        if prove_sql:  # the placeholders and the key's fields come from the parsed SQL
            available = set(param_columns) | set(BUILTIN_PARAMS)
            missing = [p for p in placeholders if p not in available]
            if missing:
                problems.append(f"{at('sql')}: warmer {name!r} uses :{', :'.join(missing)}, which neither params_sql "
                                f"nor the built-ins ({', '.join(BUILTIN_PARAMS)}) provide")
            if "since" in placeholders and window is None:
                problems.append(f"{at('sql')}: warmer {name!r} uses :since but sets no 'window' (e.g. window: 24h)")
            if isinstance(key, str):
                fields = [f for _, f, _, _ in string.Formatter().parse(key) if f]
                unknown = [f for f in fields if f not in param_columns]
                if unknown:
                    problems.append(f"{at('key')}: key field {{{unknown[0]}}} is not a column of params_sql")
                if param_columns and not fields:
                    problems.append(f"{at('key')}: warmer {name!r} has params_sql but its key has no {{field}}: "
                                    "every parameter set would write the same key")
        enabled = merged.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(f"{at('enabled')}: enabled must be true or false")
        if len(problems) == before:
            out.append(Warmer(name=name, key=key, sql=sql.strip(), shape=shape,
                              params_sql=str(params_sql).strip() if params_sql else None, ttl=ttl, jitter=jitter,
                              window=window, enabled=enabled, description=str(merged.get("description", ""))))
    return out


@checks("cache.yaml")
def check(path: Path, problems: list[str], deep: bool = True) -> None:
    parse_cache_file(path, problems, prove_sql=deep)
