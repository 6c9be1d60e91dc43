"""Level-based reconciler of KafkaSource (`sources.knative.dev/v1beta1`), its receive adapter
a Deployment per source (`adapter.py` says why).

Conditions as Knative's `KafkaSourceCondSet`: SinkProvided, Deployed, ConnectionEstablished,
InitialOffsetsCommitted (Ready when all are True). Steps, in the order of
knative-extensions' KafkaSource reconciler:

1. `spec.consumerGroup` defaulted to `knative-kafka-source-<uuid>` when empty (Knative's
   defaulting webhook does it; the object is patched and comes back through the watch).
2. The sink resolved (tracked) -> `status.sinkUri` (SinkProvided); the dead-letter sink of
   `spec.delivery` too, for the adapter.
3. The `net` Secrets read (`get` by name only) and turned into the client's authentication:
   a missing Secret or key, or a value the client refuses, is ConnectionEstablished False
   `InvalidConfiguration` naming the Secret and key, never a value.
4. One metadata round trip with those credentials: ConnectionEstablished False
   `ClientCreationFailed` (Knative's reason) with the client's own words, e.g.
   "AuthenticationFailed: ... SASL authentication error: Authentication failed: Invalid
   username or password", or the unreachable broker's; retried with backoff.
5. Initial offsets (InitialOffsetsCommitted, `OffsetsNotCommitted`): partitions the group has
   no offset for get `initialOffset`'s (earliest or latest) committed before the adapter runs,
   so with `latest` nothing produced after the source became Ready is missed. A missing topic
   shows here with the broker's "does not exist".
6. The adapter Deployment applied (replicas = `spec.consumers`); Deployed follows its
   availability, `status.consumers` its replicas and `status.selector` its pods' labels (the
   scale subresource), `ceAttributes` one per topic.

Deletion needs nothing: the Deployment is garbage-collected; the consumer group's committed
offsets stay on the brokers (as Knative leaves them), so a re-created source with the same
`consumerGroup` resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

from controller import availability, context
from controller.framework import children, conditions, lifecycle, sinks
from controller.githubsource import secrets
from controller.kafkasource import adapter
from kevents import errors, kafka, kafkasourcespec, kubeapi, validation

logger = logging.getLogger(__name__)

KAFKASOURCES = kubeapi.Resource("sources.knative.dev", "v1beta1", "kafkasources")
KIND = "KafkaSource"
FIELD_MANAGER = "kevents-controller"
SINK_PROVIDED = "SinkProvided"
DEPLOYED = "Deployed"
CONNECTION_ESTABLISHED = "ConnectionEstablished"
INITIAL_OFFSETS_COMMITTED = "InitialOffsetsCommitted"
CONDITION_SET = conditions.ConditionSet(
    (SINK_PROVIDED, DEPLOYED, CONNECTION_ESTABLISHED, INITIAL_OFFSETS_COMMITTED)
)
KAFKA_TIMEOUT = 10.0
"""Seconds one Kafka request of a reconcile may take (a worker is busy meanwhile): enough for
a loaded broker, short enough that an unreachable one is reported promptly."""
RECHECK = 30.0
"""Seconds within which a source that failed on Kafka or its Secrets is reconciled again at
the latest: neither is watched, so a fixed password or a broker back up shows within this,
not after the growing backoff (up to ~17 min)."""


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = KAFKASOURCES
    condition_set = CONDITION_SET

    def __init__(
        self,
        ctx: context.Context,
        config: Callable[[], adapter.Config],
        *,
        kafka_timeout: float = KAFKA_TIMEOUT,
    ) -> None:
        self.api = ctx.api
        self.config = config
        self.kafka_timeout = kafka_timeout

    async def reconcile(
        self, source: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        meta, spec = source["metadata"], source.get("spec") or {}
        if not spec.get("consumerGroup"):
            await self._default_group(source)
            return lifecycle.Outcome.CHANGED
        if validation.spec_problems(KAFKASOURCES.group, KIND, spec):
            return None  # Ready False InvalidSpec with the webhook's message (lifecycle)
        topics = kafkasourcespec.topics(spec)
        state.status["selector"] = adapter.selector(meta["name"])
        state.status["ceAttributes"] = [
            {
                "type": kafkasourcespec.EVENT_TYPE,
                "source": kafkasourcespec.event_source(meta["namespace"], meta["name"], t),
            }
            for t in topics
        ]
        old_consumers = (source.get("status") or {}).get("consumers")
        if old_consumers is not None:
            state.status["consumers"] = old_consumers
        # 1. Sink and dead-letter sink.
        address = await state.resolve(spec.get("sink"), SINK_PROVIDED)
        state.set_address("sink", address)
        dead_letter: str | None = None
        dls = (spec.get("delivery") or {}).get("deadLetterSink")
        if dls:
            dead_letter = (await state.resolve(dls, SINK_PROVIDED)).url
        # 2. Credentials.
        auth, version = await self._auth(source, state)
        config = kafka.client_config(kafkasourcespec.bootstrap_servers(spec), auth)
        # 3. Connection.
        try:
            await kafka.check(config, request_timeout=self.kafka_timeout)
        except errors.KafkaError as exc:
            message = f"{exc.reason}: {exc}"
            state.mark_false(CONNECTION_ESTABLISHED, "ClientCreationFailed", message)
            state.recheck_within(RECHECK)
            raise state.fail(message) from exc
        state.mark_true(CONNECTION_ESTABLISHED)
        # 4. Initial offsets.
        group = str(spec["consumerGroup"])
        offset = str(spec.get("initialOffset") or kafkasourcespec.DEFAULT_OFFSET)
        try:
            initialized = await kafka.init_offsets(
                config, group, topics, offset, request_timeout=self.kafka_timeout
            )
        except errors.KafkaError as exc:
            message = f"Unable to initialize consumergroup offsets: {exc}"
            state.mark_false(INITIAL_OFFSETS_COMMITTED, "OffsetsNotCommitted", message)
            state.recheck_within(RECHECK)
            raise state.fail(message) from exc
        if initialized:
            logger.info("Committed %s offsets of %d partition(s) for consumer group %s of "
                        "KafkaSource %s.", offset, initialized, group, state.key)  # fmt: skip
        state.mark_true(INITIAL_OFFSETS_COMMITTED)
        # 5. The adapter.
        await self._deployment(source, address, dead_letter, version, state)
        return None

    async def _default_group(self, source: kubeapi.Json) -> None:
        meta = source["metadata"]
        group = kafkasourcespec.new_consumer_group()
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]},
                "spec": {"consumerGroup": group}}  # fmt: skip
        await self.api.merge_patch(KAFKASOURCES, meta["namespace"], meta["name"], body)
        logger.info("KafkaSource %s/%s: consumerGroup defaulted to %s.",
                    meta["namespace"], meta["name"], group)  # fmt: skip

    async def _auth(
        self, source: kubeapi.Json, state: lifecycle.State
    ) -> tuple[kafka.KafkaAuth, str]:
        """The client's authentication from the `net` Secrets, and a digest of their
        resourceVersions (rolls the adapter when one changes)."""
        namespace = source["metadata"]["namespace"]
        net: dict[str, Any] = (source.get("spec") or {}).get("net") or {}
        values: dict[tuple[str, str], bytes] = {}
        versions: list[str] = []
        for name, key in sorted(set(kafka.net_refs(net).values())):
            try:
                value = await secrets.read(self.api, namespace, {"name": name, "key": key})
            except secrets.SecretError as exc:
                state.mark_false(CONNECTION_ESTABLISHED, "InvalidConfiguration", exc.message)
                state.recheck_within(RECHECK)
                raise state.fail(exc.message) from exc
            values[(name, key)] = value.text.encode()
            versions.append(f"{name}/{key}={value.resource_version}")
        try:
            auth = kafka.KafkaAuth.from_net(net, values)
        except errors.ConfigError as exc:
            message = "; ".join(exc.problems)
            state.mark_false(CONNECTION_ESTABLISHED, "InvalidConfiguration", message)
            state.recheck_within(RECHECK)
            raise state.fail(message) from exc
        digest = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16] if versions else ""
        return auth, digest

    async def _deployment(
        self, source: kubeapi.Json, address: sinks.Address, dead_letter: str | None,
        secrets_version: str, state: lifecycle.State,
    ) -> None:  # fmt: skip
        meta, spec = source["metadata"], source.get("spec") or {}
        namespace = meta["namespace"]
        net = spec.get("net") or {}
        refs = {kafka.NET_KEYS[path]: ref for path, ref in kafka.net_refs(net).items()}
        labels = meta.get("labels") or {}
        inputs = adapter.Inputs(
            name=meta["name"], namespace=namespace, uid=meta["uid"], sink=address,
            bootstrap_servers=kafkasourcespec.bootstrap_servers(spec),
            topics=kafkasourcespec.topics(spec), consumer_group=str(spec["consumerGroup"]),
            replicas=int(spec.get("consumers", 1)),
            initial_offset=str(spec.get("initialOffset") or kafkasourcespec.DEFAULT_OFFSET),
            ordering=str(spec.get("ordering") or kafkasourcespec.DEFAULT_ORDERING),
            key_type=_key_type(labels.get(kafkasourcespec.KEY_TYPE_LABEL)),
            protocol=kafka.net_protocol(net).value, secret_refs=refs,
            secrets_version=secrets_version, delivery=spec.get("delivery"),
            dead_letter_sink=dead_letter, ce_overrides=spec.get("ceOverrides"),
        )  # fmt: skip
        desired = adapter.deployment(inputs, self.config())
        name = desired["metadata"]["name"]
        existing = await self.api.get_or_none(adapter.DEPLOYMENTS, namespace, name)
        children.refuse_unowned(existing, source, DEPLOYED, state)
        applied = await self.api.apply(adapter.DEPLOYMENTS, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created the receive adapter %s for KafkaSource %s.", name, state.key)
        state.conditions = availability.propagate(state.conditions, DEPLOYED, applied)
        state.status["consumers"] = int((applied.get("status") or {}).get("replicas") or 0)


def _key_type(value: str | None) -> str:
    """The `key-type` label's value when it is one Knative allows, else `string`."""
    return value if value in kafkasourcespec.KEY_TYPES else "string"
