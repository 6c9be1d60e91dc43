"""Pure parts of the ApiServerSource reconciler: Deployed, ceAttributes, status patches."""

from __future__ import annotations

from typing import Any

import pytest

from controller.apiserversource import reconciler

T0 = "2026-01-01T00:00:00Z"


def deployment(generation: int, observed: int, *conds: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "d", "generation": generation},
        "status": {"observedGeneration": observed, "conditions": list(conds)},
    }


AVAILABLE = {
    "available": (
        deployment(1, 1, {"type": "Available", "status": "True"}), ("True", "")
    ),
    "unavailable": (
        deployment(1, 1, {"type": "Available", "status": "False",
                          "reason": "MinimumReplicasUnavailable", "message": "m"}),
        ("False", "MinimumReplicasUnavailable"),
    ),
    "no-condition-yet": (deployment(1, 1), ("Unknown", "DeploymentUnavailable")),
    "not-observed-yet": (deployment(2, 1), ("Unknown", "DeploymentUpdating")),
}  # fmt: skip


@pytest.mark.parametrize(("dep", "want"), AVAILABLE.values(), ids=AVAILABLE.keys())
def test_deployed_follows_deployment_availability(
    dep: dict[str, Any], want: tuple[str, str]
) -> None:
    conds = reconciler.deployed_condition(reconciler.CONDITION_SET.initial((), T0), dep)
    deployed = conds.get(reconciler.DEPLOYED)
    assert deployed is not None
    assert (deployed.status, deployed.reason) == want


@pytest.mark.parametrize(
    ("mode", "prefix"),
    [("Resource", "dev.knative.apiserver.resource."), ("Reference", "dev.knative.apiserver.ref.")],
    ids=["resource", "reference"],
)
def test_ce_attributes(mode: str, prefix: str) -> None:
    got = reconciler.ce_attributes(mode, "https://10.96.0.1:443")
    assert got == [
        {"type": prefix + verb, "source": "https://10.96.0.1:443"}
        for verb in ("add", "delete", "update")
    ]


PATCHES: dict[str, tuple[dict[str, Any], dict[str, Any], Any]] = {
    "unchanged": ({"a": 1}, {"a": 1}, None),
    "changed": ({"a": 1}, {"a": 2}, {"a": 2}),
    "removed-sink": ({"sinkUri": "x", "a": 1}, {"a": 1}, {"sinkUri": None}),
    "annotations-kept": ({"annotations": {"k": "v"}}, {}, None),
}


@pytest.mark.parametrize(("old", "new", "want"), PATCHES.values(), ids=PATCHES.keys())
def test_status_patch(old: dict[str, Any], new: dict[str, Any], want: Any) -> None:
    assert reconciler.status_patch(old, new) == want
