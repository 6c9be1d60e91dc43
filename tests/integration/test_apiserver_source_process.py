"""`python -m sources.apiserver` as a process: bad config, probes, metrics, SIGTERM drain."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from kubernetes_asyncio import client

from kevents import cloudevent
from tests import cluster

pytestmark = pytest.mark.cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(kube: cluster.Kube, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K_", "KUBERNETES_"))}
    env.update(
        KUBECONFIG=str(kube.kubeconfig),
        NAMESPACE="default",
        METRICS_PROMETHEUS_PORT=str(_free_port()),
        KEVENTS_PROBES_PORT=str(_free_port()),
        KEVENTS_LOG_FORMAT="text",
    )
    env.update(values)
    return env


def _source_config(namespace: str) -> str:
    return json.dumps(
        {
            "namespaces": [namespace],
            "resources": [{"gvr": {"Group": "", "Version": "v1", "Resource": "configmaps"}}],
            "mode": "Resource",
        }
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"K_SOURCE_CONFIG": "{not json"}, "K_SOURCE_CONFIG is not valid JSON"),
        (
            {"K_SOURCE_CONFIG": '{"allNamespaces": true, "resources": []}'},
            "K_SOURCE_CONFIG: resources must be a non-empty list",
        ),
        (
            {
                "K_SOURCE_CONFIG": json.dumps(
                    {
                        "allNamespaces": True,
                        "resources": [
                            {
                                "gvr": {"Group": "", "Version": "v1", "Resource": "pods"},
                                "selector": "app in (a,",
                            }
                        ],
                    }
                )
            },
            "malformed requirement",
        ),
        (
            {
                "K_SOURCE_CONFIG": json.dumps(
                    {
                        "allNamespaces": True,
                        "resources": [
                            {"gvr": {"Group": "", "Version": "v1", "Resource": "gizmos"}}
                        ],
                    }
                )
            },
            "the API server has no resource gizmos/v1",
        ),
        ({"K_SINK": "not a url", "METRICS_PROMETHEUS_PORT": "80"}, "K_SINK"),
    ],
    ids=["unparsable-json", "no-resources", "malformed-selector", "unknown-resource", "bad-env"],
)
def test_bad_config_exits_1_with_a_clear_message(
    kube: cluster.Kube, overrides: dict[str, str], expected: str
) -> None:
    env = _env(kube, K_SINK="http://127.0.0.1:1/", K_SOURCE_CONFIG=_source_config("default"))
    env.update(overrides)
    proc = subprocess.run(
        [sys.executable, "-m", "sources.apiserver"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert expected in proc.stderr
    if overrides.get("METRICS_PROMETHEUS_PORT") == "80":
        # every bad variable is reported in the same run
        assert "METRICS_PROMETHEUS_PORT" in proc.stderr


async def test_sigterm_delivers_events_in_flight_then_exits_0(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    received: list[cloudevent.CloudEvent] = []

    async def slow_sink(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        received.append(cloudevent.decode(dict(request.headers), await request.read()))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", slow_sink)
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", 0).start()
    sink_port = app_runner.addresses[0][1]
    env = _env(
        kube,
        K_SINK=f"http://127.0.0.1:{sink_port}/",
        K_SOURCE_CONFIG=_source_config(namespace),
        NAMESPACE=namespace,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sources.apiserver", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        probes = f"http://127.0.0.1:{env['KEVENTS_PROBES_PORT']}"
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{probes}/readiness") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            for _ in range(200):
                if await ready():
                    break
                await asyncio.sleep(0.1)
            assert await ready(), "the adapter never became ready"
            core = client.CoreV1Api(api_client)
            names = [f"inflight-{i}" for i in range(12)]
            for name in names:
                await core.create_namespaced_config_map(
                    namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name))
                )
            # wait until the adapter has seen them all (its metrics count changes)
            metrics_url = f"http://127.0.0.1:{env['METRICS_PROMETHEUS_PORT']}/metrics"

            async def seen() -> float:
                async with http.get(metrics_url) as resp:
                    text = await resp.text()
                line = next(
                    (
                        ln
                        for ln in text.splitlines()
                        if ln.startswith("kevents_apiserver_changes_total")
                    ),
                    "",
                )
                return float(line.rsplit(" ", 1)[1]) if line else 0.0

            for _ in range(100):
                if await seen() >= len(names):
                    break
                await asyncio.sleep(0.1)
            assert len(received) < len(names), "the sink was meant to be slower than the source"
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), timeout=30)
        assert code == 0
        got = {str(e.get_extension("name")) for e in received}
        assert set(names) <= got
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await app_runner.cleanup()
