"""The Kafka Broker data plane's settings, read from the environment once.

The ingress side is the KafkaSink ingress's (`dispatcher.kafkasink.settings`, same
variables); the consumer side adds its own, every bad variable reported by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from dispatcher.kafkasink import settings as sink_settings
from kevents import consumergroup, settings

COMPONENT = "kafka-broker"
"""Service name of its spans and its Deployment's name (Knative's `kafka-broker-receiver`
and `kafka-broker-dispatcher` in one process: see README)."""


@dataclasses.dataclass(frozen=True, slots=True)
class KafkaBrokerSettings:
    ingress: sink_settings.KafkaSinkSettings
    channel_port: int = 8001
    """KEVENTS_CHANNEL_INGRESS_PORT: where KafkaChannel events arrive (the
    `kafka-channel-ingress` Service targets it; channels are told apart by Host)."""
    reply_url: str = ""
    """KEVENTS_KAFKA_BROKER_REPLY_URL: base URL replies are POSTed to (`<url>/<ns>/<broker>`);
    empty: the Broker's own address (`status.address.url`), the in-cluster default."""
    unordered_in_flight: int = 32
    """KEVENTS_UNORDERED_IN_FLIGHT deliveries per partition of an unordered Trigger."""
    partition_buffer: int = 500
    """KEVENTS_PARTITION_BUFFER records waiting per partition before it is paused."""
    commit_interval: float = 1.0
    """KEVENTS_COMMIT_INTERVAL seconds between offset commits: the redelivery window after a
    crash is what was delivered within it."""
    subscriber_concurrency: int = 256
    """KEVENTS_SUBSCRIBER_CONCURRENCY connections per subscriber host."""

    @property
    def group_options(self) -> consumergroup.Options:
        return consumergroup.Options(
            ordered=False,
            in_flight=self.unordered_in_flight,
            partition_buffer=self.partition_buffer,
            commit_interval=self.commit_interval,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaBrokerSettings:
        reader = settings.EnvReader(environ)
        ingress = sink_settings.KafkaSinkSettings.from_env(environ)
        result = cls(
            ingress=ingress,
            channel_port=reader.integer(
                "KEVENTS_CHANNEL_INGRESS_PORT", 8001, minimum=0, maximum=65535
            ),
            reply_url=reader.string("KEVENTS_KAFKA_BROKER_REPLY_URL", ""),
            unordered_in_flight=reader.integer(
                "KEVENTS_UNORDERED_IN_FLIGHT", 32, minimum=1, maximum=10000
            ),
            partition_buffer=reader.integer(
                "KEVENTS_PARTITION_BUFFER", 500, minimum=1, maximum=1000000
            ),
            commit_interval=reader.number(
                "KEVENTS_COMMIT_INTERVAL", 1.0, minimum=0.01, maximum=3600.0
            ),
            subscriber_concurrency=reader.integer(
                "KEVENTS_SUBSCRIBER_CONCURRENCY", 256, minimum=1, maximum=100000
            ),
        )
        reader.check()
        return result
