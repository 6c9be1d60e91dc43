"""Level-based reconciler of ApiServerSource: read the object, recompute everything, write.

Order as in knative/eventing `pkg/reconciler/apiserversource`: resolve the sink
(SinkProvided), resolve the namespaces, check the ServiceAccount's permissions
(SufficientPermissions), apply the adapter Deployment, propagate its availability
(Deployed), then publish `ceAttributes` and write one EventType per type
(`framework.eventtypes`). A failed step raises `ReconcileError`: the
generic reconciler (`lifecycle.py`) writes the status reached and requeues with backoff
(and the tracker requeues it sooner when the sink appears). Deletion needs nothing: the
Deployment carries an owner reference and is garbage-collected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from controller import availability
from controller.apiserversource import adapter, permissions
from controller.framework import (
    children,
    conditions,
    discovery,
    eventtypes,
    lifecycle,
    sinks,
    statuses,
)
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


def deployed_condition(
    conds: conditions.Conditions, deployment: kubeapi.Json
) -> conditions.Conditions:
    """PropagateDeploymentAvailability: Deployed follows the Deployment's Available."""
    return availability.propagate(conds, DEPLOYED, deployment)


def ce_attributes(mode: str, source: str) -> list[dict[str, str]]:
    return [{"type": t, "source": source} for t in EVENT_TYPES.get(mode, ())]


status_patch = statuses.patch


class Reconciler(lifecycle.Kind):
    kind = "ApiServerSource"
    resource = APISERVERSOURCES
    condition_set = CONDITION_SET

    def __init__(
        self,
        api: kubeapi.KubeApi,
        kinds: discovery.Discovery,
        adapter_config: Callable[[], adapter.AdapterConfig],
        *,
        ce_source: str,
    ) -> None:
        self.api = api
        self.kinds = kinds
        self.adapter_config = adapter_config
        self.ce_source = ce_source

    async def reconcile(self, source: kubeapi.Json, state: lifecycle.State) -> None:
        spec = source.get("spec") or {}
        state.mark_true(OIDC_IDENTITY_CREATED, OIDC_DISABLED)
        # 1. Sink.
        address = await state.resolve(spec.get("sink"), SINK_PROVIDED)
        state.set_address("sink", address)
        # 2. Namespaces.
        namespaces = await self._namespaces(source)
        state.status["namespaces"] = namespaces
        # 3. Permissions (plurals from discovery).
        watches = await self._permissions(source, namespaces, state)
        # 4. Deployment.
        await self._deployment(source, address, namespaces, watches, state)
        # 5. Event types.
        attributes = ce_attributes(spec.get("mode") or "Reference", self.ce_source)
        state.status["ceAttributes"] = attributes
        reference = eventtypes.sink_reference(spec.get("sink"), source["metadata"]["namespace"])
        await eventtypes.sync(self.api, source, eventtypes.desired(source, attributes, reference))

    async def _namespaces(self, source: kubeapi.Json) -> list[str]:
        """The source's namespace, or those its `namespaceSelector` selects."""
        selector = (source.get("spec") or {}).get("namespaceSelector")
        if selector is None:
            return [source["metadata"]["namespace"]]
        listed = await self.api.request(
            "GET", NAMESPACES.path(), query=[("labelSelector", adapter.selector_string(selector))]
        )
        return sorted(str(n["metadata"]["name"]) for n in listed.get("items", []))

    async def _permissions(
        self, source: kubeapi.Json, namespaces: list[str], state: lifecycle.State
    ) -> list[adapter.Watch]:
        """SufficientPermissions: may the ServiceAccount get, list and watch everything?"""
        spec = source.get("spec") or {}
        watches: list[adapter.Watch] = []
        for entry in spec.get("resources") or []:
            try:
                resource = await self.kinds.resource_for(entry["apiVersion"], entry["kind"])
            except discovery.UnknownKind as exc:
                state.mark_false(SUFFICIENT_PERMISSIONS, "UnknownResource", str(exc))
                raise state.fail(str(exc)) from exc
            watches.append(adapter.Watch(resource, entry.get("selector")))
        subject = permissions.user(source["metadata"]["namespace"], service_account(spec))
        todo = permissions.checks(
            [w.resource for w in watches], namespaces,
            all_namespaces=all_namespaces(spec.get("namespaceSelector")),
        )  # fmt: skip
        denied = await permissions.missing(self.api, subject, todo)
        if denied:
            message = permissions.message(subject, denied)
            state.mark_false(SUFFICIENT_PERMISSIONS, permissions.REASON, message)
            raise state.fail(message)
        state.mark_true(SUFFICIENT_PERMISSIONS)
        return watches

    async def _deployment(
        self, source: kubeapi.Json, address: sinks.Address, namespaces: list[str],
        watches: list[adapter.Watch], state: lifecycle.State,
    ) -> None:  # fmt: skip
        """Apply the adapter Deployment; Deployed follows its availability."""
        meta, spec = source["metadata"], source.get("spec") or {}
        namespace, selector = meta["namespace"], spec.get("namespaceSelector")
        inputs = adapter.Inputs(
            name=meta["name"], namespace=namespace, uid=meta["uid"],
            service_account=service_account(spec), sink_uri=address.url,
            sink_ca_certs=address.ca_certs, sink_audience=address.audience,
            source_config=adapter.source_config(
                watches, namespaces=namespaces, all_namespaces=all_namespaces(selector),
                mode=spec.get("mode") or "Reference", owner=spec.get("owner"),
            ),
            ce_overrides=spec.get("ceOverrides"),
        )  # fmt: skip
        desired = adapter.deployment(inputs, self.adapter_config())
        dep_name = desired["metadata"]["name"]
        existing = await self.api.get_or_none(adapter.DEPLOYMENTS, namespace, dep_name)
        children.refuse_unowned(existing, source, DEPLOYED, state)
        applied = await self.api.apply(adapter.DEPLOYMENTS, namespace, desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created Deployment %s for ApiServerSource %s.", dep_name, state.key)
        state.conditions = deployed_condition(state.conditions, applied)


def service_account(spec: kubeapi.Json) -> str:
    return str(spec.get("serviceAccountName") or "default")


def all_namespaces(selector: kubeapi.Json | None) -> bool:
    """An empty `namespaceSelector` (`{}`) selects every namespace."""
    return selector is not None and not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    )
