"""The receive adapter of one GitHubSource: a Deployment and its Service, computed purely.

Why one adapter per source, not one multi-tenant receiver routed by path
-------------------------------------------------------------------------
Upstream runs either (a Knative Service per source with `GH_RA_IMAGE`, or the shared
`github-adapter` routing `/<namespace>/<name>`). We run one per source, as upstream's
single-tenant mode, because:

- the HMAC secret stays in its own namespace: the pod reads it as env through a
  `secretKeyRef`, so neither the controller's Deployment spec nor a shared process holds
  every user's secret, and the shared receiver would need `get`/`watch` on Secrets in every
  namespace (or copies of them);
- one source's flood of webhooks, its slow sink or a crash cannot delay another's;
- `sources.github` already is "one process per GitHubSource" with its own sink, overrides,
  event-type filter and redelivery dedupe.

The cost is a pod per source (~40 MiB idle); organisations with hundreds of sources would
want the shared receiver, which the path routing of upstream leaves room for.

Env contract: `sources/github/config.py` (GITHUB_SECRET_TOKEN, GITHUB_OWNER_REPO,
GITHUB_EVENT_TYPES, GITHUB_API_URL, PORT) plus the Knative adapter env (K_SINK, NAMESPACE,
NAME, K_CE_OVERRIDES, K_CA_CERTS, K_LOGGING_CONFIG, K_TRACING_CONFIG). Webhooks, /health and
/readiness share port 8080 (the adapter's default), so the probes exercise the very server
GitHub talks to; metrics are on 9090.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller import adapterpod
from controller.framework import sinks
from controller.githubsource import secrets
from kevents import kubeapi, names

DEPLOYMENTS = kubeapi.Resource("apps", "v1", "deployments")
SERVICES = kubeapi.Resource("", "v1", "services")
CONTROLLER_AGENT = "github-source-controller"
HTTP_PORT = 8080
METRICS_PORT = adapterpod.METRICS_PORT
SECRET_VERSION = "sources.knative.dev/secret-token-version"
"""Pod template annotation: the secretToken Secret's resourceVersion, so editing the Secret
rolls the pods (env from a Secret is read at container start only)."""


def name(source_name: str, uid: str) -> str:
    """Of the Deployment and the Service (a DNS-1035 label: it starts with a letter)."""
    return names.child_name(f"githubsource-{source_name}-", uid)


def labels(source_name: str) -> dict[str, str]:
    return adapterpod.labels(CONTROLLER_AGENT, source_name)


Config = adapterpod.Config


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the Deployment and Service depend on, resolved by the reconciler."""

    name: str
    namespace: str
    uid: str
    sink: sinks.Address
    owner_and_repository: str
    event_types: Sequence[str]
    secret_token: secrets.SecretKeySelectorDict
    secret_version: str
    api_url: str = ""
    """`spec.githubAPIURL` as written; empty = github.com (the adapter's default)."""
    service_account: str = ""
    ce_overrides: Mapping[str, Any] | None = None


def owner(inputs: Inputs) -> dict[str, Any]:
    return adapterpod.owner(inputs.name, inputs.uid, "sources.knative.dev/v1alpha1", "GitHubSource")


def env(inputs: Inputs, config: Config) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "K_SINK", "value": inputs.sink.url},
        {"name": "NAMESPACE", "value": inputs.namespace},
        {"name": "NAME", "value": inputs.name},
        {"name": "K_COMPONENT", "value": "githubsource"},
        {"name": "SYSTEM_NAMESPACE", "value": config.system_namespace},
        # the HMAC secret comes from the user's Secret; its value never enters this spec
        {"name": "GITHUB_SECRET_TOKEN", "valueFrom": {"secretKeyRef": dict(inputs.secret_token)}},
        {"name": "GITHUB_OWNER_REPO", "value": inputs.owner_and_repository},
        {"name": "GITHUB_EVENT_TYPES", "value": ",".join(inputs.event_types)},
        {"name": "PORT", "value": str(HTTP_PORT)},
        {"name": "METRICS_PROMETHEUS_PORT", "value": str(METRICS_PORT)},
    ]
    if inputs.api_url:
        out.append({"name": "GITHUB_API_URL", "value": inputs.api_url})
    return out + adapterpod.Common(
        logging_config=config.logging_config, tracing_config=config.tracing_config,
        ca_certs=inputs.sink.ca_certs, audience=inputs.sink.audience,
        ce_overrides=inputs.ce_overrides,
    ).env()  # fmt: skip


def previous(deployment: kubeapi.Json | None) -> tuple[str, str] | None:
    """(GITHUB_OWNER_REPO, GITHUB_API_URL) the existing adapter was made for: where the
    hook in `status.webhookIDKey` was created. None without a Deployment."""
    if deployment is None:
        return None
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get(
        "containers"
    ) or [{}]  # fmt: skip
    values = {e.get("name"): e.get("value", "") for e in containers[0].get("env") or []}
    return str(values.get("GITHUB_OWNER_REPO", "")), str(values.get("GITHUB_API_URL", ""))


def deployment(inputs: Inputs, config: Config) -> dict[str, Any]:
    """The desired Deployment, as sent with server-side apply."""
    return adapterpod.deployment(
        adapterpod.Pod(
            name=name(inputs.name, inputs.uid),
            namespace=inputs.namespace,
            labels=labels(inputs.name),
            owner=owner(inputs),
            image=config.image,
            env=env(inputs, config),
            # webhooks and probes: /health and /readiness share the webhook port
            ports=({"name": "http", "containerPort": HTTP_PORT}, *adapterpod.METRICS_PORTS),
            probe_port="http",
            # GitHub payloads reach 25 MB and up to 256 MiB may wait for the sink
            memory_limit="512Mi",
            service_account=inputs.service_account,
            annotations={SECRET_VERSION: inputs.secret_version},
        )
    )


def service(inputs: Inputs) -> dict[str, Any]:
    """Port 80 -> the adapter's webhook port; its cluster URL is what GitHub is given."""
    selector = labels(inputs.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name(inputs.name, inputs.uid),
            "namespace": inputs.namespace,
            "labels": selector,
            "ownerReferences": [owner(inputs)],
        },
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
