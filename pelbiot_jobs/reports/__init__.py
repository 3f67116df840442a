"""Reports: daily, weekly and monthly operations reports, and PELBIOT's summary."""

#: The kinds of report (``pelbiot-jobs report KIND``, ``reports.export kind=KIND``).
KINDS = ("daily", "weekly", "monthly", "summary")
