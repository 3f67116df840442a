"""Duplicate and redundant indexes, by pt-duplicate-key-checker's rules. Pure.

- an exact duplicate (same columns, same prefix lengths, same order): the plain one goes, a
  PRIMARY or UNIQUE key stays;
- a left prefix of another index is redundant, unless it is UNIQUE or PRIMARY (a constraint, not
  only an access path); the longer index still serves every query (and foreign key) the prefix did;
- FULLTEXT keys are compared only with FULLTEXT keys, and their column order does not matter;
- on InnoDB, a secondary key that ends with the primary key's columns carries them twice (every
  secondary key already ends with the clustered key): reported with the shorter definition.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..db.identifiers import quote
from .model import Index


@dataclass(frozen=True)
class Duplicate:
    table: str
    index: str
    duplicate_of: str
    kind: str  # duplicate, left-prefix, clustered-suffix
    drop_sql: str
    definition: str
    other_definition: str

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _drop_sql(schema: str | None, index: Index, dialect: str = "mysql") -> str:
    if dialect == "sqlite":
        return f"DROP INDEX {quote(index.name, 'sqlite')};"
    target = f"{quote(schema)}.{quote(index.table)}" if schema else quote(index.table)
    return f"ALTER TABLE {target} DROP INDEX {quote(index.name)};"


def _rank(index: Index) -> int:
    """Which of two identical indexes to keep: PRIMARY over UNIQUE over plain."""
    return 2 if index.primary else 1 if index.unique else 0


def find_duplicates(indexes: list[Index], schema: str | None = None, clustered: bool = True,
                    dialect: str = "mysql") -> list[Duplicate]:
    """Every duplicate or redundant index of one table's ``indexes``."""

    def _drop(schema_, index):
        return _drop_sql(schema_, index, dialect)

    found: list[Duplicate] = []
    dropped: set[str] = set()
    plain = [i for i in indexes if not i.fulltext]
    fulltext = [i for i in indexes if i.fulltext]
    # Shorter keys first, as pt-duplicate-key-checker walks them: a short key is the candidate.
    ordered = sorted(plain, key=lambda i: (len(i.key), -_rank(i), i.name))
    for a in ordered:
        if a.name in dropped or a.primary:
            continue
        for b in ordered:
            if b is a or b.name in dropped:
                continue
            if a.key == b.key:
                if _rank(a) > _rank(b) or (_rank(a) == _rank(b) and a.name > b.name):
                    continue  # b is the one to go; handled when b is the candidate
                found.append(Duplicate(a.table, a.name, b.name, "duplicate", _drop(schema, a), a.definition(),
                                       b.definition()))
                dropped.add(a.name)
                break
            if len(a.key) < len(b.key) and b.key[:len(a.key)] == a.key and not a.unique:
                found.append(Duplicate(a.table, a.name, b.name, "left-prefix", _drop(schema, a), a.definition(),
                                       b.definition()))
                dropped.add(a.name)
                break
    seen: dict[tuple, Index] = {}
    for f in sorted(fulltext, key=lambda i: i.name):
        key = tuple(sorted(f.key))
        if key in seen:
            found.append(Duplicate(f.table, f.name, seen[key].name, "duplicate", _drop(schema, f), f.definition(),
                                   seen[key].definition()))
        else:
            seen[key] = f
    if clustered:
        primary = next((i for i in indexes if i.primary), None)
        if primary is not None:
            pk = primary.key
            for i in plain:
                if i.primary or i.unique or i.name in dropped or len(i.key) <= len(pk):
                    continue
                if i.key[-len(pk):] == pk:
                    found.append(Duplicate(i.table, i.name, "PRIMARY", "clustered-suffix", _drop(schema, i),
                                           i.definition(), primary.definition()))
    return found
