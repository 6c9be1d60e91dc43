"""The lane's sojourn bound (CoDel) on a virtual clock: exact state changes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from opentelemetry import context as otel_context

from dispatcher import channels, lane
from kevents import cloudevent, retries


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _delivered(target: channels.Target, envelope: lane.Envelope) -> bool:
    return True


def _lane(
    clock: Clock, spawned: list[Coroutine[Any, Any, None]], deliver: lane.Deliver = _delivered
) -> lane.Lane:
    def spawn(coroutine: Coroutine[Any, Any, None]) -> object:
        spawned.append(coroutine)
        return None

    return lane.Lane(
        channels.Target("u", 1, "http://u/", "", "", retries.RetryPolicy()),
        concurrency=1,
        backlog=100,
        deliver=deliver,
        finish=lambda envelope, ok: None,
        spawn=spawn,
        lost=lambda reason, count: None,
        sojourn=lane.Sojourn(target=0.005, interval=0.05),
        clock=clock,
    )


def _envelope() -> lane.Envelope:
    event = cloudevent.build("t", "/s", id="e")
    return lane.Envelope(event, {}, otel_context.Context(), "ns", 1, 1)


def _codel_over(one: lane.Lane) -> bool:
    """Sample the lane (as an admission does) and say whether CoDel's state is over target,
    whatever the wait estimate says."""
    one.over_target()
    return one.over


def test_over_target_only_after_a_whole_interval_above_target() -> None:
    clock = Clock()
    spawned: list[Coroutine[Any, Any, None]] = []
    one = _lane(clock, spawned)
    assert not one.over_target()  # below the in-flight limit: starts at once
    one.offer(_envelope())
    assert not one.over_target()  # in flight, empty backlog: no standing queue
    one.offer(_envelope())
    clock.now += 0.005
    assert not one.over_target()  # oldest waited exactly the target
    clock.now += 0.001
    assert not _codel_over(one)  # above target since now
    clock.now += 0.049
    assert not _codel_over(one)  # 49 ms above: a burst, absorbed
    clock.now += 0.001
    assert _codel_over(one)  # a whole interval above target
    assert one.over_target()  # and it stays so until the sojourn drops
    for coroutine in spawned:
        coroutine.close()


def test_a_stalled_delivery_refuses_before_any_dequeue_was_measured() -> None:
    # A backlog that formed at start, behind a delivery that has not finished: the average
    # time between dequeues has no sample yet, so the time since the backlog formed stands in.
    clock = Clock()
    spawned: list[Coroutine[Any, Any, None]] = []
    one = _lane(clock, spawned)
    one.offer(_envelope())  # in flight
    for _ in range(3):
        one.offer(_envelope())
    clock.now += 0.016
    assert not one.over_target()  # 3 ahead x 16 ms = 48 ms: within the 50 ms interval
    clock.now += 0.001
    assert one.over_target()  # 3 x 17 ms = 51 ms: the new event would wait too long
    assert not one.over  # refused by the estimate, not by CoDel's state
    for coroutine in spawned:
        coroutine.close()


async def test_the_first_measured_dequeue_sets_the_pace() -> None:
    # One dequeue after 20 ms sets the average to 20 ms at once (not 1/8 of it), so a backlog
    # of three (3 x 20 = 60 ms > 50 ms) is refused right after it.
    clock = Clock()
    started: list[Coroutine[Any, Any, None]] = []
    deliveries: asyncio.Queue[asyncio.Future[bool]] = asyncio.Queue()

    async def deliver(target: channels.Target, envelope: lane.Envelope) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        deliveries.put_nowait(done)
        return await done

    one = _lane(clock, started, deliver=deliver)
    for _ in range(5):
        one.offer(_envelope())  # 1 in flight, 4 waiting
    pump = asyncio.ensure_future(started[0])
    first = await deliveries.get()
    clock.now += 0.020
    first.set_result(True)  # the first waiting event is dequeued 20 ms after
    second = await deliveries.get()
    assert one.waiting == 3
    assert one.over_target()  # 3 ahead x 20 ms, though the last dequeue was just now
    assert not one.over
    second.set_result(True)
    for _ in range(3):  # let the rest through
        (await deliveries.get()).set_result(True)
    await pump
    assert one.in_flight == 0 and one.waiting == 0


async def test_a_drained_backlog_ends_the_refusal() -> None:
    clock = Clock()
    started: list[Coroutine[Any, Any, None]] = []
    one = _lane(clock, started)
    one.offer(_envelope())
    one.offer(_envelope())
    clock.now += 0.006
    one.over_target()
    clock.now += 0.051
    assert one.over_target()
    await started[0]  # delivers the one in flight, then the waiting one, then drains
    assert one.in_flight == 0 and one.waiting == 0
    assert not one.over
    assert not one.over_target()
