"""The 2019 Knative docs' "Kubernetes Event Source" sample (knative/docs v0.7-v0.9,
`docs/eventing/samples/kubernetes-event-source`), its YAML as written, on the installed system
(`hack/up`, plus the opt-in `manifests/legacy/` for `sources.eventing.knative.dev`).

The steps a user followed: label the namespace `knative-eventing-injection=enabled` (the
`default` Broker), `serviceaccount.yaml` (ServiceAccount, ClusterRole and ClusterRoleBinding
for events), `k8s-events.yaml` (a `sources.eventing.knative.dev/v1alpha1` ApiServerSource on
`v1/Event`, mode Resource, its sink the `eventing.knative.dev/v1alpha1` Broker as an
ObjectReference), `trigger.yaml` (a v1alpha1 Trigger without a filter to a
`serving.knative.dev/v1alpha1` Service running eventing-sources' `event_display`), then
`kubectl run busybox --image=busybox --restart=Never -- ls` and `kubectl logs -l
serving.knative.dev/service=event-display -c user-container`.

Two substitutions, so the test shares the cluster: a fresh namespace stands for `default`, and
the cluster-scoped ClusterRole/ClusterRoleBinding names carry that namespace's suffix (other
tests apply an `event-watcher` of their own). `kubectl logs` gets `--tail=-1`: with a
selector kubectl prints only the last 10 lines per pod, fewer than one event's block.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import eventlog, installed, scenarios
from tests.integration import test_controller_legacysources as legacy_tests

pytestmark = pytest.mark.cluster

LEGACY = cluster.REPO / "manifests" / "legacy"
ADD = "dev.knative.apiserver.resource.add"

SERVICEACCOUNT_YAML = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: events-sa
  namespace: default
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: event-watcher
rules:
  - apiGroups:
      - ""
    resources:
      - events
    verbs:
      - get
      - list
      - watch
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: k8s-ra-event-watcher
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: event-watcher
subjects:
  - kind: ServiceAccount
    name: events-sa
    namespace: default
"""
K8S_EVENTS_YAML = """\
apiVersion: sources.eventing.knative.dev/v1alpha1
kind: ApiServerSource
metadata:
  name: testevents
  namespace: default
spec:
  serviceAccountName: events-sa
  mode: Resource
  resources:
    - apiVersion: v1
      kind: Event
  sink:
    apiVersion: eventing.knative.dev/v1alpha1
    kind: Broker
    name: default
"""
TRIGGER_YAML = """\
apiVersion: eventing.knative.dev/v1alpha1
kind: Trigger
metadata:
  name: testevents-trigger
  namespace: default
spec:
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1alpha1
      kind: Service
      name: event-display
---
# This is a very simple Knative Service that writes the input request to its log.
apiVersion: serving.knative.dev/v1alpha1
kind: Service
metadata:
  name: event-display
  namespace: default
spec:
  template:
    spec:
      containers:
        - # This corresponds to
          # https://github.com/knative/eventing-contrib/blob/release-0.5/cmd/event_display/main.go
          image: gcr.io/knative-releases/github.com/knative/eventing-sources/cmd/event_display@sha256:bf45b3eb1e7fc4cb63d6a5a6416cf696295484a7662e0cf9ccdf5c080542c21d
"""  # noqa: E501  (the tutorial's image reference, as written)


@dataclass(frozen=True)
class Tutorial:
    ns: str
    suffix: str


def as_written(manifest: str, tutorial: Tutorial) -> str:
    """The tutorial's file with its namespace and cluster-scoped names substituted."""
    out = manifest.replace("namespace: default", f"namespace: {tutorial.ns}")
    for name in ("event-watcher", "k8s-ra-event-watcher"):
        out = out.replace(f"name: {name}\n", f"name: {name}-{tutorial.suffix}\n")
    return out


def logs(kube: cluster.Kube, ns: str) -> str:
    """What the tutorial's verify step prints (all of it, see the module docstring)."""
    proc = kube.kubectl("-n", ns, "logs", "-l", "serving.knative.dev/service=event-display",
                        "-c", "user-container", "--tail=-1", check=False)  # fmt: skip
    return proc.stdout if proc.returncode == 0 else ""


def displayed(text: str) -> list[tuple[str, Any]]:
    """(type, data) of each event in event_display's log; other log lines are skipped."""
    out: list[tuple[str, Any]] = []
    for shown in eventlog.parse(text):
        try:
            data = json.loads(shown["data"])
        except ValueError:
            data = shown["data"]
        out.append((shown["attributes"].get("type", ""), data))
    return out


def event(ns: str, name: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "ConfigMap", "name": "path-check", "namespace": ns},
        "reason": "PathCheck", "message": name, "type": "Normal",
    })  # fmt: skip


def path_open(kube: cluster.Kube, ns: str, sent: list[str]) -> bool:
    """Send one more Event object and tell whether any sent so far reached the display: the
    source, Broker and Trigger carry events end to end (each is Ready before, but the
    dispatcher may program the Trigger a moment later)."""
    name = f"path-check-{len(sent)}"
    kube.apply(event(ns, name))
    sent.append(name)
    messages = {d.get("message") for t, d in displayed(logs(kube, ns)) if isinstance(d, dict)}
    return any(n in messages for n in sent)


@pytest.fixture(scope="module")
def tutorial(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[Tutorial]:
    suffix = uuid.uuid4().hex[:6]
    it = Tutorial(f"tutorial-2019-{suffix}", suffix)
    kube.kubectl("apply", f"--filename={LEGACY}")
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/apiserversources.sources.eventing.knative.dev")  # fmt: skip
    kube.kubectl("create", "namespace", it.ns)
    try:
        kube.kubectl("label", "namespace", it.ns, "knative-eventing-injection=enabled")
        for manifest in (SERVICEACCOUNT_YAML, K8S_EVENTS_YAML, TRIGGER_YAML):
            kube.apply(as_written(manifest, it))
        scenarios.wait_ready(kube, it.ns, [
            "brokers.v1alpha1.eventing.knative.dev/default",
            "apiserversources.v1alpha1.sources.eventing.knative.dev/testevents",
            "services.v1alpha1.serving.knative.dev/event-display",
            "triggers.v1alpha1.eventing.knative.dev/testevents-trigger",
        ], 180)  # fmt: skip
        sent: list[str] = []
        waiting.eventually(lambda: path_open(kube, it.ns, sent), 120,
                             "an Event object at event-display", 2.0)  # fmt: skip
        yield it
    finally:
        kube.kubectl("delete", "namespace", it.ns, "--wait=false", check=False)
        kube.kubectl("delete", "--ignore-not-found", f"clusterrole/event-watcher-{suffix}",
                     f"clusterrolebinding/k8s-ra-event-watcher-{suffix}", check=False)  # fmt: skip
        legacy_tests.uninstall(kube)


def test_busybox_pod_events_reach_event_display_through_the_v1alpha1_broker(
    kube: cluster.Kube, tutorial: Tutorial
) -> None:
    ns = tutorial.ns
    kube.kubectl("-n", ns, "run", "busybox", "--image=busybox", "--restart=Never", "--", "ls")
    uid = kube.get_json("-n", ns, "pod", "busybox")["metadata"]["uid"]  # type: ignore[index]

    def busybox_reasons() -> dict[str, dict[str, Any]]:
        found = {
            data["reason"]: data
            for type_, data in displayed(logs(kube, ns))
            if type_ == ADD and isinstance(data, dict)
            and data.get("involvedObject", {}).get("kind") == "Pod"
            and data.get("involvedObject", {}).get("name") == "busybox"
        }  # fmt: skip
        return found if {"Scheduled", "Created", "Started"} <= found.keys() else {}

    found = waiting.eventually(
        busybox_reasons, 120, "Scheduled, Created and Started of busybox in the display's log", 1.0
    )
    for reason in ("Scheduled", "Created", "Started"):
        involved = found[reason]["involvedObject"]
        assert (involved["namespace"], involved["uid"]) == (ns, uid), reason
    assert found["Started"]["source"]["component"] == "kubelet"
