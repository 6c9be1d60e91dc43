"""A Go build's moving line: packages compiled out of the total.

`go build -json -v` (Go >= 1.24) writes one JSON event per line on stdout: with `-v`, each
package it compiles is announced by a `build-output` event whose Output is the import path
and a newline; compiler messages are `build-output` events with other text, and a package
that fails ends with `build-fail`. The total is the number of packages `go list -deps`
names for the same targets (packages already in the build cache are not compiled again, so
a warm build jumps to the end).

    {"ImportPath":"internal/cpu","Action":"build-output","Output":"internal/cpu\\n"}
    {"ImportPath":"example.com/bad","Action":"build-output","Output":"# example.com/bad\\n"}
    {"ImportPath":"example.com/bad","Action":"build-fail"}
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import IO

from hack.progress import render


@dataclasses.dataclass
class Events:
    """What a stream of `go build -json -v` events said so far."""

    compiled: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    messages: list[str] = dataclasses.field(default_factory=list)
    """Compiler output and lines that are not events (go's own errors), in order."""

    def feed(self, line: str) -> str | None:
        """Take one line; answers the import path when it announces a compiled package."""
        try:
            event = json.loads(line)
        except ValueError:
            if line.strip():
                self.messages.append(line.rstrip("\n"))
            return None
        if not isinstance(event, dict):
            return None
        path, action = str(event.get("ImportPath", "")), event.get("Action")
        if action == "build-fail":
            self.failed.append(path)
        elif action == "build-output":
            output = str(event.get("Output", ""))
            if output == path + "\n":
                self.compiled.append(path)
                return path
            self.messages.append(output.rstrip("\n"))
        return None


def with_json(argv: Sequence[str]) -> list[str]:
    """`go build|install ARGS` with `-json -v` added after the subcommand."""
    argv = list(argv)
    for i, word in enumerate(argv):
        if word in ("build", "install"):
            return [*argv[: i + 1], "-json", "-v", *argv[i + 1 :]]
    raise ValueError(f"not a go build or go install command: {argv}")


def targets(argv: Sequence[str]) -> list[str]:
    """The package arguments of `go build|install [flags] PKG...` (flags taking a value are
    written `-flag=value` or are one of the few below)."""
    takes_value = {"-o", "-ldflags", "-gcflags", "-tags", "-p", "-mod", "-modfile", "-pkgdir",
                   "-asmflags", "-buildmode", "-compiler", "-overlay", "-pgo"}  # fmt: skip
    argv = list(argv)
    start = next(i for i, w in enumerate(argv) if w in ("build", "install")) + 1
    found, skip = [], False
    for word in argv[start:]:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in takes_value
        else:
            found.append(word)
    return found or ["."]


def count_deps(
    go: str, packages: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
) -> int | None:
    """How many packages `go list -deps` names (None when it cannot tell, e.g. pkg@version)."""
    if any("@" in p for p in packages):
        return None
    proc = subprocess.run(
        [go, "list", "-deps", *packages], cwd=cwd, env=dict(env) if env else None,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    return len([line for line in proc.stdout.splitlines() if line.strip()])


def follow(lines: Iterable[str], step: render.Step, total: int | None) -> Events:
    """Feed `lines` to an `Events`, moving the step's line at each compiled package."""
    events = Events()
    for line in lines:
        if line.startswith("go: downloading "):  # modules fetched before compiling starts
            step.advance(len(events.compiled), total, line[4:].strip(), "packages")
            continue
        path = events.feed(line)
        if path is not None:
            done = len(events.compiled)
            step.advance(min(done, total) if total else done, total, path, "packages")
    return events


def run(
    argv: Sequence[str],
    step: render.Step,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    messages: IO[str] | None = None,
) -> int:
    """Run `go build|install` with its moving line; go's messages (compile errors) are
    written to `messages` at the end. Answers the exit code."""
    total = count_deps(argv[0], targets(argv), cwd, env)
    proc = subprocess.Popen(
        with_json(argv), cwd=cwd, env=dict(env) if env else None,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    with proc:
        events = follow(proc.stdout, step, total)
    if proc.returncode == 0 and total:
        step.advance(total, total, "", "packages")
    if messages is not None and events.messages:
        messages.write("\n".join(events.messages) + "\n")
        messages.flush()
    return proc.returncode
