"""How progress looks: numbered steps with elapsed times, a moving line, a summary table.

    steps = render.Steps(total=3, renderer=render.choose(sys.stderr))
    with steps.step("building the control plane") as step:
        step.advance(412, 1830, "k8s.io/api/core/v1")      # the moving line
    steps.finish()                                           # the per-step summary

A step may carry a note (`step.note = "cached"`): its end line and the summary show it.

Two renderers, chosen by `choose(stream)`:
- `Rich` (a terminal): a styled step header, a live bar for the moving line, a table at the end;
- `Plain` (CI logs, pipes): timestamped lines, the moving line at most every `every` seconds.
Both get time from injected clocks, so tests assert exact output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO

import rich.console
import rich.markup
import rich.progress
import rich.table


def duration(seconds: float | None) -> str:
    """`0.4s`, `42s`, `4m 07s`, `2h 05m`, `3d 04h`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {s:02d}s"
    return f"{s}s"


@dataclasses.dataclass(frozen=True, slots=True)
class StepRecord:
    """One finished step: its number, title, time taken, whether it succeeded, and its note
    ("cached": nothing had to be done)."""

    number: int
    total: int
    title: str
    seconds: float
    ok: bool
    note: str = ""


class Renderer(Protocol):
    def started(self, number: int, total: int, title: str) -> None: ...
    def advance(self, done: int, total: int | None, unit: str, detail: str) -> None: ...
    def finished(self, record: StepRecord) -> None: ...
    def summary(self, records: list[StepRecord]) -> None: ...


def _counts(done: int, total: int | None, unit: str) -> str:
    if total:
        return f"{done}/{total} {unit} ({100 * done // total}%)"
    return f"{done} {unit}"


def _number(number: int, total: int) -> str:
    """`[3/7] ` for a numbered step; nothing for a lone task (total 0)."""
    return f"[{number}/{total}] " if total else ""


def _verdict(record: StepRecord) -> str:
    """`ok`, `FAILED`, or `ok (cached)` with the step's note."""
    verdict = "ok" if record.ok else "FAILED"
    return f"{verdict} ({record.note})" if record.note else verdict


def _summary_rows(records: list[StepRecord]) -> list[tuple[str, str, str]]:
    rows = [
        (f"{_number(r.number, r.total)}{r.title}", duration(r.seconds), _verdict(r))
        for r in records
    ]
    rows.append(("total", duration(sum(r.seconds for r in records)), ""))
    return rows


class Plain:
    """Timestamped lines for logs: `08:10:02 [3/7] building the control plane`."""

    def __init__(
        self,
        out: TextIO,
        *,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        every: float = 5.0,
    ) -> None:
        """`every` (5 s): the moving line is printed at most this often (plus its last value),
        enough to see a build move in a CI log without a line per package."""
        self._out, self._wall, self._monotonic, self._every = out, wall, monotonic, every
        self._prefix = ""
        self._last: float | None = None

    def _print(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.gmtime(self._wall()))
        self._out.write(f"{stamp} {text}\n")
        self._out.flush()

    def started(self, number: int, total: int, title: str) -> None:
        self._prefix = _number(number, total)
        self._last = None
        self._print(f"{self._prefix}{title}")

    def advance(self, done: int, total: int | None, unit: str, detail: str) -> None:
        now = self._monotonic()
        if self._last is not None and now - self._last < self._every and done != total:
            return
        self._last = now
        self._print(f"{self._prefix}  {_counts(done, total, unit)} {detail}".rstrip())

    def finished(self, record: StepRecord) -> None:
        verdict = "done" if record.ok else "FAILED"
        note = f" ({record.note})" if record.note else ""
        self._print(f"{_number(record.number, record.total)}{record.title}: {verdict} in "
                    f"{duration(record.seconds)}{note}")  # fmt: skip

    def summary(self, records: list[StepRecord]) -> None:
        rows = _summary_rows(records)
        width = max(len(r[0]) for r in rows)
        self._out.write("time per step:\n")
        for title, took, verdict in rows:
            self._out.write(f"  {title.ljust(width)}  {took.rjust(7)}  {verdict}".rstrip() + "\n")
        self._out.flush()


class Rich:
    """A terminal: styled step headers, a live bar for the moving line, a summary table."""

    def __init__(self, console: rich.console.Console) -> None:
        self._console = console
        self._live: rich.progress.Progress | None = None
        self._task: rich.progress.TaskID | None = None
        self._prefix = self._title = ""

    def started(self, number: int, total: int, title: str) -> None:
        self._prefix = _number(number, total)
        self._title = title
        self._console.print(f"[bold cyan]{rich.markup.escape(self._prefix)}[/]"
                            f"[bold]{rich.markup.escape(title)}")  # fmt: skip

    def advance(self, done: int, total: int | None, unit: str, detail: str) -> None:
        if self._live is None:
            self._live = rich.progress.Progress(
                rich.progress.SpinnerColumn(),
                rich.progress.TextColumn("{task.description}"),
                rich.progress.BarColumn(),
                rich.progress.MofNCompleteColumn(),
                rich.progress.TextColumn(unit),
                rich.progress.TimeElapsedColumn(),
                rich.progress.TextColumn("[dim]{task.fields[detail]}"),
                console=self._console,
                transient=True,
            )
            self._live.start()
            self._task = self._live.add_task(
                rich.markup.escape(self._prefix or self._title), total=total, detail=""
            )
        assert self._task is not None
        self._live.update(self._task, completed=done, total=total, detail=detail[-48:])

    def finished(self, record: StepRecord) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        mark = "[green]done[/]" if record.ok else "[bold red]FAILED[/]"
        number = rich.markup.escape(_number(record.number, record.total))
        note = f" [dim]({rich.markup.escape(record.note)})[/]" if record.note else ""
        self._console.print(f"[cyan]{number}[/]"
                            f"{rich.markup.escape(record.title)}: {mark} in "
                            f"{duration(record.seconds)}{note}")  # fmt: skip

    def summary(self, records: list[StepRecord]) -> None:
        table = rich.table.Table(title="time per step", title_justify="left")
        table.add_column("step")
        table.add_column("time", justify="right")
        table.add_column("")
        for title, took, verdict in _summary_rows(records):
            table.add_row(title, took, verdict, style="bold" if title == "total" else None)
        self._console.print(table)


def interactive(stream: TextIO) -> bool:
    """A person watches `stream`: a terminal, not CI (CI=true), not TERM=dumb."""
    if os.environ.get("CI", "").lower() in ("1", "true") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def choose(stream: TextIO) -> Renderer:
    """Rich on a terminal, plain timestamped lines otherwise."""
    if interactive(stream):
        return Rich(rich.console.Console(file=stream))
    return Plain(stream)


class Step:
    """The running step: what it reports moves its line; `note` ("cached") is shown when it
    ends."""

    def __init__(self, renderer: Renderer, unit: str = "") -> None:
        self._renderer = renderer
        self.unit = unit
        self.note = ""

    def advance(self, done: int, total: int | None, detail: str = "", unit: str = "") -> None:
        self._renderer.advance(done, total, unit or self.unit, detail)


class Steps:
    """Numbered steps of one run; `finish()` prints each step's time."""

    def __init__(
        self,
        total: int,
        renderer: Renderer,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        first: int = 1,
    ) -> None:
        self.total = total
        self._renderer = renderer
        self._monotonic = monotonic
        self._next = first
        self.records: list[StepRecord] = []

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        number, self._next = self._next, self._next + 1
        self._renderer.started(number, self.total, title)
        began = self._monotonic()
        ok = False
        current = Step(self._renderer)
        try:
            yield current
            ok = True
        finally:
            seconds = self._monotonic() - began
            record = StepRecord(number, self.total, title, seconds, ok, current.note)
            self.records.append(record)
            self._renderer.finished(record)

    def finish(self) -> None:
        self._renderer.summary(self.records)
