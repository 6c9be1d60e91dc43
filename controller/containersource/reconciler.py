"""Level-based reconciler of ContainerSource (knative/eventing `pkg/reconciler/containersource`).

0. Unnamed containers are named `<source>-<index>` (Knative's defaulting; the admission
   webhook does it at creation, this for sources stored without it) and the update brings
   the source back.
1. Apply the SinkBinding `<name>-sinkbinding` (subject: the source's Deployment, sink and
   ceOverrides from the source) and propagate it: its Ready -> SinkBindingReady, its
   sinkUri/sinkCACerts/sinkAudience -> ours.
2. Apply the Deployment `<name>-deployment` from `spec.template` with the binding's env
   already in it, once the sink has resolved. A sink that is missing at creation only delays
   it: the SinkBinding's status change wakes this source up (eventing-contrib#187). Any change
   of the template (image, args, env) is applied and rolls out (eventing-contrib#28).
   ReceiveAdapterReady follows the Deployment's Available; an apply the apiserver refuses
   makes it False with the apiserver's reason and message verbatim.
3. `ceAttributes` from what the containers declare (`resources.ce_attributes`), and one
   EventType per type (`framework.eventtypes`).

Server-side apply owns exactly the fields we set, so `kubectl scale` and the binding's own
patches are left alone. Deletion is garbage collection through the owner references.
"""

from __future__ import annotations

import logging

from controller import availability, context
from controller.containersource import resources
from controller.framework import children, conditions, eventtypes, lifecycle
from controller.sinkbinding import reconciler as sinkbinding
from kevents import kubeapi

logger = logging.getLogger(__name__)

CONTAINERSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "containersources")
KIND = resources.KIND
SINK_BINDING_READY = "SinkBindingReady"
RECEIVE_ADAPTER_READY = "ReceiveAdapterReady"
CONDITION_SET = conditions.ConditionSet((SINK_BINDING_READY, RECEIVE_ADAPTER_READY))
SINK_FIELDS = ("sinkUri", "sinkCACerts", "sinkAudience")


def propagate_binding(conds: conditions.Conditions, binding: kubeapi.Json) -> conditions.Conditions:
    for cond in (binding.get("status") or {}).get("conditions") or []:
        if cond.get("type") != conditions.READY:
            continue
        reason, message = str(cond.get("reason", "")), str(cond.get("message", ""))
        if cond.get("status") == "True":
            return conds.mark_true(SINK_BINDING_READY)
        if cond.get("status") == "False":
            return conds.mark_false(SINK_BINDING_READY, reason, message)
        return conds.mark_unknown(SINK_BINDING_READY, reason, message)
    return conds.mark_unknown(SINK_BINDING_READY, "", "")


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = CONTAINERSOURCES
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api

    async def reconcile(
        self, source: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        meta = source["metadata"]
        # 0. Defaults the webhook writes, for a source stored without it.
        named = resources.named_containers(source)
        if named is not None:
            patch = {
                "metadata": {"resourceVersion": meta["resourceVersion"]},
                "spec": {"template": {"spec": {"containers": named}}},
            }
            await self.api.merge_patch(CONTAINERSOURCES, meta["namespace"], meta["name"], patch)
            logger.info("ContainerSource %s: unnamed containers named.", state.key)
            return lifecycle.Outcome.CHANGED
        # 1. The SinkBinding.
        binding = await children.apply(
            self.api, sinkbinding.SINKBINDINGS, source, resources.sinkbinding(source),
            SINK_BINDING_READY, state,
        )  # fmt: skip
        state.conditions = propagate_binding(state.conditions, binding)
        bstatus = binding.get("status") or {}
        for field in SINK_FIELDS:
            if bstatus.get(field):
                state.status[field] = bstatus[field]
        attributes = resources.ce_attributes(source)
        state.status["ceAttributes"] = attributes
        reference = eventtypes.sink_reference(
            (source.get("spec") or {}).get("sink"), meta["namespace"]
        )
        await eventtypes.sync(self.api, source, eventtypes.desired(source, attributes, reference))

        # 2. The Deployment, once there is a sink to give it.
        sink = sinkbinding.sink_of(binding)
        name = resources.deployment_name(meta["name"])
        if sink is None:
            dep = await self.api.get_or_none(availability.DEPLOYMENTS, meta["namespace"], name)
            if dep is None:
                state.mark_unknown(
                    RECEIVE_ADAPTER_READY, "SinkNotResolved",
                    f"The Deployment '{name}' is created once the sink resolves.",
                )  # fmt: skip
                return None
        else:
            dep = await children.apply(
                self.api, availability.DEPLOYMENTS, source, resources.deployment(source, sink),
                RECEIVE_ADAPTER_READY, state,
            )  # fmt: skip
        state.conditions = availability.propagate(state.conditions, RECEIVE_ADAPTER_READY, dep)
        return None
