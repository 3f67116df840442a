"""SQL identifiers: what is accepted and how it is quoted. Pure."""

from __future__ import annotations

import re

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
