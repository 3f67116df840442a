"""Every Redis key prefix the runtime writes, in one place (the coordination Redis: the broker's
by default). A cache.yaml warmer may not write under any of them (cache/spec.RESERVED_KEY_PREFIXES)."""

#: A run that started (its lease, while its worker lives) and a run that finished (the done check).
STARTED = "pelbiot:started:"
DONE = "pelbiot:done:"
#: The lock of an exclusive task, and the lease of a run.
LOCK = "pelbiot:lock:"
RUN = "pelbiot:run:"
#: A live worker's heartbeat (which also says which host queue it consumes).
WORKER = "pelbiot:worker:"
#: Messages moved aside as dead letters, newest first.
DEAD_LETTERS = "pelbiot:deadletter"
#: How many job-run rows the ops DB refused (each kept in var/job-runs-rejected/ on its worker's host).
REJECTED_RUNS = "pelbiot:job-runs-rejected"
#: The ledger of messages sent and not yet taken (an entry each, and their index), and its sweep's lock.
SENT, SENT_INDEX, SENT_SWEEP_LOCK = "pelbiot:sent:", "pelbiot:sent", "pelbiot:lock:sent-sweep"
#: The answer of an API write sent with an Idempotency-Key.
IDEMPOTENCY = "pelbiot:idempotency:"
#: kombu's lists of one queue on a Redis broker: the queue's name, and one per priority step after the first.
QUEUE_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
#: RedBeat's entries (a hash per job: when beat last sent it) and its lock.
REDBEAT = "pelbiot:redbeat:"
#: What every key above starts with.
ALL = "pelbiot:"
