"""The runner: ordered start, reverse stop, drain within grace, exit codes."""

from __future__ import annotations

import asyncio

from kevents import probes, runner


class Recorder:
    """A component that records lifecycle events into a shared journal."""

    def __init__(self, name: str, journal: list[str], *, stop_takes: float = 0.0) -> None:
        self.name = name
        self.journal = journal
        self.stop_takes = stop_takes
        self._started = asyncio.Event()

    async def wait_started(self) -> None:
        await self._started.wait()

    async def run(self) -> None:
        self.journal.append(f"start {self.name}")
        self._started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.journal.append(f"cancelled {self.name}")
            raise

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")
        await asyncio.sleep(self.stop_takes)


async def run_until(r: runner.Runner, condition: asyncio.Event) -> int:
    async with asyncio.TaskGroup() as group:
        task = group.create_task(r.run())
        await condition.wait()
        r.request_stop()
    return task.result()


async def test_starts_in_order_and_stops_in_reverse() -> None:
    journal: list[str] = []
    parts = [Recorder(n, journal) for n in ("metrics", "sender", "watcher")]
    r = runner.Runner(parts, handle_signals=False)
    code = await run_until(r, parts[-1]._started)
    assert code == 0
    assert journal == [
        "start metrics", "start sender", "start watcher",
        "stop watcher", "cancelled watcher",
        "stop sender", "cancelled sender",
        "stop metrics", "cancelled metrics",
    ]  # fmt: skip


async def test_next_component_waits_for_started_signal() -> None:
    journal: list[str] = []
    gate = asyncio.Event()

    async def slow_start() -> None:
        journal.append("start slow")
        await asyncio.Event().wait()

    async def slow_started() -> None:
        await gate.wait()
        journal.append("slow ready")

    last = Recorder("last", journal)
    r = runner.Runner(
        [runner.Service("slow", slow_start, started=slow_started), last], handle_signals=False
    )
    async with asyncio.TaskGroup() as group:
        task = group.create_task(r.run())
        for _ in range(5):
            await asyncio.sleep(0)
        assert journal == ["start slow"]
        gate.set()
        await last._started.wait()
        r.request_stop()
    assert task.result() == 0
    assert journal[:3] == ["start slow", "slow ready", "start last"]


async def test_stop_timeout_exits_1() -> None:
    journal: list[str] = []
    # The behaviour under test: a piece whose stop outlasts the 0.05 s drain grace (the
    # runner cancels it; the 10 s sleep never completes).
    slow = Recorder("queue", journal, stop_takes=10.0)
    r = runner.Runner([slow], grace=0.05, handle_signals=False)
    assert await run_until(r, slow._started) == 1
    assert journal == ["start queue", "stop queue", "cancelled queue"]


async def test_component_failure_exits_1_and_cancels_others() -> None:
    journal: list[str] = []
    healthy = Recorder("healthy", journal)

    async def crash() -> None:
        raise RuntimeError("watch failed")

    r = runner.Runner([healthy, runner.Service("crashy", crash)], handle_signals=False)
    assert await r.run() == 1
    assert journal == ["start healthy", "cancelled healthy"]


async def test_component_returning_stops_everything() -> None:
    journal: list[str] = []
    healthy = Recorder("healthy", journal)

    async def one_shot() -> None:
        journal.append("one shot done")

    r = runner.Runner([healthy, runner.Service("job", one_shot)], handle_signals=False)
    assert await r.run() == 0
    assert journal == ["start healthy", "one shot done", "stop healthy", "cancelled healthy"]


async def test_stop_during_startup_stops_what_started() -> None:
    journal: list[str] = []
    first = Recorder("first", journal)

    async def never_ready() -> None:
        await asyncio.Event().wait()

    async def forever() -> None:
        await asyncio.Event().wait()

    r = runner.Runner(
        [first, runner.Service("stuck", forever, started=never_ready), Recorder("never", journal)],
        handle_signals=False,
    )
    assert await run_until(r, first._started) == 0
    assert "start never" not in journal
    assert journal[-2:] == ["stop first", "cancelled first"]


async def test_readiness_drops_at_shutdown() -> None:
    readiness = probes.Readiness()
    readiness.set_ready()
    journal: list[str] = []
    part = Recorder("p", journal)
    r = runner.Runner([part], readiness=readiness, handle_signals=False)
    assert await run_until(r, part._started) == 0
    assert not readiness.ready
    assert readiness.reason == "shutting down"


async def test_start_timeout_fails() -> None:
    async def never_ready() -> None:
        await asyncio.Event().wait()

    async def forever() -> None:
        await asyncio.Event().wait()

    r = runner.Runner(
        [runner.Service("stuck", forever, started=never_ready)],
        start_timeout=0.01,
        handle_signals=False,
    )
    assert await r.run() == 1
