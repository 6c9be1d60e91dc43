"""Level-based reconciler of ContainerSource (knative/eventing `pkg/reconciler/containersource`).

1. Apply the SinkBinding `<name>-sinkbinding` (subject: the source's Deployment, sink and
   ceOverrides from the source) and propagate it: its Ready -> SinkBindingReady, its
   sinkUri/sinkCACerts/sinkAudience -> ours.
2. Apply the Deployment `<name>-deployment` from `spec.template` with the binding's env
   already in it, once the sink has resolved. A sink that is missing at creation only delays
   it: the SinkBinding's status change wakes this source up (eventing-contrib#187). Any change
   of the template (image, args, env) is applied and rolls out (eventing-contrib#28).
   ReceiveAdapterReady follows the Deployment's Available.
3. `ceAttributes` from what the containers declare (`resources.ce_attributes`).

Server-side apply owns exactly the fields we set, so `kubectl scale` and the binding's own
patches are left alone. Deletion is garbage collection through the owner references.
"""

from __future__ import annotations

import logging

from controller import availability, conditions, context, reconciling, statuses
from controller.containersource import resources
from controller.sinkbinding import reconciler as sinkbinding
from kevents import kubeapi

logger = logging.getLogger(__name__)

CONTAINERSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "containersources")
KIND = resources.KIND
FIELD_MANAGER = "kevents-controller"
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


class Reconciler:
    kind = KIND

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        source = await self.api.get_or_none(CONTAINERSOURCES, namespace, name)
        if source is None or source["metadata"].get("deletionTimestamp"):
            return
        status: kubeapi.Json = {"observedGeneration": source["metadata"].get("generation", 0)}
        conds = CONDITION_SET.initial((source.get("status") or {}).get("conditions") or [])
        try:
            conds = await self._reconcile(key, source, status, conds)
        except reconciling.ReconcileError as failure:
            await self._write(source, status, failure.conditions)
            raise
        await self._write(source, status, conds)

    async def _owned_apply(
        self, resource: kubeapi.Resource, source: kubeapi.Json, desired: kubeapi.Json,
        condition: str, conds: conditions.Conditions, key: str,
    ) -> kubeapi.Json:  # fmt: skip
        """Server-side apply of a child, refusing to take over one the source does not own."""
        meta = desired["metadata"]
        existing = await self.api.get_or_none(resource, meta["namespace"], meta["name"])
        if existing is not None and not reconciling.controlled_by(
            existing, source["metadata"]["uid"]
        ):
            kind = desired["kind"]
            message = f"{kind} '{meta['name']}' exists and is not owned by this ContainerSource."
            conds = conds.mark_false(condition, f"{kind}NotOwned", message)
            raise reconciling.ReconcileError(f"{key}: {message}", conds)
        applied = await self.api.apply(resource, meta["namespace"], desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created %s %s for ContainerSource %s.", desired["kind"], meta["name"], key)
        return applied

    async def _reconcile(
        self, key: str, source: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> conditions.Conditions:
        meta = source["metadata"]
        # 1. The SinkBinding.
        binding = await self._owned_apply(
            sinkbinding.SINKBINDINGS, source, resources.sinkbinding(source),
            SINK_BINDING_READY, conds, key,
        )  # fmt: skip
        conds = propagate_binding(conds, binding)
        bstatus = binding.get("status") or {}
        for field in SINK_FIELDS:
            if bstatus.get(field):
                status[field] = bstatus[field]
        status["ceAttributes"] = resources.ce_attributes(source)

        # 2. The Deployment, once there is a sink to give it.
        sink = sinkbinding.sink_of(binding)
        name = resources.deployment_name(meta["name"])
        if sink is None:
            existing = await self.api.get_or_none(availability.DEPLOYMENTS, meta["namespace"], name)
            if existing is None:
                return conds.mark_unknown(
                    RECEIVE_ADAPTER_READY, "SinkNotResolved",
                    f"The Deployment '{name}' is created once the sink resolves.",
                )  # fmt: skip
            return availability.propagate(conds, RECEIVE_ADAPTER_READY, existing)
        dep = await self._owned_apply(
            availability.DEPLOYMENTS, source, resources.deployment(source, sink),
            RECEIVE_ADAPTER_READY, conds, key,
        )  # fmt: skip
        return availability.propagate(conds, RECEIVE_ADAPTER_READY, dep)

    async def _write(
        self, source: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(self.api, CONTAINERSOURCES, self.kind, source, status, conds)
