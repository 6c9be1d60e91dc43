"""Level-based reconciler of KafkaSink (knative-extensions/eventing-kafka-broker
`control-plane/pkg/reconciler/sink`).

1. Addressable: `status.address.url` is `http://kafka-sink-ingress.<system-ns>.svc.cluster.local
   /<ns>/<name>`, set first: the URL is known without Kafka, and users see it while fixing
   whatever else is wrong (Ready stays False meanwhile).
2. DataPlaneAvailable: the `kafka-sink-ingress` Service has a ready endpoint (Knative checks
   its receiver pods); False with Knative's reason "Data plane not available".
3. ConfigParsed: the auth Secret (`spec.auth.secret.ref.name`) read and turned into
   credentials with `kevents.kafka.KafkaAuth` (Knative's keys); a missing Secret or a bad
   key is False with the key named (never a value). The controller may only `get` Secrets
   (no watch), so a Secret edited later is seen on the next reconcile: the backoff of a
   failed one, or the resync.
4. TopicReady: with `numPartitions` and `replicationFactor` the topic is created when
   missing (Knative); without, it must exist. A broker error is False with the broker's own
   words, the reason from `kevents.errors` (`AuthenticationFailed`, `BrokerUnreachable`,
   `TopicNotReady`): a wrong password reads "SASL authentication error: ...".
   `status.annotations["eventing.knative.dev/topic.owner"]` says who owns the topic.

Deletion (finalizer `kafkasinks.eventing.knative.dev`, Knative's): a topic this controller
created (owner `kafkasink-controller`) is deleted with its KafkaSink, as Knative does. Unlike
Knative, a topic that existed before its KafkaSink is never marked as ours, so deleting a
KafkaSink never deletes a topic someone else made; and a broker that cannot be reached at
deletion leaves the topic in place (logged) rather than blocking the deletion forever.
"""

from __future__ import annotations

import logging
from typing import Any

from controller import context
from controller.framework import conditions, lifecycle, reconciling
from controller.inmemorychannel import service
from kevents import errors, kafka, kubeapi

logger = logging.getLogger(__name__)

KAFKASINKS = kubeapi.Resource("eventing.knative.dev", "v1alpha1", "kafkasinks")
SECRETS = kubeapi.Resource("", "v1", "secrets")
KIND = "KafkaSink"
ADDRESSABLE = "Addressable"
DATA_PLANE_AVAILABLE = "DataPlaneAvailable"
CONFIG_PARSED = "ConfigParsed"
TOPIC_READY = "TopicReady"
CONDITION_SET = conditions.ConditionSet(
    (ADDRESSABLE, CONFIG_PARSED, TOPIC_READY, DATA_PLANE_AVAILABLE)
)
"""Ready False takes the reason of the first False in this order: what the sink's owner can
fix (Secret, topic, broker) before the platform's data plane."""
FINALIZER = "kafkasinks.eventing.knative.dev"
TOPIC_OWNER = "eventing.knative.dev/topic.owner"
CONTROLLER_OWNER = "kafkasink-controller"
EXTERNAL_OWNER = "external"
DATA_PLANE_REASON = "Data plane not available"
DATA_PLANE_MESSAGE = "Did you install the data plane for this component?"


def address(system_namespace: str, service_name: str, namespace: str, name: str) -> str:
    return f"http://{service_name}.{system_namespace}.svc.cluster.local/{namespace}/{name}"


def owner(sink: kubeapi.Json) -> str:
    return str(((sink.get("status") or {}).get("annotations") or {}).get(TOPIC_OWNER) or "")


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = KAFKASINKS
    condition_set = CONDITION_SET
    finalizer = FINALIZER
    keep = frozenset({"auth"})
    """status.annotations (the topic owner) are ours: written with every status."""

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.options = ctx.options

    async def reconcile(self, sink: kubeapi.Json, state: lifecycle.State) -> None:
        meta, spec = sink["metadata"], sink.get("spec") or {}
        opts = self.options
        url = address(
            opts.system_namespace, opts.kafka_sink_ingress_service, meta["namespace"], meta["name"]
        )
        state.status["address"] = {"name": "http", "url": url}
        state.status["addresses"] = [{"name": "http", "url": url}]
        state.mark_true(ADDRESSABLE)
        annotations = dict((sink.get("status") or {}).get("annotations") or {})
        state.status["annotations"] = annotations
        await self._data_plane(state)
        config = await self._config(sink, state)
        topic = str(spec.get("topic", ""))
        partitions, replication = spec.get("numPartitions"), spec.get("replicationFactor")
        try:
            if partitions is not None and replication is not None:
                created = await kafka.ensure_topic(
                    config, topic, partitions=int(partitions),
                    replication_factor=int(replication), request_timeout=opts.kafka_timeout,
                )  # fmt: skip
                if created or annotations.get(TOPIC_OWNER) == CONTROLLER_OWNER:
                    annotations[TOPIC_OWNER] = CONTROLLER_OWNER
                else:
                    annotations[TOPIC_OWNER] = EXTERNAL_OWNER
            else:
                await kafka.check(config, topic=topic, request_timeout=opts.kafka_timeout)
                annotations[TOPIC_OWNER] = EXTERNAL_OWNER
        except errors.KafkaError as exc:
            state.mark_false(TOPIC_READY, exc.reason, f"topic {topic!r}: {exc}")
            raise state.fail(f"topic {topic!r}: {exc}") from exc
        message = f"Topic {topic} (owner {annotations[TOPIC_OWNER]})"
        state.mark_true(TOPIC_READY, "TopicReady", message)

    async def _data_plane(self, state: lifecycle.State) -> None:
        opts = self.options
        slices = await self.api.request(
            "GET",
            service.ENDPOINTSLICES.path(opts.system_namespace),
            query=[
                ("labelSelector", f"kubernetes.io/service-name={opts.kafka_sink_ingress_service}")
            ],
        )
        if service.endpoints_ready(list(slices.get("items") or [])):
            state.mark_true(DATA_PLANE_AVAILABLE)
        else:
            state.mark_false(DATA_PLANE_AVAILABLE, DATA_PLANE_REASON, DATA_PLANE_MESSAGE)

    async def _config(self, sink: kubeapi.Json, state: lifecycle.State) -> dict[str, Any]:
        """The client config of the sink (ConfigParsed), or the reconcile stops."""
        meta, spec = sink["metadata"], sink.get("spec") or {}
        secret_name = (((spec.get("auth") or {}).get("secret") or {}).get("ref") or {}).get("name")
        auth: kafka.KafkaAuth | None = None
        if secret_name:
            where = f'Secret "{secret_name}" in namespace "{meta["namespace"]}"'
            try:
                secret = await self.api.get(SECRETS, meta["namespace"], secret_name)
            except kubeapi.NotFound as exc:
                state.mark_false(CONFIG_PARSED, "SecretNotFound", f"{where} not found")
                raise state.fail(f"{where} not found") from exc
            except kubeapi.ApiError as exc:
                state.mark_false(CONFIG_PARSED, "SecretUnreadable", f"{where}: {exc}")
                raise state.fail(f"{where}: {exc}") from exc
            try:
                auth = kafka.KafkaAuth.from_secret(secret)
            except errors.ConfigError as exc:
                message = f"{where}: {'; '.join(exc.problems)}"
                state.mark_false(CONFIG_PARSED, "InvalidSecret", message)
                raise state.fail(message) from exc
        try:
            config = kafka.client_config(spec.get("bootstrapServers") or [], auth)
        except errors.ConfigError as exc:
            message = "; ".join(exc.problems)
            state.mark_false(CONFIG_PARSED, "InvalidBootstrapServers", message)
            raise state.fail(message) from exc
        state.mark_true(CONFIG_PARSED)
        return config

    async def finalize(self, sink: kubeapi.Json, state: lifecycle.State) -> None:
        if owner(sink) != CONTROLLER_OWNER:
            return
        meta, spec = sink["metadata"], sink.get("spec") or {}
        topic = str(spec.get("topic", ""))
        key = f"{meta['namespace']}/{meta['name']}"
        try:
            config = await self._config(sink, state)
        except reconciling.ReconcileError:  # the deletion goes on without its credentials
            logger.warning(
                "KafkaSink %s: topic %s left in place: its credentials cannot be read.", key, topic
            )
            return
        try:
            deleted = await kafka.delete_topic(
                config, topic, request_timeout=self.options.kafka_timeout
            )
        except errors.KafkaError as exc:
            logger.warning(
                "KafkaSink %s: topic %s left in place: %s (%s).", key, topic, exc, exc.reason
            )
            return
        if deleted:
            logger.info("KafkaSink %s: deleted its topic %s.", key, topic)
