"""How a run says it chose not to do its work: recorded as SKIPPED, not SUCCESS or FAILURE."""

from __future__ import annotations

from typing import Any

SKIPPED_KEY = "skipped"


def skipped(reason: str) -> dict:
    """The return value of a run that chose not to do its work; recorded as SKIPPED."""
    return {SKIPPED_KEY: True, "reason": reason}


def is_skipped(retval: Any) -> bool:
    return isinstance(retval, dict) and retval.get(SKIPPED_KEY) is True
