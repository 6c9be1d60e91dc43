"""The KafkaSource adapter's own settings, read from env once (the Knative adapter env is
`kevents.settings.AdapterSettings`). Every bad variable is reported with its name.

The controller writes these (`controller/kafkasource/adapter.py`); the credentials arrive as
env from the user's Secret (`secretKeyRef`), under the names of Knative's Kafka Secret keys
(`KAFKA_NET_USER`, `KAFKA_NET_PASSWORD`, `KAFKA_NET_SASL_MECHANISM`, `KAFKA_NET_CA_CRT`,
`KAFKA_NET_USER_CRT`, `KAFKA_NET_USER_KEY`), so `kevents.kafka.KafkaAuth.from_data` checks
them as it checks a KafkaSink's Secret.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from kevents import cloudevent, errors, kafka, kafkasourcespec, retries, settings

SECRET_KEYS = ("sasl.mechanism", "user", "password", "ca.crt", "user.crt", "user.key")


DELIVERY_DEFAULT = retries.RetryPolicy(
    retry=4, backoff_policy=retries.BackoffPolicy.EXPONENTIAL, backoff_delay=0.2, backoff_cap=5.0
)
"""Without a `delivery`: 5 attempts over ~3 s. A record whose sink still fails is not dropped
(nor committed): the partition holds it and tries again (`HOLD_*`)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    bootstrap_servers: tuple[str, ...]
    """KAFKA_BOOTSTRAP_SERVERS: host:port, comma-separated. Required."""
    topics: tuple[str, ...]
    """KAFKA_TOPICS: comma-separated. Required."""
    consumer_group: str
    """KAFKA_CONSUMER_GROUP. Required (the controller defaults it in the spec)."""
    initial_offset: str = "latest"
    """KAFKA_INITIAL_OFFSET earliest|latest: where a partition without a committed offset
    starts (the controller commits initial offsets first, so this is a fallback)."""
    ordering: str = "ordered"
    """KAFKA_ORDERING ordered|unordered (Knative's default: ordered)."""
    key_type: str = "string"
    """KAFKA_KEY_TYPE string|int|float|byte-array (label `kafkasources.../key-type`)."""
    auth: kafka.KafkaAuth = dataclasses.field(default_factory=kafka.KafkaAuth)
    """KAFKA_NET_PROTOCOL plus KAFKA_NET_<KEY> values (see the module docstring)."""
    policy: retries.RetryPolicy = DELIVERY_DEFAULT
    """K_DELIVERY: the KafkaSource's `delivery` as JSON (retry, backoffPolicy, backoffDelay,
    timeout, retryAfterMax); absent = `DELIVERY_DEFAULT`."""
    dead_letter_sink: str | None = None
    """K_DEAD_LETTER_SINK: the resolved `delivery.deadLetterSink` URL."""
    encoding: cloudevent.Encoding = cloudevent.Encoding.BINARY
    """`delivery.format` in K_DELIVERY: `binary` (default, as Knative) or `json` (structured)."""
    unordered_in_flight: int = 64
    """KAFKA_UNORDERED_IN_FLIGHT: concurrent deliveries per partition when unordered (64:
    enough to keep a pooled keep-alive connection set busy, bounded for the sink's sake)."""
    partition_buffer: int = 500
    """KAFKA_PARTITION_BUFFER: records fetched ahead per partition before it is paused (500:
    one poll batch; a blocked partition holds at most this many plus one batch)."""
    commit_interval: float = 1.0
    """KAFKA_COMMIT_INTERVAL seconds between commits of delivered offsets (1 s: the window
    redelivered after a crash stays around a second of traffic)."""
    hold_initial: float = 1.0
    """KAFKA_HOLD_INITIAL seconds before a failed record's next round of attempts; doubles
    up to KAFKA_HOLD_MAX (30 s) while the sink keeps failing."""
    hold_max: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = settings.EnvReader(environ)
        servers: list[str] = []
        try:
            servers = kafka.parse_bootstrap(env.string("KAFKA_BOOTSTRAP_SERVERS", required=True))
        except errors.ConfigError as exc:
            for problem in exc.problems:
                env.problem("KAFKA_BOOTSTRAP_SERVERS", problem)
        topics = [t.strip() for t in env.string("KAFKA_TOPICS", required=True).split(",")]
        if not any(topics):
            env.problem("KAFKA_TOPICS", "at least one topic is required")
        auth = kafka.KafkaAuth()
        data: dict[str, str] = {"protocol": env.string("KAFKA_NET_PROTOCOL", "PLAINTEXT")}
        for key in SECRET_KEYS:
            value = env.raw(kafkasourcespec.env_name(key))
            if value:
                data[key] = value
        try:
            auth = kafka.KafkaAuth.from_data(data)
        except errors.ConfigError as exc:
            for problem in exc.problems:
                env.problem("KAFKA_NET_*", problem)
        policy, encoding = DELIVERY_DEFAULT, cloudevent.Encoding.BINARY
        raw_delivery = env.raw("K_DELIVERY")
        if raw_delivery:
            try:
                spec: Any = json.loads(raw_delivery)
                if not isinstance(spec, dict):
                    raise ValueError("not a JSON object")
                encoding = cloudevent.Encoding(spec.get("format") or "binary")
                policy = retries.RetryPolicy.from_delivery_spec(spec)
            except ValueError as exc:
                env.problem("K_DELIVERY", f"invalid delivery JSON: {exc}")
            except errors.ConfigError as exc:
                for problem in exc.problems:
                    env.problem("K_DELIVERY", problem)
        out = cls(
            bootstrap_servers=tuple(servers),
            topics=tuple(t for t in topics if t),
            consumer_group=env.string("KAFKA_CONSUMER_GROUP", required=True),
            initial_offset=env.choice("KAFKA_INITIAL_OFFSET", "latest", kafkasourcespec.OFFSETS),
            ordering=env.choice("KAFKA_ORDERING", "ordered", kafkasourcespec.ORDERINGS),
            key_type=env.choice("KAFKA_KEY_TYPE", "string", kafkasourcespec.KEY_TYPES),
            auth=auth,
            policy=policy,
            dead_letter_sink=env.url("K_DEAD_LETTER_SINK") or None,
            encoding=encoding,
            unordered_in_flight=env.integer(
                "KAFKA_UNORDERED_IN_FLIGHT", 64, minimum=1, maximum=10000
            ),
            partition_buffer=env.integer("KAFKA_PARTITION_BUFFER", 500, minimum=1, maximum=100000),
            commit_interval=env.number("KAFKA_COMMIT_INTERVAL", 1.0, minimum=0.01, maximum=3600.0),
            hold_initial=env.number("KAFKA_HOLD_INITIAL", 1.0, minimum=0.001, maximum=3600.0),
            hold_max=env.number("KAFKA_HOLD_MAX", 30.0, minimum=0.001, maximum=3600.0),
        )
        env.check()
        return out
