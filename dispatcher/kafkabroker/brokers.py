"""Kafka Broker, Trigger and KafkaChannel objects -> what the data plane serves (pure).

A Broker is served once the controller published its topic and servers in
`status.annotations` (`kevents.kafkabrokers.published`): to the ingress it is a
`dispatcher.kafkasink.sinks.Sink` (binary content mode, the config's Secret). A Trigger of
a served Broker is delivered by the channel broker's Courier: `target()` gives the
`dispatcher.channels.Target` the Courier needs -- the broker filter URI naming the Trigger
(so the Courier filters with the Trigger table's compiled filter), the reply URI (the
Broker's own ingress address: replies go back through the ingress into the topic), the
delivery (the Trigger's, else the Broker's) and the dead letter sink the Trigger reconciler
resolved (`status.deadLetterSinkUri`, the Broker's when the Trigger has none).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dispatcher import channels
from dispatcher.broker import triggers
from dispatcher.kafkasink import sinks
from kevents import kafkabrokers

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Broker:
    sink: sinks.Sink
    """The Broker as the ingress serves it (topic, servers, Secret)."""
    address: str
    """`status.address.url`: where replies go."""
    delivery: dict[str, Any]
    """`spec.delivery` (retries for Triggers without their own)."""


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def parse(obj: dict[str, Any]) -> Broker | None:
    """The served Broker, or None when it is not a Kafka Broker the controller set up."""
    if not kafkabrokers.is_kafka(obj):
        return None
    published = kafkabrokers.published(obj)
    if published is None:
        return None
    namespace, name = key_of(obj)
    address = str(((obj.get("status") or {}).get("address") or {}).get("url") or "")
    delivery = (obj.get("spec") or {}).get("delivery")
    return Broker(
        sink=sinks.Sink(
            namespace=namespace,
            name=name,
            topic=published.topic,
            bootstrap_servers=published.bootstrap_servers,
            content_mode=sinks.BINARY,
            secret=published.secret_name,
            secret_namespace=published.secret_namespace,
        ),
        address=address,
        delivery=dict(delivery) if isinstance(delivery, dict) else {},
    )


def broker_of(trigger: dict[str, Any]) -> Key:
    meta, spec = trigger.get("metadata") or {}, trigger.get("spec") or {}
    return (str(meta.get("namespace", "")), str(spec.get("broker", "")))


def target(trigger: dict[str, Any], broker: Broker, *, reply_url: str = "") -> channels.Target:
    """How the Courier delivers the Trigger's events (`reply_url` overrides the Broker's
    address as the reply destination: tests running the ingress on loopback)."""
    meta, spec = trigger.get("metadata") or {}, trigger.get("spec") or {}
    status = trigger.get("status") or {}
    namespace, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
    own = spec.get("delivery")
    delivery = dict(own if isinstance(own, dict) else broker.delivery)
    dls = status.get("deadLetterSinkUri")
    delivery.pop("deadLetterSink", None)
    if isinstance(dls, str) and dls:
        delivery["deadLetterSink"] = {"uri": dls}
    filter_uri = f"http://{triggers.FILTER_HOST}/{triggers.FILTER_PATH}/{namespace}/{name}/{uid}"
    reply = reply_url.rstrip("/") + f"/{namespace}/{broker.sink.name}" if reply_url else ""
    entry: channels.SubscriberSpec = {
        "uid": str(uid),
        "generation": int(meta.get("generation") or 0),
        "subscriberUri": filter_uri,
        "replyUri": reply or broker.address,
        "delivery": delivery,
    }
    return channels.target(entry, {}, "")


def channel_sink(obj: dict[str, Any]) -> sinks.Sink | None:
    """A KafkaChannel as its ingress serves it, once the controller published its topic."""
    published = kafkabrokers.published(obj)
    if published is None:
        return None
    namespace, name = key_of(obj)
    return sinks.Sink(
        namespace=namespace,
        name=name,
        topic=published.topic,
        bootstrap_servers=published.bootstrap_servers,
        content_mode=sinks.BINARY,
        secret=published.secret_name,
        secret_namespace=published.secret_namespace,
    )
