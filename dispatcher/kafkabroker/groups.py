"""One consumer group member per Trigger of a Kafka Broker, delivering through the Courier.

Each servable Trigger (its Broker published, its subscriber resolved, its filter valid, its
consumer group made by the controller: `SubscriptionReady` True) is a
`kevents.consumergroup.Member` of the group `knative-trigger-<ns>-<name>` on the Broker's
topic; every dispatcher replica runs one, so the group spreads the topic's partitions over
the replicas (more replicas than partitions leaves the extra ones idle). A record is:

1. decoded with the one CloudEvents Kafka binding (`kevents.kafka.decode_record`); a record
   that is not a CloudEvent (someone else wrote to the topic) is skipped, logged;
2. handed to `dispatcher.dispatch.Courier.deliver` with the Trigger's target
   (`brokers.target`): filter, retries per the delivery spec, reply back through the
   Broker's ingress, dead letter sink with Knative's error extensions -- the channel
   broker's one delivery path;
3. finished (its offset committable) when the subscriber or the dead letter sink took it,
   or when it failed with no dead letter sink (Knative drops it then; counted in
   `kevents_events_lost_total`). When the dead letter sink failed too, the record is held
   and tried again later (`kevents.consumergroup`): nothing is committed past it.

`kafka.eventing.knative.dev/delivery.order: ordered` gives one event in flight per
partition; unordered (Knative's default) `unordered_in_flight` per partition.

A member whose group or topic or credentials change is stopped (its offsets committed,
leaving the group) and a new one started; a change of filter, subscriber or delivery only
changes the target the running member reads per record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from dispatcher import channels, dispatch, headers, lane
from dispatcher.broker import triggers
from dispatcher.kafkabroker import brokers
from dispatcher.kafkasink import producers
from kevents import consumergroup, errors, kafka, kafkabrokers, tracing

logger = logging.getLogger(__name__)

Key = tuple[str, str]
RETRY_UNAVAILABLE = 5.0
"""Seconds before a Trigger whose Broker's credentials could not be read is tried again."""


@dataclasses.dataclass(frozen=True, slots=True)
class Want:
    group_id: str
    topic: str
    config: tuple[tuple[str, str], ...]
    ordered: bool


@dataclasses.dataclass(slots=True)
class _Running:
    want: Want
    member: consumergroup.Member
    done: asyncio.Event


class Groups:
    def __init__(
        self,
        courier: dispatch.Courier,
        table: producers.Table,
        trigger_table: Mapping[Key, triggers.Trigger],
        *,
        options: consumergroup.Options,
        reply_url: str = "",
    ) -> None:
        self._courier = courier
        self._table = table
        self._served = trigger_table
        self._options = options
        self.reply_url = reply_url
        self.brokers: dict[Key, brokers.Broker] = {}
        self.triggers: dict[Key, dict[str, Any]] = {}
        self.targets: dict[Key, channels.Target] = {}
        self.running: dict[Key, _Running] = {}
        self._wake = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None

    # ------------------------------------------------------------- informer side

    def set_broker(self, key: Key, broker: brokers.Broker | None) -> None:
        if broker is None:
            self.brokers.pop(key, None)
        else:
            self.brokers[key] = broker
        self._wake.set()

    def set_trigger(self, key: Key, obj: dict[str, Any] | None) -> None:
        if obj is None:
            self.triggers.pop(key, None)
        else:
            self.triggers[key] = obj
        self._wake.set()

    def members(self, key: Key) -> consumergroup.Member | None:
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
        for running in self.running.values():
            running.member.stop()
        for running in list(self.running.values()):
            await running.done.wait()
        self.running.clear()

    async def _sync(self) -> bool:
        """Start, stop and retarget members; True when something must be tried again."""
        wanted: dict[Key, Want] = {}
        targets: dict[Key, channels.Target] = {}
        again = False
        for key, obj in self.triggers.items():
            broker = self.brokers.get(brokers.broker_of(obj))
            served = self._served.get(key)
            if broker is None or served is None or served.problem or not _subscribed(obj):
                continue
            try:
                auth = await self._table.auth(broker.sink)
                config = kafka.client_config(list(broker.sink.bootstrap_servers), auth)
            except (producers.SinkUnavailableError, errors.ConfigError) as exc:
                logger.warning("Trigger %s/%s waits: %s.", key[0], key[1], exc,
                               extra={"namespace": key[0], "object_name": key[1]})  # fmt: skip
                again = True
                continue
            targets[key] = brokers.target(obj, broker, reply_url=self.reply_url)
            wanted[key] = Want(
                group_id=kafkabrokers.group_id(*key),
                topic=broker.sink.topic,
                config=tuple(sorted((k, str(v)) for k, v in config.items())),
                ordered=kafkabrokers.delivery_order(obj) == kafkabrokers.ORDERED,
            )
        self.targets = targets
        for key, running in list(self.running.items()):
            if wanted.get(key) != running.want:
                running.member.stop()
                await running.done.wait()
                self.running.pop(key, None)
        for key, want in wanted.items():
            if key not in self.running:
                self._start(key, want)
        return again

    def _start(self, key: Key, want: Want) -> None:
        options = dataclasses.replace(self._options, ordered=want.ordered)
        member = consumergroup.Member(
            dict(want.config), group_id=want.group_id, topics=[want.topic],
            deliver=self._deliverer(key), options=options,
        )  # fmt: skip
        running = _Running(want, member, asyncio.Event())
        self.running[key] = running
        assert self._group is not None
        self._group.create_task(self._run_member(key, running))
        logger.info("Trigger %s/%s consumes %s as group %s (%s).", key[0], key[1], want.topic,
                    want.group_id, "ordered" if want.ordered else "unordered",
                    extra={"namespace": key[0], "object_name": key[1]})  # fmt: skip

    async def _run_member(self, key: Key, running: _Running) -> None:
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

    # ------------------------------------------------------------- delivery

    def _deliverer(self, key: Key) -> consumergroup.Deliver:
        namespace = key[0]

        async def deliver(record: kafka.Record) -> bool:
            target = self.targets.get(key)
            if target is None:
                return False  # being retargeted or stopped: held, then abandoned
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


def _subscribed(trigger: dict[str, Any]) -> bool:
    """The controller made the Trigger's consumer group (`SubscriptionReady` True: its start
    offsets are committed), so a member joining now neither replays the topic's history nor
    misses what was sent since the Trigger became Ready."""
    for cond in (trigger.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "SubscriptionReady":
            return bool(cond.get("status") == "True")
    return False
