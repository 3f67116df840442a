"""Where things are: the schedule folder in use (configured, or the one shipped in the package)."""

from __future__ import annotations

from pathlib import Path

SHIPPED_SCHEDULES = Path(__file__).resolve().parents[1] / "schedules"


def schedules_dir(settings) -> Path:
    return settings.schedules_dir or SHIPPED_SCHEDULES
