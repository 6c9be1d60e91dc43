"""Helpers shared by the controller integration tests: run reconcilers in-process, poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from controller import context, manager
from controller.framework import metrics
from kevents import kubeapi, kubeevents
from tests import waiting

PING_IMAGE = "kevents/ping-source:test"


@contextlib.asynccontextmanager
async def running(
    api_client: client.ApiClient, namespace: str, kinds: Collection[str],
    system_namespace: str | None = None, config_recheck: float = 30.0,
    recorder: kubeevents.Recorder | None = None,
) -> AsyncIterator[manager.Manager]:  # fmt: skip
    """The given kinds' controllers, watching `namespace`, which is also the system namespace
    (where the dispatcher, the ping adapter and config-* are looked for) unless one is given."""
    options = context.Options(
        system_namespace=system_namespace or namespace,
        apiserver_adapter_image="kevents/apiserver-source:test",
        ping_adapter_image=PING_IMAGE, workers=2, namespace=namespace,
        config_recheck=config_recheck,
    )  # fmt: skip
    mgr = manager.Manager(
        kubeapi.KubeApi(api_client), metrics.ControllerMetrics(CollectorRegistry()), options,
        kinds=kinds, recorder=recorder,
    )  # fmt: skip
    task = asyncio.create_task(mgr.run())
    try:
        await asyncio.wait_for(mgr.wait_started(), 30)
        yield mgr
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def eventually(
    fetch: Callable[[], Any], check: Callable[[Any], bool], within: float = 30.0
) -> Any:
    """Poll `fetch()` (async, an object of the API: missing counts as not yet) until
    `check(value)`; fail with the last value seen."""
    return await waiting.fetched(
        fetch, check, within, "the expected state", ignore=(kubeapi.NotFound,)
    )


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return {}


def statuses(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}


DISPATCHER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: kevents-dispatcher}
spec:
  replicas: 0
  selector: {matchLabels: {app: fake-dispatcher}}
  template:
    metadata: {labels: {app: fake-dispatcher}}
    spec:
      containers: [{name: dispatcher, image: kevents/dispatcher:test}]
---
apiVersion: v1
kind: Service
metadata: {name: dispatcher}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: dispatcher-fake
  labels:
    kubernetes.io/service-name: dispatcher
    endpointslice.kubernetes.io/managed-by: kevents-tests
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: ["10.244.0.250"]
  conditions: {ready: true}
"""
"""A stand-in dispatcher: a Deployment with no replicas (kcm reports it Available), its
Service, and one ready endpoint written by hand. Nothing ever connects to it."""

SINK_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: event-display}
spec:
  selector: {app: event-display}
  ports: [{port: 80, targetPort: 8080}]
"""


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local"
