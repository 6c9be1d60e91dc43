"""KafkaChannel end to end on the installed system: a Sequence whose `channelTemplate` is a
KafkaChannel (the flows controller makes KafkaChannels and Subscriptions; the Kafka data
plane pods store each hop in the channel's topic and deliver it to the step, the step's
reply going into the next channel), as a user swapping the in-memory channel for Kafka does.

The event is POSTed from the host to the first channel through the `kafka-channel-ingress`
Service's cluster IP (`/<ns>/<channel>`; pods use the channel's `<name>-kn-channel` Host)
and read back with GET /events on the final display's pod IP.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import installed, scenarios

pytestmark = pytest.mark.cluster

SYSTEM = installed.SYSTEM_NAMESPACE


def scenario(ns: str) -> str:
    pods = scenarios.workload(ns, "final", scenarios.DISPLAY_IMAGE, {})
    pods += scenarios.workload(ns, "step-1", "kevents/step", {"STEP_APPEND": " | built"})
    pods += scenarios.workload(ns, "step-2", "kevents/step", {"STEP_APPEND": " | tested"})
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


@pytest.fixture(scope="module")
def pipeline(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    ns = f"kafkachannel-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    try:
        kube.apply(scenario(ns), ns)
        for app in ("final", "step-1", "step-2"):
            kube.kubectl("-n", ns, "rollout", "status", f"deployment/{app}", "--timeout=180s")
        waiting.eventually(
            lambda: scenarios.ready(kube, ns, "sequence/pipeline"),
            180,
            "sequence/pipeline Ready",
            1.0,
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
    assert all(
        scenarios.ready(kube, pipeline, f"kafkachannel/{c['metadata']['name']}") for c in channels
    )
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
        return [
            e
            for e in scenarios.received(kube, pipeline, "app=final")
            if e["attributes"]["id"] == id
        ]

    found = waiting.eventually(at_final, 120, "the event at the end of the sequence", 1.0)
    assert len(found) == 1
    assert found[0]["data"] == "build 42 | built | tested"
