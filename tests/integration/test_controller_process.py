"""`python -m controller` as a process, and leader election through a Lease."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp
import pytest
from kubernetes_asyncio import client

from kevents import kubeapi, leadership
from tests.cluster import REPO, Kube

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def get_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_controller_process_leads_serves_metrics_and_releases_lease(
    kube: Kube, api_client: client.ApiClient, namespace: str
) -> None:
    for f in sorted((REPO / "manifests").glob("300-*.yaml")):
        kube.kubectl("apply", f"--filename={f}")
    metrics_port, probes_port = free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "SYSTEM_NAMESPACE": namespace,
        "POD_NAME": "controller-under-test",
        "METRICS_PORT": str(metrics_port),
        "PROBES_PORT": str(probes_port),
        "WEBHOOK_PORT": "0",  # the SinkBinding webhook: any free port, ...
        "WEBHOOK_CONFIGURATION": f"none-{namespace}",  # ... never the installed caBundle
        "WEBHOOK_VALIDATION_CONFIGURATION": f"none-{namespace}",
        "WEBHOOK_DEFAULTING_CONFIGURATION": f"none-{namespace}",
        "LOG_FORMAT": "text",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "controller", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    api = kubeapi.KubeApi(api_client)
    try:
        lease = None
        for _ in range(200):
            lease = await api.get_or_none(leadership.LEASES, namespace, "kevents-controller")
            if lease and lease["spec"].get("holderIdentity") == "controller-under-test":
                break
            await asyncio.sleep(0.1)
        assert lease is not None and lease["spec"]["holderIdentity"] == "controller-under-test"
        body = ""
        for _ in range(100):
            status, body = await get_text(f"http://127.0.0.1:{metrics_port}/metrics")
            if "kevents_controller_leader 1.0" in body:
                break
            await asyncio.sleep(0.1)
        assert "kevents_controller_leader 1.0" in body
        assert await get_text(f"http://127.0.0.1:{probes_port}/readiness") == (200, "ready")
        assert (await get_text(f"http://127.0.0.1:{probes_port}/health"))[0] == 200
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, output.decode()
    lease = await api.get(leadership.LEASES, namespace, "kevents-controller")
    assert lease["spec"].get("holderIdentity") is None  # released for a quick takeover


async def test_only_one_elector_leads_and_the_other_takes_over(
    api_client: client.ApiClient, namespace: str
) -> None:
    api = kubeapi.KubeApi(api_client)

    def elector(identity: str) -> leadership.LeaderElector:
        return leadership.LeaderElector(
            api, namespace=namespace, name="lock", identity=identity,
            lease_duration=2, renew_deadline=1.5, retry_period=0.2,
        )  # fmt: skip

    first, second = elector("first"), elector("second")
    first_task = asyncio.create_task(first.run())
    await asyncio.wait_for(first.leading.wait(), 10)
    second_task = asyncio.create_task(second.run())
    try:
        # The standby would take over once the record stood still for lease_duration (2 s):
        # let the leader renew for longer than that (12 renewals of 0.2 s), seen on the Lease.
        renewals: set[str] = set()
        async with asyncio.timeout(20):
            while len(renewals) < 12:
                lease = await api.get(leadership.LEASES, namespace, "lock")
                renewals.add(str(lease["spec"].get("renewTime")))
                assert lease["spec"].get("holderIdentity") == "first"
                await asyncio.sleep(0.05)
        assert not second.leading.is_set()
        await first.stop()
        first_task.cancel()
        await asyncio.gather(first_task, return_exceptions=True)
        await asyncio.wait_for(second.leading.wait(), 10)
        lease = await api.get(leadership.LEASES, namespace, "lock")
        assert lease["spec"]["holderIdentity"] == "second"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        for task in (first_task, second_task):
            task.cancel()
        await asyncio.gather(first_task, second_task, return_exceptions=True)
