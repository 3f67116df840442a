"""Neutralize text from outside before a terminal, a spreadsheet or Rich interprets it. Pure.

Slow-log text, incident and rule names, host names and errors may carry terminal escape
sequences (which can retitle a window, hide lines, or worse), Rich markup (``[/oops]`` crashes a
table) or spreadsheet formulas (a CSV cell ``=HYPERLINK(...)`` runs when opened).
"""

from __future__ import annotations

import re

#: C0 and C1 control characters except tab and newline, and DEL: what a terminal acts on.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: A spreadsheet treats a cell that starts with one of these as a formula (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(text) -> str:
    """``text`` with control characters (ESC, CSI, BEL, CR, ...) shown as ``\\xNN``, never acted on."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", "" if text is None else str(text))


def cell(text):
    """A Rich renderable that shows ``text`` as it is: no markup parsed, no control characters."""
    from rich.text import Text

    return Text(plain(text))


def escaped(text) -> str:
    """``text`` for a string Rich parses as markup (a title, a line with colours): shown as it is."""
    from rich.markup import escape

    return escape(plain(text))


def csv_value(value):
    """A CSV value a spreadsheet shows as text: a string that starts like a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
