"""KafkaChannel end to end on the installed system: a Sequence whose `channelTemplate` is a
KafkaChannel (the flows controller makes KafkaChannels and Subscriptions; the Kafka data
plane pods store each hop in the channel's topic and deliver it to the step, the step's
reply going into the next channel), as a user swapping the in-memory channel for Kafka does.

The event is POSTed from the host to the first channel through the `kafka-channel-ingress`
Service's cluster IP (`/<ns>/<channel>`; pods use the channel's `<name>-kn-channel` Host)
and read back with GET /events on the final display's pod IP.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests import cluster
from tests.e2e import installed

pytestmark = pytest.mark.cluster

SYSTEM = installed.SYSTEM_NAMESPACE
DISPLAY = "gcr.io/knative-releases/knative.dev/eventing/cmd/event_display"


def workload(ns: str, name: str, image: str, env: dict[str, str]) -> str:
    variables = [{"name": "STEP_NAME", "value": name},
                 *({"name": k, "value": v} for k, v in env.items())]  # fmt: skip
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
        env: {json.dumps(variables)}
        readinessProbe: {{httpGet: {{path: /health, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
"""


def scenario(ns: str) -> str:
    pods = workload(ns, "final", DISPLAY, {})
    pods += workload(ns, "step-1", "kevents/step", {"STEP_APPEND": " | built"})
    pods += workload(ns, "step-2", "kevents/step", {"STEP_APPEND": " | tested"})
    return f"""{pods}
apiVersion: flows.knative.dev/v1
kind: Sequence
metadata: {{name: pipeline, namespace: {ns}}}
spec:
  channelTemplate:
    apiVersion: messaging.knative.dev/v1beta1
    kind: KafkaChannel
    spec: {{numPartitions: 2, replicationFactor: 1}}
  steps:
  - ref: {{apiVersion: v1, kind: Service, name: step-1}}
  - ref: {{apiVersion: v1, kind: Service, name: step-2}}
  reply:
    ref: {{apiVersion: v1, kind: Service, name: final}}
"""


def ready(kube: cluster.Kube, ns: str, what: str) -> bool:
    proc = kube.kubectl("-n", ns, "get", what, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    conditions = (json.loads(proc.stdout).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def received(kube: cluster.Kube, ns: str, app: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = kube.get_json("pods", "-n", ns, "-l", f"app={app}")["items"]  # type: ignore[assignment]
    for pod in pods:
        ip = pod["status"].get("podIP")
        if ip:
            out.extend(installed.recorded_events(ip))
    return out


@pytest.fixture(scope="module")
def pipeline(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    ns = f"kafkachannel-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    try:
        kube.apply(scenario(ns), ns)
        for app in ("final", "step-1", "step-2"):
            kube.kubectl("-n", ns, "rollout", "status", f"deployment/{app}", "--timeout=180s")
        installed.eventually(
            lambda: ready(kube, ns, "sequence/pipeline"), 180, "sequence/pipeline Ready", 1.0
        )
        yield ns
    finally:
        # While the controller runs: its finalizer deletes the channels' topics.
        kube.kubectl("-n", ns, "delete", "sequences", "--all", "--timeout=120s", check=False)
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_sequence_over_kafka_channels_runs_its_steps_in_order(
    kube: cluster.Kube, pipeline: str
) -> None:
    channels = kube.get_json("-n", pipeline, "kafkachannels")["items"]
    assert isinstance(channels, list)
    assert sorted(c["metadata"]["name"] for c in channels) == [
        "pipeline-kn-sequence-0",
        "pipeline-kn-sequence-1",
    ]
    assert all(ready(kube, pipeline, f"kafkachannel/{c['metadata']['name']}") for c in channels)
    svc = kube.get_json("-n", SYSTEM, "service", "kafka-channel-ingress")
    ip = svc["spec"]["clusterIP"]  # type: ignore[index]
    id = f"build-{uuid.uuid4().hex[:6]}"
    headers = {"ce-specversion": "1.0", "ce-id": id, "ce-type": "dev.example.build",
               "ce-source": "/e2e/kafkachannel", "content-type": "text/plain"}  # fmt: skip
    request = urllib.request.Request(
        f"http://{ip}/{pipeline}/pipeline-kn-sequence-0", data=b"build 42", headers=headers,
        method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202

    def at_final() -> list[dict[str, Any]]:
        return [e for e in received(kube, pipeline, "final") if e["attributes"]["id"] == id]

    found = installed.eventually(at_final, 120, "the event at the end of the sequence", 1.0)
    assert len(found) == 1
    assert found[0]["data"] == "build 42 | built | tested"
