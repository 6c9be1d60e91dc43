"""The KafkaSink ingress in this process against the real API server: what a producer is
answered before and without Kafka (routing, bad events, a Kafka that is down, a missing
Secret). What reaches a real Kafka is in `test_kafkasink_kafka.py`."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from kevents import kubeapi
from tests import waiting
from tests.cluster import Kube
from tests.integration import kafkasink_harness as h
from tests.integration.dispatcher_harness import event, post

pytestmark = pytest.mark.cluster


@pytest.fixture
def crd(kube: Kube) -> None:
    h.ensure_crd(kube)


async def test_routing_answers(crd: None, api_client: client.ApiClient, namespace: str) -> None:
    api = kubeapi.KubeApi(api_client)
    await h.create(api, namespace, h.kafkasink("known", "t", [h.closed_port()]))
    async with h.running_ingress(api_client) as ingress:
        await h.served(ingress, namespace, "known")
        base = f"http://127.0.0.1:{ingress.server.port}"
        status, text, _ = await post(f"{base}/{namespace}/missing", event())
        assert (status, text) == (404, f"KafkaSink {namespace}/missing not found\n")
        assert (await post(f"{base}/", event()))[0] == 404
        assert (await post(f"{base}/{namespace}/known/extra", event()))[0] == 400
        status, _, headers = await post(h.url(ingress, namespace, "known"), method="GET")
        assert (status, headers["Allow"]) == (405, "POST")
        status, text, _ = await post(
            h.url(ingress, namespace, "known"),
            headers={"ce-specversion": "1.0", "ce-id": "x", "ce-source": "/s"},
            body=b"{}",
        )
        assert status == 400 and text.startswith("invalid CloudEvent: ")


async def test_kafka_down_is_503_and_nothing_is_accepted(
    crd: None, api_client: client.ApiClient, namespace: str
) -> None:
    """Nothing listens at the bootstrap address: after the produce timeout the producer is
    told 503 with Retry-After (retry later), never 202, and the metric says why."""
    api = kubeapi.KubeApi(api_client)
    await h.create(api, namespace, h.kafkasink("down", "t", [h.closed_port()]))
    registry = CollectorRegistry()
    async with h.running_ingress(
        api_client, registry=registry, KEVENTS_PRODUCE_TIMEOUT="2"
    ) as ingress:
        await h.served(ingress, namespace, "down")
        status, text, headers = await post(h.url(ingress, namespace, "down"), event())
    assert status == 503, text
    assert headers["Retry-After"] == "1"
    assert "not stored" in text or "did not acknowledge" in text
    failed = sum(
        registry.get_sample_value("kevents_kafkasink_records_out_total", {"result": r}) or 0.0
        for r in ("unreachable", "timeout")
    )
    assert failed == 1.0
    assert (
        registry.get_sample_value("kevents_kafkasink_records_out_total", {"result": "stored"})
        is None
    )


async def test_missing_or_bad_secret_is_503_naming_it(
    crd: None, api_client: client.ApiClient, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    auth = {"auth": {"secret": {"ref": {"name": "creds"}}}}
    await h.create(api, namespace, h.kafkasink("s", "t", [h.closed_port()], **auth))
    async with h.running_ingress(api_client) as ingress:
        await h.served(ingress, namespace, "s")
        status, text, _ = await post(h.url(ingress, namespace, "s"), event(), structured=True)
        assert status == 503
        assert f'Secret "creds" of KafkaSink {namespace}/s not found' in text
    await h.create_secret(api, namespace, "creds2", {"protocol": "SASL_PLAINTEXT", "user": "u"})
    await h.create(
        api, namespace,
        h.kafkasink("s2", "t", [h.closed_port()], auth={"secret": {"ref": {"name": "creds2"}}}),
    )  # fmt: skip
    async with h.running_ingress(api_client) as ingress:
        await h.served(ingress, namespace, "s2")
        status, text, _ = await post(h.url(ingress, namespace, "s2"), event())
    assert status == 503
    assert "'password' is required" in text


async def test_deleted_sink_is_404(crd: None, api_client: client.ApiClient, namespace: str) -> None:
    api = kubeapi.KubeApi(api_client)
    await h.create(api, namespace, h.kafkasink("gone", "t", [h.closed_port()]))
    async with h.running_ingress(api_client) as ingress:
        await h.served(ingress, namespace, "gone")
        await api.delete(h.KAFKASINKS, namespace, "gone")
        await waiting.until(lambda: (namespace, "gone") not in ingress.table.sinks)
        status, _, _ = await post(h.url(ingress, namespace, "gone"), event())
    assert status == 404
