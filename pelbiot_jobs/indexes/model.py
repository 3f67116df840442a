"""Indexes as plain data. Pure."""

from __future__ import annotations

from dataclasses import dataclass

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
