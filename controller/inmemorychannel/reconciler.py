"""Level-based reconciler of InMemoryChannel (knative/eventing
`pkg/reconciler/inmemorychannel/controller`).

Steps, each reflected in a condition: the shared dispatcher Deployment (DispatcherReady,
informational), its Service (ServiceReady), its ready endpoints (EndpointsReady: some
dispatcher pod is ready -- this is what makes Ready depend on the dispatcher), the
per-channel ExternalName Service (ChannelServiceReady), the channel's dead letter sink
(DeadLetterSinkResolved, `status.deadLetterSinkUri`), the address (Addressable,
`status.address`/`addresses`) and EventPoliciesReady (True: OIDC is off, no policies).

The dispatcher owns `status.subscribers`; this reconciler never writes it. Deletion needs
nothing: the channel Service carries an owner reference and is garbage-collected.
"""

from __future__ import annotations

import logging
from typing import cast

from controller import (
    availability,
    channelable,
    conditions,
    context,
    dependencies,
    reconciling,
    sinks,
    statuses,
    tracking,
)
from controller.inmemorychannel import service
from kevents import kubeapi

logger = logging.getLogger(__name__)

FIELD_MANAGER = "kevents-controller"
SERVICE_READY = "ServiceReady"
ENDPOINTS_READY = "EndpointsReady"
CHANNEL_SERVICE_READY = "ChannelServiceReady"
DISPATCHER_READY = "DispatcherReady"
CONDITION_SET = conditions.ConditionSet(
    (
        SERVICE_READY,
        ENDPOINTS_READY,
        channelable.ADDRESSABLE,
        CHANNEL_SERVICE_READY,
        channelable.DEAD_LETTER_SINK_RESOLVED,
        channelable.EVENT_POLICIES_READY,
    )
)
KEEP = statuses.KEEP | {"subscribers"}


class Reconciler:
    kind = service.KIND

    def __init__(self, ctx: context.Context, scope: tracking.Scope) -> None:
        self.api = ctx.api
        self.kinds = ctx.kinds
        self.scope = scope
        self.options = ctx.options

    async def reconcile(self, key: str) -> None:
        namespace, name = reconciling.split(key)
        imc = await self.api.get_or_none(service.INMEMORYCHANNELS, namespace, name)
        if imc is None or imc["metadata"].get("deletionTimestamp"):
            self.scope.forget(key)
            return
        status: kubeapi.Json = {"observedGeneration": imc["metadata"].get("generation", 0)}
        conds = CONDITION_SET.initial((imc.get("status") or {}).get("conditions") or [])
        deps = dependencies.Dependencies(self.api, self.kinds, namespace)
        try:
            conds = await self._reconcile(imc, status, conds, deps)
        except reconciling.ReconcileError as failure:
            await self._write(imc, status, failure.conditions)
            raise
        finally:
            self.scope.track_only(key, deps.targets)
        await self._write(imc, status, conds)

    async def _reconcile(
        self,
        imc: kubeapi.Json,
        status: kubeapi.Json,
        conds: conditions.Conditions,
        deps: dependencies.Dependencies,
    ) -> conditions.Conditions:
        meta, spec = imc["metadata"], imc.get("spec") or {}
        key = f"{meta['namespace']}/{meta['name']}"
        system, opts = self.options.system_namespace, self.options

        # 1. The shared dispatcher: Deployment, Service, ready endpoints.
        deployment = await self.api.get_or_none(
            availability.DEPLOYMENTS, system, opts.dispatcher_deployment
        )
        if deployment is None:
            conds = conds.mark_false(
                DISPATCHER_READY,
                "DispatcherDeploymentDoesNotExist",
                f"Dispatcher Deployment {system}/{opts.dispatcher_deployment} does not exist",
            )
        else:
            conds = availability.propagate(conds, DISPATCHER_READY, deployment)
        dispatcher_svc = await self.api.get_or_none(
            service.SERVICES, system, opts.dispatcher_service
        )
        if dispatcher_svc is None:
            conds = conds.mark_false(
                SERVICE_READY,
                "DispatcherServiceDoesNotExist",
                f"Dispatcher Service {system}/{opts.dispatcher_service} does not exist",
            )
        else:
            conds = conds.mark_true(SERVICE_READY)
        slices = await self.api.request(
            "GET",
            service.ENDPOINTSLICES.path(system),
            query=[("labelSelector", f"kubernetes.io/service-name={opts.dispatcher_service}")],
        )
        items = list(slices.get("items") or [])
        if not items:
            conds = conds.mark_false(
                ENDPOINTS_READY,
                "DispatcherEndpointsDoesNotExist",
                "Dispatcher Endpoints does not exist",
            )
        elif not service.endpoints_ready(items):
            conds = conds.mark_false(
                ENDPOINTS_READY,
                "DispatcherEndpointsNotReady",
                "There are no endpoints ready for Dispatcher service",
            )
        else:
            conds = conds.mark_true(ENDPOINTS_READY)

        # 2. The channel's own Service (ExternalName to the dispatcher).
        desired = service.channel_service(imc, opts.dispatcher_service, system)
        svc_name = desired["metadata"]["name"]
        existing = await self.api.get_or_none(service.SERVICES, meta["namespace"], svc_name)
        if existing is not None and not reconciling.controlled_by(existing, meta["uid"]):
            message = (
                f"Channel Service failed: Service {meta['namespace']}/{svc_name} exists and "
                "is not owned by this InMemoryChannel"
            )
            conds = conds.mark_false(CHANNEL_SERVICE_READY, "ChannelServiceFailed", message)
            raise reconciling.ReconcileError(f"{key}: {message}", conds)
        await self.api.apply(service.SERVICES, meta["namespace"], desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created Service %s for InMemoryChannel %s.", svc_name, key)
        conds = conds.mark_true(CHANNEL_SERVICE_READY)

        # 3. Dead letter sink of the channel's default delivery.
        delivery = cast(dependencies.DeliveryDict | None, spec.get("delivery"))
        try:
            resolved = await deps.dead_letter_sink(delivery)
        except sinks.SinkError as exc:
            conds = conds.mark_false(
                channelable.DEAD_LETTER_SINK_RESOLVED, channelable.DLS_FAILED, exc.message
            )
            raise reconciling.ReconcileError(f"{key}: {exc.message}", conds) from exc
        found = cast(kubeapi.Json | None, resolved)
        conds = channelable.mark_dead_letter_sink(conds, status, found)

        # 4. Address and policies.
        address = service.address(meta["name"], meta["namespace"])
        status["address"] = address
        status["addresses"] = [address]
        conds = conds.mark_true(channelable.ADDRESSABLE)
        return channelable.mark_event_policies(conds)

    async def _write(
        self, imc: kubeapi.Json, status: kubeapi.Json, conds: conditions.Conditions
    ) -> None:
        await statuses.write(
            self.api, service.INMEMORYCHANNELS, self.kind, imc, status, conds, keep=KEEP
        )
