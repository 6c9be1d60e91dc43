"""The lane's sojourn bound (CoDel) on a virtual clock: exact state changes."""

from __future__ import annotations

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


def _lane(clock: Clock, spawned: list[Coroutine[Any, Any, None]]) -> lane.Lane:
    async def deliver(target: channels.Target, envelope: lane.Envelope) -> bool:
        return True

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
    assert not one.over_target()  # above target since now
    clock.now += 0.049
    assert not one.over_target()  # 49 ms above: a burst, absorbed
    clock.now += 0.001
    assert one.over_target()  # a whole interval above target
    assert one.over_target()  # and it stays so until the sojourn drops
    for coroutine in spawned:
        coroutine.close()


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
