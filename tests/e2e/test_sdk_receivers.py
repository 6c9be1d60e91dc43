"""Every event kevents delivers is accepted by the official CloudEvents SDKs' strict receivers.

Two sinks run as pods on the installed system (`hack/up`): the Go SDK (sdk-go v2, each event
checked with `event.Validate()`) and the npm `cloudevents` SDK in strict mode, both built by
`hack/build-sdk-receivers` (cached outside the work tree) and started by the node agent with
the generic `busybox` image and the built program as the container's command, as processes
of the host (the annotation `agent.kevents.dev/runtime: process`: the programs and Node.js
are the host's files, in no image) whatever the agent's runtime. Each records
what it received, with the request path and whether its SDK accepted it (GET /events).

Events reach each of them on every kevents path: a source (ContainerSource with Knative's
heartbeats image), a channel (ApiServerSource -> InMemoryChannel -> Subscription), a broker
(ApiServerSource -> Broker -> Trigger) and a dead letter (a Trigger whose subscriber answers
500, retried, then sent to the receiver as dead letter sink). The receivers refuse an invalid
event (a control sent by the test), so "accepted" is the SDKs' verdict, not a default.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import installed, scenarios

pytestmark = pytest.mark.cluster

PATHS = ("/source", "/channel", "/broker", "/dead", "/fail")
"""Where kevents delivers to the receivers: the subscriber of the failing Trigger is /fail."""
HEARTBEATS = "gcr.io/knative-releases/knative.dev/eventing/cmd/heartbeats"


@dataclass(frozen=True)
class Receivers:
    go: str
    """The sdk-go receiver's binary."""
    node: str
    """The npm cloudevents receiver's script (its node_modules beside it)."""


@pytest.fixture(scope="module")
def receivers() -> Receivers:
    proc = subprocess.run(
        [str(cluster.REPO / "hack" / "build-sdk-receivers")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"hack/build-sdk-receivers failed:\n{proc.stderr[-3000:]}"
    paths = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    return Receivers(go=paths["go"], node=paths["node"])


def receiver(name: str, command: list[str], env: dict[str, str]) -> str:
    env_yaml = json.dumps([{"name": k, "value": v} for k, v in env.items()])
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{agent.kevents.dev/runtime: process}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: receiver
        image: busybox
        command: {json.dumps(command)}
        env: {env_yaml}
        readinessProbe: {{httpGet: {{path: /health, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def flows(ns: str, sink: str) -> str:
    """Every kevents path ending at the receiver Service `sink`."""
    return f"""
apiVersion: sources.knative.dev/v1
kind: ContainerSource
metadata: {{name: beats-{sink}}}
spec:
  template:
    spec:
      containers:
      - name: heartbeats
        image: {HEARTBEATS}
        args: [--period=1, --label=sdk]
        env:
        - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
        - {{name: POD_NAMESPACE, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
  sink:
    ref: {{apiVersion: v1, kind: Service, name: {sink}}}
    uri: /source
---
apiVersion: messaging.knative.dev/v1
kind: Subscription
metadata: {{name: channel-{sink}}}
spec:
  channel: {{apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel, name: events}}
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: {sink}}}
    uri: /channel
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: broker-{sink}}}
spec:
  broker: default
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: {sink}}}
    uri: /broker
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: dead-{sink}}}
spec:
  broker: default
  subscriber:
    ref: {{apiVersion: v1, kind: Service, name: {sink}}}
    uri: /fail
  delivery:
    retry: 1
    backoffPolicy: linear
    backoffDelay: PT0.2S
    deadLetterSink:
      ref: {{apiVersion: v1, kind: Service, name: {sink}}}
      uri: /dead
"""


def shared(ns: str) -> str:
    """The watcher's RBAC, the channel, the broker and the two ApiServerSources feeding them."""
    sources = "".join(
        f"""
---
apiVersion: sources.knative.dev/v1
kind: ApiServerSource
metadata: {{name: to-{kind.lower()}}}
spec:
  serviceAccountName: cm-watcher
  mode: Resource
  resources:
  - apiVersion: v1
    kind: ConfigMap
    selector: {{matchLabels: {{e2e: sdk}}}}
  sink:
    ref: {{apiVersion: {api}, kind: {kind}, name: {name}}}
"""
        for api, kind, name in (
            ("messaging.knative.dev/v1", "InMemoryChannel", "events"),
            ("eventing.knative.dev/v1", "Broker", "default"),
        )
    )
    return f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: cm-watcher}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: cm-watcher}}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: cm-watcher}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-watcher}}
subjects: [{{kind: ServiceAccount, name: cm-watcher, namespace: {ns}}}]
---
apiVersion: messaging.knative.dev/v1
kind: InMemoryChannel
metadata: {{name: events}}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {{name: default}}
{sources}"""


def pod_ip(kube: cluster.Kube, ns: str, app: str) -> str | None:
    pods = kube.get_json("pods", "-n", ns, "-l", f"app={app}")["items"]
    assert isinstance(pods, list)
    for pod in pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        ip = pod.get("status", {}).get("podIP")
        if ip:
            return str(ip)
    return None


def records(kube: cluster.Kube, ns: str, app: str) -> list[dict[str, Any]]:
    ip = pod_ip(kube, ns, app)
    if ip is None:
        return []
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/events", timeout=3) as response:
            found: list[dict[str, Any]] = json.load(response)
    except urllib.error.HTTPError as answer:
        answer.close()  # an error answer holds its connection until closed
        return []
    except OSError:
        return []  # not listening yet: the caller polls again
    return found


APPS = ("sdk-go", "sdk-js")


@pytest.fixture(scope="module")
def scenario(
    kube: cluster.Kube, main_job: installed.MainJob, receivers: Receivers
) -> Iterator[str]:
    ns = f"sdk-e2e-{uuid.uuid4().hex[:6]}"
    node = shutil.which("node")
    assert node, "node is not installed (hack/bootstrap installs it)"
    kube.kubectl("create", "namespace", ns)
    try:
        kube.apply(receiver("sdk-go", [receivers.go], {"RECEIVER_ADDR": ":8080"}), ns)
        kube.apply(receiver("sdk-js", [node, receivers.node], {"RECEIVER_PORT": "8080"}), ns)
        kube.apply(shared(ns), ns)
        for app in APPS:
            kube.kubectl("-n", ns, "rollout", "status", f"deployment/{app}", "--timeout=120s")
            kube.apply(flows(ns, app), ns)
        wanted = ["inmemorychannel/events", "broker/default", "apiserversource/to-inmemorychannel",
                  "apiserversource/to-broker"]  # fmt: skip
        for app in APPS:
            wanted += [f"containersource/beats-{app}", f"subscription/channel-{app}",
                       f"trigger/broker-{app}", f"trigger/dead-{app}"]  # fmt: skip
        scenarios.wait_ready(kube, ns, wanted)
        yield ns
    finally:
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_the_receivers_refuse_an_invalid_event(kube: cluster.Kube, scenario: str) -> None:
    """The control: an attribute name with an underscore is refused by both SDKs."""
    for app in APPS:
        ip = waiting.eventually(lambda a=app: pod_ip(kube, scenario, a), 60, f"{app} pod IP")  # type: ignore[misc]
        request = urllib.request.Request(
            f"http://{ip}:8080/control",
            data=b"{}",
            method="POST",
            headers={"ce-specversion": "1.0", "ce-id": "control-1", "ce-type": "control",
                     "ce-source": "/tests", "ce-Bad_Ext": "x",
                     "content-type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        refused.value.close()
        assert refused.value.code == 400, app
        control = [r for r in records(kube, scenario, app) if r["path"] == "/control"]
        assert [r["accepted"] for r in control] == [False], app


def test_every_path_delivers_events_both_sdks_accept(kube: cluster.Kube, scenario: str) -> None:
    name = f"cm-{uuid.uuid4().hex[:6]}"
    kube.apply(
        f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {scenario}, labels: {{e2e: sdk}}}}
data: {{k: v1}}
"""
    )

    def complete(app: str) -> list[dict[str, Any]] | None:
        seen = records(kube, scenario, app)
        about = {r["path"] for r in seen if str(r.get("subject", "")).endswith(f"/{name}")}
        beats = [r for r in seen if r["path"] == "/source"]
        if {"/channel", "/broker", "/dead"} <= about and len(beats) >= 2:
            return seen
        return None

    for app in APPS:
        seen = waiting.eventually(
            lambda a=app: complete(a),  # type: ignore[misc]
            120, f"events about {name} on every path and heartbeats at {app}", 1.0,
        )  # fmt: skip
        delivered = [r for r in seen if r["path"] in PATHS]
        refused = [r for r in delivered if not r["accepted"]]
        assert refused == [], f"{app} refused events kevents delivered:\n" + json.dumps(
            refused, indent=1
        )
        assert {r["path"] for r in delivered} == set(PATHS)
