"""pelbiot-jobs: the scheduled job and workflow pipeline of a PELBIOT installation."""

__version__ = "0.1.0"
