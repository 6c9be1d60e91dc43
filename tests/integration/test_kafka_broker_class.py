"""Broker class Kafka against the real apiserver and the local cluster's real Kafka: the
controller (Broker, KafkaBroker and Trigger kinds) and the data plane
(`dispatcher.kafkabroker`) both running in this process.

What a user notices: the Broker's topic `knative-broker-NS-NAME` with the config's
partitions, Ready with its ingress address; events POSTed to it answered 202 once Kafka has
them; each Trigger's filter (type + source) choosing exactly its events; a subscriber that
answers 500 retried per the delivery spec, then the dead letter sink getting the event with
Knative's error extensions; a reply going back through the ingress to a second Trigger; a
misnamed config ConfigMap making the Broker Ready False naming it; the topic deleted with the
Broker.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import textwrap

import confluent_kafka.admin as ck_admin
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

KINDS = ["Broker", "KafkaBroker", "Trigger"]
COUNT = 30


@pytest.fixture(autouse=True)
def _crds(kube: Kube) -> None:
    h.ensure_crds(kube)


def ready(obj: dict[str, object]) -> bool:
    return c.condition(obj, "Ready").get("status") == "True"


async def topic_partitions(kafka_broker: KafkaBroker, topic: str) -> int | None:
    """The topic's partition count as Kafka reports it; None when it does not exist."""
    admin = ck_admin.AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    meta = await asyncio.to_thread(admin.list_topics, timeout=10)
    found = meta.topics.get(topic)
    return None if found is None or found.error is not None else len(found.partitions)


async def test_kafka_broker_filters_retries_dead_letters_replies_and_deletes_its_topic(
    kube: Kube, api_client: client.ApiClient, namespace: str, kafka_broker: KafkaBroker
) -> None:
    api = kubeapi.KubeApi(api_client)

    async def failing(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        return web.Response(status=500, text="subscriber broken")

    async def replying(request: web.Request, event: cloudevent.CloudEvent) -> web.Response:
        reply = cloudevent.build(
            "dev.example.reply", "/replier", {"to": event.get_id()}, id=f"re-{event.get_id()}",
            datacontenttype="application/json",
        )  # fmt: skip
        message = cloudevent.encode(reply)
        return web.Response(status=200, body=message.body, headers=dict(message.headers))

    matching, other, broken, dls = (
        d.Subscriber(),
        d.Subscriber(),
        d.Subscriber(failing),
        d.Subscriber(),
    )
    replier, replies = d.Subscriber(replying), d.Subscriber()
    kube.apply(h.config_map("kafka-broker-config", kafka_broker.bootstrap, 3), namespace)
    kube.apply(h.DATA_PLANE, namespace)
    config = {"apiVersion": "v1", "kind": "ConfigMap", "name": "kafka-broker-config",
              "namespace": namespace}  # fmt: skip
    topic = f"knative-broker-{namespace}-kb"
    async with d.serving(matching, other, broken, dls, replier, replies):
        await api.create(h.BROKERS, namespace, h.broker("kb", config))
        exact = {"type": "dev.example.test", "source": "/tests/dispatcher"}
        delivery = {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.05S",
                    "deadLetterSink": {"uri": dls.url}}  # fmt: skip

        def only(**attributes: str) -> dict[str, object]:
            return {"attributes": attributes}

        for body in (
            h.trigger("matching", "kb", matching.url, order="ordered", filter=only(**exact)),
            h.trigger("other", "kb", other.url, filter=only(type="dev.example.other")),
            h.trigger("broken", "kb", broken.url, filter=only(**exact), delivery=delivery),
            h.trigger("replier", "kb", replier.url, filter=only(source="/replier-in")),
            h.trigger("replies", "kb", replies.url, filter=only(type="dev.example.reply")),
        ):
            await api.create(h.TRIGGERS, namespace, body)
        async with (
            c.running(api_client, namespace, KINDS),
            h.running_data_plane(api_client) as plane,
        ):
            broker = await c.eventually(
                lambda: api.get(h.BROKERS, namespace, "kb"), ready, within=90
            )
            for name in ("matching", "other", "broken", "replier", "replies"):
                await c.eventually(functools.partial(api.get, h.TRIGGERS, namespace, name), ready)
            await waiting.until(lambda: len(plane.groups.running) == 5, within=30)
            assert await topic_partitions(kafka_broker, topic) == 3
            assigned = "kevents_kafka_dispatcher_assigned_partitions"
            await waiting.until(  # every Trigger's group owns the 3 partitions here
                lambda: plane.registry.get_sample_value(assigned, {"kind": "trigger"}) == 15
            )
            ingress = h.url(plane, namespace, "kb")
            for i in range(COUNT):
                assert (await d.post(ingress, d.event(f"m-{i}")))[0] == 202
            assert (await d.post(ingress, d.event("x-1")))[0] == 202
            other_event = cloudevent.build("dev.example.other", "/elsewhere", None, id="o-1")
            assert (await d.post(ingress, other_event))[0] == 202
            ask = cloudevent.build("dev.example.ask", "/replier-in", None, id="ask-1")
            assert (await d.post(ingress, ask))[0] == 202
            await waiting.until(lambda: len(matching.events) >= COUNT + 1, within=60)
            await waiting.until(lambda: len(dls.events) >= COUNT + 1, within=60)
            await waiting.until(lambda: replies.ids() == ["re-ask-1"], within=60)
            await waiting.until(lambda: other.ids() == ["o-1"], within=60)
            assert (
                await d.post(f"http://127.0.0.1:{plane.server.port}/{namespace}/nope", d.event())
            )[0] == 404

            await api.delete(h.BROKERS, namespace, "kb")
            await c.eventually(
                lambda: api.get_or_none(h.BROKERS, namespace, "kb"), lambda o: o is None, within=60
            )
    # every matching event once; nothing of another type or source
    assert sorted(matching.ids()) == sorted([f"m-{i}" for i in range(COUNT)] + ["x-1"])
    assert broker["status"]["address"]["url"] == (
        f"http://kafka-broker-ingress.{namespace}.svc.cluster.local/{namespace}/kb"
    )
    assert broker["status"]["annotations"]["default.topic"] == topic
    assert c.statuses(broker)["TopicReady"] == "True"
    # 3 attempts (retry: 2) for each event, then the dead letter sink with the extensions
    assert broken.attempts == 3 * (COUNT + 1)
    dead = {e.get_id(): e.get_attributes() for e in dls.events}
    assert set(dead) == {f"m-{i}" for i in range(COUNT)} | {"x-1"}
    assert dead["m-0"]["knativeerrordest"] == broken.url
    assert dead["m-0"]["knativeerrorcode"] == "500"
    assert base64.b64decode(dead["m-0"]["knativeerrordata"]) == b"subscriber broken"
    assert replier.ids() == ["ask-1"]
    assert await topic_partitions(kafka_broker, topic) is None  # deleted with the Broker


async def test_misnamed_config_map_makes_the_broker_not_ready_naming_it(
    kube: Kube, api_client: client.ApiClient, namespace: str, kafka_broker: KafkaBroker
) -> None:
    api = kubeapi.KubeApi(api_client)
    # the tutorial's mistake: the ConfigMap exists under another name than the Broker names
    kube.apply(h.config_map("kafka-broker-configuration", kafka_broker.bootstrap), namespace)
    config = {"apiVersion": "v1", "kind": "ConfigMap", "name": "kafka-broker-config",
              "namespace": "knative-eventing"}  # fmt: skip
    await api.create(h.BROKERS, namespace, h.broker("tutorial", config))
    async with c.running(api_client, namespace, KINDS):
        broker = await c.eventually(
            lambda: api.get(h.BROKERS, namespace, "tutorial"),
            lambda b: (
                c.condition(b, "Ready").get("status") == "False"
                and c.condition(b, "ConfigParsed").get("status") == "False"
            ),
        )
        await api.delete(h.BROKERS, namespace, "tutorial")
        await c.eventually(
            lambda: api.get_or_none(h.BROKERS, namespace, "tutorial"), lambda o: o is None
        )
    parsed = c.condition(broker, "ConfigParsed")
    assert parsed["reason"] == "ConfigMapNotFound"
    assert "kafka-broker-config" in parsed["message"]
    assert c.condition(broker, "Ready")["message"] == parsed["message"]


async def test_config_br_defaults_make_a_bare_broker_a_kafka_broker(
    kube: Kube, api_client: client.ApiClient, namespace: str, kafka_broker: KafkaBroker
) -> None:
    api = kubeapi.KubeApi(api_client)
    kube.apply(h.config_map("kafka-broker-config", kafka_broker.bootstrap, 2), namespace)
    kube.apply(h.DATA_PLANE, namespace)
    defaults = (
        "clusterDefault:\n  brokerClass: MTChannelBasedBroker\n"
        "namespaceDefaults:\n"
        f"  {namespace}:\n    brokerClass: Kafka\n    apiVersion: v1\n    kind: ConfigMap\n"
        f"    name: kafka-broker-config\n    namespace: {namespace}\n"
        "    delivery: {retry: 4, backoffPolicy: exponential, backoffDelay: PT0.2S}\n"
    )
    kube.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-br-defaults}\n"
        f"data:\n  default-br-config: |\n{textwrap.indent(defaults, '    ')}",
        namespace,
    )
    bare = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {"name": "default"}}  # fmt: skip
    await api.create(h.BROKERS, namespace, bare)
    async with c.running(api_client, namespace, KINDS):
        broker = await c.eventually(
            lambda: api.get(h.BROKERS, namespace, "default"), ready, within=90
        )
        await api.delete(h.BROKERS, namespace, "default")
        await c.eventually(
            lambda: api.get_or_none(h.BROKERS, namespace, "default"), lambda o: o is None
        )
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    assert broker["spec"]["config"] == {
        "apiVersion": "v1", "kind": "ConfigMap", "name": "kafka-broker-config",
        "namespace": namespace,
    }  # fmt: skip
    assert broker["spec"]["delivery"]["retry"] == 4
    assert broker["status"]["annotations"]["default.topic"] == f"knative-broker-{namespace}-default"


async def test_a_sasl_config_secret_authenticates_and_a_wrong_password_says_so(
    kube: Kube, api_client: client.ApiClient, namespace: str, kafka_broker: KafkaBroker
) -> None:
    api = kubeapi.KubeApi(api_client)
    subscriber = d.Subscriber()
    good, bad = kafka_broker.secret_data(), {**kafka_broker.secret_data(), "password": "nope"}
    for name, data in (("creds", good), ("wrong", bad)):
        await api.create(
            h.SECRETS, namespace,
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data},
        )  # fmt: skip
        kube.apply(
            h.config_map(f"config-{name}", kafka_broker.sasl_bootstrap, 1,
                         **{"auth.secret.ref.name": name}),
            namespace,
        )  # fmt: skip
    kube.apply(h.DATA_PLANE, namespace)

    def config(name: str) -> dict[str, str]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "name": f"config-{name}",
                "namespace": namespace}  # fmt: skip

    async with d.serving(subscriber):
        await api.create(h.BROKERS, namespace, h.broker("sasl", config("creds")))
        await api.create(h.BROKERS, namespace, h.broker("refused", config("wrong")))
        await api.create(h.TRIGGERS, namespace, h.trigger("all", "sasl", subscriber.url))
        async with (
            c.running(api_client, namespace, KINDS),
            h.running_data_plane(api_client) as plane,
        ):
            await c.eventually(lambda: api.get(h.BROKERS, namespace, "sasl"), ready, within=90)
            await c.eventually(lambda: api.get(h.TRIGGERS, namespace, "all"), ready)
            refused = await c.eventually(
                lambda: api.get(h.BROKERS, namespace, "refused"),
                lambda b: c.condition(b, "TopicReady").get("status") == "False",
                within=90,
            )
            await waiting.until(lambda: len(plane.groups.running) == 1, within=30)
            assert (await d.post(h.url(plane, namespace, "sasl"), d.event("s-1")))[0] == 202
            await waiting.until(lambda: subscriber.ids() == ["s-1"], within=60)
            for name in ("sasl", "refused"):
                await api.delete(h.BROKERS, namespace, name)
                await c.eventually(
                    functools.partial(api.get_or_none, h.BROKERS, namespace, name),
                    lambda o: o is None, within=60,
                )  # fmt: skip
    topic = c.condition(refused, "TopicReady")
    assert topic["reason"] == "AuthenticationFailed"
    assert "Authentication failed" in topic["message"]
    assert "nope" not in topic["message"]
