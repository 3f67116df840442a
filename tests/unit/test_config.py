from pathlib import Path

import pytest

from pelbiot_jobs.config import load_settings
from pelbiot_jobs.lib.errors import ConfigError
from pelbiot_jobs.lib.redact import mask_url, scrub


def settings(tmp_path, **env):
    return load_settings({f"PELBIOT_{k}": v for k, v in env.items()}, cwd=tmp_path)


def test_nothing_set_is_the_embedded_default(tmp_path):
    s = settings(tmp_path)
    assert s.embedded_redis
    assert s.app_db_url == f"sqlite:///{tmp_path}/var/app.db"
    assert s.ops_db_url == f"sqlite:///{tmp_path}/var/ops.db"
    assert s.broker_url == f"redis+socket://{tmp_path}/var/redis.sock?virtual_host=0"
    assert s.cache_redis_url == f"unix://{tmp_path}/var/redis.sock?db=1"  # cache apart from the broker
    assert s.coordination_redis_url == f"unix://{tmp_path}/var/redis.sock?db=0"
    assert s.reports_dir == tmp_path / "reports" / "out"
    assert s.schedules_dir is None  # the shipped schedules


def test_production_urls(tmp_path):
    s = settings(tmp_path, APP_DB_URL="mysql://app:pw@db:3306/pelbiot", OPS_DB_URL="mysql+pymysql://ops@db/ops",
                 BROKER_URL="redis://broker:6379/0", CACHE_REDIS_URL="redis://cache:6379/0")
    assert s.app_db_url == "mysql+pymysql://app:pw@db:3306/pelbiot"  # only PyMySQL is installed
    assert not s.embedded_redis
    assert s.coordination_redis_url == "redis://broker:6379/0"
    assert s.result_backend_url == "redis://broker:6379/0"


def test_cache_defaults_to_the_broker_server_when_it_is_redis(tmp_path):
    assert settings(tmp_path, BROKER_URL="redis://r:6379/2").cache_redis_url == "redis://r:6379/2"


def test_rabbitmq_broker_needs_a_cache_redis(tmp_path):
    with pytest.raises(ConfigError, match="PELBIOT_CACHE_REDIS_URL is not set"):
        settings(tmp_path, BROKER_URL="amqp://guest:guest@localhost:5672//")
    s = settings(tmp_path, BROKER_URL="amqp://guest:guest@localhost:5672//", CACHE_REDIS_URL="redis://c/1")
    assert s.result_backend_url == "rpc://" and s.coordination_redis_url == "redis://c/1"


@pytest.mark.parametrize("name, value, expected", [
    ("BROKER_URL", "http://broker:6379", "PELBIOT_BROKER_URL='http://broker:6379' is not valid: use a URL starting with"),
    ("BROKER_URL", "redis://:hunter22@/0", "PELBIOT_BROKER_URL='redis://:***@/0' is not valid: the URL names no host"),
    ("BROKER_URL", "redis://h:99999/0", "the port is not a number"),
    ("APP_DB_URL", "postgresql://x/y", "PELBIOT_APP_DB_URL='postgresql://x/y' is not valid"),
    ("APP_DB_URL", "mysql+pymysql://u@h:3306/", "name the database"),
    ("CACHE_REDIS_URL", "redis://h:6379/cache", "the Redis database must be a number"),
    ("SMTP_PORT", "smtp", "PELBIOT_SMTP_PORT='smtp' is not valid: use a whole number from 1 to 65535"),
    ("SMTP_STARTTLS", "maybe", "PELBIOT_SMTP_STARTTLS='maybe' is not valid: use true or false"),
    ("LOG_LEVEL", "LOUD", "use one of DEBUG, INFO, WARNING, ERROR"),
    ("MAIL_TO", "ops@x, not-an-address", "use comma-separated e-mail addresses"),
    ("HOSTNAME", "bad host!", "PELBIOT_HOSTNAME='bad host!' is not valid"),
    ("FLOWER_USER", "admin", "PELBIOT_FLOWER_PASSWORD is not set"),
])
def test_a_bad_value_names_the_variable_and_what_is_allowed(tmp_path, name, value, expected):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, **{name: value})
    message = str(err.value)
    assert expected in message
    assert "\n" not in message
    assert "hunter22" not in message


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("PELBIOT_LOG_LEVEL=DEBUG\nPELBIOT_WORKER_CONCURRENCY=3\nOTHER=1\n")
    s = load_settings({"PELBIOT_WORKER_CONCURRENCY": "4"}, cwd=tmp_path)
    assert s.log_level == "DEBUG" and s.worker_concurrency == 4


def test_a_schedules_folder_in_the_working_directory_overrides_the_shipped_one(tmp_path):
    (tmp_path / "schedules").mkdir()
    assert settings(tmp_path).schedules_dir == tmp_path / "schedules"


def test_passwords_are_masked_everywhere(tmp_path):
    s = settings(tmp_path, APP_DB_URL="mysql+pymysql://app:S3cr3t-pw@db/pelbiot", BROKER_URL="redis://:R3dis-pw@r:6379/0",
                 SMTP_PASSWORD="smtp-secret", FLOWER_USER="ops", FLOWER_PASSWORD="flower-secret")
    shown = repr(s) + str(s.describe())
    for secret in ("S3cr3t-pw", "R3dis-pw", "smtp-secret", "flower-secret"):
        assert secret not in shown
    assert mask_url("mysql+pymysql://app:S3cr3t-pw@db/pelbiot") == "mysql+pymysql://app:***@db/pelbiot"
    message = "connect to mysql+pymysql://app:S3cr3t-pw@db failed; smtp said smtp-secret"
    assert scrub(message, s.secrets()) == "connect to mysql+pymysql://app:***@db failed; smtp said ***"


def test_socket_path_too_long_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="PELBIOT_VAR_DIR"):
        settings(tmp_path, VAR_DIR=str(Path(tmp_path) / ("x" * 120)))


def test_every_setting_may_come_from_a_file_as_docker_secrets_give_them(tmp_path):
    """PELBIOT_X_FILE: the content of the file (a trailing line end dropped); both set, or an
    unreadable file, is one line naming the variable and never the content."""
    import pytest

    from pelbiot_jobs.config import ConfigError, load_settings

    (tmp_path / "smtp").write_text("s3cret-pw\n")
    (tmp_path / "receiver").write_text("json://hooks.example/alerts\n")
    settings = load_settings({"PELBIOT_SMTP_PASSWORD_FILE": str(tmp_path / "smtp"),
                              "PELBIOT_RECEIVER_OPS_FILE": str(tmp_path / "receiver")}, cwd=tmp_path)
    assert settings.smtp.password == "s3cret-pw" and settings.receivers["ops"] == "json://hooks.example/alerts"
    assert "s3cret-pw" in settings.secrets()
    with pytest.raises(ConfigError, match="PELBIOT_SMTP_PASSWORD and PELBIOT_SMTP_PASSWORD_FILE are both set"):
        load_settings({"PELBIOT_SMTP_PASSWORD_FILE": str(tmp_path / "smtp"), "PELBIOT_SMTP_PASSWORD": "x"},
                      cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"PELBIOT_OPS_DB_URL_FILE='/nope/x' is not valid: No such file") as e:
        load_settings({"PELBIOT_OPS_DB_URL_FILE": "/nope/x"}, cwd=tmp_path)
    assert len(str(e.value).splitlines()) == 1
