"""Shared pieces of the KafkaSink tests: the CRD, KafkaSink objects on the real API server,
and the KafkaSink ingress running in this process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import confluent_kafka
from kubernetes_asyncio import client
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from dispatcher.kafkasink import service
from dispatcher.kafkasink import settings as sink_settings
from kevents import kafka, kubeapi, probes, runner
from tests import cluster, waiting

CRD = cluster.REPO / "manifests" / "300-kafkasink.yaml"
KAFKASINKS = kubeapi.Resource("eventing.knative.dev", "v1alpha1", "kafkasinks")
SECRETS = kubeapi.Resource("", "v1", "secrets")
_crd_applied: list[bool] = []


def ensure_crd(kube: cluster.Kube) -> None:
    """Apply the KafkaSink CRD once per session and wait until it is served."""
    if _crd_applied:
        return
    kube.kubectl("apply", "-f", str(CRD))
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/kafkasinks.eventing.knative.dev",
    )  # fmt: skip
    _crd_applied.append(True)


def closed_port() -> str:
    """`127.0.0.1:<port>` where nothing listens (bound, then released): a Kafka that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def kafkasink(name: str, topic: str, servers: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "KafkaSink",
        "metadata": {"name": name},
        "spec": {"topic": topic, "bootstrapServers": servers, **spec},
    }


async def create(api: kubeapi.KubeApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return await api.create(KAFKASINKS, namespace, body)


async def create_secret(
    api: kubeapi.KubeApi, namespace: str, name: str, data: dict[str, str]
) -> None:
    await api.create(
        SECRETS, namespace, {"apiVersion": "v1", "kind": "Secret",
                             "metadata": {"name": name}, "stringData": data},
    )  # fmt: skip


@contextlib.asynccontextmanager
async def running_ingress(
    api_client: client.ApiClient,
    *,
    registry: CollectorRegistry | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    **env: str,
) -> AsyncIterator[service.KafkaSinkIngress]:
    """A KafkaSink ingress in this process (127.0.0.1, random port), stopped after."""
    readiness = probes.Readiness()
    config = sink_settings.KafkaSinkSettings.from_env(
        {"KEVENTS_INGRESS_PORT": "0", "KEVENTS_INGRESS_HOST": "127.0.0.1", **env}
    )
    ingress = service.KafkaSinkIngress(
        kubeapi.KubeApi(api_client),
        config,
        registry=registry if registry is not None else CollectorRegistry(),
        readiness=readiness,
        tracer_provider=tracer_provider,
    )
    run = runner.Runner(ingress.components(), readiness=readiness, handle_signals=False, grace=10)
    task = asyncio.create_task(run.run())
    try:
        await waiting.until(lambda: readiness.ready or task.done())
        assert not task.done(), "the KafkaSink ingress stopped while starting"
        yield ingress
    finally:
        run.request_stop()
        assert await task == 0


async def served(ingress: service.KafkaSinkIngress, namespace: str, name: str) -> None:
    await waiting.until(lambda: (namespace, name) in ingress.table.sinks)


def url(ingress: service.KafkaSinkIngress, namespace: str, name: str) -> str:
    return f"http://127.0.0.1:{ingress.server.port}/{namespace}/{name}"


async def read_records(
    bootstrap: str, topic: str, count: int, *, within: float = 30.0
) -> list[kafka.Record]:
    """The first `count` records of `topic`, read from the start by a fresh consumer group."""
    records: list[kafka.Record] = []
    config = kafka.client_config(bootstrap)
    group = f"kafkasink-test-{uuid.uuid4().hex[:8]}"
    async with kafka.Consumer(config, group_id=group, topics=[topic]) as consumer:
        async with asyncio.timeout(within):
            while len(records) < count:
                records += await consumer.poll(wait=0.5)
    return records


def header_map(record: kafka.Record) -> dict[str, bytes]:
    return dict(record.headers)


def end_offset(bootstrap: str, topic: str, partition: int = 0) -> int:
    """The partition's end offset as the broker has it now (asked, not cached): how many
    records are stored in a fresh single-partition topic."""
    config = {**kafka.client_config(bootstrap), "group.id": f"probe-{uuid.uuid4().hex[:8]}"}
    consumer = confluent_kafka.Consumer(config)
    try:
        _, high = consumer.get_watermark_offsets(
            confluent_kafka.TopicPartition(topic, partition), timeout=10, cached=False
        )
    finally:
        consumer.close()
    return int(high)
