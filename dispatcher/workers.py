"""Several dispatcher processes sharing one port: the supervisor of `--workers N`.

Python runs one core per process; N worker processes bind the ingress and probes ports with
SO_REUSEPORT so the kernel spreads connections over them. Each worker is a complete
dispatcher (own informer, own routing table, own metrics port `METRICS_PROMETHEUS_PORT + i`);
only worker 0 writes channel status. The supervisor forwards SIGTERM/SIGINT to every worker
(each drains on its own) and, when one worker dies unexpectedly, stops the others and exits 1
so Kubernetes restarts the pod visibly instead of serving with fewer cores.
"""

from __future__ import annotations

import logging
import math
import os
import pathlib
import signal
import subprocess
import sys
import types

logger = logging.getLogger(__name__)

INDEX_VARIABLE = "KEVENTS_DISPATCHER_WORKER_INDEX"
CGROUP = pathlib.Path("/sys/fs/cgroup")


def cpu_limit(cgroup: pathlib.Path = CGROUP) -> int | None:
    """The container's CPU limit in whole cores, rounded up (cgroup v2 `cpu.max`, else v1
    `cpu.cfs_quota_us`/`cpu.cfs_period_us`); None without a limit."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if quota in ("max", "-1") or not quota.lstrip("-").isdigit() or not period.isdigit():
        return None
    if int(quota) <= 0 or int(period) <= 0:
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def default_count() -> int:
    """Worker processes when KEVENTS_DISPATCHER_WORKERS is not set: one per core of the pod's
    CPU limit (a Python process uses one core), 1 without a limit (cores are then shared with
    other pods and one process is the predictable choice)."""
    return min(64, cpu_limit() or 1)


def worker_index() -> int | None:
    """This process's index when started by the supervisor, else None."""
    value = os.environ.get(INDEX_VARIABLE)
    return int(value) if value is not None and value.isdigit() else None


def supervise(count: int) -> int:
    """Run `count` worker processes until they exit; the exit code of the whole."""
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, frame: types.FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(count):
        env = {**os.environ, INDEX_VARIABLE: str(index)}
        command = [sys.executable, "-m", "dispatcher", "--workers", str(count)]
        children.append(subprocess.Popen(command, env=env))
    logger.info("Started %d dispatcher worker processes.", count)
    codes: dict[int, int] = {}
    by_pid = {child.pid: index for index, child in enumerate(children)}
    while len(codes) < count:
        pid, status = os.wait()
        if pid not in by_pid:
            continue
        index = by_pid[pid]
        code = os.waitstatus_to_exitcode(status)
        codes[index] = code
        children[index].returncode = code
        if not stopping:
            logger.error(
                "Worker %d exited with code %d while serving; stopping the others.", index, code
            )
            stopping = True
            codes[index] = code or 1
            forward(signal.SIGTERM, None)
    failed = {i: c for i, c in codes.items() if c != 0}
    if failed:
        logger.error("Worker processes failed: %s.", failed)
        return 1
    logger.info("All %d worker processes stopped cleanly.", count)
    return 0
