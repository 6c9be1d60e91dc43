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

A count bound alone lets events wait for seconds in an asynchronous channel: the producer got
its 202 at once, runs ahead, and every backlog slot adds a subscriber round trip. So each lane
also tracks the sojourn of its events (admission to the start of their delivery) the way
CoDel tracks a packet queue (Nichols & Jacobson, RFC 8289): the oldest waiting event's age is
sampled at each admission that would queue and at each dequeue; once the sojourn has stayed
above `target` for a whole `interval` the lane is *over target* and an asynchronous channel
refuses new events (429) at admission until a sample drops below `target` or the backlog
empties. CoDel alone lets a producer much faster than the subscriber queue a whole
interval's worth of arrivals before the state changes, so a new event is also refused when
its estimated wait exceeds the interval: the events ahead of it times the time one dequeue
takes, which is the recent average time between dequeues or, when longer, the time since the
last dequeue (or since the backlog formed). The second term makes the estimate honest before
the average has any sample (a burst at start) and the moment a subscriber stalls, where the
average alone would still admit a backlog sized for the old pace. An event that starts at
once (below the in-flight limit) never waits and is always taken.
`kevents_dispatcher_sojourn_seconds` records what the waiting events waited.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
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
Waited = Callable[[float], None]
"""Record the sojourn (seconds) of one event that waited in a backlog."""


@dataclasses.dataclass(frozen=True, slots=True)
class Sojourn:
    """The sojourn bound of a lane (CoDel's two parameters); target 0 turns it off."""

    target: float = 0.0
    """Seconds an event may wait in a backlog before its delivery starts."""
    interval: float = 0.1
    """Seconds the sojourn must stay above `target` before admission refuses: a burst shorter
    than this is absorbed by the backlog."""


UNBOUNDED = Sojourn()
"""No sojourn bound: only the count bounds refuse."""


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
        sojourn: Sojourn = UNBOUNDED,
        waited: Waited | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        """Replaced in place when the subscriber's spec changes; queued events follow it."""
        self.concurrency = concurrency
        self.limit = backlog
        self.in_flight = 0
        self.skipped = 0
        """Events not queued for this subscriber because its lane was full."""
        self._backlog: collections.deque[tuple[float, Envelope]] = collections.deque()
        """(admission time, envelope), oldest first."""
        self._deliver = deliver
        self._finish = finish
        self._spawn = spawn
        self._lost = lost
        self._target = sojourn.target
        self._interval = sojourn.interval
        self._waited = waited
        self._clock = clock
        self._above_since: float | None = None
        """When the sampled sojourn went above target (None: at or below it)."""
        self.over = False
        """The sojourn stayed above target for a whole interval and has not dropped since."""
        self._dequeued: float | None = None
        """When the last event left the backlog, or the backlog formed, while the lane stayed
        busy (None: the lane drained)."""
        self._gap = 0.0
        """Moving average of the seconds between dequeues of a busy backlog (0: no sample)."""

    @property
    def waiting(self) -> int:
        return len(self._backlog)

    def has_room(self) -> bool:
        return self.in_flight < self.concurrency or len(self._backlog) < self.limit

    def over_target(self) -> bool:
        """Whether a new event would join a backlog whose sojourn has stayed above target for
        an interval (the asynchronous channel then refuses it). Samples the oldest waiting
        event's age; never true for an event that would start at once."""
        if not self._target or self.in_flight < self.concurrency:
            return False
        backlog = self._backlog
        if not backlog:
            self._sample(0.0, 0.0)
            return False
        now = self._clock()
        self._sample(now - backlog[0][0], now)
        if self.over:
            return True
        per_dequeue = self._gap
        if self._dequeued is not None:
            per_dequeue = max(per_dequeue, now - self._dequeued)
        return len(backlog) * per_dequeue > self._interval

    def _sample(self, sojourn: float, now: float) -> None:
        """CoDel's state machine on one sojourn sample."""
        if sojourn <= self._target:
            self._above_since = None
            self.over = False
        elif self._above_since is None:
            self._above_since = now
        elif not self.over and now - self._above_since >= self._interval:
            self.over = True

    def offer(self, envelope: Envelope) -> None:
        """Start delivering `envelope` now, or queue it (the caller checked `has_room()`)."""
        if self.in_flight < self.concurrency:
            self.in_flight += 1
            self._spawn(self._pump(envelope))
        else:
            now = self._clock()
            if self._target and self._dequeued is None:
                self._dequeued = now  # the backlog forms: its first dequeue is timed from here
            self._backlog.append((now, envelope))

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
                    if self._target:
                        self._sample(0.0, 0.0)  # drained: no standing queue
                        self._dequeued = None
                    return
                admitted, envelope = self._backlog.popleft()
                now = self._clock()
                if self._target:
                    self._sample(now - admitted, now)
                    if self._dequeued is not None:
                        gap = now - self._dequeued
                        self._gap = gap if not self._gap else self._gap + (gap - self._gap) * 0.125
                    self._dequeued = now
                if self._waited is not None:
                    self._waited(now - admitted)
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
            self._finish(self._backlog.popleft()[1], False)
