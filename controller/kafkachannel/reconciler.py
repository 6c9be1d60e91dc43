"""Level-based reconciler of KafkaChannel (knative-extensions/eventing-kafka-broker
`control-plane/pkg/reconciler/channel`). Names and config rules: `kevents.kafkabrokers`.

1. ChannelServiceReady: the Service `<name>-kn-channel`, an ExternalName aliasing the
   shared `kafka-channel-ingress` Service (as the InMemoryChannel's aliases its dispatcher):
   the Host header tells the ingress which channel an event is for. Addressable
   `http://<name>-kn-channel.<ns>.svc.cluster.local`.
2. DeadLetterSinkResolved: `spec.delivery.deadLetterSink` -> `status.deadLetterSinkUri`.
3. DataPlaneAvailable: the `kafka-channel-ingress` Service has ready endpoints.
4. ConfigParsed: the ConfigMap `kafka-channel-config` of the system namespace
   (`bootstrap.servers`, `auth.secret.ref.name`; Knative's).
5. TopicReady: `knative-messaging-kafka.<ns>.<name>` with `numPartitions` and
   `replicationFactor`; `status.annotations` tell the data plane the topic and servers.
6. `status.subscribers`: each `spec.subscribers` entry's consumer group
   `kafka.<ns>.<channel>.<uid>` gets its start offsets at the topic's end (Knative's
   InitOffsets: delivery starts where the Subscription was added, nothing sent after is
   missed) and is then reported ready for that generation, which the Subscription's
   ChannelReady reads and the data plane waits for before joining the group.

Deletion (finalizer `kafkachannels.messaging.knative.dev`): the topic is deleted, as Knative
does; an unreachable Kafka leaves it in place (logged). `retentionDuration` (ISO 8601, Knative's
default PT168H) becomes the topic's `retention.ms` when it is created.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from controller import channelable, context
from controller.framework import children, conditions, dependencies, lifecycle, reconciling, sinks
from controller.inmemorychannel import service
from controller.kafkabroker import reconciler as brokers
from kevents import errors, kafka, kafkabrokers, kubeapi, names

logger = logging.getLogger(__name__)

KAFKACHANNELS = kubeapi.Resource("messaging.knative.dev", "v1beta1", "kafkachannels")
API_VERSION = "messaging.knative.dev/v1beta1"
KIND = "KafkaChannel"
FIELD_MANAGER = "kevents-controller"
FINALIZER = "kafkachannels.messaging.knative.dev"
CHANNEL_SERVICE_READY = "ChannelServiceReady"
CONDITION_SET = conditions.ConditionSet(
    (brokers.CONFIG_PARSED, brokers.TOPIC_READY, brokers.DATA_PLANE_AVAILABLE,
     CHANNEL_SERVICE_READY, channelable.ADDRESSABLE, channelable.DEAD_LETTER_SINK_RESOLVED,
     channelable.EVENT_POLICIES_READY)
)  # fmt: skip
ROLE = "kafka-channel"


def channel_service(channel: kubeapi.Json, ingress: str, system_namespace: str) -> dict[str, Any]:
    meta = channel["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.channel_service(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {service.ROLE_LABEL: ROLE},
            "ownerReferences": [reconciling.owner_reference(channel, API_VERSION, KIND)],
        },
        "spec": {
            "type": "ExternalName",
            "externalName": service.host(ingress, system_namespace),
            "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
        },
    }


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = KAFKACHANNELS
    condition_set = CONDITION_SET
    finalizer = FINALIZER

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.options = ctx.options

    async def reconcile(self, channel: kubeapi.Json, state: lifecycle.State) -> None:
        opts, meta = self.options, channel["metadata"]
        spec = channel.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        # 1. Channel Service and address.
        desired = channel_service(
            channel, opts.kafka_channel_ingress_service, opts.system_namespace
        )
        existing = await self.api.get_or_none(
            service.SERVICES, namespace, desired["metadata"]["name"]
        )
        children.refuse_unowned(existing, channel, CHANNEL_SERVICE_READY, state)
        await self.api.apply(service.SERVICES, namespace, desired, FIELD_MANAGER)
        state.mark_true(CHANNEL_SERVICE_READY)
        address = service.address(name, namespace)
        state.status["address"] = address
        state.status["addresses"] = [address]
        state.mark_true(channelable.ADDRESSABLE)
        state.conditions = channelable.mark_event_policies(state.conditions)
        # 2. Dead letter sink.
        delivery = cast(dependencies.DeliveryDict | None, spec.get("delivery"))
        try:
            resolved = await state.deps.dead_letter_sink(delivery)
        except sinks.SinkError as exc:
            state.mark_false(
                channelable.DEAD_LETTER_SINK_RESOLVED, channelable.DLS_FAILED, exc.message
            )
            state.retry_later(exc.message)
        else:
            state.conditions = channelable.mark_dead_letter_sink(
                state.conditions, state.status, cast(kubeapi.Json | None, resolved)
            )
        # 3. Data plane.
        await brokers.data_plane(
            self.api, state, opts.system_namespace, opts.kafka_channel_ingress_service
        )
        # 4. Config.
        try:
            config, client, _ = await brokers.read_config(
                self.api, opts.system_namespace, kafkabrokers.CHANNEL_CONFIGMAP,
                opts.system_namespace, topic_defaults=False,
            )  # fmt: skip
        except brokers.ConfigProblem as exc:
            state.mark_false(brokers.CONFIG_PARSED, exc.reason, exc.message)
            state.mark_unknown(brokers.TOPIC_READY, "ConfigNotParsed", "waiting for the config")
            raise state.fail(exc.message) from exc
        state.mark_true(brokers.CONFIG_PARSED)
        # 5. Topic.
        topic = kafkabrokers.channel_topic(namespace, name)
        try:
            retention = kafkabrokers.retention_ms(spec.get("retentionDuration"))
        except errors.InvalidDurationError as exc:
            message = f"spec.retentionDuration: {exc}"
            state.mark_false(brokers.TOPIC_READY, "InvalidRetentionDuration", message)
            raise state.fail(message) from exc
        try:
            await kafka.ensure_topic(
                client, topic, partitions=int(spec.get("numPartitions") or 1),
                replication_factor=int(spec.get("replicationFactor") or 1),
                request_timeout=opts.kafka_timeout,
                topic_config={"retention.ms": str(retention)},
            )  # fmt: skip
        except errors.KafkaError as exc:
            state.mark_false(brokers.TOPIC_READY, exc.reason, f"topic {topic!r}: {exc}")
            raise state.fail(f"topic {topic!r}: {exc}") from exc
        state.mark_true(brokers.TOPIC_READY, "TopicReady", f"Topic {topic} created")
        state.status["annotations"] = kafkabrokers.status_annotations(config, topic)
        # 6. Subscribers.
        state.status["subscribers"] = await self._subscribers(channel, client, topic)

    async def _subscribers(
        self, channel: kubeapi.Json, client: dict[str, Any], topic: str
    ) -> list[dict[str, Any]]:
        meta = channel["metadata"]
        reported = {
            str(s.get("uid")): s for s in (channel.get("status") or {}).get("subscribers") or []
        }
        out: list[dict[str, Any]] = []
        for entry in (channel.get("spec") or {}).get("subscribers") or []:
            uid, generation = str(entry.get("uid", "")), entry.get("generation", 0)
            before = reported.get(uid) or {}
            if before.get("ready") == "True" and before.get("observedGeneration") == generation:
                out.append(before)  # its group's offsets are committed already
                continue
            group = kafkabrokers.channel_group(meta["namespace"], meta["name"], uid)
            try:
                await kafka.init_offsets(
                    client, group, [topic], "latest", request_timeout=self.options.kafka_timeout
                )
            except errors.KafkaError as exc:
                out.append({"uid": uid, "observedGeneration": generation, "ready": "False",
                            "message": f"consumer group {group}: {exc}"})  # fmt: skip
                continue
            out.append({"uid": uid, "observedGeneration": generation, "ready": "True"})
        return out

    async def finalize(self, channel: kubeapi.Json, state: lifecycle.State) -> None:
        meta = channel["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        topic = kafkabrokers.channel_topic(meta["namespace"], meta["name"])
        system = self.options.system_namespace
        try:
            _, client, _ = await brokers.read_config(
                self.api, system, kafkabrokers.CHANNEL_CONFIGMAP, system, topic_defaults=False
            )
            deleted = await kafka.delete_topic(
                client, topic, request_timeout=self.options.kafka_timeout
            )
        except (brokers.ConfigProblem, errors.KafkaError) as exc:
            logger.warning("KafkaChannel %s: topic %s left in place: %s.", key, topic, exc)
            return
        if deleted:
            logger.info("KafkaChannel %s: deleted its topic %s.", key, topic)
