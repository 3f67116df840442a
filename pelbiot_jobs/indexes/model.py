"""Indexes as plain data, identifier checks and quoting. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: What MySQL/MariaDB accept as an unquoted identifier, and no longer than 64 characters. Anything
#: else (a ";", a backtick, a space) is refused before a statement is built.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,63}")


def valid_identifier(name) -> bool:
    return isinstance(name, str) and IDENTIFIER.fullmatch(name) is not None


def quote(name: str, dialect: str = "mysql") -> str:
    """Quote an identifier (already validated): backticks for MySQL/MariaDB, double quotes for SQLite."""
    if not valid_identifier(name):
        raise ValueError(f"invalid identifier {name!r}")
    return f"`{name}`" if dialect in ("mysql", "mariadb") else f'"{name}"'


@dataclass(frozen=True)
class Column:
    name: str
    length: int | None = None  # prefix length
    descending: bool = False


@dataclass(frozen=True)
class Index:
    table: str
    name: str
    columns: tuple[Column, ...]
    unique: bool = False
    primary: bool = False
    fulltext: bool = False

    @property
    def key(self) -> tuple:
        """What two indexes compare by: column names and prefix lengths, in order."""
        return tuple((c.name.lower(), c.length) for c in self.columns)

    def definition(self) -> str:
        cols = ",".join(f"`{c.name}`" + (f"({c.length})" if c.length else "") for c in self.columns)
        kind = "PRIMARY KEY" if self.primary else ("UNIQUE KEY" if self.unique else
                                                   ("FULLTEXT KEY" if self.fulltext else "KEY"))
        return f"{kind} `{self.name}` ({cols})" if not self.primary else f"PRIMARY KEY ({cols})"
