"""The receive adapter Deployment of an ApiServerSource, computed purely from its inputs.

Name, labels, env contract and `K_SOURCE_CONFIG` follow knative/eventing
`pkg/reconciler/apiserversource/resources/receive_adapter.go` and
`pkg/adapter/apiserver/config.go` (see shared/reference/knative-contract.md section 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from controller import adapterpod
from kevents import kubeapi, names

DEPLOYMENTS = kubeapi.Resource("apps", "v1", "deployments")
CONTROLLER_AGENT = "apiserver-source-controller"
METRICS_PORT = adapterpod.METRICS_PORT


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
    return adapterpod.labels(CONTROLLER_AGENT, source_name)


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
    return adapterpod.go_json(config)


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
    out += adapterpod.Common(
        logging_config=config.logging_config, tracing_config=config.tracing_config,
        metrics_config=config.metrics_config, ca_certs=inputs.sink_ca_certs,
        audience=inputs.sink_audience, ce_overrides=inputs.ce_overrides,
    ).env()  # fmt: skip
    # Ours, after Knative's: owner of the adapter's checkpoint ConfigMap (sources.apiserver).
    out.append({"name": "K_SOURCE_UID", "value": inputs.uid})
    return out


def deployment(inputs: Inputs, config: AdapterConfig) -> dict[str, Any]:
    """The desired Deployment, as sent with server-side apply."""
    return adapterpod.deployment(
        adapterpod.Pod(
            name=deployment_name(inputs.name, inputs.uid),
            namespace=inputs.namespace,
            labels=labels(inputs.name),
            extra_labels=config.extra_labels,
            owner=adapterpod.owner(
                inputs.name, inputs.uid, "sources.knative.dev/v1", "ApiServerSource"
            ),
            image=config.image,
            env=env(inputs, config),
            memory_limit="256Mi",
            service_account=inputs.service_account,
        )
    )
