"""A lane: the path of events to one subscriber, with its own in-flight limit and backlog.

Every subscriber of every channel has a lane, so a slow subscriber only slows itself
(knative/eventing#2666: the dispatcher overran slow subscribers and dropped events). At most
`concurrency` deliveries run at once; further events wait in a bounded backlog, and
`has_room()` turns false when it is full: the fan-out then skips this subscriber for the
event (counted as lost) while the channel's other subscribers still take it, or answers 429
when no subscriber has room. Delivery tasks are started only when the lane is below its
limit and then keep taking from the backlog, so under load there is no task per event.

Each delivery reports whether the event reached the subscriber (or its dead letter sink);
the envelope counts the failures, and a synchronous channel's ingress answers from them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from opentelemetry import context as otel_context

from dispatcher import channels
from kevents import cloudevent, rawevent

logger = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True, eq=False)
class Envelope:
    """An accepted event on its way to the lanes of its channel (shared by them)."""

    event: cloudevent.CloudEvent | rawevent.RawEvent
    """As received (forwarded as-is), or built (tests, replies)."""
    headers: dict[str, str]
    """Pass-through headers plus `Prefer: reply`, sent to every subscriber."""
    context: otel_context.Context
    """The trace context of the ingress span: deliveries, replies and DLS continue it."""
    namespace: str
    size: int
    """Body bytes, counted against the queue's byte bound until every lane is done."""
    remaining: int
    """Lanes that have not finished with this event yet."""
    _attributes: Mapping[str, object] | None = None
    failed: int = 0
    """Subscribers that did not get it: lanes that finished without delivering it (not even
    to a dead letter sink), plus `skipped`."""
    skipped: int = 0
    """Subscribers whose lanes were full at admission: it was never queued for them."""
    wanted: int = 0
    """Subscribers (Triggers whose filter may match) the event was admitted for."""
    done: asyncio.Future[bool] | None = None
    """Set for a synchronous channel: resolved when every lane finished, True when every
    subscriber got the event (or its dead letter sink did)."""

    def attributes(self) -> Mapping[str, object]:
        """The event's attributes as filters see them, read once for all of its Triggers."""
        found = self._attributes
        if found is None:
            found = self._attributes = attributes_of(self.event)
        return found


def attributes_of(event: cloudevent.CloudEvent | rawevent.RawEvent) -> Mapping[str, object]:
    if isinstance(event, rawevent.RawEvent):
        return event.attributes()
    return event.get_attributes()


Deliver = Callable[[channels.Target, Envelope], Awaitable[bool]]
"""Deliver one event to one subscriber; True when it (or its dead letter sink) took it."""
Finish = Callable[[Envelope, bool], None]
Spawn = Callable[[Coroutine[Any, Any, None]], object]
Lost = Callable[[str, int], None]


class Lane:
    def __init__(
        self,
        target: channels.Target,
        *,
        concurrency: int,
        backlog: int,
        deliver: Deliver,
        finish: Finish,
        spawn: Spawn,
        lost: Lost,
    ) -> None:
        self.target = target
        """Replaced in place when the subscriber's spec changes; queued events follow it."""
        self.concurrency = concurrency
        self.limit = backlog
        self.in_flight = 0
        self.skipped = 0
        """Events not queued for this subscriber because its lane was full."""
        self._backlog: collections.deque[Envelope] = collections.deque()
        self._deliver = deliver
        self._finish = finish
        self._spawn = spawn
        self._lost = lost

    @property
    def waiting(self) -> int:
        return len(self._backlog)

    def has_room(self) -> bool:
        return self.in_flight < self.concurrency or len(self._backlog) < self.limit

    def offer(self, envelope: Envelope) -> None:
        """Start delivering `envelope` now, or queue it (the caller checked `has_room()`)."""
        if self.in_flight < self.concurrency:
            self.in_flight += 1
            self._spawn(self._pump(envelope))
        else:
            self._backlog.append(envelope)

    async def _pump(self, envelope: Envelope) -> None:
        try:
            while True:
                ok = False
                try:
                    ok = await self._deliver(self.target, envelope)
                except asyncio.CancelledError:
                    self._lost("shutdown", 1)
                    raise
                except Exception:  # a bug must not stall the lane; the delivery is counted
                    logger.exception(
                        "Delivering event %s failed unexpectedly.", envelope.event.get_id()
                    )
                    self._lost("error", 1)
                finally:
                    self._finish(envelope, ok)
                if not self._backlog:
                    return
                envelope = self._backlog.popleft()
        except asyncio.CancelledError:
            self._drop_backlog()
            raise
        finally:
            self.in_flight -= 1

    def _drop_backlog(self) -> None:
        dropped = len(self._backlog)
        if not dropped:
            return
        logger.error(
            "Shutting down with %d event(s) waiting for subscriber %s; they are lost.",
            dropped, self.target.uid,
        )  # fmt: skip
        self._lost("shutdown", dropped)
        while self._backlog:
            self._finish(self._backlog.popleft(), False)
