"""The Service reconciler (knative/serving `pkg/reconciler/service`, with the Route's job
done by one Kubernetes Service):

1. Refuse what cannot be honoured: `spec.traffic` splitting or pinning (the CRD refuses it
   too; this covers objects stored before) -> Ready False `TrafficNotSupported`.
2. Apply the Configuration `NAME` with the template (`spec.template`, or v1alpha1's
   `runLatest.configuration.revisionTemplate`); its Ready -> `ConfigurationsReady`, its
   `latestCreatedRevisionName` / `latestReadyRevisionName` -> ours.
3. Apply the Kubernetes Service `NAME` selecting the Service's pods. `RoutesReady` is True
   once a revision is ready: then `status.address.url` is set (sinks resolve from then on)
   and `status.traffic` says 100% goes to the latest ready revision. `status.url` is always
   `http://NAME.NS.svc.cluster.local`.
"""

from __future__ import annotations

from controller import context
from controller.framework import conditions, lifecycle
from controller.serving import children, resources
from kevents import kubeapi

KIND = "Service"
CONFIGURATIONS_READY = "ConfigurationsReady"
ROUTES_READY = "RoutesReady"
CONDITION_SET = conditions.ConditionSet((CONFIGURATIONS_READY, ROUTES_READY))


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = resources.SERVICES
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api

    async def reconcile(
        self, service: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        meta, spec = service["metadata"], service.get("spec") or {}
        url = resources.service_url(meta["name"], meta["namespace"])
        state.status["url"] = url
        problems = resources.traffic_problems(spec)
        if problems:
            state.mark_false(ROUTES_READY, "TrafficNotSupported", "; ".join(problems))
            return None
        config = await children.apply(
            self.api, resources.CONFIGURATIONS, service, resources.configuration(service),
            CONFIGURATIONS_READY, state,
        )  # fmt: skip
        cstatus = config.get("status") or {}
        for field in ("latestCreatedRevisionName", "latestReadyRevisionName"):
            if cstatus.get(field):
                state.status[field] = cstatus[field]
        if cstatus.get("observedGeneration") != config["metadata"].get("generation"):
            state.mark_unknown(
                CONFIGURATIONS_READY, "OutOfDate",
                f"The Configuration '{meta['name']}' has not observed its latest template yet.",
            )  # fmt: skip
        else:
            state.propagate(
                CONFIGURATIONS_READY, conditions.ready_of(config), "ConfigurationNotReady",
                f"The Configuration '{meta['name']}' has not reported readiness yet.",
            )  # fmt: skip
        await children.apply(
            self.api, resources.CORE_SERVICES, service, resources.kubernetes_service(service),
            ROUTES_READY, state,
        )  # fmt: skip
        ready = cstatus.get("latestReadyRevisionName")
        if not ready:
            state.mark_unknown(
                ROUTES_READY, "RevisionMissing",
                f"Configuration '{meta['name']}' does not have any ready Revision.",
            )  # fmt: skip
            return None
        state.status["address"] = {"url": url}
        state.status["traffic"] = [{"revisionName": ready, "latestRevision": True, "percent": 100}]
        state.mark_true(ROUTES_READY)
        return None
