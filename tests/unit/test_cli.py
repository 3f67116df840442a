import pytest

from pelbiot_jobs.cli import main


def test_worker_beat_and_flower_pass_unknown_options_through():
    from pelbiot_jobs import cli

    parser = cli.build_parser()
    args, unknown = parser.parse_known_args(["worker", "-Q", "maintenance", "-c", "1", "-n", "m@%h"])
    assert args.passthrough and unknown == ["-Q", "maintenance", "-c", "1", "-n", "m@%h"]


def test_other_commands_refuse_unknown_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--bogus"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_help_lists_the_commands_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("up", "worker", "beat", "flower", "run", "status", "db", "demo-data", "schedules"):
        assert f"\n    {command}" in out
    assert "pelbiot-jobs up --once" in out and "exit codes:" in out


def test_every_option_and_argument_has_help():
    from pelbiot_jobs.cli import build_parser

    missing = []

    def walk(parser, path):
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, sub in action.choices.items():
                    walk(sub, path + [name])
            elif not action.help and "-h" not in action.option_strings:
                missing.append(" ".join(path + [action.dest]))

    walk(build_parser(), ["pelbiot-jobs"])
    assert not missing, f"no help text: {missing}"


def test_the_terminal_of_up_shows_levels_not_words_and_each_trouble_once():
    from pelbiot_jobs.stack.supervisor import TerminalLines, noteworthy

    assert noteworthy("[2026-12-07 01:00:00,123: WARNING/MainProcess] consumer: reconnecting")
    assert noteworthy("[W 261207 01:00:00 web:2345] 403 POST /silences")
    assert noteworthy("2026-12-07 01:00:00,123 ERROR MainProcess pelbiot_jobs.runtime.beat: tick failed")
    assert noteworthy("/x/y.py:3: DeprecationWarning: z") and noteworthy("pelbiot-jobs: error: bad")
    assert not noteworthy("[2026-12-07 01:00:00,123: INFO/MainProcess] Task x succeeded: {'WARNING': 1}")
    assert not noteworthy("[I 261207 01:00:00 web:1] 200 GET /?q=ERROR")
    lines = TerminalLines("var/log/up.log")
    failure = "[2026-12-07 01:00:{:02d},1: ERROR/ForkPoolWorker-{}] Task metrics.sample_database[{}] raised unexpected: " \
              "OperationalError(1045, \"Access denied for user 'app'@'localhost'\")"
    tb = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>', "    boom()", "    ^^^^^^",
          "", "The above exception was the direct cause of the following exception:", "",
          "Traceback (most recent call last):", '  File "y.py", line 2', "ValueError: boom"]
    shown = []
    for n in range(3):
        for line in [failure.format(15 * n, n + 1, f"{n}f8d2a3e-1111-2222-3333-444455556666"), *tb]:
            shown += lines(line)
    # The error line once (its traceback belongs to it), then one word that it repeats.
    assert shown == [failure.format(0, 1, "0f8d2a3e-1111-2222-3333-444455556666"),
                     "(a warning or error came again: repeats are only in var/log/up.log)"]
    # A traceback on its own (a process that crashed): the exception of the first of its chain.
    alone = TerminalLines("up.log")
    shown = [x for line in ["celery beat v5.7.0 is starting.", *tb, "next line"] for x in alone(line)]
    assert shown == ["ValueError: boom  (the traceback is in up.log)"]
