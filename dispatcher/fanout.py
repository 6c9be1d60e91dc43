"""Fan-out: the routing table of served channels, admission of events, their lanes, drain.

`submit()` is the ingress's only call on the hot path: it admits an event when the process
is under its bounds (events and bytes accepted but not yet delivered everywhere) and hands
it at once to every subscriber's lane that has room; the lanes deliver concurrently. A
subscriber whose lane is full is skipped for that event and the skip counted
(`kevents_events_lost_total{reason="backlog_full"}`), so a subscriber that never answers
cannot refuse events for the healthy ones of its channel. When the bounds are reached, or no
subscriber has room, it raises `errors.QueueFullError` (429) or, while draining,
`QueueClosedError` (503). `drain()` waits for everything accepted to finish at shutdown.

An asynchronous channel also refuses (`errors.OverTargetError`, 429) while a wanted
subscriber's lane is over its sojourn target (`dispatcher.lane`: its events have waited longer
than the target for an interval), so latency under overload is bounded by admission, not by
the backlog's count: the channel then admits at the pace of its slowest subscriber, as a
synchronous channel does, and nothing it accepted waits for long or is skipped.

Channels are synchronous by default, as Knative's InMemoryChannel: `submit()` returns the
envelope, whose `done` future the ingress awaits to answer 202 only once every subscriber
got the event (or its dead letter sink did). `messaging.knative.dev/async-handler: "true"`
makes the ingress answer 202 at admission.

The table changes while serving: `update()` from the channel informer adds, retargets (same
subscription uid) or retires lanes; a retired lane still finishes what it had accepted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine
from typing import Any

from opentelemetry import context as otel_context

from dispatcher import channels, dispatch, lane
from dispatcher import metrics as dispatcher_metrics
from kevents import cloudevent, errors, names, rawevent

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """A served channel and the lanes of its subscribers, in spec order."""

    channel: channels.Channel
    lanes: tuple[lane.Lane, ...]


def _alias(key: channels.Key) -> channels.Key | None:
    """The host-routing key of a channel whose Service name is shortened, else None."""
    service = names.channel_service(key[1])
    if service == key[1] + names.CHANNEL_SERVICE_SUFFIX:
        return None
    return (key[0], service[: -len(names.CHANNEL_SERVICE_SUFFIX)])


class Fanout:
    def __init__(
        self,
        courier: dispatch.Courier,
        metrics: dispatcher_metrics.DispatcherMetrics,
        *,
        queue_size: int,
        queue_bytes: int,
        concurrency: int,
        backlog: int,
        sojourn: lane.Sojourn = lane.UNBOUNDED,
    ) -> None:
        self._courier = courier
        self._sojourn = sojourn
        self._metrics = metrics
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._concurrency = concurrency
        self._backlog = backlog
        self.routes: dict[channels.Key, Route] = {}
        self.brokers: dict[channels.Key, Route] = {}
        """(namespace, broker) -> the route of the broker's trigger channel."""
        self.aliases: dict[channels.Key, channels.Key] = {}
        """Host routing of a long-named channel: its Service name is md5-shortened
        (`kevents.names.channel_service`), so (namespace, Service name minus `-kn-channel`)
        -> the channel's key. Looked up only when a Host names no channel directly."""
        self._lanes: dict[tuple[channels.Key, str], lane.Lane] = {}
        self.pending = 0
        self.pending_bytes = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._group: asyncio.TaskGroup | None = None
        self._started = asyncio.Event()
        metrics.track_queue(lambda: self.pending, lambda: self.pending_bytes)

    # -- routing table ---------------------------------------------------------------------

    def update(self, channel: channels.Channel) -> None:
        """Serve `channel` as given (new, or with changed subscribers)."""
        key = channel.key
        old = self.routes.get(key)
        keep: set[str] = set()
        lanes: list[lane.Lane] = []
        for target in channel.targets:
            if not target.servable or target.uid in keep:
                continue
            keep.add(target.uid)
            found = self._lanes.get((key, target.uid))
            if found is None:
                found = self._lanes[(key, target.uid)] = lane.Lane(
                    target,
                    concurrency=self._concurrency,
                    backlog=self._backlog,
                    deliver=self._courier.deliver,
                    finish=self._finish,
                    spawn=self._spawn,
                    lost=self._lost,
                    sojourn=self._sojourn,
                    waited=self._metrics.sojourn.observe,
                )
            found.target = target
            lanes.append(found)
        for uid in {uid for (k, uid) in self._lanes if k == key} - keep:
            del self._lanes[(key, uid)]
        route = self.routes[key] = Route(channel, tuple(lanes))
        if old is None and (alias := _alias(key)) is not None:
            self.aliases[alias] = key
        if old is not None and old.channel.broker and old.channel.broker != channel.broker:
            self._forget_broker(old)
        if channel.broker:
            self.brokers[(channel.namespace, channel.broker)] = route
        self._metrics.channels.set(len(self.routes))
        before = len(old.lanes) if old is not None else None
        if before != len(lanes):
            logger.info(
                "Channel %s/%s is served with %d subscriber(s).", key[0], key[1], len(lanes),
                extra={"namespace": key[0], "object_name": key[1]},
            )  # fmt: skip

    def _forget_broker(self, route: Route) -> None:
        """Stop routing the broker of `route` unless another channel took it over."""
        broker_key = (route.channel.namespace, route.channel.broker)
        current = self.brokers.get(broker_key)
        if current is not None and current.channel.key == route.channel.key:
            del self.brokers[broker_key]

    def remove(self, key: channels.Key) -> None:
        old = self.routes.pop(key, None)
        if old is None:
            return
        if (alias := _alias(key)) is not None:
            self.aliases.pop(alias, None)
        if old.channel.broker:
            self._forget_broker(old)
        for lane_key in [k for k in self._lanes if k[0] == key]:
            del self._lanes[lane_key]
        self._metrics.channels.set(len(self.routes))
        logger.info(
            "Channel %s/%s was deleted; no longer served.", key[0], key[1],
            extra={"namespace": key[0], "object_name": key[1]},
        )  # fmt: skip

    # -- admission (hot path) --------------------------------------------------------------

    def submit(
        self,
        route: Route,
        event: cloudevent.CloudEvent | rawevent.RawEvent,
        headers: dict[str, str],
        context: otel_context.Context,
        size: int,
    ) -> lane.Envelope | None:
        """Accept `event` for the subscribers of `route`, or raise without side effects.

        A subscriber whose lane is full is skipped for this event (counted as lost with
        reason `backlog_full`), so one stuck subscriber never refuses events for the others;
        only when no wanted subscriber has room is the event refused (429). Returns the
        envelope of a synchronous channel (the ingress awaits `envelope.done`); None for an
        asynchronous one or when no subscriber wants the event.
        """
        if self.draining:
            raise errors.QueueClosedError()
        if self.pending >= self._queue_size or self.pending_bytes + size > self._queue_bytes:
            raise errors.QueueFullError(self._queue_size)
        lanes = route.lanes
        attributes = None
        if route.channel.broker:
            # A broker's channel: only the lanes of Triggers that may want the event take it,
            # so a slow Trigger's backlog never refuses events it would filter out anyway.
            attributes = lane.attributes_of(event)
            wants = self._courier.wants
            lanes = tuple(each for each in lanes if wants(each.target, attributes))
        open_lanes = [each for each in lanes if each.has_room()]
        if lanes and not open_lanes:
            raise errors.QueueFullError(lanes[0].limit)
        if route.channel.async_handler and self._sojourn.target:
            for each in open_lanes:
                if each.over_target():
                    self._metrics.refused_over_target.inc()
                    raise errors.OverTargetError(self._sojourn.target)
        if attributes is not None and len(lanes) != len(route.lanes):
            self._metrics.filtered_unmatched.inc(len(route.lanes) - len(lanes))
        if not lanes:
            return None  # no subscriber (or Trigger) wants it: accepted and dropped, as Knative
        skipped = len(lanes) - len(open_lanes)
        if skipped:
            self._skip(route, [each for each in lanes if not each.has_room()], event)
        envelope = lane.Envelope(
            event, headers, context, route.channel.namespace, size, len(open_lanes), attributes
        )
        envelope.failed = envelope.skipped = skipped
        envelope.wanted = len(lanes)
        if not route.channel.async_handler:
            envelope.done = asyncio.get_running_loop().create_future()
        if self.pending == 0:
            self._idle.clear()
        self.pending += 1
        self.pending_bytes += size
        for each in open_lanes:
            each.offer(envelope)
        return envelope

    def _skip(
        self,
        route: Route,
        full: list[lane.Lane],
        event: cloudevent.CloudEvent | rawevent.RawEvent,
    ) -> None:
        """Count an event not queued for subscribers whose lanes are full; log each lane's
        first skip (and then every 1,000th) rather than one line per event."""
        self._lost("backlog_full", len(full))
        for each in full:
            each.skipped += 1
            if each.skipped % 1000 == 1:
                logger.warning(
                    "Subscriber %s of channel %s/%s has %d event(s) in flight and %d waiting: "
                    "event %s (and %d before it) is not delivered to it; its other "
                    "subscribers still get it.",
                    each.target.uid, route.channel.namespace, route.channel.name,
                    each.in_flight, each.waiting, event.get_id(), each.skipped - 1,
                    extra={"namespace": route.channel.namespace,
                           "object_name": route.channel.name, "event_id": event.get_id()},
                )  # fmt: skip

    def _finish(self, envelope: lane.Envelope, ok: bool) -> None:
        if not ok:
            envelope.failed += 1
        envelope.remaining -= 1
        if envelope.remaining:
            return
        done = envelope.done
        if done is not None and not done.done():
            done.set_result(envelope.failed == 0)
        self.pending -= 1
        self.pending_bytes -= envelope.size
        if self.pending == 0:
            self._idle.set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> object:
        if self._group is None:
            coroutine.close()
            raise RuntimeError("the fan-out is not running")
        return self._group.create_task(coroutine)

    def _lost(self, reason: str, count: int) -> None:
        self._metrics.lost.labels(reason).inc(count)

    # -- lifecycle ---------------------------------------------------------------------------

    async def wait_started(self) -> None:
        await self._started.wait()

    async def run(self) -> None:
        """Own the delivery tasks until cancelled (then in-flight deliveries count as lost)."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._started.set()
            try:
                await asyncio.Event().wait()  # until cancelled
            finally:
                self._group = None

    async def drain(self, grace: float) -> bool:
        """Refuse new events (503) and wait up to `grace` s for the accepted ones."""
        self.draining = True
        logger.info("Draining: %d accepted event(s) still being delivered.", self.pending)
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            logger.error(
                "%d event(s) were not delivered within the %.1f s grace period.",
                self.pending, grace,
            )  # fmt: skip
            return False
        logger.info("Drained: every accepted event was delivered or dead-lettered.")
        return True
