"""Work queue: dedupe, one worker per key, dirty re-add, exponential backoff."""

from __future__ import annotations

import asyncio

import pytest

from controller.framework import workqueue


async def test_dedupes_queued_keys() -> None:
    queue = workqueue.WorkQueue()
    for key in ("a", "b", "a", "a"):
        queue.add(key)
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]


async def test_key_added_while_processing_is_requeued_after_done() -> None:
    queue = workqueue.WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")  # an event arrives mid-reconcile
    assert len(queue) == 0  # not handed to a second worker
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_get_waits_for_add() -> None:
    queue = workqueue.WorkQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0.005), (1, 0.01), (2, 0.02), (10, 5.12), (30, 1000.0)],
    ids=["first", "second", "third", "tenth", "capped"],
)
def test_backoff(failures: int, delay: float) -> None:
    assert workqueue.Backoff().delay(failures) == pytest.approx(delay)


async def test_rate_limited_requeue_grows_until_forget() -> None:
    queue = workqueue.WorkQueue(workqueue.Backoff(base=1.0, cap=8.0))
    delays = [queue.requeue_rate_limited("k") for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    queue.forget("k")
    assert queue.requeue_rate_limited("k") == 1.0
    queue.shutdown()


async def test_add_after_fires_on_the_loop_clock() -> None:
    queue = workqueue.WorkQueue()
    queue.add_after("k", 0.01)
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), 1) == "k"
