"""health.score, alerts.evaluate and alerts.notify: thin shells over health/service.py."""

from __future__ import annotations

from ..runtime.app import app
from ..runtime.params import Name, PositiveInt
from ..runtime.headers import publishing
from . import spec  # noqa: F401 (registers its schedule file's checker)


@app.task(name="health.score", bind=True, soft_time_limit=50, time_limit=60)
def health_score_task(self) -> dict:
    """Score every host and the installation (0-100) from the last window of metrics."""
    from . import service

    return service.score(self.settings)


@app.task(name="alerts.evaluate", bind=True, exclusive=True, soft_time_limit=50, time_limit=60)
def alerts_evaluate(self) -> dict:
    """Step every alert rule; open and resolve incidents; queue one notification of what changed."""
    from . import service

    result, to_send, deliveries = service.evaluate(self.settings)
    for notification_id in to_send:
        with publishing("dispatch"):
            alerts_notify.apply_async(args=[notification_id])
    for receiver, notification_id in deliveries.items():  # one task each: one that is down holds up no other
        with publishing("dispatch"):
            alerts_deliver.apply_async(args=[notification_id, receiver])
    return result


@app.task(name="alerts.notify", bind=True, max_retries=6, backoff_max=600.0, soft_time_limit=100, time_limit=120,
          params={"notification_id": PositiveInt()})
def alerts_notify(self, notification_id: int) -> dict:
    """Send one queued notification; SMTP trouble is retried with backoff, each attempt logged."""
    from . import service

    return service.notify(self.settings, notification_id, self.request.id,
                          last_attempt=self.request.retries >= self.max_retries)


@app.task(name="alerts.deliver", bind=True, max_retries=8, backoff_max=600.0, soft_time_limit=50, time_limit=60,
          params={"notification_id": PositiveInt(), "receiver": Name(40)})
def alerts_deliver(self, notification_id: int, receiver: str) -> dict:
    """Send one queued notification to one Apprise receiver (chat, webhook); retried with backoff."""
    from . import service

    return service.deliver(self.settings, notification_id, receiver, self.request.id)
