"""Changes made while the ApiServerSource adapter is down are delivered after its restart.

A real adapter process against the real API server, stopped with SIGTERM or kill -9, while
ConfigMaps are created, changed and deleted; restarted, it delivers each of those changes
exactly once (Knative's adapter misses all of them). A checkpoint moved out of the watch
window (410) yields the difference instead, counted as unrecoverable.

Which resourceVersion the API server refuses as too old depends on the cluster's age: a
fresh apiserver's watch cache starts near resourceVersion 1 and replays everything since, so
no saved position is reliably "past the window". The expired case therefore puts the fault
proxy (`tests/integration/faultproxy.py`) between the adapter and the real apiserver and
answers the resumed watch with the apiserver's own 410 `ERROR` event.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from kubernetes_asyncio import client

from kevents import kubeapi
from sources.apiserver import checkpoint
from tests import cluster
from tests.integration import faultproxy
from tests.integration import test_apiserver_source as harness
from tests.integration import test_apiserver_source_process as proc_harness

pytestmark = pytest.mark.cluster

LABEL = "kevents-test-restart"


def _config(namespace: str) -> str:
    return json.dumps(
        {
            "namespaces": [namespace],
            "resources": [
                {
                    "gvr": {"Group": "", "Version": "v1", "Resource": "configmaps"},
                    "selector": f"{LABEL}=yes",
                }
            ],
            "mode": "Resource",
        }
    )


class Adapter:
    """One adapter process at a time, same name and settings on every start."""

    def __init__(
        self, kube: cluster.Kube, namespace: str, sink_url: str, kubeconfig: Path | None = None
    ) -> None:
        self.env = proc_harness._env(
            kube, K_SINK=sink_url, K_SOURCE_CONFIG=_config(namespace), NAMESPACE=namespace,
            NAME="restarted", KEVENTS_CHECKPOINT_SECONDS="0.2",
        )  # fmt: skip
        if kubeconfig is not None:
            self.env["KUBECONFIG"] = str(kubeconfig)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sources.apiserver", env=self.env
        )
        probes = f"http://127.0.0.1:{self.env['KEVENTS_PROBES_PORT']}/readiness"
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(probes) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert self.proc.returncode is None, "the adapter exited"
                await asyncio.sleep(0.1)
        raise AssertionError("the adapter never became ready")

    async def metric(self, name: str, labels: str = "") -> float:
        url = f"http://127.0.0.1:{self.env['METRICS_PROMETHEUS_PORT']}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith(name + labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    async def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), timeout=30)

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def sink() -> AsyncIterator[harness.Sink]:
    async with harness.serve_sink(harness.Sink()) as running:
        yield running


@pytest.fixture
async def proxy(api_client: client.ApiClient) -> AsyncIterator[faultproxy.FaultProxy]:
    async with faultproxy.serve(kubeapi.KubeApi(api_client)) as running:
        yield running


def _kubeconfig_of(proxy: faultproxy.FaultProxy, path: Path) -> Path:
    """A kubeconfig that sends the adapter through the proxy (plain HTTP, loopback)."""
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "proxy",
        "clusters": [{"name": "proxy", "cluster": {"server": proxy.url}}],
        "users": [{"name": "proxy", "user": {}}],
        "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}],
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def _cm(name: str, value: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={LABEL: "yes"}), data={"v": value}
    )


def _deliveries(sink: harness.Sink) -> collections.Counter[tuple[str, str, str]]:
    """(type, name, data.v) of every delivered event: a duplicate counts twice."""
    out: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for event in sink.events:
        data = event.get_data()
        value = str(((data or {}).get("data") or {}).get("v", "")) if isinstance(data, dict) else ""
        out[(event.get_type().rsplit(".", 1)[1], str(event.get_extension("name")), value)] += 1
    return out


async def _saved_rv(core: client.CoreV1Api, namespace: str) -> int:
    try:
        cm = await core.read_namespaced_config_map(
            checkpoint.configmap_name("restarted"), namespace
        )
    except client.ApiException:
        return 0
    doc = json.loads((cm.data or {}).get(checkpoint.KEY) or "{}")
    entries = list((doc.get("collections") or {}).values())
    return int(entries[0]["resourceVersion"]) if entries else 0


async def _until_saved(core: client.CoreV1Api, namespace: str, target: int) -> None:
    """Wait until the adapter's checkpoint covers resourceVersion `target`."""
    for _ in range(200):
        if await _saved_rv(core, namespace) >= target:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the checkpoint never reached resourceVersion {target}")


async def _changes_while_down(core: client.CoreV1Api, namespace: str) -> set[tuple[str, str, str]]:
    """Creates, updates and deletes made while the adapter is down; what must be delivered."""
    expected: set[tuple[str, str, str]] = set()
    for i in range(20):
        await core.create_namespaced_config_map(namespace, _cm(f"new-{i}", "1"))
        expected.add(("add", f"new-{i}", "1"))
    for i in range(5):
        await core.patch_namespaced_config_map(f"old-{i}", namespace, {"data": {"v": "2"}})
        expected.add(("update", f"old-{i}", "2"))
    for i in range(5, 10):
        await core.delete_namespaced_config_map(f"old-{i}", namespace)
        expected.add(("delete", f"old-{i}", "1"))
    await core.patch_namespaced_config_map("new-0", namespace, {"data": {"v": "3"}})
    expected.add(("update", "new-0", "3"))
    return expected


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_changes_made_while_the_adapter_is_down_are_delivered_exactly_once(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str, sink: harness.Sink,
    stop_signal: int,
) -> None:  # fmt: skip
    core = client.CoreV1Api(api_client)
    running = Adapter(kube, namespace, sink.url)
    try:
        await running.start()
        before: set[tuple[str, str, str]] = set()
        last = None
        for i in range(10):
            last = await core.create_namespaced_config_map(namespace, _cm(f"old-{i}", "1"))
            before.add(("add", f"old-{i}", "1"))
        await sink.wait_for(lambda: set(_deliveries(sink)) >= before)
        # kill -9 loses what the checkpoint has not saved yet: let it save the last delivery
        assert last is not None
        await _until_saved(core, namespace, int(last.metadata.resource_version))
        assert await running.stop(stop_signal) == (0 if stop_signal == signal.SIGTERM else -9)

        expected = await _changes_while_down(core, namespace)
        await running.start()
        await core.create_namespaced_config_map(namespace, _cm("sentinel", "1"))
        expected.add(("add", "sentinel", "1"))
        await sink.wait_for(lambda: set(_deliveries(sink)) >= before | expected)
        assert await running.stop(signal.SIGTERM) == 0  # drained: nothing more can arrive
        assert _deliveries(sink) == collections.Counter(before | expected)
    finally:
        await running.close()


async def test_a_checkpoint_past_the_watch_window_yields_the_difference_and_is_counted(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str, sink: harness.Sink,
    proxy: faultproxy.FaultProxy, tmp_path: Path,
) -> None:  # fmt: skip
    core = client.CoreV1Api(api_client)
    running = Adapter(kube, namespace, sink.url, _kubeconfig_of(proxy, tmp_path / "kubeconfig"))
    try:
        await running.start()
        last = None
        for i in range(10):
            last = await core.create_namespaced_config_map(namespace, _cm(f"old-{i}", "1"))
        await sink.wait_for(lambda: len(sink.events) >= 10)
        assert last is not None
        await _until_saved(core, namespace, int(last.metadata.resource_version))
        assert await running.stop(signal.SIGTERM) == 0
        delivered_before = _deliveries(sink)

        expected = await _changes_while_down(core, namespace)
        # the saved position has left the watch window: the resumed watch answers 410 Gone
        proxy.served.clear()
        proxy.watches.append(faultproxy.Scripted(faultproxy.Fault.GONE))
        await running.start()
        await core.create_namespaced_config_map(namespace, _cm("sentinel", "1"))
        expected.add(("add", "sentinel", "1"))
        # new-0 was created then changed while down: one add with its latest state
        expected -= {("add", "new-0", "1"), ("update", "new-0", "3")}
        expected.add(("add", "new-0", "3"))
        # a delete found by the difference carries the saved identity, not the last state
        for i in range(5, 10):
            expected.remove(("delete", f"old-{i}", "1"))
            expected.add(("delete", f"old-{i}", ""))
        await sink.wait_for(lambda: set(_deliveries(sink)) >= set(delivered_before) | expected)
        assert await running.metric(
            "kevents_apiserver_unrecoverable_total", '{reason="expired"}'
        ) == 1  # fmt: skip
        assert await running.stop(signal.SIGTERM) == 0
        assert _deliveries(sink) == delivered_before + collections.Counter(expected)
        # the resumed watch (the first after the restart) was the one answered 410
        assert [line for line in proxy.served if line.startswith("watch")][0] == "watch gone"
    finally:
        await running.close()
