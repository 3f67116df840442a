"""docker-compose.yml is for users (no Docker engine here): check its structure offline."""

import re
from pathlib import Path

import yaml

from pelbiot_jobs.cli.processes import expand_host_queue as _expand_host_queue

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_every_piece_is_there():
    assert set(SERVICES) == {"mysql", "redis-broker", "redis-cache", "migrate", "worker", "worker-maintenance",
                             "beat", "flower", "web"}
    assert SERVICES["mysql"]["image"].startswith("mysql:8")


def test_broker_never_evicts_and_cache_is_lru():
    assert "noeviction" in SERVICES["redis-broker"]["command"]
    assert "allkeys-lru" in SERVICES["redis-cache"]["command"]
    env = SERVICES["worker"]["environment"]
    assert "redis-broker" in env["PELBIOT_BROKER_URL"] and "redis-cache" in env["PELBIOT_CACHE_REDIS_URL"]


def test_long_running_services_have_health_checks_and_start_in_order():
    for name, service in SERVICES.items():
        if name != "migrate":
            assert "healthcheck" in service, name
        for dep in service.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
    for name in ("worker", "worker-maintenance", "beat", "flower", "web"):
        deps = SERVICES[name]["depends_on"]
        assert deps["mysql"]["condition"] == "service_healthy"
        assert deps["redis-broker"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]


def test_maintenance_runs_one_at_a_time():
    command = SERVICES["worker-maintenance"]["command"]
    assert command[command.index("-Q") + 1] == "maintenance" and command[command.index("-c") + 1] == "1"
    worker = SERVICES["worker"]["command"]
    assert "maintenance" not in worker[worker.index("-Q") + 1]


def test_no_password_is_written_in_the_file_and_flower_is_protected():
    text = (ROOT / "docker-compose.yml").read_text()
    for match in re.finditer(r"(PASSWORD|_URL)\s*:\s*(\S+)", text):
        value = match.group(2)
        assert "${" in value or "@" not in value or ":${" in value, match.group(0)
    for name, variable in (("flower", "PELBIOT_FLOWER_PASSWORD"), ("web", "PELBIOT_WEB_PASSWORD")):
        service = SERVICES[name]
        assert ":?" in service["environment"][variable]  # compose refuses to start without it
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])


def test_host_in_a_queue_list_means_this_hosts_queue():
    assert _expand_host_queue(["-Q", "sampling,host", "-c", "2"], "host.h1") == ["-Q", "sampling,host.h1", "-c", "2"]
    assert _expand_host_queue(["--queues=host"], "host.h1") == ["--queues=host.h1"]
    assert _expand_host_queue(["-Qhost,reports"], "host.h1") == ["-Qhost.h1,reports"]


def test_workers_have_stable_names_a_grace_period_and_cheap_health_checks():
    for name in ("worker", "worker-maintenance"):
        service = SERVICES[name]
        assert service["hostname"] and service["environment"]["PELBIOT_HOSTNAME"]
        assert service["stop_grace_period"].endswith("m") and int(service["stop_grace_period"][:-1]) >= 11
        check = " ".join(service["healthcheck"]["test"])
        assert "pelbiot-jobs" not in check and "pelbiot:worker:" in check  # one Redis read, no CLI start
    broker = SERVICES["redis-broker"]["command"]
    assert broker[broker.index("--appendonly") + 1] == "yes" and "--appendfsync" in broker


def test_the_rabbitmq_override_keeps_leases_in_a_redis_that_never_evicts():
    override = yaml.safe_load((ROOT / "docker-compose.rabbitmq.yml").read_text())["services"]
    assert set(override) - {"rabbitmq"} <= set(SERVICES)  # it only overrides services that exist
    for name in ("worker", "worker-maintenance", "beat", "flower"):  # the web view reads the ops DB only
        env = override[name]["environment"]
        assert env["PELBIOT_BROKER_URL"].startswith("amqp://") and "${RABBITMQ_PASSWORD:?" in env["PELBIOT_BROKER_URL"]
        assert env["PELBIOT_LOCK_REDIS_URL"] == "redis://redis-broker:6379/0"
    broker = SERVICES["redis-broker"]["command"]
    assert broker[broker.index("--maxmemory-policy") + 1] == "noeviction"
    timeout = int(override["rabbitmq"]["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"].split()[-1])
    assert timeout > 7200 * 1000  # above the longest task's hard limit (indexes.reconcile: 2 h)
