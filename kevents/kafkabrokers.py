"""The Kafka Broker class's and KafkaChannel's rules (pure), shared by the controller and
the dispatcher.

Knative's eventing-kafka-broker names and keys, unchanged:

- A Broker annotated `eventing.knative.dev/broker.class: Kafka` stores its events in the
  topic `knative-broker-<namespace>-<name>`; each of its Triggers is the consumer group
  `knative-trigger-<namespace>-<name>`.
- `spec.config` names a ConfigMap with `bootstrap.servers`, `default.topic.partitions`,
  `default.topic.replication.factor` and optionally `auth.secret.ref.name` (a Secret with
  Knative's Kafka keys, in the ConfigMap's namespace) -- `parse_config`.
- A Trigger's `kafka.eventing.knative.dev/delivery.order: ordered|unordered` (Knative's
  default unordered) -- `delivery_order`.
- The controller publishes what the data plane needs in the Broker's `status.annotations`
  (`bootstrap.servers`, `default.topic`, ... as Knative's, plus where the auth Secret is),
  so the dispatcher reads Brokers, never ConfigMaps.
- A KafkaChannel stores its events in `knative-messaging-kafka.<ns>.<name>`, each subscriber
  is the group `kafka.<ns>.<channel>.<subscription uid>`, its config is the ConfigMap
  `kafka-channel-config` (`bootstrap.servers`, `auth.secret.ref.name`).
- The topic is deleted with its Broker unless the Broker carries
  `kafka.eventing.knative.dev/external.topic` (Knative's: a topic the user brought) or the
  config says `delete.topic.on.broker.delete: "false"` (kevents' knob, see README).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kevents import errors, kafka, retries

CLASS = "Kafka"
CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
DELIVERY_ORDER_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"
EXTERNAL_TOPIC_ANNOTATION = "kafka.eventing.knative.dev/external.topic"
ORDERED = "ordered"
UNORDERED = "unordered"

BOOTSTRAP_SERVERS = "bootstrap.servers"
PARTITIONS = "default.topic.partitions"
REPLICATION_FACTOR = "default.topic.replication.factor"
SECRET_NAME = "auth.secret.ref.name"
SECRET_NAMESPACE = "auth.secret.ref.namespace"
DELETE_TOPIC = "delete.topic.on.broker.delete"
TOPIC = "default.topic"
"""`status.annotations` key of the Broker's topic (Knative's)."""


CHANNEL_CONFIGMAP = "kafka-channel-config"
"""The KafkaChannels' config in the system namespace (Knative's name)."""


def channel_topic(namespace: str, name: str) -> str:
    """A KafkaChannel's topic (Knative's `knative-messaging-kafka.<ns>.<name>`)."""
    return f"knative-messaging-kafka.{namespace}.{name}"


def channel_group(namespace: str, channel: str, subscription_uid: str) -> str:
    """A KafkaChannel subscriber's consumer group (Knative's `kafka.<ns>.<channel>.<uid>`)."""
    return f"kafka.{namespace}.{channel}.{subscription_uid}"


DEFAULT_RETENTION = "PT168H"
"""Knative's KafkaChannel `retentionDuration` default (7 days)."""


def retention_ms(duration: object) -> int:
    """`retentionDuration` as the topic's `retention.ms`; raises
    `errors.InvalidDurationError` (years and months have no fixed length)."""
    text = duration if isinstance(duration, str) and duration else DEFAULT_RETENTION
    return int(retries.parse_duration(text) * 1000)


def topic_name(namespace: str, name: str) -> str:
    return f"knative-broker-{namespace}-{name}"


def group_id(namespace: str, trigger: str) -> str:
    return f"knative-trigger-{namespace}-{trigger}"


def is_kafka(broker: Mapping[str, Any]) -> bool:
    annotations = (broker.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(CLASS_ANNOTATION) == CLASS)


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerConfig:
    bootstrap_servers: tuple[str, ...]
    partitions: int
    replication_factor: int
    secret_name: str | None
    secret_namespace: str
    delete_topic: bool = True


def parse_config(
    data: Mapping[str, str] | None, namespace: str, *, topic_defaults: bool = True
) -> BrokerConfig:
    """The config ConfigMap's `data` (in `namespace`); raises `errors.ConfigError` naming
    every bad key. `topic_defaults=False` (a KafkaChannel's config: its spec sizes the
    topic) makes `default.topic.*` optional."""
    data = data or {}
    if not topic_defaults:
        data = {PARTITIONS: "1", REPLICATION_FACTOR: "1", **data}
    problems: list[str] = []
    servers: list[str] = []
    try:
        servers = kafka.parse_bootstrap(data.get(BOOTSTRAP_SERVERS) or "")
    except errors.ConfigError as exc:
        problems.extend(exc.problems)
    if not servers and not problems:
        problems.append(f"{BOOTSTRAP_SERVERS}: missing")
    numbers: dict[str, int] = {}
    for key in (PARTITIONS, REPLICATION_FACTOR):
        raw = str(data.get(key) or "").strip()
        try:
            numbers[key] = int(raw)
        except ValueError:
            problems.append(f"{key}: {'missing' if not raw else 'not an integer'}")
            continue
        if numbers[key] < 1:
            problems.append(f"{key}: must be at least 1")
    delete = str(data.get(DELETE_TOPIC) or "true").strip().lower()
    if delete not in ("true", "false"):
        problems.append(f"{DELETE_TOPIC}: true or false")
    if problems:
        raise errors.ConfigError(problems)
    secret = str(data.get(SECRET_NAME) or "").strip() or None
    return BrokerConfig(
        bootstrap_servers=tuple(servers),
        partitions=numbers[PARTITIONS],
        replication_factor=numbers[REPLICATION_FACTOR],
        secret_name=secret,
        secret_namespace=namespace,
        delete_topic=delete == "true",
    )


def status_annotations(config: BrokerConfig, topic: str) -> dict[str, str]:
    """What the Broker's `status.annotations` tell the data plane."""
    out = {
        BOOTSTRAP_SERVERS: ",".join(config.bootstrap_servers),
        TOPIC: topic,
        PARTITIONS: str(config.partitions),
        REPLICATION_FACTOR: str(config.replication_factor),
    }
    if config.secret_name:
        out[SECRET_NAME] = config.secret_name
        out[SECRET_NAMESPACE] = config.secret_namespace
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Published:
    """A Kafka Broker as its `status.annotations` describe it."""

    topic: str
    bootstrap_servers: tuple[str, ...]
    secret_name: str | None
    secret_namespace: str | None


def published(broker: Mapping[str, Any]) -> Published | None:
    """The topic and servers the controller published; None before it did."""
    annotations = (broker.get("status") or {}).get("annotations") or {}
    topic = annotations.get(TOPIC)
    servers = [s.strip() for s in str(annotations.get(BOOTSTRAP_SERVERS) or "").split(",")]
    servers = [s for s in servers if s]
    if not topic or not servers:
        return None
    return Published(
        topic=str(topic),
        bootstrap_servers=tuple(servers),
        secret_name=annotations.get(SECRET_NAME) or None,
        secret_namespace=annotations.get(SECRET_NAMESPACE) or None,
    )


def delivery_order(trigger: Mapping[str, Any]) -> str:
    """`ordered` or `unordered` (Knative's default; an unknown value reads as it)."""
    annotations = (trigger.get("metadata") or {}).get("annotations") or {}
    value = str(annotations.get(DELIVERY_ORDER_ANNOTATION) or UNORDERED).strip().lower()
    return ORDERED if value == ORDERED else UNORDERED
