"""The Service reconciler (knative/serving `pkg/reconciler/service`, with the Route's job
done by one Kubernetes Service):

1. Refuse what cannot be honoured: `spec.traffic` splitting or pinning (the CRD refuses it
   too; this covers objects stored before) -> Ready False `TrafficNotSupported`.
2. Apply the Configuration `NAME` with the template (`spec.template`, or v1alpha1's
   `runLatest.configuration.revisionTemplate`); its Ready -> `ConfigurationsReady`, its
   `latestCreatedRevisionName` / `latestReadyRevisionName` -> ours.
3. Apply the Kubernetes Service `NAME` selecting the pods of the latest ready revision.
   `RoutesReady` is True once a revision is ready: then `status.address.url` is set (sinks
   resolve from then on) and `status.traffic` says 100% goes to that revision.
   `status.url` is always `http://NAME.NS.svc.cluster.local`.
4. Routing state (Knative's labeler): the latest ready and latest created Revisions are
   `active`; the others, out of the route now, go to `reserve` with the time they left
   (`routingStateModified`), and keep their pod `RESERVE_GRACE` longer.
"""

from __future__ import annotations

import logging

from controller import context
from controller.framework import children, conditions, lifecycle
from controller.serving import configuration, resources
from kevents import kubeapi

logger = logging.getLogger(__name__)

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
        ready = cstatus.get("latestReadyRevisionName")
        await children.apply(
            self.api, resources.CORE_SERVICES, service,
            resources.kubernetes_service(service, ready), ROUTES_READY, state,
        )  # fmt: skip
        if not ready:
            state.mark_unknown(
                ROUTES_READY, "RevisionMissing",
                f"Configuration '{meta['name']}' does not have any ready Revision.",
            )  # fmt: skip
            return None
        state.status["address"] = {"url": url}
        state.status["traffic"] = [{"revisionName": ready, "latestRevision": True, "percent": 100}]
        state.mark_true(ROUTES_READY)
        await self._route(config, ready, cstatus.get("latestCreatedRevisionName") or ready)
        return None

    async def _route(self, config: kubeapi.Json, ready: str, created: str) -> None:
        """The routed and the latest created revisions keep running, and so does any newer
        one (created after the Configuration status read here); the others leave the route
        (to reserve)."""
        stamp = conditions.now()
        revisions = await configuration.revisions_of(self.api, config)
        floor = max(
            (
                resources.generation_of(r)
                for r in revisions
                if r["metadata"]["name"] in (ready, created)
            ),
            default=0,
        )
        for rev in revisions:
            rmeta = rev["metadata"]
            active = rmeta["name"] in (ready, created) or resources.generation_of(rev) > floor
            patch = resources.routing_patch(rev, active, stamp)
            if patch is None:
                continue
            await self.api.merge_patch(
                resources.REVISIONS, rmeta["namespace"], rmeta["name"], patch
            )
            logger.info(
                "Revision %s/%s is %s now.", rmeta["namespace"], rmeta["name"],
                patch["metadata"]["labels"][resources.ROUTING_STATE_LABEL],
            )  # fmt: skip
