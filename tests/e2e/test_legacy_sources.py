"""The 2018-2019 docs' `sources.eventing.knative.dev/v1alpha1` YAML on the installed system
(`hack/up`, plus the opt-in `manifests/legacy/`): a KubernetesEventSource and a v1alpha1
ContainerSource (the heartbeats image, `--sink=` argument) deliver to event-display, the CRD
tutorial's Guitar changes arrive as add/update/delete, and `kubectl get` at the old group
shows them Ready. Events are read back from the event-display pod (GET /events)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests import cluster, waiting
from tests.e2e import installed, scenarios
from tests.integration import test_apiserver_source_crd as guitars
from tests.integration import test_controller_legacysources as legacy_tests

pytestmark = pytest.mark.cluster

LEGACY = cluster.REPO / "manifests" / "legacy"
OLD = "sources.eventing.knative.dev/v1alpha1"
SINK = {"apiVersion": "serving.knative.dev/v1alpha1", "kind": "Service", "name": "event-display"}
"""The docs' sink: a Knative Service, referenced at the version they wrote."""
DISPLAY = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: event-display}
spec:
  template:
    spec:
      containers:
      - image: gcr.io/knative-releases/github.com/knative/eventing-sources/cmd/message_dumper
"""
EVENT_WATCHER = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: events-sa}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: event-watcher}
rules:
- apiGroups: [""]
  resources: [events]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: k8s-ra-event-watcher}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: event-watcher}
subjects: [{kind: ServiceAccount, name: events-sa, namespace: NAMESPACE}]
"""


def old(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": OLD, "kind": kind, "metadata": {"name": name},
                           "spec": spec})  # fmt: skip


@pytest.fixture(scope="module")
def ns(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    """A namespace with event-display, and the old group's CRDs installed (removed after:
    while they are, a plain `kubectl get apiserversources` resolves to the old group)."""
    name = f"legacy-{uuid.uuid4().hex[:6]}"
    kube.kubectl("apply", f"--filename={LEGACY}")
    kube.apply(guitars.GUITAR_CRD)
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/kuberneteseventsources.sources.eventing.knative.dev",
                 "crd/guitars.kool.karmalabs.local")  # fmt: skip
    kube.kubectl("create", "namespace", name)
    try:
        kube.apply(DISPLAY, name)
        kube.kubectl("-n", name, "wait", "--for=condition=Ready", "--timeout=180s",
                     "services.serving.knative.dev/event-display")  # fmt: skip
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)
        legacy_tests.uninstall(kube)


def ready(kube: cluster.Kube, ns: str, resource: str, name: str) -> None:
    scenarios.wait_ready(kube, ns, [f"{resource}.v1alpha1.sources.eventing.knative.dev/{name}"])


def received(kube: cluster.Kube, ns: str) -> list[dict[str, Any]]:
    """What the event-display Service's pods received (GET /events on each pod)."""
    return scenarios.received(kube, ns, "serving.knative.dev/service=event-display")


def events(kube: cluster.Kube, ns: str, type_: str) -> list[dict[str, Any]]:
    return [e for e in received(kube, ns) if e["attributes"]["type"] == type_]


def test_kubernetes_event_source_of_the_2018_docs_delivers_events(
    kube: cluster.Kube, ns: str
) -> None:
    kube.apply(EVENT_WATCHER.replace("NAMESPACE", ns), ns)
    kube.apply(old("KubernetesEventSource", "testevents", {
        "namespace": ns, "serviceAccountName": "events-sa", "sink": SINK,
    }), ns)  # fmt: skip
    ready(kube, ns, "kuberneteseventsources", "testevents")
    marker = f"legacy-{uuid.uuid4().hex[:8]}"
    kube.apply(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": marker},
        "involvedObject": {"kind": "Pod", "name": "somepod", "namespace": ns},
        "reason": "Tested", "message": marker, "type": "Normal",
    }), ns)  # fmt: skip

    def arrived() -> list[dict[str, Any]]:
        found = events(kube, ns, "dev.knative.apiserver.resource.add")
        return [e for e in found if json.loads(e["data"]).get("message") == marker]

    (event,) = waiting.eventually(arrived, 120, "the Kubernetes Event at event-display", 1.0)
    assert json.loads(event["data"])["reason"] == "Tested"


def test_v1alpha1_container_source_with_the_heartbeats_image_and_sink_argument(
    kube: cluster.Kube, ns: str
) -> None:
    kube.apply(old("ContainerSource", "test-heartbeats", {
        "image": "github.com/knative/eventing-sources/cmd/heartbeats",
        "args": ["--label=<3", "--period=1"],
        "sink": SINK,
    }), ns)  # fmt: skip
    ready(kube, ns, "containersources", "test-heartbeats")
    url = f"http://event-display.{ns}.svc.cluster.local"
    pods = kube.get_json("pods", "-n", ns)["items"]
    args = [p["spec"]["containers"][0].get("args") for p in pods]  # type: ignore[attr-defined]
    assert ["--label=<3", "--period=1", f"--sink={url}"] in args
    beats = waiting.eventually(
        lambda: events(kube, ns, "dev.knative.eventing.samples.heartbeat"),
        120, "heartbeats at event-display", 1.0,
    )  # fmt: skip
    assert json.loads(beats[0]["data"])["label"] == "<3"
    # The 2018 sample set no POD_NAME / POD_NAMESPACE: the image's defaults stand in.
    assert beats[0]["attributes"]["source"].endswith("#default/heartbeats")


def test_guitar_tutorial_add_update_delete_and_kubectl_get_at_the_old_group(
    kube: cluster.Kube, ns: str
) -> None:
    kube.apply(guitars.ONLY_GUITARS.replace("NAMESPACE", ns), ns)
    kube.apply(old("ApiServerSource", "testevents", {
        "serviceAccountName": "events-sa", "mode": "Resource",
        "resources": [{"apiVersion": "kool.karmalabs.local/v1", "kind": "Guitar"}],
        "sink": SINK,
    }), ns)  # fmt: skip
    ready(kube, ns, "apiserversources", "testevents")
    table = kube.kubectl("get", "apiserversources.v1alpha1.sources.eventing.knative.dev",
                         "-n", ns).stdout  # fmt: skip
    assert "testevents" in table and f"http://event-display.{ns}.svc.cluster.local" in table
    assert "True" in table

    kube.apply(yaml.safe_dump(guitars.guitar("fender", "fender")), ns)
    kube.kubectl("-n", ns, "patch", "guitars.kool.karmalabs.local", "fender", "--type=merge",
                 "-p", '{"spec": {"review": true}}')  # fmt: skip
    kube.kubectl("-n", ns, "delete", "guitars.kool.karmalabs.local", "fender")

    def seen() -> list[str]:
        return [
            e["attributes"]["type"].rsplit(".", 1)[-1]
            for e in received(kube, ns)
            if e["attributes"]["type"].startswith("dev.knative.apiserver.resource.")
            and json.loads(e["data"]).get("kind") == "Guitar"
        ]

    verbs = waiting.eventually(
        lambda: (s := seen()) and len(s) >= 3 and s, 120, "Guitar add/update/delete", 1.0
    )
    assert verbs == ["add", "update", "delete"]
