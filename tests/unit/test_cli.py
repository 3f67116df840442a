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
