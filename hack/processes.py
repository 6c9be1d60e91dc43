"""Start, identify and stop the cluster's processes.

A process is recorded with its pid *and* its start time (field 22 of /proc/PID/stat), so
`down` never signals an unrelated process that happens to reuse a recorded pid.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Recorded:
    """A process we started: pid, its kernel start time and its log file."""

    name: str
    pid: int
    start_ticks: int
    log: str


def start_ticks(pid: int) -> int | None:
    """Kernel start time of `pid` in clock ticks, or None when no such process exists."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    state = fields[0]
    if state == "Z":
        return None
    return int(fields[19])


def uptime(rec: Recorded) -> float | None:
    """Seconds since the recorded process started, or None when it no longer runs."""
    if not alive(rec):
        return None
    boot = next(
        int(line.split()[1])
        for line in pathlib.Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return round(max(0.0, time.time() - boot - rec.start_ticks / os.sysconf("SC_CLK_TCK")), 1)


def alive(rec: Recorded) -> bool:
    """True when the recorded process still runs (same pid, same start time)."""
    return start_ticks(rec.pid) == rec.start_ticks


def spawn(
    name: str,
    argv: Sequence[str],
    log: pathlib.Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: pathlib.Path | None = None,
) -> Recorded:
    """Start `argv` in its own session with stdout and stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    ticks = start_ticks(proc.pid)
    if ticks is None:
        proc.wait()
        raise RuntimeError(f"{name} exited at once (exit code {proc.returncode})")
    return Recorded(name=name, pid=proc.pid, start_ticks=ticks, log=str(log))


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(rec: Recorded, *, grace: float = 10.0) -> None:
    """SIGTERM the process group of `rec`, then SIGKILL after `grace` seconds."""
    if not alive(rec):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(rec.pid)
        if not alive(rec):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(rec.pid, signal.SIGKILL)
    for _ in range(50):
        _reap(rec.pid)
        if not alive(rec):
            return
        time.sleep(0.1)


def tail(path: str, lines: int = 40) -> str:
    """The last `lines` lines of a log file (empty when it does not exist)."""
    try:
        text = pathlib.Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
