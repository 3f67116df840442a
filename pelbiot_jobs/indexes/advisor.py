"""Index advice from slow-query digests: composite indexes the worst queries would use.

For each query class with full scans or many rows examined per row sent, the example query is
parsed with sqlglot (MySQL dialect) and, per table, an index is proposed: the columns compared
with ``=`` or ``IN`` first, then one range column (``<``, ``>``, ``BETWEEN``, ``LIKE 'x%'``), else the
GROUP BY columns, else the ORDER BY columns; then the column of a MIN()/MAX() (read from the
index's end), and, for a narrow SELECT, the other columns it reads (a covering index: no table
row is read). A proposal whose leading columns an existing index already has is dropped.

A column wrapped in a function (``DATE(created_at) = ?``, ``YEAR()``, ``LOWER()``, ``col + 1 = ?``)
cannot use an index on it. The advisor proposes the sargable rewrite (``created_at >= ? AND
created_at < ? + INTERVAL 1 DAY``) with the index the rewrite uses, and, where the query cannot
change, a functional index (MySQL 8.0.13+) or an indexed virtual column (MariaDB). When an index
on the column exists already, the rewrite alone is the advice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlglot
from sqlglot import exp

from .live import Schema
from .spec import Wanted

#: A class is worth advice when it scanned tables, or examined this many rows per row it sent.
EXAMINED_PER_SENT = 100
MAX_COLUMNS = 5


@dataclass(frozen=True)
class Proposal:
    table: str
    columns: tuple[str, ...]
    query_id: str
    reason: str
    example: str = ""  # the query it is for (literals masked)
    rows_before: int | None = None  # EXPLAIN's rows estimate stored with the digest
    rewrite: str = ""  # the sargable form of the query, when a function hides the column
    target: str = ""  # what to measure before and after (the rewrite, with a sample value), else the example
    alternative: str = ""  # where the query cannot change: a functional index or a virtual column
    serves: tuple[str, ...] = ()  # every query class the index serves (query IDs; query_id first)
    extends: str = ""  # an existing index whose columns lead this one's: the new one replaces it
    served_by: str = ""  # an existing index that serves the query once it is rewritten: no new index
    workload: dict | None = None  # workload.weigh: the reads it speeds, the writes it slows, the verdict


def _conjuncts(node):
    if isinstance(node, exp.And):
        yield from _conjuncts(node.left)
        yield from _conjuncts(node.right)
    elif isinstance(node, exp.Paren):
        yield from _conjuncts(node.this)
    elif node is not None:
        yield node


def _is_value(node) -> bool:
    return isinstance(node, (exp.Literal, exp.Placeholder, exp.Parameter, exp.Null, exp.Boolean)) or (
        isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal))


_FLIPPED = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE, exp.EQ: exp.EQ}


def _wrapped(node) -> tuple[exp.Column, str, exp.Expression | None] | None:
    """(column, kind, operand) of a column hidden by a function: DATE(c), YEAR(c), LOWER(c),
    UPPER(c), c + n, c - n."""
    if isinstance(node, exp.Year) and isinstance(node.this, exp.TsOrDsToDate) and isinstance(node.this.this, exp.Column):
        return node.this.this, "year", None
    if isinstance(node, exp.Year) and isinstance(node.this, exp.Column):
        return node.this, "year", None
    if isinstance(node, (exp.TsOrDsToDate, exp.Date)) and isinstance(node.this, exp.Column) and not node.args.get("format"):
        return node.this, "date", None
    if isinstance(node, (exp.Lower, exp.Upper)) and isinstance(node.this, exp.Column):
        return node.this, "lower" if isinstance(node, exp.Lower) else "upper", None
    if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.this, exp.Column) and _is_value(node.expression):
        return node.this, "add" if isinstance(node, exp.Add) else "sub", node.expression
    return None


def _sargable(cond, sample: str | None) -> tuple[exp.Column, str, str, str, str] | None:
    """(column, kind, rewrite, rewrite with a sample value, eq or range) of ``f(col) op value``."""
    if type(cond) not in _FLIPPED:
        return None
    op, left, right = type(cond), cond.left, cond.right
    hidden = _wrapped(left) if _is_value(right) else None
    if hidden is None and _is_value(left):
        hidden, op, right = _wrapped(right), _FLIPPED[op], left
    if hidden is None:
        return None
    col, kind, operand = hidden
    c = col.sql(dialect="mysql")

    def forms(v: str) -> str | None:
        if kind == "date":
            nxt = f"{v} + INTERVAL 1 DAY"
            return {exp.EQ: f"{c} >= {v} AND {c} < {nxt}", exp.GTE: f"{c} >= {v}", exp.GT: f"{c} >= {nxt}",
                    exp.LT: f"{c} < {v}", exp.LTE: f"{c} < {nxt}"}[op]
        if kind == "year":
            start, end = f"MAKEDATE({v}, 1)", f"MAKEDATE({v} + 1, 1)"
            return {exp.EQ: f"{c} >= {start} AND {c} < {end}", exp.GTE: f"{c} >= {start}", exp.GT: f"{c} >= {end}",
                    exp.LT: f"{c} < {start}", exp.LTE: f"{c} < {end}"}[op]
        if kind in ("lower", "upper"):
            return f"{c} = {v}" if op is exp.EQ else None  # a case-insensitive collation compares alike
        n = operand.sql(dialect="mysql")
        moved = f"{v} - {n}" if kind == "add" else f"{v} + {n}"
        return {exp.EQ: f"{c} = {moved}", exp.GTE: f"{c} >= {moved}", exp.GT: f"{c} > {moved}",
                exp.LT: f"{c} < {moved}", exp.LTE: f"{c} <= {moved}"}[op]

    value = right.sql(dialect="mysql")
    rewrite = forms(value)
    if rewrite is None:
        return None
    # The measured form: a masked date takes a day the query ran, a year its year.
    sample = {"date": sample and f"'{sample}'", "year": sample and sample[:4]}.get(kind)
    filled = forms(sample) if sample and isinstance(right, exp.Placeholder) else rewrite
    kind_of_use = "eq" if op is exp.EQ and kind not in ("date", "year") else "range"
    return col, kind, rewrite, filled, kind_of_use


def _alternative(table: str, col: str, kind: str) -> str:
    """The DDL text for where the query cannot change. Every name in it is quoted exactly as the DDL
    pelbiot-jobs runs quotes it (``quote``), and one it would refuse (a column name from a slow log
    such as ``c DATE; DROP TABLE devices; --``) gives no such advice: a DBA may paste it."""
    from ..db.identifiers import quote, valid_identifier

    if kind in ("add", "sub"):
        return ""
    virtual, index = f"{col}_{kind}", f"idx_{col}_{kind}"
    if not all(valid_identifier(name) for name in (table, col, virtual, index)):
        return ""
    q_col = quote(col)
    expr = {"date": f"DATE({q_col})", "year": f"YEAR({q_col})", "lower": f"LOWER({q_col})",
            "upper": f"UPPER({q_col})"}[kind]
    vtype = {"date": "DATE", "year": "SMALLINT", "lower": "VARCHAR(255)", "upper": "VARCHAR(255)"}[kind]
    return (f"if the query cannot change: MySQL 8.0.13+: CREATE INDEX {quote(index)} ON {quote(table)} (({expr})); "
            f"MariaDB: ALTER TABLE {quote(table)} ADD COLUMN {quote(virtual)} {vtype} AS ({expr}) VIRTUAL, "
            f"ADD INDEX {quote(index)} ({quote(virtual)})")


def propose_for(sql: str, schema: Schema, query_id: str = "", sample_date: str | None = None) -> list[Proposal]:
    """Pure (given the schema): the index proposals for one query. ``sample_date`` (YYYY-MM-DD): the
    value a date placeholder takes in the query measured before and after (the last day it ran)."""
    try:
        tree = sqlglot.parse_one(sql, read="mysql")
    except Exception:
        return []
    if not isinstance(tree, exp.Select):
        return []
    aliases: dict[str, str] = {}
    for t in tree.find_all(exp.Table):
        real = next((name for name in schema.columns if name.lower() == t.name.lower()), None)
        if real:
            aliases[(t.alias_or_name or t.name).lower()] = real
    if not aliases:
        return []
    single = next(iter(aliases.values())) if len(set(aliases.values())) == 1 else None

    def table_of(col: exp.Column) -> str | None:
        if col.table:
            return aliases.get(col.table.lower())
        if single:
            return single
        owners = [t for t in set(aliases.values()) if col.name.lower() in (c.lower() for c in schema.columns[t])]
        return owners[0] if len(owners) == 1 else None

    eq: dict[str, list[str]] = {}
    rng: dict[str, str] = {}
    rewrites: dict[str, list[tuple]] = {}  # table -> [(cond, rewrite, filled, kind, column)]
    where = tree.args.get("where")
    for cond in _conjuncts(where.this if where else None):
        col = None
        hidden = _sargable(cond, sample_date)
        if hidden is not None:
            col, kind, rewrite, filled, use = hidden
            table = table_of(col)
            if table is None:
                continue
            rewrites.setdefault(table, []).append((cond, rewrite, filled, kind, col.name))
            if use == "eq":
                eq.setdefault(table, [])
                if col.name not in eq[table]:
                    eq[table].append(col.name)
            else:
                rng.setdefault(table, col.name)
            continue
        if isinstance(cond, exp.EQ):
            left, right = cond.left, cond.right
            col = left if isinstance(left, exp.Column) and _is_value(right) else (
                right if isinstance(right, exp.Column) and _is_value(left) else None)
            kind = "eq"
        elif isinstance(cond, exp.In) and isinstance(cond.this, exp.Column):
            col, kind = cond.this, "eq"
        elif isinstance(cond, (exp.GT, exp.GTE, exp.LT, exp.LTE)):
            left, right = cond.left, cond.right
            col = left if isinstance(left, exp.Column) else (right if isinstance(right, exp.Column) else None)
            kind = "range"
        elif isinstance(cond, exp.Between) and isinstance(cond.this, exp.Column):
            col, kind = cond.this, "range"
        elif isinstance(cond, exp.Like) and isinstance(cond.this, exp.Column):
            pattern = cond.expression
            if isinstance(pattern, exp.Literal) and not str(pattern.this).startswith("%"):
                col, kind = cond.this, "range"
        if col is None:
            continue
        table = table_of(col)
        if table is None:
            continue
        if kind == "eq":
            eq.setdefault(table, [])
            if col.name not in eq[table]:
                eq[table].append(col.name)
        else:
            rng.setdefault(table, col.name)
    order: dict[str, list[str]] = {}
    for ordered in (tree.args.get("order").expressions if tree.args.get("order") else []):
        col = ordered.this
        if isinstance(col, exp.Column):
            table = table_of(col)
            if table:
                order.setdefault(table, []).append(col.name)
    grouped: dict[str, list[str]] = {}
    for col in (tree.args.get("group").expressions if tree.args.get("group") else []):
        if isinstance(col, exp.Column) and (table := table_of(col)):
            grouped.setdefault(table, []).append(col.name)
    extremes: dict[str, list[str]] = {}  # MIN()/MAX() columns: read from the end of an index
    read: dict[str, set[str]] = {}  # every column the query reads, per table (None: a * or unknown)
    for col in tree.find_all(exp.Column):
        if (table := table_of(col)) is not None:
            read.setdefault(table, set()).add(col.name)
    for agg in tree.find_all(exp.Max, exp.Min):
        if isinstance(agg.this, exp.Column) and (table := table_of(agg.this)):
            extremes.setdefault(table, []).append(agg.this.name)
    star = any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
               for e in tree.expressions)
    proposals = []
    for table in sorted(set(eq) | set(rng) | set(order) | set(grouped) | set(extremes)):
        columns: list[str] = list(eq.get(table, []))
        parts = []
        if eq.get(table):
            parts.append(f"equality on {', '.join(eq[table])}")
        if table in rng:
            if rng[table] not in columns:
                columns.append(rng[table])
            parts.append(f"range on {rng[table]}")
        elif grouped.get(table):  # after a range column an index serves neither GROUP BY nor ORDER BY
            columns += [c for c in grouped[table] if c not in columns]
            parts.append(f"group by {', '.join(grouped[table])}")
        elif order.get(table):
            columns += [c for c in order[table] if c not in columns]
            parts.append(f"order by {', '.join(order[table])}")
        if table not in rng and len(extremes.get(table, [])) == 1 and extremes[table][0] not in columns:
            columns.append(extremes[table][0])  # MIN/MAX of the next key part: one index dive
            parts.append(f"MIN/MAX of {extremes[table][0]} read from the index's end")
        if not star and read.get(table) and len(read[table]) <= MAX_COLUMNS and columns and \
                not read[table] <= set(columns) and len(set(columns) | read[table]) <= MAX_COLUMNS:
            extra = sorted(read[table] - set(columns))
            columns += extra
            parts.append(f"covering ({', '.join(extra)} read from the index)")
        columns = columns[:MAX_COLUMNS]
        if not columns or (not eq.get(table) and table not in rng and not grouped.get(table)
                           and not order.get(table) and not extremes.get(table)):
            continue
        hidden = rewrites.get(table, [])
        rewrite = target = alternative = ""
        if hidden:
            new_tree = tree.copy()
            new_target = tree.copy()
            for (cond, text_, filled, kind, col) in hidden:
                for t, form in ((new_tree, text_), (new_target, filled)):
                    found = next((n for n in t.find_all(type(cond)) if n == cond), None)
                    if found is not None:
                        found.replace(sqlglot.parse_one(form, read="mysql"))
            rewrite, target = new_tree.sql(dialect="mysql"), new_target.sql(dialect="mysql")
            alternative = "; ".join(a for a in (_alternative(table, col, kind) for _, _, _, kind, col in hidden) if a)
            parts.append("sargable rewrite: " + "; ".join(f"{c.sql(dialect='mysql')} -> {t}" for c, t, *_ in hidden))
        wanted = tuple(c.lower() for c in columns)
        serving = next((i for i in schema.indexes.get(table, []) if not i.fulltext
                        and tuple(c.name.lower() for c in i.columns)[:len(wanted)] == wanted), None)
        if serving is not None:
            if rewrite:  # the index is there; the function keeps the query from using it
                proposals.append(Proposal(table, tuple(columns), query_id, "; ".join(parts) + f" (already served by "
                                          f"{serving.name} once rewritten: only the rewrite is needed, no new index)",
                                          rewrite=rewrite, target=target, alternative=alternative,
                                          served_by=serving.name))
            continue  # an index already leads with these columns
        proposals.append(Proposal(table, tuple(columns), query_id, "; ".join(parts), rewrite=rewrite, target=target,
                                  alternative=alternative))
    return proposals


def worth_advice(row: dict) -> bool:
    sent = row.get("rows_sent_sum") or 0
    examined = row.get("rows_examined_sum") or 0
    return bool(row.get("full_scans")) or (examined / max(sent, 1) >= EXAMINED_PER_SENT and examined > 1000)


def proposals_from_digests(digests: list[dict], schema: Schema, hours: float = 24.0) -> list[Proposal]:
    """Proposals for the digests worth advice, weighed against the whole workload of ``hours``.

    One index per table serves every class whose columns lead it: (device_id) and (device_id,
    created_at) become one index (device_id, created_at) naming both classes. A proposal whose
    leading columns an existing (non-unique) index has extends it: the new index replaces that
    one. Each carries its workload (workload.weigh): the reads it speeds, the writes it slows and
    the verdict. A class an existing index serves once rewritten is said so, with no new index."""
    from .workload import weigh, writes_by_table

    per_class: list[tuple[Proposal, dict]] = []
    for row in digests:
        if not worth_advice(row) or not row.get("example"):
            continue
        last = row.get("last_seen")
        sample = last.strftime("%Y-%m-%d") if hasattr(last, "strftime") else None
        for p in propose_for(row["example"], schema, row.get("query_id", ""), sample):
            per_class.append((replace(p, example=row["example"], rows_before=_explain_rows(row.get("explain")),
                                      serves=(p.query_id,)), row))
    out: list[Proposal] = [p for p, _ in per_class if p.served_by]
    by_table: dict[str, list[tuple[Proposal, dict]]] = {}
    for p, row in per_class:
        if not p.served_by:
            by_table.setdefault(p.table.lower(), []).append((p, row))
    writes = writes_by_table(digests)
    for table, items in by_table.items():
        items.sort(key=lambda pr: -len(pr[0].columns))  # the widest first: the narrower ones fold into it
        merged: list[list] = []  # [proposal, rows served, proposals folded in]
        for p, row in items:
            cols = tuple(c.lower() for c in p.columns)
            home = next((m for m in merged if tuple(c.lower() for c in m[0].columns)[:len(cols)] == cols), None)
            if home is None:
                merged.append([p, [row], [p]])
            elif all(r.get("query_id") != row.get("query_id") for r in home[1]):
                home[1].append(row)
                home[2].append(p)
        for p, rows, parts in merged:
            serves = tuple(dict.fromkeys(r.get("query_id", "") for r in rows))
            reason = p.reason if len(parts) == 1 else (
                f"one index for {len(serves)} query classes: " + "; ".join(dict.fromkeys(q.reason for q in parts)))
            wanted = tuple(c.lower() for c in p.columns)
            extended = next((i for i in schema.indexes.get(p.table, []) if not (i.fulltext or i.unique or i.primary)
                             and len(i.columns) < len(wanted)
                             and tuple(c.name.lower() for c in i.columns) == wanted[:len(i.columns)]), None)
            extends = ""
            if extended is not None:
                extends = extended.name
                reason += (f"; extends {extended.name} ({', '.join(c.name for c in extended.columns)}): once created, "
                           f"{extended.name} is a left prefix of it and can be dropped (never automatically)")
            out.append(replace(p, serves=serves, reason=reason, extends=extends,
                               workload=weigh(p.table, p.columns, rows, digests, writes, hours)))
    return out


def _explain_rows(explain) -> int | None:
    import json

    try:
        return sum(int(r.get("rows") or 0) for r in json.loads(explain)) if explain else None
    except (ValueError, TypeError, AttributeError):
        return None


def as_wanted(p: Proposal) -> Wanted:
    said = " ".join(f"(query {q[:16]})" for q in (p.serves or (p.query_id,)))
    verdict = f"; {p.workload['verdict']}" if p.workload else ""
    return Wanted(p.table, tuple((c, None, False) for c in p.columns), None, False,
                  f"advisor: {p.reason}{verdict} {said}", 0)
