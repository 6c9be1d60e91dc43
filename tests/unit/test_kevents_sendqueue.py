"""SendQueue with a fake sender: backpressure, drain, and lost-event accounting."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from prometheus_client import CollectorRegistry

from kevents import cloudevent, delivery, errors, metrics, retries, sendqueue


class FakeSender:
    """Records sends; `gate` lets a test hold deliveries in flight."""

    def __init__(self, status: int = 202) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.status = status
        self.sent: list[str] = []
        self.in_flight = 0

    async def send(
        self,
        event: cloudevent.CloudEvent,
        url: str,
        *,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        encoding: cloudevent.Encoding | None = None,
    ) -> delivery.DeliveryResult:
        self.in_flight += 1
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        self.sent.append(event.get_id())
        return delivery.DeliveryResult(self.status, 0.0, 1)


def ev(n: int) -> cloudevent.CloudEvent:
    return cloudevent.build("t", "s", id=f"e{n}")


def lost(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("kevents_events_lost_total", {"reason": reason}) or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make(registry: CollectorRegistry, fake: FakeSender, **kwargs: object) -> sendqueue.SendQueue:
    return sendqueue.SendQueue(
        fake,
        "http://sink/",
        sender_metrics=metrics.SenderMetrics(registry),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_try_put_on_full_queue_raises_and_is_counted(registry: CollectorRegistry) -> None:
    queue = make(registry, FakeSender(), maxsize=2)
    queue.try_put(ev(1))
    queue.try_put(ev(2))
    with pytest.raises(errors.QueueFullError):
        queue.try_put(ev(3))
    assert queue.depth == 2
    assert registry.get_sample_value(
        "kevents_send_queue_rejected_total", {"queue": "sink", "reason": "full"}
    ) == 1  # fmt: skip
    assert registry.get_sample_value("kevents_send_queue_depth", {"queue": "sink"}) == 2


async def test_put_waits_while_full_then_proceeds(registry: CollectorRegistry) -> None:
    fake = FakeSender()
    fake.gate.clear()
    queue = make(registry, fake, maxsize=1, workers=1)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(queue.run())
        await queue.wait_started()
        await queue.put(ev(1))  # taken by the worker, held in flight
        await asyncio.sleep(0)
        await queue.put(ev(2))  # fills the queue
        blocked = group.create_task(queue.put(ev(3)))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not blocked.done()  # backpressure: the producer waits
        fake.gate.set()
        await blocked
        assert await queue.drain(5.0)
    assert runner.done()
    assert fake.sent == ["e1", "e2", "e3"]


async def test_drain_delivers_queued_and_in_flight_events(registry: CollectorRegistry) -> None:
    fake = FakeSender()
    fake.gate.clear()
    queue = make(registry, fake, workers=2)
    async with asyncio.TaskGroup() as group:
        group.create_task(queue.run())
        await queue.wait_started()
        for n in range(5):
            queue.try_put(ev(n))
        await asyncio.sleep(0)
        assert fake.in_flight == 2
        draining = group.create_task(queue.drain(5.0))
        await asyncio.sleep(0)
        with pytest.raises(errors.QueueClosedError):
            await queue.put(ev(99))  # intake stopped
        fake.gate.set()
        assert await draining
    assert sorted(fake.sent) == [f"e{n}" for n in range(5)]
    assert lost(registry, "shutdown") == 0


async def test_drain_timeout_counts_every_undelivered_event(registry: CollectorRegistry) -> None:
    fake = FakeSender()
    fake.gate.clear()  # the sink never answers
    queue = make(registry, fake, workers=1)
    async with asyncio.TaskGroup() as group:
        group.create_task(queue.run())
        await queue.wait_started()
        for n in range(3):
            queue.try_put(ev(n))
        await asyncio.sleep(0)
        assert not await queue.drain(0.01)
    assert fake.sent == []
    assert lost(registry, "shutdown") == 3  # one in flight + two queued
    assert queue.depth == 0


@pytest.mark.parametrize(
    ("status", "reason"), [(503, "retries_exhausted"), (400, "refused")], ids=["503", "400"]
)
async def test_failed_deliveries_are_counted_lost(
    registry: CollectorRegistry, status: int, reason: str
) -> None:
    fake = FakeSender(status=status)
    results: list[tuple[str, int | None]] = []

    async def hook(event: cloudevent.CloudEvent, result: delivery.DeliveryResult) -> None:
        results.append((event.get_id(), result.status))

    queue = make(registry, fake, on_result=hook)
    async with asyncio.TaskGroup() as group:
        group.create_task(queue.run())
        await queue.put(ev(1))
        assert await queue.drain(5.0)
    assert lost(registry, reason) == 1
    assert results == [("e1", status)]


async def test_cancelled_run_counts_queued_events_lost(registry: CollectorRegistry) -> None:
    fake = FakeSender()
    fake.gate.clear()
    queue = make(registry, fake, workers=1)
    for n in range(4):
        queue.try_put(ev(n))
    async with asyncio.TaskGroup() as group:
        task = group.create_task(queue.run())
        await queue.wait_started()
        await asyncio.sleep(0)
        task.cancel()
    assert lost(registry, "shutdown") == 4


def test_rejects_nonsense_sizes() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        sendqueue.SendQueue(FakeSender(), "http://sink/", maxsize=0)
