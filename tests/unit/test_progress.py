"""hack/progress (issue 25): numbered steps with elapsed times, the moving line of a Go build
(parsed from real `go build -json -v` output captured on this machine) and of a Maven fetch,
each step's time in the summary; plain timestamped lines for logs, rich on a terminal."""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import rich.console

from hack.progress import gobuild, journal, maven, render

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
REPO = pathlib.Path(__file__).resolve().parents[2]
T0 = 1764662400.0  # 2025-12-02 08:00:00 UTC


class FakeClock:
    """Wall and monotonic time that move only when a step's fake work says so."""

    def __init__(self) -> None:
        self.elapsed = 0.0

    def wall(self) -> float:
        return T0 + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed


def _plain(clock: FakeClock, every: float = 5.0) -> tuple[render.Plain, io.StringIO]:
    out = io.StringIO()
    return render.Plain(out, wall=clock.wall, monotonic=clock.monotonic, every=every), out


def test_plain_output_numbers_steps_times_them_and_sums_them_up() -> None:
    clock = FakeClock()
    renderer, out = _plain(clock)
    steps = render.Steps(total=3, renderer=renderer, monotonic=clock.monotonic)
    # a fake step runner: each step "works" by moving the clock
    with steps.step("installing what is missing"):
        clock.elapsed += 0.4
    with steps.step("building the control plane") as step:
        for done in range(0, 1001, 100):  # a package every 0.2 s; the line at most every 5 s
            clock.elapsed += 2
            step.advance(done, 1000, f"k8s.io/pkg{done}", "packages")
        clock.elapsed += 3.6
    with steps.step("starting the cluster"):
        clock.elapsed += 125
    steps.finish()
    assert out.getvalue() == (
        "08:00:00 [1/3] installing what is missing\n"
        "08:00:00 [1/3] installing what is missing: done in 0.4s\n"
        "08:00:00 [2/3] building the control plane\n"
        "08:00:02 [2/3]   0/1000 packages (0%) k8s.io/pkg0\n"
        "08:00:08 [2/3]   300/1000 packages (30%) k8s.io/pkg300\n"
        "08:00:14 [2/3]   600/1000 packages (60%) k8s.io/pkg600\n"
        "08:00:20 [2/3]   900/1000 packages (90%) k8s.io/pkg900\n"
        "08:00:22 [2/3]   1000/1000 packages (100%) k8s.io/pkg1000\n"
        "08:00:26 [2/3] building the control plane: done in 25s\n"
        "08:00:26 [3/3] starting the cluster\n"
        "08:02:31 [3/3] starting the cluster: done in 2m 05s\n"
        "time per step:\n"
        "  [1/3] installing what is missing     0.4s  ok\n"
        "  [2/3] building the control plane      25s  ok\n"
        "  [3/3] starting the cluster         2m 05s  ok\n"
        "  total                              2m 31s\n"  # 0.4 + 25.6 + 125
    )


def test_a_failing_step_is_timed_marked_failed_and_its_error_goes_on() -> None:
    clock = FakeClock()
    renderer, out = _plain(clock)
    steps = render.Steps(total=2, renderer=renderer, monotonic=clock.monotonic)
    with pytest.raises(RuntimeError, match="no disk"), steps.step("fetching Kafka"):
        clock.elapsed += 12
        raise RuntimeError("no disk")
    steps.finish()
    assert out.getvalue().splitlines()[1:] == [
        "08:00:12 [1/2] fetching Kafka: FAILED in 12s",
        "time per step:",
        "  [1/2] fetching Kafka      12s  FAILED",
        "  total                     12s",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.04, "0.0s"), (9.95, "9.9s"), (10, "10s"), (59.9, "59s"), (60, "1m 00s"),
     (3599, "59m 59s"), (3600, "1h 00m"), (86400 * 3 + 4 * 3600, "3d 04h")],
    ids=["unknown", "zero", "under-ten", "ten", "seconds", "minute", "minutes", "hour", "days"],
)  # fmt: skip
def test_duration(seconds: float | None, text: str) -> None:
    assert render.duration(seconds) == text


def test_go_build_progress_from_real_go_build_json_output() -> None:
    """`go build -json -v` of a small program with an empty build cache (go1.26, this
    machine): one build-output event per compiled package; `go list -deps` named 68."""
    lines = (FIXTURES / "gobuild" / "build-json-v.jsonl").read_text().splitlines(True)
    total = len((FIXTURES / "gobuild" / "list-deps.txt").read_text().split())
    assert total == 68
    clock = FakeClock()
    renderer, out = _plain(clock, every=0)
    steps = render.Steps(total=0, renderer=renderer, monotonic=clock.monotonic)
    with steps.step("building gotry") as step:
        events = gobuild.follow(lines, step, total)
    assert len(events.compiled) == 66 and events.failed == [] and events.messages == []
    printed = out.getvalue().splitlines()
    assert printed[1] == "08:00:00   1/68 packages (1%) internal/goarch"
    assert printed[-2] == "08:00:00   66/68 packages (97%) encoding/json"
    numbers = [int(m.group(1)) for m in re.finditer(r"  (\d+)/68 packages", out.getvalue())]
    assert numbers == list(range(1, 67))  # the line moves at every package


def test_go_build_failure_keeps_the_compiler_message() -> None:
    lines = (FIXTURES / "gobuild" / "build-json-v-fail.jsonl").read_text().splitlines(True)
    events = gobuild.Events()
    compiled = [events.feed(line) for line in lines]
    assert compiled == ["example.com/bad", None, None, None]
    assert events.failed == ["example.com/bad"]
    assert events.messages == ["# example.com/bad", "./main.go:5:27: undefined: undefinedName"]


@pytest.mark.parametrize(
    ("argv", "json_argv", "targets"),
    [
        (["go", "build", "-trimpath", "-o", "/x/bin", "-ldflags", "-s -w", "."],
         ["go", "build", "-json", "-v", "-trimpath", "-o", "/x/bin", "-ldflags", "-s -w", "."],
         ["."]),
        (["go", "build", "-o", "kn", "knative.dev/client/cmd/kn"],
         ["go", "build", "-json", "-v", "-o", "kn", "knative.dev/client/cmd/kn"],
         ["knative.dev/client/cmd/kn"]),
        (["go", "install", "-ldflags=-s -w", "github.com/coredns/coredns@v1.14.7"],
         ["go", "install", "-json", "-v", "-ldflags=-s -w", "github.com/coredns/coredns@v1.14.7"],
         ["github.com/coredns/coredns@v1.14.7"]),
        (["go", "build"], ["go", "build", "-json", "-v"], ["."]),
    ],
    ids=["flags-and-dot", "package", "install-at-version", "bare"],
)  # fmt: skip
def test_go_command_rewriting(argv: list[str], json_argv: list[str], targets: list[str]) -> None:
    assert gobuild.with_json(argv) == json_argv
    assert gobuild.targets(argv) == targets


def test_maven_fetch_progress_from_real_maven_output() -> None:
    lines = (FIXTURES / "maven" / "dependency-get.txt").read_text().splitlines(True)
    clock = FakeClock()
    renderer, out = _plain(clock, every=0)
    steps = render.Steps(total=0, renderer=renderer, monotonic=clock.monotonic)
    with steps.step("fetching slf4j-nop") as step:
        transfers = maven.follow(lines, step)
    assert (transfers.files, transfers.bytes) == (1, 4900)
    assert out.getvalue().splitlines()[1:3] == [
        "08:00:00   0 files (0 B) slf4j-nop-2.0.9.jar",
        "08:00:00   1 files (4.9 kB) slf4j-nop-2.0.9.jar",
    ]


def test_journal_numbers_steps_across_commands(tmp_path: pathlib.Path) -> None:
    book = journal.Journal(tmp_path / "steps")
    assert book.end(ok=True, now=T0) is None
    first = book.start("building", 3, T0)
    assert (first.number, first.total) == (1, 3)
    ended = book.end(ok=True, now=T0 + 61)
    assert ended == render.StepRecord(1, 3, "building", 61, True)
    second = book.start("starting", None, T0 + 61)  # the total is the run's
    assert (second.number, second.total) == (2, 3)
    assert book.open() == journal.Open(2, 3, "starting", T0 + 61)
    book.end(ok=False, now=T0 + 70)
    assert book.open() is None
    assert book.records() == [render.StepRecord(1, 3, "building", 61, True),
                              render.StepRecord(2, 3, "starting", 9, False)]  # fmt: skip


def test_command_line_steps_as_a_bash_script_calls_them(tmp_path: pathlib.Path) -> None:
    """What hack/up does: `step` per part, `end --status $?` at exit, in a CI log (no tty)."""
    env = {**os.environ, "KEVENTS_PROGRESS": str(tmp_path / "steps"), "PYTHONPATH": str(REPO)}

    def progress(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "hack.progress", *args], env=env, cwd=tmp_path,
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return proc.stdout

    out = progress("step", "--of", "3", "building the control plane")
    out += progress("step", "starting the cluster")
    # hack/test: a test tier failed, the run goes on; the next step ends that one failed
    out += progress("step", "--status", "1", "the tests")
    out += progress("end", "--status", "1")
    stamp = r"\d\d:\d\d:\d\d "
    pattern = (
        rf"{stamp}\[1/3\] building the control plane\n"
        rf"{stamp}\[1/3\] building the control plane: done in \d+\.\ds\n"
        rf"{stamp}\[2/3\] starting the cluster\n"
        rf"{stamp}\[2/3\] starting the cluster: FAILED in \d+\.\ds\n"
        rf"{stamp}\[3/3\] the tests\n"
        rf"{stamp}\[3/3\] the tests: FAILED in \d+\.\ds\n"
        r"time per step:\n"
        r"  \[1/3\] building the control plane +\d+\.\ds  ok\n"
        r"  \[2/3\] starting the cluster +\d+\.\ds  FAILED\n"
        r"  \[3/3\] the tests +\d+\.\ds  FAILED\n"
        r"  total +\d+\.\ds\n"
    )
    assert re.fullmatch(pattern, out), out
    assert [json.loads(line)["event"] for line in (tmp_path / "steps").read_text().splitlines()] \
        == ["start", "end", "start", "end", "start", "end"]  # fmt: skip


def test_rich_on_a_terminal_shows_the_steps_and_a_summary_table() -> None:
    out = io.StringIO()
    console = rich.console.Console(file=out, force_terminal=True, width=100, color_system=None)
    clock = FakeClock()
    steps = render.Steps(total=2, renderer=render.Rich(console), monotonic=clock.monotonic)
    with steps.step("building the control plane") as step:
        step.advance(5, 10, "k8s.io/api", "packages")
        clock.elapsed += 42
    with steps.step("starting [the] cluster"):  # markup-like text is shown as written
        clock.elapsed += 1.5
    steps.finish()
    text = out.getvalue()
    assert "[1/2] building the control plane" in text
    assert "[1/2] building the control plane: done in 42s" in text
    assert "[2/2] starting [the] cluster: done in 1.5s" in text
    table = text[text.index("time per step") :]
    assert re.search(r"\[1/2\] building the control plane\s*│\s*42s\s*│\s*ok", table), table
    assert re.search(r"total\s*│\s*43s", table), table


def test_choose_is_plain_off_a_terminal_and_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(render.choose(io.StringIO()), render.Plain)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert isinstance(render.choose(Tty()), render.Rich)
    monkeypatch.setenv("CI", "true")
    assert isinstance(render.choose(Tty()), render.Plain)


def test_a_step_noted_cached_says_so_at_its_end_and_in_the_summary() -> None:
    clock = FakeClock()
    renderer, out = _plain(clock)
    steps = render.Steps(total=2, renderer=renderer, monotonic=clock.monotonic)
    with steps.step("Debian base") as step:
        step.note = "cached"
    with steps.step("code layer"):
        clock.elapsed += 12
    steps.finish()
    assert out.getvalue().splitlines() == [
        "08:00:00 [1/2] Debian base",
        "08:00:00 [1/2] Debian base: done in 0.0s (cached)",
        "08:00:00 [2/2] code layer",
        "08:00:12 [2/2] code layer: done in 12s",
        "time per step:",
        "  [1/2] Debian base     0.0s  ok (cached)",
        "  [2/2] code layer       12s  ok",
        "  total                  12s",
    ]
