"""Tasks that exist only for the tests: succeed, fail, fail once transiently, run exclusively."""

import time

import redis

from pelbiot_jobs.runtime.app import app
from pelbiot_jobs.runtime.params import Float, Int

#: A secret the failing task leaks into its error; the job run must not show it.
LEAKED_SECRET = "smtp-Secret-42"


@app.task(name="testing.ok", params={"x": Int(-10**9, 10**9)})
def ok(x: int = 1) -> dict:
    return {"x": x}


@app.task(name="testing.fail")
def fail() -> None:
    raise ValueError(f"boom: login with {LEAKED_SECRET} refused")


@app.task(name="testing.flaky", bind=True, backoff_max=0.3, params={"failures": Int(0, 100)})
def flaky(self, failures: int = 1) -> dict:
    if self.request.retries < failures:
        raise redis.exceptions.ConnectionError("Error 111 connecting to cache:6379. Connection refused.")
    return {"attempts": self.request.retries + 1}


@app.task(name="testing.slow_exclusive", exclusive=True, soft_time_limit=50, time_limit=60,
          params={"seconds": Float(0, 55)})
def slow_exclusive(seconds: float = 2.0) -> dict:
    time.sleep(seconds)
    return {"slept": seconds}
