"""The KafkaSink controller against the real apiserver, its loop running in-process: the
conditions a user reads when the broker, the Secret or the spec is wrong. With a real Kafka
(topic created, SASL accepted and refused): `test_kafkasink_kafka.py`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio import client

from controller.kafkasink import reconciler
from kevents import kubeapi
from tests.cluster import Kube
from tests.integration import controllers as c
from tests.integration import kafkasink_harness as h

pytestmark = pytest.mark.cluster


@pytest.fixture
def crd(kube: Kube) -> None:
    h.ensure_crd(kube)


def reached(kind: str, status: str, reason: str = "") -> Callable[[Any], bool]:
    def check(sink: Any) -> bool:
        found = c.condition(sink, kind)
        return bool(found.get("status") == status and (not reason or found["reason"] == reason))

    return check


async def deleted(api: kubeapi.KubeApi, namespace: str, name: str) -> None:
    """Delete while the controller runs, so its finalizer is removed (the namespace goes)."""
    await api.delete(h.KAFKASINKS, namespace, name)
    await c.eventually(
        lambda: api.get_or_none(h.KAFKASINKS, namespace, name), lambda obj: obj is None
    )


async def test_unreachable_broker_is_addressable_but_not_ready_with_the_reason(
    kube: Kube, crd: None, api_client: client.ApiClient, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    await h.create(
        api, namespace,
        h.kafkasink("down", "t", [h.closed_port()], numPartitions=1, replicationFactor=1),
    )  # fmt: skip
    async with c.running(api_client, namespace, ["KafkaSink"]):
        sink = await c.eventually(
            lambda: api.get(h.KAFKASINKS, namespace, "down"),
            reached("TopicReady", "False"),
            within=60,
        )
        printed = kube.kubectl("get", "kafkasinks", "-n", namespace).stdout
        await deleted(api, namespace, "down")
    url = f"http://kafka-sink-ingress.{namespace}.svc.cluster.local/{namespace}/down"
    assert sink["status"]["address"] == {"name": "http", "url": url}
    assert c.statuses(sink) == {
        "Addressable": "True",
        "ConfigParsed": "True",
        "DataPlaneAvailable": "False",  # no kafka-sink-ingress endpoints in this namespace
        "TopicReady": "False",
        "Ready": "False",
    }
    topic = c.condition(sink, "TopicReady")
    assert topic["reason"] == "BrokerUnreachable"
    assert topic["message"].startswith("topic 't': ")
    assert sink["metadata"]["finalizers"] == [reconciler.FINALIZER]
    assert printed.split("\n")[0].split() == ["NAME", "URL", "AGE", "READY", "REASON"]


async def test_secret_missing_then_invalid_is_config_parsed_false_naming_it(
    crd: None, api_client: client.ApiClient, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    auth = {"secret": {"ref": {"name": "creds"}}}
    await h.create(api, namespace, h.kafkasink("s", "t", [h.closed_port()], auth=auth))
    async with c.running(api_client, namespace, ["KafkaSink"]):
        sink = await c.eventually(
            lambda: api.get(h.KAFKASINKS, namespace, "s"),
            reached("ConfigParsed", "False", "SecretNotFound"),
        )
        assert c.condition(sink, "ConfigParsed")["message"] == (
            f'Secret "creds" in namespace "{namespace}" not found'
        )
        assert c.condition(sink, "Ready")["reason"] == "SecretNotFound"
        await h.create_secret(
            api, namespace, "creds",
            {"protocol": "SASL_PLAINTEXT", "user": "alice", "sasl.mechanism": "MD5"},
        )  # fmt: skip
        sink = await c.eventually(
            lambda: api.get(h.KAFKASINKS, namespace, "s"),
            reached("ConfigParsed", "False", "InvalidSecret"),
        )
        await deleted(api, namespace, "s")
    message = c.condition(sink, "ConfigParsed")["message"]
    assert "'sasl.mechanism': unsupported value" in message
    assert "'password' is required" in message
    assert "alice" not in message and "MD5" not in message  # keys named, never values


async def test_topic_and_partitions_are_immutable_as_knatives_webhook(
    kube: Kube, crd: None, namespace: str
) -> None:
    kube.apply(
        "apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata: {name: s}\n"
        "spec: {topic: t, bootstrapServers: ['k:9092'], numPartitions: 1}\n",
        namespace,
    )
    for patch in (
        '{"spec": {"topic": "other"}}',
        '{"spec": {"numPartitions": 2}}',
        '{"spec": {"replicationFactor": 1}}',
    ):
        refused = kube.kubectl(
            "patch", "kafkasink", "s", "-n", namespace, "--type=merge", "-p", patch, check=False
        )
        assert refused.returncode != 0
        assert "Immutable field updated" in refused.stderr
    written: Any = kube.get_json("-n", namespace, "kafkasink", "s")
    assert written["spec"]["contentMode"] == "binary"  # Knative's default
