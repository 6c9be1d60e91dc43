"""A bounded queue with N workers in front of a sender: backpressure instead of memory growth.

A slow or dead sink fills the queue; then `put()` waits and `try_put()` raises
`errors.QueueFullError` so an HTTP receiver can answer 429/503 (knative/eventing PR#2361:
an unbounded queue ends in OOM). `drain(grace)` stops intake and waits for queued and
in-flight events at shutdown. Every event given up is counted in `kevents_events_lost_total`
and logged: nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from opentelemetry import context as otel_context

from kevents import cloudevent, delivery, errors, metrics, retries, sender

logger = logging.getLogger(__name__)

_Item = tuple[cloudevent.CloudEvent, otel_context.Context]
"""A queued event with the trace context it was produced in."""

ResultHook = Callable[[cloudevent.CloudEvent, delivery.DeliveryResult], Awaitable[None]]


class SendQueue:
    def __init__(
        self,
        event_sender: sender.EventSender,
        url: str,
        *,
        maxsize: int = 1000,
        workers: int = 8,
        name: str = "sink",
        grace: float = 20.0,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        sender_metrics: metrics.SenderMetrics | None = None,
        on_result: ResultHook | None = None,
    ) -> None:
        """`maxsize` events wait at most (1000: seconds of a busy source's output, a few MB);
        `workers` send concurrently (8: keeps a keep-alive pool busy without flooding a sink);
        `grace` seconds is what `stop()` gives `drain()` (below Kubernetes' 30 s default)."""
        if maxsize < 1 or workers < 1:
            raise ValueError("maxsize and workers must be at least 1")
        self._sender = event_sender
        self._url = url
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize)
        self._workers = workers
        self.name = name
        self._grace = grace
        self._policy = policy
        self._headers = headers
        self._metrics = sender_metrics
        self._on_result = on_result
        self._closed = False
        self._finished = asyncio.Event()
        self._started = asyncio.Event()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    @property
    def closed(self) -> bool:
        return self._closed

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.labels(self.name).set(self._queue.qsize())

    def _reject(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.queue_rejected.labels(self.name, reason).inc()

    def _lost(self, reason: str, count: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.lost(reason, count)

    async def put(self, event: cloudevent.CloudEvent) -> None:
        """Enqueue, waiting while the queue is full (backpressure on the producer)."""
        if self._closed:
            self._reject("closed")
            raise errors.QueueClosedError()
        await self._queue.put((event, otel_context.get_current()))
        self._gauge()

    def try_put(self, event: cloudevent.CloudEvent) -> None:
        """Enqueue now or raise `QueueFullError` / `QueueClosedError`."""
        if self._closed:
            self._reject("closed")
            raise errors.QueueClosedError()
        try:
            self._queue.put_nowait((event, otel_context.get_current()))
        except asyncio.QueueFull:
            self._reject("full")
            raise errors.QueueFullError(self._queue.maxsize) from None
        self._gauge()

    async def wait_started(self) -> None:
        await self._started.wait()

    async def run(self) -> None:
        """Run the workers until `drain()` finished or cancellation."""
        try:
            async with asyncio.TaskGroup() as group:
                workers = [
                    group.create_task(self._work(), name=f"{self.name}-worker-{i}")
                    for i in range(self._workers)
                ]
                self._started.set()
                await self._finished.wait()
                for worker in workers:
                    worker.cancel()
        finally:
            self._forget_queued()

    def _forget_queued(self) -> None:
        remaining = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            remaining += 1
        if remaining:
            logger.error(
                "Shutting down with %d undelivered event(s) in queue %s; they are lost.",
                remaining, self.name,
            )  # fmt: skip
            self._lost("shutdown", remaining)
        self._gauge()

    async def drain(self, grace: float) -> bool:
        """Stop intake, wait up to `grace` s for every queued and in-flight event, stop workers.

        True when everything was delivered (or given up after its retries) in time.
        """
        self._closed = True
        logger.info("Draining queue %s (%d waiting).", self.name, self._queue.qsize())
        try:
            async with asyncio.timeout(grace):
                await self._queue.join()
            drained = True
        except TimeoutError:
            drained = False
            logger.error("Queue %s did not drain within %.1f s.", self.name, grace)
        self._finished.set()
        return drained

    async def stop(self) -> None:
        """Runner hook: drain within the configured grace period."""
        await self.drain(self._grace)

    async def _work(self) -> None:
        while True:
            event, trace_context = await self._queue.get()
            self._gauge()
            # The producer's trace continues: the send spans are children of its span.
            token = otel_context.attach(trace_context)
            try:
                result = await self._sender.send(
                    event, self._url, policy=self._policy, headers=self._headers
                )
            except asyncio.CancelledError:
                logger.error("Event %s was in flight at shutdown; it is lost.", event.get_id())
                self._lost("shutdown")
                raise
            except Exception:  # a sender bug must not stop the worker; the event is counted
                logger.exception("Sending event %s failed unexpectedly.", event.get_id())
                self._lost("error")
            else:
                if not result.ok:
                    self._lost("retries_exhausted" if result.retryable else "refused")
                if self._on_result is not None:
                    await _call_hook(self._on_result, event, result)
            finally:
                otel_context.detach(token)
                self._queue.task_done()


async def _call_hook(
    hook: ResultHook, event: cloudevent.CloudEvent, result: delivery.DeliveryResult
) -> None:
    try:
        await hook(event, result)
    except Exception:  # the hook is the caller's code; keep the worker alive
        logger.exception("Result hook failed for event %s.", event.get_id())
