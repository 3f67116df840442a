"""`pelbiot-jobs` with the fault tests' tasks registered: python -m tests.faults.main worker|beat ARGS."""

import sys

from tests.faults import fault_tasks  # noqa: F401  (registers faults.*)
from pelbiot_jobs.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
