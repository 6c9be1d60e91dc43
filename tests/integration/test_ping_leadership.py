"""Two adapter replicas on one Lease, in real time: one delivery per tick, and failover."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from kubernetes_asyncio import client

from kevents import kubeapi, leadership, pingspec
from sources.ping import clock
from tests import cluster, waiting
from tests.integration import pingsupport

pytestmark = pytest.mark.cluster

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 3.0, 2.0, 0.5
EVERY_SECOND = pingspec.Limits(min_interval=1)
"""Ticks every second show a handover within seconds (production keeps the 10 s floor)."""


def elector(api: client.ApiClient, namespace: str, identity: str) -> leadership.LeaderElector:
    return leadership.LeaderElector(
        kubeapi.KubeApi(api),
        namespace=namespace,
        name="ping-adapter",
        identity=identity,
        lease_duration=LEASE_DURATION,
        renew_deadline=RENEW_DEADLINE,
        retry_period=RETRY_PERIOD,
    )


async def test_two_replicas_deliver_each_tick_once_and_hand_over_on_a_crash(
    kube: cluster.Kube, api_client: client.ApiClient, namespace: str
) -> None:
    pingsupport.install_crd(kube)
    system = clock.SystemClock()
    first, second = elector(api_client, namespace, "a"), elector(api_client, namespace, "b")
    async with contextlib.AsyncExitStack() as stack:
        sink = await stack.enter_async_context(pingsupport.serve_sink())
        replicas = [
            await stack.enter_async_context(
                pingsupport.replica(api_client, system, namespace, elector=e, limits=EVERY_SECOND)
            )
            for e in (first, second)
        ]
        await pingsupport.create(api_client, namespace, "every-second", sink.url,
                                 schedule="* * * * * *", data="tick")  # fmt: skip
        await waiting.until(lambda: first.is_leader or second.is_leader)
        await sink.wait_for(4)
        leader, standby = (0, 1) if first.is_leader else (1, 0)
        assert not replicas[standby].elector.is_leader  # type: ignore[union-attr]

        replicas[leader].kill()
        killed_at = asyncio.get_running_loop().time()
        before = len(sink.events)
        await waiting.until(
            lambda: replicas[standby].elector.is_leader,  # type: ignore[union-attr]
            within=LEASE_DURATION + 3,
        )
        handover = asyncio.get_running_loop().time() - killed_at
        await sink.wait_for(before + 3)
    ticks = [t for _, e, _ in sink.events if (t := e.get_time()) is not None]
    assert len(ticks) == len(set(ticks)), "a tick was delivered twice"
    seconds = sorted(int(t.timestamp()) for t in ticks)
    missing = set(range(seconds[0], seconds[-1] + 1)) - set(seconds)
    assert len(missing) <= 1, f"more than the tick in progress was lost: {sorted(missing)}"
    assert handover <= LEASE_DURATION + RETRY_PERIOD + 0.5
