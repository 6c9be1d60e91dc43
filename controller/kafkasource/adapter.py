"""The receive adapter of one KafkaSource: a Deployment whose replicas are the members of the
source's consumer group, computed purely from the reconciler's inputs.

Why a Deployment per source, not one multi-tenant dispatcher
-------------------------------------------------------------
Knative's current KafkaSource runs every source in a shared dispatcher StatefulSet, placed by
its own scheduler (vpods, `ConsumerGroup`/`Consumer` internal CRDs, placements, a descheduler
and an autoscaler). Its earlier data plane (knative-extensions/eventing-kafka) ran a receive
adapter Deployment per source. We run one Deployment per source, as our other sources do:

- Scaling out is Kafka's job: `spec.consumers` is the Deployment's `replicas`, every replica
  joins the same consumer group and the group coordinator spreads the partitions over them
  (and moves them when a pod dies). The shared dispatcher needs a scheduler of our own to do
  what a Deployment plus the group protocol already do; the scale subresource
  (`kubectl scale kafkasource --replicas`) maps onto it directly.
- Credentials stay in the source's namespace: the pod reads the SASL/TLS values from the
  user's Secret as env (`secretKeyRef`), so no shared process holds every user's
  credentials, and no component needs `get` on Secrets in every namespace at run time.
- Isolation: one source's hot topic, slow sink or ordered partition blocked on a failing
  event never delays another source's records; a crash restarts one consumer group.

The cost is a pod per source (~50 MiB idle); clusters with hundreds of KafkaSources would
want the shared dispatcher, which the env contract below (one source per process) does not
preclude.

Env contract (`sources/kafka/config.py`): Knative's adapter env (K_SINK, NAMESPACE, NAME,
K_CE_OVERRIDES, K_CA_CERTS, K_LOGGING_CONFIG, K_TRACING_CONFIG, METRICS_PROMETHEUS_PORT) plus
KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPICS, KAFKA_CONSUMER_GROUP, KAFKA_INITIAL_OFFSET,
KAFKA_ORDERING, KAFKA_KEY_TYPE, K_DELIVERY (the delivery spec as JSON), K_DEAD_LETTER_SINK
(resolved), KAFKA_NET_PROTOCOL and KAFKA_NET_<KEY> for each Knative Kafka Secret key a
`net` ref names (from the user's Secret, never written into this spec).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller import adapterpod
from controller.framework import sinks
from kevents import kafkasourcespec, kubeapi, names

DEPLOYMENTS = kubeapi.Resource("apps", "v1", "deployments")
CONTROLLER_AGENT = "kafka-source-controller"
METRICS_PORT = adapterpod.METRICS_PORT
SECRETS_VERSION = "sources.knative.dev/net-secrets-version"
"""Pod template annotation: the resourceVersions of the Secrets `net` names, so editing one
rolls the pods (env from a Secret is read at container start only)."""


def name(source_name: str, uid: str) -> str:
    """Of the Deployment (kmeta.ChildName, as eventing-kafka's `kafkasource-<name>-<uid>`)."""
    return names.child_name(f"kafkasource-{source_name}-", uid)


def labels(source_name: str) -> dict[str, str]:
    return adapterpod.labels(CONTROLLER_AGENT, source_name)


def selector(source_name: str) -> str:
    """`status.selector` (the scale subresource's labelSelectorPath): the pods' labels."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels(source_name).items()))


Config = adapterpod.Config


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the Deployment depends on, resolved by the reconciler."""

    name: str
    namespace: str
    uid: str
    sink: sinks.Address
    bootstrap_servers: Sequence[str]
    topics: Sequence[str]
    consumer_group: str
    replicas: int = 1
    initial_offset: str = kafkasourcespec.DEFAULT_OFFSET
    ordering: str = kafkasourcespec.DEFAULT_ORDERING
    key_type: str = "string"
    protocol: str = "PLAINTEXT"
    secret_refs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Knative Kafka Secret key (`user`, `password`, ...) -> (Secret name, key) `net` names."""
    secrets_version: str = ""
    delivery: Mapping[str, Any] | None = None
    dead_letter_sink: str | None = None
    ce_overrides: Mapping[str, Any] | None = None


def owner(inputs: Inputs) -> dict[str, Any]:
    return adapterpod.owner(inputs.name, inputs.uid, "sources.knative.dev/v1beta1", "KafkaSource")


def env(inputs: Inputs, config: Config) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "K_SINK", "value": inputs.sink.url},
        {"name": "NAMESPACE", "value": inputs.namespace},
        {"name": "NAME", "value": inputs.name},
        {"name": "K_COMPONENT", "value": "kafkasource"},
        {"name": "SYSTEM_NAMESPACE", "value": config.system_namespace},
        {"name": "METRICS_PROMETHEUS_PORT", "value": str(METRICS_PORT)},
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": ",".join(inputs.bootstrap_servers)},
        {"name": "KAFKA_TOPICS", "value": ",".join(inputs.topics)},
        {"name": "KAFKA_CONSUMER_GROUP", "value": inputs.consumer_group},
        {"name": "KAFKA_INITIAL_OFFSET", "value": inputs.initial_offset},
        {"name": "KAFKA_ORDERING", "value": inputs.ordering},
        {"name": "KAFKA_KEY_TYPE", "value": inputs.key_type},
        {"name": "KAFKA_NET_PROTOCOL", "value": inputs.protocol},
    ]
    for key, (secret, secret_key) in sorted(inputs.secret_refs.items()):
        # the value comes from the user's Secret; it never enters this spec
        ref = {"name": secret, "key": secret_key}
        out.append({"name": kafkasourcespec.env_name(key), "valueFrom": {"secretKeyRef": ref}})
    if inputs.delivery:
        delivery = {k: v for k, v in inputs.delivery.items() if k != "deadLetterSink"}
        out.append({"name": "K_DELIVERY", "value": adapterpod.go_json(delivery)})
    if inputs.dead_letter_sink:
        out.append({"name": "K_DEAD_LETTER_SINK", "value": inputs.dead_letter_sink})
    return out + adapterpod.Common(
        logging_config=config.logging_config, tracing_config=config.tracing_config,
        ca_certs=inputs.sink.ca_certs, audience=inputs.sink.audience,
        ce_overrides=inputs.ce_overrides,
    ).env()  # fmt: skip


def deployment(inputs: Inputs, config: Config) -> dict[str, Any]:
    """The desired Deployment, as sent with server-side apply."""
    annotations = {SECRETS_VERSION: inputs.secrets_version} if inputs.secrets_version else {}
    return adapterpod.deployment(
        adapterpod.Pod(
            name=name(inputs.name, inputs.uid),
            namespace=inputs.namespace,
            labels=labels(inputs.name),
            owner=owner(inputs),
            image=config.image,
            env=env(inputs, config),
            # records wait in bounded per-partition lanes (sources.kafka)
            memory_limit="512Mi",
            replicas=inputs.replicas,
            annotations=annotations,
            # a consumer leaving the group hands its partitions over after committing
            grace_seconds=30,
        )
    )
