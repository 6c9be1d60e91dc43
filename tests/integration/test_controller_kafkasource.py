"""The KafkaSource controller against the real apiserver and the real Kafka broker.

The reconciler runs in-process on the host, so `bootstrapServers` are the host's listeners;
the adapter pod it deploys cannot reach those (the end-to-end tests run the whole chain from
pods), so Deployed is not asserted here: the Kafka-facing conditions and the Deployment are.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from controller.kafkasource import adapter, reconciler
from kevents import kafka, kubeapi
from tests.cluster import REPO, Kube
from tests.integration import controllers as c
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster

SOURCES = reconciler.KAFKASOURCES
SECRETS = kubeapi.Resource("", "v1", "secrets")


@pytest.fixture(scope="module")
def crds(kube: Kube) -> None:
    kube.kubectl("apply", f"--filename={REPO / 'manifests' / '300-kafkasource.yaml'}")
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 "crd/kafkasources.sources.knative.dev")  # fmt: skip


@pytest.fixture
def sources(kube: Kube, crds: None, namespace: str) -> Iterator[str]:
    yield namespace


def source_yaml(servers: str, topic: str, name: str = "builds", **spec: Any) -> str:
    return yaml.safe_dump({
        "apiVersion": "sources.knative.dev/v1beta1", "kind": "KafkaSource",
        "metadata": {"name": name},
        "spec": {
            "bootstrapServers": [servers], "topics": [topic],
            "sink": {"ref": {"apiVersion": "v1", "kind": "Service", "name": "event-display"}},
            **spec,
        },
    })  # fmt: skip


def secret_yaml(user: str, password: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-auth"},
        "type": "Opaque", "stringData": {"user": user, "password": password},
    })  # fmt: skip


SASL = {
    "sasl": {
        "enable": True,
        "user": {"secretKeyRef": {"name": "kafka-auth", "key": "user"}},
        "password": {"secretKeyRef": {"name": "kafka-auth", "key": "password"}},
    }
}


async def test_source_connects_commits_initial_offsets_and_deploys_its_consumers(
    kube: Kube, api_client: client.ApiClient, sources: str, kafka_broker: KafkaBroker,
    kafka_topic: str,
) -> None:  # fmt: skip
    api, ns = kubeapi.KubeApi(api_client), sources
    await kafka_broker.create(kafka_topic, partitions=2)
    async with kafka.Producer(kafka_broker.config()) as producer:
        for i in range(4):
            await producer.send(kafka_topic, f"before-{i}", partition=i % 2)
    kube.apply(c.SINK_SERVICE + "---\n" + source_yaml(
        kafka_broker.bootstrap, kafka_topic, consumers=2, initialOffset="latest",
    ), ns)  # fmt: skip
    async with c.running(api_client, ns, ["KafkaSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "builds"),
            lambda s: c.condition(s, "InitialOffsetsCommitted").get("status") == "True",
        )
    spec, status = source["spec"], source["status"]
    group = spec["consumerGroup"]
    assert group.startswith("knative-kafka-source-")
    assert c.condition(source, "ConnectionEstablished")["status"] == "True"
    assert c.condition(source, "SinkProvided")["status"] == "True"
    assert status["sinkUri"] == c.service_url("event-display", ns)
    assert status["selector"] == adapter.selector("builds")
    assert status["ceAttributes"] == [{
        "type": "dev.knative.kafka.event",
        "source": f"/apis/v1/namespaces/{ns}/kafkasources/builds#{kafka_topic}",
    }]  # fmt: skip
    dep = await api.get(adapter.DEPLOYMENTS, ns, adapter.name("builds", source["metadata"]["uid"]))
    assert dep["spec"]["replicas"] == 2
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KAFKA_CONSUMER_GROUP"] == group
    assert env["KAFKA_TOPICS"] == kafka_topic
    # latest: the group starts after the 4 records produced before the source was Ready, so a
    # consumer joining later misses nothing produced after that and replays nothing before.
    async with kafka.Producer(kafka_broker.config()) as producer:
        await producer.send(kafka_topic, "after", partition=0)
    async with kafka.Consumer(kafka_broker.config(), group_id=group, topics=[kafka_topic],
                              initial_offset="earliest") as consumer:  # fmt: skip
        got: list[kafka.Record] = []
        for _ in range(60):
            got += await consumer.poll(10, wait=0.5)
            if got:
                break
    assert [r.value for r in got] == [b"after"]


async def test_wrong_password_is_ready_false_naming_the_authentication_failure(
    kube: Kube, api_client: client.ApiClient, sources: str, kafka_broker: KafkaBroker,
    kafka_topic: str,
) -> None:  # fmt: skip
    api, ns = kubeapi.KubeApi(api_client), sources
    await kafka_broker.create(kafka_topic)
    secret = secret_yaml(kafka_broker.user, "not-the-password")
    manifest = source_yaml(kafka_broker.sasl_bootstrap, kafka_topic, net=SASL)
    kube.apply(c.SINK_SERVICE + "---\n" + secret + "---\n" + manifest, ns)
    async with c.running(api_client, ns, ["KafkaSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "builds"),
            lambda s: c.condition(s, "ConnectionEstablished").get("status") == "False",
        )
        failed = c.condition(source, "ConnectionEstablished")
        assert failed["reason"] == "ClientCreationFailed"
        assert "Authentication failed" in failed["message"]
        assert "not-the-password" not in str(source)
        ready = c.condition(source, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "ClientCreationFailed")
        # The right password: noticed within the recheck (Secrets are not watched).
        kube.apply(secret_yaml(kafka_broker.user, kafka_broker.password), ns)
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "builds"),
            lambda s: c.condition(s, "InitialOffsetsCommitted").get("status") == "True",
            within=reconciler.RECHECK + 30,
        )
    assert c.condition(source, "ConnectionEstablished")["status"] == "True"


@pytest.mark.parametrize(
    ("case", "condition", "reason", "words"),
    [
        ("missing-topic", "InitialOffsetsCommitted", "OffsetsNotCommitted", "does not exist"),
        ("missing-secret", "ConnectionEstablished", "InvalidConfiguration",
         'Secret "kafka-auth" not found'),
        ("unreachable", "ConnectionEstablished", "ClientCreationFailed", "BrokerUnreachable"),
    ],
    ids=["missing-topic", "missing-secret", "unreachable"],
)  # fmt: skip
async def test_broker_and_secret_problems_show_in_conditions(
    kube: Kube, api_client: client.ApiClient, sources: str, kafka_broker: KafkaBroker,
    kafka_topic: str, case: str, condition: str, reason: str, words: str,
) -> None:  # fmt: skip
    api, ns = kubeapi.KubeApi(api_client), sources
    servers, spec = kafka_broker.bootstrap, dict[str, Any]()
    if case == "missing-secret":
        spec = {"net": SASL}
        await kafka_broker.create(kafka_topic)
    elif case == "unreachable":
        servers = "127.0.0.1:1"
    kube.apply(c.SINK_SERVICE + "---\n" + source_yaml(servers, kafka_topic, **spec), ns)
    async with c.running(api_client, ns, ["KafkaSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "builds"),
            lambda s: c.condition(s, condition).get("status") == "False",
        )
    found = c.condition(source, condition)
    assert found["reason"] == reason
    assert words in found["message"]
    assert c.condition(source, "Ready")["status"] == "False"


async def test_kubectl_scale_sets_the_consumers_and_their_deployment(
    kube: Kube, api_client: client.ApiClient, sources: str, kafka_broker: KafkaBroker,
    kafka_topic: str,
) -> None:  # fmt: skip
    api, ns = kubeapi.KubeApi(api_client), sources
    await kafka_broker.create(kafka_topic, partitions=3)
    kube.apply(c.SINK_SERVICE + "---\n" + source_yaml(kafka_broker.bootstrap, kafka_topic), ns)
    async with c.running(api_client, ns, ["KafkaSource"]):
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "builds"),
            lambda s: (s.get("status") or {}).get("selector") is not None,
        )
        name = adapter.name("builds", source["metadata"]["uid"])
        kube.kubectl("-n", ns, "scale", "kafkasource/builds", "--replicas=3")
        await c.eventually(
            lambda: api.get(adapter.DEPLOYMENTS, ns, name), lambda d: d["spec"]["replicas"] == 3
        )
        source = await c.eventually(
            lambda: api.get(SOURCES, ns, "builds"),
            lambda s: (s.get("status") or {}).get("consumers") == 3,
        )
    path = f"/apis/sources.knative.dev/v1beta1/namespaces/{ns}/kafkasources/builds/scale"
    scale = json.loads(kube.kubectl("get", "--raw", path).stdout)
    assert scale["spec"]["replicas"] == scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == adapter.selector("builds")
