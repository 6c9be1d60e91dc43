"""KafkaChannel against the real apiserver and Kafka: the controller (KafkaChannel and
Subscription kinds) and the Kafka data plane in this process.

What a user notices: the channel Ready with its `<name>-kn-channel` address and its topic
`knative-messaging-kafka.<ns>.<name>`; every Subscription gets every event POSTed to the
channel (a consumer group each), a Subscription added later gets what is sent after it is
Ready; `retentionDuration` is the topic's `retention.ms`; a subscriber answering 500 is
retried, then dead-lettered with the error extensions; the topic is deleted with the channel.
"""

from __future__ import annotations

import functools

import confluent_kafka.admin as ck_admin
import confluent_kafka.admin._config as ck_config
import confluent_kafka.admin._resource as ck_resource
import pytest
from aiohttp import web
from kubernetes_asyncio import client

from kevents import cloudevent, kubeapi
from tests import waiting
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import dispatcher_harness as d
from tests.integration import kafkabroker_harness as h
from tests.kafka import KafkaBroker

pytestmark = pytest.mark.cluster

COUNT = 25


@pytest.fixture(autouse=True)
def _crds(kube: Kube) -> None:
    h.ensure_channel_crds(kube)


def ready(obj: dict[str, object]) -> bool:
    return c.condition(obj, "Ready").get("status") == "True"


def retention(kafka_broker: KafkaBroker, topic: str) -> str:
    admin = ck_admin.AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    resource = ck_config.ConfigResource(ck_resource.ResourceType.TOPIC, topic)
    found = admin.describe_configs([resource])[resource].result(timeout=10)
    return str(found["retention.ms"].value)


def topics(kafka_broker: KafkaBroker) -> set[str]:
    admin = ck_admin.AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    return set(admin.list_topics(timeout=10).topics)


async def test_every_subscription_gets_every_event_and_failures_are_dead_lettered(
    kube: Kube, api_client: client.ApiClient, namespace: str, kafka_broker: KafkaBroker
) -> None:
    api = kubeapi.KubeApi(api_client)

    async def failing(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=500, text="down")

    first, second, broken, dls, late = (
        d.Subscriber(), d.Subscriber(), d.Subscriber(failing), d.Subscriber(), d.Subscriber()
    )  # fmt: skip
    kube.apply(h.channel_config(kafka_broker.bootstrap), namespace)
    kube.apply(h.DATA_PLANE.replace("kafka-broker-ingress", "kafka-channel-ingress"), namespace)
    topic = f"knative-messaging-kafka.{namespace}.orders"
    delivery = {"retry": 1, "backoffPolicy": "linear", "backoffDelay": "PT0.05S",
                "deadLetterSink": {"uri": ""}}  # fmt: skip
    async with d.serving(first, second, broken, dls, late):
        delivery["deadLetterSink"] = {"uri": dls.url}
        await api.create(
            h.KAFKACHANNELS, namespace, h.kafkachannel("orders", retentionDuration="PT2H")
        )
        for name, sub in (("first", first), ("second", second)):
            await api.create(h.SUBSCRIPTIONS, namespace, h.subscription(name, "orders", sub.url))
        await api.create(
            h.SUBSCRIPTIONS, namespace,
            h.subscription("broken", "orders", broken.url, delivery=delivery),
        )  # fmt: skip
        kinds = ["KafkaChannel", "Subscription"]
        async with (
            c.running(api_client, namespace, kinds),
            h.running_data_plane(api_client) as plane,
        ):
            channel = await c.eventually(
                lambda: api.get(h.KAFKACHANNELS, namespace, "orders"), ready, within=90
            )
            for name in ("first", "second", "broken"):
                await c.eventually(
                    functools.partial(api.get, h.SUBSCRIPTIONS, namespace, name), ready
                )
            await waiting.until(lambda: len(plane.groups.running) == 3, within=30)
            url = h.channel_url(plane, namespace, "orders")
            for i in range(COUNT):
                assert (await d.post(url, d.event(f"o-{i}")))[0] == 202
            await api.create(h.SUBSCRIPTIONS, namespace, h.subscription("late", "orders", late.url))
            await c.eventually(
                functools.partial(api.get, h.SUBSCRIPTIONS, namespace, "late"), ready
            )
            await waiting.until(lambda: len(plane.groups.running) == 4, within=30)
            assert (await d.post(url, d.event("after")))[0] == 202
            await waiting.until(
                lambda: "after" in first.ids() and "after" in second.ids(), within=60
            )
            await waiting.until(lambda: late.ids() == ["after"], within=60)
            await waiting.until(lambda: len(dls.events) == COUNT + 1, within=60)
            assert topic in topics(kafka_broker)
            assert retention(kafka_broker, topic) == "7200000"
            await api.delete(h.KAFKACHANNELS, namespace, "orders")
            await c.eventually(
                lambda: api.get_or_none(h.KAFKACHANNELS, namespace, "orders"),
                lambda o: o is None, within=60,
            )  # fmt: skip
    expected = sorted([f"o-{i}" for i in range(COUNT)] + ["after"])
    assert sorted(first.ids()) == expected
    assert sorted(second.ids()) == expected
    assert broken.attempts == 2 * (COUNT + 1)
    dead = dls.events[0].get_attributes()
    assert dead["knativeerrorcode"] == "500"
    assert dead["knativeerrordest"] == broken.url
    assert channel["status"]["address"]["url"] == (
        f"http://orders-kn-channel.{namespace}.svc.cluster.local"
    )
    assert channel["status"]["annotations"]["default.topic"] == topic
    assert topic not in topics(kafka_broker)
