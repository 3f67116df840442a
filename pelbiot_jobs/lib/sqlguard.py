"""Is a SQL text one plain read? The check every statement pelbiot-jobs did not write must pass.

Slow logs, ``performance_schema`` digests and ``schedules/cache.yaml`` are written by somebody
else; before pelbiot-jobs runs or EXPLAINs such a text it must prove it is a plain SELECT:

- one statement, parsed by sqlglot (MySQL dialect), a SELECT or a UNION of SELECTs;
- no executable comment (``/*! … */``, ``/*M! … */``): MySQL runs what sqlglot reads as a comment;
- no ``INTO`` (OUTFILE, DUMPFILE, variables), no locking clause (FOR UPDATE / SHARE);
- no user variables, no system variables, no assignments;
- every function on an allow-list of pure built-ins: a stored or user-defined function, SLEEP,
  BENCHMARK, GET_LOCK, LOAD_FILE and whatever else is not listed are refused;
- no table of a system schema (mysql, performance_schema, information_schema, sys).

What runs is the statement as sqlglot writes it back from the checked tree, without comments, so
a difference between sqlglot's reading and the server's cannot smuggle anything past the check.
Pure: no database, no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

#: Longest SQL text checked at all (bytes); longer is refused before parsing.
MAX_SQL_BYTES = 64 * 1024
#: Schemas no statement from outside may read.
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "information_schema", "sys"})
#: Comment openers that MySQL/MariaDB execute.
EXECUTABLE_COMMENTS = ("/*!", "/*m!", "/*M!")

#: sqlglot expression classes of pure built-ins (class names, so a sqlglot upgrade that renames
#: one refuses rather than allows).
PURE_CLASSES = frozenset("""
Abs Avg Case Cast Ceil Coalesce Concat ConcatWs Count CountIf CurrentDate CurrentDatetime CurrentTime
CurrentTimestamp Date DateAdd DateDiff DateStrToDate DateSub DateToDi DateTrunc Day DayOfMonth DayOfWeek
DayOfYear DenseRank Exp Extract FirstValue Floor Greatest GroupConcat Hex Hour If Initcap JSONArray
JSONArrayAgg JSONArrayContains JSONExtract JSONExtractScalar JSONObject JSONObjectAgg JSONValue Lag LastDay
LastValue Lead Least Left Length Ln Log Lower MD5 MD5Digest Max Min Minute Mod Month NthValue Nullif Pad
PercentRank Pow Quarter Rank Replace Reverse Right Round RowNumber SHA SHA2 Second Sign Sqrt Stddev StddevPop
StddevSamp StrPosition StrToDate StrToTime StrToUnix Substring Sum TimeStrToTime TimeStrToUnix TimeToStr
TimeToUnix TimestampAdd TimestampDiff TimestampTrunc Trim TryCast TsOrDsAdd TsOrDsDiff TsOrDsToDate Unhex
UnixToStr UnixToTime UnixToTimeStr Upper Variance VariancePop Week WeekOfYear Year Cbrt Ntile CumeDist
BitwiseCount ArgMax ArgMin AnyValue Levenshtein Chr Ascii Unicode ToChar Time TimeDiff
""".split())

#: Function names sqlglot leaves anonymous that are pure MySQL/MariaDB built-ins.
PURE_NAMES = frozenset("""
now curdate curtime current_date current_time current_timestamp localtime localtimestamp sysdate
utc_date utc_time utc_timestamp unix_timestamp from_unixtime date_format str_to_date time_format
timestampadd timestampdiff datediff timediff addtime subtime adddate subdate convert_tz makedate maketime
sec_to_time time_to_sec to_days to_seconds from_days period_add period_diff week weekday weekofyear
yearweek dayofweek dayofmonth dayofyear dayname monthname hour minute second microsecond quarter month
year day last_day date time timestamp extract get_format
ifnull nullif isnull greatest least field find_in_set elt interval coalesce if
char_length character_length length octet_length bit_length substring_index lpad rpad ltrim rtrim trim
replace reverse left right instr locate position format hex unhex md5 sha sha1 sha2 crc32 conv bin oct
lower upper lcase ucase substr substring mid concat concat_ws repeat space strcmp ascii ord char
quote soundex insert_str regexp_like regexp_instr regexp_substr regexp_replace
floor ceil ceiling truncate mod pow power sqrt exp ln log log10 log2 sign pi abs round degrees radians
sin cos tan asin acos atan atan2 cot rand crc32
json_extract json_unquote json_object json_array json_contains json_contains_path json_length
json_keys json_valid json_type json_value json_depth json_quote json_search json_overlaps json_query
json_arrayagg json_objectagg
count sum avg min max std stddev stddev_pop stddev_samp variance var_pop var_samp bit_and bit_or
bit_xor bit_count group_concat any_value
row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
inet_aton inet_ntoa inet6_aton inet6_ntoa is_ipv4 is_ipv6 uuid_to_bin bin_to_uuid
cast convert binary charset collation coercibility
""".split())


class UnsafeSQL(ValueError):
    """A statement that is not proven to be one plain read; the message says why, in one line."""


@dataclass(frozen=True)
class CheckedRead:
    """A statement proven to be one plain read: ``sql`` is what may run."""

    sql: str
    placeholders: tuple[str, ...]
    columns: tuple[str, ...]  # output names of the first SELECT ("*" for a star)

    @property
    def called(self) -> frozenset[str]:
        """Every name in ``sql`` followed by ``(`` (lower case): a superset of the functions the
        server will call, for the check that no stored function or UDF has one of these names
        (``readonly.refuse_shadowed``). Linear: a name starts only at a word boundary."""
        return frozenset(m.lower() for m in _CALLED.findall(self.sql))


_CALLED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_$]{0,63})\s*\(")


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return node.sql_name()


def _pure(node: exp.Func) -> bool:
    if isinstance(node, (exp.Binary, exp.Unary, exp.Connector)) and not isinstance(node, exp.Anonymous):
        return True  # an operator (AND, +, LIKE, ...), which sqlglot also models as a function
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower() in PURE_NAMES
    return type(node).__name__ in PURE_CLASSES or node.sql_name().lower() in PURE_NAMES


def check_read(sql: str, *, placeholders: bool = False) -> CheckedRead:
    """Prove ``sql`` is one plain SELECT and return what may run; raise ``UnsafeSQL`` otherwise.

    ``placeholders``: allow ``:name`` parameters (cache warmers bind them); a text from a slow log
    has none.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise UnsafeSQL("no SQL text")
    if len(sql.encode("utf-8", "replace")) > MAX_SQL_BYTES:
        raise UnsafeSQL(f"SQL longer than {MAX_SQL_BYTES // 1024} KiB")
    lowered = sql.lower()
    if any(marker in lowered for marker in ("/*!", "/*m!")):
        raise UnsafeSQL("executable comment (/*! ... */ or /*M! ... */): the server would run its content")
    if "\x00" in sql:
        raise UnsafeSQL("NUL byte in SQL")
    try:
        statements = [s for s in sqlglot.parse(sql, read="mysql") if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise UnsafeSQL(f"SQL does not parse: {first}") from None
    except RecursionError:
        raise UnsafeSQL("SQL nested too deeply") from None
    if len(statements) != 1:
        raise UnsafeSQL(f"must be a single SELECT, found {len(statements)} statements")
    tree = statements[0]
    while isinstance(tree, exp.Subquery) and not tree.alias:  # (SELECT ...)
        tree = tree.this
    if not isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
        raise UnsafeSQL(f"must be a SELECT, found {tree.key.upper()}")
    for node in tree.walk():
        _refuse_node(node, placeholders)
    names = tuple(sorted({p.name for p in tree.find_all(exp.Placeholder) if p.name}))
    first = tree if isinstance(tree, exp.Select) else next(tree.find_all(exp.Select))
    columns = tuple(e.alias_or_name for e in first.expressions)
    return CheckedRead(sql=tree.sql(dialect="mysql", comments=False), placeholders=names, columns=columns)


def _refuse_node(node: exp.Expression, placeholders: bool) -> None:
    if isinstance(node, exp.Select):
        if node.args.get("into"):
            raise UnsafeSQL("SELECT ... INTO writes (a file or variables)")
        if node.args.get("locks"):
            raise UnsafeSQL("locking read (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE)")
    elif isinstance(node, (exp.Into, exp.Lock)):
        raise UnsafeSQL(f"{node.key.upper()} clause is not a plain read")
    elif isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
                           exp.Command, exp.Set, exp.Use, exp.Transaction, exp.Commit, exp.Rollback)):
        raise UnsafeSQL(f"must only read, found {node.key.upper()}")
    elif isinstance(node, exp.PropertyEQ):
        raise UnsafeSQL("assignment (:=) in SQL")
    elif isinstance(node, exp.SessionParameter):
        raise UnsafeSQL(f"system variable @@{node.name} in SQL")
    elif isinstance(node, exp.Parameter):
        raise UnsafeSQL("user variable (@name) in SQL")
    elif isinstance(node, exp.Placeholder):
        if not placeholders:
            raise UnsafeSQL("parameter placeholder in SQL")
        if not node.name:
            raise UnsafeSQL("unnamed parameter placeholder (use :name)")
    elif isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        raise UnsafeSQL(f"schema-qualified function {node.sql(dialect='mysql')[:80]}: a stored function")
    elif isinstance(node, exp.Func):
        if not _pure(node):
            raise UnsafeSQL(f"function {_function_name(node).upper()} is not on the allow-list of pure built-ins")
    elif isinstance(node, exp.Table):
        if node.args.get("catalog"):
            raise UnsafeSQL(f"table name with three parts: {node.sql(dialect='mysql')[:80]}")
        schema = node.text("db").lower()
        if schema in SYSTEM_SCHEMAS:
            raise UnsafeSQL(f"reads the system schema {schema}")
