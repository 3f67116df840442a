"""Duplicate and redundant keys, exactly as pt-duplicate-key-checker 3.x finds them. Pure.

The walk is pt's DuplicateKeyFinder, step by step, so the same keys are named for dropping:

- keys are taken in descending order of name, then split into the PRIMARY key, unique keys,
  plain keys and FULLTEXT keys (whose columns are compared in sorted order);
- uniqueness that a stronger key already gives is ignored: a single-column unique key defines a
  unique column (the PRIMARY key first, then the unique keys in that order; a second one on the
  same column is a duplicate constraint), and a multi-column unique key that holds a unique column
  is no constraint of its own (``Uniqueness of u ignored because PRIMARY is a stronger
  constraint``); both go with the plain keys;
- then, by the text of their column lists: the PRIMARY key against the unique and the plain
  keys, the unique keys against the plain ones, the plain ones among themselves (the one sorting
  first by columns, then by name, stays), FULLTEXT keys only against exact duplicates; a key whose
  column list is the start of another's (or equal) is its left prefix (or duplicate), unless it
  defines a unique column;
- on InnoDB, a unique or plain key whose columns end with the PRIMARY key's carries them twice
  (every secondary key already ends with the clustered key): the statement shortens it, as pt's
  does (``DROP INDEX k, ADD INDEX k (a)``), instead of dropping its access path;
- foreign keys on the same columns to the same parent columns: the one whose name sorts later
  is the duplicate.
"""

from __future__ import annotations

import re
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
    reason: str = ""  # pt-duplicate-key-checker's words for it

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _drop_sql(schema: str | None, index: Index, dialect: str = "mysql") -> str:
    if dialect == "sqlite":
        return f"DROP INDEX {quote(index.name, 'sqlite')};"
    target = f"{quote(schema)}.{quote(index.table)}" if schema else quote(index.table)
    return f"ALTER TABLE {target} DROP INDEX {quote(index.name)};"


def _shorten_sql(schema: str | None, index: Index, clustered_columns: int) -> str:
    """pt's way with a key that ends with the clustered key: the same key without those columns
    (dropping it would lose the access path on its first columns). A unique key so shortened
    becomes a plain one: its uniqueness was the primary key's."""
    target = f"{quote(schema)}.{quote(index.table)}" if schema else quote(index.table)
    short = ",".join(quote(c.name) + (f"({c.length})" if c.length else "")
                     for c in index.columns[:len(index.columns) - clustered_columns])
    return f"ALTER TABLE {target} DROP INDEX {quote(index.name)}, ADD INDEX {quote(index.name)} ({short});"


def _colnames(index: Index, ordered: bool = False) -> str:
    parts = [f"`{c.name}`" + (f"({c.length})" if c.length else "") for c in index.columns]
    return ",".join(sorted(parts) if ordered else parts)


class _Key:
    __slots__ = ("index", "colnames", "unique_col", "unconstrained", "constraining")

    def __init__(self, index: Index):
        self.index = index
        self.colnames = _colnames(index, ordered=index.fulltext)
        self.unique_col = False
        self.unconstrained: str | None = None
        self.constraining: _Key | None = None

    @property
    def name(self) -> str:
        return self.index.name


def _unconstrain(primary: _Key | None, unique: list[_Key]) -> list[_Key]:
    """pt's unconstrain_keys: the unique keys whose uniqueness a stronger key already gives."""
    cols: dict[str, _Key] = {}
    sets = []
    for key in ([primary] if primary else []) + unique:
        names = [c.name for c in key.index.columns]
        if len(names) == 1:
            if names[0] not in cols:
                cols[names[0]] = key
                key.unique_col = True
            else:
                key.unconstrained, key.constraining = "duplicate", cols[names[0]]
        else:
            sets.append((names, key))
    for names, key in sets:
        holding = [cols[n] for n in names if n in cols]
        if holding and key.name != "PRIMARY":
            key.unconstrained, key.constraining = "stronger", holding[0]
    moved = [k for k in unique if k.unconstrained]
    unique[:] = [k for k in unique if not k.unconstrained]
    return moved


def _prefixes(left: list[_Key], right: list[_Key], exact_only: bool = False) -> list[tuple[_Key, _Key, str]]:
    """pt's remove_prefix_duplicates: (the key to drop, the key it duplicates, why)."""
    same = left is right
    if same:
        left[:] = list(reversed(sorted(left, key=lambda k: k.colnames.lower())))
        pairs = ((i, j) for i in range(len(left) - 1) for j in range(i + 1, len(left)))
    else:
        left[:] = sorted(left, key=lambda k: k.colnames.lower())
        right[:] = sorted(right, key=lambda k: k.colnames.lower())
        pairs = ((i, j) for i in range(len(left)) for j in range(len(right)))
    gone: set[int] = set()
    found = []
    for i, j in pairs:
        if (same and i in gone) or j in gone:
            continue
        a, b = left[i], right[j]
        n = len(b.colnames)
        if a.colnames[:n] != b.colnames[:n] or b.unique_col or (exact_only and n < len(a.colnames)):
            continue
        why = (f"Uniqueness of {b.name} ignored because {b.constraining.name} is a {b.unconstrained} constraint; "
               if b.unconstrained else "")
        exact = n >= len(a.colnames)
        found.append((b, a, why + f"{b.name} is {'a duplicate' if exact else 'a left-prefix'} of {a.name}"))
        gone.add(j)
    right[:] = [k for idx, k in enumerate(right) if idx not in gone]
    if same:
        left[:] = right
    return found


def find_duplicates(indexes: list[Index], schema: str | None = None, clustered: bool = True,
                    dialect: str = "mysql") -> list[Duplicate]:
    """Every duplicate or redundant key of one table's ``indexes``, as pt-duplicate-key-checker
    names them (``clustered``: the table is InnoDB)."""
    primary, unique, plain, fulltext = None, [], [], []
    for index in sorted(indexes, key=lambda i: i.name, reverse=True):
        key = _Key(index)
        if index.primary:
            primary = key
        elif index.fulltext:
            fulltext.append(key)
        else:
            (unique if index.unique else plain).append(key)
    plain += _unconstrain(primary, unique)
    pairs = []
    if primary is not None:
        pairs += _prefixes([primary], unique) + _prefixes([primary], plain)
    pairs += _prefixes(unique, plain) + _prefixes(plain, plain) + _prefixes(fulltext, fulltext, exact_only=True)
    found = [Duplicate(b.index.table, b.name, a.name, "duplicate" if " is a duplicate of " in why else "left-prefix",
                       _drop_sql(schema, b.index, dialect), b.index.definition(), a.index.definition(), why)
             for b, a, why in pairs]
    if clustered and primary is not None:
        suffix = re.compile(re.escape(primary.colnames) + "$")
        for key in unique + plain:
            if suffix.search(key.colnames):
                found.append(Duplicate(key.index.table, key.name, "PRIMARY", "clustered-suffix",
                                       _shorten_sql(schema, key.index, len(primary.index.columns)),
                                       key.index.definition(),
                                       primary.index.definition(),
                                       f"Key {key.name} ends with a prefix of the clustered index"))
    return found


@dataclass(frozen=True)
class ForeignKey:
    table: str
    name: str
    columns: tuple[str, ...]
    parent: str  # schema.table
    parent_columns: tuple[str, ...]


def duplicate_foreign_keys(fks: list[ForeignKey], schema: str | None = None) -> list[Duplicate]:
    """pt's get_duplicate_fks: same columns to the same parent columns (in any order)."""
    ordered = sorted(fks, key=lambda f: f.name)
    gone: set[int] = set()
    found = []
    for i, a in enumerate(ordered):
        if i in gone:
            continue
        for j in range(i + 1, len(ordered)):
            b = ordered[j]
            if j in gone or (b.parent, sorted(b.columns), sorted(b.parent_columns)) != \
                    (a.parent, sorted(a.columns), sorted(a.parent_columns)):
                continue
            target = f"{quote(schema)}.{quote(b.table)}" if schema else quote(b.table)

            def fk(f):
                return (f"FOREIGN KEY {f.name} ({', '.join(f'`{c}`' for c in f.columns)}) REFERENCES {f.parent} "
                        f"({', '.join(f'`{c}`' for c in f.parent_columns)})")
            found.append(Duplicate(b.table, b.name, a.name, "foreign-key", f"ALTER TABLE {target} DROP FOREIGN KEY "
                                   f"{quote(b.name)};", fk(b), fk(a), f"{fk(b)} is a duplicate of {fk(a)}"))
            gone.add(j)
    return found
