"""The operator's web view and /metrics: a thin face over the services, like the command line."""
