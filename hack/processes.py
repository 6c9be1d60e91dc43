"""Start, identify and stop the cluster's processes.

A process is recorded with its pid *and* its start time (field 22 of /proc/PID/stat), so
`down` never signals an unrelated process that happens to reuse a recorded pid.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import resource
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
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    state = fields[0]
    if state == "Z":
        return None
    return int(fields[19])


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (which may hold spaces and ')')."""
    stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def family(pid: int, *, children: bool) -> list[int]:
    """`pid`, and with `children` its direct children too (a deployable's worker processes)."""
    pids = [pid]
    listed = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    if children and listed.exists():
        pids += [int(p) for p in listed.read_text().split()]
    return pids


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds `pid` used so far (with `children`: its direct children's
    added, which `getrusage` would count only once they are reaped)."""
    ticks = 0
    for each in family(pid, children=children):
        fields = _stat_fields(each)
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def rusage_cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (`RUSAGE_SELF`) or of its reaped children
    (`RUSAGE_CHILDREN`)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def rss_mib(pid: int, *, children: bool = False) -> float:
    """Resident memory of `pid` in MiB (VmRSS; with `children`: summed with its children's)."""
    total = 0.0
    for each in family(pid, children=children):
        for line in pathlib.Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
                break
        else:
            raise ValueError(f"no VmRSS for pid {each} (a zombie or a kernel thread)")
    return total


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
