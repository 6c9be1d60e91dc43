"""KafkaSink end to end on the installed system (`hack/up`: the controller and the
`kafka-sink-ingress` pods) with the local cluster's real Kafka broker, which the pods reach
as `kafka.kevents-system.svc.cluster.local`.

Events are POSTed to the sink's address (through the ingress Service's cluster IP, as a pod
would through its name) and read back with Kafka's own console consumer: binary mode gives
`ce_` headers with the data as the value, structured mode the JSON envelope. A KafkaSink
authenticates through a Secret with Knative's keys; a wrong password is Ready False naming
the authentication failure; a Kafka that cannot be reached is answered 503, never 202.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import cluster, waiting
from tests.e2e import installed
from tests.kafka import ConsoleRecord, KafkaBroker

pytestmark = pytest.mark.cluster

SYSTEM = installed.SYSTEM_NAMESPACE
Reader = Callable[..., list[ConsoleRecord]]


def sink_yaml(name: str, topic: str, servers: list[str], **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "eventing.knative.dev/v1alpha1",
            "kind": "KafkaSink",
            "metadata": {"name": name},
            "spec": {"topic": topic, "bootstrapServers": servers, **spec},
        }
    )


def secret_yaml(name: str, data: dict[str, str]) -> str:
    return json.dumps(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
    )


def condition(kube: cluster.Kube, ns: str, name: str, kind: str) -> dict[str, Any]:
    proc = kube.kubectl("-n", ns, "get", "kafkasink", name, "-o", "json", check=False)
    if proc.returncode != 0:
        return {}
    found = json.loads(proc.stdout)
    for cond in (found.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def wait_condition(
    kube: cluster.Kube, ns: str, name: str, kind: str, status: str
) -> dict[str, Any]:
    result: dict[str, Any] = waiting.eventually(
        lambda: (c := condition(kube, ns, name, kind)) and c["status"] == status and c,
        120, f"KafkaSink {name} {kind}={status}", 1.0,
    )  # fmt: skip
    return result


def post(
    kube: cluster.Kube, ns: str, name: str, headers: dict[str, str], body: bytes
) -> tuple[int, str]:
    """POST to the sink's path on the kafka-sink-ingress Service (its cluster IP)."""
    svc = kube.get_json("-n", SYSTEM, "service", "kafka-sink-ingress")
    ip = svc["spec"]["clusterIP"]  # type: ignore[index]
    request = urllib.request.Request(
        f"http://{ip}/{ns}/{name}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as answer:
        with answer:
            return int(answer.code), answer.read().decode()


def binary(id: str, **extensions: str) -> tuple[dict[str, str], bytes]:
    headers = {
        "ce-specversion": "1.0", "ce-id": id, "ce-type": "dev.example.order",
        "ce-source": "/e2e/kafkasink", "content-type": "application/json",
        **{f"ce-{k}": v for k, v in extensions.items()},
    }  # fmt: skip
    return headers, json.dumps({"order": id}).encode()


@pytest.fixture(scope="module")
def sink_ns(kube: cluster.Kube, main_job: installed.MainJob) -> Iterator[str]:
    ns = f"kafkasink-e2e-{uuid.uuid4().hex[:6]}"
    kube.kubectl("create", "namespace", ns)
    try:
        yield ns
    finally:
        # While the controller runs: its finalizer deletes the topics it created.
        kube.kubectl("-n", ns, "delete", "kafkasinks", "--all", "--timeout=120s", check=False)
        kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_binary_and_structured_events_are_in_the_topic(
    kube: cluster.Kube, sink_ns: str, kafka_broker: KafkaBroker,
    kafka_console_consumer: Reader,
) -> None:  # fmt: skip
    assert kafka_broker.pods_bootstrap, "the pods' Kafka address"
    suffix = uuid.uuid4().hex[:8]
    topics = {"bin": f"e2e-bin-{suffix}", "json": f"e2e-json-{suffix}"}
    created = {"numPartitions": 1, "replicationFactor": 1}
    kube.apply(sink_yaml("bin", topics["bin"], [kafka_broker.pods_bootstrap], **created), sink_ns)
    kube.apply(
        sink_yaml("json", topics["json"], [kafka_broker.pods_bootstrap], contentMode="structured",
                  **created),
        sink_ns,
    )  # fmt: skip
    for name in topics:
        wait_condition(kube, sink_ns, name, "Ready", "True")
    sink = kube.get_json("-n", sink_ns, "kafkasink", "bin")
    assert sink["status"]["address"]["url"] == (  # type: ignore[index]
        f"http://kafka-sink-ingress.{SYSTEM}.svc.cluster.local/{sink_ns}/bin"
    )
    printed = kube.kubectl("-n", sink_ns, "get", "kafkasinks").stdout.splitlines()
    assert printed[0].split() == ["NAME", "URL", "AGE", "READY", "REASON"]
    headers, body = binary("order-1", partitionkey="customer-7")
    assert post(kube, sink_ns, "bin", headers, body) == (202, "")
    structured = json.dumps({
        "specversion": "1.0", "id": "order-2", "type": "dev.example.order",
        "source": "/e2e/kafkasink", "datacontenttype": "application/json",
        "data": {"order": "order-2"},
    }).encode()  # fmt: skip
    answer = post(
        kube, sink_ns, "json", {"content-type": "application/cloudevents+json"}, structured
    )
    assert answer == (202, "")

    (record,) = kafka_console_consumer(topics["bin"], 1)
    headers_read = dict(record.headers)
    assert record.key == "customer-7"
    assert json.loads(record.value) == {"order": "order-1"}
    assert headers_read["ce_id"] == "order-1"
    assert headers_read["ce_type"] == "dev.example.order"
    assert headers_read["ce_source"] == "/e2e/kafkasink"
    assert headers_read["ce_specversion"] == "1.0"
    assert headers_read["content-type"] == "application/json"

    (record,) = kafka_console_consumer(topics["json"], 1)
    envelope = json.loads(record.value)
    assert dict(record.headers)["content-type"].startswith("application/cloudevents+json")
    assert {k: envelope[k] for k in ("specversion", "id", "type", "source", "data")} == {
        "specversion": "1.0", "id": "order-2", "type": "dev.example.order",
        "source": "/e2e/kafkasink", "data": {"order": "order-2"},
    }  # fmt: skip
    assert not any(name.startswith("ce_") for name, _ in record.headers)


def test_sasl_through_a_secret_and_a_wrong_password(
    kube: cluster.Kube, sink_ns: str, kafka_broker: KafkaBroker,
    kafka_console_consumer: Reader,
) -> None:  # fmt: skip
    assert kafka_broker.pods_sasl_bootstrap, "the pods' SASL Kafka address"
    servers = [kafka_broker.pods_sasl_bootstrap]
    topic = f"e2e-sasl-{uuid.uuid4().hex[:8]}"
    right = kafka_broker.secret_data()
    kube.apply(secret_yaml("kafka-right", right), sink_ns)
    kube.apply(secret_yaml("kafka-wrong", {**right, "password": "not-the-password"}), sink_ns)
    for name in ("right", "wrong"):
        kube.apply(
            sink_yaml(f"sasl-{name}", topic, servers, numPartitions=1, replicationFactor=1,
                      auth={"secret": {"ref": {"name": f"kafka-{name}"}}}),
            sink_ns,
        )  # fmt: skip
    wait_condition(kube, sink_ns, "sasl-right", "Ready", "True")
    refused = wait_condition(kube, sink_ns, "sasl-wrong", "Ready", "False")
    assert refused["reason"] == "AuthenticationFailed"
    assert "Authentication failed" in refused["message"]
    assert "not-the-password" not in refused["message"]

    headers, body = binary("sasl-1")
    assert post(kube, sink_ns, "sasl-right", headers, body) == (202, "")
    status, text = post(kube, sink_ns, "sasl-wrong", *binary("sasl-2"))
    assert status == 503 and "AuthenticationFailed" in text
    (record,) = kafka_console_consumer(topic, 1)
    assert dict(record.headers)["ce_id"] == "sasl-1"


def test_unreachable_kafka_is_503_and_nothing_is_accepted(
    kube: cluster.Kube, sink_ns: str, kafka_broker: KafkaBroker
) -> None:
    """Nothing listens at the sink's bootstrap address (port 9 of the ingress pod itself):
    the event is answered 503 with Retry-After once the produce timeout passes, and the
    KafkaSink says why."""
    kube.apply(sink_yaml("down", "e2e-down", ["127.0.0.1:9"]), sink_ns)
    down = wait_condition(kube, sink_ns, "down", "TopicReady", "False")
    assert down["reason"] == "BrokerUnreachable"
    status, text = post(kube, sink_ns, "down", *binary("lost-1"))
    assert status == 503, text
    assert "BrokerUnreachable" in text or "did not acknowledge" in text


def test_a_pod_posts_to_the_sink_address_as_knatives_docs_do(
    kube: cluster.Kube, sink_ns: str, kafka_broker: KafkaBroker,
    kafka_console_consumer: Reader,
) -> None:  # fmt: skip
    """The docs' command (curl from a pod to `status.address.url`, through cluster DNS; the
    pod runs on the host's tools, whatever the agent's runtime: busybox has no curl)."""
    assert kafka_broker.pods_bootstrap, "the pods' Kafka address"
    topic = f"e2e-docs-{uuid.uuid4().hex[:8]}"
    kube.apply(
        sink_yaml("my-kafka-sink", topic, [kafka_broker.pods_bootstrap], numPartitions=1,
                  replicationFactor=1),
        sink_ns,
    )  # fmt: skip
    wait_condition(kube, sink_ns, "my-kafka-sink", "Ready", "True")
    sink = kube.get_json("-n", sink_ns, "kafkasink", "my-kafka-sink")
    url = sink["status"]["address"]["url"]  # type: ignore[index]
    command = (
        "curl -sS -o /dev/null -w '%{http_code}' -X POST"
        " -H 'content-type: application/json' -H 'ce-specversion: 1.0'"
        " -H 'ce-source: my/curl/command' -H 'ce-type: my.demo.event' -H 'ce-id: 0815'"
        f""" -d '{{"value":"Hello Knative"}}' {url}"""
    )
    kube.kubectl(
        "-n", sink_ns, "run", "curl", "--image=busybox", "--restart=Never",
        "--annotations=agent.kevents.dev/runtime=process", "--",
        "sh", "-c", command,
    )  # fmt: skip
    waiting.eventually(
        lambda: kube.kubectl(
            "-n", sink_ns, "get", "pod", "curl", "-o", "jsonpath={.status.phase}", check=False
        ).stdout in ("Succeeded", "Failed"),
        120, "the curl pod finished", 1.0,
    )  # fmt: skip
    assert kube.kubectl("-n", sink_ns, "logs", "curl").stdout.strip() == "202"
    (record,) = kafka_console_consumer(topic, 1)
    assert dict(record.headers)["ce_id"] == "0815"
    assert json.loads(record.value) == {"value": "Hello Knative"}
