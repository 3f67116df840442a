"""Slow-query analysis: parse, fingerprint and digest like pt-query-digest."""
