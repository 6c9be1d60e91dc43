"""The Revision reconciler (knative/serving `pkg/reconciler/revision`, without autoscaling):
apply the Deployment `REVISION-deployment` (`resources.deployment`: one pod while the
revision is `active`, none in `reserve`) and report it.

Conditions: `ResourcesAvailable` and `ContainerHealthy` (Ready <- both). While the
Deployment rolls out they are Unknown `Deploying`; a rollout past its progress deadline, or
a pod whose container keeps crashing, is False. Once ready a revision stays ready in reserve
(Knative's scaled-to-zero revisions stay Ready too).
"""

from __future__ import annotations

import time

from controller import availability, context
from controller.framework import children, conditions, lifecycle
from controller.serving import resources
from kevents import kubeapi

KIND = "Revision"
RESOURCES_AVAILABLE = "ResourcesAvailable"
CONTAINER_HEALTHY = "ContainerHealthy"
CONDITION_SET = conditions.ConditionSet((RESOURCES_AVAILABLE, CONTAINER_HEALTHY))


def deployment_state(dep: kubeapi.Json) -> tuple[str, str, str]:
    """(status, reason, message) of a revision's Deployment: True once it has observed its
    spec and has as many available pods as it wants."""
    meta, spec, status = dep["metadata"], dep.get("spec") or {}, dep.get("status") or {}
    name = meta["name"]
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("status") == "False":
            return (
                "False",
                str(cond.get("reason", "ProgressDeadlineExceeded")),
                str(cond.get("message", "")),
            )
    if meta.get("generation", 0) > status.get("observedGeneration", 0):
        return "Unknown", "Deploying", f"The Deployment '{name}' is being updated."
    wanted = int(spec.get("replicas", 1))
    if (
        int(status.get("availableReplicas", 0)) >= wanted
        and int(status.get("updatedReplicas", 0)) >= wanted
    ):
        return "True", "", ""
    return "Unknown", "Deploying", f"The Deployment '{name}' has no ready pod yet."


class Reconciler(lifecycle.Kind):
    kind = KIND
    resource = resources.REVISIONS
    condition_set = CONDITION_SET

    def __init__(self, ctx: context.Context) -> None:
        self.api = ctx.api

    async def reconcile(
        self, rev: kubeapi.Json, state: lifecycle.State
    ) -> lifecycle.Outcome | None:
        was_ready = resources.is_ready(rev)
        replicas, changes_in = resources.desired_replicas(rev, time.time())
        if changes_in is not None:
            state.recheck_within(changes_in)
        dep = await children.apply(
            self.api, availability.DEPLOYMENTS, rev, resources.deployment(rev, replicas),
            RESOURCES_AVAILABLE, state,
        )  # fmt: skip
        dstatus = dep.get("status") or {}
        state.status["desiredReplicas"] = replicas
        state.status["actualReplicas"] = int(dstatus.get("readyReplicas", 0))
        state.status["containerStatuses"] = [
            {"name": c["name"], "imageDigest": c.get("image", "")}
            for c in dep["spec"]["template"]["spec"]["containers"]
        ]
        if was_ready and replicas == 0:
            return None  # in reserve: stays ready, as a Knative revision scaled to zero
        status, reason, message = deployment_state(dep)
        if status == "True":
            state.mark_true(RESOURCES_AVAILABLE)
            state.mark_true(CONTAINER_HEALTHY)
        elif status == "False":
            state.mark_false(RESOURCES_AVAILABLE, reason, message)
        else:
            state.mark_unknown(RESOURCES_AVAILABLE, reason, message)
            state.mark_unknown(CONTAINER_HEALTHY, reason, message)
        return None
