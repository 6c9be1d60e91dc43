"""Level-based reconciler of PingSource (knative/eventing `pkg/reconciler/pingsource`).

1. Validate what the CRD's CEL cannot with `kevents.pingspec`, the rules the adapter fires
   by: schedule and timezone (robfig syntax, must fire), contentType, data/dataBase64. An
   invalid spec sets Ready False with every problem and no sinkUri, so it never fires.
2. Resolve the sink (tracked) -> `status.sinkUri` (SinkProvided); the multi-tenant adapter
   reads it from the status.
3. Ensure the shared adapter Deployment exists (create from the configured image if
   missing) and propagate its availability (Deployed).
4. OIDCIdentityCreated (True: OIDC is off) and `ceAttributes`.
"""

from __future__ import annotations

import logging
from typing import cast

from controller import (
    availability,
    conditions,
    context,
    dependencies,
    reconciling,
    sinks,
    statuses,
    tracking,
)
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


class Reconciler:
    kind = KIND

    def __init__(self, ctx: context.Context, scope: tracking.Scope) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.scope = scope
        self.options = ctx.options

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        source = await self.api.get_or_none(PINGSOURCES, namespace, name)
        if source is None or source["metadata"].get("deletionTimestamp"):
            self.scope.forget(key)
            return
        status: kubeapi.Json = {"observedGeneration": source["metadata"].get("generation", 0)}
        conds = CONDITION_SET.initial((source.get("status") or {}).get("conditions") or [])
        conds = conds.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        deps = dependencies.Dependencies(self.api, self.kinds, namespace)
        try:
            conds = await self._reconcile(key, source, status, conds, deps)
        except reconciling.ReconcileError as failure:
            await self._write(source, status, failure.conditions)
            raise
        finally:
            self.scope.track_only(key, deps.targets)
        await self._write(source, status, conds)

    async def _reconcile(
        self,
        key: str,
        source: kubeapi.Json,
        status: kubeapi.Json,
        conds: conditions.Conditions,
        deps: dependencies.Dependencies,
    ) -> conditions.Conditions:
        meta, spec = source["metadata"], source.get("spec") or {}
        # 1. Sink.
        try:
            address = await deps.resolve(cast(sinks.DestinationDict, spec.get("sink") or {}))
        except sinks.SinkError as exc:
            conds = conds.mark_false(SINK_PROVIDED, exc.reason, exc.message)
            raise reconciling.ReconcileError(f"{key}: {exc.message}", conds) from exc
        conds = conds.mark_true(SINK_PROVIDED)

        # 2. The shared adapter.
        system = self.options.system_namespace
        dep = await self.api.get_or_none(availability.DEPLOYMENTS, system, adapter.NAME)
        if dep is None:
            desired = adapter.deployment(self.options.ping_adapter_image, system)
            try:
                dep = await self.api.create(availability.DEPLOYMENTS, system, desired)
                logger.info("Created the PingSource adapter Deployment %s/%s.", system,
                            adapter.NAME)  # fmt: skip
            except kubeapi.Conflict:
                dep = await self.api.get(availability.DEPLOYMENTS, system, adapter.NAME)
        conds = availability.propagate(conds, DEPLOYED, dep)

        # 3. Validation last, so a fixed spec keeps everything else already in place.
        problem = invalid(spec)
        if problem is not None:
            return conds.mark_false(conditions.READY, *problem)
        status["sinkUri"] = address.url
        if address.ca_certs:
            status["sinkCACerts"] = address.ca_certs
        if address.audience:
            status["sinkAudience"] = address.audience
        status["ceAttributes"] = ce_attributes(meta["namespace"], meta["name"])
        return conds

    async def _write(
        self, source: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(self.api, PINGSOURCES, self.kind, source, status, conds)
