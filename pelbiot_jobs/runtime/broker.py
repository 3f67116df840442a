"""Messages that are not tasks are moved aside, not allowed to stop the worker.

Anyone who can write to the broker can put anything on a queue. Kombu's Redis transport decodes
each message inside the worker's event loop: one that is not JSON, or JSON that is not a kombu
message, raises there and the worker exits, leaving the backlog to expire. Here such a message is
pushed on a dead-letter list instead (``pelbiot:deadletter``, newest first, at most
``MAX_DEAD_LETTERS``), logged, and the worker goes on. Celery's own rejections (a body that does
not decode, an unknown task, an invalid message) land on the same list. ``pelbiot-jobs status``
shows the count and the newest ones.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time

from celery.worker.consumer import Consumer as _Consumer
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str

from .heartbeats import DEAD_LETTERS, MAX_DEAD_LETTERS

log = logging.getLogger(__name__)

#: Bytes of a dead message kept (the rest is cut, the length recorded).
MAX_KEPT = 4096


def problem_of(item) -> str | None:
    """Why a raw queue item is not a kombu message, or None when it is one."""
    try:
        payload = json.loads(bytes_to_str(item))
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not JSON ({type(exc).__name__})"
    if not isinstance(payload, dict):
        return "not a message (JSON but not an object)"
    props = payload.get("properties")
    if not isinstance(props, dict) or not props.get("delivery_tag") or not isinstance(props.get("delivery_info"), dict):
        return "not a message (no properties, delivery_tag or delivery_info)"
    body = payload.get("body")
    if body and props.get("body_encoding") == "base64":
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return "not a message (body is not valid base64)"
    return None


def dead_letter(client, queue: str, raw, reason: str) -> None:
    """Keep ``raw`` on the dead-letter list with why and where it came from; log it."""
    raw = raw if isinstance(raw, (bytes, bytearray)) else str(raw).encode("utf-8", "replace")
    record = {"at": time.time(), "queue": queue, "reason": reason, "size": len(raw),
              "message": bytes(raw[:MAX_KEPT]).decode("utf-8", "replace")}
    log.error("moved a message from queue %s to %s: %s", queue, DEAD_LETTERS, reason)
    with client.pipeline() as pipe:
        pipe.lpush(DEAD_LETTERS, json.dumps(record))
        pipe.ltrim(DEAD_LETTERS, 0, MAX_DEAD_LETTERS - 1)
        pipe.execute()


class QoS(kombu_redis.QoS):
    """Kombu's ack emulation, surviving a connection lost under tasks in flight.

    When the connection drops, kombu closes the channel and tries to put back every message the
    worker holds; with the broker gone this raises inside Celery's reconnect path and the worker
    exits ("Unrecoverable error"). Here what cannot be put back stays in the broker's unacked
    set: the live worker keeps refreshing it while the task runs (liveness.py), the task acks it
    after the reconnect or, if that ack fails too, the restore sweep hands it out again after the
    visibility timeout and the run guard drops the copy (the run is recorded as ended).
    """

    def restore_unacked(self, client=None):
        try:
            return super().restore_unacked(client)
        except Exception as exc:
            log.warning("could not put back %d held message(s) (%s); they come back after the visibility "
                        "timeout if their tasks do not ack them", len(self._delivered), type(exc).__name__)
            self._delivered.clear()
            return []

    def ack(self, delivery_tag):
        try:
            super().ack(delivery_tag)
        except Exception as exc:
            log.warning("could not ack a message after losing the broker (%s); it comes back after the "
                        "visibility timeout and is dropped as already done", type(exc).__name__)
            self._delivered.pop(delivery_tag, None)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def _brpop_read(self, **options):
        client = self.client
        original = client.parse_response

        def checked(*args, **kwargs):
            reply = original(*args, **kwargs)
            if reply:
                dest, item = reply
                reason = problem_of(item)
                if reason is not None:
                    queue = bytes_to_str(dest).rsplit(self.sep, 1)[0]
                    try:
                        dead_letter(client, queue, item, reason)
                    except Exception:  # the broker went away just now: the message is lost with it
                        log.exception("could not keep a bad message from %s", queue)
                    return None  # the transport sees an empty read and polls again
            return reply

        client.parse_response = checked
        try:
            return super()._brpop_read(**options)
        finally:
            del client.parse_response


class Transport(kombu_redis.Transport):
    Channel = Channel


class Consumer(_Consumer):
    """Celery's consumer, keeping what it rejects on the dead-letter list."""

    def _keep(self, message, reason: str) -> None:
        from ..lib import redis_clients

        try:
            delivery = getattr(message, "delivery_info", None) or {}
            dead_letter(redis_clients.coordination(self.app.pelbiot_settings), delivery.get("routing_key") or "?",
                        getattr(message, "body", b""), reason)
        except Exception:
            log.exception("could not keep a rejected message")

    def on_decode_error(self, message, exc):
        self._keep(message, f"body does not decode ({type(exc).__name__})")
        return super().on_decode_error(message, exc)

    def on_unknown_message(self, body, message):
        self._keep(message, "not a task message")
        return super().on_unknown_message(body, message)

    def on_unknown_task(self, body, message, exc):
        self._keep(message, f"unknown task ({exc})"[:300])
        return super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body, message, exc):
        self._keep(message, f"invalid task message ({type(exc).__name__})")
        return super().on_invalid_task(body, message, exc)


def install() -> None:
    """Make ``redis://`` and ``rediss://`` URLs use this transport in this process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = "pelbiot_jobs.runtime.broker:Transport"
