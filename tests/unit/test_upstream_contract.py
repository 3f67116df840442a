"""The private names of kombu, Celery and RedBeat that pelbiot-jobs overrides or reads, each with
the shape it is used with. An upgrade that renames or reshapes one fails here, in seconds, naming
it, instead of silently turning a reliability feature off (the bad-message filter, the restore
sweep, the beat lock's take-over, `status`'s reading of RedBeat's entries).

Before raising the pins in pyproject.toml (kombu, celery, celery-redbeat), run this file and the
fault suite (tests/faults) on the new versions."""

from __future__ import annotations

import inspect

import pytest


def params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_kombu_redis_channel_reads_with_brpop_and_its_client_parses_the_reply():
    """runtime/broker.Channel._brpop_read wraps the client's parse_response to see each message first."""
    from kombu.transport import redis as kombu_redis

    assert params(kombu_redis.Channel._brpop_read) == ["self", "options"]
    source = inspect.getsource(kombu_redis.Channel._brpop_read)
    assert "parse_response" in source, "kombu no longer reads BRPOP through client.parse_response"
    assert isinstance(kombu_redis.Channel.sep, str)


def test_kombu_qos_keeps_what_it_delivered_and_names_its_unacked_index():
    """runtime/broker.QoS clears ``_delivered``; runtime/liveness refreshes ``unacked_index_key``."""
    from kombu.transport import redis as kombu_redis

    assert params(kombu_redis.QoS.restore_unacked) == ["self", "client"]
    assert params(kombu_redis.QoS.ack) == ["self", "delivery_tag"]
    assert "_delivered" in inspect.getsource(kombu_redis.QoS.__init__) or \
        "_delivered" in inspect.getsource(kombu_redis.QoS)
    assert "unacked_index_key" in vars(kombu_redis.QoS)  # a (cached) property of the QoS


def test_kombu_reads_the_unacked_restore_interval_transport_option():
    """runtime/app sets ``unacked_restore_interval`` (the sweep every 5 s x 2); older kombu ignores
    it and sweeps every 100 s."""
    from kombu.transport import redis as kombu_redis

    assert isinstance(kombu_redis.Channel.unacked_restore_interval, int)
    assert "unacked_restore_interval" in kombu_redis.Channel.from_transport_options  # read from the options
    assert "unacked_restore_interval" in inspect.getsource(kombu_redis.Transport)  # the sweep uses it


def test_the_transport_aliases_are_a_mapping_of_scheme_to_class_path():
    from kombu.transport import TRANSPORT_ALIASES

    assert isinstance(TRANSPORT_ALIASES, dict) and ":" in TRANSPORT_ALIASES["redis"]


def test_celery_worker_state_holds_the_reserved_and_active_requests():
    """runtime/liveness reads the messages this process holds from celery.worker.state."""
    from celery.worker import state

    assert hasattr(state.reserved_requests, "__iter__") and hasattr(state.active_requests, "__iter__")
    assert hasattr(state.reserved_requests, "__len__")


@pytest.mark.parametrize("hook, arguments", [("on_decode_error", ["self", "message", "exc"]),
                                            ("on_unknown_message", ["self", "body", "message"]),
                                            ("on_unknown_task", ["self", "body", "message", "exc"]),
                                            ("on_invalid_task", ["self", "body", "message", "exc"])])
def test_celery_consumer_hooks_keep_their_arguments(hook, arguments):
    """runtime/broker.Consumer puts what these hooks reject on the dead-letter list."""
    from celery.worker.consumer import Consumer

    assert params(getattr(Consumer, hook)) == arguments
    assert hasattr(Consumer, "app") or "app" in params(Consumer.__init__)


def test_celery_app_keeps_its_pool_backend_cache_and_lazy_amqp():
    """runtime/app._drop_connections forgets them when the broker URL changes in one process."""
    from celery import Celery

    app = Celery("contract")
    assert hasattr(app, "_pool") and hasattr(app, "_backend_cache") and hasattr(app, "_local")
    assert "amqp" in type(app).__dict__  # a cached property: popping it from __dict__ resets it
    assert isinstance(app.steps["consumer"], set)  # the Liveness consumer step is added to it


def test_celery_task_apply_takes_headers():
    """`pelbiot-jobs run JOB --local` passes the job's name as a header to Task.apply."""
    from celery import Task

    assert "headers" in params(Task.apply)


def test_redbeat_scheduler_lock_and_tick_as_beat_overrides_them():
    """runtime/beat.RedBeatScheduler re-takes the lock itself (``_take_lock``) with RedBeat's own
    extend script, and rides out an outage around ``tick``."""
    from redbeat import schedulers

    assert params(schedulers.RedBeatScheduler.tick) == ["self", "min", "kwargs"]
    assert isinstance(schedulers.LUA_EXTEND_TO_SCRIPT, str) and "pexpire" in schedulers.LUA_EXTEND_TO_SCRIPT.lower()
    assert params(schedulers.get_redis) == ["app"]
    assert hasattr(schedulers.RedBeatScheduler, "lock_timeout") and hasattr(schedulers.RedBeatScheduler, "setup_schedule")
    assert "self.lock_key" in inspect.getsource(schedulers.RedBeatScheduler.__init__)
    assert "schedule_key" in inspect.getsource(schedulers.RedBeatConfig.__init__)
    assert params(schedulers.RedBeatScheduler.apply_async)[:3] == ["self", "entry", "producer"]


def test_redbeat_stores_an_entrys_last_run_in_its_meta_as_status_reads_it():
    """jobs/service.beat_last_run reads ``meta`` of each entry's hash: RedBeat's JSON encoding of a
    datetime as {"__type__": "datetime", "year": ..., "timezone": ...}."""
    import datetime as dt
    import json

    from redbeat.decoder import RedBeatJSONEncoder

    from pelbiot_jobs.jobs.service import _redbeat_time

    when = dt.datetime(2026, 12, 7, 1, 2, 3, tzinfo=dt.timezone.utc)
    encoded = json.loads(json.dumps({"last_run_at": when}, cls=RedBeatJSONEncoder))["last_run_at"]
    assert encoded["__type__"] == "datetime"
    assert _redbeat_time(encoded) == dt.datetime(2026, 12, 7, 1, 2, 3)
    from redbeat import schedulers

    assert "meta" in inspect.getsource(schedulers.RedBeatSchedulerEntry.save)


def test_the_pins_hold_the_versions_this_file_was_written_against():
    """pyproject.toml pins kombu, Celery and RedBeat to the minor versions tested; the installed
    ones are within them."""
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    deps = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {d.split(">=")[0].split("[")[0]: d for d in deps}
    for name in ("kombu", "celery", "celery-redbeat"):
        spec = pins[name]
        low, high = spec.split(">=")[1].split(",<")
        installed = tuple(int(x) for x in version(name).split(".")[:2])
        assert tuple(int(x) for x in low.split(".")[:2]) <= installed < tuple(int(x) for x in high.split(".")[:2]), \
            (name, spec, version(name))
        assert len(high.split(".")) >= 2, f"{name}: pin the minor version ({spec})"
