"""A Maven fetch's moving line: artifacts and bytes downloaded so far.

`mvn -B` (batch mode) logs each transfer from a repository as

    [INFO] Downloading from central: https://repo.../x-1.0.jar
    [INFO] Downloaded from central: https://repo.../x-1.0.jar (4.9 kB at 2.4 kB/s)

so the fetch shows how many files arrived, how many bytes and which file moves now. The total
is unknown before Maven resolves the tree, so the line counts up. Maven's whole log is kept
and written out when it fails (the `-q` the callers used before hid the transfers and left
minutes of silence).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import IO, TextIO

from hack.progress import render

DOWNLOADED = re.compile(r"Downloaded from [^:]+: (\S+) \(([\d.]+) (B|kB|KB|MB|GB) at")
DOWNLOADING = re.compile(r"Downloading from [^:]+: (\S+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
UNITS = {"B": 1, "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


@dataclasses.dataclass
class Transfers:
    files: int = 0
    bytes: int = 0
    log: list[str] = dataclasses.field(default_factory=list)

    def feed(self, line: str) -> str | None:
        """Take one line of Maven's log; answers the file it names when it is a transfer."""
        line = ANSI.sub("", line).rstrip("\n")
        self.log.append(line)
        if found := DOWNLOADED.search(line):
            self.files += 1
            self.bytes += int(float(found.group(2)) * UNITS[found.group(3)])
            return found.group(1).rsplit("/", 1)[-1]
        if found := DOWNLOADING.search(line):
            return found.group(1).rsplit("/", 1)[-1]
        return None


def size(n: int) -> str:
    for unit, scale in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def follow(lines: Iterable[str], step: render.Step) -> Transfers:
    transfers = Transfers()
    for line in lines:
        name = transfers.feed(line)
        if name is not None:
            step.advance(transfers.files, None, f"({size(transfers.bytes)}) {name}", "files")
    return transfers


def run(argv: Sequence[str], step: render.Step, *, log: IO[str] | None = None) -> int:
    """Run `mvn -B ...` with its moving line; on failure Maven's log goes to `log`."""
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    with proc:
        transfers = follow(proc.stdout, step)
    if proc.returncode != 0 and log is not None:
        log.write("\n".join(transfers.log) + "\n")
        log.flush()
    return proc.returncode


def fetch(argv: Sequence[str], title: str, out: TextIO | None = None) -> None:
    """Run a Maven fetch as one titled task with its moving line on `out` (stderr: the
    callers' stdout carries their result); CalledProcessError when Maven fails."""
    stream = out if out is not None else sys.stderr
    steps = render.Steps(total=0, renderer=render.choose(stream))
    code = 0
    with contextlib.suppress(subprocess.CalledProcessError), steps.step(title) as step:
        code = run(argv, step, log=stream)
        if code != 0:
            raise subprocess.CalledProcessError(code, list(argv))
    if code != 0:
        raise subprocess.CalledProcessError(code, list(argv))
