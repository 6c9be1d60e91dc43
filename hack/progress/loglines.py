"""A command's moving line from the lines of its log: each line that `pick` recognises moves
the count and names what moves now (mmdebstrap's `I:` phases, pip's `Collecting` lines,
`go get`'s downloads); the whole log is kept and written out only when the command fails, so
a success stays one line and a failure keeps its reason.

    log = loglines.run(["pip", "install", ...], step, pick=pip_package, unit="packages")
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO

from hack.progress import render

Pick = Callable[[str], str | None]
"""A log line -> what it says is moving now (None: the line does not count)."""


@dataclasses.dataclass
class Log:
    """What a command's log said so far: the counted lines and every line."""

    counted: int = 0
    lines: list[str] = dataclasses.field(default_factory=list)


def follow(
    lines: Iterable[str], step: render.Step, pick: Pick, unit: str, total: int | None = None
) -> Log:
    """Feed `lines` through `pick`, moving the step's line at each counted one."""
    log = Log()
    for raw in lines:
        line = raw.rstrip("\n")
        log.lines.append(line)
        detail = pick(line)
        if detail is not None:
            log.counted += 1
            step.advance(log.counted, total, detail, unit)
    return log


def run(
    argv: Sequence[str],
    step: render.Step,
    pick: Pick,
    unit: str,
    *,
    total: int | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    failure_log: IO[str] | None = None,
) -> Log:
    """Run `argv` (stdout and stderr together) with its moving line; when it fails, its log
    goes to `failure_log` (stderr) and CalledProcessError is raised."""
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    with proc:
        log = follow(proc.stdout, step, pick, unit, total)
    if proc.returncode != 0:
        out = failure_log if failure_log is not None else sys.stderr
        out.write("\n".join(log.lines) + "\n")
        out.flush()
        raise subprocess.CalledProcessError(proc.returncode, list(argv))
    return log
