"""Databases: the PELBIOT app DB the jobs read and tune, and the ops DB where results land."""
