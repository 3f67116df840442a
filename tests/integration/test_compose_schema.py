"""docker-compose.yml (and its RabbitMQ override) against the Compose specification's JSON schema,
offline: `docker-compose config -q` (Debian's docker-compose 1.29, which bundles compose_spec.json)
needs no Docker engine."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/bin:/bin", "MYSQL_PASSWORD": "x", "MYSQL_ROOT_PASSWORD": "y", "PELBIOT_FLOWER_PASSWORD": "z",
       "PELBIOT_WEB_PASSWORD": "w", "RABBITMQ_PASSWORD": "r"}


def check(*files: Path) -> subprocess.CompletedProcess:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed: `make test` installs it (apt-get install docker-compose)",
                    pytrace=False)
    args = [tool] + [a for f in files for a in ("-f", str(f))] + ["config", "-q"]
    return subprocess.run(args, env=ENV, cwd=files[0].parent, capture_output=True, text=True, timeout=120)


def test_the_compose_files_follow_the_compose_specification():
    done = check(ROOT / "docker-compose.yml")
    assert done.returncode == 0, done.stderr
    done = check(ROOT / "docker-compose.yml", ROOT / "docker-compose.rabbitmq.yml")
    assert done.returncode == 0, done.stderr


def test_the_check_finds_a_file_that_does_not(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((ROOT / "docker-compose.yml").read_text().replace("stop_grace_period: 11m",
                                                                        "stop_grace_periods: 11m"))
    done = check(broken)
    assert done.returncode != 0 and "stop_grace_periods" in done.stderr
