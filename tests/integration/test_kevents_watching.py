"""The one watch loop (`kevents.watching`, and the informer's caching mode on it) against the
real apiserver: 410 then a failing relist, resume after the watchdog without replays."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from kevents import informer, kubeapi, watching
from tests import waiting
from tests.integration import faultproxy
from tests.integration.faultproxy import Fault, Scripted

pytestmark = pytest.mark.cluster

CONFIGMAPS = kubeapi.Resource("", "v1", "configmaps")


LABELS = {"kevents.test/watched": "yes"}
"""Only the test's own ConfigMaps (not the namespace's kube-root-ca.crt)."""


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": LABELS},
        "data": data,
    }  # fmt: skip


async def test_a_relist_failing_twice_after_410_recovers_and_reports_the_difference(
    api_client: client.ApiClient, namespace: str
) -> None:
    admin = kubeapi.KubeApi(api_client)
    for name in ("change", "keep", "remove"):
        await admin.create(CONFIGMAPS, namespace, configmap(name, v="0"))

    async def while_the_watch_is_down() -> None:
        await admin.merge_patch(CONFIGMAPS, namespace, "change", {"data": {"v": "1"}})
        await admin.delete(CONFIGMAPS, namespace, "remove")
        await admin.create(CONFIGMAPS, namespace, configmap("new", v="0"))

    changes: list[tuple[str, str, object]] = []

    async def record(change: informer.Change, obj: dict[str, Any]) -> None:
        changes.append((change.value, obj["metadata"]["name"], obj.get("data")))

    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    registry = CollectorRegistry()
    async with faultproxy.serve(admin) as proxy, proxy.api_client() as through:
        proxy.watches.append(Scripted(Fault.GONE, before=while_the_watch_is_down))
        proxy.lists.extend(
            [Scripted(Fault.PASS), Scripted(Fault.UNAVAILABLE), Scripted(Fault.DROP)]
        )
        watch = informer.Informer(
            kubeapi.KubeApi(through),
            informer.Collection(
                "", "v1", "configmaps", "ConfigMap", namespace, "kevents.test/watched=yes"
            ),
            record,
            informer_metrics=informer.InformerMetrics(registry),
            initial=True,
            sleep=sleep,
        )
        task = asyncio.create_task(watch.run())
        try:
            await waiting.until(lambda: ("delete", "remove", {"v": "0"}) in changes or task.done())
            await admin.create(CONFIGMAPS, namespace, configmap("sentinel"))
            await waiting.until(lambda: any(c[1] == "sentinel" for c in changes) or task.done())
            assert not task.done(), f"run() ended: {task.exception()!r}"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert changes == [
        ("add", "change", {"v": "0"}),
        ("add", "keep", {"v": "0"}),
        ("add", "remove", {"v": "0"}),
        # the relist that finally succeeded, diffed against what was known
        ("update", "change", {"v": "1"}),
        ("add", "new", {"v": "0"}),
        ("delete", "remove", {"v": "0"}),
        # the watch resumed from the relist's resourceVersion
        ("add", "sentinel", None),
    ]
    assert proxy.served[:6] == [
        "list pass", "watch gone", "list unavailable", "list drop", "list pass", "watch pass",
    ]  # fmt: skip
    assert waits == [0.5, 1.0], "the 410 relists at once; each failed relist backs off"
    restarts = "kevents_watch_restarts_total"
    assert registry.get_sample_value(restarts, {"reason": "expired"}) == 1
    assert registry.get_sample_value(restarts, {"reason": "error"}) == 2


async def test_stateless_watch_resumes_after_the_watchdog_without_replay(
    api_client: client.ApiClient, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)
    seen: list[tuple[str, str]] = []
    restarts: list[str] = []
    watcher = watching.Watcher(
        api, CONFIGMAPS, lambda kind, obj: seen.append((kind, obj["metadata"]["name"])),
        namespace=namespace, label_selector="kevents.test/watched=yes",
        field_selector="metadata.name!=ignored",
        server_timeout=1, inactivity=0.3, on_restart=restarts.append,
    )  # fmt: skip
    await api.create(CONFIGMAPS, namespace, configmap("before"))
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.wait_started(), 10)
        assert ("ADDED", "before") in seen
        await waiting.until(lambda: restarts.count("inactive") >= 2)
        await api.create(CONFIGMAPS, namespace, configmap("ignored"))
        await api.create(CONFIGMAPS, namespace, configmap("after"))
        await waiting.until(lambda: ("ADDED", "after") in seen)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    names = [name for kind, name in seen if kind == "ADDED"]
    assert names == ["before", "after"]  # resumed from resourceVersion, never re-listed
    assert set(restarts) <= {"inactive", "ended"}
