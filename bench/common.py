"""What every benchmark measures the same way: percentiles, timed calls, peak memory."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def timed(fn, n: int, concurrency: int) -> tuple[list[float], float]:
    """Latencies (ms) of n sequential calls, then throughput of n calls over `concurrency`
    workers (0 skips the throughput run)."""
    latencies = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        latencies.append((time.perf_counter() - t) * 1000)
    if concurrency <= 0:
        return latencies, 0.0
    todo = list(range(n))

    async def worker():
        while todo:
            todo.pop()
            await fn()
    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, n / (time.perf_counter() - t)


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in seconds, from /proc."""
    import os

    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def local_tcp_ports(pid: int) -> set[int]:
    """Local ports of a process's TCP sockets (to tell which process a server sees)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().as_posix()
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    import os

    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:8]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def broker_pids(port: int) -> list[int]:
    """The RabbitMQ Erlang VM (beam.smp) that listens on `port`, to count what it costs."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "beam.smp":
                    continue
            except OSError:
                continue
            if port in local_tcp_ports(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def cpu_seconds_or_zero(pid: int) -> float:
    """`cpu_seconds`, or 0 for a process that is gone."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def speed_probe(rounds: int = 5) -> float:
    """CPU milliseconds a fixed piece of pure-Python work takes on this machine right now
    (the median of `rounds`): a rough reading of its speed at the moment. The same code's
    CPU per ticket moved by 40 % between back-to-back pipeline runs here; printed beside
    it, a high reading marks a run to repeat before comparing figures."""
    import statistics
    import time

    def work() -> float:
        started = time.process_time()
        table: dict[str, int] = {}
        for i in range(60_000):
            key = f"k{i % 997}"
            table[key] = table.get(key, 0) + (i * 7) % 13
        sorted(table.items())
        return (time.process_time() - started) * 1000

    return statistics.median(work() for _ in range(rounds))
