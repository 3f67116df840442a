import textwrap

import pytest

from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES
from pelbiot_jobs.runtime.app import task_names
from pelbiot_jobs.runtime.schedule import check_dir, parse_beat, parse_cron, parse_duration

TASKS = {"db.table_stats", "maintenance.retention", "metrics.sample_mysql"}


def problems_of(tmp_path, text):
    path = tmp_path / "beat.yaml"
    path.write_text(textwrap.dedent(text))
    problems = []
    jobs = parse_beat(path, TASKS, problems)
    return jobs, [p.replace(str(path), "beat.yaml") for p in problems]


def test_a_valid_file(tmp_path):
    jobs, problems = problems_of(tmp_path, """
        jobs:
          metrics.sample_mysql:
            every: 15s
          db.table_stats:
            cron: "5 * * * *"
            queue: maintenance
            kwargs: {verbose: true}
          reports.export.weekly:
            task: maintenance.retention
            cron: "0 6 * * 1"
            enabled: false
    """)
    assert problems == []
    sample, stats, weekly = jobs
    assert sample.every == 15 and sample.expires == 15  # frequent jobs expire after one interval
    assert stats.cron == "5 * * * *" and stats.expires is None and stats.kwargs == {"verbose": True}
    assert weekly.task == "maintenance.retention" and weekly.enabled is False


@pytest.mark.parametrize("text, expected", [
    ("jobs:\n  db.table_stats:\n    every: 1m\n  metrics.nope:\n    every: 5s\n",
     "beat.yaml:4: unknown task 'metrics.nope'"),
    ("jobs:\n  db.table_stats:\n    cron: \"61 * * * *\"\n", "beat.yaml:3: cron '61 * * * *' is invalid"),
    ("jobs:\n  db.table_stats:\n    cron: \"* * *\"\n", "beat.yaml:3: cron '* * *' has 3 fields"),
    ("jobs:\n  db.table_stats:\n    every: 1m\n    expirse: 10s\n",
     "beat.yaml:4: unknown key 'expirse' in job 'db.table_stats' (did you mean 'expires'?)"),
    ("jobs:\n  db.table_stats:\n    every: [1, 2]\n", "beat.yaml:3: expected a duration such as 15s"),
    ("jobs:\n  db.table_stats:\n    every: 10 parsecs\n", "beat.yaml:3: expected a duration such as 15s"),
    ("jobs:\n  db.table_stats:\n    every: 0s\n", "beat.yaml:3: a duration must be above zero"),
    ("jobs:\n  db.table_stats:\n    every: 1m\n    enabled: yes please\n", "beat.yaml:4: enabled must be true or false"),
    ("jobs:\n  db.table_stats:\n    every: 1m\n    kwargs: [1]\n", "beat.yaml:4: kwargs must be a mapping"),
    ("jobs:\n  db.table_stats:\n    every: 1m\n    queue: fast\n", "beat.yaml:4: unknown queue 'fast'"),
    ("jobs:\n  db.table_stats:\n    every: 1m\n    cron: \"* * * * *\"\n",
     "beat.yaml:2: job 'db.table_stats' needs exactly one of 'every' or 'cron'"),
    ("jobs:\n  db.table_stats:\n    queue: maintenance\n", "needs exactly one of 'every' or 'cron'"),
    ("jobs:\n  db.table_stats: 15s\n", "beat.yaml:2: job 'db.table_stats' must be a mapping"),
    ("jobs:\n  db.table_stats:\n    every: 1m\n  db.table_stats:\n    every: 2m\n",
     "beat.yaml:4: duplicate key 'db.table_stats'"),
    ("jobs:\n  db.table_stats:\n    every: 1m\n   cron: oops\n", "beat.yaml:4: YAML syntax error"),
    ("jobs:\n  - db.table_stats\n", "beat.yaml:1: 'jobs' must be a mapping"),
    ("job:\n  db.table_stats:\n    every: 1m\n", "beat.yaml:1: unknown key 'job' (allowed: jobs)"),
    ("", "beat.yaml:1: the file is empty"),
    ("jobs:\n  TableStats:\n    every: 1m\n", "beat.yaml:2: job name 'TableStats' must look like area.verb"),
])
def test_every_kind_of_error_names_file_and_line(tmp_path, text, expected):
    jobs, problems = problems_of(tmp_path, text)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("beat.yaml:") for p in problems)


def test_all_problems_are_reported_not_just_the_first(tmp_path):
    _, problems = problems_of(tmp_path, """
        jobs:
          db.table_stats:
            every: soon
          metrics.sample_mysql:
            cron: "99 * * * *"
    """)
    assert [p.split(":")[1] for p in problems] == ["4", "6"]


def test_check_dir_reports_unknown_files_and_a_missing_beat_file(tmp_path):
    (tmp_path / "beta.yaml").write_text("jobs: {}\n")
    problems = check_dir(tmp_path, TASKS)
    assert any("beat.yaml:0: missing" in p for p in problems)
    assert any("beta.yaml:1: unknown schedule file" in p for p in problems)


def test_the_shipped_schedules_are_valid():
    assert check_dir(SHIPPED_SCHEDULES, task_names()) == []


@pytest.mark.parametrize("value, seconds", [(15, 15), ("15s", 15), ("5m", 300), ("1h30m", 5400),
                                            ("250ms", 0.25), ("2d", 172800), (0.5, 0.5)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


def test_parse_cron_builds_a_celery_crontab():
    cron = parse_cron("30 3 * * 0")
    assert cron.minute == {30} and cron.hour == {3} and cron.day_of_week == {0}


def test_a_slot_missed_by_an_outage_is_the_latest_on_the_grid_and_a_wake_up_is_not_late():
    import datetime as dt
    from types import SimpleNamespace

    from celery.schedules import crontab, schedule

    from pelbiot_jobs.runtime.beat import missed_slot

    utc = dt.timezone.utc
    last = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=utc)
    now = last + dt.timedelta(seconds=47)  # slots at :15 and :30 and :45 passed while nothing could send
    every = schedule(dt.timedelta(seconds=15))
    every.nowfun = lambda: now
    entry = SimpleNamespace(last_run_at=last, schedule=every, default_now=lambda: now)
    slot, behind, missed = missed_slot(entry, now)
    assert (slot, round(behind), missed) == (last + dt.timedelta(seconds=45), 2, 3)
    on_time = now.replace(second=17)  # picked up 2 s after its slot at the next wake-up: not late
    every.nowfun = lambda: on_time
    assert missed_slot(SimpleNamespace(last_run_at=last, schedule=every, default_now=lambda: on_time), on_time) is None
    daily = crontab(minute=0, hour=3)
    late_night = dt.datetime(2026, 12, 8, 3, 5, tzinfo=utc)
    daily.nowfun = lambda: late_night
    slot, _, missed = missed_slot(SimpleNamespace(last_run_at=last, schedule=daily, default_now=lambda: late_night),
                                  late_night)
    assert (slot, missed) == (dt.datetime(2026, 12, 8, 3, 0, tzinfo=utc), 1)
