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

from controller import availability, channelable, context
from controller.framework import (
    children,
    conditions,
    dependencies,
    lifecycle,
    sinks,
    statuses,
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


class Reconciler(lifecycle.Kind):
    kind = service.KIND
    resource = service.INMEMORYCHANNELS
    condition_set = CONDITION_SET
    keep = KEEP

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api
        self.options = ctx.options

    async def reconcile(self, imc: kubeapi.Json, state: lifecycle.State) -> None:
        meta, spec = imc["metadata"], imc.get("spec") or {}
        # 1. The shared dispatcher: Deployment, Service, ready endpoints.
        await self._dispatcher(state)
        # 2. The channel's own Service (ExternalName to the dispatcher).
        await self._channel_service(imc, state)
        # 3. Dead letter sink of the channel's default delivery.
        delivery = cast(dependencies.DeliveryDict | None, spec.get("delivery"))
        try:
            resolved = await state.deps.dead_letter_sink(delivery)
        except sinks.SinkError as exc:
            state.mark_false(
                channelable.DEAD_LETTER_SINK_RESOLVED, channelable.DLS_FAILED, exc.message
            )
            raise state.fail(exc.message) from exc
        state.conditions = channelable.mark_dead_letter_sink(
            state.conditions, state.status, cast(kubeapi.Json | None, resolved)
        )
        # 4. Address and policies.
        address = service.address(meta["name"], meta["namespace"])
        state.status["address"] = address
        state.status["addresses"] = [address]
        state.mark_true(channelable.ADDRESSABLE)
        state.conditions = channelable.mark_event_policies(state.conditions)

    async def _dispatcher(self, state: lifecycle.State) -> None:
        """DispatcherReady, ServiceReady and EndpointsReady from the shared dispatcher."""
        opts = self.options
        system = opts.system_namespace
        deployment = await self.api.get_or_none(
            availability.DEPLOYMENTS, system, opts.dispatcher_deployment
        )
        if deployment is None:
            state.mark_false(
                DISPATCHER_READY, "DispatcherDeploymentDoesNotExist",
                f"Dispatcher Deployment {system}/{opts.dispatcher_deployment} does not exist",
            )  # fmt: skip
        else:
            state.conditions = availability.propagate(
                state.conditions, DISPATCHER_READY, deployment
            )
        if await self.api.get_or_none(service.SERVICES, system, opts.dispatcher_service) is None:
            state.mark_false(
                SERVICE_READY, "DispatcherServiceDoesNotExist",
                f"Dispatcher Service {system}/{opts.dispatcher_service} does not exist",
            )  # fmt: skip
        else:
            state.mark_true(SERVICE_READY)
        slices = await self.api.request(
            "GET",
            service.ENDPOINTSLICES.path(system),
            query=[("labelSelector", f"kubernetes.io/service-name={opts.dispatcher_service}")],
        )
        items = list(slices.get("items") or [])
        if not items:
            state.mark_false(
                ENDPOINTS_READY, "DispatcherEndpointsDoesNotExist",
                "Dispatcher Endpoints does not exist",
            )  # fmt: skip
        elif not service.endpoints_ready(items):
            state.mark_false(
                ENDPOINTS_READY, "DispatcherEndpointsNotReady",
                "There are no endpoints ready for Dispatcher service",
            )  # fmt: skip
        else:
            state.mark_true(ENDPOINTS_READY)

    async def _channel_service(self, imc: kubeapi.Json, state: lifecycle.State) -> None:
        """The per-channel ExternalName Service (ChannelServiceReady)."""
        meta, opts = imc["metadata"], self.options
        desired = service.channel_service(imc, opts.dispatcher_service, opts.system_namespace)
        svc_name = desired["metadata"]["name"]
        existing = await self.api.get_or_none(service.SERVICES, meta["namespace"], svc_name)
        children.refuse_unowned(existing, imc, CHANNEL_SERVICE_READY, state)
        await self.api.apply(service.SERVICES, meta["namespace"], desired, FIELD_MANAGER)
        if existing is None:
            logger.info("Created Service %s for InMemoryChannel %s.", svc_name, state.key)
        state.mark_true(CHANNEL_SERVICE_READY)
