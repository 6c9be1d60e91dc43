"""The ping scheduler on a manual clock: exact ticks, live changes, fenced watermark."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kevents import cloudevent, delivery, informer, retries
from sources.ping import adapter, metrics, timetable
from tests import manualclock, waiting

START = datetime.datetime(2025, 6, 1, 10, 0, 58, tzinfo=datetime.UTC)


class FakeSender:
    def __init__(self, clock: manualclock.ManualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, cloudevent.CloudEvent, str]] = []

    async def send(
        self,
        event: cloudevent.CloudEvent,
        url: str,
        *,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        encoding: cloudevent.Encoding | None = None,
    ) -> delivery.DeliveryResult:
        self.sent.append((self.clock.time(), event, url))
        return delivery.DeliveryResult(status=202, duration=0.0, attempts=1)


class FakeLeadership:
    def __init__(self, annotations: dict[str, str] | None = None) -> None:
        self.leading = asyncio.Event()
        self.leading.set()
        self.records: list[dict[str, str]] = []
        self._annotations = dict(annotations or {})
        self.allow = True
        self.refused = 0
        """Fenced writes refused (`allow` False): each is a fire the adapter had to drop."""

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    def annotations(self) -> dict[str, str]:
        return dict(self._annotations)

    async def record(self, annotations: dict[str, str]) -> bool:
        if not self.allow:
            self.refused += 1
            return False
        self.records.append(dict(annotations))
        self._annotations.update(annotations)
        return True


def ping(name: str, schedule: str = "* * * * *", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "uid": f"uid-{name}",
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"schedule": schedule, **spec},
        "status": {"sinkUri": f"http://127.0.0.1:9/{name}"},
    }  # fmt: skip


@contextlib.asynccontextmanager
async def running(
    clock: manualclock.ManualClock,
    leadership: FakeLeadership | None = None,
    listed: tuple[dict[str, Any], ...] = (),
    **options: Any,
) -> AsyncIterator[tuple[adapter.Adapter, FakeSender]]:
    """An adapter whose informer listed `listed` before it started (as in the process)."""
    fake = FakeSender(clock)
    ping_adapter = adapter.Adapter(
        event_sender=fake, ping_clock=clock, metrics=metrics.PingMetrics(CollectorRegistry()),
        leadership=leadership, workers=2, **options,
    )  # fmt: skip
    for obj in listed:
        await ping_adapter.handle(informer.Change.ADD, obj)
    task = asyncio.create_task(ping_adapter.run())
    await clock.advance(0)
    try:
        yield ping_adapter, fake
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sent_at(fake: FakeSender) -> list[tuple[str, str]]:
    return [
        (datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%H:%M:%S"),
         e.get_source().rsplit("/", 1)[1])
        for t, e, _ in fake.sent
    ]  # fmt: skip


async def test_fires_each_source_at_its_second_and_follows_changes() -> None:
    clock = manualclock.ManualClock(START)
    async with running(clock) as (ping_adapter, fake):
        await ping_adapter.handle(informer.Change.ADD, ping("a"))
        await ping_adapter.handle(informer.Change.ADD, ping("b", "*/2 * * * *"))
        await clock.advance(1.9)
        assert fake.sent == []
        await clock.advance(0.1)  # 10:01:00
        assert sent_at(fake) == [("10:01:00", "a")]
        await ping_adapter.handle(informer.Change.UPDATE, ping("a", "30 * * * * *"))
        await clock.advance(30)
        assert sent_at(fake)[1:] == [("10:01:30", "a")]
        await ping_adapter.handle(informer.Change.DELETE, ping("a"))
        await clock.advance(30)  # 10:02:00: only b
        assert sent_at(fake)[2:] == [("10:02:00", "b")]
        assert fake.sent[-1][2] == "http://127.0.0.1:9/b"


async def test_invalid_and_unresolved_sources_do_not_fire() -> None:
    clock = manualclock.ManualClock(START)
    registry = CollectorRegistry()
    async with running(clock) as (ping_adapter, fake):
        ping_adapter._metrics = metrics.PingMetrics(registry)
        await ping_adapter.handle(informer.Change.ADD, ping("bad", "0 0 31 2 *"))
        unresolved = ping("later")
        unresolved["status"] = {}
        await ping_adapter.handle(informer.Change.ADD, unresolved)
        await clock.advance(62)
        assert fake.sent == []
        assert registry.get_sample_value("kevents_ping_sources", {"state": "invalid"}) == 1
        assert registry.get_sample_value("kevents_ping_sources", {"state": "no_sink"}) == 1


async def test_watermark_is_recorded_before_firing_and_respected_by_a_successor() -> None:
    clock = manualclock.ManualClock(START)
    first = FakeLeadership()
    async with running(clock, first) as (ping_adapter, fake):
        await ping_adapter.handle(informer.Change.ADD, ping("a"))
        await clock.advance(1.0)  # 10:00:59: one second ahead, the record is written
        assert first.records == [{adapter.WATERMARK: "2025-06-01T10:01:00Z"}]
        assert fake.sent == []
        await clock.advance(1.0)
        assert sent_at(fake) == [("10:01:00", "a")]
    # A successor takes over at 10:01:00.5 with the predecessor's annotations: no second fire
    # of 10:01:00; a successor arriving at 10:02:20 catches 10:02:00 up, late.
    for at, expected in (
        (datetime.timedelta(seconds=2.5), [("10:02:00", "a")]),
        (datetime.timedelta(seconds=82), [("10:02:20", "a")]),
    ):
        clock = manualclock.ManualClock(START + at)
        successor = FakeLeadership(first.annotations())
        async with running(clock, successor, (ping("a"),)) as (_, fake):
            await clock.advance(60)
            assert sent_at(fake)[:1] == expected


async def test_no_fire_without_the_fenced_record() -> None:
    clock = manualclock.ManualClock(START)
    lost = FakeLeadership()
    lost.allow = False
    async with running(clock, lost) as (ping_adapter, fake):
        await ping_adapter.handle(informer.Change.ADD, ping("a"))
        await clock.advance(3)
        await waiting.until(lambda: lost.refused >= 1)  # the tick reached the fenced record
        for _ in range(10):  # what follows a refused record runs without waiting on anything
            await asyncio.sleep(0)
        assert fake.sent == []


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([("s", "a", 5), ("s", "b", 3)], ["b", "a"]),
        ([("s", "a", 5), ("s", "a", 1)], ["a"]),
        ([("s", "a", 1), ("c", "a", 0), ("s", "b", 2)], ["b"]),
    ],
    ids=["ordered", "rescheduled-once", "cancelled"],
)
def test_timetable(ops: list[tuple[str, str, float]], expected: list[str]) -> None:
    table = timetable.Timetable()
    for op, key, when in ops:
        if op == "s":
            table.schedule(key, when, when)
        else:
            table.cancel(key)
    assert [e.key for e in table.pop_due(10, 10)] == expected
    assert table.peek() is None and len(table) == 0
