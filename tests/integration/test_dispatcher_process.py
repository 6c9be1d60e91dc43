"""`python -m dispatcher` as processes: bad config, worker processes sharing the port, SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys

import aiohttp
import pytest
from kubernetes_asyncio import client

from tests import cluster, waiting
from tests.integration import dispatcher_harness as h

pytestmark = pytest.mark.cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (worker i serves metrics on base + i)."""
    while True:
        base = _free_port()
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    s = held.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base


def _env(kube: cluster.Kube, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("K_", "KUBERNETES_"))}
    env.update(
        KUBECONFIG=str(kube.kubeconfig),
        KEVENTS_INGRESS_HOST="127.0.0.1",
        KEVENTS_PROBES_HOST="127.0.0.1",
        METRICS_PROMETHEUS_HOST="127.0.0.1",
        KEVENTS_INGRESS_PORT=str(_free_port()),
        KEVENTS_PROBES_PORT=str(_free_port()),
        METRICS_PROMETHEUS_PORT=str(_free_ports(2)),
        KEVENTS_LOG_FORMAT="text",
    )
    env.update(values)
    return env


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        (
            {"KEVENTS_QUEUE_SIZE": "lots", "KEVENTS_LOG_FORMAT": "xml"},
            [],
            ["KEVENTS_QUEUE_SIZE: must be an integer", "KEVENTS_LOG_FORMAT"],
        ),
        ({"K_TRACING_CONFIG": '{"backend": "jaeger"}'}, [], ["backend must be"]),
        ({}, ["--workers", "0"], ["--workers: must be within [1, 64]"]),
    ],
    ids=["every-bad-variable", "tracing", "workers"],
)
def test_bad_config_exits_1_naming_every_problem(
    kube: cluster.Kube, env: dict[str, str], args: list[str], expected: list[str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=_env(kube, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    for text in expected:
        assert text in proc.stderr


async def test_worker_processes_share_the_port_and_drain_on_sigterm(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    h.ensure_crd(kube)
    sub = h.Subscriber()
    async with h.serving(sub):
        await h.create_channel(api_client, namespace, "ch", [h.subscriber_entry("u1", sub)])
        env = _env(kube)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dispatcher",
            "--workers",
            "2",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            base = int(env["METRICS_PROMETHEUS_PORT"])
            async with aiohttp.ClientSession() as session:

                async def metrics(port: int) -> str:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                            return await r.text()
                    except aiohttp.ClientError:
                        return ""

                url = f"http://127.0.0.1:{env['KEVENTS_INGRESS_PORT']}/{namespace}/ch"
                ok = 0
                answered_202 = 0
                for _ in range(600):  # 20 new connections in a row: both workers serve it
                    try:
                        ok = ok + 1 if (await h.post(url, h.event("warm-up")))[0] == 202 else 0
                        answered_202 += ok > 0
                    except aiohttp.ClientError:
                        ok = 0
                    if ok == 20:
                        break
                    await asyncio.sleep(0.05)
                assert ok == 20, f"no 202 in a row of 20 (dispatcher exit code: {proc.returncode})"
                await waiting.until(lambda: len(sub.events) == 20)
                sub.events.clear()
                probes = f"http://127.0.0.1:{env['KEVENTS_PROBES_PORT']}/readiness"
                async with session.get(probes) as r:
                    assert r.status == 200
                for i in range(40):
                    # a new connection each time: the kernel spreads them over the workers
                    status, _, _ = await h.post(url, h.event(f"p{i}"))
                    assert status == 202
                await waiting.until(lambda: len(sub.events) == 40)
                answered_202 += 40

                def accepted(text: str) -> float:
                    return sum(
                        float(line.rsplit(" ", 1)[1])
                        for line in text.splitlines()
                        if line.startswith("kevents_dispatcher_events_received_total{")
                        and 'response_code="202"' in line
                    )

                # worker 1 took connections; the pod's one metrics endpoint (worker 0's port)
                # counts what both accepted
                assert accepted(await metrics(base + 1)) > 0, "both worker processes served"
                assert accepted(await metrics(base)) == answered_202
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        log = out.decode()
        assert proc.returncode == 0, log
        assert "All 2 worker processes stopped cleanly." in log
        assert sorted(sub.ids()) == sorted(f"p{i}" for i in range(40))
