"""The rules of a KafkaSource spec (`sources.knative.dev/v1beta1`), pure: the admission
webhook, the reconciler and the adapter use the same ones (as `kevents.pingspec` for pings).

```
problems(spec)            -> [str]   field errors, each starting with its path
bootstrap_servers(spec)   -> [str]   host:port entries (comma-separated ones split)
topics(spec)              -> [str]   topic names (comma-separated ones split)
env_name(secret_key)      -> str     the adapter's env variable for a Knative Secret key
```

Facts from knative-extensions/eventing-kafka-broker `pkg/apis/sources/v1beta1`
(`kafka_types.go`, `kafka_defaults.go`, `kafka_validation.go`) and
`pkg/apis/bindings/v1beta1` (`KafkaNetSpec`): `topics` and `bootstrapServers` required,
`initialOffset` earliest|latest (default latest), `ordering` ordered|unordered (default
ordered), `consumers` default 1, `consumerGroup` default `knative-kafka-source-<uuid>` and
immutable; SASL and TLS material from `secretKeyRef`s, the SASL mechanism from `net.sasl.type`
(PLAIN when absent).

What `net` names is read by `kevents.kafka` (`net_refs`, `NET_KEYS`, `KafkaAuth.from_net`):
the values travel under the keys of Knative's Kafka Secret (`user`, `password`,
`sasl.mechanism`, `ca.crt`, `user.crt`, `user.key`), so a KafkaSource and a KafkaSink
authenticate alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kevents import errors, kafka

OFFSETS = ("earliest", "latest")
ORDERINGS = ("ordered", "unordered")
DEFAULT_OFFSET = "latest"
DEFAULT_ORDERING = "ordered"
CONSUMER_GROUP_PREFIX = "knative-kafka-source-"
EVENT_TYPE = "dev.knative.kafka.event"
KEY_TYPE_LABEL = "kafkasources.sources.knative.dev/key-type"
KEY_TYPES = ("string", "int", "float", "byte-array")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def event_source(namespace: str, name: str, topic: str) -> str:
    """The `source` of a record's event (Knative's `KafkaEventSource`)."""
    return f"/apis/v1/namespaces/{namespace}/kafkasources/{name}#{topic}"


def new_consumer_group() -> str:
    return CONSUMER_GROUP_PREFIX + str(uuid.uuid4())


def bootstrap_servers(spec: Mapping[str, Any]) -> list[str]:
    """`spec.bootstrapServers`, each entry split at commas, blanks dropped."""
    out: list[str] = []
    for entry in spec.get("bootstrapServers") or []:
        out += [part.strip() for part in str(entry).split(",") if part.strip()]
    return out


def topics(spec: Mapping[str, Any]) -> list[str]:
    """`spec.topics`, each entry split at commas (Knative splits them too)."""
    out: list[str] = []
    for entry in spec.get("topics") or []:
        out += [part.strip() for part in str(entry).split(",") if part.strip()]
    return out


def env_name(secret_key: str) -> str:
    """The adapter's env variable for a Knative Kafka Secret key: KAFKA_NET_<KEY>
    (`sasl.mechanism` -> KAFKA_NET_SASL_MECHANISM, `ca.crt` -> KAFKA_NET_CA_CRT)."""
    return "KAFKA_NET_" + secret_key.upper().replace(".", "_")


def problems(spec: Mapping[str, Any]) -> list[str]:
    """Every problem of the KafkaSource-specific fields (the sink, ceOverrides and delivery
    are judged by the rules every source shares)."""
    found: list[str] = []
    if not topics(spec):
        found.append("spec.topics: missing field(s)")
    if not bootstrap_servers(spec):
        found.append("spec.bootstrapServers: missing field(s)")
    else:
        try:
            kafka.parse_bootstrap(bootstrap_servers(spec))
        except errors.ConfigError as exc:
            found += [f"spec.bootstrapServers: {problem}" for problem in exc.problems]
    offset = spec.get("initialOffset")
    if offset not in (None, "", *OFFSETS):
        found.append(f"spec.initialOffset: invalid value: {offset} (earliest or latest)")
    ordering = spec.get("ordering")
    if ordering not in (None, *ORDERINGS):
        found.append(f"spec.ordering: invalid value: {ordering} (ordered or unordered)")
    consumers = spec.get("consumers")
    if consumers is not None and (
        isinstance(consumers, bool) or not isinstance(consumers, int) or consumers < 0
    ):
        found.append(f"spec.consumers: invalid value: {consumers} (an integer >= 0)")
    net = spec.get("net") or {}
    if isinstance(net, Mapping):
        sasl = net.get("sasl") or {}
        if isinstance(sasl, Mapping) and sasl.get("enable"):
            for field in ("user", "password"):
                if not ((sasl.get(field) or {}).get("secretKeyRef")):
                    found.append(f"spec.net.sasl.{field}: missing field(s) (SASL is enabled)")
    return found
