"""Housekeeping of the ops DB."""
