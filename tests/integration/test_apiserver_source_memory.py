"""The ApiServerSource adapter remembers per watched object only what tells add, update and
delete apart (issue 24 point 3), not the object: its memory does not grow with the size of
the objects it watches, and it still emits every change whole, a delete found by a relist
included."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import pytest
from kubernetes_asyncio import client

from hack import processes
from tests import cluster
from tests.integration import test_apiserver_source as base
from tests.integration import test_apiserver_source_process as process

pytestmark = pytest.mark.cluster

OBJECTS = 128
BLOB = 256 * 1024
"""128 ConfigMaps of 256 KiB: 32 MiB of data that an adapter caching whole objects holds."""


async def test_adapter_memory_does_not_grow_with_the_size_of_watched_objects(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    async with base.serve_sink(base.Sink()) as sink:
        env = process._env(
            kube,
            K_SINK=sink.url,
            K_SOURCE_CONFIG=process._source_config(namespace),
            NAMESPACE=namespace,
            KEVENTS_LOG_LEVEL="WARNING",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sources.apiserver", env=env
        )
        try:
            probes = f"http://127.0.0.1:{env['KEVENTS_PROBES_PORT']}/readiness"
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    try:
                        async with http.get(probes) as answer:
                            if answer.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the adapter never became ready")
            await base._sentinel(core, sink, namespace)
            idle = processes.rss_mib(proc.pid)
            # one at a time, each delivered before the next: only the cache can hold them
            for i in range(OBJECTS):
                body = client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name=f"big-{i}"), data={"blob": "x" * BLOB}
                )
                await core.create_namespaced_config_map(namespace, body)
                await sink.wait_for(lambda i=i: bool(sink.of(f"big-{i}")))  # type: ignore[misc]
            grown = processes.rss_mib(proc.pid) - idle
        finally:
            proc.terminate()
            await proc.wait()
    assert all(len(data["data"]["blob"]) == BLOB for _, data in sink.of("big-0"))
    watched = OBJECTS * BLOB / 2**20
    assert grown < watched / 2, f"RSS grew {grown:.1f} MiB watching {watched:.0f} MiB of objects"


async def test_a_relist_tells_updates_and_deletes_apart_from_identities(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    for i in range(3):
        await core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"big-{i}"), data={"b": "x" * 4096}
            ),
        )
    async with (
        base.serve_sink(base.Sink()) as sink,
        base.running_adapter(api_client, sink.url, base._config(namespace), namespace) as receive,
    ):
        watcher = receive.watchers[0]
        # history expired (410): the relist compares what it lists with what was remembered
        watcher.relist()
        await core.patch_namespaced_config_map("big-0", namespace, {"data": {"b": "y"}})
        await core.delete_namespaced_config_map("big-1", namespace)
        await base._sentinel(core, sink, namespace)
    assert [(t, d["data"]) for t, d in sink.of("big-0")] == [
        ("dev.knative.apiserver.resource.update", {"b": "y"})
    ]
    deleted = sink.of("big-1")
    assert [t for t, _ in deleted] == ["dev.knative.apiserver.resource.delete"]
    meta = deleted[0][1]["metadata"]
    assert (meta["name"], meta["namespace"], bool(meta["uid"])) == ("big-1", namespace, True)
    assert sink.of("big-2") == []
