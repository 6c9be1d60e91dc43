"""Level-based reconciler of PingSource (knative/eventing `pkg/reconciler/pingsource`).

1. Validate what the CRD's CEL cannot with `kevents.pingspec`, the rules the adapter fires
   by: schedule and timezone (robfig syntax, must fire), contentType, data/dataBase64. An
   invalid spec sets Ready False with every problem and no sinkUri, so it never fires.
2. Resolve the sink (tracked) -> `status.sinkUri` (SinkProvided); the multi-tenant adapter
   reads it from the status.
3. Ensure the shared adapter Deployment exists (create from the configured image if
   missing) and propagate its availability (Deployed).
4. OIDCIdentityCreated (True: OIDC is off), `ceAttributes` and one EventType per type
   (`framework.eventtypes`).
"""

from __future__ import annotations

import logging

from controller import availability, context
from controller.framework import conditions, eventtypes, lifecycle
from controller.pingsource import adapter
from kevents import kubeapi, pingspec

logger = logging.getLogger(__name__)

PINGSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "pingsources")
KIND = "PingSource"
SINK_PROVIDED = "SinkProvided"
DEPLOYED = "Deployed"
OIDC_IDENTITY_CREATED = "OIDCIdentityCreated"
CONDITION_SET = conditions.ConditionSet((SINK_PROVIDED, DEPLOYED, OIDC_IDENTITY_CREATED))
OIDC_DISABLED = "authentication-oidc feature disabled"
EVENT_TYPE = "dev.knative.sources.ping"


def ce_attributes(namespace: str, name: str) -> list[dict[str, str]]:
    return [{"type": EVENT_TYPE, "source": f"/apis/v1/namespaces/{namespace}/pingsources/{name}"}]


def invalid(spec: kubeapi.Json) -> tuple[str, str] | None:
    """(reason, message) when the spec breaks the shared PingSource rules (the adapter's
    too, so Ready means it fires), else None."""
    found = pingspec.problems(spec)
    if not found:
        return None
    field = found[0].path.rpartition(".")[2]
    reason = {"schedule": "InvalidSchedule", "timezone": "InvalidTimezone"}.get(field)
    return reason or "InvalidData", "; ".join(map(str, found))


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = PINGSOURCES
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.options = ctx.options

    async def reconcile(self, source: kubeapi.Json, state: lifecycle.State) -> None:
        meta, spec = source["metadata"], source.get("spec") or {}
        state.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        # 1. Sink.
        address = await state.resolve(spec.get("sink"), SINK_PROVIDED)
        # 2. The shared adapter.
        state.conditions = availability.propagate(state.conditions, DEPLOYED, await self._adapter())
        # 3. Validation last, so a fixed spec keeps everything else already in place.
        problem = invalid(spec)
        if problem is not None:
            state.mark_false(conditions.READY, *problem)
            return
        state.set_address("sink", address)
        attributes = ce_attributes(meta["namespace"], meta["name"])
        state.status["ceAttributes"] = attributes
        reference = eventtypes.sink_reference(spec.get("sink"), meta["namespace"])
        await eventtypes.sync(self.api, source, eventtypes.desired(source, attributes, reference))

    async def _adapter(self) -> kubeapi.Json:
        """The shared adapter Deployment, created from the configured image when missing."""
        system = self.options.system_namespace
        dep = await self.api.get_or_none(availability.DEPLOYMENTS, system, adapter.NAME)
        if dep is not None:
            return dep
        desired = adapter.deployment(self.options.ping_adapter_image, system)
        try:
            dep = await self.api.create(availability.DEPLOYMENTS, system, desired)
        except kubeapi.Conflict:
            return await self.api.get(availability.DEPLOYMENTS, system, adapter.NAME)
        logger.info("Created the PingSource adapter Deployment %s/%s.", system, adapter.NAME)
        return dep
