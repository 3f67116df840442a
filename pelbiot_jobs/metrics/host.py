"""Host metrics from psutil: read raw counters (shell), turn two readings into metrics (pure).

CPU % comes from cpu_times deltas between two samples, not from psutil.cpu_percent(), whose
state lives in the process that called it last (a prefork pool has several).
"""

from __future__ import annotations

import os
import time

from .rates import Reading, counter_rates

#: File systems that are not disks worth watching.
SKIP_FSTYPES = frozenset({"tmpfs", "devtmpfs", "squashfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2",
                          "nsfs", "autofs", "devpts", "mqueue", "tracefs", "fusectl", "binfmt_misc"})
_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


def read_host() -> Reading:
    """One raw reading of this host (a few ms of CPU)."""
    import psutil

    counters: dict[str, float] = {}
    gauges: dict[str, float | None] = {}
    for i, times in enumerate(psutil.cpu_times(percpu=True)):
        busy = sum(getattr(times, f, 0.0) for f in _BUSY_FIELDS)
        counters[f"cpu.busy{{{i}}}"] = busy
        counters[f"cpu.total{{{i}}}"] = busy + times.idle + getattr(times, "iowait", 0.0)
    load1, load5, load15 = os.getloadavg()
    gauges.update({"host.load1": load1, "host.load5": load5, "host.load15": load15})
    mem = psutil.virtual_memory()
    gauges.update({"host.memory_percent": mem.percent, "host.memory_available_bytes": float(mem.available)})
    swap = psutil.swap_memory()
    gauges["host.swap_percent"] = swap.percent if swap.total else None
    for part in psutil.disk_partitions(all=False):
        if part.fstype in SKIP_FSTYPES:
            continue
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        gauges[f"host.disk_used_percent{{{part.mountpoint}}}"] = usage.percent
    io = psutil.disk_io_counters()
    if io is not None:
        counters["disk.read_bytes"] = io.read_bytes
        counters["disk.write_bytes"] = io.write_bytes
    net = psutil.net_io_counters()
    counters["net.bytes_recv"] = net.bytes_recv
    counters["net.bytes_sent"] = net.bytes_sent
    gauges["host.process_count"] = float(len(psutil.pids()))
    gauges["worker.rss_bytes"] = float(psutil.Process().memory_info().rss)
    return Reading(ts=time.time(), counters=counters, gauges=gauges, uptime=time.time() - psutil.boot_time())


def host_metrics(prev: Reading | None, cur: Reading) -> dict[str, float | None]:
    """Metric values from two readings: gauges always, CPU % and byte rates when comparable."""
    out: dict[str, float | None] = dict(cur.gauges)
    rates = counter_rates(prev, cur)
    if rates is None:
        return out
    busy = total = 0.0
    cores = sorted({k[len("cpu.busy{"):-1] for k in cur.counters if k.startswith("cpu.busy{")}, key=int)
    for core in cores:
        b, t = rates.get(f"cpu.busy{{{core}}}"), rates.get(f"cpu.total{{{core}}}")
        if b is None or not t:
            continue
        out[f"host.cpu_percent{{{core}}}"] = round(100.0 * b / t, 2)
        busy, total = busy + b, total + t
    if total:
        out["host.cpu_percent"] = round(100.0 * busy / total, 2)
    for counter, metric in (("disk.read_bytes", "host.disk_read_bytes_per_s"),
                            ("disk.write_bytes", "host.disk_write_bytes_per_s"),
                            ("net.bytes_recv", "host.net_in_bytes_per_s"),
                            ("net.bytes_sent", "host.net_out_bytes_per_s")):
        if counter in rates:
            out[metric] = rates[counter]
    return out
