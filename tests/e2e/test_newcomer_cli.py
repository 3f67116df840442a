"""The command line as a newcomer meets it on the demo: the help's examples run, reads never create
a database, job names run their job, tables fit 80 columns without splitting a name, and a
downgrade never drops the ops tables by surprise."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import clean_environ

from .conftest import pj

#: The commands whose help examples must run on the demo as they are written: every read. The
#: others start processes (up, worker, beat, flower, web), change things (run, ack, resolve,
#: silence add/expire, cache invalidate, indexes apply, report, demo-data, db upgrade/downgrade),
#: or need the broker and a worker (status, workers: tested with a running stack elsewhere).
READS = {"metrics", "health", "incidents", "incidents list", "incidents show", "silence list", "queries",
         "queries list", "queries show", "indexes plan", "db current", "db check", "schedules check"}


#: The actions of the command groups (incidents ack, db upgrade...).
ACTIONS = {"list", "show", "ack", "resolve", "add", "expire", "check", "plan", "apply", "upgrade", "current",
           "downgrade", "advise", "invalidate"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    env = clean_environ() | {"COLUMNS": "80"}
    done = pj("demo-data", "--devices", "10", "--days", "2", "--sensor-days", "1", env=env, cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr
    import shutil

    from tests.conftest import ROOT

    # The files the help's examples name, as a user would have them: `schedules check ./my-schedules`,
    # `indexes plan --spec my-indexes.yaml`.
    shutil.copytree(ROOT / "schedules", folder / "my-schedules")
    shutil.copy(ROOT / "schedules" / "indexes.yaml", folder / "my-indexes.yaml")
    return folder, env


def help_examples() -> list[list[str]]:
    """Every example line of every command's help (``pelbiot-jobs X ...  # comment``), as argv."""
    from pelbiot_jobs.cli import EPILOG, build_parser

    texts = [EPILOG]

    def walk(parser):
        texts.append(parser.epilog or "")
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for sub in action.choices.values():
                    walk(sub)
    walk(build_parser())
    examples = []
    for text in texts:
        for line in text.splitlines():
            m = re.match(r"\s+pelbiot-jobs (.+?)(?:\s+#.*)?$", line)
            if m:
                examples.append(shlex.split(m.group(1).split(" | ")[0].split(" && ")[0]))
    return examples


def test_the_help_examples_of_every_read_run_on_the_demo(demo):
    folder, env = demo
    ran = []
    for argv in help_examples():
        words = [w for w in argv if not w.startswith("-")]
        read = " ".join(words[:2]) in READS or (words[0] in READS and (len(words) == 1 or words[1] not in ACTIONS))
        if not read:
            continue
        done = pj(*argv, env=env, cwd=folder, timeout=120)
        assert done.returncode == 0, (argv, done.stdout[-500:], done.stderr)
        ran.append(" ".join(argv))
    # The examples that once failed on the demo are among them.
    assert "queries show 55EAF920E0E331BA" in ran and "incidents show 1" in ran, ran
    assert len(ran) >= 8, ran


def test_a_read_in_the_wrong_folder_creates_nothing_and_says_where_it_looked(tmp_path):
    env = clean_environ()
    for argv in (["status"], ["metrics"], ["health"], ["queries"], ["incidents"], ["indexes", "plan"],
                 ["db", "current"]):
        done = pj(*argv, env=env, cwd=tmp_path, timeout=60)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and f"no ops DB at {tmp_path / 'var' / 'ops.db'}" in lines[0], (argv, lines)
        assert "PELBIOT_OPS_DB_URL" in lines[0]
    assert not (tmp_path / "var" / "ops.db").exists()


def test_run_takes_a_job_name_and_suggests_the_nearest_names(demo):
    folder, env = demo
    done = pj("run", "reports.daily", "--local", "--param", "email=false", env=env, cwd=folder, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reports.daily is a job of beat.yaml: it runs reports.export with kind=daily, email=False" in done.stderr
    assert "reports.daily [" in done.stdout and "SUCCESS" in done.stdout
    status = pj("status", "--offline", "--json", env=env, cwd=folder, timeout=60)
    import json

    jobs = {j["name"]: j for j in json.loads(status.stdout)["jobs"]}
    assert jobs["reports.daily"]["last_state"] == "SUCCESS"
    near = pj("run", "reports.dayly", env=env, cwd=folder, timeout=60)
    assert near.returncode == 2 and "did you mean reports.daily" in near.stderr, near.stderr
    unknown = pj("run", "no.such.task", env=env, cwd=folder, timeout=60)
    assert unknown.returncode == 2 and len(unknown.stderr) < 200, unknown.stderr


def test_tables_fit_80_columns_and_never_split_a_name_or_a_time(demo):
    folder, env = demo
    for argv in (["status", "--offline"], ["health"], ["metrics", "--since", "24h"], ["queries", "--since", "7d"],
                 ["indexes", "plan"], ["incidents", "list", "--all"]):
        done = pj(*argv, env=env, cwd=folder, timeout=120)
        assert done.returncode == 0, (argv, done.stderr)
        too_wide = [line for line in done.stdout.splitlines() if len(line) > 80]
        assert not too_wide, (argv, too_wide)
        if argv[0] == "status":
            for name in ("metrics.ingest_requests", "maintenance.retention", "reports.monthly"):
                assert re.search(rf"│ {re.escape(name)} +│", done.stdout), (name, done.stdout)
            assert re.search(r"│ \d\d-\d\d \d\d:\d\d:\d\d │", done.stdout), done.stdout
            assert "left out to fit 80 columns: schedule, duration (--wide shows them)" in done.stdout
        if argv[0] == "health":  # a value with its unit and the points it gives, and what that means
            assert re.search(r"\d % \((100|75|50|0)\)", done.stdout) and "the points it gives" in done.stdout
            assert "→" not in done.stdout
    wide = pj("status", "--offline", "--wide", env=env, cwd=folder, timeout=60)
    assert "schedule" in wide.stdout and "duration" in wide.stdout and re.search(r"\d{4}-\d\d-\d\dT", wide.stdout)


def test_status_says_why_a_run_was_skipped(demo):
    folder, env = demo
    skipped = pj("run", "queries.analyze", "--local", env=env | {"PELBIOT_SLOWLOG_SOURCE": "off"}, cwd=folder,
                 timeout=120)
    assert skipped.returncode == 0 and "SKIPPED" in skipped.stdout, skipped.stdout + skipped.stderr
    done = pj("status", "--offline", env=env, cwd=folder, timeout=60)
    assert re.search(r"queries\.analyze SKIPPED: PELBIOT_SLOWLOG_SOURCE=off", done.stdout), done.stdout


def test_a_downgrade_names_its_revision_and_asks(demo):
    folder, env = demo
    bare = pj("db", "downgrade", env=env, cwd=folder, timeout=60)
    assert bare.returncode == 2 and "revision" in bare.stderr, bare.stderr
    unasked = pj("db", "downgrade", "base", env=env, cwd=folder, timeout=60)
    assert unasked.returncode == 2 and "add --yes" in unasked.stderr, unasked.stderr
    assert "drops every ops table" in unasked.stdout
    current = pj("db", "current", env=env, cwd=folder, timeout=60)
    assert current.returncode == 0 and current.stdout.strip() not in ("", "empty (run `pelbiot-jobs db upgrade`)")
