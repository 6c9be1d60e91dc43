"""Level-based reconciler of Broker, class Kafka (knative-extensions/eventing-kafka-broker
`control-plane/pkg/reconciler/broker`). Rules and names: `kevents.kafkabrokers`.

1. The dead letter sink of `spec.delivery` -> DeadLetterSinkResolved, `deadLetterSinkUri`
   (Triggers without their own inherit it, as with the channel broker).
2. ConfigParsed: the ConfigMap `spec.config` names (Knative's `knative-eventing` namespace
   stands in for kevents' system namespace, as for the channel broker) with
   `bootstrap.servers`, `default.topic.partitions`, `default.topic.replication.factor`,
   `auth.secret.ref.name`; a missing ConfigMap is False naming it (a Broker whose config is
   misnamed says which ConfigMap it looked for); the auth Secret read and parsed.
   A ConfigMap outside the system namespace is read again every `config_recheck` seconds.
3. TopicReady: `knative-broker-<ns>-<name>` created with the config's partitions and
   replication factor (or found); Kafka's own words when it refuses.
4. DataPlaneAvailable: the `kafka-broker-ingress` Service has ready endpoints.
5. Addressable `http://kafka-broker-ingress.<system-ns>.svc.cluster.local/<ns>/<name>`;
   `status.annotations` tell the data plane the topic, servers and Secret.

Deletion (finalizer `kafka.brokers.eventing.knative.dev`): the topic is deleted unless the
Broker names an external topic or the config keeps it; an unreachable Kafka leaves it in
place (logged) rather than blocking the deletion. Brokers of other classes are not touched:
`KafkaBrokerReconciler` skips them before any finalizer is written.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from controller import channelable, context
from controller.broker import defaults, resources
from controller.channel import backing
from controller.framework import conditions, dependencies, lifecycle, reconciling, sinks
from controller.inmemorychannel import service
from kevents import errors, kafka, kafkabrokers, kubeapi

logger = logging.getLogger(__name__)

SECRETS = kubeapi.Resource("", "v1", "secrets")
CONFIG_PARSED = "ConfigParsed"
TOPIC_READY = "TopicReady"
DATA_PLANE_AVAILABLE = "DataPlaneAvailable"
CONDITION_SET = conditions.ConditionSet(
    (CONFIG_PARSED, TOPIC_READY, DATA_PLANE_AVAILABLE, channelable.ADDRESSABLE,
     channelable.DEAD_LETTER_SINK_RESOLVED, channelable.EVENT_POLICIES_READY)
)  # fmt: skip
FINALIZER = "kafka.brokers.eventing.knative.dev"


class ConfigProblem(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def broker_config(
    api: kubeapi.KubeApi, broker: kubeapi.Json, system_namespace: str
) -> tuple[kafkabrokers.BrokerConfig, dict[str, Any], bool]:
    """The Broker's config, its librdkafka client config, and whether the ConfigMap is
    outside the system namespace (re-read periodically); raises `ConfigProblem`."""
    config = dict((broker.get("spec") or {}).get("config") or {})
    config["namespace"] = config.get("namespace") or broker["metadata"]["namespace"]
    if not config.get("name"):
        raise ConfigProblem("ConfigMapNotFound", "spec.config: a ConfigMap is required")
    problem = defaults.config_problem(config)
    if problem is not None:
        raise ConfigProblem("BrokerConfigInvalid", problem)
    return await read_config(api, config["namespace"], config["name"], system_namespace)


async def read_config(
    api: kubeapi.KubeApi,
    namespace: str,
    name: str,
    system_namespace: str,
    *,
    topic_defaults: bool = True,
) -> tuple[kafkabrokers.BrokerConfig, dict[str, Any], bool]:
    """The Kafka config in ConfigMap `namespace/name` (Knative's `knative-eventing` stands
    for the system namespace), its client config (auth Secret read), and whether it is
    outside the system namespace; raises `ConfigProblem` naming what is missing or bad."""
    configmap = await api.get_or_none(backing.CONFIGMAPS, namespace, name)
    if configmap is None and namespace == defaults.KNATIVE_NAMESPACE != system_namespace:
        configmap = await api.get_or_none(backing.CONFIGMAPS, system_namespace, name)
    elsewhere = namespace not in (system_namespace, defaults.KNATIVE_NAMESPACE)
    if configmap is None:
        raise ConfigProblem(
            "ConfigMapNotFound",
            f'failed to get ConfigMap {namespace}/{name}: configmap "{name}" not found',
        )
    where = configmap["metadata"]["namespace"]
    try:
        parsed = kafkabrokers.parse_config(
            configmap.get("data"), where, topic_defaults=topic_defaults
        )
    except errors.ConfigError as exc:
        raise ConfigProblem(
            "ConfigMapInvalid", f"ConfigMap {where}/{name}: {'; '.join(exc.problems)}"
        ) from exc
    auth = None
    if parsed.secret_name:
        secret_where = f'Secret "{parsed.secret_name}" in namespace "{where}"'
        try:
            secret = await api.get(SECRETS, where, parsed.secret_name)
        except kubeapi.NotFound as exc:
            raise ConfigProblem("SecretNotFound", f"{secret_where} not found") from exc
        try:
            auth = kafka.KafkaAuth.from_secret(secret)
        except errors.ConfigError as exc:
            raise ConfigProblem(
                "InvalidSecret", f"{secret_where}: {'; '.join(exc.problems)}"
            ) from exc
    client = kafka.client_config(list(parsed.bootstrap_servers), auth)
    return parsed, client, elsewhere


async def data_plane(
    api: kubeapi.KubeApi, state: lifecycle.State, system_namespace: str, service_name: str
) -> None:
    """DataPlaneAvailable: the data plane Service has ready endpoints (Knative's words)."""
    slices = await api.request(
        "GET",
        service.ENDPOINTSLICES.path(system_namespace),
        query=[("labelSelector", f"kubernetes.io/service-name={service_name}")],
    )
    if service.endpoints_ready(list(slices.get("items") or [])):
        state.mark_true(DATA_PLANE_AVAILABLE)
    else:
        state.mark_false(
            DATA_PLANE_AVAILABLE,
            "Data plane not available",
            "Did you install the data plane for this component?",
        )


class Reconciler(lifecycle.Kind):
    kind = defaults.KIND
    resource = defaults.BROKERS
    condition_set = CONDITION_SET
    finalizer = FINALIZER

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.options = ctx.options

    async def reconcile(
        self, broker: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        if not kafkabrokers.is_kafka(broker):
            return lifecycle.Outcome.IGNORED
        opts, meta = self.options, broker["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        # 5 first: the address is known without Kafka.
        url = resources.ingress_url(
            opts.kafka_broker_ingress_service, opts.system_namespace, namespace, name
        )
        state.status["address"] = resources.address(url)
        state.status["addresses"] = [resources.address(url)]
        state.mark_true(channelable.ADDRESSABLE)
        state.conditions = channelable.mark_event_policies(state.conditions)
        # 1. Dead letter sink.
        delivery = cast(
            dependencies.DeliveryDict | None, (broker.get("spec") or {}).get("delivery")
        )
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
        # 4. Data plane.
        await data_plane(self.api, state, opts.system_namespace, opts.kafka_broker_ingress_service)
        # 2. Config.
        try:
            config, client, elsewhere = await broker_config(self.api, broker, opts.system_namespace)
        except ConfigProblem as exc:
            state.recheck_within(opts.config_recheck)
            state.mark_false(CONFIG_PARSED, exc.reason, exc.message)
            state.mark_unknown(TOPIC_READY, "ConfigNotParsed", "waiting for the config")
            raise state.fail(exc.message) from exc
        if elsewhere:
            state.recheck_within(opts.config_recheck)
        state.mark_true(CONFIG_PARSED)
        # 3. Topic.
        topic = kafkabrokers.topic_name(namespace, name)
        try:
            created = await kafka.ensure_topic(
                client, topic, partitions=config.partitions,
                replication_factor=config.replication_factor,
                request_timeout=opts.kafka_timeout,
            )  # fmt: skip
        except errors.KafkaError as exc:
            state.mark_false(TOPIC_READY, exc.reason, f"topic {topic!r}: {exc}")
            raise state.fail(f"topic {topic!r}: {exc}") from exc
        if created:
            logger.info("Created topic %s (%d partitions) for Broker %s/%s.", topic,
                        config.partitions, namespace, name)  # fmt: skip
        state.mark_true(TOPIC_READY, "TopicReady", f"Topic {topic} created")
        state.status["annotations"] = kafkabrokers.status_annotations(config, topic)
        return None

    async def finalize(self, broker: kubeapi.Json, state: lifecycle.State) -> None:
        meta = broker["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        if (meta.get("annotations") or {}).get(kafkabrokers.EXTERNAL_TOPIC_ANNOTATION):
            return
        topic = kafkabrokers.topic_name(meta["namespace"], meta["name"])
        try:
            config, client, _ = await broker_config(self.api, broker, self.options.system_namespace)
        except ConfigProblem as exc:
            logger.warning("Broker %s: topic %s left in place: %s.", key, topic, exc.message)
            return
        if not config.delete_topic:
            logger.info("Broker %s: topic %s kept (%s is false).", key, topic,
                        kafkabrokers.DELETE_TOPIC)  # fmt: skip
            return
        try:
            deleted = await kafka.delete_topic(
                client, topic, request_timeout=self.options.kafka_timeout
            )
        except errors.KafkaError as exc:
            logger.warning("Broker %s: topic %s left in place: %s (%s).", key, topic, exc,
                           exc.reason)  # fmt: skip
            return
        if deleted:
            logger.info("Broker %s: deleted its topic %s.", key, topic)


class KafkaBrokerReconciler(lifecycle.GenericReconciler):
    """The generic reconciler, for Kafka Brokers only: a Broker of another class (or one
    whose class is not written yet) gets no finalizer and no status from here."""

    async def reconcile(self, key: str) -> float | None:
        namespace, name = reconciling.split(key)
        obj = await self.api.get_or_none(self.resource, namespace or None, name)
        if obj is not None and not kafkabrokers.is_kafka(obj):
            if FINALIZER not in (obj["metadata"].get("finalizers") or []):
                return None
        return await super().reconcile(key)
