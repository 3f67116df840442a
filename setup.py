"""The slow-log digest's reader in C (pelbiot_jobs/queries/_scan.c); everything else is in pyproject.toml.

Optional: without gcc and Python's headers the install goes on and the Python reader does all the
work (3-10 times slower, the same digest).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("pelbiot_jobs.queries._scan", ["pelbiot_jobs/queries/_scan.c"], optional=True)])
