"""The plan: each declared index against the live schema; and every duplicate. Pure."""

from __future__ import annotations

from .duplicates import duplicate_foreign_keys, find_duplicates
from .live import Schema
from ..db.identifiers import quote, valid_identifier
from .model import Column, Index
from .spec import Wanted


def _name_for(table: str, columns) -> str:
    base = f"idx_{table}_" + "_".join(c[0] for c in columns)
    return base[:64]


def ddl(index: Index, dialect: str) -> str:
    """The statement ``apply`` runs: online on MySQL/MariaDB (it fails rather than lock the table)."""
    if dialect == "sqlite":
        cols = ", ".join(quote(c.name, "sqlite") + (" DESC" if c.descending else "") for c in index.columns)
        return (f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {quote(index.name, 'sqlite')} "
                f"ON {quote(index.table, 'sqlite')} ({cols})")
    cols = ", ".join(quote(c.name) + (f"({c.length})" if c.length else "") + (" DESC" if c.descending else "")
                     for c in index.columns)
    return (f"ALTER TABLE {quote(index.table)} ADD {'UNIQUE ' if index.unique else ''}INDEX {quote(index.name)} "
            f"({cols}), ALGORITHM=INPLACE, LOCK=NONE")


def _without_planned_prefixes(creates: list[dict]) -> tuple[list[dict], list[dict]]:
    """A planned index whose columns lead another planned index of the same table is served by that
    one: it is not created too (it would be a left-prefix duplicate the moment both exist)."""
    def key(e):
        return e["table"].lower(), [c.lower() for c in e["columns"]]

    keep, covered = [], []
    for e in creates:
        table, cols = key(e)
        wider = next((f for f in creates if f is not e and key(f)[0] == table and len(key(f)[1]) > len(cols)
                      and key(f)[1][:len(cols)] == cols and not e.get("unique")), None)
        if wider is None:
            keep.append(e)
        else:
            covered.append({k: v for k, v in e.items() if k != "sql"} | {
                "index": wider["name"], "definition": f"planned: {', '.join(wider['columns'])}"})
    return keep, covered


def plan(wanted: list[Wanted], schema: Schema, suggestions=()) -> dict:
    """Declared indexes (and the advisor's suggestions) against the live schema, and every duplicate."""
    from .advisor import as_wanted

    out = {"create": [], "exists": [], "covered": [], "invalid": [], "duplicates": [], "unused": [], "suggested": []}
    declared = {(str(w.table).lower(), tuple(str(c[0]).lower() for c in w.columns)) for w in wanted}
    items = [(w, "spec") for w in wanted]
    targets: dict[tuple, str] = {}  # (table, columns) -> the slow query an index would serve
    for p in suggestions:
        key = (p.table.lower(), tuple(c.lower() for c in p.columns))
        targets.setdefault(key, p.target or p.example)  # a rewrite is measured in its sargable form
        out["suggested"].append({"table": p.table, "columns": list(p.columns), "query_id": p.query_id,
                                 "query_ids": list(p.serves or (p.query_id,)), "reason": p.reason,
                                 "example": p.example, "explain_rows_before": p.rows_before,
                                 "rewrite": p.rewrite, "alternative": p.alternative, "extends": p.extends,
                                 "served_by": p.served_by, "workload": p.workload,
                                 "verdict": p.workload["verdict"] if p.workload else None})
        if key not in declared:  # a rewrite-only one is then "exists": the index that serves it
            items.append((as_wanted(p), "advisor"))
    for w, source in items:
        entry = {"table": w.table, "columns": [c[0] for c in w.columns], "name": w.name, "source": source,
                 "reason": w.reason}
        if w.unique:
            entry["unique"] = True
        target = targets.get((str(w.table).lower(), tuple(str(c[0]).lower() for c in w.columns)))
        if target:
            entry["target"] = target
        bad = [x for x in [w.table, *(c[0] for c in w.columns)] + ([w.name] if w.name is not None else [])
               if not valid_identifier(x)]
        if bad:
            out["invalid"].append({**entry, "reason": f"invalid identifier {bad[0]!r}: letters, digits, _ and $ "
                                                      "only, at most 64; nothing was sent to the server"})
            continue
        table = next((t for t in schema.columns if t.lower() == w.table.lower()), None)
        if table is None:
            out["invalid"].append({**entry, "reason": f"table {w.table!r} does not exist"})
            continue
        known = {c.lower(): c for c in schema.columns[table]}
        missing = [c[0] for c in w.columns if c[0].lower() not in known]
        if missing:
            out["invalid"].append({**entry, "reason": f"column {table}.{missing[0]} does not exist"})
            continue
        name = w.name or _name_for(table, w.columns)
        index = Index(table, name, tuple(Column(known[c[0].lower()], c[1], c[2]) for c in w.columns), unique=w.unique)
        entry["name"] = name
        live = schema.indexes.get(table, [])
        same_name = next((i for i in live if i.name.lower() == name.lower()), None)
        if same_name is not None:
            if same_name.key == index.key:
                out["exists"].append({**entry, "index": same_name.name})
            else:
                out["invalid"].append({**entry, "reason": f"an index named {name} exists on other columns: "
                                                          f"{same_name.definition()}"})
            continue
        cover = next((i for i in live if not i.fulltext and i.key[:len(index.key)] == index.key
                      and (i.unique or not w.unique)), None)
        if cover is not None:
            kind = "exists" if cover.key == index.key else "covered"
            out[kind].append({**entry, "index": cover.name, "definition": cover.definition()})
            continue
        out["create"].append({**entry, "sql": ddl(index, schema.dialect)})
    out["create"], prefixes = _without_planned_prefixes(out["create"])
    out["covered"] += prefixes
    for table in sorted(schema.indexes):
        clustered = schema.engines.get(table, "").lower() == "innodb"
        out["duplicates"] += [d.as_dict() for d in find_duplicates(
            schema.indexes[table], schema.name if schema.dialect != "sqlite" else None, clustered=clustered,
            dialect=schema.dialect)]
        out["duplicates"] += [d.as_dict() for d in duplicate_foreign_keys(schema.foreign_keys.get(table, []),
                                                                          schema.name)]
    return out
