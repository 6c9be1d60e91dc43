"""Level-based reconciler of ApiServerSource: read the object, recompute everything, write.

Order as in knative/eventing `pkg/reconciler/apiserversource`: resolve the sink
(SinkProvided), resolve the namespaces, check the ServiceAccount's permissions
(SufficientPermissions), apply the adapter Deployment, propagate its availability
(Deployed), then publish `ceAttributes`. A failed step writes status and raises
`ReconcileError`, so the key is requeued with backoff (and the tracker requeues it sooner
when the sink appears). Deletion needs nothing: the Deployment carries an owner reference
and is garbage-collected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from controller import availability, conditions, discovery, reconciling, sinks, statuses, tracking
from controller.apiserversource import adapter, permissions
from kevents import kubeapi

logger = logging.getLogger(__name__)

APISERVERSOURCES = kubeapi.Resource("sources.knative.dev", "v1", "apiserversources")
NAMESPACES = kubeapi.Resource("", "v1", "namespaces", namespaced=False)
FIELD_MANAGER = "kevents-controller"

SINK_PROVIDED = "SinkProvided"
DEPLOYED = "Deployed"
SUFFICIENT_PERMISSIONS = "SufficientPermissions"
OIDC_IDENTITY_CREATED = "OIDCIdentityCreated"
CONDITION_SET = conditions.ConditionSet(
    (SINK_PROVIDED, DEPLOYED, SUFFICIENT_PERMISSIONS, OIDC_IDENTITY_CREATED)
)
OIDC_DISABLED = "authentication-oidc feature disabled"
EVENT_TYPES = {
    "Resource": tuple(f"dev.knative.apiserver.resource.{v}" for v in ("add", "delete", "update")),
    "Reference": tuple(f"dev.knative.apiserver.ref.{v}" for v in ("add", "delete", "update")),
}


ReconcileError = reconciling.ReconcileError


def deployed_condition(
    conds: conditions.Conditions, deployment: kubeapi.Json
) -> conditions.Conditions:
    """PropagateDeploymentAvailability: Deployed follows the Deployment's Available."""
    return availability.propagate(conds, DEPLOYED, deployment)


def ce_attributes(mode: str, source: str) -> list[dict[str, str]]:
    return [{"type": t, "source": source} for t in EVENT_TYPES.get(mode, ())]


status_patch = statuses.patch


class Reconciler:
    kind = "ApiServerSource"

    def __init__(
        self,
        api: kubeapi.KubeApi,
        kinds: discovery.Discovery,
        tracker: tracking.Scope,
        adapter_config: Callable[[], adapter.AdapterConfig],
        *,
        ce_source: str,
    ) -> None:
        self.api = api
        self.kinds = kinds
        self.tracker = tracker
        self.adapter_config = adapter_config
        self.resolver = sinks.Resolver(api, kinds)
        self.ce_source = ce_source

    async def reconcile(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        source = await self.api.get_or_none(APISERVERSOURCES, namespace, name)
        if source is None or source["metadata"].get("deletionTimestamp"):
            self.tracker.forget(key)
            return
        status: kubeapi.Json = {"observedGeneration": source["metadata"].get("generation", 0)}
        conds = CONDITION_SET.initial((source.get("status") or {}).get("conditions") or [])
        conds = conds.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        try:
            conds = await self._reconcile(key, source, status, conds)
        except ReconcileError as failure:
            await self._write(source, status, failure.conditions)
            raise
        await self._write(source, status, conds)

    async def _reconcile(
        self, key: str, source: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> conditions.Conditions:
        meta, spec = source["metadata"], source.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]

        # 1. Sink.
        destination = cast(sinks.DestinationDict, spec.get("sink") or {})
        try:
            ref = sinks.ref_of(destination, namespace)
            if ref is not None:
                resource = await self.resolver.resource_of(ref)
                self.tracker.track_only(key, [(resource, ref.namespace, ref.name)])
            else:
                self.tracker.forget(key)
            address = await self.resolver.resolve(destination, namespace)
        except sinks.SinkError as exc:
            conds = conds.mark_false(SINK_PROVIDED, exc.reason, exc.message)
            raise ReconcileError(f"{key}: {exc.message}", conds) from exc
        status["sinkUri"] = address.url
        if address.ca_certs:
            status["sinkCACerts"] = address.ca_certs
        if address.audience:
            status["sinkAudience"] = address.audience
        conds = conds.mark_true(SINK_PROVIDED)

        # 2. Namespaces.
        selector = spec.get("namespaceSelector")
        all_namespaces = selector is not None and not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        )
        if selector is None:
            namespaces = [namespace]
        else:
            listed = await self.api.request(
                "GET",
                NAMESPACES.path(),
                query=[("labelSelector", adapter.selector_string(selector))],
            )
            namespaces = sorted(str(n["metadata"]["name"]) for n in listed.get("items", []))
        status["namespaces"] = namespaces

        # 3. Permissions (plurals from discovery).
        watches: list[adapter.Watch] = []
        for entry in spec.get("resources") or []:
            try:
                resource = await self.kinds.resource_for(entry["apiVersion"], entry["kind"])
            except discovery.UnknownKind as exc:
                conds = conds.mark_false(SUFFICIENT_PERMISSIONS, "UnknownResource", str(exc))
                raise ReconcileError(f"{key}: {exc}", conds) from exc
            watches.append(adapter.Watch(resource, entry.get("selector")))
        sa = spec.get("serviceAccountName") or "default"
        subject = permissions.user(namespace, sa)
        todo = permissions.checks(
            [w.resource for w in watches],
            namespaces,
            all_namespaces=all_namespaces,
            namespace_selector=selector is not None,
        )
        denied = await permissions.missing(self.api, subject, todo)
        if denied:
            message = permissions.message(subject, denied)
            conds = conds.mark_false(SUFFICIENT_PERMISSIONS, permissions.REASON, message)
            raise ReconcileError(f"{key}: {message}", conds)
        conds = conds.mark_true(SUFFICIENT_PERMISSIONS)

        # 4. Deployment.
        mode = spec.get("mode") or "Reference"
        inputs = adapter.Inputs(
            name=name,
            namespace=namespace,
            uid=meta["uid"],
            service_account=sa,
            sink_uri=address.url,
            sink_ca_certs=address.ca_certs,
            sink_audience=address.audience,
            source_config=adapter.source_config(
                watches,
                namespaces=namespaces,
                all_namespaces=all_namespaces,
                mode=mode,
                owner=spec.get("owner"),
            ),
            ce_overrides=spec.get("ceOverrides"),
        )
        desired = adapter.deployment(inputs, self.adapter_config())
        dep_name = desired["metadata"]["name"]
        existing = await self.api.get_or_none(adapter.DEPLOYMENTS, namespace, dep_name)
        if existing is not None and not reconciling.controlled_by(existing, meta["uid"]):
            message = f"Deployment '{dep_name}' exists and is not owned by this ApiServerSource."
            conds = conds.mark_false(DEPLOYED, "DeploymentNotOwned", message)
            raise ReconcileError(f"{key}: {message}", conds)
        applied = await self.api.apply(adapter.DEPLOYMENTS, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created Deployment %s for ApiServerSource %s.", dep_name, key)
        conds = deployed_condition(conds, applied)

        # 5. Event types.
        status["ceAttributes"] = ce_attributes(mode, self.ce_source)
        return conds

    async def _write(
        self,
        source: kubeapi.Json,
        status: kubeapi.Json,
        conds: conditions.Conditions,
    ) -> None:
        await statuses.write(self.api, APISERVERSOURCES, self.kind, source, status, conds)
