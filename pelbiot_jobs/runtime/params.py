"""Task parameters, checked at the task whoever sent them (beat, the CLI, Flower, another client).

Each task declares what it accepts (``params={"name": Days(), ...}`` on ``@app.task``); a
message with an unknown name, a wrong type or a value out of range fails once, with one line
that names the parameter, and nothing runs. Pure: no Celery, no database.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from ..lib.errors import InputError

#: The longest period a retention parameter may name (days): ten years.
MAX_DAYS = 3650


class Param:
    """A parameter's rule: ``check(name, value)`` returns the value to use or raises InputError."""

    def check(self, name: str, value):  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class Int(Param):
    low: int
    high: int

    def check(self, name, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"parameter {name}={value!r:.60} is not valid: use a whole number from "
                             f"{self.low} to {self.high}")
        if not self.low <= value <= self.high:
            raise InputError(f"parameter {name}={value} is not valid: use a whole number from {self.low} to {self.high}")
        return value

    def describe(self):
        return f"whole number {self.low}-{self.high}"


@dataclass(frozen=True)
class Float(Param):
    low: float
    high: float

    def check(self, name, value):
        import math

        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not self.low <= value <= self.high:
            raise InputError(f"parameter {name}={value!r:.60} is not valid: use a number from {self.low:g} to {self.high:g}")
        return value

    def describe(self):
        return f"number {self.low:g}-{self.high:g}"


def Days() -> Int:  # noqa: N802 - reads as a type in a task's declaration
    """A retention age: at least one day, at most MAX_DAYS."""
    return Int(1, MAX_DAYS)


@dataclass(frozen=True)
class Choice(Param):
    allowed: tuple[str, ...]

    def check(self, name, value):
        if not isinstance(value, str) or value not in self.allowed:
            raise InputError(f"parameter {name}={value!r:.60} is not valid: use one of {', '.join(self.allowed)}")
        return value

    def describe(self):
        return " | ".join(self.allowed)


@dataclass(frozen=True)
class Bool(Param):
    def check(self, name, value):
        if not isinstance(value, bool):
            raise InputError(f"parameter {name}={value!r:.60} is not valid: use true or false")
        return value

    def describe(self):
        return "true | false"


@dataclass(frozen=True)
class IsoDate(Param):
    def check(self, name, value):
        try:
            if not isinstance(value, str) or len(value) != 10:
                raise ValueError
            dt.date.fromisoformat(value)
        except ValueError:
            raise InputError(f"parameter {name}={value!r:.60} is not valid: use a date YYYY-MM-DD") from None
        return value

    def describe(self):
        return "YYYY-MM-DD"


@dataclass(frozen=True)
class Name(Param):
    """A short identifier-like string (a warmer name, a table name)."""

    max_length: int = 64

    def check(self, name, value):
        if not isinstance(value, str) or not re.fullmatch(rf"[A-Za-z0-9_.:-]{{1,{self.max_length}}}", value):
            raise InputError(f"parameter {name}={value!r:.60} is not valid: use letters, digits, '_', '.', ':' "
                             f"or '-' (at most {self.max_length})")
        return value

    def describe(self):
        return "name"


@dataclass(frozen=True)
class Text(Param):
    """A string of printable characters, bounded."""

    max_length: int = 4096

    def check(self, name, value):
        if not isinstance(value, str) or not value or len(value) > self.max_length or not value.isprintable():
            raise InputError(f"parameter {name} is not valid: use printable text of at most {self.max_length} characters")
        return value

    def describe(self):
        return "text"


@dataclass(frozen=True)
class PositiveInt(Param):
    def check(self, name, value):
        return Int(1, 2**63 - 1).check(name, value)

    def describe(self):
        return "whole number >= 1"


def check_params(task_name: str, spec: dict[str, Param], args: tuple | list, kwargs: dict) -> dict:
    """The kwargs a task may run with, positional arguments mapped by the declared order.

    ``None`` means "the default" for every parameter; anything else must pass its rule.
    """
    if not isinstance(kwargs, dict):
        raise InputError(f"{task_name}: parameters must be a mapping of name to value")
    names = list(spec)
    if len(args or ()) > len(names):
        raise InputError(f"{task_name} takes at most {len(names)} parameters, got {len(args)} positional")
    merged = dict(zip(names, args or ()))
    for key, value in kwargs.items():
        if key in merged:
            raise InputError(f"{task_name}: parameter {key} given twice")
        merged[key] = value
    unknown = sorted(str(k) for k in merged if k not in spec)
    if unknown:
        accepted = ", ".join(f"{n} ({p.describe()})" for n, p in spec.items()) or "none"
        raise InputError(f"{task_name}: unknown parameter {unknown[0][:60]!r} (accepted: {accepted})")
    return {k: (None if v is None else spec[k].check(k, v)) for k, v in merged.items()}


def allowed_slow_log(path: str, configured: Path | None, directory: Path | None) -> str:
    """The slow log a caller may name: the configured file, or a file under the configured folder.

    Anything else (another file, a symlink out of the folder, ``..``) is refused: the worker may
    run as a privileged user and would store the lines of whatever it read.
    """
    candidate = Path(path)
    if not candidate.is_absolute():
        raise InputError(f"parameter path={path!r:.80} is not valid: give an absolute path")
    resolved = candidate.resolve()
    if configured is not None and resolved == configured.resolve():
        return str(resolved)
    if directory is not None:
        base = directory.resolve()
        if resolved.is_relative_to(base) and resolved != base:
            return str(resolved)
    allowed = " or ".join(filter(None, [f"PELBIOT_SLOW_LOG ({configured})" if configured else None,
                                        f"a file under PELBIOT_SLOW_LOG_DIR ({directory})" if directory else None]))
    raise InputError(f"parameter path={path!r:.80} is not valid: queries.analyze reads only "
                     + (allowed or "the slow log the server reports; set PELBIOT_SLOW_LOG or PELBIOT_SLOW_LOG_DIR"))
