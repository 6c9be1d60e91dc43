"""What the e2e scenarios on the installed system share: a namespace of their own (labelled
for Broker injection when asked), objects waited Ready, and the events a sink's pods
recorded. The one poll is `installed.eventually`.

A scenario applies its chain (a source, a Broker, Triggers, sinks), waits for each object's
Ready condition (`wait_ready`) and then reads what the sink's pods received (`received`:
event_display's log, `GET :8080/events` of the tutorials' receivers; `installed.pod_events`).
Whether something else could still arrive is decided by a sentinel sent last, never by time.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from tests import cluster, waiting
from tests.e2e import installed

DISPLAY_IMAGE = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"
TRACED_DISPLAY_IMAGE = "docker.io/kevents/event-display"
"""kevents' display: the same log, plus a span per event sent to Zipkin (K_TRACING_CONFIG).
Knative's event_display v0.49 exports OTLP only, which the local Zipkin does not take."""


def display(
    ns: str, name: str, env: Mapping[str, str] | None = None, image: str = DISPLAY_IMAGE
) -> str:
    """An event-display Deployment and Service `name` (pods labelled `app=<name>`, ready once
    they answer Knative's health path /healthz) whose events `received` reads."""
    variables = json.dumps([{"name": k, "value": v} for k, v in (env or {}).items()])
    return f"""
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: display
        image: {image}
        env: {variables}
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def workload(ns: str, name: str, image: str, env: Mapping[str, str]) -> str:
    """A Deployment and Service `name` of a flow's step or sink (pods labelled `app=<name>`,
    `STEP_NAME` set, ready once they answer /healthz)."""
    variables = json.dumps([{"name": "STEP_NAME", "value": name},
                            *({"name": k, "value": v} for k, v in env.items())])  # fmt: skip
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: {image}
        env: {variables}
        readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
"""


def configmap_source(ns: str, label: str, broker: str = "eventing.knative.dev/v1") -> str:
    """The head of a chain: an ApiServerSource `configmaps` sending the changes of the
    ConfigMaps labelled `e2e=<label>` to the Broker `default` (at the `broker` apiVersion),
    through a ServiceAccount `cm-watcher` allowed to watch them."""
    return f"""
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: cm-watcher, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: cm-watcher, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: cm-watcher, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-watcher}}
subjects: [{{kind: ServiceAccount, name: cm-watcher, namespace: {ns}}}]
---
apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata: {{name: configmaps, namespace: {ns}}}
spec:
  serviceAccountName: cm-watcher
  mode: Resource
  resources:
  - apiVersion: v1
    kind: ConfigMap
    selector: {{matchLabels: {{e2e: {label}}}}}
  sink:
    ref: {{apiVersion: {broker}, kind: Broker, name: default}}
"""


def configmap(ns: str, name: str, label: str) -> str:
    """A ConfigMap the `configmap_source` of `label` reports."""
    return f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {ns}, labels: {{e2e: {label}}}}}
data: {{k: v1}}
"""


@contextlib.contextmanager
def namespace(kube: cluster.Kube, prefix: str, *labels: str) -> Iterator[str]:
    """A fresh namespace `<prefix>-<random>` with `labels` (`key=value`), deleted (not
    awaited) afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", name)
    try:
        if labels:
            kube.kubectl("label", "namespace", name, *labels)
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def get(kube: cluster.Kube, ns: str, what: str) -> dict[str, Any]:
    """`kubectl get <what>` (`kind/name`) as JSON; empty while it does not exist."""
    proc = kube.kubectl("-n", ns, "get", what, "-o", "json", check=False)
    return dict(json.loads(proc.stdout)) if proc.returncode == 0 else {}


def is_ready(obj: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def ready(kube: cluster.Kube, ns: str, what: str) -> bool:
    return is_ready(get(kube, ns, what))


def wait_ready(kube: cluster.Kube, ns: str, whats: Iterable[str], within: float = 120) -> None:
    """Wait for each of `whats` (`kind/name`) to be Ready, one after the other."""
    for what in whats:
        waiting.eventually(lambda w=what: ready(kube, ns, w), within, f"{what} Ready", 1.0)  # type: ignore[misc]


def received(kube: cluster.Kube, ns: str, selector: str) -> list[dict[str, Any]]:
    """What the sink pods matching the label `selector` recorded, all running pods together
    (Knative's event_display from its log, other sinks from `GET :8080/events`: a terminating
    pod answers neither reliably)."""
    pods = kube.get_json("pods", "-n", ns, "-l", selector)["items"]
    assert isinstance(pods, list)
    out: list[dict[str, Any]] = []
    for pod in pods:
        if not pod["metadata"].get("deletionTimestamp"):
            out.extend(installed.pod_events(kube, pod))
    return out


def about(events: list[dict[str, Any]], subject_suffix: str) -> list[dict[str, Any]]:
    """The events whose subject ends with `subject_suffix` (`/configmaps/NAME`)."""
    return [e for e in events if e["attributes"].get("subject", "").endswith(subject_suffix)]
