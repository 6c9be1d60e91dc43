"""Admission and lanes without sockets: bounds, per-subscriber concurrency, retargeting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opentelemetry import context as otel_context
from prometheus_client import CollectorRegistry

from dispatcher import channels, fanout, lane
from dispatcher import metrics as dispatcher_metrics
from kevents import cloudevent, errors, retries


class FakeCourier:
    """Records deliveries; each waits until released."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.release = asyncio.Event()

    async def deliver(self, target: channels.Target, envelope: lane.Envelope) -> None:
        self.started.append((target.uid, envelope.event.get_id()))
        await self.release.wait()


def _target(uid: str) -> channels.Target:
    return channels.Target(uid, 1, f"http://{uid}/", "", "", retries.RetryPolicy())


def _channel(*uids: str) -> channels.Channel:
    return channels.Channel("ns", "ch", tuple(_target(u) for u in uids), ())


def _event(i: int) -> cloudevent.CloudEvent:
    return cloudevent.build("t", "/s", id=f"e{i}")


@pytest.fixture(params=[(2, 1)], ids=["concurrency-2-backlog-1"])
async def running(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[fanout.Fanout, FakeCourier]]:
    courier = FakeCourier()
    concurrency, backlog = request.param
    fan = fanout.Fanout(
        courier,  # type: ignore[arg-type]
        dispatcher_metrics.DispatcherMetrics(CollectorRegistry()),
        queue_size=5,
        queue_bytes=1000,
        concurrency=concurrency,
        backlog=backlog,
    )
    task = asyncio.create_task(fan.run())
    await fan.wait_started()
    try:
        yield fan, courier
    finally:
        courier.release.set()
        await fan.drain(5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_lane_runs_at_most_its_concurrency_and_bounds_its_backlog(
    running: tuple[fanout.Fanout, FakeCourier],
) -> None:
    fan, courier = running
    fan.update(_channel("a"))
    route = fan.routes[("ns", "ch")]
    ctx = otel_context.Context()
    for i in range(3):  # 2 in flight + 1 waiting
        fan.submit(route, _event(i), {}, ctx, 10)
    with pytest.raises(errors.QueueFullError):
        fan.submit(route, _event(3), {}, ctx, 10)
    await asyncio.sleep(0)
    assert courier.started == [("a", "e0"), ("a", "e1")]
    assert (fan.pending, fan.pending_bytes) == (3, 30)
    courier.release.set()
    assert await fan.drain(5)
    assert [e for _, e in courier.started] == ["e0", "e1", "e2"]
    assert (fan.pending, fan.pending_bytes) == (0, 0)


@pytest.mark.parametrize(
    ("sizes", "accepted"),
    [([100] * 5, 5), ([400, 400, 300], 2), ([1001], 0)],
    ids=["count-bound", "byte-bound", "one-too-big"],
)
@pytest.mark.parametrize("running", [(10, 10)], ids=["roomy-lanes"], indirect=True)
async def test_queue_bounds(
    running: tuple[fanout.Fanout, FakeCourier], sizes: list[int], accepted: int
) -> None:
    fan, _ = running
    fan.update(channels.Channel("ns", "ch", tuple(_target(f"s{i}") for i in range(6)), ()))
    route = fan.routes[("ns", "ch")]
    results = []
    for i, size in enumerate([*sizes, 1]):
        try:
            fan.submit(route, _event(i), {}, otel_context.Context(), size)
            results.append(True)
        except errors.QueueFullError:
            results.append(False)
    assert sum(results[: len(sizes)]) == accepted
    assert fan.pending == sum(results)


async def test_update_retargets_keeps_and_retires_lanes(
    running: tuple[fanout.Fanout, FakeCourier],
) -> None:
    fan, courier = running
    fan.update(_channel("a", "b"))
    first = fan.routes[("ns", "ch")].lanes
    fan.update(_channel("b", "c"))
    second = fan.routes[("ns", "ch")].lanes
    assert second[0] is first[1]  # "b" kept its lane (and its backlog)
    assert [each.target.uid for each in second] == ["b", "c"]
    fan.submit(fan.routes[("ns", "ch")], _event(1), {}, otel_context.Context(), 1)
    courier.release.set()
    assert await fan.drain(5)
    assert sorted(courier.started) == [("b", "e1"), ("c", "e1")]
    fan.remove(("ns", "ch"))
    assert fan.routes == {}


async def test_draining_refuses_new_events(running: tuple[fanout.Fanout, FakeCourier]) -> None:
    fan, courier = running
    fan.update(_channel("a"))
    courier.release.set()
    assert await fan.drain(1)
    with pytest.raises(errors.QueueClosedError):
        fan.submit(fan.routes[("ns", "ch")], _event(1), {}, otel_context.Context(), 1)
