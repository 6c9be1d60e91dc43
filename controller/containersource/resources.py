"""What a ContainerSource owns, pure (knative/eventing `pkg/reconciler/containersource/
resources`): a Deployment running `spec.template` and a SinkBinding whose subject is that
Deployment. Both carry a controller owner reference, so deleting the source removes them.

The Deployment is labelled `bindings.knative.dev/include: "true"`, so the SinkBinding webhook
(which only reviews opted-in objects) binds it at creation and its first pods already have
`K_SINK`; without the webhook the SinkBinding reconciler binds it right after.
"""

from __future__ import annotations

import copy
from typing import Any

from controller.apiserversource import adapter
from controller.framework import reconciling
from controller.sinkbinding import binder, injection
from kevents import kubeapi

API_VERSION = "sources.knative.dev/v1"
KIND = "ContainerSource"
CONTROLLER_AGENT = "container-source-controller"
INCLUDE = "bindings.knative.dev/include"


def named_containers(source: kubeapi.Json) -> list[dict[str, Any]] | None:
    """`spec.template.spec.containers` with every unnamed container named
    `<source-name>-<index>` (Knative's `ContainerSourceSpec.SetDefaults`; `kn source container
    create` sends an unnamed one), or None when every container has a name already."""
    template = (source.get("spec") or {}).get("template") or {}
    containers = list((template.get("spec") or {}).get("containers") or [])
    name = source["metadata"]["name"]
    named = [
        c if c.get("name") else {**c, "name": f"{name}-{index}"}
        for index, c in enumerate(containers)
    ]
    return None if named == containers else named


def deployment_name(source_name: str) -> str:
    return adapter.child_name(source_name, "-deployment")


def sinkbinding_name(source_name: str) -> str:
    return adapter.child_name(source_name, "-sinkbinding")


def labels(source_name: str) -> dict[str, str]:
    return {
        "sources.knative.dev/source": CONTROLLER_AGENT,
        "sources.knative.dev/containerSource": source_name,
    }


def deployment(source: kubeapi.Json, sink: injection.Sink) -> dict[str, Any]:
    """The Deployment running `spec.template`, its containers already bound to `sink` (the
    SinkBinding's resolved sink): the first pods start with K_SINK even without the webhook,
    and what we apply always agrees with what the SinkBinding writes."""
    meta, spec = source["metadata"], source.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    pod = template.setdefault("spec", {})
    for key in injection.LISTS:
        if pod.get(key):
            pod[key] = [injection.rebind(c, sink) for c in pod[key]]
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels(meta["name"])}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {**labels(meta["name"]), INCLUDE: "true"},
            # Bound by our SinkBinding from the start (the binding finds nothing to write).
            "annotations": {binder.ANNOTATION: sinkbinding_name(meta["name"])},
            "ownerReferences": [reconciling.owner_reference(source, API_VERSION, KIND)],
        },
        "spec": {
            "selector": {"matchLabels": labels(meta["name"])},
            "template": template,
        },
    }


def sinkbinding(source: kubeapi.Json) -> dict[str, Any]:
    meta, spec = source["metadata"], source.get("spec") or {}
    body: dict[str, Any] = {
        "sink": spec.get("sink") or {},
        "subject": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "namespace": meta["namespace"],
            "name": deployment_name(meta["name"]),
        },
    }
    if spec.get("ceOverrides") is not None:
        body["ceOverrides"] = spec["ceOverrides"]
    return {
        "apiVersion": API_VERSION,
        "kind": "SinkBinding",
        "metadata": {
            "name": sinkbinding_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels(meta["name"]),
            "ownerReferences": [reconciling.owner_reference(source, API_VERSION, KIND)],
        },
        "spec": body,
    }


def ce_attributes(source: kubeapi.Json) -> list[dict[str, str]]:
    """The event types the containers declare, else none: the image is opaque to us, so a
    container may declare what it emits with env `CE_TYPE` and `CE_SOURCE`."""
    out: list[dict[str, str]] = []
    template = (source.get("spec") or {}).get("template") or {}
    for container in (template.get("spec") or {}).get("containers") or []:
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        if env.get("CE_TYPE") and env.get("CE_SOURCE"):
            out.append({"type": str(env["CE_TYPE"]), "source": str(env["CE_SOURCE"])})
    return out
