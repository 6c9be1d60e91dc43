"""KafkaSink with the local cluster's real Kafka broker: the ingress (in this process) writes
what a producer POSTs into the topic as Kafka's CloudEvents binding says, answered 202 only
once stored; the controller (in this process) creates the topic, and reports a refused
password on Ready with the broker's words."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from kubernetes_asyncio import client
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from kevents import cloudevent, errors, kafka, kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import kafkasink_harness as h
from tests.integration.dispatcher_harness import post
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster


@pytest.fixture
def crd(kube: Kube) -> None:
    h.ensure_crd(kube)


@pytest.fixture
async def fresh_topic(kafka_broker: KafkaBroker) -> AsyncIterator[Callable[[], str]]:
    """New topic names; whichever of them exist after the test are deleted."""
    names: list[str] = []

    def name() -> str:
        names.append(f"kafkasink-{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield name
    for each in names:
        await kafka.delete_topic(kafka_broker.config(), each)


def sink_event(id: str, **extensions: str) -> cloudevent.CloudEvent:
    return cloudevent.build(
        "dev.example.order", "/tests/kafkasink", {"order": id}, id=id,
        datacontenttype="application/json", extensions=extensions,
    )  # fmt: skip


async def test_binary_and_structured_records(
    crd: None,
    api_client: client.ApiClient,
    namespace: str,
    kafka_broker: KafkaBroker,
    fresh_topic: Callable[[], str],
) -> None:
    """Binary: attributes in `ce_` headers, data as the value, `partitionkey` the key.
    Structured: the JSON envelope as the value. 202 means the record is there."""
    api = kubeapi.KubeApi(api_client)
    bootstrap = kafka_broker.bootstrap
    config = kafka.client_config(bootstrap)
    binary, structured = fresh_topic(), fresh_topic()
    for topic in (binary, structured):
        await kafka.ensure_topic(config, topic, partitions=1, replication_factor=1)
    await h.create(api, namespace, h.kafkasink("bin", binary, [bootstrap]))
    await h.create(
        api, namespace, h.kafkasink("json", structured, [bootstrap], contentMode="structured")
    )
    exporter = InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    try:
        async with h.running_ingress(
            api_client, registry=registry, tracer_provider=provider
        ) as ingress:
            await h.served(ingress, namespace, "bin")
            await h.served(ingress, namespace, "json")
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            status, text, _ = await post(
                h.url(ingress, namespace, "bin"),
                sink_event("b-1", partitionkey="customer-7"),
                headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            )
            assert status == 202, text
            # Answered once stored: the broker has the record before anyone reads it.
            assert await asyncio.to_thread(h.end_offset, bootstrap, binary) == 1
            status, text, _ = await post(
                h.url(ingress, namespace, "json"), sink_event("s-1"), structured=True
            )
            assert status == 202, text
    finally:
        provider.shutdown()
    (record,) = await h.read_records(bootstrap, binary, 1)
    headers = h.header_map(record)
    assert record.key == b"customer-7"
    assert json.loads(record.value or b"") == {"order": "b-1"}
    assert headers["ce_id"] == b"b-1"
    assert headers["ce_type"] == b"dev.example.order"
    assert headers["ce_source"] == b"/tests/kafkasink"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["content-type"] == b"application/json"
    assert headers["traceparent"].decode().split("-")[1] == trace_id
    (record,) = await h.read_records(bootstrap, structured, 1)
    envelope = json.loads(record.value or b"")
    assert h.header_map(record)["content-type"].startswith(b"application/cloudevents+json")
    assert (envelope["id"], envelope["type"], envelope["data"]) == (
        "s-1", "dev.example.order", {"order": "s-1"},
    )  # fmt: skip
    spans = [s for s in exporter.get_finished_spans() if s.name == "kafkasink.produce"]
    assert len(spans) == 2
    assert {s.attributes["messaging.destination.name"] for s in spans if s.attributes} == {
        binary, structured,
    }  # fmt: skip
    assert f"{spans[0].context.trace_id:032x}" == trace_id
    stored = registry.get_sample_value("kevents_kafkasink_records_out_total", {"result": "stored"})
    assert stored == 2.0
    latency = registry.get_sample_value(
        "kevents_kafkasink_produce_duration_seconds_count", {"result": "stored"}
    )
    assert latency == 2.0


async def test_sasl_through_the_secret_and_a_refused_password(
    crd: None,
    api_client: client.ApiClient,
    namespace: str,
    kafka_broker: KafkaBroker,
    fresh_topic: Callable[[], str],
) -> None:
    api = kubeapi.KubeApi(api_client)
    sasl = kafka_broker.sasl_bootstrap
    topic = fresh_topic()
    right = {"protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
             "user": kafka_broker.user, "password": kafka_broker.password}  # fmt: skip
    await kafka.ensure_topic(
        kafka.client_config(kafka_broker.bootstrap), topic, partitions=1, replication_factor=1
    )
    await h.create_secret(api, namespace, "right", right)
    await h.create_secret(api, namespace, "wrong", {**right, "password": "not-the-password"})
    for name in ("right", "wrong"):
        auth = {"secret": {"ref": {"name": name}}}
        await h.create(api, namespace, h.kafkasink(name, topic, [sasl], auth=auth))
    async with h.running_ingress(api_client) as ingress:
        await h.served(ingress, namespace, "right")
        await h.served(ingress, namespace, "wrong")
        status, text, _ = await post(h.url(ingress, namespace, "right"), sink_event("ok"))
        assert status == 202, text
        status, text, headers = await post(h.url(ingress, namespace, "wrong"), sink_event("no"))
    assert status == 503
    assert "AuthenticationFailed" in text and "Authentication failed" in text
    assert "not-the-password" not in text
    assert headers["Retry-After"] == "1"
    (record,) = await h.read_records(kafka_broker.bootstrap, topic, 1)
    assert h.header_map(record)["ce_id"] == b"ok"  # the refused one was not stored


async def test_controller_creates_the_topic_and_deletes_it_with_the_sink(
    crd: None,
    api_client: client.ApiClient,
    namespace: str,
    kafka_broker: KafkaBroker,
    fresh_topic: Callable[[], str],
) -> None:
    api = kubeapi.KubeApi(api_client)
    bootstrap = kafka_broker.bootstrap
    topic = fresh_topic()
    await h.create(
        api, namespace,
        h.kafkasink("made", topic, [bootstrap], numPartitions=3, replicationFactor=1),
    )  # fmt: skip
    async with c.running(api_client, namespace, ["KafkaSink"]):
        sink = await c.eventually(
            lambda: api.get(h.KAFKASINKS, namespace, "made"),
            lambda s: c.condition(s, "TopicReady").get("status") == "True",
            within=60,
        )
        await kafka.check(kafka.client_config(bootstrap), topic=topic)
        await api.delete(h.KAFKASINKS, namespace, "made")
        await c.eventually(
            lambda: api.get_or_none(h.KAFKASINKS, namespace, "made"), lambda obj: obj is None
        )
    assert sink["status"]["annotations"] == {
        "eventing.knative.dev/topic.owner": "kafkasink-controller"
    }
    assert (
        c.condition(sink, "TopicReady")["message"] == f"Topic {topic} (owner kafkasink-controller)"
    )
    with pytest.raises(errors.KafkaTopicError):
        await kafka.check(kafka.client_config(bootstrap), topic=topic)


async def test_controller_wrong_password_and_missing_topic_are_ready_false(
    crd: None,
    api_client: client.ApiClient,
    namespace: str,
    kafka_broker: KafkaBroker,
    fresh_topic: Callable[[], str],
) -> None:
    api = kubeapi.KubeApi(api_client)
    wrong = {"protocol": "SASL_PLAINTEXT", "user": kafka_broker.user, "password": "nope"}
    await h.create_secret(api, namespace, "wrong", wrong)
    auth = {"secret": {"ref": {"name": "wrong"}}}
    await h.create(
        api, namespace,
        h.kafkasink("refused", fresh_topic(), [kafka_broker.sasl_bootstrap], auth=auth,
                    numPartitions=1, replicationFactor=1),
    )  # fmt: skip
    missing = fresh_topic()
    await h.create(api, namespace, h.kafkasink("missing", missing, [kafka_broker.bootstrap]))
    async with c.running(api_client, namespace, ["KafkaSink"]):
        refused = await c.eventually(
            lambda: api.get(h.KAFKASINKS, namespace, "refused"),
            lambda s: (
                c.condition(s, "Ready").get("status") == "False"
                and c.condition(s, "TopicReady").get("status") == "False"
            ),
            within=60,
        )
        absent = await c.eventually(
            lambda: api.get(h.KAFKASINKS, namespace, "missing"),
            lambda s: c.condition(s, "TopicReady").get("status") == "False",
            within=60,
        )
        for name in ("refused", "missing"):
            await api.delete(h.KAFKASINKS, namespace, name)
    ready = c.condition(refused, "Ready")
    assert ready["reason"] == "AuthenticationFailed"
    assert "Authentication failed" in ready["message"]
    assert "nope" not in ready["message"]
    topic = c.condition(absent, "TopicReady")
    assert (topic["reason"], topic["message"]) == (
        "TopicNotReady", f"topic {missing!r}: topic {missing!r} does not exist",
    )  # fmt: skip
    with pytest.raises(errors.KafkaTopicError):  # asking did not create it
        await kafka.check(kafka.client_config(kafka_broker.bootstrap), topic=missing)
