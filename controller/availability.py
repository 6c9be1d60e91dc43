"""A Deployment's `Available` condition as a Knative condition (PropagateDeploymentAvailability).

Used for `Deployed` (sources) and `DispatcherReady` (InMemoryChannel): True when the
Deployment reports Available=True, its reason and message otherwise, and Unknown with
`DeploymentUpdating` while the Deployment controller has not observed the latest spec.
"""

from __future__ import annotations

from controller.framework import conditions
from kevents import kubeapi

DEPLOYMENTS = kubeapi.Resource("apps", "v1", "deployments")


def propagate(
    conds: conditions.Conditions, kind: str, deployment: kubeapi.Json
) -> conditions.Conditions:
    meta, status = deployment.get("metadata", {}), deployment.get("status", {})
    for cond in status.get("conditions") or []:
        if cond.get("type") != "Available":
            continue
        reason, message = str(cond.get("reason", "")), str(cond.get("message", ""))
        if cond.get("status") == "True":
            return conds.mark_true(kind)
        if cond.get("status") == "False":
            return conds.mark_false(kind, reason, message)
        return conds.mark_unknown(kind, reason, message)
    name = meta.get("name", "")
    if meta.get("generation", 0) > status.get("observedGeneration", 0):
        return conds.mark_unknown(
            kind, "DeploymentUpdating", f"The Deployment '{name}' is being updated."
        )
    return conds.mark_unknown(
        kind, "DeploymentUnavailable", f"The Deployment '{name}' is unavailable."
    )


def is_available(deployment: kubeapi.Json) -> bool:
    return any(
        c.get("type") == "Available" and c.get("status") == "True"
        for c in deployment.get("status", {}).get("conditions") or []
    )
