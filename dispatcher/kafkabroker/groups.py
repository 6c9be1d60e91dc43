"""One consumer group member per Kafka Broker Trigger and per KafkaChannel subscriber,
delivering through the Courier.

What should run comes from the resolvers (`wanted`): each servable Trigger is a
`kevents.consumergroup.Member` of `knative-trigger-<ns>-<name>` on its Broker's topic, each
ready KafkaChannel subscriber one of `kafka.<ns>.<channel>.<uid>` on the channel's topic.
Every data plane replica runs one member of each group, so Kafka spreads a topic's
partitions over the replicas (replicas beyond the partition count stand by). A record is:

1. decoded with the one CloudEvents Kafka binding (`kevents.kafka.decode_record`); a record
   that is not a CloudEvent (someone else wrote to the topic) is skipped, logged;
2. handed to `dispatcher.dispatch.Courier.deliver` with its target (a Trigger's: filter,
   then the subscriber, the reply back through the Broker's ingress; a channel subscriber's:
   the subscriber, the reply to its `replyUri`), retries per the delivery spec, the dead
   letter sink with Knative's error extensions: the in-memory channels' one delivery path;
3. finished (its offset committable) when the subscriber (and reply) or the dead letter sink
   took it, or when it failed with no dead letter sink (Knative drops it then; counted in
   `kevents_events_lost_total`). When the dead letter sink failed too, the record is held
   and tried again later (`kevents.consumergroup`): nothing is committed past it.

A member whose group, topic, credentials or ordering change is stopped (its offsets
committed, leaving the group) and a new one started; a change of filter, subscriber or
delivery only changes the target the running member reads per record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from dispatcher import channels, dispatch, headers, lane
from dispatcher.kafkabroker import metrics as group_metrics
from kevents import consumergroup, errors, kafka, tracing

logger = logging.getLogger(__name__)

RETRY_UNAVAILABLE = 5.0
"""Seconds before a Trigger whose Broker's credentials could not be read is tried again."""


@dataclasses.dataclass(frozen=True, slots=True)
class Want:
    """A member to run: a change of any field replaces the running member."""

    group_id: str
    topic: str
    config: tuple[tuple[str, str], ...]
    ordered: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Desired:
    want: Want
    target: channels.Target
    """How each record is delivered (read per record: a change needs no new member)."""
    namespace: str


GroupKey = tuple[str, ...]
"""("trigger", ns, name) or ("channel", ns, name, subscription uid)."""
Resolver = Callable[[], Awaitable[tuple[dict[GroupKey, Desired], bool]]]
"""What should run now, and whether something must be tried again later."""


@dataclasses.dataclass(slots=True)
class _Running:
    want: Want
    member: consumergroup.Member
    done: asyncio.Event


class Groups:
    def __init__(
        self,
        courier: dispatch.Courier,
        resolvers: list[Resolver],
        *,
        options: consumergroup.Options,
        metrics: group_metrics.GroupMetrics | None = None,
    ) -> None:
        self._courier = courier
        self._metrics = metrics
        self._resolvers = resolvers
        self._options = options
        self.targets: dict[GroupKey, Desired] = {}
        self.running: dict[GroupKey, _Running] = {}
        self._wake = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._stopping = False

    async def stop(self) -> None:
        """Graceful stop (the runner's hook, after the ingresses drained): every member stops
        polling, finishes the deliveries in flight, commits and leaves its group, so its
        partitions move to the other replicas at once and nothing finished is redelivered."""
        self._stopping = True
        await self._stop_all()

    def changed(self) -> None:
        """Something the resolvers read changed: sync at the next turn."""
        self._wake.set()

    def member(self, key: GroupKey) -> consumergroup.Member | None:
        running = self.running.get(key)
        return running.member if running is not None else None

    # ------------------------------------------------------------- the loop

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                while True:
                    await self._wake.wait()
                    self._wake.clear()
                    if await self._sync():
                        group.create_task(self._wake_later(RETRY_UNAVAILABLE))
        finally:
            await asyncio.shield(self._stop_all())

    async def _wake_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._wake.set()

    async def _stop_all(self) -> None:
        running = list(self.running.values())
        for each in running:
            each.member.stop()
        for each in running:
            await each.done.wait()
        self.running.clear()

    async def _sync(self) -> bool:
        """Start, stop and retarget members; True when something must be tried again."""
        desired: dict[GroupKey, Desired] = {}
        again = False
        for resolve in self._resolvers:
            found, retry = await resolve()
            desired.update(found)
            again = again or retry
        self.targets = desired
        for key, running in list(self.running.items()):
            wanted = desired.get(key)
            if wanted is None or wanted.want != running.want:
                running.member.stop()
                await running.done.wait()
                self.running.pop(key, None)
        for key, wanted in desired.items():
            if key not in self.running and not self._stopping:
                self._start(key, wanted.want)
        if self._metrics is not None:
            self._metrics.count_groups(list(self.running))
        return again

    def _start(self, key: GroupKey, want: Want) -> None:
        options = dataclasses.replace(self._options, ordered=want.ordered)
        member = consumergroup.Member(
            dict(want.config), group_id=want.group_id, topics=[want.topic],
            deliver=self._deliverer(key), options=options,
            observer=self._metrics.observer(key) if self._metrics is not None else None,
        )  # fmt: skip
        running = _Running(want, member, asyncio.Event())
        self.running[key] = running
        assert self._group is not None
        self._group.create_task(self._run_member(key, running))
        logger.info("Consuming %s as group %s (%s).", want.topic, want.group_id,
                    "ordered" if want.ordered else "unordered",
                    extra={"consumer_group": want.group_id})  # fmt: skip

    async def _run_member(self, key: GroupKey, running: _Running) -> None:
        try:
            await running.member.run()
        except Exception:
            logger.exception("Consumer group %s failed; starting it again.",
                             running.want.group_id)  # fmt: skip
            if self.running.get(key) is running:
                self.running.pop(key, None)
                assert self._group is not None
                self._group.create_task(self._wake_later(RETRY_UNAVAILABLE))
        finally:
            running.done.set()
            if self._metrics is not None:
                self._metrics.forget(key)

    # ------------------------------------------------------------- delivery

    def _deliverer(self, key: GroupKey) -> consumergroup.Deliver:
        async def deliver(record: kafka.Record) -> bool:
            desired = self.targets.get(key)
            if desired is None:
                return False  # being stopped: held, then abandoned
            target, namespace = desired.target, desired.namespace
            try:
                event = kafka.decode_record(record)
            except errors.InvalidEventError as exc:
                logger.warning(
                    "Record %s-%d@%d is not a valid CloudEvent (%s): skipped.",
                    record.topic, record.partition, record.offset, exc.reason,
                )  # fmt: skip
                return True
            if event is None:
                logger.warning("Record %s-%d@%d is not a CloudEvent: skipped.",
                               record.topic, record.partition, record.offset)  # fmt: skip
                return True
            carried = {k: v.decode("latin-1") for k, v in record.headers if v is not None}
            envelope = lane.Envelope(
                event=event,
                headers={headers.PREFER_REPLY[0]: headers.PREFER_REPLY[1],
                         headers.NAMESPACE_HEADER: namespace},
                context=tracing.extract(
                    {k: v for k, v in carried.items() if k.lower() in _TRACE_HEADERS}
                ),
                namespace=namespace,
                size=len(record.value or b""),
                remaining=1,
            )  # fmt: skip
            ok = await self._courier.deliver(target, envelope)
            return ok or not target.dead_letter_uri

        return deliver


_TRACE_HEADERS = frozenset(
    {"traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "b3"}
)
