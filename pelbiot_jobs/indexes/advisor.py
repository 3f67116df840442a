"""Index advice from slow-query digests: composite indexes the worst queries would use.

For each query class with full scans or many rows examined per row sent, the example query is
parsed with sqlglot (MySQL dialect) and, per table, an index is proposed: the columns compared
with ``=`` or ``IN`` first, then one range column (``<``, ``>``, ``BETWEEN``, ``LIKE 'x%'``), then the
ORDER BY columns. A proposal whose leading columns an existing index already has is dropped.
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


def propose_for(sql: str, schema: Schema, query_id: str = "") -> list[Proposal]:
    """Pure (given the schema): the index proposals for one query."""
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
    where = tree.args.get("where")
    for cond in _conjuncts(where.this if where else None):
        col = None
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
    proposals = []
    for table in sorted(set(eq) | set(rng) | set(order)):
        columns: list[str] = list(eq.get(table, []))
        if table in rng and rng[table] not in columns:
            columns.append(rng[table])
        if table not in rng:  # after a range column an index cannot serve the ORDER BY
            columns += [c for c in order.get(table, []) if c not in columns]
        columns = columns[:MAX_COLUMNS]
        if not columns:
            continue
        existing = [tuple(c.name.lower() for c in i.columns) for i in schema.indexes.get(table, []) if not i.fulltext]
        wanted = tuple(c.lower() for c in columns)
        if any(key[:len(wanted)] == wanted for key in existing):
            continue  # an index already leads with these columns
        parts = []
        if eq.get(table):
            parts.append(f"equality on {', '.join(eq[table])}")
        if table in rng:
            parts.append(f"range on {rng[table]}")
        if table not in rng and order.get(table):
            parts.append(f"order by {', '.join(order[table])}")
        proposals.append(Proposal(table, tuple(columns), query_id, "; ".join(parts)))
    return proposals


def worth_advice(row: dict) -> bool:
    sent = row.get("rows_sent_sum") or 0
    examined = row.get("rows_examined_sum") or 0
    return bool(row.get("full_scans")) or (examined / max(sent, 1) >= EXAMINED_PER_SENT and examined > 1000)


def proposals_from_digests(digests: list[dict], schema: Schema) -> list[Proposal]:
    """Proposals for every digest worth advice, one per (table, columns)."""
    seen: dict[tuple, Proposal] = {}
    for row in digests:
        if not worth_advice(row) or not row.get("example"):
            continue
        for p in propose_for(row["example"], schema, row.get("query_id", "")):
            seen.setdefault((p.table, p.columns), replace(p, example=row["example"],
                                                          rows_before=_explain_rows(row.get("explain"))))
    return list(seen.values())


def _explain_rows(explain) -> int | None:
    import json

    try:
        return sum(int(r.get("rows") or 0) for r in json.loads(explain)) if explain else None
    except (ValueError, TypeError, AttributeError):
        return None


def as_wanted(p: Proposal) -> Wanted:
    return Wanted(p.table, tuple((c, None, False) for c in p.columns), None, False,
                  f"advisor: {p.reason} (query {p.query_id[:16]})", 0)
