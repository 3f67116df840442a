"""The demo's services: whether the embedded default's app DB wants its demo data, and seeding it."""

from __future__ import annotations


def seed_demo(settings, plan, progress=None) -> dict:
    """Create the PELBIOT tables if missing and fill them (the app DB the settings name)."""
    from ..db.engine import make_engine
    from .data import seed

    engine = make_engine(settings.app_db_url)
    try:
        return seed(engine, plan, progress=progress)
    finally:
        engine.dispose()


def demo_needed(settings) -> bool:
    """True for the embedded default's own app DB while it is empty; a configured one: never."""
    from ..db.engine import make_engine
    from .data import device_count

    if not settings.app_db_embedded:
        return False
    engine = make_engine(settings.app_db_url)
    try:
        return device_count(engine) == 0
    finally:
        engine.dispose()
