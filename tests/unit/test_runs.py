import datetime as dt

from pelbiot_jobs.jobs.service import next_due
from pelbiot_jobs.lib.errors import one_line
from pelbiot_jobs.lib.outcome import is_skipped, skipped
from pelbiot_jobs.runtime.schedule import Job
from pelbiot_jobs.runtime.recording import summarize
from pelbiot_jobs.runtime.task import compute_backoff


def test_one_line_scrubs_secrets_and_newlines():
    exc = RuntimeError("cannot connect to redis://:topsecret@cache:6379/0\nsecond line with pw-xyz")
    text = one_line(exc, ["pw-xyz"])
    assert text == "RuntimeError: cannot connect to redis://:***@cache:6379/0 second line with ***"


def test_one_line_is_bounded():
    assert len(one_line(ValueError("x" * 5000))) == 1000


def test_backoff_grows_and_is_capped():
    assert [compute_backoff(a) for a in range(4)] == [2, 4, 8, 16]
    assert compute_backoff(20) == 300


def test_skipped_marker_round_trip():
    assert is_skipped(skipped("busy")) and not is_skipped({"rows": 1}) and not is_skipped(None)


def test_summarize_sorts_and_scrubs():
    assert summarize({"b": 1, "a": "mysql://u:pw123@h/db"}) == '{"a": "mysql://u:***@h/db", "b": 1}'


NOW = dt.datetime(2026, 11, 28, 22, 34, 52)


def test_next_due_of_a_cron_job_is_the_next_matching_minute():
    job = Job(name="db.table_stats", task="db.table_stats", cron="5 * * * *")
    assert next_due(job, NOW, NOW) == dt.datetime(2026, 11, 28, 23, 5)
    assert next_due(job, None, NOW) == dt.datetime(2026, 11, 28, 23, 5)


def test_next_due_of_an_interval_job_counts_from_its_last_run():
    job = Job(name="metrics.sample_mysql", task="metrics.sample_mysql", every=15)
    assert next_due(job, NOW - dt.timedelta(seconds=10), NOW) == NOW + dt.timedelta(seconds=5)
    assert next_due(job, NOW - dt.timedelta(minutes=5), NOW) == NOW  # overdue: due now


def test_a_long_result_is_summarized_whole_keys_first_never_cut_in_a_key():
    import json

    from pelbiot_jobs.lib.errors import MAX_TEXT
    from pelbiot_jobs.runtime.recording import summarize

    result = {"classes": 144, "events": 80751, "rows": [{"query_id": f"{i:032X}", "calls": i} for i in range(400)],
              "source": "file", "note": "x" * 300, **{f"k{i:03d}": i for i in range(200)}}
    text = summarize(result)
    assert len(text) <= MAX_TEXT
    parsed = json.loads(text)  # valid JSON: nothing cut in the middle
    assert parsed["classes"] == 144 and parsed["rows"] == "[400 items]" and parsed["note"].endswith("...")
    assert parsed["..."].endswith("more keys")
    assert summarize({"a": 1}) == '{"a": 1}'  # a short one as it is
