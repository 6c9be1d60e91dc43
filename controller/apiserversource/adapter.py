"""The receive adapter Deployment of an ApiServerSource, computed purely from its inputs.

Name, labels, env contract and `K_SOURCE_CONFIG` follow knative/eventing
`pkg/reconciler/apiserversource/resources/receive_adapter.go` and
`pkg/adapter/apiserver/config.go` (see shared/reference/knative-contract.md section 3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from controller import podsecurity
from controller.framework import reconciling
from kevents import kubeapi, names

DEPLOYMENTS = kubeapi.Resource("apps", "v1", "deployments")
CONTROLLER_AGENT = "apiserver-source-controller"
CONTAINER = "receive-adapter"
METRICS_PORT = 9090
PROBES_PORT = 8080


class LabelSelectorRequirementDict(TypedDict):
    key: str
    operator: str
    values: NotRequired[list[str]]


class LabelSelectorDict(TypedDict, total=False):
    matchLabels: dict[str, str]
    matchExpressions: list[LabelSelectorRequirementDict]


child_name = names.child_name
"""knative.dev/pkg `kmeta.ChildName` (`kevents.names`), for this module's callers."""


def deployment_name(source_name: str, uid: str) -> str:
    return child_name(f"apiserversource-{source_name}-", uid)


def labels(source_name: str) -> dict[str, str]:
    return {
        "eventing.knative.dev/source": CONTROLLER_AGENT,
        "eventing.knative.dev/sourceName": source_name,
    }


def selector_string(selector: LabelSelectorDict | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key."""
    if not selector:
        return ""
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op = expr["key"], expr["operator"]
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            parts.append((key, f"{key} in ({values})"))
        elif op == "NotIn":
            parts.append((key, f"{key} notin ({values})"))
        elif op == "Exists":
            parts.append((key, key))
        elif op == "DoesNotExist":
            parts.append((key, f"!{key}"))
        else:
            raise ValueError(f"{op!r} is not a valid label selector operator")
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def go_json(value: object) -> str:
    """Compact JSON escaped like Go's encoding/json (HTML-safe), so env values match."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escaped)
    return text


@dataclass(frozen=True, slots=True)
class Watch:
    """One resources[] entry with its plural resolved through discovery."""

    resource: kubeapi.Resource
    selector: LabelSelectorDict | None = None


def source_config(
    watches: Sequence[Watch],
    *,
    namespaces: Sequence[str],
    all_namespaces: bool,
    mode: str,
    owner: Mapping[str, str] | None = None,
) -> str:
    """K_SOURCE_CONFIG in the JSON shape of knative's apiserver.Config (Go field order)."""
    resources: list[dict[str, Any]] = []
    for watch in watches:
        entry: dict[str, Any] = {
            "gvr": {
                "Group": watch.resource.group,
                "Version": watch.resource.version,
                "Resource": watch.resource.plural,
            }
        }
        selector = selector_string(watch.selector)
        if selector:
            entry["selector"] = selector
        resources.append(entry)
    config: dict[str, Any] = {
        "namespaces": list(namespaces),
        "allNamespaces": all_namespaces,
        "resources": resources,
    }
    if owner:
        config["owner"] = {k: owner[k] for k in ("apiVersion", "kind") if owner.get(k)}
    if mode:
        config["mode"] = mode
    return go_json(config)


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """What the controller adds to every adapter: image, namespaces, config-map JSON."""

    image: str
    system_namespace: str
    metrics_domain: str = "knative.dev/eventing"
    logging_config: str = "{}"
    metrics_config: str = "{}"
    tracing_config: str = "{}"
    extra_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the Deployment depends on, resolved by the reconciler."""

    name: str
    namespace: str
    uid: str
    service_account: str
    sink_uri: str
    source_config: str
    sink_ca_certs: str | None = None
    sink_audience: str | None = None
    ce_overrides: Mapping[str, Any] | None = None


def env(inputs: Inputs, config: AdapterConfig) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "K_SINK", "value": inputs.sink_uri},
        {"name": "K_SOURCE_CONFIG", "value": inputs.source_config},
        {"name": "SYSTEM_NAMESPACE", "value": config.system_namespace},
        {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "NAME", "value": inputs.name},
        {"name": "METRICS_DOMAIN", "value": config.metrics_domain},
    ]
    if inputs.sink_ca_certs:
        out.append({"name": "K_CA_CERTS", "value": inputs.sink_ca_certs})
    if inputs.sink_audience:
        out.append({"name": "K_AUDIENCE", "value": inputs.sink_audience})
    out += [
        {"name": "K_LOGGING_CONFIG", "value": config.logging_config},
        {"name": "K_METRICS_CONFIG", "value": config.metrics_config},
        {"name": "K_TRACING_CONFIG", "value": config.tracing_config},
    ]
    if inputs.ce_overrides is not None:
        out.append({"name": "K_CE_OVERRIDES", "value": go_json(inputs.ce_overrides)})
    # Ours, after Knative's: owner of the adapter's checkpoint ConfigMap (sources.apiserver).
    out.append({"name": "K_SOURCE_UID", "value": inputs.uid})
    return out


def deployment(inputs: Inputs, config: AdapterConfig) -> dict[str, Any]:
    """The desired Deployment, as sent with server-side apply."""
    selector = labels(inputs.name)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(inputs.name, inputs.uid),
            "namespace": inputs.namespace,
            "labels": {**selector, **config.extra_labels},
            "ownerReferences": [
                reconciling.owner_reference(
                    {"metadata": {"name": inputs.name, "uid": inputs.uid}},
                    "sources.knative.dev/v1",
                    "ApiServerSource",
                )
            ],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": selector,
                    # scraped by Prometheus' pod discovery (hack/ or any annotation-based setup)
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                    },
                },
                "spec": {
                    "serviceAccountName": inputs.service_account,
                    "enableServiceLinks": False,
                    "securityContext": podsecurity.pod(),
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": config.image,
                            "env": env(inputs, config),
                            "ports": [
                                {"name": "metrics", "containerPort": METRICS_PORT},
                                {"name": "probes", "containerPort": PROBES_PORT},
                            ],
                            "readinessProbe": {
                                "httpGet": {"port": "probes", "path": "/readiness"},
                                "periodSeconds": 10,
                            },
                            "livenessProbe": {
                                "httpGet": {"port": "probes", "path": "/health"},
                                "periodSeconds": 10,
                                "initialDelaySeconds": 10,
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "securityContext": podsecurity.container(),
                        }
                    ],
                },
            },
        },
    }
