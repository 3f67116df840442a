"""Bad input gives exit 2 and a clear line naming the problem; Flower never starts open."""

from tests.conftest import clean_environ

from .conftest import pj


def test_a_broken_schedule_gives_exit_2_and_file_line_messages(tmp_path):
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "beat.yaml").write_text(
        "jobs:\n  db.table_stats:\n    cron: \"0 25 * * *\"\n  metrics.nope:\n    every: 5s\n    colour: red\n")
    for command in (["schedules", "check"], ["worker"], ["beat"], ["up", "--once"]):
        done = pj(*command, env=clean_environ(), cwd=tmp_path, timeout=60)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        beat = schedules / "beat.yaml"
        assert lines[0].startswith(f"{beat}:3: cron '0 25 * * *' is invalid"), lines
        assert f"{beat}:4: unknown task 'metrics.nope'" in lines
        assert any(line.startswith(f"{beat}:6: unknown key 'colour'") for line in lines)
    assert not (tmp_path / "var" / "redis.sock").exists()  # nothing was started


def test_a_yaml_syntax_error_is_reported_with_its_line(tmp_path):
    (tmp_path / "beat.yaml").write_text("jobs:\n  db.table_stats:\n    every: 1m\n   cron: x\n")
    done = pj("schedules", "check", str(tmp_path), env=clean_environ(), cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{tmp_path / 'beat.yaml'}:4: YAML syntax error")


def test_a_bad_broker_url_gives_exit_2_and_one_line(tmp_path):
    env = clean_environ() | {"PELBIOT_BROKER_URL": "redis://:hunter2@:notaport/0"}
    done = pj("status", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("pelbiot-jobs: error: PELBIOT_BROKER_URL=")
    assert "hunter2" not in done.stderr and done.stdout == ""


def test_an_unknown_task_is_named(tmp_path):
    done = pj("run", "db.nope", "--local", env=clean_environ(), cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    # Named, with the nearest names instead of the list of every task (each once).
    assert "unknown task or job 'db.nope': did you mean db.optimize?" in done.stderr, done.stderr


def test_flower_refuses_to_start_without_credentials(tmp_path):
    env = clean_environ() | {"PELBIOT_BROKER_URL": "redis://127.0.0.1:6379/13"}
    done = pj("flower", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "Flower will not start without authentication" in done.stderr
    done = pj("flower", "--unauthenticated", "--address", "0.0.0.0", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "may only listen on 127.0.0.1" in done.stderr


def test_run_without_a_running_embedded_broker_says_what_to_do(tmp_path):
    done = pj("run", "db.table_stats", env=clean_environ(), cwd=tmp_path, timeout=60)
    assert done.returncode == 3
    assert "start `pelbiot-jobs up`" in done.stderr and "--local" in done.stderr


def test_incident_and_silence_commands_name_what_is_wrong(tmp_path):
    env = clean_environ()
    done = pj("silence", "add", "cpu_hgh", "--for", "2h", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "unknown rule 'cpu_hgh' (rules: cpu_high, error_rate_high" in done.stderr
    done = pj("silence", "add", "cpu_high", "--for", "soon", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "--for 'soon'" in done.stderr
    done = pj("silence", "add", "cpu_high", "--host", "web1", "--for", "2h", "--by", "alice", env=env, cwd=tmp_path,
              timeout=60)
    assert done.returncode == 0 and "cpu_high on web1 muted until" in done.stdout
    done = pj("incidents", "ack", "999", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "no incident #999" in done.stderr
    done = pj("incidents", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0
