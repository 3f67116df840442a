"""Logging set-up: one format, and no secret ever reaches a handler."""

from __future__ import annotations

import logging

from .config import Settings
from .lib.redact import scrub

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


class ScrubFilter(logging.Filter):
    """Replace URL passwords and configured secrets in every record's final message."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = scrub(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    for handler in root.handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter(settings.secrets()))
    root.setLevel(settings.log_level)
    # Alembic narrates every plugin and migration step at INFO; keep its warnings only.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
