"""Schedule files: YAML that keeps line numbers, and durations. Pure.

Every schedule file (beat.yaml, cache.yaml, alerts.yaml, health.yaml, indexes.yaml) is read with
``load_yaml`` so that each problem can be reported as ``FILE:LINE: what is wrong``; anchors and
aliases are refused (a few hundred bytes could expand to gigabytes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import yaml

#: The longest duration any schedule value may name (an interval, an expiry, a TTL, a window).
MAX_DURATION_SECONDS = 366 * 86400
#: The largest schedule file read at all (bytes).
MAX_FILE_BYTES = 1024 * 1024

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class LineMap(dict):
    """A mapping read from YAML that remembers the line of each key (1-based)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.line = 0
        self.lines: dict = {}


class _LineLoader(yaml.SafeLoader):
    duplicates: list[tuple[str, int]]

    def compose_node(self, parent, index):
        # Anchors and aliases let 700 bytes expand to gigabytes ("billion laughs"): refused.
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in schedule files",
                                              event.start_mark)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(None, None, "YAML anchors (&name) are not allowed in schedule files",
                                              event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        mapping = LineMap()
        mapping.line = node.start_mark.line + 1
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in mapping:
                self.duplicates.append((str(key), key_node.start_mark.line + 1))
            mapping[key] = self.construct_object(value_node, deep=deep)
            mapping.lines[key] = key_node.start_mark.line + 1
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


def load_yaml(path: Path, problems: list[str]) -> Any:
    """Load a YAML file keeping line numbers; append syntax problems and return None on error."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{path}:1: the file is larger than {MAX_FILE_BYTES // 1024} KiB")
            return None
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1: cannot read the file: {exc}")
        return None
    loader = _LineLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.append(f"{path}:{line}: YAML syntax error: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{path}:1: YAML error: {exc}")
        return None
    finally:
        loader.dispose()
    for key, line in loader.duplicates:
        problems.append(f"{path}:{line}: duplicate key {key!r}")
    return data


def parse_duration(value: Any) -> float:
    """Turn ``15``, ``"15s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` into seconds; raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 15s, 5m or 1h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text or _DURATION_PART.sub("", text):
            raise ValueError(f"expected a duration such as 15s, 5m or 1h, got {value!r}")
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    else:
        raise ValueError(f"expected a duration such as 15s, 5m or 1h, got {type(value).__name__}")
    import math

    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be above zero, got {value!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"a duration must be at most {MAX_DURATION_SECONDS // 86400} days, got {value!r}")
    return seconds


#: The schedule files besides beat.yaml, and the function that validates each:
#: ``check(path, problems, deep)``. ``deep`` also proves SQL a plain read (sqlglot: the worker,
#: ``schedules check``), which beat and ``up`` leave to the worker so they never load a SQL parser.
#: Each slice's spec registers its own file (``checks``) when it loads; the slices' task modules
#: load their specs, and runtime.app.load_tasks loads the task modules.
FILE_CHECKERS: dict[str, Callable[[Path, list[str], bool], None]] = {}


def checks(name: str):
    """Register the decorated function as the checker of the schedule file ``name``."""
    def register(fn):
        FILE_CHECKERS[name] = fn
        return fn
    return register


def checker(name: str) -> Callable[[Path, list[str], bool], None]:
    return FILE_CHECKERS[name]
