"""Level-based reconcilers of Sequence and Parallel (knative/eventing
`pkg/reconciler/sequence`, `pkg/reconciler/parallel`).

Both do the same four things with different children (`resources`):

1. Default `spec.channelTemplate` once, written into the spec (Knative's webhook does it
   from ConfigMap `default-ch-webhook`; the same rule as the Channel kind's,
   `controller.channel.backing.default_template`), so the choice is visible and sticky.
2. Apply every channel (server-side apply, of whatever channel kind the template names and
   the install serves), tracked: a channel's status change reconciles the flow again.
3. Apply every Subscription, tracked. `spec.channel` of a Subscription is immutable: one
   that must move (the template's kind changed) is deleted and made again, as Knative does.
   Children of the same name that the flow does not control are never touched: the flow is
   Ready False with the reason.
4. Statuses from the children as Knative's lifecycle computes them. Subscriptions left over
   from a longer list of steps or branches are deleted, so nothing is delivered past the
   new end (their channels stay, carrying nothing, until the flow is deleted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from controller import context
from controller.channel import backing
from controller.flows import resources
from controller.framework import children, discovery, lifecycle, reconciling
from kevents import kubeapi

logger = logging.getLogger(__name__)

FIELD_MANAGER = "kevents-controller"


class FlowReconciler(lifecycle.Kind):
    """What Sequence and Parallel share: template default, channel and Subscription apply."""

    condition_set = resources.CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.system_namespace = ctx.options.system_namespace

    async def template(
        self, flow: kubeapi.Json, state: lifecycle.State
    ) -> tuple[backing.TemplateDict, kubeapi.Resource] | None:
        """The flow's channel template and its resource; None after writing the default
        (the spec update brings the flow back)."""
        template = cast(
            backing.TemplateDict | None, (flow.get("spec") or {}).get("channelTemplate")
        )
        if template is None:
            await self._default_template(flow, state)
            return None
        try:
            resource = await self.kinds.resource_for(template["apiVersion"], template["kind"])
        except discovery.UnknownKind as exc:
            state.mark_false(resources.CHANNELS_READY, "ChannelTemplateInvalid", str(exc))
            raise state.fail(str(exc)) from exc
        return template, resource

    async def _default_template(self, flow: kubeapi.Json, state: lifecycle.State) -> None:
        meta = flow["metadata"]
        configmap = await self.api.get_or_none(
            backing.CONFIGMAPS, self.system_namespace, backing.DEFAULTS_CONFIGMAP
        )
        try:
            template = backing.default_template(configmap, meta["namespace"])
        except backing.TemplateError as exc:
            state.mark_false(resources.CHANNELS_READY, "ChannelTemplateInvalid", str(exc))
            raise state.fail(str(exc)) from exc
        await self.api.merge_patch(
            self.resource, meta["namespace"], meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]},
             "spec": {"channelTemplate": template}},
        )  # fmt: skip
        logger.info("%s %s uses %s channels by default.", self.kind, state.key, template["kind"])

    async def apply_channel(
        self,
        flow: kubeapi.Json,
        resource: kubeapi.Resource,
        desired: dict[str, Any],
        state: lifecycle.State,
    ) -> kubeapi.Json:
        meta = flow["metadata"]
        namespace, name = meta["namespace"], desired["metadata"]["name"]
        state.deps.targets.append((resource, namespace, name))
        existing = await self.api.get_or_none(resource, namespace, name)
        children.refuse_unowned(existing, flow, resources.CHANNELS_READY, state)
        channel = await self.api.apply(resource, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created %s %s/%s for %s %s.", desired["kind"], namespace, name,
                        self.kind, state.key)  # fmt: skip
        return channel

    async def apply_subscription(
        self, flow: kubeapi.Json, desired: dict[str, Any], state: lifecycle.State
    ) -> kubeapi.Json:
        meta = flow["metadata"]
        namespace, name = meta["namespace"], desired["metadata"]["name"]
        state.deps.targets.append((resources.SUBSCRIPTIONS, namespace, name))
        existing = await self.api.get_or_none(resources.SUBSCRIPTIONS, namespace, name)
        children.refuse_unowned(existing, flow, resources.SUBSCRIPTIONS_READY, state)
        if existing is not None:
            if existing["metadata"].get("deletionTimestamp"):
                message = f"Subscription {name} is being deleted; waiting to create it"
                state.mark_unknown(resources.SUBSCRIPTIONS_READY, "SubscriptionRecreating", message)
                raise state.fail(message)
            current = (existing.get("spec") or {}).get("channel") or {}
            wanted = desired["spec"]["channel"]
            if {k: current.get(k) for k in wanted} != wanted:
                await self.api.delete(resources.SUBSCRIPTIONS, namespace, name)
                logger.info("Subscription %s/%s moves to %s %s; recreating it.", namespace, name,
                            wanted["kind"], wanted["name"])  # fmt: skip
                message = f"Subscription {name} moves to {wanted['kind']} {wanted['name']}"
                state.mark_unknown(resources.SUBSCRIPTIONS_READY, "SubscriptionRecreating", message)
                raise state.fail(message)
        sub = await self.api.apply(resources.SUBSCRIPTIONS, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created Subscription %s/%s for %s %s.", namespace, name, self.kind,
                        state.key)  # fmt: skip
        return sub

    async def remove_surplus(
        self, flow: kubeapi.Json, names: Callable[[int], tuple[str, ...]], count: int
    ) -> None:
        """Delete the flow's Subscriptions of indexes `count`, `count + 1`, ... (left from a
        longer list); they were made contiguously, so the first index without any ends it."""
        meta = flow["metadata"]
        index = count
        while True:
            found = False
            for name in names(index):
                sub = await self.api.get_or_none(resources.SUBSCRIPTIONS, meta["namespace"], name)
                if sub is None or not reconciling.controlled_by(sub, meta["uid"]):
                    continue
                found = True
                await self.api.delete(resources.SUBSCRIPTIONS, meta["namespace"], name)
                logger.info("Deleted Subscription %s/%s: %s %s has %d now.", meta["namespace"],
                            name, self.kind, reconciling.key_of(flow), count)  # fmt: skip
            if not found:
                return
            index += 1


class Sequence(FlowReconciler):
    kind = "Sequence"
    resource = resources.SEQUENCES

    async def reconcile(
        self, sequence: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        found = await self.template(sequence, state)
        if found is None:
            return lifecycle.Outcome.CHANGED
        template, resource = found
        channels = [
            await self.apply_channel(sequence, resource, desired, state)
            for desired in resources.sequence_channels(sequence, template)
        ]
        desired_subs = resources.sequence_subscriptions(sequence, template)
        subs = [await self.apply_subscription(sequence, d, state) for d in desired_subs]
        name = sequence["metadata"]["name"]
        await self.remove_surplus(
            sequence, lambda i: (resources.sequence_subscription_name(name, i),), len(subs)
        )
        state.conditions = resources.sequence_status(state.conditions, state.status, channels, subs)
        return None


class Parallel(FlowReconciler):
    kind = "Parallel"
    resource = resources.PARALLELS

    async def reconcile(
        self, parallel: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        found = await self.template(parallel, state)
        if found is None:
            return lifecycle.Outcome.CHANGED
        template, resource = found
        ingress, *branch_channels = [
            await self.apply_channel(parallel, resource, desired, state)
            for desired in resources.parallel_channels(parallel, template)
        ]
        pairs = resources.parallel_subscriptions(parallel, template)
        subs = [
            (await self.apply_subscription(parallel, f, state),
             await self.apply_subscription(parallel, s, state))
            for f, s in pairs
        ]  # fmt: skip
        name = parallel["metadata"]["name"]
        await self.remove_surplus(
            parallel,
            lambda i: (resources.parallel_filter_subscription_name(name, i),
                       resources.parallel_subscription_name(name, i)),
            len(subs),
        )  # fmt: skip
        state.conditions = resources.parallel_status(
            state.conditions, state.status, ingress, branch_channels, subs
        )
        return None
