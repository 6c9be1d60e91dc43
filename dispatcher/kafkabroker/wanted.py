"""What consumer group members should run (`groups.Resolver`s), from the informers' tables.

- `TriggerGroups`: a Trigger of a served Kafka Broker (`brokers.parse`) whose subscriber is
  resolved, filter valid and consumer group made by the controller (`SubscriptionReady`
  True: its start offsets are committed, so a member joining now neither replays the topic's
  history nor misses what was sent since the Trigger became Ready). Ordering from
  `kafka.eventing.knative.dev/delivery.order`.
- `ChannelGroups`: each `spec.subscribers` entry of a served KafkaChannel that the
  controller reported ready in `status.subscribers` (same generation): its group's start
  offsets are committed. Ordering: unordered, as Knative's KafkaChannel dispatcher.

Credentials come from the ingress's producer table (`producers.Table.auth`: the Secret read
once for producing and consuming).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dispatcher import channels
from dispatcher.broker import triggers
from dispatcher.kafkabroker import brokers, groups
from dispatcher.kafkasink import producers, sinks
from kevents import errors, kafka, kafkabrokers

logger = logging.getLogger(__name__)

Key = tuple[str, str]


async def _config(
    table: producers.Table, sink: sinks.Sink
) -> tuple[tuple[tuple[str, str], ...] | None, str]:
    try:
        auth = await table.auth(sink)
        config = kafka.client_config(list(sink.bootstrap_servers), auth)
    except (producers.SinkUnavailableError, errors.ConfigError) as exc:
        return None, str(exc)
    return tuple(sorted((k, str(v)) for k, v in config.items())), ""


class _Waiting:
    """Logs why an object waits once per distinct reason, not at every sync."""

    def __init__(self) -> None:
        self._said: dict[tuple[str, ...], str] = {}

    def say(self, what: str, key: Key, problem: str) -> None:
        if self._said.get((what, *key)) != problem:
            self._said[(what, *key)] = problem
            logger.warning("%s %s/%s waits: %s.", what, key[0], key[1], problem,
                           extra={"namespace": key[0], "object_name": key[1]})  # fmt: skip

    def clear(self, what: str, key: Key) -> None:
        self._said.pop((what, *key), None)


def _condition(obj: Mapping[str, Any], kind: str) -> str:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return ""


class TriggerGroups:
    def __init__(
        self,
        table: producers.Table,
        served: Mapping[Key, triggers.Trigger],
        *,
        reply_url: str = "",
    ) -> None:
        self._table = table
        self._served = served
        self.reply_url = reply_url
        self.brokers: dict[Key, brokers.Broker] = {}
        self.triggers: dict[Key, dict[str, Any]] = {}
        self._waiting = _Waiting()

    async def __call__(self) -> tuple[dict[groups.GroupKey, groups.Desired], bool]:
        out: dict[groups.GroupKey, groups.Desired] = {}
        again = False
        for key, obj in self.triggers.items():
            broker = self.brokers.get(brokers.broker_of(obj))
            served = self._served.get(key)
            if broker is None or served is None or served.problem:
                continue
            if _condition(obj, "SubscriptionReady") != "True":
                continue
            config, problem = await _config(self._table, broker.sink)
            if config is None:
                self._waiting.say("Trigger", key, problem)
                again = True
                continue
            self._waiting.clear("Trigger", key)
            want = groups.Want(
                group_id=kafkabrokers.group_id(*key),
                topic=broker.sink.topic,
                config=config,
                ordered=kafkabrokers.delivery_order(obj) == kafkabrokers.ORDERED,
            )
            target = brokers.target(obj, broker, reply_url=self.reply_url)
            out[("trigger", *key)] = groups.Desired(want, target, key[0])
        return out, again


class ChannelGroups:
    def __init__(self, table: producers.Table) -> None:
        self._table = table
        self.channels: dict[Key, dict[str, Any]] = {}
        self._waiting = _Waiting()

    async def __call__(self) -> tuple[dict[groups.GroupKey, groups.Desired], bool]:
        out: dict[groups.GroupKey, groups.Desired] = {}
        again = False
        for key, obj in self.channels.items():
            sink = brokers.channel_sink(obj)
            if sink is None:
                continue
            config, problem = await _config(self._table, sink)
            if config is None:
                self._waiting.say("KafkaChannel", key, problem)
                again = True
                continue
            self._waiting.clear("KafkaChannel", key)
            spec, status = obj.get("spec") or {}, obj.get("status") or {}
            ready = {
                (str(s.get("uid")), s.get("observedGeneration"))
                for s in status.get("subscribers") or []
                if s.get("ready") == "True"
            }
            own = spec.get("delivery")
            delivery: dict[str, Any] = own if isinstance(own, dict) else {}
            for entry in spec.get("subscribers") or []:
                uid = str(entry.get("uid", ""))
                if (uid, entry.get("generation")) not in ready:
                    continue
                target = channels.target(
                    entry, delivery, str(status.get("deadLetterSinkUri") or "")
                )
                if target.problem and not target.servable:
                    continue
                want = groups.Want(
                    group_id=kafkabrokers.channel_group(key[0], key[1], uid),
                    topic=sink.topic,
                    config=config,
                    ordered=False,
                )
                out[("channel", key[0], key[1], uid)] = groups.Desired(want, target, key[0])
        return out, again
