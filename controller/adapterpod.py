"""The receive adapter Deployment that every per-source kind (ApiServerSource, GitHubSource,
KafkaSource) runs, in one place: Knative's source labels, the source as controller owner, the
restricted securityContext, the Prometheus scrape annotations, the probes and the env that
every adapter reads after its own (sink CA and audience, logging/metrics/tracing config,
CloudEvent overrides). Each kind adds only its own env, ports and limits.

Pure functions: the reconcilers send the result with server-side apply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller import podsecurity
from controller.framework import reconciling
from kevents import names

CONTAINER = "receive-adapter"
METRICS_PORT = 9090
PROBES_PORT = 8080
METRICS_PORTS = ({"name": "metrics", "containerPort": METRICS_PORT},)
PROBES_PORTS = ({"name": "probes", "containerPort": PROBES_PORT},)


def labels(agent: str, source_name: str) -> dict[str, str]:
    """Knative's source labels; a label value holds 63 characters, so a longer source name
    gets kmeta.ChildName's md5 form."""
    return {
        "eventing.knative.dev/source": agent,
        "eventing.knative.dev/sourceName": names.child_name(source_name, ""),
    }


def owner(name: str, uid: str, api_version: str, kind: str) -> dict[str, Any]:
    """The source as its adapter's controller (`reconciling.owner_reference`)."""
    return reconciling.owner_reference({"metadata": {"name": name, "uid": uid}}, api_version, kind)


def go_json(value: object) -> str:
    """Compact JSON escaped like Go's encoding/json (HTML-safe), so env values match."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escaped)
    return text


@dataclass(frozen=True, slots=True)
class Config:
    """What the controller adds to every adapter of a kind (from its settings and the
    observability ConfigMaps, `configstore.ConfigStore.adapter_settings`)."""

    image: str
    system_namespace: str
    logging_config: str = "{}"
    tracing_config: str = "{}"


@dataclass(frozen=True, slots=True)
class Common:
    """The env every adapter reads after its own, in Knative's order."""

    logging_config: str = "{}"
    tracing_config: str = "{}"
    metrics_config: str | None = None
    """K_METRICS_CONFIG, for the adapters that read it (ApiServerSource)."""
    ca_certs: str | None = None
    audience: str | None = None
    ce_overrides: Mapping[str, Any] | None = None

    def env(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.ca_certs:
            out.append({"name": "K_CA_CERTS", "value": self.ca_certs})
        if self.audience:
            out.append({"name": "K_AUDIENCE", "value": self.audience})
        out.append({"name": "K_LOGGING_CONFIG", "value": self.logging_config})
        if self.metrics_config is not None:
            out.append({"name": "K_METRICS_CONFIG", "value": self.metrics_config})
        out.append({"name": "K_TRACING_CONFIG", "value": self.tracing_config})
        if self.ce_overrides is not None:
            out.append({"name": "K_CE_OVERRIDES", "value": go_json(self.ce_overrides)})
        return out


@dataclass(frozen=True, slots=True)
class Pod:
    """One adapter Deployment: what differs between the kinds."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    owner: Mapping[str, Any]
    image: str
    env: Sequence[Mapping[str, Any]]
    memory_limit: str
    ports: Sequence[Mapping[str, Any]] = METRICS_PORTS + PROBES_PORTS
    probe_port: str = "probes"
    replicas: int = 1
    service_account: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    """On the Deployment only (not the pods)."""
    grace_seconds: int | None = None


def deployment(pod: Pod) -> dict[str, Any]:
    """The desired Deployment, as sent with server-side apply."""
    selector = dict(pod.labels)
    probe = {"httpGet": {"port": pod.probe_port, "path": "/readiness"}, "periodSeconds": 10}
    spec: dict[str, Any] = {}
    if pod.service_account:
        spec["serviceAccountName"] = pod.service_account
    spec["enableServiceLinks"] = False
    spec["securityContext"] = podsecurity.pod()
    if pod.grace_seconds is not None:
        spec["terminationGracePeriodSeconds"] = pod.grace_seconds
    spec["containers"] = [
        {
            "name": CONTAINER,
            "image": pod.image,
            "env": [dict(e) for e in pod.env],
            "ports": [dict(p) for p in pod.ports],
            "readinessProbe": probe,
            "livenessProbe": {
                **probe,
                "httpGet": {"port": pod.probe_port, "path": "/health"},
                "initialDelaySeconds": 10,
            },
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": pod.memory_limit},
            },
            "securityContext": podsecurity.container(),
        }
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "labels": {**selector, **pod.extra_labels},
            "ownerReferences": [dict(pod.owner)],
        },
        "spec": {
            "replicas": pod.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": selector,
                    # scraped by Prometheus' pod discovery (hack/ or any annotation-based setup)
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        **pod.annotations,
                    },
                },
                "spec": spec,
            },
        },
    }
