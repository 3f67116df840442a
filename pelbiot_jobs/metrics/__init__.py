"""Metrics sampling: host, MySQL, Redis and API request telemetry (issue: metrics sampling).

Each sampler is a pure function from two raw readings (the previous and the current) to metric
values; reading the world and storing the results is the task's job.
"""
