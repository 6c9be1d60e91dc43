"""The shared multi-tenant PingSource adapter Deployment (pure), created when missing.

Knative ships `pingsource-mt-adapter` in its release YAML; the controller only creates ours
if the install lacks it, from the image in its settings, and never updates or deletes it
(operators may scale or tune it). One adapter serves every PingSource (`sources.ping`), so
it carries no owner reference.
"""

from __future__ import annotations

from typing import Any

from controller import podsecurity
from kevents import kubeapi

NAME = "pingsource-mt-adapter"
SERVICE_ACCOUNT = "kevents-ping-adapter"
LABELS = {
    "app.kubernetes.io/name": "kevents",
    "app.kubernetes.io/component": "pingsource-mt-adapter",
    "eventing.knative.dev/source": "ping-source-controller",
}
PROBES_PORT = 8080
METRICS_PORT = 9090


def deployment(image: str, system_namespace: str) -> dict[str, Any]:
    env: list[kubeapi.Json] = [
        {"name": "SYSTEM_NAMESPACE", "value": system_namespace},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    probe = {"httpGet": {"path": "/health", "port": "probes"}, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": system_namespace, "labels": dict(LABELS)},
        "spec": {
            "replicas": 1,
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/component": LABELS["app.kubernetes.io/component"]
                }
            },
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "enableServiceLinks": False,
                    "securityContext": podsecurity.pod(),
                    "containers": [
                        {
                            "name": "dispatcher",
                            "image": image,
                            "env": env,
                            "ports": [
                                {"name": "metrics", "containerPort": METRICS_PORT},
                                {"name": "probes", "containerPort": PROBES_PORT},
                            ],
                            "livenessProbe": probe,
                            "readinessProbe": {
                                **probe,
                                "httpGet": {"path": "/readiness", "port": "probes"},
                            },
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "securityContext": podsecurity.container(),
                        }
                    ],
                },
            },
        },
    }
