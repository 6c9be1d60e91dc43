"""Shared pieces of the Kafka Broker class tests: the config ConfigMap, a stand-in
`kafka-broker-ingress` endpoint for DataPlaneAvailable, and the data plane in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from dispatcher.kafkabroker import service
from dispatcher.kafkabroker import settings as broker_settings
from kevents import kubeapi, probes, runner
from tests import cluster, waiting

BROKERS = kubeapi.Resource("eventing.knative.dev", "v1", "brokers")
TRIGGERS = kubeapi.Resource("eventing.knative.dev", "v1", "triggers")
SECRETS = kubeapi.Resource("", "v1", "secrets")
CRDS = [cluster.REPO / "manifests" / f"300-{kind}.yaml" for kind in ("broker", "trigger")]
_crds: list[bool] = []

DATA_PLANE = """
apiVersion: v1
kind: Service
metadata: {name: kafka-broker-ingress}
spec:
  ports: [{name: http, port: 80, targetPort: 8000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kafka-broker-ingress-test
  labels:
    kubernetes.io/service-name: kafka-broker-ingress
    endpointslice.kubernetes.io/managed-by: kevents-tests
addressType: IPv4
ports: [{name: http, port: 8000, protocol: TCP}]
endpoints:
- addresses: ["10.244.0.251"]
  conditions: {ready: true}
"""
"""The data plane's Service with one ready endpoint written by hand (the test's in-process
data plane stands in for the pods; nothing connects to this address)."""


def ensure_crds(kube: cluster.Kube) -> None:
    if _crds:
        return
    for crd in CRDS:
        kube.kubectl("apply", "-f", str(crd))
    _crds.append(True)


def config_map(name: str, bootstrap: str, partitions: int = 3, **extra: str) -> str:
    data = {
        "bootstrap.servers": bootstrap,
        "default.topic.partitions": str(partitions),
        "default.topic.replication.factor": "1",
        **extra,
    }
    lines = "\n".join(f'  {k}: "{v}"' for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata:\n{lines}\n"


def broker(name: str, config: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "metadata": {"name": name, "annotations": {"eventing.knative.dev/broker.class": "Kafka"}},
        "spec": {"config": config, **spec},
    }


def trigger(
    name: str, broker_name: str, subscriber: str, *, order: str | None = None, **spec: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if order is not None:
        meta["annotations"] = {"kafka.eventing.knative.dev/delivery.order": order}
    return {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Trigger",
        "metadata": meta,
        "spec": {"broker": broker_name, "subscriber": {"uri": subscriber}, **spec},
    }


@contextlib.asynccontextmanager
async def running_data_plane(
    api_client: client.ApiClient, **env: str
) -> AsyncIterator[service.KafkaBrokerDataPlane]:
    """The Kafka Broker data plane in this process (127.0.0.1, random port); replies go to
    its own ingress."""
    readiness = probes.Readiness()
    config = broker_settings.KafkaBrokerSettings.from_env(
        {
            "KEVENTS_INGRESS_PORT": "0",
            "KEVENTS_CHANNEL_INGRESS_PORT": "0",
            "KEVENTS_INGRESS_HOST": "127.0.0.1",
            **env,
        }
    )
    plane = service.KafkaBrokerDataPlane(
        kubeapi.KubeApi(api_client), config, registry=CollectorRegistry(), readiness=readiness
    )
    run = runner.Runner(plane.components(), readiness=readiness, handle_signals=False, grace=10)
    task = asyncio.create_task(run.run())
    try:
        await waiting.until(lambda: readiness.ready or task.done())
        assert not task.done(), "the Kafka Broker data plane stopped while starting"
        plane.trigger_groups.reply_url = f"http://127.0.0.1:{plane.server.port}"
        yield plane
    finally:
        run.request_stop()
        assert await task == 0


def url(plane: service.KafkaBrokerDataPlane, namespace: str, name: str) -> str:
    return f"http://127.0.0.1:{plane.server.port}/{namespace}/{name}"


KAFKACHANNELS = kubeapi.Resource("messaging.knative.dev", "v1beta1", "kafkachannels")
SUBSCRIPTIONS = kubeapi.Resource("messaging.knative.dev", "v1", "subscriptions")
CHANNEL_CRDS = [
    cluster.REPO / "manifests" / f"300-{kind}.yaml" for kind in ("kafkachannel", "subscription")
]


def ensure_channel_crds(kube: cluster.Kube) -> None:
    for crd in CHANNEL_CRDS:
        kube.kubectl("apply", "-f", str(crd))
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/kafkachannels.messaging.knative.dev",
    )  # fmt: skip


def channel_config(bootstrap: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kafka-channel-config}\n"
        f'data:\n  bootstrap.servers: "{bootstrap}"\n'
    )


def kafkachannel(name: str, partitions: int = 3, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "messaging.knative.dev/v1beta1",
        "kind": "KafkaChannel",
        "metadata": {"name": name},
        "spec": {"numPartitions": partitions, "replicationFactor": 1, **spec},
    }


def subscription(name: str, channel: str, subscriber: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "messaging.knative.dev/v1",
        "kind": "Subscription",
        "metadata": {"name": name},
        "spec": {
            "channel": {"apiVersion": "messaging.knative.dev/v1beta1", "kind": "KafkaChannel",
                        "name": channel},
            "subscriber": {"uri": subscriber},
            **spec,
        },
    }  # fmt: skip


def channel_url(plane: service.KafkaBrokerDataPlane, namespace: str, name: str) -> str:
    return f"http://127.0.0.1:{plane.channel_server.port}/{namespace}/{name}"
