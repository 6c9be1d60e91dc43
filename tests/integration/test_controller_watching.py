"""The controller's list+watch against the real apiserver: resume, watchdog, no replays."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes_asyncio import client

from controller import watching
from kevents import kubeapi
from tests.cluster import Kube

pytestmark = pytest.mark.cluster

CONFIGMAPS = kubeapi.Resource("", "v1", "configmaps")


async def test_watch_resumes_after_server_timeout_and_watchdog_without_replay(
    kube: Kube, api_client: client.ApiClient, namespace: str
) -> None:
    seen: list[tuple[str, str]] = []
    restarts: list[str] = []
    watcher = watching.Watcher(
        kubeapi.KubeApi(api_client), CONFIGMAPS,
        lambda kind, obj: seen.append((kind, obj["metadata"]["name"])),
        namespace=namespace, server_timeout=1, inactivity=0.5, on_restart=restarts.append,
    )  # fmt: skip
    kube.kubectl("create", "configmap", "before", "-n", namespace)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.wait_started(), 10)
        assert ("ADDED", "before") in seen
        await asyncio.sleep(2.5)  # several server-side ends and silent-watch reconnects
        assert "inactivity" in restarts
        kube.kubectl("create", "configmap", "after", "-n", namespace)
        for _ in range(100):
            if ("ADDED", "after") in seen:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    names = [name for kind, name in seen if kind == "ADDED"]
    assert names.count("after") == 1
    assert names.count("before") == 1  # resumed from resourceVersion, never re-listed
