"""The chaos run: `make chaos` (python -m tests.faults.chaos [--minutes 10] [--seed N]).

A private Redis (append-only, fsync always) and a private MariaDB; two workers on host names of
their own, a maintenance worker, two beats; a schedule of frequent jobs (a 2 s tick, a 20 s slow
job, a 15 s e-mail) and a sender that sends a task every second, each of its own key. Every
``--every`` seconds (default 30) one fault of six kinds, drawn with ``--seed``: worker kill -9
(a busy worker when one is busy: its task is in flight), pool child kill -9 (of a running task
when there is one), beat kill -9 (the one holding the lock), Redis kill -9, MariaDB kill -9,
worker SIGSTOP for 20-45 s. What was killed is started again after a few seconds.

Then the faults stop, everything is up, and the run waits for the work to settle. From the ops DB
and the SMTP server it counts: **lost** (a task the sender published, acknowledged by Redis, that
never ended), **duplicated** (a key whose work ended twice; a beat slot sent twice), **stuck** (a
run still STARTED), **e-mail twice** (a Message-ID received more than once; the same Message-ID
is what lets a mail client show it once) and **e-mail lost**. It prints a table and a JSON line,
and exits 1 if any of lost, duplicated, stuck or e-mail lost is not 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import func, select

from pelbiot_jobs.db import migrate
from pelbiot_jobs.db.engine import dispose_all, engine_for
from pelbiot_jobs.db.ops_models import job_runs
from pelbiot_jobs.lib.paths import SHIPPED_SCHEDULES
from tests.conftest import PrivateMariaDB, PrivateRedis, free_port
from tests.faults.conftest import Stack, stack_env
from tests.faults.fault_tasks import fault_log
from tests.helpers import smtp_server

KINDS = ("worker kill -9", "pool child kill -9", "beat kill -9", "redis kill -9", "mariadb kill -9", "worker SIGSTOP")
SCHEDULE = """jobs:
  chaos.tick:
    task: faults.work
    every: 2s
    kwargs: {key: chaos-tick, seconds: 0.3}
  chaos.slow:
    task: faults.work
    every: 20s
    queue: maintenance
    kwargs: {key: chaos-slow, seconds: 8}
  chaos.mail:
    task: faults.mail
    every: 15s
    queue: reports
    kwargs: {key: chaos-mail}
"""


class Chaos:
    def __init__(self, tmp: Path, seed: int):
        self.tmp, self.rng = tmp, random.Random(seed)
        self.redis = PrivateRedis(tmp / "redis")
        (tmp / "redis").mkdir()
        self.redis.aof = True
        self.redis.start()
        self.mariadb = PrivateMariaDB()
        self.mariadb.start()
        self.mariadb.execute("CREATE DATABASE ops", "CREATE DATABASE app")
        migrate.upgrade(self.mariadb.url("ops"))
        self.smtp_port = free_port()
        self.smtp, self.inbox = smtp_server(self.smtp_port)
        schedules = tmp / "schedules"
        shutil.copytree(SHIPPED_SCHEDULES, schedules)
        (schedules / "beat.yaml").write_text(SCHEDULE)
        dbs = {"ops": self.mariadb.url("ops"), "app": self.mariadb.url("app")}
        env = stack_env(dbs, self.redis, tmp, PELBIOT_SCHEDULES_DIR=str(schedules), PELBIOT_LOG_LEVEL="WARNING",
                        PELBIOT_SMTP_HOST="127.0.0.1", PELBIOT_SMTP_PORT=str(self.smtp_port),
                        PELBIOT_SMTP_STARTTLS="false", PELBIOT_MAIL_TO="ops@example.com")
        self.stack = Stack(env, tmp, self.redis)
        self.workers: dict[str, tuple] = {}  # node -> (args, process)
        self.beats: dict[str, object] = {}
        self.sent: dict[str, str] = {}  # key -> task id, for what Redis acknowledged
        self.faults: list[tuple[float, str, str]] = []
        self.stop_sending = threading.Event()

    # --- processes ------------------------------------------------------------------------------
    def start_worker(self, node: str, queues: str, host: str) -> None:
        args = ("-c", "2", "-n", f"{node}@%h", "-Q", queues)
        proc = self.stack.start("worker", *args, name=node, env={"PELBIOT_HOSTNAME": host})
        self.workers[node] = (queues, host, proc)

    def start_beat(self, name: str) -> None:
        self.beats[name] = self.stack.start("beat", name=name)

    def start_all(self) -> None:
        self.start_worker("w1", "sampling,reports", "chaos-a")
        self.start_worker("w2", "sampling,reports", "chaos-b")
        self.start_worker("m1", "maintenance", "chaos-m")
        self.start_beat("beat1")
        time.sleep(3)
        self.start_beat("beat2")

    def revive(self) -> None:
        """Start again whatever is not running (a killed worker or beat)."""
        for node, (queues, host, proc) in list(self.workers.items()):
            if proc.poll() is not None:
                self.start_worker(node, queues, host)
        for name, proc in list(self.beats.items()):
            if proc.poll() is not None:
                self.start_beat(name)

    # --- the sender -----------------------------------------------------------------------------
    def send_loop(self) -> None:
        n = 0
        while not self.stop_sending.is_set():
            key = f"chaos-{n:05d}"
            seconds = round(self.rng.uniform(0.2, 4.0), 1)
            try:
                self.sent[key] = self.stack.send("faults.work", key=key, seconds=seconds)
            except Exception:
                pass  # the broker is down: not published, so not counted
            n += 1
            self.stop_sending.wait(1.0)

    # --- faults ---------------------------------------------------------------------------------
    def children(self) -> dict[str, list[int]]:
        """Node -> pids of its pool children."""
        out = {}
        for node, (_q, _h, proc) in self.workers.items():
            if proc.poll() is None:
                try:
                    out[node] = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
                except psutil.Error:
                    out[node] = []
        return out

    def running_nodes(self) -> list[str]:
        """Nodes whose heartbeat lists a running task."""
        nodes = []
        for raw in self.stack.redis.mget(self.stack.redis.keys("pelbiot:worker:*") or ["-"]):
            try:
                record = json.loads(raw) if raw else {}
            except ValueError:
                continue
            if record.get("active"):
                nodes.append(record["node"].split("@")[0])
        return nodes

    def fault(self, kind: str) -> str:
        rng = self.rng
        if kind in ("worker kill -9", "pool child kill -9", "worker SIGSTOP"):
            try:
                busy = [n for n in self.running_nodes() if n in self.workers]
            except Exception:
                busy = []
            node = rng.choice(busy) if busy and rng.random() < 0.8 else rng.choice(sorted(self.workers))
            proc = self.workers[node][2]
            if proc.poll() is not None:
                return f"{node} (not running)"
            if kind == "worker kill -9":
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                time.sleep(rng.uniform(2, 6))
                self.revive()
                return f"{node}{' (busy)' if node in busy else ''}"
            if kind == "pool child kill -9":
                children = self.children().get(node) or []
                if not children:
                    return f"{node} (no pool child)"
                os.kill(rng.choice(children), signal.SIGKILL)
                return f"{node}{' (busy)' if node in busy else ''}"
            pause = rng.uniform(20, 45)
            os.killpg(proc.pid, signal.SIGSTOP)
            time.sleep(pause)
            os.killpg(proc.pid, signal.SIGCONT)
            return f"{node}{' (busy)' if node in busy else ''} for {pause:.0f} s"
        if kind == "beat kill -9":
            alive = sorted(n for n, p in self.beats.items() if p.poll() is None)
            if not alive:
                return "no beat running"
            name = rng.choice(alive)  # the lock's token does not say which beat holds it
            os.killpg(self.beats[name].pid, signal.SIGKILL)
            self.beats[name].wait(10)
            time.sleep(rng.uniform(2, 6))
            self.revive()
            return name
        if kind == "redis kill -9":
            self.redis.kill()
            outage = rng.uniform(5, 15)
            time.sleep(outage)
            self.redis.start()
            return f"down {outage:.0f} s"
        self.mariadb.process.kill()
        self.mariadb.process.wait(30)
        outage = rng.uniform(5, 10)
        time.sleep(outage)
        self.mariadb.start()
        return f"down {outage:.0f} s"

    # --- the counts -----------------------------------------------------------------------------
    def counts(self) -> dict:
        ops = engine_for(self.stack.settings.ops_db_url)
        with ops.connect() as conn:
            ends = dict(conn.execute(select(fault_log.c.key, func.count()).where(fault_log.c.event == "end")
                                     .group_by(fault_log.c.key)).all())
            stuck = conn.execute(select(func.count()).select_from(job_runs)
                                 .where(job_runs.c.state == "STARTED")).scalar()
            slots = conn.execute(select(job_runs.c.job, job_runs.c.scheduled_at, func.count(func.distinct(
                job_runs.c.task_id))).where(job_runs.c.job.isnot(None), job_runs.c.trigger.in_(("beat", "late")))
                .group_by(job_runs.c.job, job_runs.c.scheduled_at)).all()
            mail_runs = conn.execute(select(func.count()).select_from(job_runs).where(
                job_runs.c.job == "chaos.mail", job_runs.c.state == "SUCCESS")).scalar()
            states = dict(conn.execute(select(job_runs.c.state, func.count()).group_by(job_runs.c.state)).all())
        lost = sorted(k for k in self.sent if ends.get(k, 0) == 0)
        doubled_keys = sorted(k for k in self.sent if ends.get(k, 0) > 1)
        doubled_slots = [(j, str(s)) for j, s, n in slots if n > 1]
        ids = [m["Message-ID"] for m in self.inbox.messages]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        return {"sent": len(self.sent), "ended": sum(1 for k in self.sent if ends.get(k)), "lost": len(lost),
                "lost_keys": lost[:20], "duplicated": len(doubled_keys) + len(doubled_slots),
                "duplicated_keys": doubled_keys[:20], "duplicated_slots": doubled_slots[:20], "stuck": stuck,
                "mail_runs": mail_runs, "mails": len(ids), "mail_ids": len(set(ids)), "email_twice": len(twice),
                "email_lost": max(0, mail_runs - len(set(ids))), "states": states,
                "beat_slots": len(slots)}

    def detail(self, keys: list[str]) -> dict:
        """For a key lost or done twice: its events (start, end; task id, pid, when) and its runs."""
        if not keys:
            return {}
        ops = engine_for(self.stack.settings.ops_db_url)
        out = {}
        with ops.connect() as conn:
            for key in keys[:5]:
                events = [f"{r.event} {r.task_id} pid {r.pid} {r.at:%H:%M:%S.%f}" for r in conn.execute(
                    select(fault_log).where(fault_log.c.key == key).order_by(fault_log.c.id))]
                runs = [f"{r.task_id}#{r.attempt} {r.state} {r.worker} {r.started_at:%H:%M:%S}" for r in conn.execute(
                    select(job_runs).where(job_runs.c.task_id == self.sent.get(key)))]
                out[key] = {"events": events, "runs": runs}
        return out

    def settle(self, timeout: float = 240) -> None:
        """Wait until no run is STARTED and the sender's tasks have ended (or the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.revive()
            try:
                c = self.counts()
                if c["stuck"] == 0 and c["lost"] == 0:
                    return
            except Exception:
                pass
            time.sleep(5)

    def close(self) -> None:
        self.stack.stop_all()
        dispose_all()
        self.smtp.stop()
        self.redis.kill()
        self.mariadb.remove()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between two faults")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pelbiot-chaos-"))
    chaos = Chaos(tmp, args.seed)
    started = time.monotonic()
    try:
        chaos.start_all()
        chaos.stack.wait(lambda: len(chaos.stack.redis.keys("pelbiot:worker:*")) >= 3, 90, "the three workers")
        sender = threading.Thread(target=chaos.send_loop, daemon=True)
        sender.start()
        end = started + args.minutes * 60
        kinds: list[str] = []
        for _ in range(int(args.minutes * 60 // args.every) // len(KINDS) + 1):  # every kind, in rounds
            round_ = list(KINDS)
            chaos.rng.shuffle(round_)
            kinds = round_ + kinds
        while time.monotonic() + args.every < end:
            chaos.stop_sending.wait(chaos.rng.uniform(0.5, 1.5) * args.every * 0.5)
            kind = kinds.pop()
            at = time.monotonic() - started
            what = chaos.fault(kind)
            chaos.faults.append((at, kind, what))
            print(f"{at:6.0f} s  {kind:20} {what}", flush=True)
            chaos.revive()
            chaos.stop_sending.wait(args.every * 0.5)
        chaos.stop_sending.set()
        sender.join(5)
        chaos.revive()
        for beat in chaos.beats.values():  # nothing new starts while the work settles
            beat.terminate()
        for beat in chaos.beats.values():
            beat.wait(30)
        chaos.beats.clear()
        chaos.settle()
        time.sleep(5)
        counts = chaos.counts()
        counts["detail"] = chaos.detail(counts["duplicated_keys"] + counts["lost_keys"])
    finally:
        chaos.close()
        shutil.rmtree(tmp, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    kinds_seen = {k: sum(1 for f in chaos.faults if f[1] == k) for k in KINDS}
    print(f"\nchaos run: {args.minutes:g} minutes of faults (seed {args.seed}), {len(chaos.faults)} faults "
          f"({', '.join(f'{n} {k}' for k, n in kinds_seen.items())}), {minutes:.1f} minutes in all")
    print(f"  sent by the sender   {counts['sent']} (ended: {counts['ended']})")
    print(f"  lost                 {counts['lost']}  {counts['lost_keys'] or ''}")
    print(f"  duplicated           {counts['duplicated']}  {counts['duplicated_keys'] or ''} "
          f"{counts['duplicated_slots'] or ''}")
    print(f"  stuck (STARTED)      {counts['stuck']}")
    print(f"  e-mails              {counts['mails']} received, {counts['mail_ids']} Message-IDs, "
          f"{counts['mail_runs']} mail runs succeeded; twice: {counts['email_twice']}, lost: {counts['email_lost']}")
    print(f"  beat slots           {counts['beat_slots']}; run states {counts['states']}")
    for key, what in counts["detail"].items():
        print(f"  {key}: {'; '.join(what['events'])} | runs: {'; '.join(what['runs'])}")
    print(json.dumps({"seed": args.seed, "minutes": args.minutes, "faults": len(chaos.faults), "kinds": kinds_seen,
                      **counts, "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
                     default=str))
    bad = counts["lost"] or counts["duplicated"] or counts["stuck"] or counts["email_lost"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
