"""Level-based reconciler of Trigger for MTChannelBasedBroker and Kafka (knative/eventing
`pkg/reconciler/broker/trigger`).

0. Default the label `eventing.knative.dev/broker: <spec.broker>` (written once: spec.broker
   is immutable).
1. The Broker (tracked): missing -> BrokerReady False `BrokerDoesNotExist` (and, for a
   Trigger annotated for injection, the Broker is created); another class -> the Trigger is
   left alone; else BrokerReady is the Broker's Ready.
2. The subscriber (tracked) -> SubscriberResolved, `status.subscriberUri`, which the broker
   filter delivers to; the dead letter sink, the Trigger's or else the Broker's resolved
   one -> DeadLetterSinkResolved, `status.deadLetterSinkUri`.
3. The filter: what CEL cannot check (nested filters, CESQL syntax) is validated here;
   invalid -> SubscriptionReady False `FilterInvalid`, and no Subscription exists; likewise
   a `delivery` the dispatcher cannot follow -> `DeliveryInvalid` (`kevents.validation`,
   the rules the admission webhook refuses at apply time).
4. Once the Broker is Ready: for a Kafka Broker, its consumer group
   (`controller.kafkabroker.triggers`); else the Subscription from the trigger channel to
   the broker filter (see `subscription`), server-side applied (deleted and created again
   when its immutable channel changes) -> SubscriptionReady from its Ready.
5. `knative.dev/dependency` -> DependencyReady from the referenced object's Ready.
OIDCIdentityCreated is True: authentication-oidc is off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from controller import channelable, context
from controller.broker import defaults, resources
from controller.brokerinjection import injection
from controller.brokerinjection import reconciler as injecting
from controller.framework import (
    children,
    conditions,
    dependencies,
    discovery,
    lifecycle,
    reconciling,
    sinks,
)
from controller.kafkabroker import triggers as kafkatriggers
from controller.trigger import dependency, subscription
from kevents import kubeapi, validation
from kevents.eventfilter import trigger as trigger_filter

logger = logging.getLogger(__name__)

FIELD_MANAGER = "kevents-controller"
BROKER_READY = "BrokerReady"
SUBSCRIPTION_READY = "SubscriptionReady"
DEPENDENCY_READY = "DependencyReady"
SUBSCRIBER_RESOLVED = "SubscriberResolved"
OIDC_IDENTITY_CREATED = "OIDCIdentityCreated"
CONDITION_SET = conditions.ConditionSet(
    (BROKER_READY, SUBSCRIPTION_READY, DEPENDENCY_READY, SUBSCRIBER_RESOLVED,
     channelable.DEAD_LETTER_SINK_RESOLVED, OIDC_IDENTITY_CREATED)
)  # fmt: skip
OIDC_DISABLED = "authentication-oidc feature disabled"
RESOLVED_FIELDS = (
    "subscriberUri", "subscriberCACerts", "subscriberAudience",
    "deadLetterSinkUri", "deadLetterSinkCACerts", "deadLetterSinkAudience",
)  # fmt: skip


class RecreatingError(Exception):
    """The old Subscription is on its way out (its channel changed); create it later."""


def _status(conds: conditions.Conditions, kind: str) -> str:
    cond = conds.get(kind)
    return cond.status if cond is not None else ""


def broker_name(trigger: kubeapi.Json) -> str | None:
    """`spec.broker`, or the name in `spec.brokerRef` when it is in the same namespace."""
    meta, spec = trigger["metadata"], trigger.get("spec") or {}
    if spec.get("broker"):
        return str(spec["broker"])
    ref = spec.get("brokerRef") or {}
    if ref.get("name") and ref.get("namespace", meta["namespace"]) == meta["namespace"]:
        return str(ref["name"])
    return None


def filter_problems(spec: Mapping[str, Any]) -> list[str]:
    attributes = (spec.get("filter") or {}).get("attributes")
    return trigger_filter.validate(attributes, spec.get("filters"))


class Reconciler(lifecycle.Kind):
    kind = subscription.KIND
    resource = subscription.TRIGGERS
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.options = ctx.options

    async def reconcile(
        self, trigger: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        meta = trigger["metadata"]
        broker_ref = broker_name(trigger)
        if broker_ref is not None and (meta.get("labels") or {}).get(resources.BROKER_LABEL) != (
            broker_ref
        ):
            await self.api.merge_patch(
                subscription.TRIGGERS, meta["namespace"], meta["name"],
                {"metadata": {"resourceVersion": meta["resourceVersion"],
                              "labels": {resources.BROKER_LABEL: broker_ref}}},
            )  # fmt: skip
            return lifecycle.Outcome.CHANGED  # the update brings the Trigger back
        state.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        # 1. The Broker.
        broker = await self._broker(trigger, broker_ref, state)
        if broker is None:
            return None
        broker_class = (broker["metadata"].get("annotations") or {}).get(defaults.CLASS_ANNOTATION)
        if broker_class not in defaults.CONFIGURED_CLASSES:
            return lifecycle.Outcome.IGNORED
        state.propagate(
            BROKER_READY, conditions.ready_of(broker),
            "BrokerNotConfigured", "Broker has not yet been reconciled.",
        )  # fmt: skip
        broker_ready = _status(state.conditions, BROKER_READY) == "True" and (
            (broker.get("status") or {}).get("observedGeneration")
            == broker["metadata"].get("generation")
        )
        # 2. Subscriber and dead letter sink.
        dls, resolved = await self._destinations(trigger, broker, state)
        # 3. Dependency.
        state.conditions = await self._dependency(trigger, state.conditions, state.deps)
        # 4. The Subscription (a Kafka Broker's Trigger: its consumer group).
        if broker_class == defaults.KAFKA_CLASS:
            await self._consumer_group(trigger, broker, broker_ready and resolved, state)
            return None
        await self._subscription(trigger, broker, dls, broker_ready and resolved, state)
        return None

    async def _broker(
        self, trigger: kubeapi.Json, broker_ref: str | None, state: lifecycle.State
    ) -> kubeapi.Json | None:
        """The Trigger's Broker (tracked); None with BrokerReady False when there is none
        (created first for a Trigger annotated for injection)."""
        meta, old = trigger["metadata"], trigger.get("status") or {}
        namespace = meta["namespace"]
        if broker_ref is None:
            state.status.update({k: old[k] for k in RESOLVED_FIELDS if k in old})
            state.mark_false(
                BROKER_READY, "BrokerRefNotSupported",
                "spec.brokerRef to another namespace is not supported "
                "(feature cross-namespace-event-links is off)",
            )  # fmt: skip
            return None
        state.deps.targets.append((defaults.BROKERS, namespace, broker_ref))
        broker = await self.api.get_or_none(defaults.BROKERS, namespace, broker_ref)
        if broker is not None and not broker["metadata"].get("deletionTimestamp"):
            return broker
        if broker is None and injection.enabled(meta.get("annotations")):
            await injecting.ensure_broker(
                self.api, self.options.system_namespace, namespace, broker_ref
            )
        state.status.update({k: old[k] for k in RESOLVED_FIELDS if k in old})
        state.mark_false(
            BROKER_READY, "BrokerDoesNotExist", f'Broker "{broker_ref}" does not exist'
        )
        return None

    async def _destinations(
        self, trigger: kubeapi.Json, broker: kubeapi.Json, state: lifecycle.State
    ) -> tuple[dependencies.DeliveryStatusDict | None, bool]:
        """SubscriberResolved and DeadLetterSinkResolved; the dead letter sink to use and
        whether both resolved."""
        resolved = True
        subscriber = cast(
            sinks.DestinationDict, (trigger.get("spec") or {}).get("subscriber") or {}
        )
        try:
            address = await state.deps.resolve(subscriber)
        except sinks.SinkError as exc:
            resolved = False
            state.retry_later(exc.message)
            state.mark_false(SUBSCRIBER_RESOLVED, "Unable to get the Subscriber's URI", exc.message)
        else:
            state.set_address("subscriber", address)
            state.mark_true(SUBSCRIBER_RESOLVED)
        dls, state.conditions = await self._dead_letter_sink(
            trigger, broker, state.status, state.conditions, state.deps
        )
        dls_condition = state.conditions.get(channelable.DEAD_LETTER_SINK_RESOLVED)
        if dls_condition is not None and dls_condition.status == "False":
            resolved = False
            state.retry_later(f"{dls_condition.reason}: {dls_condition.message}")
        return dls, resolved

    async def _subscription(
        self, trigger: kubeapi.Json, broker: kubeapi.Json,
        dls: dependencies.DeliveryStatusDict | None, ready: bool, state: lifecycle.State,
    ) -> None:  # fmt: skip
        """SubscriptionReady: the Subscription to the broker filter, once the Broker and the
        destinations are ready; none while the filter is invalid."""
        meta, spec = trigger["metadata"], trigger.get("spec") or {}
        namespace, broker_ref = meta["namespace"], broker["metadata"]["name"]
        sub_name = subscription.name(broker_ref, meta["name"], meta["uid"])
        problems = filter_problems(spec)
        invalid_delivery = validation.delivery_problems(spec.get("delivery"))
        if problems or invalid_delivery:
            await self._remove_subscription(trigger, sub_name)
            reason = "FilterInvalid" if problems else "DeliveryInvalid"
            state.mark_false(SUBSCRIPTION_READY, reason, "; ".join(problems + invalid_delivery))
            return
        if not ready:
            # The Broker's (or a destination's) change brings the Trigger back; meanwhile the
            # Subscription, if any, stays as it is and says how it is doing.
            existing = await self.api.get_or_none(subscription.SUBSCRIPTIONS, namespace, sub_name)
            if existing is not None and not reconciling.controlled_by(existing, meta["uid"]):
                existing = None
            state.propagate(
                SUBSCRIPTION_READY, None if existing is None else conditions.ready_of(existing),
                "SubscriptionNotConfigured", "Subscription has not yet been reconciled.",
            )  # fmt: skip
            return
        channel = resources.channel_ref(broker)
        if channel is None:
            message = f'Failed to get broker "{broker_ref}" annotations: no trigger channel'
            state.retry_later(message)
            state.mark_false(BROKER_READY, "MissingBrokerChannel", message)
            return
        opts = self.options
        desired = subscription.subscription(
            trigger, broker_ref, channel,
            subscription.filter_uri(opts.broker_filter_service, opts.system_namespace, trigger),
            resources.ingress_url(
                opts.broker_ingress_service, opts.system_namespace, namespace, broker_ref
            ),
            subscription.delivery(
                spec.get("delivery"), (broker.get("spec") or {}).get("delivery"), dls
            ),
        )  # fmt: skip
        await self._subscribe(trigger, desired, state)

    async def _consumer_group(
        self, trigger: kubeapi.Json, broker: kubeapi.Json, ready: bool, state: lifecycle.State
    ) -> None:
        spec = trigger.get("spec") or {}
        problems = filter_problems(spec)
        invalid_delivery = validation.delivery_problems(spec.get("delivery"))
        if problems or invalid_delivery:
            reason = "FilterInvalid" if problems else "DeliveryInvalid"
            state.mark_false(SUBSCRIPTION_READY, reason, "; ".join(problems + invalid_delivery))
            return
        await kafkatriggers.consumer_group(self.api, self.options, trigger, broker, ready, state)

    async def _subscribe(
        self, trigger: kubeapi.Json, desired: dict[str, Any], state: lifecycle.State
    ) -> None:
        try:
            sub = await self._apply_subscription(trigger, desired, state)
        except RecreatingError as exc:
            state.retry_later(str(exc))
            state.mark_unknown(SUBSCRIPTION_READY, "SubscriptionRecreating", str(exc))
        except kubeapi.ApiError as exc:
            state.retry_later(exc.message)
            state.mark_false(SUBSCRIPTION_READY, "NotSubscribed", exc.message)
        else:
            state.propagate(
                SUBSCRIPTION_READY, conditions.ready_of(sub),
                "SubscriptionNotConfigured", "Subscription has not yet been reconciled.",
            )  # fmt: skip

    async def _dead_letter_sink(
        self,
        trigger: kubeapi.Json,
        broker: kubeapi.Json,
        status: kubeapi.Json,
        conds: conditions.Conditions,
        deps: dependencies.Dependencies,
    ) -> tuple[dependencies.DeliveryStatusDict | None, conditions.Conditions]:
        """The Trigger's dead letter sink, else the one the Broker resolved."""
        own = cast(dependencies.DeliveryDict | None, (trigger.get("spec") or {}).get("delivery"))
        if (own or {}).get("deadLetterSink"):
            try:
                found = await deps.dead_letter_sink(own)
            except sinks.SinkError as exc:
                return None, conds.mark_false(
                    channelable.DEAD_LETTER_SINK_RESOLVED,
                    "Unable to get the dead letter sink's URI",
                    exc.message,
                )
            return found, channelable.mark_dead_letter_sink(
                conds, status, cast(kubeapi.Json | None, found)
            )
        broker_delivery = (broker.get("spec") or {}).get("delivery") or {}
        if not broker_delivery.get("deadLetterSink"):
            return None, channelable.mark_dead_letter_sink(conds, status, None)
        broker_status = broker.get("status") or {}
        if not broker_status.get("deadLetterSinkUri"):
            name = broker["metadata"]["name"]
            return None, conds.mark_false(
                channelable.DEAD_LETTER_SINK_RESOLVED,
                f"Broker {name} didn't set status.deadLetterSinkURI",
                "The Broker has not resolved its dead letter sink yet.",
            )
        fields = ("deadLetterSinkUri", "deadLetterSinkCACerts", "deadLetterSinkAudience")
        inherited = cast(
            dependencies.DeliveryStatusDict,
            {k: broker_status[k] for k in fields if broker_status.get(k)},
        )
        return inherited, channelable.mark_dead_letter_sink(
            conds, status, cast(kubeapi.Json, inherited)
        )

    async def _dependency(
        self, trigger: kubeapi.Json, conds: conditions.Conditions, deps: dependencies.Dependencies
    ) -> conditions.Conditions:
        raw = (trigger["metadata"].get("annotations") or {}).get(dependency.ANNOTATION)
        if raw is None:
            return conds.mark_true(DEPENDENCY_READY)
        try:
            ref = dependency.parse(raw)
        except dependency.DependencyError as exc:
            return conds.mark_false(
                DEPENDENCY_READY, "ReferenceError",
                f"Unable to unmarshal objectReference from dependency annotation of trigger: {exc}",
            )  # fmt: skip
        try:
            resource = await self.kinds.resource_for(ref.api_version, ref.kind)
        except discovery.UnknownKind as exc:
            return conds.mark_unknown(
                DEPENDENCY_READY, "ListerDoesNotExist", f"Failed to retrieve lister: {exc}"
            )
        try:
            obj = await deps.get(resource, trigger["metadata"]["namespace"], ref.name)
        except kubeapi.NotFound as exc:
            return conds.mark_false(
                DEPENDENCY_READY,
                "DependencyDoesNotExist",
                f"Dependency does not exist: {exc.message}",
            )
        generation = obj["metadata"].get("generation")
        observed = (obj.get("status") or {}).get("observedGeneration")
        if generation != observed:
            return conds.mark_unknown(
                DEPENDENCY_READY, "GenerationNotEqual",
                f"The dependency's metadata.generation, {generation}, is not equal to its "
                f"status.observedGeneration, {observed}.",
            )  # fmt: skip
        return conds.propagate(
            DEPENDENCY_READY, conditions.ready_of(obj),
            "DependencyNotConfigured", "Dependency has not yet been reconciled.",
        )  # fmt: skip

    async def _apply_subscription(
        self, trigger: kubeapi.Json, desired: dict[str, Any], state: lifecycle.State
    ) -> kubeapi.Json:
        meta = trigger["metadata"]
        namespace, name = meta["namespace"], desired["metadata"]["name"]
        existing = await self.api.get_or_none(subscription.SUBSCRIPTIONS, namespace, name)
        children.refuse_unowned(existing, trigger, SUBSCRIPTION_READY, state)
        if existing is not None:
            if existing["metadata"].get("deletionTimestamp"):
                raise RecreatingError(f"Subscription {name} is being deleted; waiting to create it")
            current = (existing.get("spec") or {}).get("channel") or {}
            wanted = desired["spec"]["channel"]
            if {k: current.get(k) for k in wanted} != wanted:
                # spec.channel is immutable: delete and create again (as Knative does).
                await self.api.delete(subscription.SUBSCRIPTIONS, namespace, name)
                logger.info("Subscription %s/%s moves to channel %s; recreating it.",
                            namespace, name, wanted["name"])  # fmt: skip
                raise RecreatingError(f"Subscription {name} moves to channel {wanted['name']}")
        sub = await self.api.apply(subscription.SUBSCRIPTIONS, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created Subscription %s/%s for Trigger %s.", namespace, name,
                        meta["name"])  # fmt: skip
        return sub

    async def _remove_subscription(self, trigger: kubeapi.Json, name: str) -> None:
        meta = trigger["metadata"]
        existing = await self.api.get_or_none(subscription.SUBSCRIPTIONS, meta["namespace"], name)
        if existing is not None and reconciling.controlled_by(existing, meta["uid"]):
            await self.api.delete(subscription.SUBSCRIPTIONS, meta["namespace"], name)
            logger.info("Deleted Subscription %s/%s: the Trigger's filter is invalid.",
                        meta["namespace"], name)  # fmt: skip
