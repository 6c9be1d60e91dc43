"""The backing channel of a Channel (pure): default template and desired object.

Knative's webhook defaults `spec.channelTemplate` from ConfigMap `default-ch-webhook`
(key `default-ch-config`: `clusterDefault` and per-namespace `namespaceDefaults`), falling
back to InMemoryChannel. Without a webhook the controller applies the same default once and
writes it into the spec, so the choice is visible and sticky like Knative's.

The backing channel has the Channel's name and namespace, a controller owner reference,
the template's spec, and the Channel's `subscribers` and `delivery` (when set) copied in.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import yaml

from controller.framework import reconciling
from kevents import kubeapi

CHANNELS = kubeapi.Resource("messaging.knative.dev", "v1", "channels")
CONFIGMAPS = kubeapi.Resource("", "v1", "configmaps")
API_VERSION = "messaging.knative.dev/v1"
KIND = "Channel"
DEFAULTS_CONFIGMAP = "default-ch-webhook"
DEFAULTS_KEY = "default-ch-config"


class TemplateDict(TypedDict):
    apiVersion: str
    kind: str
    spec: NotRequired[dict[str, Any]]


FALLBACK: TemplateDict = {"apiVersion": "messaging.knative.dev/v1", "kind": "InMemoryChannel"}


class TemplateError(ValueError):
    """The defaults ConfigMap cannot be parsed."""


def default_template(configmap: kubeapi.Json | None, namespace: str) -> TemplateDict:
    """The namespace default, else the cluster default, else InMemoryChannel."""
    raw = ((configmap or {}).get("data") or {}).get(DEFAULTS_KEY)
    if not raw:
        return FALLBACK
    try:
        parsed = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"{DEFAULTS_CONFIGMAP}/{DEFAULTS_KEY} is not YAML: {exc}") from exc
    if not isinstance(parsed, dict):
        raise TemplateError(f"{DEFAULTS_CONFIGMAP}/{DEFAULTS_KEY} is not a mapping")
    for candidate in ((parsed.get("namespaceDefaults") or {}).get(namespace),
                      parsed.get("clusterDefault")):  # fmt: skip
        if isinstance(candidate, dict) and candidate.get("apiVersion") and candidate.get("kind"):
            out: TemplateDict = {"apiVersion": candidate["apiVersion"], "kind": candidate["kind"]}
            if isinstance(candidate.get("spec"), dict):
                out["spec"] = candidate["spec"]
            return out
    return FALLBACK


def from_template(
    template: TemplateDict,
    name: str,
    namespace: str,
    owner: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A channel of the template's kind and spec (`spec` fields added on top), controlled by
    `owner` (an owner reference). Shared with the Broker's trigger channel."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "ownerReferences": [owner]}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": template["apiVersion"],
        "kind": template["kind"],
        "metadata": metadata,
        "spec": {**(template.get("spec") or {}), **(spec or {})},
    }


def backing_channel(channel: kubeapi.Json, template: TemplateDict) -> dict[str, Any]:
    meta, spec = channel["metadata"], channel.get("spec") or {}
    body: dict[str, Any] = {"subscribers": list(spec.get("subscribers") or [])}
    if spec.get("delivery"):
        body["delivery"] = spec["delivery"]  # the Channel's own delivery wins over the template's
    owner = reconciling.owner_reference(channel, API_VERSION, KIND)
    return from_template(template, meta["name"], meta["namespace"], owner, spec=body)


def reference(template: TemplateDict, name: str, namespace: str) -> dict[str, str]:
    """`status.channel`: the KReference of the backing channel."""
    return {
        "apiVersion": template["apiVersion"],
        "kind": template["kind"],
        "name": name,
        "namespace": namespace,
    }
