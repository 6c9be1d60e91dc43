"""The controller's reconcilers run only while it holds the Lease (real apiserver).

The leader's apiserver connection is cut off (every request hangs, as in a network
partition): its reconcilers must be stopped before the standby can take the Lease and
start its own, so two controllers never reconcile at once.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from kubernetes_asyncio import client
from prometheus_client import CollectorRegistry

from controller import app
from controller.framework import metrics
from kevents import kubeapi, leadership
from tests import waiting
from tests.integration import faultproxy

pytestmark = pytest.mark.cluster

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 3.0, 2.0, 0.5


class Reconcilers:
    """Stands in for the controller manager: records when it was working."""

    def __init__(self) -> None:
        self.working: list[float] = []
        self.name = "reconcilers"

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.working.append(loop.time())
            await asyncio.sleep(0.02)


def elector(api: kubeapi.KubeApi, namespace: str, identity: str) -> leadership.LeaderElector:
    return leadership.LeaderElector(
        api, namespace=namespace, name="kevents-controller", identity=identity,
        lease_duration=LEASE_DURATION, renew_deadline=RENEW_DEADLINE, retry_period=RETRY_PERIOD,
        rejoin=False,
    )  # fmt: skip


async def test_a_partitioned_leader_stops_reconciling_before_the_standby_starts(
    api_client: client.ApiClient, namespace: str
) -> None:
    admin = kubeapi.KubeApi(api_client)
    async with faultproxy.serve(admin) as proxy, proxy.api_client() as through:
        first = elector(kubeapi.KubeApi(through), namespace, "first")
        second = elector(admin, namespace, "second")
        first_work, second_work = Reconcilers(), Reconcilers()
        gauge = metrics.ControllerMetrics(CollectorRegistry())
        tasks = [
            asyncio.create_task(first.run()),
            asyncio.create_task(app.Leading(first, first_work, gauge).run()),
        ]
        try:
            await asyncio.wait_for(first.leading.wait(), 10)
            tasks += [
                asyncio.create_task(second.run()),
                asyncio.create_task(app.Leading(second, second_work, gauge).run()),
            ]
            await waiting.until(lambda: len(first_work.working) > 5)
            assert not second.leading.is_set()
            partitioned = asyncio.get_running_loop().time()
            proxy.block()
            await waiting.until(lambda: bool(second_work.working), within=LEASE_DURATION + 5)
            done = [t for t in tasks[:2] if t.done()]
            assert len(done) == 2, "the partitioned leader's elector and reconcilers ended"
            for task in done:
                assert isinstance(task.exception(), leadership.LeadershipLost)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, leadership.LeadershipLost):
                await asyncio.gather(*tasks, return_exceptions=True)
    stopped, started = first_work.working[-1], second_work.working[0]
    assert stopped < started, "two controllers reconciled at once"
    assert stopped - partitioned <= RENEW_DEADLINE + 0.2, "it must stop at its renew deadline"
