"""Level-based reconciler of Broker, class MTChannelBasedBroker (knative/eventing
`pkg/reconciler/broker`).

0. Defaults (no webhook): the class annotation and `spec.config` (and `spec.delivery`, when
   the defaults have one) from `config-br-defaults`, written once; the update brings the
   Broker back. Brokers of another class are left alone after that.
1. The dead letter sink of `spec.delivery` -> DeadLetterSinkResolved, `deadLetterSinkUri`.
2. The channel template from the ConfigMap `spec.config` names, then the trigger channel
   `<broker>-kne-trigger` (server-side apply, tracked) -> TriggerChannelReady from its Ready,
   its address recorded in `status.annotations`. A missing ConfigMap makes it False naming
   the ConfigMap. ConfigMaps of the system namespace are watched; one elsewhere (the
   controller may only get those by name) is read again every `config_recheck` seconds, so
   the Broker recovers when it appears and turns False when it is deleted.
3. Ready endpoints of the shared `broker-filter` and `broker-ingress` Services in the system
   namespace -> FilterReady, IngressReady.
4. Address `http://broker-ingress.<system-ns>.svc.cluster.local/<ns>/<name>` (Addressable),
   EventPoliciesReady (True: OIDC is off).

A step that fails marks its condition, the later ones still run, and the key is requeued.
Deletion needs nothing: the trigger channel is garbage-collected through its owner reference.
"""

from __future__ import annotations

import logging
from typing import cast

from controller import channelable, context
from controller.broker import defaults, resources
from controller.channel import backing
from controller.framework import (
    children,
    conditions,
    dependencies,
    discovery,
    lifecycle,
    reconciling,
    sinks,
)
from controller.inmemorychannel import service
from kevents import kubeapi

logger = logging.getLogger(__name__)

FIELD_MANAGER = "kevents-controller"
INGRESS_READY = "IngressReady"
TRIGGER_CHANNEL_READY = "TriggerChannelReady"
FILTER_READY = "FilterReady"
CONDITION_SET = conditions.ConditionSet(
    (INGRESS_READY, TRIGGER_CHANNEL_READY, FILTER_READY, channelable.ADDRESSABLE,
     channelable.DEAD_LETTER_SINK_RESOLVED, channelable.EVENT_POLICIES_READY)
)  # fmt: skip


class Reconciler(lifecycle.Kind):
    kind = defaults.KIND
    resource = defaults.BROKERS
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.options = ctx.options

    async def reconcile(
        self, broker: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        if await self._default(broker, state):
            return lifecycle.Outcome.CHANGED  # the update brings the Broker back with defaults
        annotations = broker["metadata"].get("annotations") or {}
        if annotations.get(defaults.CLASS_ANNOTATION) != defaults.MT_CLASS:
            return lifecycle.Outcome.IGNORED
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
        # 2. The trigger channel.
        await self._trigger_channel(broker, state)
        # 3. The shared filter and ingress.
        await self._endpoints(state)
        # 4. Address and policies.
        opts, meta = self.options, broker["metadata"]
        url = resources.ingress_url(
            opts.broker_ingress_service, opts.system_namespace, meta["namespace"], meta["name"]
        )
        state.status["address"] = resources.address(url)
        state.status["addresses"] = [resources.address(url)]
        state.mark_true(channelable.ADDRESSABLE)
        state.conditions = channelable.mark_event_policies(state.conditions)
        return None

    async def _default(self, broker: kubeapi.Json, state: lifecycle.State) -> bool:
        """Write the missing defaults; True when the Broker was changed."""
        meta, spec = broker["metadata"], broker.get("spec") or {}
        annotations = dict(meta.get("annotations") or {})
        broker_class = annotations.get(defaults.CLASS_ANNOTATION)
        if broker_class is not None and (
            broker_class not in defaults.CONFIGURED_CLASSES or spec.get("config")
        ):
            return False
        system = self.options.system_namespace
        configmap = await self.api.get_or_none(
            backing.CONFIGMAPS, system, defaults.DEFAULTS_CONFIGMAP
        )
        try:
            found = defaults.defaults_for(configmap, meta["namespace"], system)
        except defaults.DefaultsError as exc:
            if broker_class is None:  # maybe not ours: no status
                raise reconciling.ReconcileError(str(exc)) from exc
            state.mark_false(TRIGGER_CHANNEL_READY, "BrokerDefaultsInvalid", str(exc))
            raise state.fail(str(exc)) from exc
        patch: kubeapi.Json = {"metadata": {"resourceVersion": meta["resourceVersion"]}}
        if broker_class is None:
            broker_class = found.broker_class
            patch["metadata"]["annotations"] = {defaults.CLASS_ANNOTATION: broker_class}
        if not spec.get("config"):
            patch["spec"] = {"config": defaults.config_for(found, broker_class, system)}
            if found.delivery and not spec.get("delivery"):
                patch["spec"]["delivery"] = found.delivery
        await self.api.merge_patch(defaults.BROKERS, meta["namespace"], meta["name"], patch)
        logger.info(
            "Broker %s/%s defaults to class %s%s.", meta["namespace"], meta["name"], broker_class,
            f" with config {found.config['namespace']}/{found.config['name']}"
            if "spec" in patch else "",
        )  # fmt: skip
        return True

    async def _endpoints(self, state: lifecycle.State) -> None:
        """FilterReady and IngressReady: the shared Services have ready endpoints."""
        opts = self.options
        for condition, service_name in (
            (FILTER_READY, opts.broker_filter_service),
            (INGRESS_READY, opts.broker_ingress_service),
        ):
            slices = await self.api.request(
                "GET",
                service.ENDPOINTSLICES.path(opts.system_namespace),
                query=[("labelSelector", f"kubernetes.io/service-name={service_name}")],
            )
            if service.endpoints_ready(list(slices.get("items") or [])):
                state.mark_true(condition)
            else:
                state.mark_false(
                    condition,
                    "EndpointsUnavailable",
                    f'Endpoints "{service_name}" are unavailable.',
                )

    async def _trigger_channel(self, broker: kubeapi.Json, state: lifecycle.State) -> None:
        """Apply the trigger channel; TriggerChannelReady and its address in annotations."""
        meta = broker["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        channel_name = resources.trigger_channel_name(name)
        try:
            template = await self._template(broker, state)
            resource = await self.kinds.resource_for(template["apiVersion"], template["kind"])
        except (defaults.TemplateError, discovery.UnknownKind) as exc:
            message = f"Error on setting up the ChannelTemplate: {exc}"
            state.retry_later(message)
            state.mark_false(TRIGGER_CHANNEL_READY, "ChannelTemplateFailed", message)
            return
        state.deps.targets.append((resource, namespace, channel_name))
        existing = await self.api.get_or_none(resource, namespace, channel_name)
        children.refuse_unowned(existing, broker, TRIGGER_CHANNEL_READY, state)
        desired = resources.trigger_channel(broker, template)
        try:
            channel = await self.api.apply(resource, namespace, desired, FIELD_MANAGER)
        except kubeapi.ApiError as exc:
            message = f"Failed to reconcile trigger channel: {exc.message}"
            state.retry_later(message)
            state.mark_false(TRIGGER_CHANNEL_READY, "ChannelFailure", message)
            return
        if existing is None:
            logger.info("Created %s %s for Broker %s/%s.", template["kind"], channel_name,
                        namespace, name)  # fmt: skip
        url = str(((channel.get("status") or {}).get("address") or {}).get("url") or "")
        if not url:
            state.mark_false(
                TRIGGER_CHANNEL_READY, "NoAddress", "Channel does not have an address."
            )
            return
        state.status["annotations"] = resources.channel_annotations(template, channel_name, url)
        state.propagate(
            TRIGGER_CHANNEL_READY,
            conditions.ready_of(channel),
            "TriggerChannelNotConfigured",
            "The trigger channel has not been reconciled yet.",
        )

    async def _template(self, broker: kubeapi.Json, state: lifecycle.State) -> backing.TemplateDict:
        config = dict((broker.get("spec") or {}).get("config") or {})
        # KReference defaulting: a config without namespace is in the Broker's namespace.
        config["namespace"] = config.get("namespace") or broker["metadata"]["namespace"]
        problem = defaults.config_problem(config)
        if problem is not None:
            raise defaults.TemplateError(problem)
        configmap = await self.api.get_or_none(
            backing.CONFIGMAPS, config["namespace"], config["name"]
        )
        system = self.options.system_namespace
        if configmap is None and config["namespace"] == defaults.KNATIVE_NAMESPACE != system:
            # Knative YAML applied unchanged names Knative's system namespace: ours stands in.
            configmap = await self.api.get_or_none(backing.CONFIGMAPS, system, config["name"])
        if (configmap or {}).get("metadata", {}).get("namespace", config["namespace"]) != system:
            # Not in the watched system namespace: read it again soon (appears or is deleted).
            state.recheck_within(self.options.config_recheck)
        if configmap is None:
            raise defaults.TemplateError(
                f'configmap "{config["name"]}" not found in namespace {config["namespace"]}'
            )
        return defaults.channel_template(configmap)
