"""`Forwarder`: webhook events into a bounded send queue, each webhook told what became of it.

A webhook is answered only once its fate is known (`Fate`): the sink accepted the event, the
sink failed or refused it (GitHub gets a 5xx and may redeliver), the queue is full (503 now),
or the event is still queued when `ack_timeout` expires (it stays queued and keeps its
retries; GitHub gets 202 before its own 10 s timeout).

Redeliveries never produce a second event: an id that reached the sink is in the
`deliveries.DeliveryCache`; an id still in flight is joined (the redelivery waits for the
first attempt's outcome). A failed delivery is forgotten, so GitHub's redelivery is sent again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Callable, Mapping

from kevents import cloudevent, delivery, errors, metrics, retries, sender, sendqueue
from sources.github import deliveries

logger = logging.getLogger(__name__)

RETRY = retries.RetryPolicy(
    retry=4,
    backoff_policy=retries.BackoffPolicy.EXPONENTIAL,
    backoff_delay=0.2,
    backoff_cap=2.0,
    jitter=0.2,
    timeout=5.0,
    retry_after_max=2.0,
)
"""5 attempts 0.2-1.6 s apart (~3 s of waits), 5 s per attempt unless K_SINK_TIMEOUT says
otherwise: a sink that restarts is waited for, yet a sink that is down is usually reported to
GitHub (503) within the ack timeout instead of silently queued."""

Settle = Callable[[str, delivery.DeliveryResult | None], None]


class Fate(enum.Enum):
    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    QUEUED = "queued"
    FULL = "full"
    CLOSED = "closed"
    FAILED = "failed"
    REFUSED = "refused"


@dataclasses.dataclass(frozen=True, slots=True)
class Forwarded:
    fate: Fate
    detail: str = ""
    """Words for the HTTP answer: why the sink did not take it, how full the queue is."""


class _SettlingSender:
    """The real sender, plus: every finished send settles the waiting webhook's future."""

    def __init__(self, inner: sender.EventSender, settle: Settle) -> None:
        self._inner = inner
        self._settle = settle

    async def send(
        self,
        event: cloudevent.CloudEvent,
        url: str,
        *,
        policy: retries.RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        encoding: cloudevent.Encoding | None = None,
    ) -> delivery.DeliveryResult:
        try:
            result = await self._inner.send(
                event, url, policy=policy, headers=headers, encoding=encoding
            )
        except BaseException:
            self._settle(event.get_id(), None)
            raise
        self._settle(event.get_id(), result)
        return result


def _describe(result: delivery.DeliveryResult | None) -> str:
    if result is None:
        return "delivery failed unexpectedly"
    what = f"status {result.status}" if result.status is not None else result.error
    return f"{what} after {result.attempts} attempt(s)"


class Forwarder:
    def __init__(
        self,
        event_sender: sender.EventSender,
        sink: str,
        *,
        cache: deliveries.DeliveryCache,
        ack_timeout: float = 8.0,
        queue_size: int = 1000,
        queue_bytes: int = 256 * 1024 * 1024,
        workers: int = 32,
        policy: retries.RetryPolicy = RETRY,
        sender_metrics: metrics.SenderMetrics | None = None,
        grace: float = 15.0,
    ) -> None:
        """Defaults as `config.Settings`; `grace` (15 s) is the queue's drain time at shutdown,
        inside the runner's 25 s."""
        self.cache = cache
        self._ack_timeout = ack_timeout
        self._queue_bytes = queue_bytes
        self._pending: dict[str, asyncio.Future[delivery.DeliveryResult | None]] = {}
        self._sizes: dict[str, int] = {}
        self.queued_bytes = 0
        self.queue = sendqueue.SendQueue(
            _SettlingSender(event_sender, self._settle),
            sink,
            maxsize=queue_size,
            workers=workers,
            name="sink",
            grace=grace,
            policy=policy,
            sender_metrics=sender_metrics,
        )

    @property
    def in_flight(self) -> int:
        """Events queued or being sent."""
        return len(self._pending)

    def delivered(self, delivery_id: str) -> bool:
        return delivery_id in self.cache

    async def forward(self, event: cloudevent.CloudEvent, size: int) -> Forwarded:
        """Queue `event` (its payload `size` bytes) and wait for its fate, at most ack_timeout."""
        delivery_id = event.get_id()
        if delivery_id in self.cache:
            return Forwarded(Fate.DUPLICATE, "already delivered")
        future = self._pending.get(delivery_id)
        joined = future is not None
        if future is None:
            if self._pending and self.queued_bytes + size > self._queue_bytes:
                return Forwarded(Fate.FULL, f"{self.queued_bytes} payload bytes wait for the sink")
            try:
                self.queue.try_put(event)
            except errors.QueueFullError as exc:
                return Forwarded(Fate.FULL, f"{exc.maxsize} events wait for the sink")
            except errors.QueueClosedError:
                return Forwarded(Fate.CLOSED, "shutting down")
            future = asyncio.get_running_loop().create_future()
            self._pending[delivery_id] = future
            self._sizes[delivery_id] = size
            self.queued_bytes += size
        try:
            async with asyncio.timeout(self._ack_timeout):
                result = await asyncio.shield(future)
        except TimeoutError:
            logger.info(
                "Event %s is still queued after %.1f s; answering 202 while delivery continues.",
                delivery_id, self._ack_timeout, extra={"event_id": delivery_id},
            )  # fmt: skip
            return Forwarded(Fate.QUEUED, "the sink has not answered yet; delivery continues")
        if result is not None and result.ok:
            return Forwarded(Fate.DUPLICATE if joined else Fate.DELIVERED)
        if result is not None and not result.retryable:
            return Forwarded(Fate.REFUSED, _describe(result))
        return Forwarded(Fate.FAILED, _describe(result))

    def _settle(self, delivery_id: str, result: delivery.DeliveryResult | None) -> None:
        self.queued_bytes -= self._sizes.pop(delivery_id, 0)
        future = self._pending.pop(delivery_id, None)
        if result is not None and result.ok:
            self.cache.add(delivery_id)
        if future is not None and not future.done():
            future.set_result(result)
